r"""Time embeddings for networks ``model(x, t)`` with ``t`` of shape ``(B,)``.

* sinusoidal (Transformer / DDPM): :math:`[\sin(\omega_k s t), \cos(\omega_k s t)]`, :math:`\omega_k = P^{-k/(h-1)}`,
  with ``s = scale`` (1000 maps t ∈ [0, 1] to the usual DDPM range).
* Gaussian Fourier features (Tancik et al. 2020; score-SDE): :math:`[\sin(2\pi W t), \cos(2\pi W t)]`,
  :math:`W \sim N(0, \sigma^2)` fixed at construction (a buffer, so saved and loaded with the weights).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

EMBEDDINGS: "Registry[nn.Module]" = Registry("embedding")


def _check_dim(dim: int) -> int:
    if int(dim) != dim or dim < 2 or dim % 2:
        raise ConfigError("time_dim", f"must be an even integer >= 2, got {dim!r}")
    return int(dim)


def _check_t(t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 1:
        raise ConfigError("t", f"must have shape (B,), got {tuple(t.shape)}")
    return t


@EMBEDDINGS.register("sinusoidal", "sin")
class SinusoidalEmbedding(nn.Module):
    """Deterministic sinusoidal features of ``t`` (dimension ``dim``)."""

    def __init__(self, dim: int = 64, max_period: float = 10000.0, scale: float = 1000.0):
        super().__init__()
        self.dim = _check_dim(dim)
        half = self.dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs * float(scale))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = _check_t(t).to(self.freqs.dtype)[:, None] * self.freqs[None]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


@EMBEDDINGS.register("fourier", "gaussian_fourier")
class FourierFeatures(nn.Module):
    """Random Gaussian Fourier features of ``t`` with bandwidth ``sigma`` (fixed, seeded by ``seed``)."""

    def __init__(self, dim: int = 64, sigma: float = 16.0, seed: int = 0):
        super().__init__()
        self.dim = _check_dim(dim)
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("W", torch.randn(self.dim // 2, generator=g) * float(sigma))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = 2 * math.pi * _check_t(t).to(self.W.dtype)[:, None] * self.W[None]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


def time_embedding(kind: str, dim: int) -> nn.Module:
    """Build a time embedding by name (``sinusoidal`` or ``fourier``)."""
    return EMBEDDINGS.get(kind, dim=dim)


__all__ = ["EMBEDDINGS", "SinusoidalEmbedding", "FourierFeatures", "time_embedding"]

r"""A small UNet for images and 2-D fields ``(B, C, H, W)``: ``model(x, t)``, ``t`` of shape ``(B,)``.

Residual blocks (GroupNorm → SiLU → 3×3 conv, time embedding added between the two convolutions, as in DDPM),
``len(channel_mult)`` resolutions with stride-2 downsampling and nearest-neighbour upsampling, skip connections
by concatenation. H and W must be divisible by ``2**(len(channel_mult)-1)``. The output conv starts at zero,
so an untrained model predicts 0.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from .embeddings import time_embedding


def _groups(ch: int) -> int:
    for g in (8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """Two 3×3 convs with GroupNorm/SiLU, the time embedding added in between, and a residual path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.n1 = nn.GroupNorm(_groups(c_in), c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.n2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.emb(e)[:, :, None, None]
        h = self.c2(self.drop(F.silu(self.n2(h))))
        return self.skip(x) + h


class UNet(nn.Module):
    """Small UNet.

    Args:
        shape: ``(C, H, W)`` of one sample.
        channels: base channel count.
        channel_mult: channel multiplier per resolution (its length is the number of resolutions).
        blocks: residual blocks per resolution.
        time_dim: size of the time embedding.
        embedding: ``"sinusoidal"`` or ``"fourier"``.
        dropout: dropout inside residual blocks.
    """

    def __init__(self, shape: Sequence[int] = (1, 8, 8), channels: int = 32, channel_mult: Sequence[int] = (1, 2),
                 blocks: int = 1, time_dim: int = 64, embedding: str = "sinusoidal", dropout: float = 0.0):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3:
            raise ConfigError("shape", f"UNet needs (C, H, W), got {shape}")
        levels = len(channel_mult)
        if levels < 1 or shape[1] % (2 ** (levels - 1)) or shape[2] % (2 ** (levels - 1)):
            raise ConfigError("channel_mult", f"{levels} resolutions need H and W divisible by {2 ** (levels - 1)}, got {shape}")
        self.shape = shape
        self.config: Dict[str, object] = {"shape": list(shape), "channels": int(channels),
                                          "channel_mult": [int(m) for m in channel_mult], "blocks": int(blocks),
                                          "time_dim": int(time_dim), "embedding": embedding, "dropout": float(dropout)}
        emb = 4 * channels
        self.embed = time_embedding(embedding, int(time_dim))
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(shape[0], channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        chs: List[int] = [channels]
        c = channels
        for i, m in enumerate(channel_mult):
            for _ in range(blocks):
                self.down.append(ResBlock(c, channels * m, emb, dropout))
                c = channels * m
                chs.append(c)
            if i < levels - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                chs.append(c)
        self.mid1 = ResBlock(c, c, emb, dropout)
        self.mid2 = ResBlock(c, c, emb, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, m in reversed(list(enumerate(channel_mult))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(c + chs.pop(), channels * m, emb, dropout))
                c = channels * m
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, shape[0], 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self._levels, self._blocks = levels, blocks

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Prediction ``(B, C, H, W)``; ``t`` is ``(B,)``."""
        if tuple(x.shape[1:]) != self.shape:
            raise ConfigError("x", f"expected shape (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        e = self.time_mlp(self.embed(t.to(x.dtype)).to(x.dtype))
        h = self.inp(x)
        hs = [h]
        k = 0
        for i in range(self._levels):
            for _ in range(self._blocks):
                h = self.down[k](h, e)
                k += 1
                hs.append(h)
            if i < self._levels - 1:
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid2(self.mid1(h, e), e)
        k = 0
        for j, i in enumerate(reversed(range(self._levels))):
            for _ in range(self._blocks + 1):
                h = self.up[k](torch.cat([h, hs.pop()], dim=1), e)
                k += 1
            if i > 0:
                h = self.upsample[j](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))

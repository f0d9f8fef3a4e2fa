r"""Fourier Neural Operator on periodic 2-D grids (Li et al. 2021, "Fourier Neural Operator for Parametric PDEs").

Each layer is

.. math::
    v_{l+1} = \mathrm{GELU}\big(\mathcal F^{-1}[R_l\cdot \mathcal F v_l]_{|k| \le m} + W_l v_l + c_l(\tau)\big),

with complex weights :math:`R_l` on the lowest ``modes`` Fourier modes (both signs of :math:`k_y`, the
non-negative :math:`k_x` half of ``rfft2``), a local path :math:`W_l` (1×1 convolution as in the paper, or a
circular 3×3 convolution with ``local_kernel=3``, which helps the small scales a denoiser must produce) and an
optional per-channel shift :math:`c_l(\tau)` from an embedding of a scalar conditioning input τ (the
interpolant time / noise level; ``time_embedding=True``). Resolution-agnostic, device-agnostic.

Contract: ``model(x)`` or ``model(x, t)`` with ``x`` of shape ``(B, C_in, N, N)`` and ``t`` of shape ``(B,)``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError


class SpectralConv2d(nn.Module):
    r"""Spectral convolution :math:`\mathcal F^{-1}[R\cdot\mathcal F v]` truncated to ``modes`` per direction.

    The complex product :math:`R\hat v` is done as one real batched matmul over modes,
    :math:`[\Re\hat v, \Im\hat v]\begin{pmatrix}\Re R & \Im R\\ -\Im R & \Re R\end{pmatrix}`
    (several times faster than a complex ``einsum`` on CPU).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int):
        super().__init__()
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        scale = 1.0 / (in_channels * out_channels)
        # (2 blocks: k_y >= 0 and k_y < 0) × modes × modes, each an (in, out) complex matrix as real and imaginary parts
        self.w_re = nn.Parameter(scale * torch.rand(2, modes, modes, in_channels, out_channels))
        self.w_im = nn.Parameter(scale * torch.rand(2, modes, modes, in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, ny, nx = x.shape
        m = min(self.modes, ny // 2, nx // 2 + 1)
        xf = torch.fft.rfft2(x)
        blocks = torch.stack([xf[:, :, :m, :m], xf[:, :, ny - m:, :m]], 0)  # (2, B, C, m, m)
        a = blocks.permute(0, 3, 4, 1, 2).reshape(2 * m * m, b, c)
        a = torch.cat([a.real, a.imag], -1)  # (2mm, B, 2C)
        wr = self.w_re[:, :m, :m].reshape(2 * m * m, c, -1)
        wi = self.w_im[:, :m, :m].reshape(2 * m * m, c, -1)
        w = torch.cat([torch.cat([wr, wi], -1), torch.cat([-wi, wr], -1)], -2).to(a.dtype)  # (2mm, 2C, 2O)
        o = torch.bmm(a, w)
        co = self.out_channels
        o = torch.complex(o[..., :co], o[..., co:]).reshape(2, m, m, b, co).permute(0, 3, 4, 1, 2)
        out = torch.zeros(b, co, ny, nx // 2 + 1, dtype=xf.dtype, device=x.device)
        out[:, :, :m, :m] = o[0]
        out[:, :, ny - m:, :m] = o[1]
        return torch.fft.irfft2(out, s=(ny, nx))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    r"""Sinusoidal features :math:`[\cos(\omega_j \tau), \sin(\omega_j \tau)]`, :math:`\omega_j = P^{-j/(d/2)}`."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None] * max_period / 10.0
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class FNO2d(nn.Module):
    """A 2-D FNO mapping ``(B, in_channels, N, N)`` to ``(B, out_channels, N, N)``.

    Args:
        in_channels, out_channels: input/output channels.
        width: hidden channels.
        modes: Fourier modes kept per direction in each spectral layer.
        layers: number of Fourier layers.
        local_kernel: 1 (pointwise W, as in the paper) or an odd size for a circular convolution.
        coords: append (sin x, cos x, sin y, cos y) of the periodic grid as input features.
        time_embedding: condition every layer on a scalar ``t`` (``forward(x, t)``).
        residual: add the first ``out_channels`` input channels to the output (predict an increment).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 32, modes: int = 12,
                 layers: int = 4, local_kernel: int = 1, coords: bool = True, time_embedding: bool = False,
                 residual: bool = False):
        super().__init__()
        for name, val in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                          ("modes", modes), ("layers", layers)):
            if int(val) < 1:
                raise ConfigError(name, f"must be an integer >= 1, got {val!r}")
        if int(local_kernel) < 1 or int(local_kernel) % 2 == 0:
            raise ConfigError("local_kernel", f"must be an odd integer >= 1, got {local_kernel!r}")
        if residual and in_channels < out_channels:
            raise ConfigError("residual", "needs in_channels >= out_channels")
        self.in_channels, self.out_channels, self.coords = in_channels, out_channels, coords
        self.time_embedding, self.residual = time_embedding, residual
        self._params = dict(in_channels=in_channels, out_channels=out_channels, width=width, modes=modes,
                            layers=layers, local_kernel=local_kernel, coords=coords,
                            time_embedding=time_embedding, residual=residual)
        c_in = in_channels + (4 if coords else 0)
        self.lift = nn.Conv2d(c_in, width, 1)
        self.spectral = nn.ModuleList(SpectralConv2d(width, width, modes) for _ in range(layers))
        pad = local_kernel // 2
        self.local = nn.ModuleList(nn.Conv2d(width, width, local_kernel, padding=pad, padding_mode="circular")
                                   for _ in range(layers))
        if time_embedding:
            self.temb_dim = 64
            self.temb = nn.Sequential(nn.Linear(self.temb_dim, 2 * width), nn.GELU(), nn.Linear(2 * width, 2 * width))
            self.film = nn.ModuleList(nn.Linear(2 * width, 2 * width) for _ in range(layers))
        self.proj = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.GELU(), nn.Conv2d(2 * width, out_channels, 1))
        self.act = nn.GELU()

    def _grid_features(self, x: torch.Tensor) -> torch.Tensor:
        b, _, ny, nx = x.shape
        gy = torch.arange(ny, device=x.device, dtype=x.dtype) * (2 * math.pi / ny)
        gx = torch.arange(nx, device=x.device, dtype=x.dtype) * (2 * math.pi / nx)
        feats = [torch.sin(gx)[None, :].expand(ny, nx), torch.cos(gx)[None, :].expand(ny, nx),
                 torch.sin(gy)[:, None].expand(ny, nx), torch.cos(gy)[:, None].expand(ny, nx)]
        return torch.stack(feats, 0)[None].expand(b, -1, -1, -1)

    def forward(self, x: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map ``x`` ``(B, C_in, N, N)`` (and ``t`` ``(B,)`` when time-conditioned) to ``(B, C_out, N, N)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError("x", f"expected shape (B, {self.in_channels}, N, N), got {tuple(x.shape)}")
        h = torch.cat([x, self._grid_features(x)], 1) if self.coords else x
        h = self.lift(h)
        emb = None
        if self.time_embedding:
            if t is None:
                raise ConfigError("t", "this FNO is time-conditioned: call model(x, t) with t of shape (B,)")
            emb = self.temb(timestep_embedding(t.reshape(-1).expand(x.shape[0]), self.temb_dim).to(h.dtype))
        for i, (spec, loc) in enumerate(zip(self.spectral, self.local)):
            y = spec(h) + loc(h)
            if emb is not None:
                scale, shift = self.film[i](emb).chunk(2, -1)
                y = y * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            h = self.act(y) if i < len(self.spectral) - 1 else y
        out = self.proj(h)
        if self.residual:
            out = out + x[:, : self.out_channels]
        return out

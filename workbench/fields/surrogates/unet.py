r"""UNet one-step baseline: :math:`u_{n+1} = u_n + s_r\,\mathrm{UNet}_\theta(u_n/s_u)` (the image UNet of
:mod:`workbench.models.unet`, time input fixed to 0, every 3×3 convolution switched to circular padding so the
periodic domain has no edges; the zero-initialised output conv makes the untrained model the identity step)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ... import validation
from ...models.unet import UNet
from .base import SURROGATES, FieldSurrogate


@SURROGATES.register("unet")
class UNetSurrogate(FieldSurrogate):
    """Args: ``grid`` (N, divisible by 2^(levels−1)), ``history``, ``channels``, ``channel_mult``, ``blocks``."""

    def __init__(self, grid: int = 32, history: int = 1, channels: int = 16, channel_mult: Sequence[int] = (1, 2, 2),
                 blocks: int = 1):
        super().__init__(history)
        n = validation.integer("grid", grid, 4, 4096)
        self.net = UNet(shape=(self.history, n, n), channels=channels, channel_mult=tuple(channel_mult), blocks=blocks)
        for m in self.net.modules():
            if isinstance(m, nn.Conv2d) and m.padding != (0, 0):
                m.padding_mode = "circular"

    def increment(self, z: torch.Tensor) -> torch.Tensor:
        t = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        return self.net(z, t)[:, -1]

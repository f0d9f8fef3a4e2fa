r"""Trigonometric / generalized-variance-preserving interpolant: :math:`x_t = \cos(\pi t/2) x_0 + \sin(\pi t/2) x_1`."""
import math

import torch

from .base import Interpolant
from .registry import register


@register("trig", "gvp", "trigonometric", "cosine")
class Trigonometric(Interpolant):
    r""":math:`\alpha = \cos(\tfrac{\pi}{2}t),\ \beta = \sin(\tfrac{\pi}{2}t)` so :math:`\alpha^2+\beta^2 = 1` (GVP in SiT)."""

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.cos(0.5 * math.pi * t)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sin(0.5 * math.pi * t)

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda = \log\tan\tfrac{\pi t}{2}` ⇒ :math:`t = \tfrac{2}{\pi}\arctan e^{\lambda}`."""
        return (2.0 / math.pi) * torch.atan(torch.exp(lam))

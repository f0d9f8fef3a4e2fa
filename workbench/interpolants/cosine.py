r"""The continuous cosine VP schedule of improved DDPM (Nichol & Dhariwal 2021, Eq. 17), on t = 1 − s:

.. math:: \bar\alpha(s) = \frac{f(s)}{f(0)},\quad f(s) = \cos^2\Big(\frac{s + \epsilon}{1 + \epsilon}\frac\pi2\Big),\qquad
    x = \sqrt{\bar\alpha}\,x_1 + \sqrt{1-\bar\alpha}\,x_0 .

The signal vanishes at t = 0 (λ = −∞) and the noise at t = 1 (λ = +∞). The log-SNR inverse is closed-form:
:math:`\bar\alpha = \mathrm{sigmoid}(2\lambda)`, :math:`u = \arccos(\cos u_0\sqrt{\bar\alpha})`,
:math:`s = \tfrac{2(1+\epsilon)}{\pi}u - \epsilon`.
"""
import math

import torch

from .base import Coefficients, TabulatedInterpolant, check_positive
from .registry import register


@register("cosine_vp", "iddpm", "improved_ddpm")
class CosineVP(TabulatedInterpolant):
    r""":math:`\beta = \cos u/\cos u_0`, :math:`\alpha = \sqrt{1 - \beta^2}`, :math:`u = \tfrac{(1-t)+\epsilon}{1+\epsilon}\tfrac\pi2`.

    Args:
        offset: the iDDPM offset :math:`\epsilon` (0.008).
    """

    def __init__(self, offset: float = 0.008):
        self.offset = check_positive("offset", offset)

    def _u(self, t):
        return ((1.0 - t) + self.offset) / (1.0 + self.offset) * (0.5 * math.pi)

    def _tensor_coefficients(self, t: torch.Tensor) -> Coefficients:
        c0 = math.cos(self._u(1.0))  # u at s = 0 (t = 1)
        u = self._u(t)
        a = torch.cos(u) / c0
        du_dt = -(0.5 * math.pi) / (1.0 + self.offset)
        da = -torch.sin(u) / c0 * du_dt
        sig = torch.sqrt((1.0 - a * a).clamp_min(0.0))
        sds = -a * da  # σσ̇ = −a ȧ since a² + σ² = 1 (finite where σ = 0)
        d_sig = torch.where(sig > 0, sds / torch.where(sig > 0, sig, torch.ones_like(sig)), torch.full_like(sig, -math.inf))
        zero = torch.zeros_like(t)
        return Coefficients(sig, a, zero, d_sig, da, zero, a, da, sig, sds)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        c0 = math.cos(self._u(1.0))
        abar = torch.sigmoid(2.0 * lam)
        u = torch.acos((c0 * torch.sqrt(abar)).clamp(-1.0, 1.0))
        s = u * 2.0 * (1.0 + self.offset) / math.pi - self.offset
        return 1.0 - s

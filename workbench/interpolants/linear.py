r"""Linear interpolant (rectified flow / conditional OT): :math:`x_t = (1-t)x_0 + t x_1`."""
import torch

from .base import Interpolant
from .registry import register


@register("linear", "rectified_flow", "rf", "cond_ot")
class Linear(Interpolant):
    r""":math:`\alpha = 1-t,\ \beta = t,\ \gamma = 0` (Liu et al. 2022; Lipman et al. 2022)."""

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - t

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return t.clone()

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.ones_like(t)

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda = \log\frac{t}{1-t}` ⇒ :math:`t = \mathrm{sigmoid}(\lambda)`."""
        return torch.sigmoid(lam)

r"""Interpolants with a latent term :math:`\gamma(t) z`: Schrödinger-bridge, one-sided and mirror."""
import math

import torch

from .base import Interpolant, check_positive
from .registry import register
from ..errors import ConfigError


class _SqrtGamma:
    r""":math:`\gamma(t) = \sqrt{a\,t(1-t)}`, :math:`\gamma\dot\gamma = \tfrac{a}{2}(1-2t)` (SI paper, Sec. 3)."""

    a: float

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(self.a * (t * (1.0 - t)).clamp_min(0.0))

    def d_gamma(self, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * (1.0 - 2.0 * t) / self.gamma(t)

    def gamma_dgamma(self, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * (1.0 - 2.0 * t)


@register("sb", "schrodinger_bridge", "stochastic_linear")
class SchrodingerBridge(_SqrtGamma, Interpolant):
    r"""Linear path plus a Brownian-bridge latent: :math:`x_t = (1-t)x_0 + t x_1 + \sqrt{a t(1-t)}\, z`.

    With :math:`a = 2\varepsilon` this is the Schrödinger-bridge conditional path of SB-CFM (Tong et al.).
    """

    def __init__(self, a: float = 1.0):
        self.a = check_positive("a", a)

    def alpha(self, t):
        return 1.0 - t

    def beta(self, t):
        return t.clone()

    def d_alpha(self, t):
        return -torch.ones_like(t)

    def d_beta(self, t):
        return torch.ones_like(t)


_PATHS = ("linear", "trig")


@register("one_sided", "onesided")
class OneSided(Interpolant):
    r"""One-sided interpolant :math:`x_t = \alpha(t) z + \beta(t) x_1` (SI paper, Sec. 4): the Gaussian
    base plays the role of the latent, no separate :math:`\gamma` term.

    ``path="linear"``: :math:`\alpha = 1-t,\ \beta = t`; ``path="trig"``: :math:`\alpha=\cos\tfrac{\pi t}{2},\ \beta=\sin\tfrac{\pi t}{2}`;
    """

    def __init__(self, path: str = "linear"):
        if path not in _PATHS:
            raise ConfigError("path", f"got {path!r}; allowed values are: {', '.join(_PATHS)}")
        self.path = path

    def alpha(self, t):
        return 1.0 - t if self.path == "linear" else torch.cos(0.5 * math.pi * t)

    def beta(self, t):
        return t.clone() if self.path == "linear" else torch.sin(0.5 * math.pi * t)

    def d_alpha(self, t):
        return -torch.ones_like(t) if self.path == "linear" else -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def d_beta(self, t):
        return torch.ones_like(t) if self.path == "linear" else 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def _t_from_log_snr_closed(self, lam):
        """Closed-form inverse of λ: sigmoid (linear path) or (2/π)·atan(e^λ) (trig path)."""
        return torch.sigmoid(lam) if self.path == "linear" else (2.0 / math.pi) * torch.atan(torch.exp(lam))


@register("mirror")
class Mirror(_SqrtGamma, Interpolant):
    r"""Mirror interpolant :math:`x_t = x_1 + \sqrt{a t(1-t)}\, z` with base = data (:math:`x_0 = x_1`).

    Represented as :math:`\alpha = 0,\ \beta = 1`; the merged form has :math:`a(t) = 1`, :math:`\sigma = \gamma`.
    Its probability-flow ODE is a denoise-renoise loop that maps the data distribution to itself.
    """

    gaussian_base = False
    monotone_snr = False

    def __init__(self, a: float = 1.0):
        self.a = check_positive("a", a)

    def alpha(self, t):
        return torch.zeros_like(t)

    def beta(self, t):
        return torch.ones_like(t)

    def d_alpha(self, t):
        return torch.zeros_like(t)

    def d_beta(self, t):
        return torch.zeros_like(t)

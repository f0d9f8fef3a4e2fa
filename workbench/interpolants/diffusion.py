r"""Score-SDE diffusions (Song et al. 2021) as interpolants on t ∈ [0, 1], t = 1 − s (s = diffusion time).

VP:     :math:`x = m(s) x_1 + \sqrt{1 - m(s)^2}\, x_0`, :math:`m(s) = e^{-B(s)/2}`, :math:`B(s) = \beta_{min}s + \tfrac12(\beta_{max}-\beta_{min})s^2`.
sub-VP: :math:`x = m(s) x_1 + (1 - m(s)^2)\, x_0`.
VE:     :math:`x = x_1 + \sigma(s) x_0`, :math:`\sigma(s) = \sigma_{min}(\sigma_{max}/\sigma_{min})^s`.

These are truncated diffusions: at t = 0 the VP/sub-VP signal coefficient is :math:`e^{-B(1)/2}` (≈ 6.6e-3 at the
default β range), not 0, and the VE noise at t = 1 is :math:`\sigma_{min}`, not 0 — exactly as in score-SDE.
With the exact Gaussian-mixture model, samplers start from the exact marginal at ``t_start``, so this
"prior mismatch" never contaminates a solver comparison.
"""
import math

import torch

from .base import Interpolant, check_positive
from .registry import register
from ..errors import ConfigError


class _LinearBeta(Interpolant):
    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min = check_positive("beta_min", beta_min)
        self.beta_max = check_positive("beta_max", beta_max)
        if self.beta_max < self.beta_min:
            raise ConfigError("beta_max", f"must be >= beta_min ({beta_min}), got {beta_max}")

    def _B(self, t: torch.Tensor) -> torch.Tensor:
        s = 1.0 - t
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s * s

    def _dB_dt(self, t: torch.Tensor) -> torch.Tensor:
        s = 1.0 - t
        return -(self.beta_min + (self.beta_max - self.beta_min) * s)

    def _m(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * self._B(t))

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self._m(t)

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * self._dB_dt(t) * self._m(t)


@register("vp", "ddpm")
class VP(_LinearBeta):
    r"""Variance-preserving: :math:`\alpha = \sqrt{1-m^2}`, :math:`\beta = m`; :math:`\alpha\dot\alpha = -m\dot m`."""

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(-self._B(t)))

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        # d/dt sqrt(1 - e^{-B}) = e^{-B} B' / (2 sqrt(1 - e^{-B}))  (infinite at t = 1, where alpha = 0)
        return torch.exp(-self._B(t)) * self._dB_dt(t) / (2.0 * self.alpha(t))

    def gamma_dgamma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        r""":math:`e^{-2\lambda} = e^{B} - 1` ⇒ :math:`B = \mathrm{softplus}(-2\lambda)`, then the root of the quadratic
        :math:`B(s) = \beta_{min}s + \tfrac12(\beta_{max}-\beta_{min})s^2`, :math:`t = 1 - s`."""
        B = torch.nn.functional.softplus(-2.0 * lam)
        d = self.beta_max - self.beta_min
        if d == 0.0:
            s = B / self.beta_min
        else:
            s = 2.0 * B / (self.beta_min + torch.sqrt(self.beta_min ** 2 + 2.0 * d * B))
        return 1.0 - s

    def _tensor_coefficients(self, t):
        c = super()._tensor_coefficients(t)
        # alpha * d_alpha = e^{-B} B'/2 in closed form (finite at t = 1)
        sds = torch.exp(-self._B(t)) * self._dB_dt(t) * 0.5
        return type(c)(**{**c.__dict__, "sigma_dsigma": sds})


@register("subvp", "sub_vp")
class SubVP(_LinearBeta):
    r"""sub-VP: :math:`\alpha = 1 - m^2 = 1 - e^{-B}`, :math:`\beta = m`."""

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.expm1(-self._B(t))

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self._B(t)) * self._dB_dt(t)


@register("ve", "smld")
class VE(Interpolant):
    r"""Variance-exploding: :math:`\alpha = \sigma_{min}(\sigma_{max}/\sigma_{min})^{1-t}`, :math:`\beta = 1`."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.sigma_max = check_positive("sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ConfigError("sigma_max", f"must be > sigma_min ({sigma_min}), got {sigma_max}")

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (1.0 - t)

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return -math.log(self.sigma_max / self.sigma_min) * self.alpha(t)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda = -\log\sigma_{min} - (1-t)\log(\sigma_{max}/\sigma_{min})`."""
        return 1.0 + (lam + math.log(self.sigma_min)) / math.log(self.sigma_max / self.sigma_min)

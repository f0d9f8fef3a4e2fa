r"""The mean-reverting diffusion (IR-SDE) as an interpolant of the deviation from the mean state μ.

Luo, Gustafsson, Zhao, Sjölund, Schön (2023), "Image Restoration with Mean-Reverting Stochastic Differential
Equations"; the samplers are MRS (Li et al. 2024, :mod:`workbench.solvers.mrs`). In diffusion time ``s = 1 − t``,

.. math:: dx = \theta_s(\mu - x)\,ds + \sigma_s\,dW,\qquad \sigma_s^2 = 2\lambda^2\theta_s,

with :math:`\bar\theta(s) = \int_0^s\theta`, has the marginal

.. math:: x_s - \mu = e^{-\bar\theta(s)}(x_1 - \mu) + \lambda\sqrt{1 - e^{-2\bar\theta(s)}}\,\xi,

so the deviation :math:`y = x - \mu` is the interpolant :math:`y_t = a(t)\,y_1 + \sigma(t)\,\xi` with
:math:`a = \beta = e^{-\bar\theta(1-t)}`, :math:`\alpha = \lambda\sqrt{1-a^2}`, the Gaussian base :math:`N(0, \lambda^2 I)` at
t = 0. Every workbench state on this interpolant is a deviation from μ (the degraded image in
restoration); :class:`workbench.samplers.mean_reverting.MeanRevertingTask` adds and removes μ.
"""
from __future__ import annotations

import torch

from .base import Interpolant, check_positive
from .registry import register


@register("mean_reverting", "mr", "irsde")
class MeanReverting(Interpolant):
    r"""Mean-reverting (IR-SDE) deviation path with :math:`\theta_s = \theta + 1/(1-s)`:
    :math:`\bar\theta(s) = \theta s - \log(1-s)`, so :math:`\beta = a(t) = t\,e^{-\theta(1-t)}` and
    :math:`\alpha = \lambda\sqrt{1-a^2}`. The rate diverges at the noise end, which makes the terminal law exactly the
    stationary :math:`N(\mu, \lambda^2 I)` (a(0) = 0), as the restoration sampler assumes.

    Args:
        theta: the constant part θ ≥ 0 of the mean-reversion rate.
        lam: stationary noise level λ (:math:`\sigma_s^2 = 2\lambda^2\theta_s`).
    """

    def __init__(self, theta: float = 2.0, lam: float = 1.0):
        self.theta = check_positive("theta", theta, strict=False)
        self.lam = check_positive("lam", lam)

    def rate(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\theta_s = \theta + 1/(1-s)` at ``s = 1 − t`` (infinite at t = 0)."""
        return self.theta + 1.0 / t

    def theta_bar(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\bar\theta(s) = \theta s - \log(1-s)` at ``s = 1 − t``."""
        return self.theta * (1.0 - t) - torch.log(t)

    def beta(self, t):
        return t * torch.exp(-self.theta * (1.0 - t))

    def d_beta(self, t):
        return (1.0 + self.theta * t) * torch.exp(-self.theta * (1.0 - t))

    def alpha(self, t):
        b = self.beta(t)
        return self.lam * torch.sqrt((1.0 - b) * (1.0 + b))

    def d_alpha(self, t):
        # α α̇ = −λ² β β̇ (infinite α̇ at t = 1, where α = 0)
        return -(self.lam ** 2) * self.beta(t) * self.d_beta(t) / self.alpha(t)

    def gamma_dgamma(self, t):
        return torch.zeros_like(t)

    def _tensor_coefficients(self, t):
        c = super()._tensor_coefficients(t)
        sds = -(self.lam ** 2) * self.beta(t) * self.d_beta(t)  # σσ̇ in closed form (finite at t = 1)
        return type(c)(**{**c.__dict__, "sigma_dsigma": sds})

r"""EDM's variance-exploding path (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
Models"): :math:`x = x_1 + \sigma\,x_0` with the noise level linear in t,

.. math:: \sigma(t) = \sigma_{max}(1 - t),\qquad t\in[0, 1],

so an affine change of time maps our t-steppers onto EDM's σ-steppers (Heun in t *is* EDM's Heun in σ) and
σ = 0 at t = 1. The model was trained on :math:`\sigma \in [\sigma_{min}, \sigma_{max}]`, i.e.
:math:`t \le 1 - \sigma_{min}/\sigma_{max}` (:meth:`EDMVE.t_of_sigma`). The preconditioning of EDM Table 1
(:meth:`EDMVE.preconditioning`) turns a raw network :math:`F_\theta` into the denoiser
:math:`D(x;\sigma) = c_{skip}x + c_{out}F_\theta(c_{in}x, c_{noise})`.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

from .. import validation
from ..errors import ConfigError
from .base import Coefficients, Interpolant, check_positive
from .registry import register


@register("edm_ve", "karras_ve")
class EDMVE(Interpolant):
    r""":math:`\alpha = \sigma_{max}(1 - t)`, :math:`\beta = 1` (see the module docstring).

    Args:
        sigma_min, sigma_max: the trained noise range (EDM: 0.002, 80).
        sigma_data: the data std of the preconditioning (EDM: 0.5).
        rho: the exponent of EDM's σ-grid (7).
    """

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, sigma_data: float = 0.5, rho: float = 7.0):
        self.sigma_min = check_positive("sigma_min", sigma_min)
        self.sigma_max = check_positive("sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ConfigError("sigma_max", f"must be > sigma_min ({sigma_min}), got {sigma_max}")
        self.sigma_data = check_positive("sigma_data", sigma_data)
        self.rho = check_positive("rho", rho)

    def sigma(self, t):
        """:math:`\\sigma(t) = \\sigma_{max}(1-t)`."""
        return self.sigma_max * (1.0 - t)

    def t_of_sigma(self, sigma):
        """Our time of the noise level ``sigma``."""
        return 1.0 - sigma / self.sigma_max

    def karras_sigmas(self, steps: int) -> torch.Tensor:
        r"""EDM's grid (Eq. 5): :math:`\sigma_i = (\sigma_{max}^{1/\rho} + \tfrac{i}{N-1}(\sigma_{min}^{1/\rho} -
        \sigma_{max}^{1/\rho}))^\rho`, i < N, and :math:`\sigma_N = 0` (float64, ``steps + 1`` values)."""
        steps = validation.integer("steps", steps, 2, hint=" (EDM's σ-grid)")
        i = torch.arange(steps, dtype=torch.float64)
        r = 1.0 / self.rho
        s = (self.sigma_max ** r + i / (steps - 1) * (self.sigma_min ** r - self.sigma_max ** r)) ** self.rho
        return torch.cat([s, torch.zeros(1, dtype=torch.float64)])

    def preconditioning(self, sigma: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""EDM Table 1: :math:`c_{skip} = \sigma_d^2/(\sigma^2+\sigma_d^2)`, :math:`c_{out} = \sigma\sigma_d/\sqrt{\sigma^2+\sigma_d^2}`,
        :math:`c_{in} = 1/\sqrt{\sigma^2+\sigma_d^2}`, :math:`c_{noise} = \tfrac14\ln\sigma`."""
        sd2 = self.sigma_data ** 2
        r = torch.rsqrt(sigma * sigma + sd2)
        return sd2 * r * r, sigma * self.sigma_data * r, r, 0.25 * torch.log(sigma)

    def _tensor_coefficients(self, t: torch.Tensor) -> Coefficients:
        sig = self.sigma_max * (1.0 - t)
        one, zero = torch.ones_like(t), torch.zeros_like(t)
        d_sig = torch.full_like(t, -self.sigma_max)
        return Coefficients(sig, one, zero, d_sig, zero, zero, one, zero, sig, sig * d_sig)

    def alpha(self, t):
        return self.sigma_max * (1.0 - t)

    def beta(self, t):
        return torch.ones_like(t)

    def d_alpha(self, t):
        return torch.full_like(t, -self.sigma_max)

    def d_beta(self, t):
        return torch.zeros_like(t)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> torch.Tensor:
        r""":math:`\lambda = -\log\sigma` ⇒ :math:`t = 1 - e^{-\lambda}/\sigma_{max}`."""
        return 1.0 - torch.exp(-lam) / self.sigma_max

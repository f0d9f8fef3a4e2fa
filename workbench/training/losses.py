r"""Quadratic interpolant objectives (Albergo, Boffi & Vanden-Eijnden 2023, Sec. 2.2 / Thm. 2.7–2.8).

With :math:`x_t = \alpha x_0 + \beta x_1 + \gamma z` every quantity a model may predict is a conditional expectation,
hence the minimiser of a square loss against a per-sample target (``t`` from a :class:`TimeSampler`):

.. math::
    L_b(\hat b) &= E\,\big|\hat b(t, x_t) - (\dot\alpha x_0 + \dot\beta x_1 + \dot\gamma z)\big|^2 \quad(\text{velocity}) \\
    L_{\eta_z}(\hat\eta) &= E\,|\hat\eta(t, x_t) - z|^2 \quad(\text{latent denoiser } \eta_z,\ \gamma>0) \\
    L_s(\hat s) &= E\,\lambda(t)\,\big|\hat s(t, x_t) + \xi/\sigma\big|^2,\quad
        \xi = (\alpha x_0 + \gamma z)/\sigma,\ \lambda = \sigma^2 \ \text{by default} \quad(\text{score})

and likewise :math:`x_1` (data), :math:`\xi` (noise) and :math:`x_0` targets. The paper writes
:math:`L_b = E[\tfrac12|\hat b|^2 - (\partial_t I + \dot\gamma z)\cdot\hat b]` and
:math:`L_s = E[\tfrac12|\hat s|^2 + \gamma^{-1} z\cdot\hat s]`; these differ from the squares above by a
constant and a factor 1/2, so they have the same minimiser. For the mirror interpolant (no Gaussian base)
:math:`x_0 = x_1`. The loss is the mean over the batch and over coordinates.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import torch

from ..errors import ConfigError
from ..interpolants import Interpolant, canonical_prediction
from ..utils import expand_like
from .time_sampling import TimeSampler, get_time_sampler

WEIGHTINGS = ("auto", "none", "sigma2")


class InterpolantLoss:
    """The regression loss for a model predicting ``prediction`` along ``interpolant``.

    Args:
        interpolant: the path.
        prediction: ``velocity``, ``score``, ``x1``, ``noise``, ``x0`` or ``z``.
        time_sampling: a :class:`TimeSampler` or its registry name (``uniform``, ``logit_normal``, ``u_shaped``).
        weighting: ``auto`` (:math:`\\sigma^2` for the score, 1 otherwise), ``none`` or ``sigma2``.
    """

    def __init__(self, interpolant: Interpolant, prediction: str = "velocity",
                 time_sampling: Union[str, TimeSampler] = "uniform", weighting: str = "auto"):
        self.interpolant = interpolant
        self.prediction = canonical_prediction(prediction)
        self.time_sampler = get_time_sampler(time_sampling)
        if weighting not in WEIGHTINGS:
            raise ConfigError("weighting", f"got {weighting!r}; allowed values are: {', '.join(WEIGHTINGS)}")
        self.weighting = ("sigma2" if self.prediction == "score" else "none") if weighting == "auto" else weighting
        if self.prediction == "x0" and not interpolant.gaussian_base:
            raise ConfigError("prediction", f"'x0' is not defined for the {interpolant.name!r} interpolant")
        self.uses_z = not interpolant.gaussian_base or bool(
            (interpolant.gamma(torch.tensor([0.3, 0.7], dtype=torch.float64)) > 0).any())
        if self.prediction == "z" and not self.uses_z:
            raise ConfigError("prediction", f"'z' needs an interpolant with gamma > 0; {interpolant.name!r} has none")

    def targets(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, z: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``(x_t, target, weight)`` for times ``t`` of shape ``(B,)`` (weight None means 1)."""
        I = self.interpolant
        xt = I.interpolate(x0, x1, t, z)
        c = I.coefficients(t.to(x1.dtype))
        k = self.prediction
        if k == "velocity":
            target = I.time_derivative(x0, x1, t, z)
        elif k == "x1":
            target = x1
        elif k == "x0":
            target = x0
        elif k == "z":
            target = z
        else:
            sig = expand_like(c.sigma, x1)
            if I.gaussian_base:
                xi = expand_like(c.alpha, x1) * x0 + (expand_like(c.gamma, x1) * z if z is not None else 0.0)
                xi = xi / sig
            else:
                xi = z
            target = xi if k == "noise" else -xi / sig
        weight = expand_like(c.sigma, x1) ** 2 if self.weighting == "sigma2" else None
        return xt, target, weight

    def __call__(self, model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x1: torch.Tensor,
                 generator: Optional[torch.Generator] = None, x0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The Monte-Carlo loss on one batch.

        Args:
            model: ``model(x, t)``.
            x1: data batch ``(B, ...)``.
            generator: RNG for the base noise, the latent and the times (CPU generator).
            x0: base samples paired with ``x1`` (couplings, reflow); drawn from N(0, I) when None.
        """
        B = x1.shape[0]
        if not self.interpolant.gaussian_base:
            x0 = x1
        elif x0 is None:
            x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype).to(x1.device)
        z = torch.randn(x1.shape, generator=generator, dtype=x1.dtype).to(x1.device) if self.uses_z else None
        t = self.time_sampler.sample(B, generator, device=x1.device, dtype=x1.dtype)
        xt, target, weight = self.targets(x0, x1, t, z)
        err = (model(xt, t) - target) ** 2
        if weight is not None:
            err = err * weight
        return err.mean()


__all__ = ["InterpolantLoss", "WEIGHTINGS"]

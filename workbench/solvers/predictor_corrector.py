r"""Predictor–corrector sampling of the reverse SDE (Song et al. 2021, "Score-based generative modeling through SDEs", Alg. 1–3).

With :math:`r = a_t/a_{t'}` and :math:`g^2 = \sigma_t^2 - r^2\sigma_{t'}^2` the forward (noising) kernel from the
cleaner time :math:`t' > t` to :math:`t` (:math:`x_t = r x_{t'} + g z`), one step ``t → t'`` is

.. math::
    \text{Langevin corrector (}n\text{ times at } t\text{):}\quad
    \epsilon = 2r^2\Big(\rho\,\frac{\|z\|}{\|s\|}\Big)^2,\quad x \leftarrow x + \epsilon\,s(x, t) + \sqrt{2\epsilon}\,z,

.. math::
    \text{predictor:}\quad
    \begin{cases}
    \text{reverse diffusion:} & x' = (2 - r)x + g^2 s + g z\\
    \text{ancestral (DDPM posterior):} & x' = \dfrac{r\sigma_{t'}^2 x + g^2 a_{t'} D}{\sigma_t^2} + \dfrac{g\,\sigma_{t'}}{\sigma_t} z\\
    \text{euler (Euler–Maruyama):} & x' = x + \Delta t\,(b + \varepsilon s) + \sqrt{2\varepsilon\Delta t}\,z,\ \ \varepsilon = \sigma^2\dot\lambda
    \end{cases}

where :math:`\rho` is the signal-to-noise ratio ``snr`` and the norms are batch means of per-sample norms
(kept as tensors: no host synchronisation). The last predictor step adds no noise (score-SDE's ``denoise``).
Every model call counts: ``evals_per_step = 1 + n_corrector``. Where :math:`a_t = 0` (the noise end of the
linear path) the reverse-diffusion and Euler predictors are undefined and the ancestral step is used.
"""
from __future__ import annotations

import math

import torch

from .. import validation
from ..errors import ConfigError
from ..interpolants.base import check_positive
from .base import Exempt, FixedStepSolver, register

PREDICTORS = ("reverse_diffusion", "ancestral", "euler")


def _norm(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape[0], -1).norm(dim=-1).mean()


@register("pc", "predictor_corrector", "score_sde_pc")
class PredictorCorrector(FixedStepSolver):
    """Score-SDE predictor–corrector sampler.

    Args:
        predictor: ``reverse_diffusion`` (default), ``ancestral`` or ``euler``.
        snr: Langevin signal-to-noise ratio ρ (> 0; 0.16 in score-SDE for CIFAR-10).
        n_corrector: Langevin steps per time step (≥ 0; 0 gives the plain predictor).
    """

    stochastic = True
    needs_gaussian = True
    order = 1
    order_checks = Exempt("stochastic (reverse-diffusion predictor + Langevin corrector): its law",
                          "tests/solvers/test_multistep_orders.py::test_pc_sampler_matches_marginal_moments")

    def __init__(self, predictor: str = "reverse_diffusion", snr: float = 0.16, n_corrector: int = 1):
        if predictor not in PREDICTORS:
            raise ConfigError("predictor", f"got {predictor!r}; allowed values are: {', '.join(PREDICTORS)}")
        validation.integer("n_corrector", n_corrector, 0)
        self.predictor = predictor
        self.snr = check_positive("snr", snr)
        self.n_corrector = n_corrector
        self.evals_per_step = 1 + n_corrector

    def step(self, field, x, t, t_next, index, state, generator):
        I = field.interpolant
        c, cn = I.coefficients(t), I.coefficients(t_next)
        a, s, a2, s2 = float(c.signal), float(c.sigma), float(cn.signal), float(cn.sigma)
        last = index == state["n_steps"] - 1
        r = a / a2
        g2 = max(s * s - r * r * s2 * s2, 0.0)

        def randn():
            return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

        if s > 0:
            for _ in range(self.n_corrector):
                score = field.predict(x, t).score
                z = randn()
                eps = 2.0 * max(r * r, 1e-12) * (self.snr * _norm(z) / _norm(score)) ** 2
                x = x + eps * score + torch.sqrt(2.0 * eps) * z
        else:  # no Gaussian part left at t: nothing to correct; keep the budget honest by still evaluating
            for _ in range(self.n_corrector):
                field.predict(x, t)
        pred = field.predict(x, t)
        mode = self.predictor if a > 0 else "ancestral"
        if mode == "reverse_diffusion":
            x_new = (2.0 - r) * x + g2 * pred.score
            noise_scale = math.sqrt(g2)
        elif mode == "euler":
            h = t_next - t
            lam_dot = float(c.d_signal) / a - float(c.sigma_dsigma) / (s * s) if s > 0 else 0.0
            e = s * s * lam_dot
            x_new = x + h * (pred.velocity + e * pred.score)
            noise_scale = math.sqrt(max(2.0 * e * h, 0.0))
        else:
            if s > 0:
                x_new = (r * s2 * s2 / (s * s)) * x + (g2 * a2 / (s * s)) * pred.data
                noise_scale = math.sqrt(g2) * s2 / s
            else:
                x_new, noise_scale = (a2 / a) * x, 0.0
        if not last and noise_scale > 0:
            x_new = x_new + noise_scale * randn()
        return x_new, pred, 1

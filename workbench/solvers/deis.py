r"""DEIS: diffusion exponential integrator sampler (Zhang & Chen 2023), polynomial extrapolation in log-SNR.

The noise-prediction variation-of-constants formula is integrated exactly against the Lagrange polynomial
:math:`P_k` of degree k through the last k + 1 evaluations :math:`(\lambda_{i-j}, \hat\varepsilon_{i-j})`:

.. math::
    x_{t} = \frac{a_t}{a_s}x_s - \sigma_t\int_0^{h} e^{h-u}\,P_k(u)\,du
          = \frac{a_t}{a_s}x_s - \sigma_t\sum_{j=0}^{k} w_j\,\hat\varepsilon_{i-j},\qquad h = \lambda_t - \lambda_s,

(DEIS "ρAB" / diffusers' ``logrho`` variant; ``k = 0`` is DDIM). The weights come from 40-point
Gauss–Legendre quadrature once per grid. Local error :math:`O(h^{k+2})`, global order k + 1.
Warm-up uses fewer points; steps touching λ = ±∞ use the first-order DDIM step in data form.
"""
from __future__ import annotations

from .base import register
from .dpm_solver import _Multistep, lagrange_step
from .log_snr import check_kind, check_order, ddim_coefficients, multistep_orders


@register("deis", "deis_ab")
class DEIS(_Multistep):
    r"""DEIS-k (k = polynomial degree of the ε extrapolation, order k + 1); 1 NFE/step.

    Args:
        order: polynomial degree k ∈ {1, 2, 3} (uses k + 1 points).
        predict: ``"noise"`` (DEIS) or ``"data"`` (the same integrator on D).
        lower_order_final: with fewer than 15 steps lower the order of the last two steps (as DPM-Solver++).
    """

    evals_per_step = 1

    def __init__(self, order: int = 2, predict: str = "noise", lower_order_final: bool = True):
        self.k = check_order(order, (1, 2, 3))
        self.order = self.k + 1
        self.kind = check_kind(predict)
        self.lower_order_final = bool(lower_order_final)
        self._params = {"order": order, "predict": predict, "lower_order_final": lower_order_final}

    def plan(self, tab):
        plans = []
        for i, n_pts in enumerate(multistep_orders(tab, self.k + 1, self.lower_order_final, "dpm")):
            if n_pts == 1 or not (tab.finite(i) and tab.finite(i + 1)):
                cx, cd = ddim_coefficients(tab, i, i + 1)
                plans.append((1, cx, [(0, cd)], "data"))
            else:
                cx, terms = lagrange_step(tab, i, i + 1, list(range(n_pts)), self.kind)
                plans.append((n_pts, cx, terms, self.kind))
        return plans

r"""DEIS: diffusion exponential integrator sampler (Zhang & Chen 2023), polynomial extrapolation in log-SNR.

The noise-prediction variation-of-constants formula is integrated exactly against the Lagrange polynomial
:math:`P` through the last ``order`` evaluations :math:`(\lambda_{i-j}, \hat\varepsilon_{i-j})`:

.. math::
    x_{t} = \frac{a_t}{a_s}x_s - \sigma_t\int_0^{h} e^{h-u}\,P(u)\,du
          = \frac{a_t}{a_s}x_s - \sigma_t\sum_{j} w_j\,\hat\varepsilon_{i-j},\qquad h = \lambda_t - \lambda_s,

(DEIS "ρAB" / diffusers' ``logrho`` variant; one point is DDIM). The weights come from 40-point
Gauss–Legendre quadrature once per grid. Local error :math:`O(h^{k+1})` with ``k`` points: global order ``k``.
On a grid reaching a = 0 or σ = 0 the steps are the Adams form of :func:`~.log_snr.variable_step`
(DEIS's own ρAB in :math:`\rho = \sigma/a` on the data half).
"""
from __future__ import annotations

from .base import OrderCheck, register
from .dpm_solver import _Multistep, dpm_multistep_plan
from .log_snr import check_kind, check_order, check_variable


@register("deis", "deis_ab")
class DEIS(_Multistep):
    r"""DEIS of global order 1–4 (the polynomial goes through ``order`` points; degree ``order - 1``); 1 NFE/step.

    Args:
        order: the global order, i.e. the number of outputs extrapolated (1 is DDIM).
        predict: ``"noise"`` (DEIS) or ``"data"`` (the same integrator on D).
        lower_order_final: with fewer than 15 steps lower the order of the last two steps (as DPM-Solver++).
        variable: ``"auto"`` or ``"log_snr"``, as for :class:`~.dpm_solver.DPMSolverPP`.
    """

    evals_per_step = 1
    order_checks = (OrderCheck({"order": 1}), OrderCheck({"order": 2}), OrderCheck(),
                    OrderCheck({"order": 4}, steps=(128, 256, 512), paths=("linear",)),
                    OrderCheck({"order": 4}, paths=("vp",)),
                    OrderCheck({"order": 4}, paths=("sb",), steps=(1024, 2048, 4096)),
                    OrderCheck(paths=("one_sided",)), OrderCheck(paths=("trig",), steps=(1024, 2048, 4096)),
                    OrderCheck({"order": 4}, paths=("one_sided",)),
                    OrderCheck({"order": 4}, paths=("trig",), steps=(256, 512, 1024)))

    def __init__(self, order: int = 3, predict: str = "noise", lower_order_final: bool = True, variable: str = "auto"):
        self.variable = check_variable(variable)
        self.order = check_order(order, (1, 2, 3, 4))
        self.predict = self.kind = check_kind(predict)
        self.lower_order_final = bool(lower_order_final)

    def coefficients(self, tab, orders):
        return dpm_multistep_plan(tab, orders, self.kind, second_order="lagrange")

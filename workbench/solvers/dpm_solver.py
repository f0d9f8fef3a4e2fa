r"""DPM-Solver++ (multistep, data prediction) and single-step DPM-Solver-2/3 (Lu et al. 2022a, 2022b).

Multistep update from :math:`\lambda_s` to :math:`\lambda_t` (:math:`h = \lambda_t - \lambda_s`,
:math:`\varphi_1 = e^{-h} - 1`), with :math:`D_0, D_{-1}, D_{-2}` the last data predictions:

.. math::
    \text{2M (Lu et al. 2022b, Alg. 2, "midpoint"):}\quad
    x_t = \frac{\sigma_t}{\sigma_s}x_s - a_t\varphi_1 D_0 - \tfrac12 a_t\varphi_1 \frac{D_0 - D_{-1}}{r_0},
    \quad r_0 = \frac{\lambda_s - \lambda_{s-1}}{h};

.. math::
    \text{3M:}\quad x_t = \frac{\sigma_t}{\sigma_s}x_s + a_t\int_0^h e^{-(h-u)}P_2(u)\,du,

where :math:`P_2` is the quadratic through the last three :math:`(\lambda_j - \lambda_s, D_j)` (its integral is exact,
so the update is third order). ``third_order="diffusers"`` instead uses the published finite-difference
form :math:`+a_t\varphi_2 D_1 - a_t\varphi_3 D_2` with :math:`D_2 = (D_{1,0}-D_{1,1})/(r_0+r_1)` of
dpm-solver / diffusers, whose :math:`D_2` weight is half the exact one (we measure ≈ order 2 for it; see tests).

With ``predict="noise"`` the same formulas run on :math:`\hat\varepsilon` in the mirrored form
(:math:`a\leftrightarrow\sigma`, :math:`h\to-h`), i.e. the original multistep DPM-Solver.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import torch

from .base import OrderCheck, register
from .log_snr import (KIND_NAMES, LogSNRSolver, LogSNRTable, check_choice, check_kind, check_order, ddim_coefficients,
                      check_variable, exp_integrator_weights, fold_correctors, region_jacobian, region_log_snr,
                      region_variable, restart_terms, split_step, step_points, step_region, variable_step)
from .plan import PlanBuilder

#: A step plan: (order, coefficient of x, [(history lag j, coefficient of m_{i-j}), ...], kind of m).
Plan = Tuple[int, float, List[Tuple[int, float]], str]


def _ratio_and_scale(tab: LogSNRTable, i: int, j: int, kind: str) -> Tuple[float, float, float]:
    """(c_x, Q_t, sign): x_j = c_x x_i + sign * Q_t * Σ w m for data (σ ratio, a_t, +) or noise (a ratio, σ_t, −)."""
    if kind == "data":
        return tab.sigma[j] / tab.sigma[i], tab.a[j], 1.0
    return tab.a[j] / tab.a[i], tab.sigma[j], -1.0


def lagrange_step(tab: LogSNRTable, i: int, j: int, lags: List[int], kind: str) -> Tuple[float, List[Tuple[int, float]]]:
    r"""Exponential-integrator step ``i → j`` with the Lagrange polynomial through the outputs at ``i - lag``."""
    h = tab.lam[j] - tab.lam[i]
    nodes = [tab.lam[i - g] - tab.lam[i] for g in lags]
    cx, q, sgn = _ratio_and_scale(tab, i, j, kind)
    w = exp_integrator_weights(h, nodes, kind)
    return cx, [(g, sgn * q * wg) for g, wg in zip(lags, w)]


def dpm_multistep_plan(tab: LogSNRTable, orders: List[int], kind: str, third_order: str = "lagrange",
                       second_order: str = "midpoint") -> List[Plan]:
    """Coefficient plan of DPM-Solver(++) multistep for the given per-step orders (DEIS: every order ``lagrange``)."""
    plans: List[Plan] = []
    for i, k in enumerate(orders):
        if k == 1 or not (tab.finite(i) and tab.finite(i + 1)):
            cx, cd = ddim_coefficients(tab, i, i + 1)
            plans.append((1, cx, [(0, cd)], "data"))
            continue
        if second_order == "lagrange" or (k > 2 and third_order == "lagrange"):
            cxl, terms = lagrange_step(tab, i, i + 1, list(range(k)), kind)
            plans.append((k, cxl, terms, kind))
            continue
        h = tab.lam[i + 1] - tab.lam[i]
        cx, q, sgn = _ratio_and_scale(tab, i, i + 1, kind)
        hh = -h if kind == "data" else h
        phi1 = math.expm1(hh)
        if k == 2:
            r0 = (tab.lam[i] - tab.lam[i - 1]) / h
            # x = cx x - sgn*... written for both kinds: data: -a φ1 (D0 + (D0-D1)/(2 r0)); noise: -σ(e^h-1)(...)
            c0 = -q * phi1 * (1.0 + 0.5 / r0)
            c1 = q * phi1 * 0.5 / r0
            plans.append((2, cx, [(0, c0), (1, c1)], kind))
        else:  # the published 3M form
            r0 = (tab.lam[i] - tab.lam[i - 1]) / h
            r1 = (tab.lam[i - 1] - tab.lam[i - 2]) / h
            if kind == "data":
                phi2, phi3 = phi1 / h + 1.0, (phi1 / h + 1.0) / h - 0.5
                a1, a2 = q * phi2, -q * phi3  # + a φ2 D1 − a φ3 D2
            else:
                phi2, phi3 = phi1 / h - 1.0, (phi1 / h - 1.0) / h - 0.5
                a1, a2 = -q * phi2, -q * phi3
            # D1 = D1_0 + r0/(r0+r1)(D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0+r1); expand in m0, m1, m2.
            def lin(m0: float, m1: float, m2: float) -> float:
                d10, d11 = (m0 - m1) / r0, (m1 - m2) / r1
                d1 = d10 + r0 / (r0 + r1) * (d10 - d11)
                d2 = (d10 - d11) / (r0 + r1)
                return -q * phi1 * m0 + a1 * d1 + a2 * d2

            plans.append((3, cx, [(0, lin(1, 0, 0)), (1, lin(0, 1, 0)), (2, lin(0, 0, 1))], kind))
    return plans


class _Multistep(LogSNRSolver):
    """A linear multistep log-SNR sampler given by its per-step coefficients (:meth:`coefficients`)."""

    kind = "data"
    lower_order_final = True

    def coefficients(self, tab: LogSNRTable, orders: List[int]) -> List[Plan]:
        """``(order, c_x, [(lag, c)], kind)`` per step on a grid with finite λ at both ends (override)."""
        raise NotImplementedError

    def recurrence(self, tab):
        points = step_points(tab, self.order, self.lower_order_final, "dpm", self.split(tab))
        if self.split(tab):
            # Adams steps in u/ρ; while the history is short (k < order points) a free Adams–Moulton corrector through
            # the next evaluation lifts the warm-up step to local order k + 2, which the start out of a = 0 needs
            preds, corrs = [], []
            for i, k in enumerate(points):
                cx, terms = split_step(tab, i, k)
                preds.append((k, cx, terms))
                warm = k < self.order and i + 1 < self.order and i + 1 < len(points) and not (
                    tab.a[i] == 0.0 and tab.sigma[i + 1] == 0.0)
                restart = restart_terms(tab, i + 1) if warm and i + 2 == self.order else None
                if restart is not None:  # the first `order` outputs re-integrate the start (Newton–Cotes)
                    corrs.append((None, restart))
                else:
                    corrs.append(variable_step(tab, i, [-1] + list(range(k)), step_region(tab, i)) if warm else None)
            return [(min(o, self.order), cx, terms) for o, cx, terms in fold_correctors(preds, corrs)]
        return [(order, cx, [(g, c, kind) for g, c in terms])
                for order, cx, terms, kind in self.coefficients(tab, points)]


@register("dpm_solver_pp", "dpmpp", "dpm_solver_multistep", "dpm_multistep")
class DPMSolverPP(_Multistep):
    r"""DPM-Solver++ multistep (data prediction) of order 1–3; 1 NFE/step.

    Args:
        order: 1 (DDIM), 2 (2M) or 3 (3M): the global order (the number of outputs each step extrapolates).
        predict: ``"data"`` (DPM-Solver++) or ``"noise"`` (multistep DPM-Solver).
        lower_order_final: with fewer than 15 steps use order 1 on the last and ≤ 2 on the second-to-last step
            (as the paper and diffusers do; it costs no asymptotic order).
        third_order: ``"lagrange"`` (exact quadratic integral) or ``"diffusers"`` (the published form).
        variable: ``"auto"``: on a grid reaching a = 0 or σ = 0 the steps are the Adams form of
            :func:`~.log_snr.variable_step` (keeps the order; ``predict`` then does not matter), with a free corrector on
            the warm-up steps; ``"log_snr"``: λ-polynomials everywhere (diffusers' loop).
    """

    evals_per_step = 1
    order_checks = (OrderCheck({"order": 1}), OrderCheck({"order": 3, "predict": "noise"}))

    def __init__(self, order: int = 2, predict: str = "data", lower_order_final: bool = True,
                 third_order: str = "lagrange", variable: str = "auto"):
        self.variable = check_variable(variable)
        self.order = check_order(order, (1, 2, 3))
        self.predict = self.kind = check_kind(predict)
        self.lower_order_final = bool(lower_order_final)
        self.third_order = check_choice(third_order, ("lagrange", "diffusers"), "third_order")

    def coefficients(self, tab, orders):
        return dpm_multistep_plan(tab, orders, self.kind, self.third_order)


@register("dpmpp_2m", "dpm++2m", "dpmpp2m")
class DPMSolverPP2M(DPMSolverPP):
    """DPM-Solver++(2M): :class:`DPMSolverPP` with ``order=2``."""

    order_checks = (OrderCheck(paths=("linear", "vp", "trig", "one_sided")), OrderCheck({"predict": "noise"}),
                    OrderCheck(paths=("sb",), steps=(512, 1024, 2048)))

    def __init__(self, predict: str = "data", lower_order_final: bool = True, variable: str = "auto"):
        super().__init__(2, predict, lower_order_final, variable=variable)


@register("dpmpp_3m", "dpm++3m", "dpmpp3m")
class DPMSolverPP3M(DPMSolverPP):
    """DPM-Solver++(3M): :class:`DPMSolverPP` with ``order=3``."""

    # trig: local slopes 2.80, 2.89, 2.95, 2.97 from 256→512 to 2048→4096 steps, so fitted on 1024-4096
    order_checks = (OrderCheck(), OrderCheck({"lower_order_final": False}),
                    OrderCheck(paths=("sb",), steps=(1024, 2048, 4096)), OrderCheck(paths=("one_sided",)),
                    OrderCheck(paths=("trig",), steps=(1024, 2048, 4096)))

    def __init__(self, predict: str = "data", lower_order_final: bool = True, third_order: str = "lagrange",
                 variable: str = "auto"):
        super().__init__(3, predict, lower_order_final, third_order, variable)


@register("dpm_solver_singlestep", "dpm_singlestep")
class DPMSolverSinglestep(LogSNRSolver):
    r"""Single-step DPM-Solver-k (Lu et al. 2022a, Alg. 1/2; data-prediction DPM-Solver++(kS) by default).

    Intermediate points at :math:`\lambda_s + r h` with :math:`r = \tfrac12` (k = 2) or
    :math:`r_1 = \tfrac13, r_2 = \tfrac23` (k = 3); every stage is the exponential integrator of the linear
    interpolant through the available stage outputs (exact φ-integrals):

    .. math::
        k=2:\ u = \mathrm{EI}_{s\to s_1}[D_s],\ x_t = \mathrm{EI}_{s\to t}[P_1(D_s, D_u)];\qquad
        k=3:\ u_1 = \mathrm{EI}[D_s],\ u_2 = \mathrm{EI}_{s\to s_2}[P_1(D_s, D_{u_1})],\ x_t = \mathrm{EI}_{s\to t}[P_1(D_s, D_{u_2})].

    On a grid reaching λ = ±∞ (σ = 0 or a = 0 at an end) every step is instead the k-stage RK method in the variable that
    is smooth at that end (:meth:`_split_step`), which keeps the order k.

    Args:
        order: 2 or 3 (``k`` NFE per step).
        predict: ``"data"`` (DPM-Solver++(kS)) or ``"noise"`` (DPM-Solver-k).
    """

    order_checks = (OrderCheck({"order": 1}),)

    def __init__(self, order: int = 2, predict: str = "data", variable: str = "auto"):
        self.order = check_order(order, (1, 2, 3))
        self.evals_per_step = self.order
        self.predict = self.kind = check_kind(predict)
        self.variable = check_variable(variable)

    def build_plan(self, interpolant, grid):
        I, k, ts = interpolant, self.order, list(grid)
        tab = LogSNRTable.build(I, ts)
        b = PlanBuilder(ts, repr(self))
        kind = KIND_NAMES[self.kind]
        if self.split(tab):
            for i in range(len(ts) - 1):
                self._split_step(b, I, tab, i)
            return b.build()
        rs = {1: [], 2: [0.5], 3: [1.0 / 3.0, 2.0 / 3.0]}[k]
        inner = [i for i in range(len(ts) - 1) if tab.finite(i) and tab.finite(i + 1)]
        lam = torch.tensor([tab.lam[i] + r * (tab.lam[i + 1] - tab.lam[i]) for i in inner for r in rs],
                           dtype=torch.float64)
        t_all = I.t_from_log_snr(lam, ts[0], ts[-1]).tolist() if rs and inner else []
        stage_t = {i: t_all[j * (k - 1):(j + 1) * (k - 1)] for j, i in enumerate(inner)}
        for i in range(len(ts) - 1):
            if i not in stage_t:  # a step touching λ = ±∞ in the λ form: k first-order sub-steps
                self._ddim_substeps(b, I, tab, i)
                continue
            # the exact λ of the stage points from their times (consistent with the model's time)
            sub = LogSNRTable.build(I, [ts[i], *stage_t[i], ts[i + 1]])
            start, outs = b.current, []
            for s in range(k):  # evaluate at stage point s, then form point s + 1 (or x_t)
                outs.append(b.evaluate(sub.t[s]))
                cx, terms = lagrange_step(sub, 0, s + 1, [0] if s == 0 else [0, -s], self.kind)  # EI from point 0
                b.advance([("x", start, cx)] + [(kind, outs[-g], c) for g, c in terms],
                          step=i if s == k - 1 else -1, order=k)
        return b.build()

    def _split_step(self, b: PlanBuilder, I, tab: LogSNRTable, i: int) -> None:
        r"""Step ``i`` of a grid reaching λ = ±∞: the ``k``-stage explicit RK method (Euler, midpoint, Heun-3; every
        stage strictly inside the step) on :math:`dz/du = D` with :math:`z = x/\sigma` (data region) or
        :math:`dy/d\rho = \hat\varepsilon` with :math:`y = x/a` (noise region), see :func:`~.log_snr.variable_step`."""
        k, start = self.order, b.current
        if tab.a[i] == 0.0 and tab.sigma[i + 1] == 0.0:  # one step across
            self._ddim_substeps(b, I, tab, i)
            return
        c, A, w = _STAGE_TABLEAUX[k]
        region = step_region(tab, i)
        v0, v1 = region_variable(tab, i, region), region_variable(tab, i + 1, region)
        dv = v1 - v0
        kind = "x1" if region == "data" else "noise"
        lam = [region_log_snr(tab, v0 + cs * dv, region) for cs in c[1:]]
        t_stage = [tab.t[i]] + (I.t_from_log_snr(torch.tensor(lam, dtype=torch.float64), tab.t[i], tab.t[i + 1])
                                .tolist() if lam else [])

        def scale(t: float) -> float:
            co = I.coefficients(float(t))
            return float(co.sigma if region == "data" else co.signal)

        s0, outs = scale(tab.t[i]), []
        for s in range(k):
            outs.append(b.evaluate(t_stage[s]))
            last = s == k - 1
            weights = w if last else A[s + 1]
            ss = scale(tab.t[i + 1] if last else t_stage[s + 1])
            b.advance([("x", start, ss / s0)] + [(kind, o, ss * dv * wm * region_jacobian(tab, v0 + cs * dv, region))
                                                 for o, wm, cs in zip(outs, weights, c)],
                      step=i if last else -1, order=k)

    def _ddim_substeps(self, b: PlanBuilder, I, tab: LogSNRTable, i: int) -> None:
        """Step ``i`` as ``k`` first-order DDIM sub-steps uniform in t (order 1)."""
        k = self.order
        sub_t = torch.linspace(tab.t[i], tab.t[i + 1], k + 1, dtype=torch.float64).tolist()
        sub_t[0], sub_t[-1] = tab.t[i], tab.t[i + 1]
        sub = LogSNRTable.build(I, sub_t)
        for s in range(k):
            e = b.evaluate(sub.t[s])
            cx, cd = ddim_coefficients(sub, s, s + 1)
            b.advance([("x", e, cx), ("x1", e, cd)], step=i if s == k - 1 else -1, order=1)


#: Explicit RK tableaux ``(c, a, w)`` of the single-step samplers on split-form grids (every stage c < 1, so no stage
#: evaluates at σ = 0): Euler, the midpoint rule, Heun's third-order method.
_STAGE_TABLEAUX = {
    1: ((0.0,), ((),), (1.0,)),
    2: ((0.0, 0.5), ((), (0.5,)), (0.0, 1.0)),
    3: ((0.0, 1.0 / 3.0, 2.0 / 3.0), ((), (1.0 / 3.0,), (0.0, 2.0 / 3.0)), (0.25, 0.0, 0.75)),
}


@register("dpm_solver_2", "dpm2", "dpmpp_2s")
class DPMSolver2(DPMSolverSinglestep):
    """Single-step DPM-Solver-2 (2 NFE/step)."""

    order_checks = (OrderCheck(paths=("linear", "vp", "trig", "one_sided")),
                    OrderCheck(paths=("sb",), steps=(128, 256, 512, 1024)))

    def __init__(self, predict: str = "data", variable: str = "auto"):
        super().__init__(2, predict, variable)


@register("dpm_solver_3", "dpm3", "dpmpp_3s")
class DPMSolver3(DPMSolverSinglestep):
    """Single-step DPM-Solver-3 (3 NFE/step)."""

    order_checks = (OrderCheck(paths=("linear", "vp", "trig", "one_sided")), OrderCheck({"predict": "noise"}),
                    OrderCheck(paths=("sb",), steps=(128, 256, 512, 1024)))

    def __init__(self, predict: str = "data", variable: str = "auto"):
        super().__init__(3, predict, variable)

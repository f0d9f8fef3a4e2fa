r"""UniPC: unified predictor–corrector with B(h) (Zhao et al. 2023, Alg. 2/3 and eqs. 8–10).

Data-prediction form (:math:`h = \lambda_t - \lambda_s`, :math:`h_\varphi = e^{-h} - 1`, :math:`r_k = (\lambda_{s_k}-\lambda_s)/h`,
:math:`\Delta_k = (D_{s_k} - D_s)/r_k`):

.. math::
    \text{UniP-}p:\ \tilde x_t = \frac{\sigma_t}{\sigma_s}x_s - a_t h_\varphi D_s - a_t B(h)\sum_{k=1}^{p-1}\rho^p_k\Delta_k,
    \qquad
    \text{UniC-}p:\ x_t^c = \frac{\sigma_t}{\sigma_s}x_s - a_t h_\varphi D_s - a_t B(h)\Big(\sum_{k=1}^{p-1}\rho^c_k\Delta_k + \rho^c_p (D_t - D_s)\Big),

with :math:`\rho` solving :math:`R_p(h)\rho = g_p(h)/B(h)` (:math:`R_{ik} = r_k^{i-1}`, :math:`g_i = i!\,\varphi_{i+1}(h)\,h`),
:math:`B(h) = h` (``bh1``) or :math:`e^{h}-1` (``bh2``), and the simplified :math:`\rho = \tfrac12` for UniP-2 / UniC-1.
:math:`D_t` is the model evaluated at the *predicted* :math:`\tilde x_t`, which is also the next step's
evaluation, so the corrector costs no extra NFE; the order rises from p to p + 1. The last state is the
predictor's (no evaluation follows it). A run applies corrector and next predictor as one linear update
(:meth:`UniPC.recurrence`); tests/solvers/oracles.py applies them separately (the reference the plan is checked with).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

from ..errors import ConfigError
from .base import OrderCheck, register
from .log_snr import (KIND_NAMES, LogSNRSolver, LogSNRTable, check_choice, check_kind, check_order, check_variable,
                      ddim_coefficients, fold_correctors, restart_terms, split_step, step_points, step_region,
                      usable_points, variable_step)

Terms = List[Tuple[int, float]]


def unipc_coefficients(tab: LogSNRTable, i: int, order: int, kind: str, variant: str,
                       corrector: bool) -> Tuple[float, Terms, float]:
    """Linear coefficients of UniP-``order`` (``corrector=False``) or UniC-``order`` for the step ``i → i+1``.

    Returns ``(c_x, [(lag, c)], c_new)``: ``x = c_x x_i + Σ c m_{i-lag} + c_new m_{i+1}`` (``c_new = 0`` for UniP).
    """
    h = tab.lam[i + 1] - tab.lam[i]
    if kind == "data":
        cx, q, hh = tab.sigma[i + 1] / tab.sigma[i], tab.a[i + 1], -h
    else:
        cx, q, hh = tab.a[i + 1] / tab.a[i], tab.sigma[i + 1], h
    h_phi_1 = math.expm1(hh)
    bh = hh if variant == "bh1" else math.expm1(hh)
    rks = [(tab.lam[i - k] - tab.lam[i]) / h for k in range(1, order)] + [1.0]
    R, b = [], []
    h_phi_k, fact = h_phi_1 / hh - 1.0, 1
    for j in range(1, order + 1):
        R.append([r ** (j - 1) for r in rks])
        b.append(h_phi_k * fact / bh)
        fact *= j + 1
        h_phi_k = h_phi_k / hh - 1.0 / fact
    R_, b_ = np.array(R), np.array(b)
    coef, c_new, rhos = {0: -q * h_phi_1}, 0.0, [0.0] * order
    if corrector:
        rhos = [0.5] if order == 1 else list(np.linalg.solve(R_, b_))
        c_new = -q * bh * rhos[-1]
    elif order >= 2:
        rhos = [0.5] if order == 2 else list(np.linalg.solve(R_[:-1, :-1], b_[:-1]))
    for k in range(1, order):  # Δ_k = (m_{i-k} - m_i)/r_k
        c = -q * bh * rhos[k - 1] / rks[k - 1]
        coef[k] = coef.get(k, 0.0) + c
        coef[0] -= c
    coef[0] -= c_new
    return cx, sorted(coef.items()), c_new


@register("unipc", "uni_pc")
class UniPC(LogSNRSolver):
    r"""UniPC: UniP-p predictor + UniC-p corrector (global order p + 1 with the corrector, p without); 1 NFE/step.

    Args:
        order: the global order (2–4 with the corrector, 1–3 without); default 3 (diffusers' ``solver_order=2``).
        history: alternatively the predictor's number of points p (diffusers' ``solver_order``); give one of the two.
        corrector: apply UniC (free: it reuses the next step's evaluation).
        variant: ``"bh2"`` (:math:`B(h) = e^h - 1`, the default of the paper for few steps) or ``"bh1"``.
        predict: ``"data"`` (default) or ``"noise"``.
        lower_order_final: cap the predictor's points by the number of steps left (as diffusers does; it lowers the
            global order by one, so it is off by default).
        variable: ``"auto"`` or ``"log_snr"``, as for :class:`~.dpm_solver.DPMSolverPP`.

    On a grid reaching a = 0 or σ = 0 predictor and corrector are the Adams–Bashforth / Adams–Moulton forms of
    :func:`~.log_snr.variable_step` (p points, resp. p points and the new one).
    """

    evals_per_step = 1
    # order 4: pre-asymptotic (super-convergent) below 128 steps on linear; on vp the multistep warm-up's tiny
    # O(h^2 e^{2λ(0)}) start error appears below 1e-8 (512 steps), so vp is fitted on 64-256. On sb (σ = √(1−t))
    # the corrector's error has a large next-order term: local slopes of the default (order 3) are 2.28, 2.67, 2.84,
    # 2.92 from 512→1024 to 4096→8192 steps (the gap to 3 halving per doubling), of order 2 1.80, 1.90, 1.95, 1.97;
    # without the corrector 1.98–1.99 throughout — so sb is fitted where the slope has settled. On trig order 4 is
    # super-convergent up to 512 steps (4.57 on 256→512), then 3.82, 3.93, 3.97; the default 3.18, 3.10, 3.06, 3.03
    order_checks = (OrderCheck({"order": 2}), OrderCheck(), OrderCheck({"order": 4}, steps=(128, 256, 512)),
                    OrderCheck({"order": 2, "corrector": False}), OrderCheck({"predict": "noise"}),
                    OrderCheck(paths=("sb",), steps=(2048, 4096, 8192)),
                    OrderCheck({"order": 2}, paths=("sb",), steps=(1024, 2048, 4096)),
                    OrderCheck({"order": 2, "corrector": False}, paths=("sb",), steps=(256, 512, 1024)),
                    OrderCheck(paths=("one_sided",)), OrderCheck(paths=("trig",), steps=(512, 1024, 2048)),
                    OrderCheck({"order": 2}, paths=("one_sided", "trig"), steps=(128, 256, 512)),
                    OrderCheck({"order": 4}, paths=("one_sided",), steps=(128, 256, 512)),
                    OrderCheck({"order": 4}, paths=("trig",), steps=(1024, 2048, 4096)))

    def __init__(self, order: Optional[int] = None, history: Optional[int] = None, corrector: bool = True,
                 variant: str = "bh2", predict: str = "data", lower_order_final: bool = False, variable: str = "auto"):
        self.variable = check_variable(variable)
        self.corrector = bool(corrector)
        extra = 1 if self.corrector else 0
        if order is None and history is None:
            order = 3 if self.corrector else 2
        if history is None:
            self.order = check_order(order, (2, 3, 4) if self.corrector else (1, 2, 3))
            self.p = self.history = self.order - extra
        else:
            self.p = self.history = check_order(history, (1, 2, 3), "history")
            if order is not None and order != self.p + extra:
                raise ConfigError("order", f"order={order!r} and history={history!r} disagree (order = history "
                                           f"{'+ 1 with' if self.corrector else 'without'} the corrector); give one")
            self.order = self.p + extra
        self.variant = check_choice(variant, ("bh1", "bh2"), "variant")
        self.predict = self.kind = check_kind(predict)
        self.lower_order_final = bool(lower_order_final)

    def predictor_corrector(self, tab: LogSNRTable):
        """Per step: ``(points, c_x, [(lag, c, kind)])`` of UniP and ``(c_x, [(lag, c, kind)])`` of UniC (or None)."""
        split = self.split(tab)
        points = step_points(tab, self.p, self.lower_order_final, "unipc", split)
        preds, corrs = [], []
        for i, k in enumerate(points):
            if split:
                if tab.a[i] == 0.0 and tab.sigma[i + 1] == 0.0:
                    cx, terms = split_step(tab, i, 1)
                    preds.append((1, cx, terms))
                    corrs.append(None)
                    continue
                region = step_region(tab, i)
                if self.corrector and i == len(points) - 1:  # no corrector follows the last step: one more point
                    k = min(self.order, usable_points(tab, i, region))
                cx, terms = variable_step(tab, i, list(range(k)), region)
                preds.append((k, cx, terms))
                restart = restart_terms(tab, i + 1) if self.corrector and i == self.p - 1 else None
                if restart is not None:  # the first p + 1 outputs re-integrate the start out of a = 0
                    corrs.append((None, restart))
                else:
                    corrs.append(variable_step(tab, i, [-1] + list(range(k)), region) if self.corrector else None)
                continue
            if not (tab.finite(i) and tab.finite(i + 1)):
                cx, cd = ddim_coefficients(tab, i, i + 1)
                preds.append((1, cx, [(0, cd, "x1")]))
                corrs.append(None)
                continue
            kind = KIND_NAMES[self.kind]
            cx, terms, _ = unipc_coefficients(tab, i, k, self.kind, self.variant, False)
            preds.append((k, cx, [(g, c, kind) for g, c in terms]))
            if self.corrector:
                cxc, cterms, c_new = unipc_coefficients(tab, i, k, self.kind, self.variant, True)
                corrs.append((cxc, [(-1, c_new, kind)] + [(g, c, kind) for g, c in cterms]))
            else:
                corrs.append(None)
        return preds, corrs

    def recurrence(self, tab):
        preds, corrs = self.predictor_corrector(tab)
        return fold_correctors(preds, corrs)

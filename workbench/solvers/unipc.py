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
(:meth:`UniPC.linear_steps`); ``fused = False`` runs them separately (the reference the tests compare with).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConfigError
from .base import Step, register
from .log_snr import (LogSNRSolver, LogSNRTable, check_kind, check_order, combine, ddim_coefficients,
                      model_output, multistep_orders)

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
    coef = {0: -q * h_phi_1}
    c_new = 0.0
    if corrector:
        rhos = [0.5] if order == 1 else list(np.linalg.solve(R_, b_))
        for k in range(1, order):  # Δ_k = (m_{i-k} - m_i)/r_k
            c = -q * bh * rhos[k - 1] / rks[k - 1]
            coef[k] = coef.get(k, 0.0) + c
            coef[0] -= c
        c_new = -q * bh * rhos[-1]
        coef[0] += q * bh * rhos[-1]
    elif order >= 2:
        rhos = [0.5] if order == 2 else list(np.linalg.solve(R_[:-1, :-1], b_[:-1]))
        for k in range(1, order):
            c = -q * bh * rhos[k - 1] / rks[k - 1]
            coef[k] = coef.get(k, 0.0) + c
            coef[0] -= c
    return cx, sorted(coef.items()), c_new


@register("unipc", "uni_pc")
class UniPC(LogSNRSolver):
    r"""UniPC-p: UniP-p predictor + UniC-p corrector (order p + 1 with the corrector); 1 NFE/step.

    Args:
        order: predictor order p ∈ {1, 2, 3}.
        corrector: apply UniC (free: it reuses the next step's evaluation).
        variant: ``"bh2"`` (:math:`B(h) = e^h - 1`, the default of the paper for few steps) or ``"bh1"``.
        predict: ``"data"`` (default) or ``"noise"``.
        lower_order_final: cap the order by the number of steps left (as in the reference code).
    """

    evals_per_step = 1

    def __init__(self, order: int = 2, corrector: bool = True, variant: str = "bh2", predict: str = "data",
                 lower_order_final: bool = True):
        self.p = check_order(order, (1, 2, 3))
        self.corrector = bool(corrector)
        self.order = self.p + (1 if self.corrector else 0)
        if variant not in ("bh1", "bh2"):
            raise ConfigError("variant", f"got {variant!r}; allowed values are: bh1, bh2")
        self.variant = variant
        self.kind = check_kind(predict)
        self.lower_order_final = bool(lower_order_final)
        self._params = {"order": order, "corrector": corrector, "variant": variant, "predict": predict,
                        "lower_order_final": lower_order_final}

    def plan(self, tab):
        orders = multistep_orders(tab, self.p, self.lower_order_final, "unipc")
        preds, corrs = [], []
        for i, k in enumerate(orders):
            if not (tab.finite(i) and tab.finite(i + 1)):
                cx, cd = ddim_coefficients(tab, i, i + 1)
                preds.append((1, cx, [(0, cd)], "data"))
                corrs.append(None)
                continue
            cx, terms, _ = unipc_coefficients(tab, i, k, self.kind, self.variant, False)
            preds.append((k, cx, terms, self.kind))
            corrs.append(unipc_coefficients(tab, i, k, self.kind, self.variant, True) if self.corrector else None)
        return preds, corrs

    fused = True

    def linear_steps(self, tab, plan):
        r"""Predictor and the previous step's corrector as one update from the evaluated state :math:`\tilde x_i`.

        Both start from the corrected :math:`x^c_{i-1}` with the same :math:`c_x`, so
        :math:`x^c_i = \tilde x_i + \sum_g (c^C_g - c^P_g) m_{i-1-g} + c_{new} m_i` and
        :math:`\tilde x_{i+1} = c_x x^c_i + \sum_g c_g m_{i-g}` is linear in :math:`\tilde x_i` and
        :math:`m_i, \dots, m_{i-p}`: the corrected state is never formed.
        """
        preds, corrs = plan
        steps = []
        for i, (k, cx, terms, kind) in enumerate(preds):
            coef: Dict[Tuple[int, str], float] = {}
            for g, c in terms:
                coef[(g, kind)] = coef.get((g, kind), 0.0) + c
            if i > 0 and corrs[i - 1] is not None:
                cx_c, c_terms, c_new = corrs[i - 1]
                _, cx_p, p_terms, p_kind = preds[i - 1]
                assert cx_c == cx_p and p_kind == self.kind, "corrector and predictor share the start point"
                for g, c in [(-1, c_new)] + [(g, c) for g, c in c_terms] + [(g, -c) for g, c in p_terms]:
                    key = (g + 1, self.kind)
                    coef[key] = coef.get(key, 0.0) + cx * c
            steps.append((k + (1 if corrs[i] is not None else 0), cx,
                          [(g, c, kd) for (g, kd), c in sorted(coef.items())]))
        return steps

    def iterate(self, field, x, grid, generator=None):
        return self.iterate_fused(field, x, grid) if self.fused else self._iterate_reference(field, x, grid)

    def _iterate_reference(self, field, x, grid):
        """Predictor and corrector applied separately, outputs converted to D/ε̂ (the fused path's cross-check)."""
        ts = [float(v) for v in grid.tolist()]
        tab, (preds, corrs) = self.table_and_plan(field.interpolant, ts)
        hist: List[Optional[object]] = []
        x_prev = x
        for i in range(len(ts) - 1):
            pred = field.predict(x, ts[i])
            own = self.kind == "data" or tab.finite(i)
            m = model_output(pred, self.kind, x, tab.a[i], tab.sigma[i]) if own else None
            if i > 0 and corrs[i - 1] is not None:
                cx, terms, c_new = corrs[i - 1]
                x = combine(x_prev, cx, [(c, hist[-1 - g]) for g, c in terms] + [(c_new, m)])
            hist.append(m)
            if len(hist) > 4:
                del hist[0]
            x_prev = x
            order, cx, terms, kind = preds[i]
            if kind != self.kind or m is None:
                m0 = model_output(pred, kind, pred.x, tab.a[i], tab.sigma[i])  # at the evaluated state
                ms = [(c, m0) for _, c in terms]
            else:
                ms = [(c, hist[-1 - g]) for g, c in terms]
            x = combine(x, cx, ms)
            yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, order + (1 if corrs[i] is not None else 0))

    def step(self, field, x, t, t_next, index, state, generator):  # pragma: no cover - iterate is overridden
        raise NotImplementedError

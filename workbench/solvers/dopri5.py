r"""Adaptive Dormand–Prince 5(4) with FSAL, PI-free standard step control (Hairer, Nørsett & Wanner, II.4).

Error estimate :math:`\mathrm{err} = \big\|\frac{y_5 - y_4}{atol + rtol\max(|y_n|, |y_{n+1}|)}\big\|_{RMS}`; a step is
accepted when err ≤ 1 and the next step is :math:`h\min(10, \max(0.2, 0.9\,\mathrm{err}^{-1/5}))`.
The initial step follows Hairer's heuristic (one extra evaluation). ``nfe`` is a budget: the run stops with a
clear error rather than exceed it. The last step is clipped to land exactly on ``t_end``.
"""
from __future__ import annotations

import math

import torch

from .. import validation
from ..errors import ConfigError, NonFiniteError
from ..interpolants.base import check_positive
from .base import Exempt, Solver, Step, register

#: Dormand–Prince 5(4) tableau (Dormand & Prince 1980), FSAL; shared with the solver-aware regulariser.
DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
DP_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
DP_E = tuple(b5 - b4 for b5, b4 in zip(DP_B5, DP_B4))


def _rms(x: torch.Tensor) -> float:
    return float(torch.sqrt(torch.mean(x.to(torch.float64) ** 2)))


@register("dopri5", "dormand_prince", "rk45")
class Dopri5(Solver):
    """Adaptive Dormand–Prince 5(4). ``nfe`` is a maximum; ``result.info`` has accepted/rejected counts.

    Args:
        rtol, atol: relative and absolute tolerances (> 0).
        first_step: initial step size (``None``: Hairer's heuristic, one extra NFE).
        max_nonfinite: consecutive attempts of one step whose model outputs hold NaN/Inf before the run raises
            :class:`~workbench.errors.NonFiniteError` (each retry shrinks the step by 5x). Fewer are a transient:
            those steps are rejected, counted in ``result.info["rejected_nonfinite"]`` (and the first ``t`` in
            ``first_nonfinite_t``) and reported by a :class:`~workbench.errors.NonFiniteWarning`, never swallowed.
    """

    order = 5
    evals_per_step = 6
    adaptive = True
    order_checks = Exempt("adaptive (error control, not a step count): counts, tolerance and budget",
                          "tests/core/test_solvers.py::test_dopri5_reports_counts_and_respects_budget")

    def __init__(self, rtol: float = 1e-6, atol: float = 1e-6, first_step: float | None = None,
                 max_nonfinite: int = 8):
        self.rtol = check_positive("rtol", rtol)
        self.atol = check_positive("atol", atol)
        self.first_step = None if first_step is None else check_positive("first_step", first_step)
        self.max_nonfinite = validation.integer("max_nonfinite", max_nonfinite, 1, 1000)

    def steps_for_nfe(self, nfe: int) -> int:
        raise ConfigError("solver", "dopri5 chooses its own steps; nfe is its maximum number of evaluations")

    def _initial_step(self, field, x, t0, t1, f0):
        scale = self.atol + self.rtol * x.abs()
        d0, d1 = _rms(x / scale), _rms(f0 / scale)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, t1 - t0)
        f1 = field.velocity(x + h0 * f0, t0 + h0)
        d2 = _rms((f1 - f0) / scale) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / 5.0)
        return min(100 * h0, h1, t1 - t0)

    def iterate(self, field, x, grid, generator=None):
        t0, t1 = float(grid[0]), float(grid[-1])
        pred = field.predict(x, t0)
        f = pred.velocity
        h = self.first_step if self.first_step is not None else self._initial_step(field, x, t0, t1, f)
        t, i, nan_streak, nan_total = t0, 0, 0, 0
        while t < t1:
            if t + h >= t1 or (t1 - (t + h)) < 1e-12 * max(1.0, abs(t1)):
                h = t1 - t
            ks = [f]
            for s in range(1, 7):
                xs = x
                for a, k in zip(DP_A[s], ks):
                    if a != 0.0:
                        xs = xs + (h * a) * k
                if s == 6:
                    x5 = xs  # the 7th stage is evaluated at the 5th-order solution (FSAL)
                    next_pred = field.predict(x5, t + h)
                    ks.append(next_pred.velocity)
                else:
                    ks.append(field.velocity(xs, t + DP_C[s] * h))
            err_vec = h * sum(e * k for e, k in zip(DP_E, ks) if e != 0.0)
            scale = self.atol + self.rtol * torch.maximum(x.abs(), x5.abs())
            err = _rms(err_vec / scale)
            bad = not math.isfinite(err)  # a NaN/Inf from the model (or an overflow) inside this step
            if bad:
                err = math.inf
                nan_streak += 1
                nan_total += 1
                if nan_streak >= self.max_nonfinite:
                    raise NonFiniteError(
                        f"dopri5: the model returned NaN/Inf in {nan_streak} consecutive attempts at the step from "
                        f"t={t:.6g} (step size shrunk to {h:.3g}); the field is non-finite there: check the model's "
                        f"weights and inputs at that t")
            else:
                nan_streak = 0
            t_next = t + h
            if err <= 1.0:
                x, f, pred_at = x5, ks[-1], pred
                pred = next_pred
                t_prev, t = t, (t1 if t_next >= t1 else t_next)
                yield Step(i, t_prev, t, x, field.nfe, pred_at, True, 5, err)
                i += 1
            else:
                yield Step(i, t, t_next, x, field.nfe, None, False, 5, None if bad else err, nonfinite=bad)
                if h < 1e-14:
                    if nan_total:
                        raise NonFiniteError(
                            f"dopri5: step size underflow at t={t:.6g} after {nan_total} attempt(s) where the model "
                            f"returned NaN/Inf; the field is non-finite just past t={t:.6g}: check the model's "
                            f"weights and inputs there")
                    raise ConfigError("solver", f"dopri5 step size underflow at t={t:.6g}; the field may be non-finite")
            factor = 10.0 if err == 0.0 else min(10.0, max(0.2, 0.9 * err ** -0.2))
            h = h * factor

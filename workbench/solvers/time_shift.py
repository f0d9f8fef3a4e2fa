r"""Time-shifted sampling (exposure-bias correction; Li et al. 2024, "Alleviating exposure bias in diffusion models
through sampling with shifted time steps").

A sampler's state at nominal time :math:`t` carries extra error, so it looks like a sample from a slightly
different noise level. The time-shifted sampler queries the model at :math:`t' = \mathrm{clip}(t + \delta(t), 0, 1)`
and hands the solver the resulting denoiser/score pair :math:`(D(x, t'), s(x, t'))` as if it were the
prediction at :math:`t`; the solver's coefficients stay those of the nominal grid. ``offset`` is a fixed
:math:`\delta` (float) or a callable ``t -> δ``; :meth:`TimeShifted.fit` learns a constant δ by golden-section
search of the pilot error against a reference (the "learned" shift).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch

from ..errors import ConfigError
from ..models.field import DATA_SCORE, Field, Prediction
from .base import SOLVERS, LinearSolver, OrderCheck, register

OffsetLike = Union[float, Callable[[float], float]]


class ShiftedField(Field):
    """A view of ``inner`` whose model calls happen at the shifted time (and are counted by ``inner``)."""

    def __init__(self, inner: Field, offset: OffsetLike):
        self.inner, self.offset = inner, offset
        self.model, self.interpolant, self.prediction = inner.model, inner.interpolant, inner.prediction

    @property
    def nfe(self) -> int:  # type: ignore[override]
        return self.inner.nfe

    def reset(self) -> None:  # pragma: no cover - a view of a run's field
        raise TypeError("a shifted view is not reset")

    def predict(self, x: torch.Tensor, t: float) -> Prediction:
        d = self.offset(t) if callable(self.offset) else self.offset
        ts = min(max(t + d, 0.0), 1.0)
        p = self.inner.predict(x, ts)
        if ts == t:
            return p
        return Prediction(x, t, DATA_SCORE, p.data_and_score(), self.interpolant)


@register("time_shifted", "ts_sampler", "shifted_time")
class TimeShifted(LinearSolver):
    """Wrap any registered solver so the model sees a shifted time.

    Args:
        base: the wrapped solver's registry name.
        offset: δ added to the model's time (a float; negative = toward the noise end).
        base_params: the wrapped solver's parameters.
    """

    order_checks = (OrderCheck({"base": "dpmpp_3m", "offset": 0.0}),)

    def __init__(self, base: str = "dpmpp_2m", offset: float = 0.0, base_params: Optional[Dict[str, Any]] = None):
        if base in ("time_shifted", "ts_sampler", "shifted_time"):
            raise ConfigError("base", "cannot wrap time_shifted in itself")
        self._base = SOLVERS.get(base, **(base_params or {}))
        self.base, self.base_params = self._base.name, dict(base_params or {})
        try:
            self.offset = float(offset)
        except (TypeError, ValueError):
            raise ConfigError("offset", f"must be a number, got {offset!r}") from None
        if not math.isfinite(self.offset) or abs(self.offset) >= 1:
            raise ConfigError("offset", f"must be finite with |offset| < 1, got {offset!r}")
        for k in ("order", "evals_per_step", "stochastic", "adaptive", "needs_gaussian"):
            setattr(self, k, getattr(self._base, k))

    def steps_for_nfe(self, nfe: int) -> int:
        return self._base.steps_for_nfe(nfe)

    def make_grid(self, field, nfe, schedule="uniform", t_start=0.0, t_end=1.0):
        return self._base.make_grid(field, nfe, schedule, t_start, t_end)

    def shift(self, t: float) -> float:
        """The model's time for the nominal time ``t``: :math:`\\mathrm{clip}(t + \\delta, 0, 1)`."""
        return min(max(t + self.offset, 0.0), 1.0)

    def build_plan(self, interpolant, grid):
        # a linear base: its own plan with the model called at the shifted times (conversions stay at the nominal
        # ones, so each output is read as the prediction at t: exactly what ShiftedField hands a non-linear base)
        return self._base.plan_for(interpolant, grid).shifted(self.shift)  # type: ignore[attr-defined]

    def iterate(self, field, x, grid, generator=None):
        if isinstance(self._base, LinearSolver):
            return super().iterate(field, x, grid, generator)
        return self._base.iterate(ShiftedField(field, self.offset), x, grid, generator)

    @classmethod
    def fit(cls, field: Field, x: torch.Tensor, reference: torch.Tensor, nfe: int, base: str = "dpmpp_2m",
            base_params: Optional[Dict[str, Any]] = None, schedule: str = "uniform", t_start: float = 0.0,
            t_end: float = 1.0, bounds: Sequence[float] = (-0.05, 0.05), iters: int = 20) -> "TimeShifted":
        """Learn a constant offset: minimise the mean L2 error to ``reference`` over ``bounds`` (golden section,
        :func:`workbench.fitting.time_shift.fit_time_shift` on all of ``x``; kept only if it beats offset 0)."""
        from ..fitting.time_shift import fit_time_shift

        fit = fit_time_shift(field, x, nfe, base, base_params, schedule, t_start, t_end, reference=reference,
                             holdout=0.0, bounds=tuple(bounds), iters=iters)
        return cls(base, fit.params["offset"], base_params)

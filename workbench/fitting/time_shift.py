r"""Fit the constant time shift of :class:`~workbench.solvers.TimeShifted` (exposure-bias correction; Li et al.
2024) to a model from a pilot run: :math:`\min_{\delta\in[lo, hi]} \frac1M\sum_m\|\Phi_\delta(x^{(m)}) -
x_{ref}^{(m)}\|_2` by golden-section search (one scalar), kept by :func:`~workbench.fitting.keep_if_better` against
:math:`\delta = 0` (the base solver)."""
from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional, Sequence

import torch

from .. import validation
from ..errors import ConfigError
from ..models.field import Field
from .pilot import Pilot
from .result import FitResult
from .selection import Search, StopSearch, keep_if_better


def fit_time_shift(field: Field, x_pilot: Optional[torch.Tensor], nfe: int, base: str = "dpmpp_2m",
                   base_params: Optional[Dict[str, Any]] = None, schedule: str = "uniform", t_start: float = 0.0,
                   t_end: float = 1.0, reference: Optional[torch.Tensor] = None, holdout: float = 0.25,
                   bounds: Sequence[float] = (-0.05, 0.05), iters: int = 20, progress: bool = False,
                   pilot: Optional[Pilot] = None) -> FitResult:
    """Golden-section fit of the offset ``δ`` of ``time_shifted(base, δ)`` at budget ``nfe`` (module docstring).

    Returns a :class:`FitResult` with ``params = {"base", "base_params", "offset"}`` (``offset = 0`` when the
    fit is not kept). Raises :class:`ConfigError` for bad ``bounds``/``iters`` or pilot arguments.
    """
    from ..solvers import SOLVERS

    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]):
        raise ConfigError("bounds", f"must be two finite numbers lo < hi, got {bounds!r}")
    iters = validation.integer("iters", iters, 0)
    tic = time.perf_counter()
    if pilot is None:
        pilot = Pilot.build(field, x_pilot, t_start, t_end, reference, holdout)
    pilot.check_interval(t_start, t_end)
    model = pilot.model(field)
    (xf, rf), (xh, rh) = pilot.fit, pilot.held
    bp = dict(base_params or {})
    grid = SOLVERS.get(base, **bp).make_grid(field, nfe, schedule, t_start, t_end)

    def loss(d: float, x: torch.Tensor, ref: torch.Tensor) -> float:
        out = model.run(SOLVERS.get("time_shifted", base=base, offset=d, base_params=bp), x, nfe, grid)
        v = math.inf if out is None else float((out - ref).flatten(1).norm(dim=1).mean())
        return v if math.isfinite(v) else math.inf

    init_loss = loss(0.0, xf, rf)
    search = Search(0.0, init_loss, max_evals=None, progress=progress, desc=f"fit time shift ({base}, NFE {nfe})")

    def f(d: float) -> float:
        v = loss(d, xf, rf)
        search.record(d, v)
        return v

    lo, hi = float(bounds[0]), float(bounds[1])
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    try:
        c, d = hi - gr * (hi - lo), lo + gr * (hi - lo)
        fc, fd = f(c), f(d)
        for _ in range(iters):
            if fc < fd:
                hi, d, fd = d, c, fc
                c = hi - gr * (hi - lo)
                fc = f(c)
            else:
                lo, c, fc = c, d, fd
                d = lo + gr * (hi - lo)
                fd = f(d)
    except StopSearch as stop:
        search.stopped = stop.reason
    delta = float(search.close())
    fit_loss = search.best_loss
    hold, init_hold = (loss(delta, xh, rh), loss(0.0, xh, rh)) if xh is not None else (math.nan, math.nan)
    improved = keep_if_better(init_loss, fit_loss, init_hold, hold)
    if not improved:
        delta, fit_loss, hold = 0.0, init_loss, init_hold
    params = lambda v: {"base": base, "base_params": bp, "offset": v}  # noqa: E731
    return FitResult(what="time_shift", params=params(delta), init_params=params(0.0), loss=fit_loss,
                     init_loss=init_loss, holdout_loss=hold, init_holdout_loss=init_hold, improved=improved,
                     iterations=search.evals, pilot_nfe=model.calls, reference_nfe=pilot.reference_nfe,
                     seconds=time.perf_counter() - tic, n_parameters=1, n_fit=pilot.n_fit, n_held=pilot.n_held,
                     stopped=search.stopped)

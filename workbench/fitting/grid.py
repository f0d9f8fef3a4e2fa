r"""Fit a solver's time grid to a model from a pilot run (in the spirit of LD3, Tong et al. 2024, and
"bespoke" / "align your steps" step selection).

For a fixed solver :math:`\Phi` and budget, the grid :math:`t_0 = t_{start} < \dots < t_N = t_{end}` is chosen to
minimise the mean distance of the solver's end points to the pilot's reference (:class:`~workbench.fitting.Pilot`),

.. math::
    \min_{\theta}\ \frac1M\sum_{m=1}^{M}\big\|\Phi_{t(\theta)}(x^{(m)}) - x^{(m)}_{\mathrm{ref}}(t_{end})\big\|_2,
    \qquad t_i - t_{i-1} = (t_{end}-t_{start})\,\mathrm{softmax}(\theta)_i

(monotone, endpoints exact), derivative-free (L-BFGS-B on finite differences, then Nelder–Mead and Powell; one
local search per starting grid), so it works for every fixed-step solver without differentiating through it.
The fitted grid is kept by :func:`~workbench.fitting.keep_if_better`.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..models.field import Field
from ..schedules.base import SCHEDULES, Schedule
from ..schedules.explicit import ExplicitGrid
from .pilot import Pilot, check_holdout, check_pilot
from .result import GridFit
from .selection import Search, StopSearch, keep_if_better

_PENALTY = 1e6  # loss of a grid on which the solver fails (NaN, degenerate step)


def times_from_theta(theta: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """Monotone grid from log step lengths: cumulative softmax mapped onto ``[t_start, t_end]``."""
    w = np.exp(theta - theta.max())
    u = np.concatenate([[0.0], np.cumsum(w / w.sum())])
    times = t_start + (t_end - t_start) * u
    times[0], times[-1] = t_start, t_end  # exact endpoints, whatever the rounding of the sum
    return times


def _local_search(objective, theta0: np.ndarray, steps: int) -> None:
    """Quasi-Newton on finite-difference gradients (fast in a smooth basin), then Nelder–Mead and Powell to
    polish where the loss has kinks; the :class:`Search` inside ``objective`` ends it (budget) by raising."""
    from scipy.optimize import minimize

    x = theta0
    for method, opts in (("L-BFGS-B", {"maxfun": 10**9, "eps": 1e-5}),
                         ("Nelder-Mead", {"maxfev": 10**9, "xatol": 1e-5, "fatol": 1e-9, "adaptive": steps > 4}),
                         ("Powell", {"maxfev": 10**9, "xtol": 1e-5, "ftol": 1e-9})):
        x = minimize(objective, x, method=method, options=opts).x


def fit_grid(solver, field: Field, x_pilot: torch.Tensor, nfe: int,
             init: Union[str, Schedule, torch.Tensor, Sequence] = "uniform", t_start: float = 0.0, t_end: float = 1.0,
             reference: Optional[torch.Tensor] = None, holdout: float = 0.25, max_evals: Optional[int] = None,
             progress: bool = False, pilot: Optional[Pilot] = None) -> GridFit:
    """Fit the time grid of ``solver`` at budget ``nfe`` to the model behind ``field`` (module docstring).

    Args:
        solver: a deterministic fixed-step solver (a :class:`~workbench.solvers.Solver` or registry name).
        field: the model.
        x_pilot: pilot start states ``(M, ...)`` at ``t_start`` (a few hundred; not the states you evaluate on).
        nfe: the budget the grid is for.
        init: starting grid(s): a schedule name, a :class:`Schedule`, explicit times, or a list of those (one
            local search from each, the budget split between them; the best initial grid is the baseline).
        reference: end states of the exact/accurate PF-ODE from ``x_pilot``; ``None``: the model's own
            Dormand–Prince solution (:meth:`Pilot.build`).
        holdout: fraction of the pilot kept aside for the keep-if-better check (0 disables it).
        max_evals: optimiser evaluations (default ``min(300 × steps, 6000)``).
        pilot: a prebuilt :class:`Pilot` (then ``x_pilot``, ``reference``, ``holdout`` are not used).

    Raises:
        ConfigError: an adaptive or stochastic solver, fewer than 4 pilot states, a bad ``holdout``, a starting
            grid with another number of steps.
    """
    from ..solvers import SOLVERS  # late import: solvers import schedules

    solver = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if solver.adaptive or solver.stochastic:
        raise ConfigError("solver", f"fit_grid needs a deterministic fixed-step solver; {solver.name!r} is "
                                    f"{'adaptive' if solver.adaptive else 'stochastic'}")
    if pilot is None:
        check_pilot(x_pilot)
        check_holdout(holdout)
    solver.check_interpolant(field)
    tic = time.perf_counter()
    inits = list(init) if isinstance(init, (list, tuple)) else [init]
    if not inits:
        raise ConfigError("init", "needs at least one starting grid")
    grids = []
    for item in inits:
        if isinstance(item, torch.Tensor):
            g = ExplicitGrid(item).grid(len(item) - 1, field.interpolant, t_start, t_end)
        else:
            g = solver.make_grid(field, nfe, SCHEDULES.get(item) if isinstance(item, str) else item, t_start, t_end)
        if len(g) - 1 != solver.steps_for_nfe(nfe):
            raise ConfigError("init", f"a starting grid has {len(g) - 1} steps but nfe={nfe} buys "
                                      f"{solver.steps_for_nfe(nfe)}")
        grids.append(g.numpy())
    steps = len(grids[0]) - 1
    if max_evals is None:
        max_evals = min(300 * steps, 6000)
    if pilot is None:
        pilot = Pilot.build(field, x_pilot, t_start, t_end, reference, holdout)
    pilot.check_interval(t_start, t_end)
    model = pilot.model(field)
    (xf, rf), (xh, rh) = pilot.fit, pilot.held
    pilot.warn_if_small(steps - 1, f"fit_grid({solver.name}, nfe={nfe})")

    def loss(times: np.ndarray, x: torch.Tensor, ref: torch.Tensor) -> float:
        grid = torch.tensor(times, dtype=torch.float64)
        if not bool(torch.all(grid[1:] > grid[:-1])):
            return _PENALTY
        out = model.run(solver, x, nfe, grid)
        v = math.inf if out is None else float((out - ref).flatten(1).norm(dim=1).mean())
        return v if math.isfinite(v) else _PENALTY

    init_losses = [loss(g, xf, rf) for g in grids]
    k0 = int(np.argmin(init_losses))
    g0, init_loss = grids[k0], init_losses[k0]
    search = Search(np.log(np.diff(g0)), init_loss, max_evals=max_evals, progress=progress,
                    desc=f"fit grid ({solver.name}, NFE {nfe})")

    def objective(theta: np.ndarray) -> float:
        v = loss(times_from_theta(theta, t_start, t_end), xf, rf)
        search.record(theta, v)
        return v

    if steps > 1 and max_evals > 0:
        # one local search per starting grid (the landscape has several basins), the budget split evenly
        for j, g in enumerate(grids):
            search.max_evals = max_evals * (j + 1) // len(grids)
            if search.evals >= search.max_evals:
                continue
            try:
                _local_search(objective, np.log(np.diff(g)), steps)
            except StopSearch as stop:
                search.stopped = stop.reason
    theta = search.close()
    times = times_from_theta(theta, t_start, t_end) if search.best_loss < init_loss else g0
    fit_loss = search.best_loss
    hold, init_hold = (loss(times, xh, rh), loss(g0, xh, rh)) if xh is not None else (math.nan, math.nan)
    improved = keep_if_better(init_loss, fit_loss, init_hold, hold)
    if not improved:
        times, hold, fit_loss = g0, init_hold, init_loss
    return GridFit(what="grid", params={"times": [float(v) for v in times]},
                   init_params={"times": [float(v) for v in g0]}, loss=fit_loss, init_loss=init_loss,
                   holdout_loss=hold, init_holdout_loss=init_hold, improved=improved, iterations=search.evals,
                   pilot_nfe=model.calls, reference_nfe=pilot.reference_nfe, seconds=time.perf_counter() - tic,
                   n_parameters=steps - 1, n_fit=pilot.n_fit, n_held=pilot.n_held,
                   stopped=search.stopped if max_evals > 0 and steps > 1 else "no evaluations")

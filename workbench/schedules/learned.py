r"""Fit a solver's time grid to a model from a pilot run (in the spirit of LD3, Tong et al. 2024, and
"bespoke" / "align your steps" step selection).

For a fixed solver :math:`\Phi` and budget, the grid :math:`t_0 = t_{start} < \dots < t_N = t_{end}` is chosen to
minimise the mean distance of the solver's end points to an accurate solution of the *same model's* PF-ODE,

.. math::
    \min_{t_1,\dots,t_{N-1}}\ \frac1M\sum_{m=1}^{M}\big\|\Phi_{t_{0:N}}(x^{(m)}) - x^{(m)}_{\mathrm{ref}}(t_{end})\big\|_2,

over a few hundred pilot start states :math:`x^{(m)}`. The reference is Dormand–Prince at a tight tolerance on the
model itself (no data, no ground truth needed), so the fit works for any trained model. The grid is parametrised by
log step lengths :math:`t_i - t_{i-1} = (t_{end}-t_{start})\,\mathrm{softmax}(\theta)_i` (monotone, endpoints exact)
and optimised derivative-free (Nelder–Mead, then Powell), so it works for every fixed-step solver, including the
log-SNR ones, without differentiating through them. A held-out part of the pilot guards against over-fitting: the
fitted grid is kept only when it also beats the initial grid there.

The pilot's cost (reference evaluations + one run per optimiser evaluation) is reported in :class:`GridFit`; it is
paid once per (model, solver, NFE) and the resulting :class:`ExplicitGrid` can be saved as JSON.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError, WorkbenchError
from ..models.field import Field
from .base import SCHEDULES, Schedule
from .explicit import ExplicitGrid

_PENALTY = 1e6  # loss of a grid on which the solver fails (NaN, degenerate step)


@dataclass
class GridFit:
    """Outcome of :func:`fit_grid`.

    Attributes:
        times: the fitted grid (``steps + 1`` points, endpoints exact); ``init_times``: the starting grid.
        loss / init_loss: mean L2 to the reference on the fitting part of the pilot.
        holdout_loss / init_holdout_loss: the same on the held-out part (``nan`` when there is none).
        improved: False when the fit did not beat the initial grid on the held-out part (``times`` is then the
            initial grid).
        evals: optimiser evaluations (sampling runs); pilot_nfe: model calls the whole fit made
            (reference + runs); seconds: wall time.
    """

    times: List[float]
    init_times: List[float]
    loss: float
    init_loss: float
    holdout_loss: float
    init_holdout_loss: float
    improved: bool
    evals: int
    pilot_nfe: int
    seconds: float

    @property
    def schedule(self) -> ExplicitGrid:
        """The fitted grid as a schedule (``Experiment(schedule="explicit", schedule_params={"times": ...})``)."""
        return ExplicitGrid(self.times)

    def to_json(self) -> str:
        """All fields as JSON (``GridFit.from_json`` reads it back)."""
        return json.dumps(asdict(self), indent=1)

    @staticmethod
    def from_json(text: str) -> "GridFit":
        """Inverse of :meth:`to_json`."""
        return GridFit(**json.loads(text))


def _times_from_theta(theta: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """Monotone grid from log step lengths: cumulative softmax mapped onto ``[t_start, t_end]``."""
    w = np.exp(theta - theta.max())
    u = np.concatenate([[0.0], np.cumsum(w / w.sum())])
    times = t_start + (t_end - t_start) * u
    times[0], times[-1] = t_start, t_end  # exact endpoints, whatever the rounding of the sum
    return times


def _local_search(objective, theta0: np.ndarray, budget: int, steps: int) -> None:
    """Quasi-Newton on finite-difference gradients (fast in a smooth basin), then Nelder–Mead and Powell to
    polish where the loss has kinks; ``objective`` records the best point itself, so every stage may stop early."""
    from scipy.optimize import minimize

    used = [0]

    class _Spent(Exception):
        pass

    def counted(theta: np.ndarray) -> float:
        if used[0] >= budget:  # scipy's own limits overshoot (L-BFGS-B counts whole gradient evaluations)
            raise _Spent
        used[0] += 1
        return objective(theta)

    x = theta0
    for method in ("L-BFGS-B", "Nelder-Mead", "Powell"):
        left = budget - used[0]
        if left <= 0:
            return
        if method == "L-BFGS-B":
            opts = {"maxfun": left, "eps": 1e-5}
        elif method == "Nelder-Mead":
            opts = {"maxfev": left, "xatol": 1e-5, "fatol": 1e-9, "adaptive": steps > 4}
        else:
            opts = {"maxfev": left, "xtol": 1e-5, "ftol": 1e-9}
        try:
            x = minimize(counted, x, method=method, options=opts).x
        except _Spent:
            return


def fit_grid(solver, field: Field, x_pilot: torch.Tensor, nfe: int, init: Union[str, Schedule, torch.Tensor, Sequence] = "uniform",
             t_start: float = 0.0, t_end: float = 1.0, reference: Optional[torch.Tensor] = None,
             holdout: float = 0.25, max_evals: Optional[int] = None, progress: bool = False) -> GridFit:
    """Fit the time grid of ``solver`` at budget ``nfe`` to the model behind ``field`` (see module docstring).

    Args:
        solver: a deterministic fixed-step solver (a :class:`~workbench.solvers.Solver` or registry name).
        field: the model; its NFE counter is reset by every run.
        x_pilot: pilot start states ``(M, ...)`` at ``t_start`` (a few hundred; not the states you evaluate on).
        nfe: the budget the grid is for.
        init: starting grid(s): a schedule name, a :class:`Schedule`, explicit times, or a list of those (one
            local search from each, the budget split between them; the best initial grid is the baseline).
        reference: end states of the exact/accurate PF-ODE from ``x_pilot``; ``None`` solves the model's own
            PF-ODE with Dormand–Prince (rtol = atol = 1e-8 in float64, 1e-5 in float32).
        holdout: fraction of the pilot kept aside to check the fitted grid generalises (0 disables the check).
        max_evals: optimiser evaluations (default ``min(300 × steps, 6000)``).
        progress: show a tqdm bar.

    Raises:
        ConfigError: an adaptive or stochastic solver, fewer than 4 pilot states, a bad ``holdout``.
    """
    from ..solvers import SOLVERS  # late import: solvers import schedules
    from ..solvers.pilot import check_holdout, check_pilot, pilot_reference, split_holdout

    solver = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if solver.adaptive or solver.stochastic:
        raise ConfigError("solver", f"fit_grid needs a deterministic fixed-step solver; {solver.name!r} is "
                                    f"{'adaptive' if solver.adaptive else 'stochastic'}")
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
            sched = SCHEDULES.get(item) if isinstance(item, str) else item
            g = solver.make_grid(field, nfe, sched, t_start, t_end)
        if len(g) - 1 != solver.steps_for_nfe(nfe):
            raise ConfigError("init", f"a starting grid has {len(g) - 1} steps but nfe={nfe} buys "
                                      f"{solver.steps_for_nfe(nfe)}")
        grids.append(g.numpy())
    steps = len(grids[0]) - 1
    if max_evals is None:
        max_evals = min(300 * steps, 6000)
    reference, pilot_nfe = pilot_reference(field, x_pilot, t_start, t_end, reference)
    (xf, rf), (xh, rh) = split_holdout(x_pilot, reference, holdout)
    with torch.no_grad():
        evals = 0

        def mean_l2(times: np.ndarray, x: torch.Tensor, ref: torch.Tensor) -> float:
            nonlocal pilot_nfe
            grid = torch.tensor(times, dtype=torch.float64)
            if not bool(torch.all(grid[1:] > grid[:-1])):
                return _PENALTY
            run = solver.stream(field, x, nfe, grid=grid)
            try:
                for _ in run:
                    pass
                out = run.result.x  # type: ignore[union-attr]
            except WorkbenchError:
                return _PENALTY
            finally:
                pilot_nfe += run.nfe  # the run's own count (the field is never reset)
            v = float((out - ref).flatten(1).norm(dim=1).mean())
            return v if math.isfinite(v) else _PENALTY

        init_losses = [mean_l2(g, xf, rf) for g in grids]
        k0 = int(np.argmin(init_losses))
        g0, init_loss = grids[k0], init_losses[k0]
        best = {"loss": init_loss, "theta": np.log(np.diff(g0))}
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_evals, desc=f"fit grid ({solver.name}, NFE {nfe})", leave=False)

        def objective(theta: np.ndarray) -> float:
            nonlocal evals
            evals += 1
            v = mean_l2(_times_from_theta(theta, t_start, t_end), xf, rf)
            if v < best["loss"]:
                best["loss"], best["theta"] = v, theta.copy()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{best['loss']:.3e}")
            return v

        if steps > 1 and max_evals > 0:
            # one local search per starting grid (the landscape has several basins), the budget split evenly
            for j, g in enumerate(grids):
                _local_search(objective, np.log(np.diff(g)), max_evals * (j + 1) // len(grids) - evals, steps)
        if bar is not None:
            bar.close()
        times = _times_from_theta(best["theta"], t_start, t_end) if best["loss"] < init_loss else g0
        hold, init_hold = (mean_l2(times, xh, rh), mean_l2(g0, xh, rh)) if xh is not None else (math.nan, math.nan)
    improved = best["loss"] < init_loss and (xh is None or hold <= init_hold)
    if not improved:
        times, hold, best["loss"] = g0, init_hold, init_loss
    return GridFit(times=[float(v) for v in times], init_times=[float(v) for v in g0], loss=best["loss"],
                   init_loss=init_loss, holdout_loss=hold, init_holdout_loss=init_hold, improved=improved,
                   evals=evals, pilot_nfe=pilot_nfe, seconds=time.perf_counter() - tic)

r"""Non-stationary (bespoke) solvers: every evaluation state is its own linear combination of the start state and
all previous model outputs (Shaul et al. 2024, "Bespoke Non-Stationary Solvers for Fast Sampling of Diffusion and
Flow Models").

With :math:`n` model evaluations :math:`K_j = K(y_j, \tau_j)` of one prediction kind (velocity, data, noise, ...),

.. math::
    y_0 = x_0,\qquad y_{j+1} = a_{j+1}\,x_0 + \sum_{k=0}^{j} b_{j+1,k}\,K_k\quad (j = 0,\dots,n-1),\qquad
    x_{out} = y_n .

Every deterministic fixed-step solver of this package (Runge–Kutta, DPM-Solver++, UniPC, DEIS, ...) is of this form
for a fixed grid, because its update is linear in the state and the model outputs: :func:`linearize` reads its
coefficients off its plan exactly (:mod:`~workbench.solvers.plan`).
:func:`~workbench.solvers.learned.fit_nonstationary` then tunes :math:`(\tau, a, b)` to a model from a pilot run.

Without coefficients the solver is forward Euler written in this form (velocity, :math:`a = 1`,
:math:`b_{j+1,k} = t_{k+1} - t_k`), so it runs on any schedule and interpolant.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from .. import validation
from ..errors import ConfigError
from ..interpolants.base import PREDICTIONS, Interpolant, canonical_prediction
from ..models.field import Field
from .base import SOLVERS, LinearSolver, OrderCheck, Solver, _interpolant_of, check_nfe, register
from .plan import Plan, PlanBuilder, compile_plan


@dataclass
class NSCoefficients:
    r"""The coefficients of a non-stationary solver with ``n`` evaluations.

    Attributes:
        times: model times :math:`\tau_0, \dots, \tau_{n-1}` of the evaluations (:math:`\tau_0 = t_{start}` unless
            the solver shifts the model's time).
        a: :math:`a_1 \dots a_n`, the weight of :math:`x_0` in :math:`y_1 \dots y_n`.
        b: ``b[j]`` holds :math:`b_{j+1,0} \dots b_{j+1,j}` (``j + 1`` numbers), the weights of the outputs so far.
        kind: the prediction kind :math:`K` the weights multiply (``velocity``, ``x1``, ``noise``, ...).
        t_end: the time of the output state.
        t_start: the time of the start state (default ``times[0]``).
        source: where the numbers come from (``linearize(...)``, ``fit_nonstationary(...)``).
        order: the convergence order of the solver the numbers were read from (reported in each ``Step``; a
            fitted solver keeps its start's, although tuning to one NFE makes it a solver for that NFE only).
    """

    times: List[float]
    a: List[float]
    b: List[List[float]]
    kind: str = "velocity"
    t_end: float = 1.0
    t_start: Optional[float] = None
    source: str = ""
    order: int = 1

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n(self) -> int:
        """Number of model evaluations (the NFE these coefficients are for)."""
        return len(self.times)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the malformed field."""
        for name in ("times", "a", "b"):
            v = getattr(self, name)
            if isinstance(v, torch.Tensor):
                v = v.detach().cpu().tolist()
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise ConfigError(f"coefficients.{name}", f"must be a list, got {type(v).__name__}")
            setattr(self, name, list(v))
        n = len(self.times)
        if n < 1:
            raise ConfigError("coefficients.times", "needs at least one evaluation time")
        self.times = [_finite(v, "coefficients.times") for v in self.times]
        if any(not 0.0 <= v <= 1.0 for v in self.times):
            raise ConfigError("coefficients.times", f"must lie in [0, 1], got {self.times}")
        self.t_start = self.times[0] if self.t_start is None else _finite(self.t_start, "coefficients.t_start")
        self.t_end = _finite(self.t_end, "coefficients.t_end")
        for name in ("t_start", "t_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"coefficients.{name}", f"must lie in [0, 1], got {getattr(self, name)}")
        if self.t_end == self.t_start:
            raise ConfigError("coefficients.t_end", f"must differ from t_start, got {self.t_end}")
        if len(self.a) != n:
            raise ConfigError("coefficients.a", f"needs {n} numbers (one per evaluation), got {len(self.a)}")
        self.a = [_finite(v, "coefficients.a") for v in self.a]
        if len(self.b) != n:
            raise ConfigError("coefficients.b", f"needs {n} rows, got {len(self.b)}")
        rows = []
        for j, row in enumerate(self.b):
            if isinstance(row, torch.Tensor):
                row = row.detach().cpu().tolist()
            if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != j + 1:
                raise ConfigError("coefficients.b", f"row {j} must hold {j + 1} numbers, got {row!r}")
            rows.append([_finite(v, "coefficients.b") for v in row])
        self.b = rows
        if self.kind not in PREDICTIONS:
            self.kind = canonical_prediction(self.kind, "coefficients.kind")
        validation.integer("coefficients.order", self.order, 1)

    def grid(self) -> torch.Tensor:
        """``[t_start, τ_1, ..., τ_{n-1}, t_end]`` (float64): the times :class:`SampleResult` reports for the
        states ``y_0 ... y_n``."""
        return torch.tensor([self.t_start] + self.times[1:] + [self.t_end], dtype=torch.float64)

    def to_json(self) -> str:
        """All fields as JSON (:meth:`from_json` reads it back)."""
        return json.dumps(asdict(self), indent=1)

    @staticmethod
    def from_json(text: str) -> "NSCoefficients":
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError("coefficients", f"is not valid JSON ({exc})") from None
        return NSCoefficients.from_dict(data)

    @staticmethod
    def from_dict(data: Any) -> "NSCoefficients":
        """Build from a dict with the dataclass's fields (unknown keys are an error naming them)."""
        if isinstance(data, NSCoefficients):
            return data
        if not isinstance(data, dict):
            raise ConfigError("coefficients", f"must be NSCoefficients or a dict of its fields, got {type(data).__name__}")
        allowed = {"times", "a", "b", "kind", "t_start", "t_end", "source", "order"}
        extra = set(data) - allowed
        if extra:
            raise ConfigError("coefficients", f"unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        missing = {"times", "a", "b"} - set(data)
        if missing:
            raise ConfigError("coefficients", f"missing field(s) {sorted(missing)}")
        return NSCoefficients(**data)


def _finite(v: object, name: str) -> float:
    return validation.number(name, v)


def euler_coefficients(grid: Sequence[float]) -> NSCoefficients:
    r"""Forward Euler on ``grid`` in non-stationary form: :math:`a = 1`, :math:`b_{j+1,k} = t_{k+1} - t_k`."""
    ts = [float(v) for v in grid]
    h = [ts[i + 1] - ts[i] for i in range(len(ts) - 1)]
    return NSCoefficients(times=ts[:-1], a=[1.0] * len(h), b=[h[: j + 1] for j in range(len(h))],
                          kind="velocity", t_end=ts[-1], t_start=ts[0], source="euler")


@register("nonstationary", "ns", "bns", "bespoke")
class NonStationary(LinearSolver):
    r"""Non-stationary solver :math:`y_{j+1} = a_{j+1}x_0 + \sum_{k\le j} b_{j+1,k}K(y_k, \tau_k)`; 1 NFE per step.

    Args:
        coefficients: an :class:`NSCoefficients` (or a dict of its fields) from :func:`linearize` or
            :func:`~workbench.solvers.learned.fit_nonstationary`; they fix the NFE, the interval and the times
            (the schedule is then ignored). ``None``: forward Euler on the schedule's grid (order 1).

    Its plan is the coefficients themselves; rows reading many outputs run as one ``addmv`` each (the method's O(n)
    memory traffic per step).
    """

    order, evals_per_step = 1, 1
    order_checks = (OrderCheck(),)

    def __init__(self, coefficients: Union[NSCoefficients, Dict[str, Any], None] = None):
        # the field holds the numbers as a plain (frozen) dict; the validated NSCoefficients live in ``_c``
        self._c = None if coefficients is None else NSCoefficients.from_dict(coefficients)
        self.coefficients = None if self._c is None else asdict(self._c)
        self._grid = None if self._c is None else self._c.grid()
        if self._c is not None:
            self.order = self._c.order

    def __repr__(self) -> str:
        c = self._c
        return "NonStationary(euler)" if c is None else f"NonStationary(n={c.n}, kind={c.kind!r}, source={c.source!r})"

    def steps_for_nfe(self, nfe: int) -> int:
        steps = super().steps_for_nfe(nfe)
        c = self._c
        if c is not None and steps != c.n:
            raise ConfigError("nfe", f"these non-stationary coefficients are for nfe={c.n} exactly, got {nfe}")
        return steps

    def make_grid(self, field, nfe, schedule="uniform", t_start=0.0, t_end=1.0):
        c = self._c
        if c is None:
            return super().make_grid(field, nfe, schedule, t_start, t_end)
        self.steps_for_nfe(nfe)
        if abs(t_start - c.t_start) > 1e-12 or abs(t_end - c.t_end) > 1e-12:
            raise ConfigError("t_start/t_end", f"these coefficients integrate from {c.t_start!r} to {c.t_end!r}, "
                                               f"got {t_start!r} to {t_end!r}")
        return self._grid.clone()

    def iterate(self, field, x, grid, generator=None):
        c = self._c
        if c is not None and not torch.equal(grid, self._grid) and (
                len(grid) != c.n + 1 or float((grid - self._grid).abs().max()) > 1e-12):
            raise ConfigError("grid", "a non-stationary solver with coefficients runs on their own times "
                                      "(coefficients.grid()); leave grid/schedule unset")
        return super().iterate(field, x, self._grid if c is not None else grid, generator)

    def build_plan(self, interpolant, grid):
        c = self._c if self._c is not None else euler_coefficients(grid)
        return coefficients_plan(c)


def coefficients_plan(c: NSCoefficients) -> Plan:
    """The plan of non-stationary coefficients: evaluation ``j`` at :math:`\tau_j`, row ``j`` building
    :math:`y_{j+1} = a_{j+1} y_0 + \sum_k b_{j+1,k} K_k`."""
    b = PlanBuilder(c.grid().tolist(), c.source)
    for j in range(c.n):
        b.evaluate(c.times[j])
        b.advance([("x", 0, c.a[j])] + [(c.kind, k, v) for k, v in enumerate(c.b[j])], step=j, order=c.order)
    return b.build()


def linearize(solver: Union[str, Solver], field: Union[Field, Interpolant], nfe: int,
              schedule: Any = "uniform", t_start: float = 0.0, t_end: float = 1.0,
              grid: Optional[torch.Tensor] = None, kind: Optional[str] = None) -> NSCoefficients:
    r"""The exact non-stationary coefficients of a deterministic fixed-step ``solver`` at budget ``nfe``.

    The solver's :class:`~workbench.solvers.plan.Plan` compiled for outputs of ``kind`` gives every new state as a
    combination of earlier states and outputs; substituting the states recursively leaves
    :math:`y_{j+1} = a_{j+1}x_0 + \sum_k b_{j+1,k}K_k`.

    Args:
        solver: registry name or instance (a plan solver: deterministic, fixed-step).
        field: the :class:`Field` (or just its :class:`Interpolant`) the solver will run on.
        kind: the prediction the coefficients multiply; default ``x1`` (data) for log-SNR solvers, ``velocity``
            otherwise (any kind the solver can convert from at every evaluation time works).

    Raises:
        ConfigError: solvers without a plan (adaptive, stochastic, DPM-Solver-v3's per-dimension statistics), a
            ``kind`` the solver cannot use at one of its times.
    """
    solver = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if not isinstance(solver, LinearSolver):
        why = "adaptive" if solver.adaptive else "stochastic" if solver.stochastic else "not linear on a fixed grid"
        raise ConfigError("solver", f"linearize needs a deterministic fixed-step solver; {solver.name!r} is {why}"
                                    + (" (per-dimension statistics)" if solver.name == "dpm_solver_v3" else ""))
    interp = _interpolant_of(field)
    solver.check_interpolant(interp)
    kind = canonical_prediction(kind or ("x1" if solver.needs_gaussian else "velocity"), "kind")
    if grid is None:
        grid = solver.make_grid(interp, nfe, schedule, t_start, t_end)
    elif solver.nfe_for_steps(len(grid) - 1) != check_nfe(nfe, solver.evals_per_step, solver.name):
        raise ConfigError("grid", f"{len(grid) - 1} steps of {solver.name!r} do not cost nfe={nfe}")
    plan = solver.plan_for(interp, [float(v) for v in grid])
    try:
        program = compile_plan(plan, interp, kind)
    except ConfigError as exc:
        raise ConfigError("kind", f"{solver.name!r} cannot use {kind!r} predictions of {interp.name!r} at every "
                                  f"time it evaluates ({exc}); try kind='velocity', 'x1' or 'noise'") from None
    n = plan.n
    states = [[1.0] + [0.0] * n]  # y_k over (x0, K_0 .. K_{n-1})
    derived = {ds: (k, al) for k, ds_list in enumerate(program.derive) for ds, al in ds_list}  # y_k + al K_k
    for j, ((ls, lc), rest) in enumerate(program.rows):
        dense = program.dense[j]
        terms = [(0, dense[0])] + [(n + k, w) for k, w in enumerate(dense[1])] if dense else [(ls, lc), *rest]
        v = [0.0] * (n + 1)
        for slot, c in terms:
            k, al = derived.get(slot, (slot, 0.0)) if slot >= 2 * n else (slot, 0.0)
            if slot < n or slot >= 2 * n:
                v = [vi + c * si for vi, si in zip(v, states[k])]
                v[1 + k] += c * al
            else:
                v[1 + slot - n] += c
        states.append(v)
    label = f"linearize({solver!r}, nfe={nfe}, {'grid' if grid is not None else schedule})"
    return NSCoefficients(times=list(plan.model_times), a=[v[0] for v in states[1:]],
                          b=[v[1: j + 2] for j, v in enumerate(states[1:])], kind=kind, t_start=plan.grid[0],
                          t_end=plan.grid[-1], source=label, order=int(solver.order))

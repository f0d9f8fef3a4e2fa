r"""Sampler base classes.

A solver integrates :math:`dX = b(t, X)\,dt` (ODE) or :math:`dX = (b + \varepsilon(t)s)\,dt + \sqrt{2\varepsilon(t)}\,dW`
(SDE) from ``t_start`` to ``t_end`` on a grid from a :class:`~workbench.schedules.Schedule`.

NFE is a budget, audited by the run, never by the solver's claim: every run wraps the user's
:class:`~workbench.models.field.Field` in its own :class:`~workbench.models.field.RunField` view, which counts
the run's calls and refuses one beyond the budget (the user's field is never reset, so interleaved runs on one
model each keep their own count). A fixed-step solver with ``k`` evaluations per step takes ``steps = nfe // k``
steps (documented rounding down; ``result.nfe`` is the count actually made, ``result.nfe_budget`` what was asked).
"""
from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple, Union

import torch

from ..config import Config
from ..errors import ConfigError, NonFiniteError, NonFiniteWarning
from ..interpolants.base import Interpolant
from ..models.field import Field, Prediction, RunField
from ..registry import Registry
from ..schedules.base import SCHEDULES, Schedule

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan, Program

EpsLike = Union[float, Callable[[float], float]]


@dataclass
class Step:
    """What a solver reports after each step (the dashboard's stream payload).

    Attributes:
        index: step number, from 0.
        t, t_next: the step's interval.
        x: state at ``t_next``.
        nfe: cumulative model calls so far.
        prediction: the model evaluation at the step's start (lazy ``.data``/``.velocity``/...), if any.
        accepted: False for a rejected adaptive step (``x`` is then unchanged).
        order: the order of the update used at this step.
        error: an adaptive solver's scaled local-error estimate of this attempt (None for fixed-step solvers).
        nonfinite: True for an adaptive step rejected because the model returned NaN/Inf inside it.
    """

    index: int
    t: float
    t_next: float
    x: torch.Tensor
    nfe: int
    prediction: Optional[Prediction] = None
    accepted: bool = True
    order: int = 1
    error: Optional[float] = None
    nonfinite: bool = False


@dataclass
class SampleResult:
    """Outcome of one sampling run.

    Attributes:
        x: final state, shape ``(B, ...)``.
        times: the times of the states in ``trajectory`` (accepted grid), float64.
        nfe: counted model calls; ``nfe_budget``: the budget asked for.
        steps: accepted steps taken.
        trajectory: ``(steps + 1, B, ...)`` states when requested, else None.
        orders: order used at each accepted step.
        info: solver-specific counters (e.g. ``rejected`` for adaptive solvers).
        wall_time: seconds.
    """

    x: torch.Tensor
    times: torch.Tensor
    nfe: int
    nfe_budget: Optional[int]
    steps: int
    trajectory: Optional[torch.Tensor] = None
    orders: List[int] = field(default_factory=list)
    info: Dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0


def check_nfe(nfe: object, minimum: int = 1, solver: str = "", adaptive: bool = False) -> int:
    """Validate an NFE budget: an integer in ``[minimum, MAX_NFE]`` (``MAX_ADAPTIVE_NFE`` for an adaptive
    solver's cap; :func:`workbench.validation.nfe`)."""
    from .. import validation

    return validation.nfe(nfe, minimum, solver, validation.MAX_ADAPTIVE_NFE if adaptive else validation.MAX_NFE)


def check_grid(grid: object) -> torch.Tensor:
    """A user's time grid as a 1-D float64 tensor: at least two finite points in [0, 1], strictly monotone
    (increasing for sampling; strictly decreasing is allowed for inversion), else a :class:`ConfigError`.
    A tensor is checked on a detached copy and returned unchanged."""
    try:
        g = torch.as_tensor(grid, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError("grid", f"must be a 1-D sequence of times, got {type(grid).__name__} ({exc})") from None
    if g.dim() != 1 or g.numel() < 2:
        raise ConfigError("grid", f"needs at least two times in a 1-D sequence, got shape {tuple(g.shape)}")
    if not bool(torch.isfinite(g).all()) or float(g.min()) < 0.0 or float(g.max()) > 1.0:
        raise ConfigError("grid", f"times must be finite and within [0, 1], got {g.tolist()}")
    d = g[1:] - g[:-1]
    if not (bool((d > 0).all()) or bool((d < 0).all())):
        i = int(torch.nonzero(d <= 0).flatten()[0]) if bool((d[0] > 0)) else int(torch.nonzero(d >= 0).flatten()[0])
        raise ConfigError("grid", f"times must be strictly increasing (or, for inversion, strictly decreasing); "
                                  f"t[{i}]={g[i].item():.6g} is followed by t[{i + 1}]={g[i + 1].item():.6g}")
    return grid if isinstance(grid, torch.Tensor) else g  # a tensor is kept as given (device, autograd)


#: Step counts an :class:`OrderCheck` fits over by default (asymptotic on gmm2d for all but the order-4 multistep methods).
STEPS: Tuple[int, ...] = (64, 128, 256)


@dataclass(frozen=True)
class OrderCheck:
    """A check in a solver class's ``order_checks``: built with ``params`` it fits an order within ``tolerance`` of
    ``expected`` (default: its ``order``) over ``steps`` on each path of :data:`workbench.convergence.PATHS` named."""

    params: Dict[str, Any] = field(default_factory=dict)
    expected: Optional[int] = None
    steps: Tuple[int, ...] = STEPS
    tolerance: float = 0.15
    paths: Tuple[str, ...] = ("linear", "vp")


@dataclass(frozen=True)
class Exempt:
    """``order_checks`` of a class whose order is no property of the PF-ODE map at a step count (stochastic,
    adaptive, pilot statistics): why, and the ``test`` (``tests/<file>.py::<name>``) that checks it instead."""

    reason: str
    test: str


class Solver(Config):
    """Common interface of all samplers: an immutable value (:class:`~workbench.config.Config`: its fields are the
    constructor's parameters, equality and hash by value, ``replace(...)`` for a changed copy), stateless between runs.

    Class attributes:
        order: the convergence order the tests assert.
        evals_per_step: model calls per step (fixed-step solvers).
        stochastic: True for SDE samplers (they take ``eps``).
        adaptive: True when the grid is chosen by error control (the schedule is ignored).
        needs_gaussian: True for log-SNR solvers, which need an interpolant with a Gaussian part.
        order_checks: the convergence checks of this class — a tuple of :class:`OrderCheck` or an :class:`Exempt` —
            declared on every registered class itself (not inherited; tests/solvers/test_orders.py fails otherwise).
    """

    name: str = "solver"
    order: int = 1
    evals_per_step: int = 1
    stochastic: bool = False
    adaptive: bool = False
    needs_gaussian: bool = False
    order_checks: ClassVar[Union[Tuple[OrderCheck, ...], Exempt]]

    # --- NFE ↔ steps ---------------------------------------------------------------------------
    def steps_for_nfe(self, nfe: int) -> int:
        """Steps a budget of ``nfe`` evaluations buys (rounding down)."""
        nfe = check_nfe(nfe, self.evals_per_step, self.name)
        return nfe // self.evals_per_step

    def nfe_for_steps(self, steps: int) -> int:
        """Evaluations ``steps`` steps cost."""
        return steps * self.evals_per_step

    # --- pilot statistics ------------------------------------------------------------------------
    @property
    def needs_pilot(self) -> bool:
        """True when this configuration cannot sample before statistics are estimated from a pilot run
        (e.g. DPM-Solver-v3 without its EMS); :meth:`prepare` then returns the ready solver."""
        return False

    def prepare(self, field: Field, x_pilot: torch.Tensor, t_start: float = 0.0,
                t_end: float = 1.0) -> "Solver":
        """The solver ready to sample ``field`` over [t_start, t_end], estimating what it needs from the pilot
        start states ``x_pilot`` when :attr:`needs_pilot`; otherwise ``self`` (no model call)."""
        return self

    # --- the step loop ---------------------------------------------------------------------------
    @abstractmethod
    def iterate(self, field: Field, x: torch.Tensor, grid: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> Iterator[Step]:
        """Yield a :class:`Step` after each step of the grid (or each adaptive attempt)."""

    def make_grid(self, field: Union[Field, Interpolant], nfe: int, schedule: Union[str, Schedule] = "uniform",
                  t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        """The time grid this solver uses for a budget ``nfe`` (only the field's interpolant matters, so an
        :class:`Interpolant` may be passed instead: no model has to be built to know the grid)."""
        sched = SCHEDULES.get(schedule) if isinstance(schedule, str) else schedule
        if self.adaptive:
            return torch.tensor([t_start, t_end], dtype=torch.float64)
        return sched.grid(self.steps_for_nfe(nfe), _interpolant_of(field), t_start, t_end)

    def check_interpolant(self, field: Union[Field, Interpolant]) -> None:
        """Raise a clear error when this solver cannot run on the interpolant (of ``field``)."""
        interpolant = _interpolant_of(field)
        if self.needs_gaussian and not interpolant.monotone_snr:
            from . import SOLVERS  # late import: the registry lives in the package

            ok = [n for n in SOLVERS.names() if not SOLVERS.cls(n).needs_gaussian]
            raise ConfigError(
                "solver",
                f"{self.name!r} works in log-SNR and needs an interpolant with a Gaussian part and monotone "
                f"log-SNR; {interpolant.name!r} has none. Solvers that apply: {', '.join(ok)}",
            )

    def sample(self, field: Field, x: torch.Tensor, nfe: int, schedule: Union[str, Schedule] = "uniform",
               t_start: float = 0.0, t_end: float = 1.0, return_trajectory: bool = False,
               generator: Optional[torch.Generator] = None, progress: bool = False,
               grid: Optional[torch.Tensor] = None) -> SampleResult:
        """Integrate from ``x`` at ``t_start`` to ``t_end`` with at most ``nfe`` model calls.

        Args:
            field: the wrapped model.
            x: initial state ``(B, ...)`` at ``t_start``.
            nfe: evaluation budget.
            schedule: a registry name or a :class:`Schedule`.
            return_trajectory: keep every accepted state.
            generator: RNG for stochastic solvers.
            progress: show a tqdm bar.
            grid: an explicit time grid (overrides ``schedule``; endpoints define the interval).

        Raises:
            NonFiniteError: a NaN/Inf appeared; names the first bad step and its time.
            BudgetExceededError: an adaptive solver needed more than ``nfe`` calls.
        """
        run = self.stream(field, x, nfe, schedule, t_start, t_end, return_trajectory, generator, progress, grid)
        for _ in run:
            pass
        return run.result  # type: ignore[return-value]

    def stream(self, field: Field, x: torch.Tensor, nfe: int, schedule: Union[str, Schedule] = "uniform",
               t_start: float = 0.0, t_end: float = 1.0, return_trajectory: bool = False,
               generator: Optional[torch.Generator] = None, progress: bool = False,
               grid: Optional[torch.Tensor] = None) -> "SamplingRun":
        """Like :meth:`sample`, but returns a :class:`SamplingRun`: iterate it to receive each :class:`Step`
        as it happens (live plots); ``run.result`` is set when the loop ends; ``run.cancel()`` stops early."""
        nfe = check_nfe(nfe, 1 if self.adaptive else self.evals_per_step, self.name, adaptive=self.adaptive)
        self.check_interpolant(field)
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise ConfigError("x", "must be a tensor of shape (B, ...)")
        if grid is None:
            grid = self.make_grid(field, nfe, schedule, t_start, t_end)
        else:
            grid = check_grid(grid)
        return SamplingRun(self, field, x, nfe, grid, return_trajectory, generator, progress)


def _interpolant_of(field: Union[Field, Interpolant]) -> Interpolant:
    return field if isinstance(field, Interpolant) else field.interpolant


class SamplingRun:
    """One sampling run as an iterator of accepted and rejected :class:`Step` s.

    The bookkeeping (NFE audit, trajectory, orders, NaN detection by one reduction per step, without host sync) lives here,
    so :meth:`Solver.sample`, the CLI progress bar and the dashboard's live stream share one code path.
    """

    def __init__(self, solver: Solver, field: Field, x: torch.Tensor, nfe: int, grid: torch.Tensor,
                 return_trajectory: bool, generator: Optional[torch.Generator], progress: bool):
        self.solver, self.field, self.x0, self.nfe_budget, self.grid = solver, field, x, nfe, grid
        self.return_trajectory, self.generator, self.progress = return_trajectory, generator, progress
        self.result: Optional[SampleResult] = None
        self.cancelled = False
        self.view: Optional[RunField] = None  # this run's counting view of ``field`` (set when iteration starts)

    @property
    def nfe(self) -> int:
        """Model calls this run has made so far."""
        return 0 if self.view is None else self.view.nfe

    def cancel(self) -> None:
        """Stop before the next step; ``result`` stays None."""
        self.cancelled = True

    def __iter__(self) -> Iterator[Step]:
        solver = self.solver
        field = self.view = RunField(self.field, self.nfe_budget)  # this run's own counter and budget
        start = time.perf_counter()
        traj: List[torch.Tensor] = [self.x0] if self.return_trajectory else []
        times: List[float] = [float(self.grid[0])]
        step_sums: List[torch.Tensor] = []
        orders: List[int] = []
        rejected = 0
        nonfinite: List[float] = []  # times of steps rejected because the model returned NaN/Inf
        it: Iterator[Step] = solver.iterate(field, self.x0, self.grid, self.generator)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=None if solver.adaptive else len(self.grid) - 1, desc=solver.name, leave=False)
        last = self.x0
        try:
            for step in it:
                if self.cancelled:
                    return
                if not step.accepted:
                    rejected += 1
                    if step.nonfinite:
                        nonfinite.append(step.t)
                    yield step
                    continue
                last = step.x
                # One cheap reduction per step and no host sync: a NaN/±Inf anywhere makes the sum non-finite
                # (≈ 30x cheaper than isfinite(x).all() on a 64x3x32x32 state); checked once after the loop.
                step_sums.append((last.detach() if last.requires_grad else last).sum())
                times.append(step.t_next)
                orders.append(step.order)
                if self.return_trajectory:
                    traj.append(step.x)
                if bar is not None:
                    bar.update(1)
                yield step
        finally:
            if bar is not None:
                bar.close()
        if step_sums:
            flags = torch.isfinite(torch.stack(step_sums))
            if not bool(flags.all()):
                i = int((~flags).nonzero()[0])
                raise NonFiniteError(
                    f"trajectory: NaN/Inf (or overflow) appeared at step {i} (t={times[i + 1]:.6g}) of solver "
                    f"{solver.name!r}; if the model itself returns NaN/Inf (check its weights and inputs at that t) "
                    f"no budget helps, else the integration blew up: try more NFE, a different schedule, or a smaller eps"
                )
        self.result = SampleResult(
            x=last, times=torch.tensor(times, dtype=torch.float64), nfe=field.nfe, nfe_budget=self.nfe_budget,
            steps=len(orders), trajectory=torch.stack(traj) if self.return_trajectory else None, orders=orders,
            info={"accepted": len(orders), "rejected": rejected, **({"rejected_nonfinite": len(nonfinite),
                  "first_nonfinite_t": nonfinite[0]} if nonfinite else {})}, wall_time=time.perf_counter() - start,
        )
        if nonfinite:
            import warnings

            warnings.warn(f"{solver.name}: {len(nonfinite)} step(s) rejected because the model returned NaN/Inf "
                          f"inside them (first at t={nonfinite[0]:.6g}); smaller steps avoided it and the result is "
                          f"finite, but check the model there (result.info['rejected_nonfinite'])",
                          NonFiniteWarning, stacklevel=3)


class FixedStepSolver(Solver):
    """A solver stepping through every grid interval; subclasses implement :meth:`step`.

    ``state`` is a dict local to one run (multistep history lives there, never on the object), so runs are
    re-entrant and two runs with the same inputs are bit-identical.
    """

    def iterate(self, field, x, grid, generator=None):
        ts = grid.tolist()
        state: Dict[str, Any] = {"n_steps": len(ts) - 1}
        for i in range(len(ts) - 1):
            t, t_next = ts[i], ts[i + 1]
            x, pred, order = self.step(field, x, t, t_next, i, state, generator)
            yield Step(i, t, t_next, x, field.nfe, pred, True, order)

    @abstractmethod
    def step(self, field: Field, x: torch.Tensor, t: float, t_next: float, index: int,
             state: Dict[str, Any], generator: Optional[torch.Generator]):
        """Advance ``x`` from ``t`` to ``t_next``; return ``(x_next, prediction at start or None, order)``."""


SOLVERS: Registry[Solver] = Registry("solver")
register = SOLVERS.register


class LinearSolver(Solver):
    """A deterministic fixed-step sampler given entirely by its :class:`~workbench.solvers.plan.Plan`.

    Subclasses implement only :meth:`build_plan` (a pure function of the solver's parameters, the interpolant and the
    grid); the plan is cached by value, compiled once per model output kind, and run by the one executor
    :func:`~workbench.solvers.plan.execute`.
    """

    def build_plan(self, interpolant: Interpolant, grid: List[float]) -> "Plan":
        """The linear form of a run on ``grid`` (override)."""
        raise NotImplementedError

    def plan_for(self, interpolant: Interpolant, grid: List[float]) -> "Plan":
        """:meth:`build_plan`, memoised by (solver value, interpolant value, grid)."""
        from .plan import PLANS, value_key

        key = (value_key(self), value_key(interpolant), tuple(grid))
        return PLANS.get(key, lambda: self.build_plan(interpolant, list(grid)))

    def program_for(self, interpolant: Interpolant, grid: List[float], raw_kind: str) -> "Program":
        """The plan compiled for a model whose output is ``raw_kind`` (memoised)."""
        from .plan import PROGRAMS, compile_plan, value_key

        key = (value_key(self), value_key(interpolant), tuple(grid), raw_kind)
        return PROGRAMS.get(key, lambda: compile_plan(self.plan_for(interpolant, grid), interpolant, raw_kind))

    def iterate(self, field: Field, x: torch.Tensor, grid: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> Iterator[Step]:
        from .plan import execute

        ts = [float(v) for v in grid.tolist()]
        program = self.program_for(field.interpolant, ts, field.prediction)
        plan = program.plan
        g, orders, ends = plan.grid, plan.orders, plan.ends
        for j, y, pred in execute(program, field, x):
            i = ends[j]
            yield Step(i, g[i], g[i + 1], y, field.nfe, pred, True, orders[i])

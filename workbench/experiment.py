r"""One validated configuration → one run → one result, shared by the CLI, the dashboard and the notebooks.

>>> from workbench import Experiment
>>> res = Experiment(interpolant="linear", solver="heun", nfe=20, n_samples=500).run()
>>> res.nfe, round(res.error, 4)  # doctest: +SKIP
(20, 0.0055)

Every field is validated once, in ``__post_init__``; a bad field raises :class:`~workbench.errors.ConfigError`
naming it and listing the allowed values.
"""
from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import torch

from . import validation
from .errors import ConfigError
from .interpolants import INTERPOLANTS
from .metrics.distances import sliced_wasserstein
from .problems import PROBLEMS, Problem
from .schedules import SCHEDULES, GridFit, fit_grid
from .solvers import SOLVERS, SampleResult, Solver, Step, check_nfe
from .solvers.learned import NSFit, fit_nonstationary
from .solvers.sde import check_eps
from .utils import resolve_device, resolve_dtype


@dataclass
class ExperimentResult:
    """What one run produced.

    Attributes:
        config: the experiment's configuration (JSON-able).
        samples: final states ``(n_samples, ...)``.
        start: the start states.
        trajectory: ``(steps + 1, n_samples, ...)`` or None.
        times: the times of the trajectory's states.
        nfe: counted model calls; ``nfe_budget``: the budget.
        steps: accepted steps.
        wall_time: seconds spent sampling.
        error: mean L2 distance of the samples to the exact PF-ODE map of the same start states (ODE solvers
            on problems with an exact reference), else None.
        max_error: the largest per-sample distance (same conditions).
        sliced_w2: sliced Wasserstein-2 between the samples and exact samples of the target law (when known).
        reference: the exact final states (when known).
        info: solver counters (accepted/rejected).
    """

    config: Dict[str, Any]
    samples: torch.Tensor
    start: torch.Tensor
    trajectory: Optional[torch.Tensor]
    times: torch.Tensor
    nfe: int
    nfe_budget: int
    steps: int
    wall_time: float
    error: Optional[float]
    max_error: Optional[float]
    sliced_w2: Optional[float]
    reference: Optional[torch.Tensor]
    target: Optional[torch.Tensor]
    info: Dict[str, Any] = field(default_factory=dict)

    def summary(self) -> Dict[str, Any]:
        """Scalar results (JSON-able)."""
        return {
            "interpolant": self.config["interpolant"], "schedule": self.config["schedule"],
            "solver": self.config["solver"], "nfe_budget": self.nfe_budget, "nfe": self.nfe, "steps": self.steps,
            "error": self.error, "max_error": self.max_error, "sliced_w2": self.sliced_w2,
            "wall_time": self.wall_time, **{k: v for k, v in self.info.items() if isinstance(v, (int, float))},
        }

    def plot(self, path: Optional[str] = None, max_paths: int = 300):
        """Trajectories (first two coordinates) and final samples vs the exact reference; saved as PNG if ``path``."""
        from .plotting import plot_trajectories

        return plot_trajectories(self, path=path, max_paths=max_paths)


@dataclass
class Experiment:
    """A sampling experiment.

    Args:
        interpolant: registry name (see ``workbench.interpolants.names()``); ``interpolant_params`` its kwargs.
        schedule: time-grid registry name; ``schedule_params`` its kwargs.
        solver: solver registry name; ``solver_params`` its kwargs.
        nfe: budget of model evaluations (≥ the solver's evaluations per step).
        eps: diffusion coefficient ε ≥ 0 (or a callable ``t -> ε``) for SDE solvers; must be 0 for ODE solvers.
        data: problem registry name (default ``gmm2d``) or a :class:`~workbench.problems.Problem`; ``data_params`` its kwargs.
        n_samples: particles.
        seed: seeds start states, noise and target samples.
        device: ``"cpu"``, ``"cuda"``, ...; dtype: ``"float32"`` or ``"float64"``.
        t_start, t_end: integration interval within [0, 1].
        keep_trajectory: keep every state (for plots).
        model: a user's model from :mod:`workbench.adapters` (``from_diffusers``, ``from_denoiser``,
            ``from_flow_matching``, ``from_velocity``); it replaces ``data`` and brings its own interpolant. Without an
            exact answer, ``error`` is measured against the model's own accurate ODE solution (Dormand–Prince, 1e-7).
        x_start: the start states ``(n, ...)`` at ``t_start`` (with a model or a built-in problem); sets ``n_samples``.
        score: compare the result with the problem's reference (for a user's model, its own Dormand–Prince solve,
            ~10³ evaluations); False skips it.
    """

    interpolant: str = "linear"
    interpolant_params: Dict[str, Any] = field(default_factory=dict)
    schedule: str = "uniform"
    schedule_params: Dict[str, Any] = field(default_factory=dict)
    solver: str = "heun"
    solver_params: Dict[str, Any] = field(default_factory=dict)
    nfe: int = 20
    eps: Union[float, Callable[[float], float]] = 0.0
    data: Union[str, Problem] = "gmm2d"
    data_params: Dict[str, Any] = field(default_factory=dict)
    n_samples: int = 2000
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    t_start: float = 0.0
    t_end: float = 1.0
    keep_trajectory: bool = True
    model: Optional[Any] = None
    x_start: Optional[torch.Tensor] = None
    score: bool = True

    def __post_init__(self) -> None:
        for name in ("interpolant_params", "schedule_params", "solver_params", "data_params"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(name, f"must be a dict of keyword arguments, got {getattr(self, name)!r}")
        if self.model is not None:
            from .adapters.base import ModelProblem

            self.data = ModelProblem(self.model, self.x_start)  # validates the model
            self._interpolant = self.model.interpolant
            self.interpolant, self.interpolant_params = self._interpolant.name, {}
        else:
            self.interpolant = INTERPOLANTS.canonical(self.interpolant)
            self._interpolant = INTERPOLANTS.get(self.interpolant, **self.interpolant_params)
        self.schedule = SCHEDULES.canonical(self.schedule)
        self.solver = SOLVERS.canonical(self.solver)
        self._schedule = SCHEDULES.get(self.schedule, **self.schedule_params)
        self.eps = check_eps(self.eps)
        solver_cls = SOLVERS.cls(self.solver)
        params = dict(self.solver_params)
        if "eps" in SOLVERS.parameters(self.solver):
            params.setdefault("eps", self.eps)
        elif callable(self.eps) or self.eps != 0.0:
            takes_eps = [n for n in SOLVERS.names() if "eps" in SOLVERS.parameters(n)]
            kind = "SDE" if solver_cls.stochastic else "ODE"
            raise ConfigError("eps", f"eps={self.eps!r} is only used by the solvers {', '.join(takes_eps)}; "
                                     f"set eps=0 for the {kind} solver {self.solver!r}")
        self._solver = SOLVERS.get(self.solver, **params)
        self.nfe = check_nfe(self.nfe, 1 if solver_cls.adaptive else solver_cls.evals_per_step, self.solver)
        if isinstance(self.data, Problem):
            self._problem = self.data
        else:
            self.data = PROBLEMS.canonical(self.data)
            self._problem = PROBLEMS.get(self.data, **self.data_params)
        if self.x_start is not None:
            if not isinstance(self.x_start, torch.Tensor) or self.x_start.dim() < 1 or self.x_start.shape[0] < 1:
                raise ConfigError("x_start", f"must be a tensor of start states (n, ...), got {type(self.x_start).__name__}")
            shape = tuple(self._problem.shape)
            if tuple(self.x_start.shape[1:]) != shape:
                raise ConfigError("x_start", f"has states of shape {tuple(self.x_start.shape[1:])}; the problem's "
                                             f"samples have shape {shape}")
            if not bool(torch.isfinite(self.x_start).all()):
                raise ConfigError("x_start", "contains NaN or Inf")
            self.n_samples = int(self.x_start.shape[0])
        self.n_samples, self.seed = validation.n_samples(self.n_samples), validation.seed(self.seed)
        self._device = resolve_device(self.device)
        self._dtype = resolve_dtype(self.dtype)
        for name in ("t_start", "t_end"):
            validation.number(name, getattr(self, name), 0.0, 1.0)
        if not 0.0 <= self.t_start < self.t_end <= 1.0:
            raise ConfigError("t_start/t_end", f"need 0 <= t_start < t_end <= 1, got {self.t_start}, {self.t_end}")
        self._solver.check_interpolant(self._interpolant)
        self._problem.check(self._interpolant, self.t_start, self.t_end)
        states = (len(self.grid()) if self.keep_trajectory else 1) + 4  # validates the schedule now, not mid-run
        validation.check_memory("n_samples", self.n_samples * math.prod(self._problem.shape) * self._dtype.itemsize
                                * states, f"{self.n_samples} samples x {states} stored states")

    # ---- pieces ------------------------------------------------------------------------------------
    def config(self) -> Dict[str, Any]:
        """The configuration as a JSON-able dict."""
        d = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in ("model", "x_start", "data")}
        d["data"] = self.data if isinstance(self.data, str) else None
        d["model"] = self.model.describe() if self.model is not None else None
        d["x_start"] = list(self.x_start.shape) if self.x_start is not None else None
        if callable(self.eps):
            d["eps"] = getattr(self.eps, "__name__", "callable")
        if isinstance(self.data, Problem):
            d["data"] = getattr(self.data, "name", type(self.data).__name__)
        return d


    def grid(self) -> torch.Tensor:
        """The time grid the solver will use."""
        return self._solver.make_grid(self._interpolant, self.nfe, self._schedule, self.t_start, self.t_end)

    def _generators(self):
        g_start = torch.Generator().manual_seed(self.seed)
        g_target = torch.Generator().manual_seed(self.seed + 1_000_003)
        g_noise = torch.Generator(device=self._device).manual_seed(self.seed + 2_000_003)
        return g_start, g_target, g_noise

    def start_states(self) -> torch.Tensor:
        """The seeded start states (or the given ``x_start``) on the experiment's device and dtype."""
        g_start, _, _ = self._generators()
        return self._sample_start(g_start).to(device=self._device, dtype=self._dtype)

    def _sample_start(self, generator: torch.Generator) -> torch.Tensor:
        if self.x_start is not None:
            return self.x_start.detach().to(torch.float64).cpu()
        return self._problem.sample_start(self._interpolant, self.t_start, self.n_samples, generator)

    def _pilot(self, n_pilot: int):
        """``(field, pilot start states, reference end states or None)`` for the fits: the start states come from
        a seed disjoint from the run's; the reference is the problem's exact map when it has one."""
        validation.n_samples(n_pilot, "n_pilot", minimum=8)
        g_pilot = torch.Generator().manual_seed(self.seed + 4_000_037)
        xp = self._problem.sample_start(self._interpolant, self.t_start, n_pilot, g_pilot)
        ref = self._problem.reference(self._interpolant, xp, self.t_start, self.t_end)
        field_ = self._problem.field(self._interpolant, self._device, self._dtype)
        xp = xp.to(device=self._device, dtype=self._dtype)
        if ref is not None:
            ref = ref.to(device=self._device, dtype=self._dtype)
        return field_, xp, ref

    def fit_schedule(self, n_pilot: int = 512, max_evals: Optional[int] = None,
                     progress: bool = False) -> Tuple["Experiment", GridFit]:
        """Fit this experiment's time grid to its model by a pilot run (:func:`~workbench.schedules.fit_grid`).

        The pilot start states come from a seed disjoint from the run's, the current schedule is the initial
        grid, and the pilot's reference is the problem's exact map when it has one (else the model's own
        PF-ODE by Dormand–Prince). Returns a copy of the experiment on ``schedule="explicit"`` with the fitted
        times, and the :class:`~workbench.schedules.GridFit` (losses before/after, pilot NFE, seconds).
        """
        field_, xp, ref = self._pilot(n_pilot)
        fit = fit_grid(self._solver, field_, xp, self.nfe, self._schedule, self.t_start, self.t_end,
                       reference=ref, max_evals=max_evals, progress=progress)
        return replace(self, schedule="explicit", schedule_params={"times": list(fit.times)}), fit

    def fit_solver(self, n_pilot: int = 512, adam_steps: int = 0, lbfgs_steps: int = 800,
                   progress: bool = False) -> Tuple["Experiment", NSFit]:
        """Fit a non-stationary solver with this experiment's NFE to its model by a pilot run
        (:func:`~workbench.solvers.learned.fit_nonstationary`), starting from the exact non-stationary form of the
        current solver on the current schedule.

        Pilot states and reference are drawn as in :meth:`fit_schedule`. Returns a copy of the experiment with
        ``solver="nonstationary"`` and the fitted coefficients as ``solver_params``, and the
        :class:`~workbench.solvers.learned.NSFit` (losses before/after, pilot NFE, seconds).
        """
        field_, xp, ref = self._pilot(n_pilot)
        fit = fit_nonstationary(field_, xp, self.nfe, init=self._solver, schedule=self._schedule,
                                t_start=self.t_start, t_end=self.t_end, reference=ref, adam_steps=adam_steps,
                                lbfgs_steps=lbfgs_steps, progress=progress)
        return replace(self, solver="nonstationary", solver_params={"coefficients": fit.coefficients}), fit

    def search_solver(self, n_pilot: int = 512, progress: bool = False, **search: Any):
        """Search a per-step solver with this experiment's NFE by a pilot run (USF / S³,
        :class:`~workbench.fitting.usf.USFSearch`; ``search``: its parameters). Pilot states and reference as in
        :meth:`fit_schedule`. Returns a copy of the experiment running the searched solver (its exact
        non-stationary form, ``solver="nonstationary"``) and the :class:`~workbench.fitting.usf.USFFit`."""
        from .fitting.saved import apply_fit
        from .fitting.usf import FITS

        field_, xp, ref = self._pilot(n_pilot)
        fit = FITS.get("usf", **search).fit(field_, xp, self.nfe, self.t_start, self.t_end, reference=ref,
                                            progress=progress)
        return apply_fit(self, fit), fit

    # ---- running ----------------------------------------------------------------------------------
    def ready_solver(self, n_pilot: int = 256) -> Solver:
        """The configured solver, with the statistics it needs estimated once from a pilot run when it
        :attr:`~workbench.solvers.Solver.needs_pilot` (DPM-Solver-v3's EMS; pilot states from a seed disjoint
        from the run's); memoised on this experiment."""
        if getattr(self, "_ready", None) is None:
            solver = self._solver
            if solver.needs_pilot:
                field_, xp, _ = self._pilot(n_pilot)
                solver = solver.prepare(field_, xp, self.t_start, self.t_end)
            self._ready = solver
        return self._ready

    def stream(self) -> "ExperimentRun":
        """A run whose iteration yields each :class:`~workbench.solvers.Step` as it happens (for live plots);
        after the loop, ``run.result`` holds the :class:`ExperimentResult`."""
        return ExperimentRun(self)

    def run(self, progress: bool = False) -> ExperimentResult:
        """Run to the end and score the result."""
        run = ExperimentRun(self, progress=progress)
        for _ in run:
            pass
        return run.result  # type: ignore[return-value]


class ExperimentRun:
    """Iterate to sample step by step; ``cancel()`` stops at the next step; ``result`` is set at the end.

    Attributes:
        start: the start states; steps_done: accepted steps so far; grid: the time grid.
    """

    def __init__(self, exp: Experiment, progress: bool = False):
        self.exp = exp
        g_start, self._g_target, g_noise = exp._generators()
        field_ = exp._problem.field(exp._interpolant, exp._device, exp._dtype)
        self.start = exp._sample_start(g_start)
        x = self.start.to(device=exp._device, dtype=exp._dtype)
        self.grid = exp.grid()
        self._run = exp.ready_solver().stream(field_, x, exp.nfe, grid=self.grid, return_trajectory=exp.keep_trajectory,
                                       generator=g_noise, progress=progress)
        self.result: Optional[ExperimentResult] = None
        self.steps_done = 0

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._run.cancelled

    def cancel(self) -> None:
        """Ask the run to stop before its next step."""
        self._run.cancel()

    def __iter__(self) -> Iterator[Step]:
        for step in self._run:
            if step.accepted:
                self.steps_done += 1
            yield step
        if self._run.result is not None:
            self.result = _score(self.exp, self._run.result, self.start, self._g_target)


_REFERENCE_CACHE: "OrderedDict[str, torch.Tensor]" = OrderedDict()
_REFERENCE_CACHE_SIZE = 32


def _cached_reference(exp: Experiment, start: torch.Tensor) -> Optional[torch.Tensor]:
    """The exact PF-ODE map of the seeded start states, memoised per (problem, interpolant, seed, n, interval).

    Start states are a pure function of those fields, so repeated runs that differ only in solver, schedule
    or NFE (a sweep, a dashboard session) pay for the tight reference solve once.
    """
    if isinstance(exp.data, Problem) or exp.x_start is not None:  # not a pure function of the config: no cache
        return exp._problem.reference(exp._interpolant, start, exp.t_start, exp.t_end)
    key = json.dumps([exp.data, exp.data_params, exp.interpolant, exp.interpolant_params, exp.seed,
                      exp.n_samples, exp.t_start, exp.t_end], sort_keys=True, default=str)
    if key not in _REFERENCE_CACHE:
        ref = exp._problem.reference(exp._interpolant, start, exp.t_start, exp.t_end)
        if ref is None:
            return None
        _REFERENCE_CACHE[key] = ref
        while len(_REFERENCE_CACHE) > _REFERENCE_CACHE_SIZE:
            _REFERENCE_CACHE.popitem(last=False)
    _REFERENCE_CACHE.move_to_end(key)
    return _REFERENCE_CACHE[key]


def _score(exp: Experiment, res: SampleResult, start: torch.Tensor, g_target: torch.Generator) -> ExperimentResult:
    """Compare a finished run with the exact reference and exact target samples."""
    problem, interp = exp._problem, exp._interpolant
    samples = res.x.detach()
    reference = error = max_error = None
    if not exp._solver.stochastic and exp.score:
        reference = _cached_reference(exp, start)
        if reference is not None:
            dist = (samples.to(torch.float64).cpu() - reference.cpu()).flatten(1).norm(dim=1)
            error, max_error = float(dist.mean()), float(dist.max())
    target = problem.sample_target(interp, exp.t_end, max(exp.n_samples, 2000), g_target)
    sw = None
    if target is not None:
        g = torch.Generator().manual_seed(exp.seed + 3_000_017)
        sw = float(sliced_wasserstein(samples.cpu(), target, n_projections=256, generator=g))
    return ExperimentResult(
        config=exp.config(), samples=samples, start=start, trajectory=res.trajectory, times=res.times,
        nfe=res.nfe, nfe_budget=res.nfe_budget, steps=res.steps, wall_time=res.wall_time, error=error,
        max_error=max_error, sliced_w2=sw, reference=reference, target=target, info=dict(res.info),
    )


def _plain(v: Any) -> Any:
    """A copy of a config value with dataclasses turned into dicts (as ``dataclasses.asdict`` does)."""
    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return copy.deepcopy(v)

r"""USF / S³ solver search (Liu et al. 2024, "A Unified Sampling Framework for Solver Searching of Diffusion
Probabilistic Models"): at a fixed NFE, search the per-step choices of :class:`~workbench.solvers.usf.USFSolver` —
time points, prediction kind (data/noise), predictor order, corrector on/off, derivative estimator B(h) —
for the smallest pilot error

.. math::
    \min_{s\in\mathcal S}\ L(s) = \frac1M\sum_{m=1}^{M}\big\|\Phi_s(x^{(m)}) - x^{(m)}_{\mathrm{ref}}\big\|_2 ,

with the grid parameterised as in ``fit_grid`` (:math:`t_i - t_{i-1} = (t_{end}-t_{start})\,\mathrm{softmax}(\theta)_i`).

Search (evolutionary, elitist, as the paper's):

1. the *plain* candidates — every uniform choice (kind × order × corrector × B(h), i.e. UniPC / DPM-Solver++-type
   multistep samplers) on every starting schedule — are evaluated on the whole fitting part; the best of them is the
   baseline the result is compared with (``init_loss``), the best ``population`` seed the population;
2. each generation proposes ``children`` candidates by per-step crossover of two tournament-chosen parents and
   mutation (a few per-step choices redrawn; the log-steps :math:`\theta` jittered), ranks them by the **cheap
   predictor** of the final error — the error on a small subset of the pilot (``subset`` states; the paper's
   low-cost evaluation on few samples) — and evaluates only the ``survivors`` best on the whole fitting part;
   the population keeps the ``population`` best (the plain candidates' best is never lost);
3. the time points of the winner are refined by ``fit_grid`` (derivative-free, ``refine_evals`` runs) with its
   choices fixed;
4. the winner is kept by :func:`~workbench.fitting.keep_if_better` against the best plain candidate (fitting and
   held-out parts), else the best plain candidate is returned.

The searched solver is a plan (:class:`~workbench.solvers.usf.USFSolver` on an explicit grid), and its exact
non-stationary form (:meth:`USFFit.coefficients`) runs as the registered ``nonstationary`` solver.
The result records the rank correlation of the predictor with the full-pilot error over the candidates where both
were measured (``params["proxy_spearman"]``).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import Config
from .. import validation
from ..errors import ConfigError
from ..models.field import Field
from ..schedules.base import SCHEDULES
from ..solvers.log_snr import KINDS
from ..solvers.usf import ORDERS, VARIANTS, USFSolver
from .grid import times_from_theta
from .pilot import Pilot, check_holdout, check_pilot
from .registry import FITS
from .result import FitResult
from .selection import Search, StopSearch, keep_if_better

_PENALTY = 1e6  # loss of a candidate whose run fails (NaN, a degenerate step)

#: a candidate: (log-steps θ, kinds, orders, correctors, variants), all tuples of one entry per step
Candidate = Tuple[Tuple[float, ...], Tuple[str, ...], Tuple[int, ...], Tuple[bool, ...], Tuple[str, ...]]


@dataclass
class USFFit(FitResult):
    """A searched solver (``params``: ``times``, ``kinds``, ``orders``, ``correctors``, ``variants``, ``plain`` = the
    best plain candidate's label, ``proxy_spearman``, ``candidates``); from :meth:`USFSearch.fit`."""

    _views: ClassVar[Tuple[str, ...]] = ("times",)

    @property
    def times(self) -> List[float]:
        """The searched grid."""
        return self.params["times"]

    @property
    def solver(self) -> USFSolver:
        """The searched per-step solver (run it on :attr:`schedule`, ``nfe = len(times) - 1``)."""
        p = self.params
        return USFSolver(p["kinds"], p["orders"], p["correctors"], p["variants"])

    @property
    def schedule(self):
        """The searched grid as an explicit schedule."""
        from ..schedules.explicit import ExplicitGrid

        return ExplicitGrid(self.times)

    def sample(self, field: Field, x: torch.Tensor):
        """Run the searched solver from ``x`` (a :class:`~workbench.solvers.SampleResult`)."""
        g = torch.tensor(self.times, dtype=torch.float64)
        return self.solver.sample(field, x, len(g) - 1, grid=g)

    def coefficients(self, field: Field, kind: str = "x1"):
        """The exact non-stationary coefficients of the searched solver (``SOLVERS.get("nonstationary",
        coefficients=...)`` runs it)."""
        from ..solvers.nonstationary import linearize

        g = torch.tensor(self.times, dtype=torch.float64)
        return linearize(self.solver, field, len(g) - 1, grid=g, kind=kind)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences (``nan`` below 3 pairs)."""
    if len(a) < 3:
        return math.nan
    ra = np.argsort(np.argsort(np.asarray(a)))
    rb = np.argsort(np.argsort(np.asarray(b)))
    c = np.corrcoef(ra, rb)[0, 1]
    return float(c) if math.isfinite(c) else math.nan


@FITS.register("usf", "s3", "solver_search")
class USFSearch(Config):
    """Evolutionary search over per-step solver choices at a fixed NFE (module docstring).

    Args:
        population: candidates kept per generation.
        generations: rounds of proposal, cheap ranking and full evaluation.
        children: proposals per generation (ranked by the cheap predictor).
        survivors: proposals per generation evaluated on the whole fitting part.
        subset: pilot states of the cheap predictor (the first ones of the fitting part).
        schedules: starting grids (schedule names).
        refine_evals: ``fit_grid`` runs refining the winner's time points (0: none).
        kinds / orders / variants / corrector: the choice sets searched per step (``corrector=False``: never).
        seed: the search's random generator.
        max_seconds: wall-time budget of the evolutionary stage (``None``: none).
    """

    def __init__(self, population: int = 12, generations: int = 10, children: int = 24, survivors: int = 6,
                 subset: int = 64, schedules: Sequence[str] = ("uniform", "logsnr", "edm"), refine_evals: int = 150,
                 kinds: Sequence[str] = KINDS, orders: Sequence[int] = ORDERS, variants: Sequence[str] = VARIANTS,
                 corrector: bool = True, seed: int = 0, max_seconds: Optional[float] = None):
        self.population = validation.integer("population", population, 1)
        self.generations = validation.integer("generations", generations, 0)
        self.children = validation.integer("children", children, 1)
        self.survivors = validation.integer("survivors", survivors, 1)
        if self.survivors > self.children:
            raise ConfigError("survivors", f"must be <= children ({children}), got {survivors!r}")
        self.subset = validation.integer("subset", subset, 2)
        if isinstance(schedules, str) or not schedules:
            raise ConfigError("schedules", f"must be a non-empty list of schedule names, got {schedules!r}")
        for s in schedules:
            SCHEDULES.canonical(s)
        self.schedules = tuple(schedules)
        self.refine_evals = validation.integer("refine_evals", refine_evals, 0)
        for name, vals, allowed in (("kinds", kinds, KINDS), ("orders", orders, ORDERS),
                                    ("variants", variants, VARIANTS)):
            if isinstance(vals, str) or not vals or any(v not in allowed or isinstance(v, bool) for v in vals):
                raise ConfigError(name, f"must be a non-empty subset of {', '.join(map(str, allowed))}; got {vals!r}")
        self.kinds, self.orders, self.variants = tuple(kinds), tuple(orders), tuple(variants)
        if not isinstance(corrector, bool):
            raise ConfigError("corrector", f"must be True or False, got {corrector!r}")
        self.corrector = corrector
        self.seed = validation.integer("seed", seed, 0)
        self.max_seconds = None if max_seconds is None else validation.number("max_seconds", max_seconds, above=0,
                                                                                hint=" or None")

    # ------------------------------------------------------------------------------------------------------
    def plain_candidates(self, field: Field, nfe: int, t_start: float, t_end: float) -> List[Tuple[str, Candidate]]:
        """Every uniform choice on every starting schedule, labelled (e.g. ``"D3c/bh2 logsnr"``)."""
        out = []
        probe = USFSolver()
        corr = (True, False) if self.corrector else (False,)
        for sched in self.schedules:
            g = probe.make_grid(field, nfe, sched, t_start, t_end).numpy()
            theta = tuple(float(v) for v in np.log(np.diff(g)))
            for k, p, c, v in itertools.product(self.kinds, self.orders, corr, self.variants):
                n = nfe
                cand = (theta, (k,) * n, (p,) * n, (c,) * n, (v,) * n)
                out.append((f"{USFSolver(*cand[1:]).describe(n).split()[0]} {sched}", cand))
        return out

    def _mutate(self, cand: Candidate, rng: np.random.Generator) -> Candidate:
        theta, kinds, orders, corr, variants = (list(c) for c in cand)
        n = len(kinds)
        r = rng.random()
        if r < 0.35:  # jitter the time points
            th = np.asarray(theta)
            if rng.random() < 0.5:
                th = th + rng.normal(0.0, 0.25, n)
            else:
                th[rng.integers(n)] += rng.normal(0.0, 0.6)
            theta = list(th)
        for _ in range(1 + int(rng.integers(2)) if r >= 0.35 else int(rng.integers(2))):
            i, what = int(rng.integers(n)), int(rng.integers(4))
            if what == 0:
                kinds[i] = self.kinds[int(rng.integers(len(self.kinds)))]
            elif what == 1:
                orders[i] = self.orders[int(rng.integers(len(self.orders)))]
            elif what == 2 and self.corrector:
                corr[i] = not corr[i]
            else:
                variants[i] = self.variants[int(rng.integers(len(self.variants)))]
        return (tuple(float(t) for t in theta), tuple(kinds), tuple(orders), tuple(corr), tuple(variants))

    @staticmethod
    def _cross(a: Candidate, b: Candidate, rng: np.random.Generator) -> Candidate:
        n = len(a[1])
        mask = rng.random(n) < 0.5
        pick = lambda u, v: tuple(x if m else y for x, y, m in zip(u, v, mask))
        theta = a[0] if rng.random() < 0.5 else b[0]
        return (theta, pick(a[1], b[1]), pick(a[2], b[2]), pick(a[3], b[3]), pick(a[4], b[4]))

    # ------------------------------------------------------------------------------------------------------
    def fit(self, field: Field, x_pilot: Optional[torch.Tensor], nfe: int, t_start: float = 0.0, t_end: float = 1.0,
            reference: Optional[torch.Tensor] = None, holdout: float = 0.25, pilot: Optional[Pilot] = None,
            progress: bool = False) -> USFFit:
        """Search a solver with ``nfe`` evaluations for the model behind ``field`` (module docstring).

        Args:
            field: the model (an interpolant with a Gaussian part: the candidates are log-SNR samplers).
            x_pilot: pilot start states ``(M, ...)`` at ``t_start`` (not the states you evaluate on).
            nfe: the budget (one evaluation per step).
            reference: end states of the exact/accurate PF-ODE from ``x_pilot``; ``None``: the model's own
                Dormand–Prince solution (:meth:`Pilot.build`).
            holdout: fraction of the pilot kept aside for the keep-if-better check.
            pilot: a prebuilt :class:`Pilot` (then ``x_pilot``, ``reference``, ``holdout`` are not used).
            progress: a progress bar over candidate evaluations.

        Raises:
            ConfigError: a field that is not a Field, an NFE below 2, a bad pilot or holdout.
        """
        from .grid import fit_grid

        if not isinstance(field, Field):
            raise ConfigError("field", f"must be a Field, got {type(field).__name__}")
        nfe = validation.integer("nfe", nfe, 2)
        if pilot is None:
            check_pilot(x_pilot)
            check_holdout(holdout)
        USFSolver().check_interpolant(field)
        tic = time.perf_counter()
        if pilot is None:
            pilot = Pilot.build(field, x_pilot, t_start, t_end, reference, holdout)
        pilot.check_interval(t_start, t_end)
        model = pilot.model(field)
        (xf, rf), (xh, rh) = pilot.fit, pilot.held
        pilot.warn_if_small(nfe - 1, f"USFSearch(nfe={nfe})")
        xs, rs = xf[: self.subset], rf[: self.subset]
        cache: Dict[Tuple[Candidate, int], float] = {}

        def loss(cand: Candidate, x: torch.Tensor, ref: torch.Tensor, tag: int) -> float:
            key = (cand, tag)
            if key in cache:
                return cache[key]
            grid = torch.tensor(times_from_theta(np.asarray(cand[0]), t_start, t_end), dtype=torch.float64)
            if not bool(torch.all(grid[1:] > grid[:-1])):
                v = _PENALTY
            else:
                out = model.run(USFSolver(*cand[1:]), x, nfe, grid)
                v = math.inf if out is None else float((out - ref).flatten(1).norm(dim=1).mean())
                v = v if math.isfinite(v) else _PENALTY
            cache[key] = v
            return v

        plain = self.plain_candidates(field, nfe, t_start, t_end)
        search = Search(np.zeros(1), math.inf, max_evals=None, max_seconds=self.max_seconds, progress=progress,
                        desc=f"USF search (NFE {nfe})")
        scored: List[Tuple[float, Candidate]] = []
        pairs: List[Tuple[float, float]] = []  # (cheap predictor, full-pilot error)
        labels = {}
        for label, cand in plain:
            v = loss(cand, xf, rf, 0)
            scored.append((v, cand))
            labels[cand] = label
            search.record(np.array([len(scored)]), v)
        scored.sort(key=lambda s: s[0])
        init_loss, start = scored[0]
        start_label = labels[start]
        pop = scored[: self.population]
        rng = np.random.default_rng(self.seed)
        generations = 0
        try:
            for _ in range(self.generations):
                props = []
                for _ in range(self.children):
                    i, j = (min(rng.integers(len(pop), size=2)) for _ in range(2))  # tournaments of two
                    child = self._cross(pop[i][1], pop[j][1], rng) if rng.random() < 0.5 else pop[i][1]
                    props.append(self._mutate(child, rng))
                ranked = []
                for c in props:
                    ranked.append((loss(c, xs, rs, 1), c))
                    search.record(np.array([0]), math.inf)
                ranked.sort(key=lambda s: s[0])
                for proxy, c in ranked[: self.survivors]:
                    v = loss(c, xf, rf, 0)
                    pairs.append((proxy, v))
                    search.record(np.array([0]), v)
                    pop.append((v, c))
                pop = sorted({c: v for v, c in pop}.items(), key=lambda s: s[1])
                pop = [(v, c) for c, v in pop][: self.population]
                generations += 1
        except StopSearch as stop:
            search.stopped = stop.reason
        search.close()
        best_loss, best = pop[0]
        solver = USFSolver(*best[1:])
        times = times_from_theta(np.asarray(best[0]), t_start, t_end)
        refine_calls = 0
        if self.refine_evals and nfe > 1:
            calls0 = model.calls
            gf = fit_grid(solver, field, None, nfe, init=torch.tensor(times, dtype=torch.float64), t_start=t_start,
                          t_end=t_end, pilot=pilot, max_evals=self.refine_evals)
            refine_calls = gf.pilot_nfe - pilot.reference_nfe
            model.calls = calls0 + refine_calls
            if gf.improved and gf.loss < best_loss:
                times, best_loss = np.asarray(gf.times), gf.loss
        start_times = times_from_theta(np.asarray(start[0]), t_start, t_end)

        def run_err(s: USFSolver, t: np.ndarray, x, ref) -> float:
            out = model.run(s, x, nfe, torch.tensor(t, dtype=torch.float64))
            return math.inf if out is None else float((out - ref).flatten(1).norm(dim=1).mean())

        start_solver = USFSolver(*start[1:])
        if xh is not None:
            hold, init_hold = run_err(solver, times, xh, rh), run_err(start_solver, start_times, xh, rh)
        else:
            hold = init_hold = math.nan
        improved = keep_if_better(init_loss, best_loss, init_hold, hold)

        def params_of(s: USFSolver, t: np.ndarray) -> Dict[str, Any]:
            return {"times": [float(v) for v in t], "kinds": list(s.kinds), "orders": list(s.orders),
                    "correctors": list(s.correctors), "variants": list(s.variants), "describe": s.describe(nfe)}

        init_params = dict(params_of(start_solver, start_times), plain=start_label)
        if improved:
            params = params_of(solver, times)
        else:
            params, best_loss, hold = dict(init_params), init_loss, init_hold
        params.update(plain=start_label, proxy_spearman=spearman(*zip(*pairs)) if pairs else math.nan,
                      candidates=len(cache), generations=generations, refine_calls=refine_calls)
        return USFFit(what="usf", params=params, init_params=init_params, loss=best_loss, init_loss=init_loss,
                      holdout_loss=hold, init_holdout_loss=init_hold, improved=improved,
                      iterations=len(cache), pilot_nfe=model.calls, reference_nfe=pilot.reference_nfe,
                      seconds=time.perf_counter() - tic, n_parameters=(nfe - 1) + 4 * nfe - 1,
                      n_fit=pilot.n_fit, n_held=pilot.n_held, stopped=search.stopped)

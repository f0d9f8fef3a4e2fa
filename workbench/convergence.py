r"""Empirical convergence orders on the exact Gaussian-mixture flow, for every registered solver.

For each solver, the error :math:`e(N) = \mathrm{mean}_i \|x^{(N)}_i - x^{\star}_i\|` of the final states against
the exact PF-ODE map (float64) is measured at several step counts, and the order is the least-squares slope of
:math:`\log e` against :math:`\log N` (negated). :data:`ORDER_CHECKS` says, for every registered solver name, which
configurations are checked and over which step counts (where the slope is asymptotic on ``gmm2d`` and above the
float64 floor), or, for solvers whose order is not a property of the PF-ODE map (SDE samplers, adaptive steps,
solvers needing a pilot), where else they are checked. The test suite fails when a registered solver has no entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from .interpolants import INTERPOLANTS
from .problems import PROBLEMS
from .solvers import SOLVERS

#: The paths every order is checked on: (interpolant, t_start, t_end, schedule). ``linear`` reaches a = 0 and σ = 0
#: (λ = ∓∞); ``vp`` on [0, 0.99] with a grid uniform in λ is the papers' setting.
PATHS: Tuple[Tuple[str, float, float, str], ...] = (("linear", 0.0, 1.0, "uniform"), ("vp", 0.0, 0.99, "logsnr"))
#: Tolerance of the Dormand–Prince reference: far below the smallest error fitted (order-4 solvers reach 1e-8).
REFERENCE_TOL = 1e-13
#: Step counts of the fit (the local slopes on gmm2d are within 0.1 of nominal from 64 steps on both paths for all
#: but the order-4 multistep methods, which say their own).
STEPS: Tuple[int, ...] = (64, 128, 256)


@dataclass(frozen=True)
class OrderCheck:
    """One configuration whose fitted order must be within ``tolerance`` of ``expected`` (default: ``solver.order``)."""

    params: Dict[str, object] = field(default_factory=dict)
    expected: Optional[int] = None
    steps: Tuple[int, ...] = STEPS
    tolerance: float = 0.15
    paths: Optional[Tuple[str, ...]] = None  #: interpolant names of :data:`PATHS` it applies to (None: all)


#: Every registered solver name → its order checks, or a sentence saying where its behaviour is checked instead.
ORDER_CHECKS: Dict[str, Union[Tuple[OrderCheck, ...], str]] = {
    "euler": (OrderCheck(),), "heun": (OrderCheck(),), "midpoint": (OrderCheck(),),
    "heun3": (OrderCheck(),), "kutta3": (OrderCheck(),), "ssprk3": (OrderCheck(),),
    "rk4": (OrderCheck(steps=(32, 64, 128)),), "rk4_38": (OrderCheck(steps=(32, 64, 128)),),
    "dpm_solver_pp": (OrderCheck({"order": 1}), OrderCheck({"order": 3, "predict": "noise"})),
    "dpmpp_2m": (OrderCheck(), OrderCheck({"predict": "noise"})),
    "dpmpp_3m": (OrderCheck(), OrderCheck({"lower_order_final": False})),
    "dpm_solver_2": (OrderCheck(),),
    "dpm_solver_3": (OrderCheck(), OrderCheck({"predict": "noise"})),
    "dpm_solver_singlestep": (OrderCheck({"order": 1}),),
    # order 4: pre-asymptotic (super-convergent) below 128 steps on linear; on vp the multistep warm-up's tiny
    # O(h^2 e^{2λ(0)}) start error appears below 1e-8 (512 steps), so vp is fitted on 64-256
    "unipc": (OrderCheck({"order": 2}), OrderCheck(), OrderCheck({"order": 4}, steps=(128, 256, 512)),
              OrderCheck({"order": 2, "corrector": False}), OrderCheck({"predict": "noise"})),
    "deis": (OrderCheck({"order": 1}), OrderCheck({"order": 2}), OrderCheck(),
             OrderCheck({"order": 4}, steps=(128, 256, 512), paths=("linear",)),
             OrderCheck({"order": 4}, paths=("vp",))),
    "time_shifted": (OrderCheck({"base": "dpmpp_3m", "offset": 0.0}),),
    "nonstationary": (OrderCheck(),),
    "dc_solver": (OrderCheck(),),  # default ratios 1 = UniPC-3; fitted ratios in tests/fitting/test_dc_solver.py
    "euler_maruyama": (OrderCheck({"eps": 0.0}),),
    "bdia": (OrderCheck(), OrderCheck({"gamma": 0.5})),
    "ddim": (OrderCheck(),),
    # order 2 on linear [0, 1] with variable="auto" (u/ρ forms at λ = ∓∞); the λ-form ("log_snr") is ≈ 1.5 there
    "mrs": (OrderCheck({"order": 1}), OrderCheck(), OrderCheck({"order": 2, "prediction": "noise"}),
            OrderCheck({"order": 1, "prediction": "noise"}, paths=("vp",))),
    "mrs_sde": "stochastic: strong order 1 on a shared Brownian path in "
               "tests/samplers/test_mean_reverting.py::test_mrs_sde_strong_order_one",
    "dopri5": "adaptive (error control, not a step count): counts and tolerance in "
              "tests/core/test_solvers.py::test_dopri5_reports_counts_and_respects_budget and vs torchdiffeq",
    "pc": "stochastic (reverse-diffusion predictor + Langevin corrector): its law is checked in "
          "tests/solvers/test_multistep_orders.py::test_pc_sampler_matches_marginal_moments",
    "dpm_solver_v3": "needs pilot statistics: order 3 with zero statistics in "
                     "tests/solvers/test_multistep_orders.py::test_dpm_solver_v3_with_zero_statistics_is_third_order",
}


@dataclass
class ConvergenceRow:
    """One solver configuration's measured errors and fitted order on one path."""

    solver: str
    params: Dict[str, object]
    path: str
    expected: int
    steps: List[int]
    nfe: List[int]
    errors: List[float]
    order: float
    tolerance: float = 0.15

    @property
    def ok(self) -> bool:
        """Fitted order within the tolerance of the expected one."""
        return abs(self.order - self.expected) <= self.tolerance


def fitted_order(steps: Sequence[int], errors: Sequence[float]) -> float:
    """Negated least-squares slope of log(error) vs log(steps)."""
    xs = [math.log(s) for s in steps]
    ys = [math.log(e) for e in errors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return -sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def _setup(path: Tuple[str, float, float, str], data: str, n_samples: int, seed: int):
    iname, t0, t1, _ = path
    interp = INTERPOLANTS.get(iname)
    problem = PROBLEMS.get(data)
    x0 = problem.sample_start(interp, t0, n_samples, torch.Generator().manual_seed(seed))
    ref = problem.reference(interp, x0, t0, t1, tol=REFERENCE_TOL)
    return interp, x0, ref, problem.field(interp, torch.device("cpu"), torch.float64)


def convergence_table(solvers: Optional[Sequence[str]] = None, paths: Sequence[Tuple[str, float, float, str]] = PATHS,
                      data: str = "gmm2d", n_samples: int = 32, seed: int = 0) -> List[ConvergenceRow]:
    """Measure every order check of ``solvers`` (default: all registered) on each path, float64, exact reference."""
    names = list(solvers) if solvers else SOLVERS.names()
    rows = []
    for path in paths:
        interp, x0, ref, field_ = _setup(path, data, n_samples, seed)
        label = f"{path[0]} [{path[1]:g}, {path[2]:g}] {path[3]}"
        for name in names:
            checks = ORDER_CHECKS.get(SOLVERS.canonical(name))
            if not isinstance(checks, tuple):
                continue
            for check in checks:
                if check.paths is not None and path[0] not in check.paths:
                    continue
                solver = SOLVERS.get(name, **check.params)
                errs, nfes = [], []
                for n in check.steps:
                    res = solver.sample(field_, x0, nfe=solver.nfe_for_steps(n), schedule=path[3], t_start=path[1],
                                        t_end=path[2])
                    errs.append(float((res.x - ref).norm(dim=1).mean()))
                    nfes.append(res.nfe)
                expected = solver.order if check.expected is None else check.expected
                rows.append(ConvergenceRow(SOLVERS.canonical(name), dict(check.params), label, expected,
                                           list(check.steps), nfes, errs, fitted_order(check.steps, errs),
                                           check.tolerance))
    return rows


def format_table(rows: Sequence[ConvergenceRow]) -> str:
    """A markdown table: solver (parameters), path, nominal order, fitted order, errors per step count."""
    lines = ["| solver | path | nominal | fitted | steps → mean L2 error |", "|---|---|---|---|---|"]
    for r in rows:
        errs = ", ".join(f"{s}: {e:.2e}" for s, e in zip(r.steps, r.errors))
        ps = ", ".join(f"{k}={v}" for k, v in r.params.items())
        mark = "" if r.ok else " ✗"
        lines.append(f"| {r.solver}{f' ({ps})' if ps else ''} | {r.path} | {r.expected} | {r.order:.2f}{mark} | {errs} |")
    return "\n".join(lines)

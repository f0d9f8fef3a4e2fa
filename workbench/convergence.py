r"""Empirical convergence orders on the exact Gaussian-mixture flow.

For each solver, the error :math:`e(N) = \mathrm{mean}_i \|x^{(N)}_i - x^{\star}_i\|` of the final states against
the exact PF-ODE map is measured at several step counts, and the order is the least-squares slope of
:math:`\log e` against :math:`\log N` (negated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from .interpolants import INTERPOLANTS
from .problems import PROBLEMS
from .solvers import SOLVERS

#: Step counts per solver: in the asymptotic range on gmm2d and above the float64 error floor.
DEFAULT_STEPS: Dict[str, Sequence[int]] = {
    "euler": (16, 32, 64, 128),
    "heun": (16, 32, 64, 128),
    "midpoint": (16, 32, 64, 128),
    "rk4": (16, 32, 64, 128),
    "rk4_38": (16, 32, 64, 128),
}


@dataclass
class ConvergenceRow:
    """One solver's measured errors and fitted order."""

    solver: str
    expected: int
    steps: List[int]
    nfe: List[int]
    errors: List[float]
    order: float


def fitted_order(steps: Sequence[int], errors: Sequence[float]) -> float:
    """Negated least-squares slope of log(error) vs log(steps)."""
    xs = [math.log(s) for s in steps]
    ys = [math.log(e) for e in errors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return -sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def convergence_table(solvers: Optional[Sequence[str]] = None, interpolant: str = "linear", data: str = "gmm2d",
                      n_samples: int = 256, seed: int = 0, schedule: str = "uniform",
                      steps: Optional[Dict[str, Sequence[int]]] = None) -> List[ConvergenceRow]:
    """Measure the convergence order of each solver in float64 against the exact reference map."""
    solvers = list(solvers or DEFAULT_STEPS)
    interp = INTERPOLANTS.get(interpolant)
    problem = PROBLEMS.get(data)
    g = torch.Generator().manual_seed(seed)
    x0 = problem.sample_start(interp, 0.0, n_samples, g)
    ref = problem.reference(interp, x0, 0.0, 1.0)
    field = problem.field(interp, torch.device("cpu"), torch.float64)
    rows = []
    for name in solvers:
        solver = SOLVERS.get(name)
        st = list((steps or {}).get(name, DEFAULT_STEPS.get(name, (8, 16, 32, 64))))
        errs, nfes = [], []
        for n in st:
            res = solver.sample(field, x0, nfe=solver.nfe_for_steps(n), schedule=schedule)
            errs.append(float((res.x - ref).norm(dim=1).mean()))
            nfes.append(res.nfe)
        rows.append(ConvergenceRow(name, solver.order, st, nfes, errs, fitted_order(st, errs)))
    return rows


def format_table(rows: Sequence[ConvergenceRow]) -> str:
    """A markdown table: solver, expected order, fitted order, errors per step count."""
    lines = ["| solver | expected order | fitted order | steps → mean L2 error |", "|---|---|---|---|"]
    for r in rows:
        errs = ", ".join(f"{s}: {e:.2e}" for s, e in zip(r.steps, r.errors))
        lines.append(f"| {r.solver} | {r.expected} | {r.order:.2f} | {errs} |")
    return "\n".join(lines)

r"""Empirical convergence orders on the exact Gaussian-mixture flow, for every registered solver.

For each solver, the error :math:`e(N) = \mathrm{mean}_i \|x^{(N)}_i - x^{\star}_i\|` of the final states against
the exact PF-ODE map (float64) is measured at several step counts, and the order is the least-squares slope of
:math:`\log e` against :math:`\log N` (negated). What is checked is declared on each solver class itself
(``order_checks``: :class:`~workbench.solvers.base.OrderCheck` s naming parameters, paths, step counts and the
expected order, or an :class:`~workbench.solvers.base.Exempt` naming the test that checks it instead);
:func:`declaration_errors` lists registered solvers whose class declares nothing (tests/solvers/test_orders.py fails).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .interpolants import INTERPOLANTS
from .problems import PROBLEMS
from .registry import Registry
from .solvers import SOLVERS
from .solvers.base import STEPS, Exempt, OrderCheck

__all__ = ["PATHS", "STEPS", "OrderCheck", "Exempt", "ConvergenceRow", "order_checks", "declaration_errors",
           "convergence_table", "fitted_order", "format_table"]

#: The named paths an :class:`OrderCheck` may name: (interpolant, t_start, t_end, schedule). ``linear``, ``trig``,
#: ``one_sided`` and ``sb`` reach a = 0 and σ = 0 (λ = ∓∞) at the ends of [0, 1] (σ = √(1−t) on ``sb``, whose data
#: scale is resolved only where 1 − t ≲ s₀², so its checks start at 128–1024 steps); ``vp`` on
#: [0, 0.99] with a grid uniform in λ is the papers' setting.
PATHS: Dict[str, Tuple[str, float, float, str]] = {
    "linear": ("linear", 0.0, 1.0, "uniform"),
    "vp": ("vp", 0.0, 0.99, "logsnr"),
    "trig": ("trig", 0.0, 1.0, "uniform"),
    "one_sided": ("one_sided", 0.0, 1.0, "uniform"),
    "sb": ("sb", 0.0, 1.0, "uniform"),
}
#: Tolerance of the Dormand–Prince reference: far below the smallest error fitted (order-4 solvers reach 1e-8).
REFERENCE_TOL = 1e-13


def order_checks(cls: type):
    """The ``order_checks`` declared on ``cls`` itself (a subclass does not inherit its parent's), or None."""
    return cls.__dict__.get("order_checks")


def declaration_errors(registry: Registry = SOLVERS) -> List[str]:
    """One message per registered solver whose class declares no valid ``order_checks`` (empty: all declared)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = []
    for name in registry.names():
        cls = registry.cls(name)
        decl = order_checks(cls)
        where = f"solver {name!r} ({cls.__module__}.{cls.__qualname__})"
        if isinstance(decl, Exempt):
            m = re.fullmatch(r"(tests/[\w/]+\.py)::(test_\w+)", decl.test)
            path = m and os.path.join(root, m.group(1))
            if not decl.reason or m is None or (os.path.isdir(os.path.join(root, "tests")) and not (
                    os.path.isfile(path) and f"def {m.group(2)}(" in open(path, encoding="utf-8").read())):
                errors.append(f"{where}: Exempt needs a reason and an existing test 'tests/<file>.py::test_<name>', "
                              f"got {decl!r}")
            continue
        if not (isinstance(decl, tuple) and decl and all(isinstance(c, OrderCheck) for c in decl)):
            errors.append(f"{where} declares no order_checks on its class: add `order_checks = (OrderCheck(...),)` "
                          f"or `order_checks = Exempt(reason, 'tests/...::test_...')`")
            continue
        for c in decl:
            unknown = sorted(set(c.params) - set(registry.parameters(name)))
            bad = sorted(set(c.paths) - set(PATHS))
            if unknown or bad or not c.paths or len(c.steps) < 2:
                errors.append(f"{where}: {c!r} has unknown parameters {unknown} or paths {bad} (known: "
                              f"{', '.join(PATHS)}), or fewer than two step counts")
    return errors


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


def convergence_table(solvers: Optional[Sequence[str]] = None,
                      paths: Optional[Sequence[Tuple[str, float, float, str]]] = None, data: str = "gmm2d",
                      n_samples: int = 32, seed: int = 0) -> List[ConvergenceRow]:
    """Measure the declared order checks of ``solvers`` (default: every registered one; aliases count once), float64,
    against the exact reference. ``paths=None``: each check on the :data:`PATHS` it names; explicit paths: every check
    whose ``paths`` include the path's interpolant or that keeps the default paths."""
    names = list(dict.fromkeys(SOLVERS.canonical(n) for n in solvers)) if solvers else SOLVERS.names()
    if paths is None:
        wanted = [(key, PATHS[key]) for key in PATHS]
    else:
        wanted = [(p[0], tuple(p)) for p in paths]
    rows = []
    for key, path in wanted:
        todo = []
        for name in names:
            decl = order_checks(SOLVERS.cls(name))
            for check in (decl if isinstance(decl, tuple) else ()):
                if key in check.paths or (paths is not None and check.paths == OrderCheck().paths):
                    todo.append((name, check))
        if not todo:
            continue
        interp, x0, ref, field_ = _setup(path, data, n_samples, seed)
        label = f"{path[0]} [{path[1]:g}, {path[2]:g}] {path[3]}"
        for name, check in todo:
            solver = SOLVERS.get(name, **check.params)
            errs, nfes = [], []
            for n in check.steps:
                res = solver.sample(field_, x0, nfe=solver.nfe_for_steps(n), schedule=path[3], t_start=path[1],
                                    t_end=path[2])
                errs.append(float((res.x - ref).norm(dim=1).mean()))
                nfes.append(res.nfe)
            expected = solver.order if check.expected is None else check.expected
            rows.append(ConvergenceRow(name, dict(check.params), label, expected, list(check.steps), nfes, errs,
                                       fitted_order(check.steps, errs), check.tolerance))
    return rows


def format_table(rows: Sequence[ConvergenceRow], details: bool = False) -> str:
    """A markdown table with one row per solver configuration and one fitted-order column per path (``—``: not
    checked there; ``✗``: outside the tolerance); ``details=True`` adds a row per (configuration, path) with the
    step counts and errors."""
    def key(r: ConvergenceRow) -> Tuple[str, str]:
        ps = ", ".join(f"{k}={v}" for k, v in r.params.items())
        return r.solver, f"{r.solver}{f' ({ps})' if ps else ''}"

    paths = list(dict.fromkeys(r.path for r in rows))
    configs: Dict[Tuple[str, str], Dict[str, ConvergenceRow]] = {}
    for r in sorted(rows, key=lambda r: key(r)[0]):
        configs.setdefault(key(r), {})[r.path] = r
    lines = ["| solver | nominal | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    for (_, label), by_path in configs.items():
        nominal = "/".join(sorted({str(r.expected) for r in by_path.values()}))
        cells = [f"{by_path[p].order:.2f}{'' if by_path[p].ok else ' ✗'}" if p in by_path else "—" for p in paths]
        lines.append(f"| {label} | {nominal} | " + " | ".join(cells) + " |")
    if details:
        lines += ["", "| solver | path | steps → mean L2 error |", "|---|---|---|"]
        for (_, label), by_path in configs.items():
            for p, r in by_path.items():
                lines.append(f"| {label} | {p} | " + ", ".join(f"{s}: {e:.2e}" for s, e in zip(r.steps, r.errors)) + " |")
    return "\n".join(lines)

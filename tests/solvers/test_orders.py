"""Every registered solver declares its order checks on its own class, and every check holds: the fitted order
(least-squares slope of log error vs log steps over an asymptotic range, float64, against the exact PF-ODE map of
gmm2d) is within ±0.15 of the nominal order on each path the check names (``linear`` [0, 1] uniform, with a = 0 and
σ = 0 at the ends, and ``vp`` [0, 0.99] logsnr by default; ``trig``/``one_sided``/``sb`` [0, 1] where declared).
A new solver registered without ``order_checks`` on its class fails here."""
import pytest

from workbench.convergence import (PATHS, Exempt, OrderCheck, convergence_table, declaration_errors, format_table,
                                  order_checks)
from workbench.registry import Registry
from workbench.solvers import SOLVERS
from workbench.solvers.base import FixedStepSolver


def test_every_registered_solver_declares_its_order_checks():
    assert declaration_errors() == []


def test_a_solver_without_a_declaration_fails():
    reg = Registry("solver")

    @reg.register("checked")
    class Checked(FixedStepSolver):
        order_checks = (OrderCheck(),)

        def step(self, field, x, t, t_next, index, state, generator):  # pragma: no cover
            return x, None, 1

    @reg.register("inherits")  # a subclass does not inherit its parent's declaration
    class Inherits(Checked):
        pass

    @reg.register("exempt_without_test")
    class NoTest(Checked):
        order_checks = Exempt("stochastic", "tests/nowhere.py::test_missing")

    @reg.register("bad_path")
    class BadPath(Checked):
        order_checks = (OrderCheck(paths=("moon",)),)

    errors = declaration_errors(reg)
    assert len(errors) == 3 and not any("'checked'" in e for e in errors), errors
    assert all(any(f"'{n}'" in e for e in errors) for n in ("inherits", "exempt_without_test", "bad_path"))


@pytest.fixture(scope="module")
def rows():
    return convergence_table()


@pytest.mark.parametrize("path", list(PATHS))
def test_fitted_orders_are_nominal(rows, path):
    label = " ".join([PATHS[path][0], f"[{PATHS[path][1]:g}, {PATHS[path][2]:g}]", PATHS[path][3]])
    mine = [r for r in rows if r.path == label]
    bad = [f"{r.solver} {r.params} on {r.path}: fitted {r.order:.2f}, nominal {r.expected}" for r in mine if not r.ok]
    assert not bad, "\n".join(bad)
    decls = [order_checks(SOLVERS.cls(n)) for n in SOLVERS.names()]
    declared = sum(path in c.paths for d in decls if isinstance(d, tuple) for c in d)
    assert len(mine) == declared and (declared >= 25 or path not in ("linear", "vp"))


def test_table_has_one_row_per_configuration(rows):
    lines = format_table(rows).splitlines()[2:]
    labels = [line.split(" | ")[0] for line in lines]
    assert len(labels) == len(set(labels)) == len({(r.solver, tuple(r.params.items())) for r in rows})

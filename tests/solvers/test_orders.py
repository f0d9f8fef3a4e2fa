"""Every registered solver has an order check, and every check holds: the fitted order (least-squares slope of
log error vs log steps over an asymptotic range, float64, against the exact PF-ODE map of gmm2d) is within ±0.15 of
the nominal order on ``linear`` [0, 1] with a uniform grid (a = 0 and σ = 0 at the ends) and on ``vp`` [0, 0.99]
with a grid uniform in log-SNR. A new solver registered without an entry in ``ORDER_CHECKS`` fails here."""
import pytest

from workbench.convergence import ORDER_CHECKS, PATHS, convergence_table
from workbench.solvers import SOLVERS


@pytest.mark.parametrize("name", SOLVERS.names())
def test_every_registered_solver_has_an_order_check(name):
    assert name in ORDER_CHECKS, f"solver {name!r} has no entry in workbench.convergence.ORDER_CHECKS"
    entry = ORDER_CHECKS[name]
    assert isinstance(entry, tuple) and entry or (isinstance(entry, str) and "tests/" in entry)


@pytest.fixture(scope="module")
def rows():
    return convergence_table()


@pytest.mark.parametrize("path", [p[0] for p in PATHS])
def test_fitted_orders_are_nominal(rows, path):
    bad = [f"{r.solver} {r.params} on {r.path}: fitted {r.order:.2f}, nominal {r.expected}"
           for r in rows if r.path.startswith(path) and not r.ok]
    assert not bad, "\n".join(bad)
    assert sum(r.path.startswith(path) for r in rows) >= 25

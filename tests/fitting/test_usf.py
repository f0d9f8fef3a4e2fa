"""USF / S³ solver search (issue 14, item 5): the per-step solver is a plan (UniPC exactly when its choices are
uniform; executor = literal plan = its dense non-stationary form), and the search, on a problem with a closed-form
PF-ODE map, is never worse than the best plain candidate it searched over; its result round-trips through JSON."""
import math

import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError
from workbench.fitting import FITS, Pilot, USFFit, USFSearch
from workbench.models.field import Field
from workbench.problems import PROBLEMS
from workbench.solvers.nonstationary import linearize
from workbench.solvers.usf import USFSolver
from tests.solvers import oracles

T0, T1 = 1e-3, 0.999


@pytest.fixture(scope="module")
def gmm():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, T0, 32, torch.Generator().manual_seed(0))
    return prob, I, x0


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("p,corr,variant,kind", [(1, True, "bh2", "data"), (2, True, "bh1", "data"),
                                                 (3, False, "bh2", "data"), (2, True, "bh2", "noise")])
def test_uniform_choices_are_unipc(gmm, p, corr, variant, kind):
    prob, I, x0 = gmm
    field = prob.field(I, "cpu", torch.float64)
    n = 7
    uni = solvers.get("unipc", history=p, corrector=corr, variant=variant, predict=kind)
    s = USFSolver([kind] * n, [p] * n, [corr] * n, [variant] * n)
    g = uni.make_grid(field, n, "logsnr", T0, T1)
    assert _rel(s.sample(field, x0, n, grid=g).x, uni.sample(field, x0, n, grid=g).x) < 1e-12


@pytest.mark.parametrize("kind", ["noise", "x1", "velocity"])
def test_mixed_choices_executor_equals_literal_and_dense_plan(gmm, kind):
    prob, I, x0 = gmm
    f = Field(lambda x, t: prob.gmm.predict(x, t, I, kind), I, kind)
    s = USFSolver(["data", "noise"] * 4, [1, 2, 3, 3, 2, 1, 3, 2], [True, False] * 4, ["bh1", "bh2"] * 4)
    g = s.make_grid(f, 8, "uniform", T0, T1)
    run = s.sample(f, x0, 8, grid=g)
    assert run.nfe == 8
    assert _rel(run.x, oracles.naive_plan(s.plan_for(I, g.tolist()), f, x0)) < 1e-12
    dense = solvers.get("nonstationary", coefficients=linearize(s, f, 8, grid=g, kind="x1"))
    assert _rel(run.x, dense.sample(f, x0, 8, t_start=T0, t_end=T1).x) < 1e-12


def test_bad_choices_name_their_parameter(gmm):
    prob, I, x0 = gmm
    with pytest.raises(ConfigError, match="kinds"):
        USFSolver(["data", "velocity"])
    with pytest.raises(ConfigError, match="orders"):
        USFSolver(orders=[1, 4])
    with pytest.raises(ConfigError, match="kinds"):
        USFSolver(["data"] * 3, [1] * 2)
    with pytest.raises(ConfigError, match="grid"):
        USFSolver(["data"] * 3).sample(prob.field(I, "cpu", torch.float64), x0, 4, t_start=T0, t_end=T1)
    for kw, name in (({"population": 0}, "population"), ({"survivors": 99}, "survivors"),
                     ({"schedules": "uniform"}, "schedules"), ({"orders": (0,)}, "orders")):
        with pytest.raises(ConfigError, match=name):
            FITS.get("usf", **kw)


def test_search_on_closed_form_map_beats_every_plain_candidate_and_round_trips():
    prob = PROBLEMS.get("gaussian", dim=2)
    I = interpolants.get("vp")
    field = prob.field(I, "cpu", torch.float64)
    xp = prob.sample_start(I, T0, 96, torch.Generator().manual_seed(1))
    pilot = Pilot.build(field, xp, T0, T1, prob.reference(I, xp, T0, T1), holdout=0.25)
    nfe = 4
    search = FITS.get("usf", population=6, generations=3, children=8, survivors=3, subset=24, refine_evals=30,
                      schedules=("uniform", "logsnr"))
    assert isinstance(search, USFSearch) and search == USFSearch(population=6, generations=3, children=8, survivors=3,
                                                                 subset=24, refine_evals=30,
                                                                 schedules=("uniform", "logsnr"))
    fit = search.fit(field, None, nfe, T0, T1, pilot=pilot)
    xf, rf = pilot.fit
    err = lambda s, times: float((s.sample(field, xf, nfe, grid=torch.tensor(times, dtype=torch.float64)).x - rf)
                                 .norm(dim=1).mean())
    best_plain = math.inf
    for label, cand in search.plain_candidates(field, nfe, T0, T1):  # measured again, not read from the fit
        from workbench.fitting.grid import times_from_theta
        import numpy as np

        best_plain = min(best_plain, err(USFSolver(*cand[1:]), times_from_theta(np.asarray(cand[0]), T0, T1)))
    searched = err(fit.solver, fit.times)
    assert searched <= best_plain * (1 + 1e-12), (searched, best_plain)
    assert searched == pytest.approx(fit.loss, rel=1e-9) and fit.init_loss == pytest.approx(best_plain, rel=1e-9)
    assert fit.improved and searched < best_plain  # a strict gain here (measured), not only a tie
    assert fit.pilot_nfe >= nfe * fit.iterations and fit.iterations > 24
    back = USFFit.from_json(fit.to_json())
    assert back == fit and back.solver == fit.solver and back.times == fit.times
    x0 = prob.sample_start(I, T0, 16, torch.Generator().manual_seed(0))
    assert _rel(back.sample(field, x0).x, fit.sample(field, x0).x) == 0.0
    ns = solvers.get("nonstationary", coefficients=back.coefficients(field))
    assert _rel(ns.sample(field, x0, nfe, t_start=T0, t_end=T1).x, fit.sample(field, x0).x) < 1e-12

"""The fitting package (workbench.fitting): the keep-if-better rule, the result type's JSON, the pilot, the
non-stationary parameterisation, and closed-form checks of the fit on a single Gaussian (exact map known)."""
import json
import math
import warnings

import numpy as np
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError
from workbench.fitting import (FitResult, GridFit, NSFit, NSParameters, Pilot, PilotSizeWarning, Search,
                               fit_nonstationary, keep_if_better, ns_forward)
from workbench.fitting.selection import StopSearch
from workbench.problems import PROBLEMS
from workbench.solvers.nonstationary import linearize

NAN = math.nan


def test_keep_if_better_rule():
    assert keep_if_better(1.0, 0.5, 1.0, 0.9)
    assert keep_if_better(1.0, 0.5, 1.0, 1.0)          # a tie on the held-out part keeps
    assert not keep_if_better(1.0, 0.5, 1.0, 1.1)      # worse held out: the start is kept
    assert not keep_if_better(1.0, 1.0, 1.0, 0.5)      # no gain on the fitting part
    assert keep_if_better(1.0, 0.5, NAN, NAN)          # no held-out part: the fitting loss decides
    assert not keep_if_better(1.0, NAN, 1.0, 0.5) and not keep_if_better(1.0, 0.5, 1.0, NAN)
    assert not keep_if_better(1.0, math.inf)


def test_fit_result_json_round_trip_and_errors():
    g = GridFit(what="grid", params={"times": [0.0, 0.3, 1.0]}, init_params={"times": [0.0, 0.5, 1.0]}, loss=0.1,
                init_loss=0.2, holdout_loss=0.15, init_holdout_loss=0.25, improved=True, iterations=7, pilot_nfe=30,
                reference_nfe=0, seconds=0.5, n_parameters=1, n_fit=3, n_held=1, stopped="budget")
    d = json.loads(g.to_json())
    assert d["times"] == [0.0, 0.3, 1.0] and d["params"]["times"] == g.times and g.evals == 7
    assert GridFit.from_json(g.to_json()) == g
    n = NSFit(**{**vars(g), "what": "nonstationary", "params": {"a": [1.0]}, "init_params": {"a": [2.0]}})
    back = NSFit.from_json(n.to_json())
    assert back == n and back.coefficients == {"a": [1.0]} and isinstance(back, FitResult)
    with pytest.raises(ConfigError, match="fit.*unknown.*bogus"):
        NSFit.from_json(json.dumps({**json.loads(n.to_json()), "bogus": 1}))
    with pytest.raises(ConfigError, match="fit.*JSON"):
        NSFit.from_json("{not json")


def test_search_early_stop_and_selection():
    held_losses = iter([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0])  # start, then one per checkpoint
    s = Search(np.zeros(1), 10.0, held=lambda th: next(held_losses), check_every=2, patience=4, select="holdout")
    with pytest.raises(StopSearch) as stop:
        for k in range(1, 100):
            s.record(np.array([float(k)]), 10.0 - k)   # the fitting loss keeps falling
    assert stop.value.reason == "early stop" and s.evals == 8   # best held-out at eval 4, no gain for 4 evals
    assert float(s.best[0]) == 8.0 and float(s.best_held_theta[0]) == 4.0
    with pytest.raises(StopSearch, match="budget"):
        t = Search(np.zeros(1), 1.0, max_evals=3)
        for _ in range(5):
            t.record(np.zeros(1), 1.0)
    with pytest.raises(ConfigError, match="select"):
        Search(np.zeros(1), 1.0, select="holdout")       # no held-out part
    with pytest.raises(ConfigError, match="patience"):
        Search(np.zeros(1), 1.0, patience=0)


@pytest.fixture(scope="module")
def gauss():
    prob = PROBLEMS.get("gaussian", dim=2, seed=3)
    I = interpolants.get("linear")
    return prob, I, prob.field(I, "cpu", torch.float64)


def test_pilot_reference_split_and_size_warning(gauss):
    prob, I, field = gauss
    x = prob.sample_start(I, 0.0, 40, torch.Generator().manual_seed(1))
    exact = prob.reference(I, x, 0.0, 1.0)                      # closed-form map of one Gaussian
    p = Pilot.build(field, x, 0.0, 1.0, reference=exact, holdout=0.25)
    assert p.reference_nfe == 0 and p.n_fit == 30 and p.n_held == 10
    assert torch.equal(p.fit[0], x[:30]) and torch.equal(p.held[1], exact[30:])
    q = Pilot.build(field, x, 0.0, 1.0, holdout=0.0)             # one Dormand–Prince pass of the model
    assert q.reference_nfe > 0 and q.held == (None, None)
    assert float((q.reference - exact).abs().max()) < 1e-6
    with pytest.warns(PilotSizeWarning, match="30 fitting states for 10"):
        assert p.warn_if_small(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not p.warn_if_small(3)
    with pytest.raises(ConfigError, match="reference"):
        Pilot.build(field, x, reference=exact[:5])
    with pytest.raises(ConfigError, match="holdout"):
        Pilot.build(field, x, reference=exact, holdout=0.95)
    with pytest.raises(ConfigError, match="pilot.*0.5"):
        fit_nonstationary(field, None, 4, pilot=p, t_start=0.5)


def test_parameterisation_start_and_warp_are_the_starting_method(gauss):
    prob, I, field = gauss
    x = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(2))
    c = linearize("heun", field, 6)
    pk = NSParameters(c)
    taus, a, rows = pk.unpack(pk.zeros())
    assert [float(t) for t in taus] == pytest.approx(c.times, abs=1e-15)
    assert a.tolist() == pytest.approx(c.a, abs=1e-15)
    assert [v for r in rows for v in r.tolist()] == pytest.approx([v for r in c.b for v in r], abs=1e-15)
    # a warp alone (times through a softmax of increments, weights stretched with it) is Heun on the warped grid
    theta = pk.zeros()
    theta[: pk.S] = torch.tensor([0.4, -0.3, 0.1], dtype=torch.float64)
    h = torch.softmax(torch.log(pk.h0) + theta[: pk.S], 0)
    warped = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(h, 0)])
    want = linearize("heun", field, 6, grid=warped)
    got = pk.coefficients(theta, "warp")
    assert got.times == pytest.approx(want.times, abs=1e-14) and got.a == pytest.approx(want.a, abs=1e-14)
    assert [v for r in got.b for v in r] == pytest.approx([v for r in want.b for v in r], abs=1e-14)
    y = ns_forward(field, x, *pk.unpack(theta), c.kind)
    ref = solvers.get("heun").sample(field, x, 6, grid=warped).x
    assert float((y - ref).abs().max()) < 1e-12


def test_fit_on_a_single_gaussian_recovers_the_exact_map(gauss):
    """The PF-ODE of one Gaussian is affine, so a non-stationary solver with 3 evaluations can reproduce its exact
    map in 2-D (known optimum: zero error); the fit must get close to it, on fresh states too."""
    prob, I, field = gauss
    x = prob.sample_start(I, 0.0, 96, torch.Generator().manual_seed(4))
    fresh = prob.sample_start(I, 0.0, 200, torch.Generator().manual_seed(5))
    ref_fresh = prob.reference(I, fresh, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PilotSizeWarning)
        fit = fit_nonstationary(field, x, 3, init="euler", reference=prob.reference(I, x, 0.0, 1.0),
                                lbfgs_steps=300, patience=None)
    err = lambda s: float((s.sample(field, fresh, 3).x - ref_fresh).norm(dim=1).mean())
    e0, e1 = err(solvers.get("euler")), err(fit.solver)
    assert fit.improved and fit.reference_nfe == 0 and fit.n_fit == 72 and fit.n_held == 24
    assert fit.loss < 1e-3 * fit.init_loss and fit.holdout_loss < 1e-3 * fit.init_holdout_loss, fit
    assert e1 < 1e-3 * e0, (e0, e1)
    assert fit.pilot_nfe >= 3 * fit.iterations  # every forward pass counted through the pilot's model view


def test_time_shift_fit_finds_the_scanned_minimum_and_keeps_only_gains():
    from workbench.fitting import fit_time_shift
    from workbench.solvers import TimeShifted

    prob, I = PROBLEMS.get("gmm2d"), interpolants.get("linear")
    field = prob.field(I, "cpu", torch.float64)
    x = prob.sample_start(I, 0.0, 64, torch.Generator().manual_seed(3))
    ref = prob.reference(I, x, 0.0, 1.0)
    fit = fit_time_shift(field, x, 6, "euler", reference=ref, holdout=0.0, bounds=(-0.1, 0.1), iters=25)
    scan = {d: float((TimeShifted("euler", d).sample(field, x, 6).x - ref).norm(dim=1).mean())
            for d in np.linspace(-0.1, 0.1, 41)}
    d_scan = min(scan, key=scan.get)
    assert fit.improved and fit.loss <= min(scan.values()) + 1e-12 and abs(fit.params["offset"] - d_scan) <= 0.01
    assert fit.loss < fit.init_loss == pytest.approx(scan[0.0], rel=1e-12)
    assert fit.pilot_nfe == 6 * (fit.iterations + 1) and fit.n_parameters == 1
    assert TimeShifted.fit(field, x, ref, 6, "euler", bounds=(-0.1, 0.1), iters=25).offset == fit.params["offset"]
    # a window that excludes every gain: the base solver is kept
    worse = fit_time_shift(field, x, 6, "euler", reference=ref, holdout=0.0, bounds=(-d_scan - 0.1, -d_scan - 0.05)
                           if d_scan > 0 else (0.05 - d_scan, 0.1 - d_scan), iters=10)
    assert not worse.improved and worse.params["offset"] == 0.0 and worse.loss == worse.init_loss
    with pytest.raises(ConfigError, match="bounds"):
        fit_time_shift(field, x, 6, "euler", reference=ref, bounds=(0.1, -0.1))

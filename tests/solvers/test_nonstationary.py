"""Non-stationary solvers: exact linearisation of every fixed-step solver, the Euler default, NFE and interval
checks, the coefficient record, and the fit beating its start on fresh states against the exact map."""
import json
import math

import pytest
import torch

from workbench import interpolants, solvers
from workbench.convergence import fitted_order
from workbench.errors import ConfigError
from workbench.problems import PROBLEMS
from workbench.solvers import NSCoefficients, linearize
from workbench.solvers.learned import NSFit, fit_nonstationary

LINEAR_SOLVERS = [("euler", {}), ("heun", {}), ("midpoint", {}), ("rk4", {}), ("rk4_38", {}), ("dpmpp_2m", {}),
                  ("dpmpp_3m", {}), ("dpm_solver_2", {}), ("dpm_solver_3", {}), ("unipc", {"order": 2}),
                  ("unipc", {"order": 3}), ("unipc", {"order": 3, "predict": "noise"}), ("deis", {"order": 3}),
                  ("time_shifted", {"offset": -0.01})]


@pytest.fixture(scope="module")
def gmm():
    prob = PROBLEMS.get("gmm2d")
    out = {}
    for name in ("vp", "linear"):
        I = interpolants.get(name)
        t0 = 1e-3 if name == "vp" else 0.0
        out[name] = (prob, I, t0, prob.field(I, "cpu", torch.float64),
                     prob.sample_start(I, t0, 64, torch.Generator().manual_seed(0)))
    return out


@pytest.mark.parametrize("interp", ["vp", "linear"])
@pytest.mark.parametrize("name,params", LINEAR_SOLVERS, ids=[f"{n}{p.get('order', '')}{p.get('predict', '')}"
                                                              for n, p in LINEAR_SOLVERS])
def test_linearize_reproduces_the_solver_exactly(gmm, interp, name, params):
    prob, I, t0, field, x = gmm[interp]
    s = solvers.get(name, **params)
    nfe = 12
    c = linearize(s, field, nfe, schedule="logsnr", t_start=t0)
    ns = solvers.get("nonstationary", coefficients=c)
    want = s.sample(field, x, nfe, schedule="logsnr", t_start=t0)
    got = ns.sample(field, x, nfe, t_start=t0)
    assert got.nfe == want.nfe == c.n and c.order == s.order and set(got.orders) == {s.order}
    assert float((got.x - want.x).abs().max() / want.x.abs().max()) < 1e-11
    assert c.t_start == t0 and c.t_end == 1.0 and float(got.times[-1]) == 1.0
    assert c.times[0] == (max(t0 - 0.01, 0.0) if name == "time_shifted" else t0)  # model times


def test_linearized_rk4_keeps_its_order_and_default_is_euler(gmm):
    prob, I, t0, field, x = gmm["linear"]
    ref = prob.reference(I, x, 0.0, 1.0)
    steps = (8, 16, 32)
    errs = []
    for n in steps:
        c = linearize("rk4", field, 4 * n)
        errs.append(float((solvers.get("ns", coefficients=c).sample(field, x, 4 * n).x - ref).norm(dim=1).mean()))
    assert abs(fitted_order(steps, errs) - 4) < 0.35, errs
    # without coefficients: forward Euler on the schedule's grid
    e = solvers.get("euler").sample(field, x, 16, schedule="edm").x
    d = solvers.get("nonstationary").sample(field, x, 16, schedule="edm")
    assert d.nfe == 16 and float((d.x - e).abs().max()) < 1e-12


def test_nfe_interval_and_grid_are_checked(gmm):
    prob, I, t0, field, x = gmm["linear"]
    c = linearize("dpmpp_2m", field, 6)
    ns = solvers.get("nonstationary", coefficients=c)
    with pytest.raises(ConfigError, match="nfe"):
        ns.sample(field, x, 7)
    with pytest.raises(ConfigError, match="t_start/t_end"):
        ns.sample(field, x, 6, t_start=0.1)
    with pytest.raises(ConfigError, match="grid"):
        ns.sample(field, x, 6, grid=torch.linspace(0, 1, 7, dtype=torch.float64) ** 2)
    res = ns.sample(field, x, 6, return_trajectory=True)
    assert res.nfe == 6 and res.trajectory.shape[0] == 7 and torch.equal(res.times, c.grid())


def test_coefficients_record_round_trips_and_rejects_bad_fields(gmm):
    prob, I, t0, field, x = gmm["vp"]
    c = linearize(solvers.get("unipc", order=3), field, 8, schedule="edm", t_start=t0)
    back = NSCoefficients.from_json(c.to_json())
    assert back == c and back.kind == "x1"
    ns = solvers.get("bns", coefficients=json.loads(c.to_json()))  # a plain dict works too
    assert torch.equal(ns.sample(field, x, 8, t_start=t0).x,
                       solvers.get("ns", coefficients=c).sample(field, x, 8, t_start=t0).x)
    good = dict(times=[0.0, 0.5], a=[1.0, 1.0], b=[[0.5], [0.5, 0.5]])
    for field_name, bad in (("coefficients.a", dict(good, a=[1.0])), ("coefficients.b", dict(good, b=[[0.5], [0.5]])),
                            ("coefficients.times", dict(good, times=[0.0, math.nan])),
                            ("coefficients.times", dict(good, times=[0.0, 1.5])),
                            ("coefficients.kind", dict(good, kind="banana")),
                            ("coefficients.t_end", dict(good, t_end=0.0)),
                            ("coefficients.order", dict(good, order=0)),
                            ("coefficients", dict(good, speed=3)), ("coefficients", "not a dict")):
        with pytest.raises(ConfigError, match=field_name.replace(".", r"\.")):
            solvers.get("nonstationary", coefficients=bad)
    with pytest.raises(ConfigError, match="coefficients"):
        NSCoefficients.from_json("{not json")


def test_linearize_refuses_what_has_no_linear_form(gmm):
    prob, I, t0, field, x = gmm["linear"]
    for name in ("dopri5", "euler_maruyama", "dpm_solver_v3"):
        with pytest.raises(ConfigError, match="solver"):
            linearize(name, field, 10)
    # a kind that cannot be formed where the solver evaluates: velocity → data is singular nowhere on linear,
    # but an x1 (data) prediction carries no velocity at t = 1, where heun's last stage evaluates
    with pytest.raises(ConfigError, match="kind"):
        linearize("heun", field, 4, kind="x1")


def test_fit_beats_its_start_on_fresh_states(gmm):
    prob, I, t0, field, x = gmm["linear"]
    pilot = prob.sample_start(I, 0.0, 256, torch.Generator().manual_seed(5))
    fit = fit_nonstationary(field, pilot, 6, init="midpoint", schedule="uniform", adam_steps=150, lbfgs_steps=60)
    assert fit.improved and fit.loss < 0.5 * fit.init_loss and fit.holdout_loss < fit.init_holdout_loss
    assert fit.pilot_nfe > 6 * fit.iterations  # reference + every forward pass counted
    fresh = prob.sample_start(I, 0.0, 256, torch.Generator().manual_seed(99))
    ref = prob.reference(I, fresh, 0.0, 1.0)

    def err(s):
        r = s.sample(field, fresh, 6)
        assert r.nfe == 6
        return float((r.x - ref).norm(dim=1).mean())

    start, fitted = err(solvers.get("midpoint")), err(fit.solver)
    assert fitted < 0.5 * start, (start, fitted)
    back = NSFit.from_json(fit.to_json())
    assert back.coefficients == fit.coefficients and err(back.solver) == fitted


def test_fit_bad_inputs_name_their_parameter(gmm):
    prob, I, t0, field, x = gmm["linear"]
    c = linearize("midpoint", field, 6)
    for kwargs, name in ((dict(nfe=8, init=c), "nfe"), (dict(nfe=6, init=c, t_start=0.2), "t_start/t_end"),
                         (dict(nfe=6, adam_steps=-1), "adam_steps"), (dict(nfe=6, lbfgs_steps=1.5), "lbfgs_steps"),
                         (dict(nfe=6, lr=math.nan), "lr"), (dict(nfe=6, holdout=0.95), "holdout"),
                         (dict(nfe=6, init="nope"), "solver")):
        with pytest.raises(ConfigError, match=name):
            fit_nonstationary(field, x, **kwargs)
    with pytest.raises(ConfigError, match="x_pilot"):
        fit_nonstationary(field, x[:2], 6)


def test_experiment_fit_solver_and_cli(tmp_path, capsys):
    from workbench.cli import main
    from workbench.experiment import Experiment

    exp = Experiment(interpolant="linear", solver="midpoint", nfe=6, n_samples=200, dtype="float64")
    before = exp.run().error
    fitted, fit = exp.fit_solver(n_pilot=128, adam_steps=100, lbfgs_steps=30)
    assert fitted.solver == "nonstationary" and fitted.solver_params["coefficients"] == fit.coefficients
    after = fitted.run()
    assert fit.improved and after.nfe == 6 and after.error < 0.7 * before, (before, after.error)
    with pytest.raises(ConfigError, match="n_pilot"):
        exp.fit_solver(n_pilot=2)
    with pytest.raises(ConfigError, match="init"):  # heun spends 4 of 5 evaluations
        Experiment(interpolant="linear", solver="heun", nfe=5).fit_solver(n_pilot=16, adam_steps=1, lbfgs_steps=0)

    out = tmp_path / "run.json"
    code = main(["run", "--solver", "euler", "--nfe", "4", "--n-samples", "64", "--fit-solver", "32", "--out", "",
                 "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "fitted non-stationary solver" in text
    cfg = json.loads(out.read_text())["config"]
    assert cfg["solver"] == "nonstationary" and len(cfg["solver_params"]["coefficients"]["times"]) == 4


def test_fit_without_iterations_keeps_the_start(gmm):
    prob, I, t0, field, x = gmm["linear"]
    fit = fit_nonstationary(field, x, 6, init="midpoint", adam_steps=0, lbfgs_steps=0)
    assert not fit.improved and fit.iterations == 0 and fit.loss == fit.init_loss
    assert fit.coefficients == fit.init_coefficients


def test_fit_with_early_stopping_on_the_holdout(gmm):
    prob, I, t0, field, x = gmm["linear"]
    pilot = prob.sample_start(I, 0.0, 128, torch.Generator().manual_seed(5))
    kw = dict(init="midpoint", adam_steps=120, lbfgs_steps=20)
    plain = fit_nonstationary(field, pilot, 6, **kw)
    early = fit_nonstationary(field, pilot, 6, select="holdout", check_every=10, **kw)
    assert early.improved and early.holdout_loss <= plain.holdout_loss + 1e-15 and early.loss >= plain.loss - 1e-15
    with pytest.raises(ConfigError, match="select"):
        fit_nonstationary(field, pilot, 6, select="holdout", holdout=0.0, **kw)
    with pytest.raises(ConfigError, match="select"):
        fit_nonstationary(field, pilot, 6, select="best", **kw)
    with pytest.raises(ConfigError, match="check_every"):
        fit_nonstationary(field, pilot, 6, check_every=0, **kw)


def test_differentiable_forward_matches_the_solver(gmm):
    from workbench.solvers.learned import NSParameters, ns_forward

    prob, I, t0, field, x = gmm["vp"]
    c = linearize(solvers.get("unipc", order=3), field, 8, schedule="edm", t_start=t0)
    pk = NSParameters(c, x.dtype, x.device)
    got = ns_forward(field, x, *pk.unpack(pk.zeros()), c.kind)
    want = solvers.get("nonstationary", coefficients=c).sample(field, x, 8, t_start=t0).x
    assert float((got - want).abs().max() / want.abs().max()) < 1e-12

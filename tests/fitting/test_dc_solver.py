"""DC-Solver (dynamic compensation of UniPC): ratios 1 reproduce UniPC, a fit on a pilot with the exact
Gaussian-mixture map beats UniPC on fresh start states, and the fitted ratios round-trip through JSON."""
import pytest
import torch

from workbench import interpolants, schedules, solvers
from workbench.errors import ConfigError
from workbench.fitting import FitResult, Pilot
from workbench.fitting.dc_solver import fit_dc_ratios, ratio_regression
from workbench.problems import PROBLEMS
from workbench.solvers.dc_solver import DCSolver

T0, T1 = 1e-3, 0.999


@pytest.fixture(scope="module")
def setup():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    field = prob.field(I, "cpu", torch.float64)
    x0 = prob.sample_start(I, T0, 200, torch.Generator().manual_seed(0))
    return prob, I, field, x0, prob.reference(I, x0, T0, T1)


@pytest.mark.parametrize("order,nfe", [(2, 5), (3, 6), (4, 8)])
def test_unit_ratios_are_unipc(setup, order, nfe):
    prob, I, field, x0, _ = setup
    g = schedules.get("logsnr").grid(nfe, I, T0, T1).tolist()
    pm = Pilot.build(field, x0[:16], T0, T1, x0[:16]).model(field)
    a = DCSolver(order=order).compensated(pm, x0[:16], g)
    b = solvers.get("unipc", order=order).sample(field, x0[:16], nfe, grid=torch.tensor(g, dtype=torch.float64)).x
    assert float((a - b).abs().max()) < 1e-12
    assert pm.calls == nfe


def test_fit_beats_unipc_on_fresh_states_and_json(setup):
    prob, I, field, x0, ref = setup
    g = schedules.get("logsnr").grid(6, I, T0, T1).tolist()
    xp = prob.sample_start(I, T0, 32, torch.Generator().manual_seed(1))
    fit = fit_dc_ratios(field, Pilot.build(field, xp, T0, T1, prob.reference(I, xp, T0, T1)), g, iterations=40)
    assert fit.improved and fit.loss < fit.init_loss
    pm = Pilot.build(field, x0, T0, T1, ref).model(field)
    e_uni = float((DCSolver().compensated(pm, x0, g) - ref).norm(dim=1).mean())
    e_dc = float((DCSolver(tuple(fit.params["ratios"])).compensated(pm, x0, g) - ref).norm(dim=1).mean())
    assert e_dc < 0.7 * e_uni, (e_uni, e_dc)
    back = FitResult.from_json(fit.to_json())
    assert back.params["ratios"] == fit.params["ratios"]


def test_regression_reproduces_polynomial_ratios():
    truth = lambda n, u: 1.0 + 0.01 * n + 0.1 * u - 0.05 * u * u
    fits = {n: [truth(n, i / (n - 2)) for i in range(n - 1)] for n in (5, 6, 10)}
    pred = ratio_regression(fits)(8)
    assert pred == pytest.approx([truth(8, i / 6) for i in range(7)], abs=1e-9)


def test_bad_ratios_named(setup):
    prob, I, field, x0, _ = setup
    pm = Pilot.build(field, x0[:8], T0, T1, x0[:8]).model(field)
    with pytest.raises(ConfigError, match="ratios"):
        DCSolver((1.0, 1.0)).compensated(pm, x0[:8], [T0, 0.3, 0.6, 0.9, T1])
    with pytest.raises(ConfigError, match="order"):
        DCSolver(order=7)


def test_registered_plan_equals_the_compensated_loop(setup):
    prob, I, field, x0, _ = setup
    g = schedules.get("logsnr").grid(6, I, T0, T1).tolist()
    ratios = (0.6, 1.2, 0.85, 1.0, 0.95)
    s = solvers.get("dc_solver", ratios=ratios)
    assert isinstance(s, solvers.LinearSolver) and s == DCSolver(ratios)
    pm = Pilot.build(field, x0[:16], T0, T1, x0[:16]).model(field)
    loop = s.compensated(pm, x0[:16], g)
    grid = torch.tensor(g, dtype=torch.float64)
    for kind in ("x1", "noise", "velocity"):  # the plan's data reads converted by the compiled program
        from workbench.models.field import Field
        f = Field(lambda x, t: prob.gmm.predict(x, t, I, kind), I, kind)
        run = s.sample(f, x0[:16], 6, grid=grid)
        assert run.nfe == 6 and float((run.x - loop).abs().max()) < 1e-11, kind
    assert float((s.sample(field, x0[:16], 6, grid=grid).x - solvers.get("unipc").sample(
        field, x0[:16], 6, grid=grid).x).abs().max()) > 1e-4  # the ratios do change the run


def test_default_is_unipc_on_any_grid_and_compensation_needs_finite_ends():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("linear")  # a = 0 at t = 0 and σ = 0 at t = 1: λ = ∓∞
    field = prob.field(I, "cpu", torch.float64)
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    a = solvers.get("dc_solver").sample(field, x0, 8).x
    assert float((a - solvers.get("unipc").sample(field, x0, 8).x).abs().max()) < 1e-12
    with pytest.raises(ConfigError, match="t_start/t_end"):
        solvers.get("dc_solver", ratios=[0.9] * 7).sample(field, x0, 8)
    with pytest.raises(ConfigError, match="ratios"):
        solvers.get("dc_solver", ratios=[0.9] * 3).sample(field, x0, 8)
    with pytest.raises(ConfigError, match="ratios"):
        solvers.get("dc_solver", ratios="fast")

"""The one plan executor equals the readable per-method loops of tests/solvers/oracles.py.

Every registered deterministic linear sampler (a ``LinearSolver``: found from the registry, no hand list) is run by
``execute`` on its compiled program and compared with ``oracles.naive_plan`` (the plan read literally, every output
converted with ``Prediction.as_kind``) for four model output kinds, on two grids, to 1e-12; the method loops
(Runge–Kutta tableaux, DDIM, DPM-Solver++ 2M, the split-form Adams steps, non-stationary) check the plans themselves.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError, NonFiniteError
from workbench.models.field import Field
from workbench.problems import PROBLEMS
from workbench.solvers import LinearSolver
from tests.solvers import oracles

LINEAR = [n for n in solvers.names() if isinstance(solvers.get(n), LinearSolver)]
KINDS = ["noise", "x1", "velocity", "data_score"]
GRIDS = [("vp", 0.0, 0.99, "logsnr", 12), ("linear", 0.0, 1.0, "uniform", 12)]


def _field(prob, I, kind):
    if kind == "data_score":
        return prob.field(I, "cpu", torch.float64)
    return Field(lambda x, t: prob.gmm.predict(x, t, I, kind), I, kind)


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_every_deterministic_sampler_is_a_plan():
    assert {"euler", "heun", "rk4", "dpmpp_2m", "dpmpp_3m", "unipc", "deis", "dpm_solver_2", "dpm_solver_3",
            "nonstationary", "time_shifted", "heun3"} <= set(LINEAR)


@pytest.mark.parametrize("iname,t0,t1,sched,nfe", GRIDS, ids=[g[0] for g in GRIDS])
@pytest.mark.parametrize("name", LINEAR)
def test_executor_equals_literal_plan(name, iname, t0, t1, sched, nfe):
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get(iname)
    s = solvers.get(name)
    nfe = nfe - nfe % s.evals_per_step
    x0 = prob.sample_start(I, t0, 16, torch.Generator().manual_seed(0))
    compared = 0
    for kind in KINDS:
        field = _field(prob, I, kind)
        grid = s.make_grid(field, nfe, sched, t0, t1)
        try:
            ours = s.sample(field, x0, nfe, grid=grid, return_trajectory=True)
        except ConfigError as exc:  # a conversion singular at an end: the literal plan must fail there too
            assert "t_start/t_end" in str(exc)
            with pytest.raises(ConfigError):
                oracles.naive_plan(s.plan_for(I, grid.tolist()), field, x0)
            continue
        ref = oracles.naive_plan(s.plan_for(I, grid.tolist()), field, x0)
        assert ours.nfe == nfe and _rel(ours.x, ref) < 1e-12, (kind, _rel(ours.x, ref))
        compared += 1
    assert compared >= 2


@pytest.mark.parametrize("name", ["euler", "heun", "midpoint", "heun3", "kutta3", "ssprk3", "rk4", "rk4_38"])
def test_runge_kutta_plans_equal_the_tableau_loop(name):
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("linear")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = prob.field(I, "cpu", torch.float64)
    s = solvers.get(name)
    grid = torch.tensor([0.0, 0.13, 0.4, 0.41, 0.8, 1.0], dtype=torch.float64)  # uneven, not dividing the interval
    ours = s.sample(field, x0, 5 * s.evals_per_step, grid=grid).x
    assert _rel(ours, oracles.runge_kutta(s.tableau, field, x0, grid.tolist())) < 1e-12


def test_log_snr_plans_equal_the_published_loops():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = _field(prob, I, "noise")
    grid = solvers.get("dpmpp_2m").make_grid(field, 10, "logsnr", 0.0, 0.99)
    g = grid.tolist()
    assert _rel(solvers.get("dpmpp_2m", lower_order_final=False).sample(field, x0, 10, grid=grid).x,
                oracles.dpmpp_2m(field, x0, g)) < 1e-12
    assert _rel(solvers.get("dpmpp", order=1).sample(field, x0, 10, grid=grid).x, oracles.ddim(field, x0, g)) < 1e-12
    # the oracles can fail: a second-order update is far from DDIM
    assert _rel(oracles.dpmpp_2m(field, x0, g), oracles.ddim(field, x0, g)) > 1e-4


@pytest.mark.parametrize("points", [1, 2, 3])
def test_split_form_equals_adams_in_u_and_rho(points):
    """On linear [0, 1] (a = 0 and σ = 0 at the ends) DPM-Solver++ of order k without its warm-up corrector is
    Adams–Bashforth in u = a/σ (noise half) and ρ = σ/a (data half)."""
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("linear")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = prob.field(I, "cpu", torch.float64)
    s = solvers.get("dpmpp", order=points, lower_order_final=False)
    grid = s.make_grid(field, 12, "uniform", 0.0, 1.0)
    from workbench.solvers.log_snr import LogSNRTable, recurrence_plan, split_step, step_points

    tab = LogSNRTable.build(I, grid.tolist())
    pts = step_points(tab, points, False)
    plan = recurrence_plan(tab, [(k, *split_step(tab, i, k)) for i, k in enumerate(pts)], "adams")
    assert _rel(oracles.naive_plan(plan, field, x0), oracles.adams_u_rho(field, x0, grid.tolist(), points)) < 1e-12
    if points == 1:  # with one point there is no warm-up: the registered solver is that plan
        assert _rel(s.sample(field, x0, 12, grid=grid).x, oracles.adams_u_rho(field, x0, grid.tolist(), 1)) < 1e-12


def test_nonstationary_equals_its_recurrence():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    for kind in ("noise", "velocity"):
        field = _field(prob, I, kind)
        c = solvers.linearize("unipc", field, 10, schedule="logsnr", t_end=0.99, kind="velocity")
        ours = solvers.get("nonstationary", coefficients=c).sample(field, x0, 10, t_start=c.t_start, t_end=c.t_end).x
        assert _rel(ours, oracles.nonstationary(c, field, x0)) < 1e-12
        ref = solvers.get("unipc").sample(field, x0, 10, schedule="logsnr", t_end=0.99).x
        assert _rel(ours, ref) < 1e-11  # and the linearised form reproduces the solver


def test_float32_and_gradients_through_the_executor():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = _field(prob, I, "noise")
    for name in ("dpmpp_2m", "unipc", "rk4", "nonstationary"):
        s = solvers.get(name)
        a = s.sample(field, x0.float(), 8, schedule="logsnr", t_end=0.99).x
        b = s.sample(field, x0, 8, schedule="logsnr", t_end=0.99).x
        assert a.dtype == torch.float32 and _rel(a.double(), b) < 1e-5
        x = x0.clone().requires_grad_(True)
        s.sample(field, x, 8, schedule="logsnr", t_end=0.99).x.square().sum().backward()
        eps = 1e-6
        d = torch.zeros_like(x0)
        d[0, 0] = eps
        fd = (s.sample(field, x0 + d, 8, schedule="logsnr", t_end=0.99).x.square().sum()
              - s.sample(field, x0 - d, 8, schedule="logsnr", t_end=0.99).x.square().sum()) / (2 * eps)
        assert abs(float(x.grad[0, 0]) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))


def test_nan_is_reported_at_its_step():
    I = interpolants.get("vp")
    grid = torch.linspace(0.0, 0.99, 11, dtype=torch.float64)

    def blows_up(x, t):
        return torch.where(t[:, None] > 0.45, torch.full_like(x, float("nan")), 0.1 * x)

    for name in ("dpmpp_2m", "unipc", "deis", "heun"):
        s = solvers.get(name)
        with pytest.raises(NonFiniteError, match=r"step \d+ \(t="):
            s.sample(Field(blows_up, I, "noise"), torch.ones(4, 2), nfe=10, grid=grid[: 10 // s.evals_per_step + 1])


def test_interleaved_runs_on_one_model():
    """Two runs stepped alternately (a dashboard streaming two samplers) equal the runs made one after the other,
    and each counts its own calls."""
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    field = _field(prob, I, "noise")
    for name in ("unipc", "heun"):
        s = solvers.get(name)
        xa = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(1))
        xb = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(2))
        alone = [s.sample(field, x0, 12, schedule="logsnr", t_end=0.99).x for x0 in (xa, xb)]
        ra, rb = (s.stream(field, x0, 12, schedule="logsnr", t_end=0.99) for x0 in (xa, xb))
        for _ in zip(ra, rb):
            pass
        for _ in ra:
            pass
        for _ in rb:
            pass
        assert torch.equal(ra.result.x, alone[0]) and torch.equal(rb.result.x, alone[1])
        assert ra.result.nfe == rb.result.nfe == 12

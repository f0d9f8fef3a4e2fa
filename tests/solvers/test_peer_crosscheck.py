"""Cross-checks against peer implementations on the same exact model and the same continuous time grid.

diffusers (test-only dependency): DPMSolverMultistepScheduler / UniPCMultistepScheduler driven by the exact GMM
ε-model through their own ``step`` loop; their sigmas are replaced by the noise-to-signal ratios e^{-λ(t_i)} of
our VP grid, so both solvers see identical λ's. torchdiffeq: dopri5 at the same tolerances.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.problems import PROBLEMS

diffusers = pytest.importorskip("diffusers")


def _vp_setup(scheduler, steps):
    """Our VP times matching the scheduler's discrete timesteps; overwrite its sigmas with ours (float64)."""
    I = interpolants.get("vp")
    scheduler.set_timesteps(steps)
    sig = scheduler.sigmas.to(torch.float64)
    lam = -torch.log(sig[:-1])
    # diffusers' timestep 999 (λ = −5.0588) lies below the continuous vp's range (λ(0) = −5.0250): start at t = 0
    # explicitly (t_from_log_snr raises out of range instead of clamping)
    lam = lam.clamp(min=I.log_snr_range()[0])
    t = I.t_from_log_snr(lam)
    grid = torch.cat([t, torch.ones(1, dtype=torch.float64)])
    assert float(sig[-1]) == 0.0
    ours = torch.tensor([float(torch.exp(-torch.as_tensor(I.log_snr(float(v))))) for v in t] + [0.0],
                        dtype=torch.float64)
    scheduler.sigmas = ours
    return I, grid


def _run_diffusers(scheduler, gmm, I, grid, x):
    ts = grid.tolist()
    for i, step_t in enumerate(scheduler.timesteps):
        eps = gmm.predict(x, ts[i], I, "noise")
        x = scheduler.step(eps, step_t, x).prev_sample
    return x


@pytest.mark.parametrize("steps", [8, 20])
@pytest.mark.parametrize("which", ["dpmpp_2m", "unipc", "unipc3"])
def test_matches_diffusers(which, steps):
    prob = PROBLEMS.get("gmm2d")
    if which == "dpmpp_2m":
        sch = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                                    solver_order=2, algorithm_type="dpmsolver++")
        ours = solvers.get("dpmpp_2m", variable="log_snr")
    else:
        p = 3 if which == "unipc3" else 2
        sch = diffusers.UniPCMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear", solver_order=p,
                                                predict_x0=True, solver_type="bh2")
        ours = solvers.get("unipc", history=p, lower_order_final=True, variable="log_snr")
    I, grid = _vp_setup(sch, steps)
    x0 = prob.sample_start(I, float(grid[0]), 256, torch.Generator().manual_seed(0))
    theirs = _run_diffusers(sch, prob.gmm, I, grid, x0.clone())
    field = prob.field(I, "cpu", torch.float64)
    res = ours.sample(field, x0, steps, grid=grid)
    assert res.nfe == steps
    rel = ((res.x - theirs.to(torch.float64)).norm() / theirs.norm()).item()
    assert rel <= 1e-4, rel
    # and the check can fail: a different order is far away
    other = solvers.get("dpmpp", order=1).sample(field, x0, steps, grid=grid).x
    assert ((other - theirs.to(torch.float64)).norm() / theirs.norm()).item() > 1e-3


@pytest.fixture(scope="module")
def linear_gmm():
    """gmm2d on the linear path: (problem, interpolant, start states, our field, torchdiffeq's f(t, x))."""
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("linear")
    x0 = prob.sample_start(I, 0.0, 64, torch.Generator().manual_seed(1))

    def f(t, x):
        return prob.gmm.velocity(x, float(t), I)

    return prob, I, x0, prob.field(I, "cpu", torch.float64), f


def test_dopri5_matches_torchdiffeq(linear_gmm):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    prob, I, x0, field, f = linear_gmm
    tol = 1e-6
    ours = solvers.get("dopri5", rtol=tol, atol=tol).sample(field, x0, 5000, t_start=0.0, t_end=0.999)
    theirs = torchdiffeq.odeint(f, x0, torch.tensor([0.0, 0.999], dtype=torch.float64), method="dopri5",
                                rtol=tol, atol=tol)[-1]
    ref = prob.reference(I, x0, 0.0, 0.999)
    e_ours = (ours.x - ref).norm(dim=1).mean().item()
    e_theirs = (theirs - ref).norm(dim=1).mean().item()
    diff = (ours.x - theirs).norm(dim=1).mean().item()
    assert e_ours < 50 * tol and e_theirs < 50 * tol, (e_ours, e_theirs)
    assert diff < 50 * tol, diff


def test_rk4_38_matches_torchdiffeq_rk4_and_classic_rk4_does_not(linear_gmm):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    prob, I, x0, field, f = linear_gmm
    ours = solvers.get("rk4_38").sample(field, x0, 20).x   # 5 steps on [0, 1]
    theirs = torchdiffeq.odeint(f, x0, torch.tensor([0.0, 1.0], dtype=torch.float64), method="rk4",
                                options={"step_size": 0.2})[-1]
    assert ((ours - theirs).norm() / theirs.norm()).item() < 1e-12
    classic = solvers.get("rk4").sample(field, x0, 20).x
    assert ((classic - theirs).norm() / theirs.norm()).item() > 1e-6

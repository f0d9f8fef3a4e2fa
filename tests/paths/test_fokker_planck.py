"""The score Fokker–Planck residual and the ODE–SDE gap (Deveney et al. 2023) against exact scores and Gaussian laws."""
import pytest
import torch

from workbench import interpolants
from workbench.data.gmm import gmm2d_ring
from workbench.errors import ConfigError
from workbench.metrics.fokker_planck import (fokker_planck_metric, fokker_planck_residual, gaussian_ode_sde_gap,
                                             gaussian_w2)
from workbench.models.gmm import GaussianMixture
from workbench.training.regularizers import FokkerPlanckRegularizer

MU, LAM = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _eps(t):
    return (1.0 - t) ** 2


def _linear_error_score(gm, interp, delta):
    def score(x, t):
        a = interp.coefficients(t).signal[:, None]
        return gm.score(x, t, interp) - delta * (x - a * gm.means[0])
    return score


@pytest.mark.parametrize("name", ["linear", "vp", "ko"])
def test_exact_mixture_score_has_zero_residual(name):
    interp = interpolants.get(name) if name != "ko" else interpolants.get("ko", signal_modes=(0.2,), noise_modes=(-0.1,))
    gm = gmm2d_ring()
    est = fokker_planck_metric(lambda x, t: gm.score(x, t, interp), interp, gm.sample(128, _gen(0)), generator=_gen(1))
    assert est.value < 1e-18, est
    # a perturbed score has a clearly positive residual
    bad = fokker_planck_metric(lambda x, t: gm.score(x, t, interp) + 0.1 * torch.sin(x), interp,
                               gm.sample(128, _gen(0)), generator=_gen(1))
    assert bad.value > 1e-3 and bad.value > 3 * bad.stderr, bad


def test_gaussian_gap_is_zero_for_the_exact_score_and_exact_for_a_linear_error():
    lin = interpolants.get("linear")
    exact = gaussian_ode_sde_gap(MU, LAM, lin, 0.0, _eps, steps=300)
    assert exact.w2 < 1e-10 and exact.w2_ode_to_truth < 1e-10 and exact.w2_sde_to_truth < 1e-10
    gap = gaussian_ode_sde_gap(MU, LAM, lin, 0.3, _eps, steps=300)
    assert gap.w2 > 0.1
    # RK4 has converged: halving the step changes W2 by < 1e-8
    assert abs(gaussian_ode_sde_gap(MU, LAM, lin, 0.3, _eps, steps=600).w2 - gap.w2) < 1e-8
    # the moment equations agree with simulating the ODE (Heun) and the SDE (Euler–Maruyama) with the same score
    gm = GaussianMixture(MU[None], LAM[None])
    score = _linear_error_score(gm, lin, 0.3)
    n, steps, t0 = 8000, 100, 0.05
    g = _gen(2)
    x = gm.sample_marginal(lin, t0, n, g)
    y = x.clone()
    h = (1.0 - t0) / steps

    def vel(z, t):
        tt = torch.full((n,), t, dtype=torch.float64)
        return lin.score_to_velocity(score(z, tt), z, tt), score(z, tt)

    for i in range(steps):
        t = t0 + i * h
        v1, _ = vel(x, t)
        v2, _ = vel(x + h * v1, t + h)
        x = x + 0.5 * h * (v1 + v2)
        b, s = vel(y, t)
        y = y + h * (b + _eps(t) * s) + (2 * _eps(t) * h) ** 0.5 * torch.randn(y.shape, dtype=torch.float64, generator=g)
    se_mean = (gap.sde_var / n).sqrt()
    assert torch.allclose(x.mean(0), gap.ode_mean, atol=5 * float(se_mean.max()))
    assert torch.allclose(x.var(0), gap.ode_var, rtol=0.05)
    assert torch.allclose(y.mean(0), gap.sde_mean, atol=5 * float(se_mean.max()))
    assert torch.allclose(y.var(0), gap.sde_var, rtol=0.06)
    sim = gaussian_w2(x.mean(0), x.var(0), y.mean(0), y.var(0))
    print(f"W2 gap exact {gap.w2:.5f} simulated {sim:.5f}; ode var {x.var(0).tolist()} vs {gap.ode_var.tolist()}; sde var {y.var(0).tolist()} vs {gap.sde_var.tolist()}")
    assert sim == pytest.approx(gap.w2, rel=0.1), (sim, gap.w2)
    # and the FP residual of that score is positive
    est = fokker_planck_metric(score, lin, gm.sample(256, _gen(3)), generator=_gen(4))
    assert est.value > 1e-2


def test_regulariser_trains_the_error_away_and_closes_the_gap():
    lin = interpolants.get("linear")
    gm = GaussianMixture(MU[None], LAM[None])
    delta = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    score = lambda x, t: _linear_error_score(gm, lin, delta)(x, t)
    reg = FokkerPlanckRegularizer(lin, weight=1.0)
    opt = torch.optim.Adam([delta], lr=0.01)
    g = _gen(5)
    before = gaussian_ode_sde_gap(MU, LAM, lin, float(delta.detach()), _eps, steps=400).w2
    for _ in range(40):
        opt.zero_grad()
        loss = reg(score, gm.sample(128, g), generator=g)
        loss.backward()
        opt.step()
    after = gaussian_ode_sde_gap(MU, LAM, lin, float(delta.detach()), _eps, steps=400).w2
    print(f"gap before {before:.4f} after {after:.4f} delta {float(delta.detach()):.4f}")
    assert after < 0.2 * before, (before, after, float(delta.detach()))


def test_bad_input_is_named():
    lin = interpolants.get("linear")
    with pytest.raises(ConfigError, match="interpolant"):
        fokker_planck_residual(lambda x, t: x, interpolants.get("mirror"), torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(ConfigError, match="x/t"):
        fokker_planck_residual(lambda x, t: x, lin, torch.zeros(2, 2), torch.ones(3))
    with pytest.raises(ConfigError, match="t_min"):
        fokker_planck_metric(lambda x, t: x, lin, torch.zeros(2, 2), t_min=0.0)
    with pytest.raises(ConfigError, match="weight"):
        FokkerPlanckRegularizer(lin, weight=-1.0)
    with pytest.raises(ConfigError, match="mean/var"):
        gaussian_ode_sde_gap([0.0], [-1.0], lin, 0.1, _eps)


def test_solver_error_regulariser_vanishes_on_straight_fields_and_is_differentiable():
    from workbench import solvers
    from workbench.training.regularizers import SolverErrorRegularizer

    reg = SolverErrorRegularizer(rtol=1e-3, atol=1e-3)
    x0 = torch.randn(64, 2, dtype=torch.float64, generator=_gen(9))
    # a constant field is integrated exactly: every local error estimate vanishes (to rounding)
    const = reg.solve(lambda x, t: torch.ones_like(x), x0)
    assert float(const.penalty) < 1e-12 and const.rejected == 0
    # on the exact ring field: several accepted steps covering [0, 1], each within tolerance, and the penalty is
    # differentiable in a model parameter
    ring, lin = gmm2d_ring(), interpolants.get("linear")
    scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    vel = lambda x, t: scale * ring.velocity(x, t.clamp(max=1 - 1e-9), lin)
    out = reg.solve(vel, x0)
    assert out.accepted > 1 and out.penalty.requires_grad and max(out.errors) <= 1.0
    out.penalty.backward()
    g = float(scale.grad)
    assert g == g and g != 0.0  # finite, nonzero (the controller is detached, so no finite-difference identity)
    assert sum(out.steps) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="rtol"):
        SolverErrorRegularizer(rtol=0.0)

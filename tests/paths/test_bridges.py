"""Schrödinger bridges against the closed-form Gaussian bridge (Bunne et al. 2023; Janati et al. 2020)."""
import math

import ot
import pytest
import torch

from workbench import bridges
from workbench.bridges import GaussianBridge, GaussianMultiMarginalBridge, LightMultiMarginalBridge, LightSB
from workbench.errors import ConfigError
from workbench.metrics import sliced_wasserstein

A = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
B = torch.tensor([[2.0, -0.4], [-0.4, 0.8]], dtype=torch.float64)
M0 = torch.tensor([0.0, 1.0], dtype=torch.float64)
M1 = torch.tensor([2.0, -1.0], dtype=torch.float64)
EPS = 0.5


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_closed_form_bridge_is_the_entropic_plan():
    gb = GaussianBridge(M0, A, M1, B, EPS)
    # 1-D, unit variances: C/(1-C^2) = 1/ε  ⇒  C = (√(ε²+4) − ε)/2
    one = GaussianBridge([0.0], [[1.0]], [0.0], [[1.0]], EPS)
    assert float(one.cross_cov) == pytest.approx((math.sqrt(EPS ** 2 + 4) - EPS) / 2, rel=1e-12)
    # Schrödinger system: the conditional plan is ∝ exp(<x0,x1>/ε) v(x1), so its precision-times-ε equals the
    # (symmetric) regression matrix: ε^{-1}Σ_{1|0} = C^T A^{-1}
    assert torch.allclose(gb.plan_cov / EPS, gb.plan_matrix, atol=1e-12)
    assert torch.allclose(gb.plan_matrix, gb.plan_matrix.T, atol=1e-12)
    # ε → 0: the OT (Monge) cross-covariance A^{1/2}(A^{1/2}BA^{1/2})^{1/2}A^{-1/2}
    small = GaussianBridge(M0, A, M1, B, 1e-9)
    ah = bridges.gaussian.sym_sqrt(A)
    c_ot = ah @ bridges.gaussian.sym_sqrt(ah @ B @ ah) @ torch.linalg.inv(ah)
    assert torch.allclose(small.cross_cov, c_ot, atol=1e-7)


def test_closed_form_matches_sinkhorn_on_samples():
    # POT's entropic plan for cost ||x-y||²/2 at reg ε between large samples: its cross-covariance ≈ C_ε
    gb = GaussianBridge(M0, A, M1, B, EPS)
    g = _gen(0)
    x0 = M0 + torch.randn(600, 2, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(A).T
    x1 = M1 + torch.randn(600, 2, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(B).T
    cost = 0.5 * torch.cdist(x0, x1) ** 2
    w = torch.full((600,), 1 / 600, dtype=torch.float64)
    plan = ot.sinkhorn(w, w, cost, EPS, numItermax=5000, stopThr=1e-10)
    c = (x0 - x0.mean(0)).T @ plan @ (x1 - x1.mean(0))
    assert torch.allclose(c, gb.cross_cov, atol=0.06), (c, gb.cross_cov)  # measured 0.018


def test_light_sb_closed_form_drift_and_plan_equal_the_gaussian_bridge():
    gb = GaussianBridge(M0, A, M1, B, EPS)
    sb = LightSB.from_parameters([0.0], gb.plan_shift[None], gb.plan_matrix[None], EPS)
    x = torch.randn(64, 2, dtype=torch.float64, generator=_gen(1)) * 2
    for t in (0.0, 0.3, 0.9, 0.999):
        assert torch.allclose(sb.drift(x, t), gb.drift(x, t), atol=1e-9, rtol=1e-9), t
    # log c is finite and the plan is the Gaussian conditional: compare moments of plan samples
    x0 = torch.zeros(20000, 2, dtype=torch.float64) + 0.5
    y = sb.sample_plan(x0, _gen(2))
    assert torch.allclose(y.mean(0), gb.plan_matrix @ x0[0] + gb.plan_shift, atol=0.03)
    assert torch.allclose(torch.cov(y.T), gb.plan_cov, atol=0.03)


def test_light_sb_trained_from_samples_recovers_coupling_and_drift():
    gb = GaussianBridge(M0, A, M1, B, EPS)
    g = _gen(3)
    x0, x1 = gb.sample_plan(1000, g)
    x1 = x1[torch.randperm(1000, generator=g)]  # unpaired sample sets
    sb = LightSB(2, 1, EPS)
    log = sb.fit(x0, x1, iterations=150, lr=0.06, generator=g)
    assert log.loss[-1] < log.loss[0]
    with torch.no_grad():
        cross = A @ sb.S[0].T  # Cov(X0, X1) = A S^T for the plan N(r + S x0, εS)
        print("trained cross-cov error", float((cross - gb.cross_cov).abs().max()))
        assert torch.allclose(cross, gb.cross_cov, atol=0.08), (cross, gb.cross_cov)
        x = M0 + torch.randn(256, 2, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(A).T
        err = (sb.drift(x, 0.5) - gb.drift(x, 0.5)).norm(dim=1).mean() / gb.drift(x, 0.5).norm(dim=1).mean()
        print("drift relative error", float(err))
        assert err < 0.1, float(err)


def test_plan_sampling_equals_simulating_the_drift_sde_in_law():
    # a non-Gaussian bridge (3 components): x1 ~ π(·|x0) directly vs Euler–Maruyama of dX = g dt + √ε dW
    g = _gen(4)
    S = torch.stack([torch.tensor([[0.6, 0.1], [0.1, 0.4]]), torch.eye(2) * 0.3, torch.tensor([[0.5, -0.2], [-0.2, 0.5]])])
    sb = LightSB.from_parameters([0.0, -0.5, 0.3], torch.tensor([[2.0, 0.0], [-1.5, 1.5], [0.0, -2.0]]), S.double(), EPS)
    x0 = torch.randn(2000, 2, dtype=torch.float64, generator=g)
    plan, plan2 = sb.sample_plan(x0, g), sb.sample_plan(x0, g)
    sde = sb.simulate(x0, 100, g)
    joint = lambda y: torch.cat([x0, y], 1)  # compare the couplings (x0, x1), not just the marginals
    noise = float(sliced_wasserstein(joint(plan), joint(plan2), generator=_gen(5)))
    gap = float(sliced_wasserstein(joint(plan), joint(sde), generator=_gen(5)))
    assert gap < 2.0 * noise + 0.02, (gap, noise)
    # and a wrong drift (ε twice as large in the plan) is detected at the same sample size
    wrong = LightSB.from_parameters([0.0, -0.5, 0.3], sb.r.detach(), S.double() * 0.5, EPS)
    assert float(sliced_wasserstein(joint(wrong.sample_plan(x0, g)), joint(sde), generator=_gen(5))) > 3 * noise


def test_multi_marginal_gaussian_is_markov_with_brownian_interactions():
    times = [0.0, 0.4, 1.0]
    means = torch.tensor([[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]], dtype=torch.float64)
    covs = torch.stack([A, torch.eye(2, dtype=torch.float64) * 0.7, B])
    mm = GaussianMultiMarginalBridge(times, means, covs, EPS)
    d = 2
    prec = torch.linalg.inv(mm.joint_cov())
    # dP/dR = Π f_i(x_i) with R Brownian: precision block-tridiagonal, off-diagonal blocks −I/(ε Δt)
    eye = torch.eye(d, dtype=torch.float64)
    for i, dt in enumerate((0.4, 0.6)):
        assert torch.allclose(prec[i * d:(i + 1) * d, (i + 1) * d:(i + 2) * d], -eye / (EPS * dt), atol=1e-9)
    assert torch.allclose(prec[0:d, 2 * d:3 * d], torch.zeros(d, d, dtype=torch.float64), atol=1e-9)
    # sampled paths have the prescribed marginals and the pairwise-bridge couplings
    paths = mm.sample_paths(20000, _gen(6))
    for i in range(3):
        assert torch.allclose(torch.cov(paths[:, i].T), covs[i], atol=0.05)
    c01 = ((paths[:, 0] - paths[:, 0].mean(0)).T @ (paths[:, 1] - paths[:, 1].mean(0))) / 20000
    assert torch.allclose(c01, mm.bridges[0].cross_cov, atol=0.04)


def test_multi_marginal_light_from_samples_recovers_pairwise_bridges():
    times = [0.0, 0.5, 1.0]
    means = torch.tensor([[0.0, 0.0], [1.0, 0.5], [2.0, -1.0]], dtype=torch.float64)
    covs = torch.stack([A, torch.eye(2, dtype=torch.float64) * 0.7, B])
    truth = GaussianMultiMarginalBridge(times, means, covs, EPS)
    g = _gen(7)
    samples = [means[i] + torch.randn(1200, 2, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(covs[i]).T
               for i in range(3)]
    mm = LightMultiMarginalBridge(times, EPS, n_components=1).fit(samples, iterations=150, lr=0.06, generator=g)
    for k, sb in enumerate(mm.bridges):
        with torch.no_grad():
            print("interval", k, "cross-cov error", float((covs[k] @ sb.S[0].T - truth.bridges[k].cross_cov).abs().max()))
            assert torch.allclose(covs[k] @ sb.S[0].T, truth.bridges[k].cross_cov, atol=0.1)
    paths = mm.sample_paths(samples[0], g)
    sw_end = float(sliced_wasserstein(paths[:, 2], samples[2], generator=_gen(8)))
    print("end-marginal SW2", sw_end)
    assert sw_end < 0.15


def test_registry_and_bad_input():
    assert set(bridges.names()) == {"gaussian", "light", "multi_marginal_gaussian", "multi_marginal_light"}
    with pytest.raises(ConfigError, match="eps"):
        GaussianBridge(M0, A, M1, B, 0.0)
    with pytest.raises(ConfigError, match="covariance"):
        GaussianBridge(M0, -A, M1, B, 1.0)
    with pytest.raises(ConfigError, match="times"):
        GaussianMultiMarginalBridge([0.0, 0.0], torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), 1.0)
    with pytest.raises(ConfigError, match="x0"):
        LightSB(2, 1).log_c(torch.zeros(3, 3))
    with pytest.raises(ConfigError, match="t"):
        LightSB(2, 1).drift(torch.zeros(3, 2, dtype=torch.float64), 1.0)

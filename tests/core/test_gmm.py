"""The exact Gaussian-mixture ground truth against Monte Carlo, autograd and closed forms."""
import math

import pytest
import torch

from workbench import interpolants, solvers
from workbench.data.gmm import gaussian, gmm2d_ring, gmm_random
from workbench.models import Field


@pytest.mark.parametrize("name", ["linear", "vp", "sb", "trig"])
def test_velocity_equals_monte_carlo_conditional_expectation(name):
    """b(t, x) = E[α̇x0 + β̇x1 + γ̇z | x_t = x], estimated by self-normalised importance sampling over x1."""
    I = interpolants.get(name)
    gmm = gmm2d_ring()
    g = torch.Generator().manual_seed(0)
    t = 0.6
    c = I.coefficients(t)
    x = gmm.sample_marginal(I, t, 5, g)                      # query points
    n = 400_000
    x1 = gmm.sample(n, g)                                    # proposal: the data law
    # p(x_t = x | x1) = N(x; a x1, sigma^2 I); the Gaussian part's conditional mean gives the rest
    w = -((x[:, None, :] - c.signal * x1[None]) ** 2).sum(-1) / (2 * c.sigma ** 2)
    w = torch.softmax(w, dim=1)                              # (5, n)
    e_x1 = w @ x1
    e_xi = (x - c.signal * e_x1) / c.sigma                   # E[ξ | x] from x = a E[x1|x] + σ E[ξ|x]
    mc = c.d_beta * e_x1 + (c.sigma_dsigma / c.sigma) * e_xi
    exact = gmm.velocity(x, t, I)
    ess = 1.0 / (w ** 2).sum(1)
    assert bool((ess > 200).all())
    assert torch.allclose(exact, mc, atol=0.05, rtol=0.02), (exact, mc)


@pytest.mark.parametrize("name", ["linear", "vp", "ve", "mirror", "sb"])
@pytest.mark.parametrize("t", [0.0, 0.3, 0.9, 1.0])
def test_score_is_grad_log_prob(name, t):
    I = interpolants.get(name)
    gmm = gmm_random(dim=5, n_modes=3, seed=1)
    if name == "mirror" and t in (0.0, 1.0):
        pass  # sigma = 0: the law is the data mixture itself, still smooth
    x = gmm.sample_marginal(I, t, 16, torch.Generator().manual_seed(2)).requires_grad_(True)
    (grad,) = torch.autograd.grad(gmm.log_prob(x, t, I).sum(), x)
    assert torch.allclose(gmm.score(x.detach(), t, I), grad, rtol=1e-9, atol=1e-9)


def test_log_prob_normalised_and_matches_single_gaussian():
    I = interpolants.get("linear")
    gm = gaussian(dim=2)
    t = 0.4
    c = I.coefficients(t)
    cov = c.signal ** 2 * gm.covs[0] + c.sigma ** 2 * torch.eye(2, dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal(c.signal * gm.means[0], cov)
    x = torch.randn(10, 2, dtype=torch.float64)
    assert torch.allclose(gm.log_prob(x, t, I), mvn.log_prob(x), atol=1e-12)
    # grid integral of the 2-D mixture density at t = 1 is 1
    g = gmm2d_ring()
    lin = torch.linspace(-6, 6, 601, dtype=torch.float64)
    X, Y = torch.meshgrid(lin, lin, indexing="ij")
    pts = torch.stack([X.flatten(), Y.flatten()], 1)
    mass = g.log_prob(pts, 1.0, I).exp().sum() * (lin[1] - lin[0]) ** 2
    assert abs(float(mass) - 1.0) < 1e-4


def test_data_denoiser_is_conditional_mean_for_one_gaussian():
    I = interpolants.get("trig")
    gm = gaussian(dim=3, seed=4)
    t = 0.5
    c = I.coefficients(t)
    S = gm.covs[0]
    C = c.signal ** 2 * S + c.sigma ** 2 * torch.eye(3, dtype=torch.float64)
    x = torch.randn(7, 3, dtype=torch.float64)
    expected = gm.means[0] + (c.signal * S @ torch.linalg.solve(C, (x - c.signal * gm.means[0]).T)).T
    assert torch.allclose(gm.data_and_score(x, t, I)[0], expected, atol=1e-12)


@pytest.mark.parametrize("name", ["linear", "vp", "trig", "ve"])
def test_flow_map_matches_dopri5_and_marginals(name):
    """The closed-form single-Gaussian flow map equals a tight Dormand–Prince solve of the exact field."""
    I = interpolants.get(name)
    gm = gaussian(dim=3, seed=2)
    x0 = gm.sample_marginal(I, 0.0, 64, torch.Generator().manual_seed(5))
    exact = gm.flow_map(x0, 0.0, 1.0, I)
    res = solvers.get("dopri5", rtol=1e-10, atol=1e-10).sample(gm.field(I), x0, nfe=100_000)
    assert (res.x - exact).abs().max() < 1e-7
    # forward then backward returns to the start
    back = gm.flow_map(exact, 1.0, 0.0, I)
    assert torch.allclose(back, x0, atol=1e-10)


def test_batched_times_and_float32():
    I = interpolants.get("linear")
    gmm = gmm2d_ring()
    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, 6, dtype=torch.float64)
    d, s = gmm.data_and_score(x, t, I)
    for i in range(6):
        di, si = gmm.data_and_score(x[i:i + 1], float(t[i]), I)
        assert torch.allclose(d[i], di[0], atol=1e-12) and torch.allclose(s[i], si[0], atol=1e-12)
    d32, _ = gmm.data_and_score(x.float(), t.float(), I)
    assert d32.dtype == torch.float32 and torch.allclose(d32.double(), d, atol=1e-4)

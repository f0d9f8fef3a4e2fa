"""Gradients through a sampler (AdjointDPM): backprop, checkpointing and the adjoint ODE.

Gaussian data: the linear-interpolant flow map is affine, x1 = μ + Σ^{1/2} x0, so for L = ½Σ‖x1 − c‖² the exact
gradients are ∂L/∂x0 = Σ^{1/2}(x1 − c) and ∂L/∂μ = Σ(x1 − c); every method converges to them at the solver's order.
Mixture: backprop equals central finite differences of the same discrete map, checkpointing equals backprop, and the
adjoint agrees with backprop to RK4's order.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError
from workbench.models.gmm import GaussianMixture
from workbench.problems import PROBLEMS
from workbench.samplers.adjoint import sample_with_grad

from .orders import slope

I = interpolants.get("linear")
C = torch.tensor([0.3, -1.0], dtype=torch.float64)


def loss(x):
    return 0.5 * ((x - C) ** 2).sum()


def _with_mean_parameter(g):
    """A copy of ``g`` whose means are a leaf tensor with requires_grad (the model's parameter θ)."""
    G = GaussianMixture(g.means, g.covs, g.weights)
    G.means = g.means.clone().requires_grad_(True)
    return G


@pytest.fixture(scope="module")
def gaussian():
    g = PROBLEMS.get("gaussian").gmm
    G = _with_mean_parameter(g)
    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x1 = g.flow_map(x0, 0.0, 1.0, I)
    J = g.eigvecs[0] @ torch.diag(g.eigvals[0].sqrt()) @ g.eigvecs[0].T
    return G, x0, (x1 - C) @ J, (x1 - C).sum(0)


@pytest.mark.parametrize("method", ["backprop", "adjoint"])
def test_gaussian_gradient_is_exact_to_rk4_order(gaussian, method):
    G, x0, gx, gmu = gaussian
    f = G.field(I)
    ns, ex, ep = (8, 16, 32), [], []
    for n in ns:
        r = sample_with_grad("rk4", f, x0, 4 * n, loss, params=[G.means], method=method)
        ex.append(float((r.grad_x - gx).abs().max()))
        ep.append(float((r.grad_params[0][0] - gmu).abs().max()))
    assert ex[-1] < 2e-7 and ep[-1] < 2e-7, (ex, ep)
    assert abs(slope(ns, ex) - 4) <= 0.5 and abs(slope(ns, ep) - 4) <= 0.5, (ex, ep)  # measured 4.37 (pre-asymptotic)


def test_gaussian_gradient_checkpoint_is_exact(gaussian):
    G, x0, gx, gmu = gaussian
    r = sample_with_grad("rk4", G.field(I), x0, 4 * 32, loss, params=[G.means], method="checkpoint")
    assert float((r.grad_x - gx).abs().max()) < 2e-7 and float((r.grad_params[0][0] - gmu).abs().max()) < 2e-7


def test_gaussian_gradient_heun_backprop_order_two(gaussian):
    G, x0, gx, gmu = gaussian
    ns = (8, 16, 32)
    ex = [float((sample_with_grad("heun", G.field(I), x0, 2 * n, loss, method="backprop").grad_x - gx).abs().max())
          for n in ns]
    assert abs(slope(ns, ex) - 2) <= 0.3, ex


@pytest.fixture(scope="module")
def mixture():
    G = _with_mean_parameter(PROBLEMS.get("gmm2d").gmm)
    x0 = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return G, x0


def test_mixture_backprop_matches_finite_differences_and_checkpoint(mixture):
    G, x0 = mixture
    f = G.field(I)
    nfe = 4 * 16
    bp = sample_with_grad("rk4", f, x0, nfe, loss, params=[G.means], method="backprop")
    ck = sample_with_grad("rk4", f, x0, nfe, loss, params=[G.means], method="checkpoint")
    assert torch.allclose(bp.grad_x, ck.grad_x, atol=1e-12) and torch.allclose(bp.grad_params[0], ck.grad_params[0], atol=1e-12)
    assert ck.nfe == 2 * nfe  # each step recomputed once in the backward pass
    rk4, h = solvers.get("rk4"), 1e-5

    def L_of(x, means=None):
        if means is not None:
            G.means.data, old = means, G.means.data
        with torch.no_grad():
            v = float(loss(rk4.sample(f, x, nfe).x))
        if means is not None:
            G.means.data = old
        return v

    for (i, j) in ((0, 0), (2, 1)):
        e = torch.zeros_like(x0)
        e[i, j] = h
        fd = (L_of(x0 + e) - L_of(x0 - e)) / (2 * h)
        assert abs(fd - float(bp.grad_x[i, j])) <= 1e-6 * max(1.0, abs(fd))
    for (k, j) in ((7, 0), (3, 1)):
        e = torch.zeros_like(G.means)
        e[k, j] = h
        base = G.means.data.clone()
        fd = (L_of(x0, base + e) - L_of(x0, base - e)) / (2 * h)
        assert abs(fd - float(bp.grad_params[0][k, j])) <= 1e-6 * max(1.0, abs(fd))


def test_mixture_adjoint_agrees_with_backprop_to_rk4_order(mixture):
    G, x0 = mixture
    f = G.field(I)
    ns, d = (12, 24, 48), []
    for n in ns:
        bp = sample_with_grad("rk4", f, x0, 4 * n, loss, params=[G.means], method="backprop")
        adj = sample_with_grad("rk4", f, x0, 4 * n, loss, params=[G.means], method="adjoint")
        d.append(float((bp.grad_x - adj.grad_x).abs().max() + (bp.grad_params[0] - adj.grad_params[0]).abs().max()))
        assert adj.nfe == 4 * n + 4 * n and adj.info["x_start_error"] < 1e-3
    assert abs(slope(ns, d) - 4) <= 0.5, d


def test_bad_input(mixture):
    G, x0 = mixture
    f = G.field(I)
    with pytest.raises(ConfigError, match="method"):
        sample_with_grad("rk4", f, x0, 8, loss, method="reverse")
    with pytest.raises(ConfigError, match="solver"):
        sample_with_grad("euler_maruyama", f, x0, 8, loss)
    with pytest.raises(ConfigError, match="method"):
        sample_with_grad("dpmpp_2m", f, x0, 8, loss, method="checkpoint")
    with pytest.raises(ConfigError, match="params"):
        sample_with_grad("rk4", f, x0, 8, loss, params=[torch.zeros(2)])

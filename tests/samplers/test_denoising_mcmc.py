"""Denoising MCMC on the exact 2-D mixture (linear interpolant, float64).

All chains start inside one mode; after 40 sweeps (exact Gibbs on the level, MALA on the state) the joint law must be
p(x, j) = π_j ρ_{t_j}(x): level frequencies within 4 SE of π, per-level means and second moments within 4 SE of the
exact marginal ρ_{t_j}; the PF-ODE carries the chains to the data law (mode frequencies within 4 SE of the exact
ones). Langevin at one sharp level alone stays in its starting mode (tens of SE off).
"""
import math

import pytest
import torch

from workbench import interpolants
from workbench.errors import ConfigError
from workbench.samplers.denoising_mcmc import DenoisingMCMC

I = interpolants.get("linear")
LEVELS, PRIOR = [0.1, 0.3, 0.5, 0.7, 0.85], [1.0, 1.0, 1.0, 1.0, 2.0]
N = 1000


def _start(g, n, seed):
    gen = torch.Generator().manual_seed(seed)
    return 0.85 * g.means[0] + 0.3 * torch.randn(n, 2, dtype=torch.float64, generator=gen), gen


def _modes(g, y):
    return torch.cdist(y, g.means).argmin(1)


@pytest.fixture(scope="module")
def chains(gmm2d):
    g = gmm2d.gmm
    dm = DenoisingMCMC(g, I, LEVELS, prior=PRIOR, step=0.5)
    x, gen = _start(g, N, 0)
    return g, dm, dm.run(x, 40, gen)


def test_level_posterior_is_exact(gmm2d):
    g = gmm2d.gmm
    dm = DenoisingMCMC(g, I, LEVELS, prior=PRIOR)
    gen = torch.Generator().manual_seed(1)
    j = torch.multinomial(dm.prior, 4000, replacement=True, generator=gen)
    x = torch.cat([g.sample_marginal(I, LEVELS[k], int((j == k).sum()), gen) for k in range(len(LEVELS))])
    post = torch.exp(dm.level_log_posterior(x))
    assert torch.allclose(post.sum(1), torch.ones(len(x), dtype=torch.float64))
    # under the joint, E_x[p(j | x)] = π_j
    se = post.std(0) / math.sqrt(len(x))
    assert bool(((post.mean(0) - dm.prior).abs() <= 4 * se).all())


def test_chain_joint_law(chains):
    g, dm, ch = chains
    assert 0.5 < ch.acceptance < 1.0
    freq = torch.bincount(ch.level, minlength=len(LEVELS)).double() / N
    se = torch.sqrt(dm.prior * (1 - dm.prior) / N)
    assert bool(((freq - dm.prior).abs() <= 4 * se).all()), (freq, dm.prior)
    for k, t in enumerate(LEVELS):
        xs = ch.x[ch.level == k]
        M = g.marginal(I, t)
        second = M.covariance() + M.mean()[:, None] * M.mean()[None]
        for stat, truth in ((xs, M.mean()), (xs ** 2, torch.diagonal(second)), (xs[:, :1] * xs[:, 1:], second[0, 1:])):
            se = stat.std(0) / math.sqrt(len(xs))
            assert bool(((stat.mean(0) - truth).abs() <= 4 * se).all()), (k, stat.mean(0), truth, se)


def test_final_samples_follow_the_mixture(chains, gmm2d):
    g, dm, ch = chains
    y = dm.to_data(ch, "heun", 40)
    exact = torch.bincount(_modes(g, g.sample(200_000, torch.Generator().manual_seed(9))), minlength=8).double() / 200_000
    freq = torch.bincount(_modes(g, y), minlength=8).double() / N
    se = torch.sqrt(exact * (1 - exact) / N)
    assert bool(((freq - exact).abs() <= 4 * se).all()), (freq, exact)
    assert bool(((y.mean(0) - g.mean()).abs() <= 4 * y.std(0) / math.sqrt(N)).all())


def test_single_sharp_level_stays_stuck(gmm2d):
    g = gmm2d.gmm
    dm = DenoisingMCMC(g, I, [0.85], step=0.5)
    x, gen = _start(g, 500, 2)
    y = dm.to_data(dm.run(x, 20, gen), "heun", 20)
    exact = g.weights  # modes are well separated: nearest-mode frequencies ≈ weights
    freq = torch.bincount(_modes(g, y), minlength=8).double() / 500
    assert float((freq[0] - exact[0]) / math.sqrt(float(exact[0] * (1 - exact[0])) / 500)) > 20


def test_bad_input(gmm2d):
    g = gmm2d.gmm
    with pytest.raises(ConfigError, match="levels"):
        DenoisingMCMC(g, I, [0.5, 0.3])
    with pytest.raises(ConfigError, match="levels"):
        DenoisingMCMC(g, I, [0.5, 1.0])  # σ(1) = 0 on the linear path
    with pytest.raises(ConfigError, match="prior"):
        DenoisingMCMC(g, I, [0.2, 0.4], prior=[1.0])
    with pytest.raises(ConfigError, match="step"):
        DenoisingMCMC(g, I, [0.2], step=-1)
    with pytest.raises(ConfigError, match="iterations"):
        DenoisingMCMC(g, I, [0.2]).run(torch.zeros(3, 2, dtype=torch.float64), 0)

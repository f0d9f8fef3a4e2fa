"""Feynman–Kac correctors against closed forms (float64, linear interpolant, t ∈ [0, 1]).

R independent SMC systems give R independent estimates; the Monte-Carlo standard error is their std / √R and
every weighted moment and log-normaliser must lie within 4 SE of the exact value, while the same SDE without the
weights (the uncorrected sampler) is off by many SE.
"""
import math

import pytest
import torch

from workbench import interpolants
from workbench.errors import ConfigError
from workbench.models.gmm import GaussianMixture
from workbench.samplers.feynman_kac import (Annealed, Product, RewardTilted, ess, gaussian_power, product_of_mixtures,
                                            smc, systematic_resample)

I = interpolants.get("linear")
G2 = GaussianMixture(torch.tensor([[2.0, 1.0], [-2.0, -1.5]], dtype=torch.float64),
                     torch.tensor([[1.0, 1.5], [0.8, 0.6]], dtype=torch.float64), torch.tensor([0.6, 0.4]))


def _within(est, truth, k=4.0):
    """|mean − truth| ≤ k SE for every component; returns the z-scores."""
    se = est.std(0) / math.sqrt(est.shape[0])
    z = (est.mean(0) - truth) / se
    assert bool((z.abs() <= k).all()), z
    return z


def _z(est, truth, ref=None):
    """Largest |mean(est) − truth| in units of the standard error of ``ref`` (default: of ``est`` itself)."""
    ref = est if ref is None else ref
    return ((est.mean(0) - truth) / (ref.std(0) / math.sqrt(ref.shape[0]))).abs().max()


def test_closed_forms(gmm2d):
    g1 = gmm2d.gmm
    prod, log_z = product_of_mixtures(g1, G2)
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    lhs = g1.log_prob(x, 1.0, I) + G2.log_prob(x, 1.0, I)
    assert torch.allclose(lhs, prod.log_prob(x, 1.0, I) + log_z, atol=1e-10)
    mu, cov = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    m, c, lz = gaussian_power(mu, cov, 2.5)
    base = GaussianMixture(mu[None], cov[None])
    powered = GaussianMixture(m[None], c[None])
    assert torch.allclose(2.5 * base.log_prob(x, 1.0, I) - lz, powered.log_prob(x, 1.0, I), atol=1e-10)


def test_annealed_gaussian_is_gaussian_over_beta():
    mu, cov = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    beta = 2.0
    m, c, lz = gaussian_power(mu, cov, beta)
    target = Annealed(GaussianMixture(mu[None], cov[None]).field(I), beta)
    kw = dict(n_particles=400, steps=120, eps=1.0, shape=(2,), replicas=10)
    r = smc(target, generator=torch.Generator().manual_seed(0), **kw)
    assert r.nfe == 120 and int(r.resampled.min()) >= 1
    _within(r.mean(), m)
    _within(r.covariance().flatten(1), c.flatten())
    _within(r.log_normalizer[:, None], torch.tensor([lz], dtype=torch.float64))
    plain = smc(target, generator=torch.Generator().manual_seed(0), weighted=False, **{**kw, "replicas": 4})
    # off by > 10 SE of the corrected estimator
    assert float(_z(plain.covariance().flatten(1), c.flatten(), r.covariance().flatten(1))) > 10


def test_product_of_two_mixtures(gmm2d):
    g1 = gmm2d.gmm
    prod, log_z = product_of_mixtures(g1, G2)
    target = Product(g1.field(I), G2.field(I))
    kw = dict(n_particles=250, steps=120, eps=1.0, shape=(2,), replicas=10)
    r = smc(target, generator=torch.Generator().manual_seed(1), **kw)
    assert r.nfe == 240
    _within(r.mean(), prod.mean())
    _within(r.covariance().flatten(1), prod.covariance().flatten())
    _within(r.log_normalizer[:, None], torch.tensor([log_z], dtype=torch.float64))
    plain = smc(target, generator=torch.Generator().manual_seed(1), weighted=False, **{**kw, "replicas": 4})
    # outside the corrected estimator's 4-SE band, and > 10 of its own SE
    zs = max(float(_z(plain.mean(), prod.mean(), r.mean())),
             float(_z(plain.covariance().flatten(1), prod.covariance().flatten(), r.covariance().flatten(1))))
    own = max(float(_z(plain.mean(), prod.mean())), float(_z(plain.covariance().flatten(1), prod.covariance().flatten())))
    assert zs > 4 and own > 10, (zs, own)


def test_reward_tilting(gmm2d):
    g1, tau = gmm2d.gmm, 1.0
    c = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    tilted, log_z = product_of_mixtures(g1, GaussianMixture(c, tau ** 2))
    log_z += math.log(2 * math.pi * tau ** 2)  # ∫ p e^{r} with r = −‖x − c‖²/2τ²
    target = RewardTilted(g1.field(I), lambda x: -((x - c) ** 2).sum(1) / (2 * tau ** 2))
    kw = dict(n_particles=200, steps=120, eps=1.0, shape=(2,), replicas=10)
    r = smc(target, generator=torch.Generator().manual_seed(2), **kw)
    _within(r.mean(), tilted.mean())
    _within(r.covariance().flatten(1), tilted.covariance().flatten())
    _within(r.log_normalizer[:, None], torch.tensor([log_z], dtype=torch.float64))
    plain = smc(target, generator=torch.Generator().manual_seed(2), weighted=False, **{**kw, "replicas": 4})
    assert float(_z(plain.mean(), tilted.mean(), r.mean())) > 20


def test_systematic_resampling_and_ess():
    logw = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(ess(logw), torch.tensor([1 / (0.01 + 0.04 + 0.09 + 0.16), 4.0], dtype=torch.float64))
    idx = systematic_resample(torch.log(torch.tensor([[0.5, 0.0 + 1e-300, 0.25, 0.25]], dtype=torch.float64)))
    assert sorted(idx[0].tolist()) == [0, 0, 2, 3]  # systematic: copies within one of n·w_i, none of a null weight
    counts = torch.bincount(systematic_resample(torch.log(torch.rand(1, 1000, dtype=torch.float64)),
                                                torch.Generator().manual_seed(0))[0], minlength=1000)
    assert int(counts.max()) <= 3


def test_bad_input(gmm2d):
    f = gmm2d.gmm.field(I)
    with pytest.raises(ConfigError, match="beta"):
        Annealed(f, -1.0)
    with pytest.raises(ConfigError, match="ess_threshold"):
        smc(Annealed(f), 10, 10, shape=(2,), ess_threshold=2.0)
    with pytest.raises(ConfigError, match="t_start"):
        smc(Annealed(gmm2d.gmm.field(interpolants.get("vp"))), 10, 10, shape=(2,), t_start=0.3)
    with pytest.raises(ConfigError, match="reward"):
        smc(RewardTilted(f, lambda x: x), 10, 5, shape=(2,))

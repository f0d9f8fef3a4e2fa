"""Sample distances against closed forms on Gaussians."""
import math

import pytest
import torch

from workbench.errors import ConfigError
from workbench.metrics import energy_distance, mmd, sliced_wasserstein


def _gauss(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    mean = torch.as_tensor(mean, dtype=torch.float64)
    return mean + std * torch.randn(n, mean.numel(), generator=g, dtype=torch.float64)


def test_sliced_w2_two_isotropic_gaussians():
    # SW2^2 = E_theta (theta.mu)^2 + (s1 - s2)^2 = |mu|^2 / d + (s1 - s2)^2
    mu = torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64)
    x, y = _gauss(8000, [0, 0, 0], 1.0, 0), _gauss(8000, mu, 1.6, 1)
    true = math.sqrt(float(mu @ mu) / 3 + 0.6 ** 2)
    est = float(sliced_wasserstein(x, y, 400, generator=torch.Generator().manual_seed(0)))
    assert abs(est - true) < 0.04 * true
    # scaling both samples scales the distance
    est2 = float(sliced_wasserstein(2 * x, 2 * y, 400, generator=torch.Generator().manual_seed(0)))
    assert abs(est2 - 2 * est) < 1e-9


def _rbf_gauss_expect(mean_diff, var, d, h):
    # E exp(-|D|^2/(2h^2)), D ~ N(m, var I) in d dims
    return (h * h / (h * h + var)) ** (d / 2) * math.exp(-mean_diff ** 2 / (2 * (h * h + var)))


def test_mmd_matches_closed_form_multi_bandwidth():
    d, s1, s2, m = 2, 1.0, 0.7, 0.8
    hs = [0.5, 1.0, 2.0]
    true = sum(_rbf_gauss_expect(0, 2 * s1 ** 2, d, h) + _rbf_gauss_expect(0, 2 * s2 ** 2, d, h)
               - 2 * _rbf_gauss_expect(m, s1 ** 2 + s2 ** 2, d, h) for h in hs)
    # the U-statistic is unbiased: the mean of independent replicates must hit the closed form within its error
    reps = torch.tensor([float(mmd(_gauss(800, [0.0, 0.0], s1, 10 * r), _gauss(800, [m, 0.0], s2, 10 * r + 1), hs))
                         for r in range(8)], dtype=torch.float64)
    se = float(reps.std()) / math.sqrt(len(reps))
    assert true > 0.1
    assert abs(float(reps.mean()) - true) <= max(4 * se, 1e-3)
    assert abs(float(reps.mean()) - true) < 0.1 * true
    x = _gauss(800, [0.0, 0.0], s1, 2)
    # same law: ~0, far below the distance above
    same = float(mmd(x, _gauss(800, [0.0, 0.0], s1, 4), hs))
    assert abs(same) < 0.05 * true
    # the biased V-statistic is larger by the diagonal terms
    assert float(mmd(x, x, hs, unbiased=False)) < 1e-12
    # default (median-heuristic) bandwidths still separate the laws
    assert float(mmd(x, _gauss(800, [m, 0.0], s2, 3))) > 10 * abs(float(mmd(x, _gauss(800, [0.0, 0.0], s1, 4))))


def test_energy_distance_matches_closed_form_1d():
    s1, s2, m = 1.0, 2.0, 1.0
    x, y = _gauss(3000, [0.0], s1, 5), _gauss(3000, [m], s2, 6)
    s = math.sqrt(s1 ** 2 + s2 ** 2)
    phi = 0.5 * (1 + math.erf(-m / s / math.sqrt(2)))
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * (1 - 2 * phi)
    true = 2 * e_xy - 2 * s1 / math.sqrt(math.pi) - 2 * s2 / math.sqrt(math.pi)
    est = float(energy_distance(x, y))
    assert abs(est - true) < 0.06 * true
    assert abs(float(energy_distance(x, _gauss(3000, [0.0], s1, 7)))) < 0.05 * true


def test_distances_reject_mismatched_shapes():
    with pytest.raises(ConfigError):
        mmd(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ConfigError):
        energy_distance(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ConfigError):
        mmd(torch.randn(5, 2), torch.randn(5, 2), bandwidths=[-1.0])

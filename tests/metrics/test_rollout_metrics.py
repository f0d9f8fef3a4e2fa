"""Rollout metrics against closed forms: nRMSE of scaled fields, exact correlations, single-mode band errors,
invariant drift of scaled fields, the Gaussian CRPS and the spread–skill ratio of (mis)calibrated ensembles."""
import math

import pytest
import torch

from workbench.data.grf import gaussian_random_field
from workbench.errors import ConfigError
from workbench.metrics.rollout import (band_errors, correlation, correlation_time, crps, crps_pointwise,
                                       energy_2d, enstrophy_2d, error_spectrum, gaussian_crps, invariant_drift,
                                       nrmse, rollout_report, spread_skill)


def _fields(b=3, t=5, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return gaussian_random_field(b * t, n, "power", slope=2.0, generator=g).reshape(b, t, n, n)


def test_nrmse_of_known_fields():
    ref = _fields()
    scale = torch.tensor([1.0, 1.1, 0.8, 1.5, 0.0], dtype=torch.float64)[None, :, None, None]
    assert torch.allclose(nrmse(ref * scale, ref), (scale.flatten() - 1).abs(), atol=1e-12)
    # an independent field of the same variance sits at sqrt(2) (on average), persistence is 0 at step 0
    other = _fields(seed=1)
    assert abs(float(nrmse(other, ref).mean()) - math.sqrt(2)) < 0.1
    assert float(nrmse(ref[:, :1].expand_as(ref), ref)[0]) == 0.0
    with pytest.raises(ConfigError, match="pred: shape"):
        nrmse(ref[:, :2], ref)
    with pytest.raises(ConfigError, match="ref: a reference field is identically zero"):
        nrmse(ref, torch.zeros_like(ref))


def _with_correlation(ref, rho, seed=3):
    """pred = rho * r + sqrt(1 - rho^2) * z, z zero-mean, orthogonal to r and of the same norm: exact correlation."""
    g = torch.Generator().manual_seed(seed)
    r = ref - ref.mean((-1, -2), keepdim=True)
    z = torch.randn(ref.shape, generator=g, dtype=ref.dtype)
    z = z - z.mean((-1, -2), keepdim=True)
    z = z - (z * r).sum((-1, -2), keepdim=True) / (r * r).sum((-1, -2), keepdim=True) * r
    z = z * (r.norm(dim=(-1, -2), keepdim=True) / z.norm(dim=(-1, -2), keepdim=True))
    rho = rho[None, :, None, None]
    return rho * r + torch.sqrt(1 - rho ** 2) * z + 5.0  # an offset: Pearson removes the mean


def test_correlation_and_correlation_time_are_exact():
    ref = _fields(t=7)
    rho = torch.tensor([1.0, 0.99, 0.96, 0.9, 0.85, 0.7, 0.9], dtype=torch.float64)
    pred = _with_correlation(ref, rho)
    assert torch.allclose(correlation(pred, ref), rho, atol=1e-12)
    ct = correlation_time(pred, ref, (0.8, 0.95), dt=0.5)
    assert ct[0.95] == {"time": 1.0, "steps": 2.0, "censored": 0.0}   # steps 1, 2 >= 0.95, step 3 falls below
    assert ct[0.8] == {"time": 2.0, "steps": 4.0, "censored": 0.0}    # the recovery at step 6 does not count
    assert correlation_time(ref, ref, (0.8,))[0.8]["censored"] == 1.0


def test_band_errors_of_single_modes_match_the_closed_form():
    n, a = 32, 0.7
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    ref = torch.zeros(2, 3, n, n, dtype=torch.float64)
    pred = ref.clone()
    # error cos(k x) of amplitude a: two modes ±k of |ê| = a/2, shell sum a²/2, F(k) = a/sqrt(2)
    for t, k in enumerate((2, 7, 13)):
        pred[:, t] = a * torch.cos(k * x)[None, :]
    f = error_spectrum(pred, ref)
    assert f.shape == (3, n // 2 + 1)
    assert float(f[0, 2]) == pytest.approx(a / math.sqrt(2), rel=1e-12) and float(f[0].sum()) == pytest.approx(a / math.sqrt(2))
    be = band_errors(pred, ref)  # bands [0,4) (4 shells), [4,12) (8 shells), [12,16] (5 shells)
    expected = {"low": (0, 4), "mid": (1, 8), "high": (2, 5)}
    for name, (t, count) in expected.items():
        assert float(be[name][t]) == pytest.approx(a / math.sqrt(2) / count, rel=1e-12), name
        assert float(be[name].sum()) == pytest.approx(a / math.sqrt(2) / count, rel=1e-12)  # only its step
    # 1-D fields too: the same mode in (B, T, n)
    be1 = band_errors(pred[:, :, 0, :], ref[:, :, 0, :])
    assert float(be1["mid"][1]) == pytest.approx(a / math.sqrt(2) / 8, rel=1e-12)
    with pytest.raises(ConfigError, match="bands"):
        band_errors(pred, ref, bands=(4, 40))


def test_invariant_drift_of_scaled_fields():
    ref = _fields()
    eps = torch.tensor([0.0, 0.1, -0.2, 0.3, 0.05], dtype=torch.float64)
    pred = ref * (1 + eps)[None, :, None, None]
    assert torch.allclose(invariant_drift(pred, ref), (1 + eps) ** 2 - 1, atol=1e-12)
    assert torch.allclose(invariant_drift(pred, ref, enstrophy_2d), (1 + eps) ** 2 - 1, atol=1e-12)
    assert torch.allclose(invariant_drift(pred, ref, energy_2d), (1 + eps) ** 2 - 1, atol=1e-12)
    # energy of a known vorticity: w = 2 sin x sin y (Taylor–Green, k = 1) has u = (sin x cos y, -cos x sin y), E = 1/4
    n = 16
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    w = 2 * torch.sin(x)[None, :] * torch.sin(x)[:, None]
    assert float(energy_2d(w)) == pytest.approx(0.25, rel=1e-12) and float(enstrophy_2d(w)) == pytest.approx(0.5)


def test_ensemble_crps_matches_the_gaussian_closed_form():
    g = torch.Generator().manual_seed(0)
    mu, sigma, m, npts = 0.3, 1.7, 8, 40000
    y = torch.randn(npts, generator=g, dtype=torch.float64) * 2.0
    members = mu + sigma * torch.randn(m, npts, generator=g, dtype=torch.float64)
    c = crps_pointwise(members, y)  # the fair estimator is unbiased for the Gaussian's CRPS at every y
    exact = gaussian_crps(torch.tensor(mu), torch.tensor(sigma), y)
    diff = c - exact
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(npts), (float(diff.mean()), float(diff.std()))
    # the M² version is biased high by E|X - X'| / (2M) = sigma / (sqrt(pi) M)
    biased = crps_pointwise(members, y, fair=False)
    assert float((biased - c).mean()) == pytest.approx(sigma / (math.sqrt(math.pi) * m), rel=0.03)
    # one member: CRPS is the absolute error; fair needs two
    assert torch.equal(crps_pointwise(members[:1], y, fair=False), (members[0] - y).abs())
    with pytest.raises(ConfigError, match="members: the fair CRPS needs at least 2"):
        crps_pointwise(members[:1], y)
    # on rollout-shaped tensors the per-step CRPS is the mean of the pointwise one
    ref = _fields(b=2, t=3, n=8)
    ens = ref[None] + 0.5 * torch.randn(4, *ref.shape, generator=g, dtype=torch.float64)
    assert torch.allclose(crps(ens, ref), crps_pointwise(ens, ref).mean((0, 2, 3)), atol=1e-14)


@pytest.mark.parametrize("s", [1.0, 0.5])
def test_spread_skill_ratio_of_calibrated_and_underdispersed_ensembles(s):
    # truth ~ N(0, 1), members ~ N(0, s^2) independent: E spread^2 = s^2, E skill^2 = s^2 / M + 1
    g = torch.Generator().manual_seed(1)
    m, b = 5, 4000
    ref = torch.randn(b, 1, 16, generator=g, dtype=torch.float64)
    members = s * torch.randn(m, b, 1, 16, generator=g, dtype=torch.float64)
    out = spread_skill(members, ref)
    expected = math.sqrt((m + 1) / m) * s / math.sqrt(s * s / m + 1)
    assert float(out["ratio"][0]) == pytest.approx(expected, rel=0.02)
    assert float(out["spread"][0]) == pytest.approx(s, rel=0.02)


def test_rollout_report_gathers_everything():
    ref = _fields(t=4)
    pred = ref * 0.9
    rep = rollout_report(pred, ref, dt=0.2, members=torch.stack([pred, ref * 1.1]))
    assert torch.allclose(rep["nrmse"], torch.full((4,), 0.1, dtype=torch.float64))
    assert rep["correlation_time"][0.95]["censored"] == 1.0 and rep["correlation_time"][0.95]["time"] == pytest.approx(0.6)
    assert set(rep["band_errors"]) == {"low", "mid", "high"} and "crps" in rep and "spread_skill" in rep

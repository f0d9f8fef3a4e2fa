"""Probability-flow likelihood against the exact Gaussian-mixture log-density."""
import pytest
import torch

from workbench.data import get_dataset
from workbench.errors import ConfigError
from workbench.interpolants import get
from workbench.metrics import log_likelihood


@pytest.fixture(scope="module")
def gmm():
    return get_dataset("gmm").truth


@pytest.mark.parametrize("interp", ["linear", "trig", "sb"])
def test_exact_divergence_nll_matches_true_log_density(gmm, interp):
    I = get(interp)
    x = gmm.sample(150, torch.Generator().manual_seed(0))
    res = log_likelihood(gmm.field(I), x, method="exact", rtol=1e-8, atol=1e-8)
    true = gmm.log_prob(x, 1.0, I)
    err_per_dim = (res.log_prob - true).abs().max() / 2
    assert float(err_per_dim) <= 1e-3
    assert res.nfe > 0 and res.vjp == 2 * res.nfe and res.steps > 0
    assert torch.allclose(res.nll_per_dim, -true / 2, atol=1e-3)


def test_hutchinson_is_unbiased_within_standard_error(gmm):
    I = get("linear")
    x = gmm.sample(300, torch.Generator().manual_seed(1))
    exact = log_likelihood(gmm.field(I), x, rtol=1e-6, atol=1e-6).log_prob
    d1 = log_likelihood(gmm.field(I), x, method="hutchinson", n_probes=1, rtol=1e-6, atol=1e-6,
                        generator=torch.Generator().manual_seed(2)).log_prob - exact
    se = d1.std() / len(d1) ** 0.5
    assert float(d1.std()) > 1e-3            # it is a noisy estimator...
    assert abs(float(d1.mean())) <= 3 * float(se)  # ...without bias
    d8 = log_likelihood(gmm.field(I), x, method="hutchinson", n_probes=8, probe="gaussian", rtol=1e-6, atol=1e-6,
                        generator=torch.Generator().manual_seed(3)).log_prob - exact
    assert abs(float(d8.mean())) <= 3 * float(d8.std() / len(d8) ** 0.5)
    assert float(d8.var()) < float(d1.var())  # more probes, less variance


def test_fixed_step_rk4_converges(gmm):
    I = get("linear")
    x = gmm.sample(100, torch.Generator().manual_seed(4))
    true = gmm.log_prob(x, 1.0, I)
    e = [float((log_likelihood(gmm.field(I), x, solver="rk4", nfe=n).log_prob - true).abs().max()) for n in (40, 160)]
    assert e[1] < e[0] / 20  # 4x the steps: ~256x for order 4; demand at least 20x
    assert e[1] < 1e-3


def test_likelihood_rejects_bad_input(gmm):
    f = gmm.field(get("vp"))
    with pytest.raises(ConfigError, match="base_log_prob"):
        log_likelihood(f, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ConfigError, match="method"):
        log_likelihood(gmm.field(get("linear")), torch.zeros(3, 2), method="trace")

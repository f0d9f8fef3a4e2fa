"""Losses, time sampling and couplings: the math each promises."""
import itertools
import math

import pytest
import torch

from workbench.data import get_dataset
from workbench.errors import ConfigError
from workbench.interpolants import get
from workbench.training import InterpolantLoss, MinibatchOT, get_time_sampler


@pytest.mark.parametrize("name,params", [("uniform", {}), ("logit_normal", {"mean": 0.3, "std": 0.8}),
                                         ("u_shaped", {"a": 4.0})])
def test_time_samplers_match_their_density(name, params):
    ts = get_time_sampler(name, t_min=0.0, **params)
    t = ts.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    edges = torch.linspace(0, 1, 21, dtype=torch.float64)
    hist = torch.histc(t, bins=20, min=0, max=1) / len(t)
    fine = torch.linspace(1e-6, 1 - 1e-6, 20001, dtype=torch.float64)
    dens = ts.density(fine)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(dens, fine)])
    mass = torch.tensor([float(cdf[int(20000 * e)]) for e in edges.tolist()], dtype=torch.float64).diff()
    assert abs(float(cdf[-1]) - 1) < 1e-3
    assert torch.allclose(hist, mass, atol=4e-3)


def test_u_shaped_weights_the_ends():
    t = get_time_sampler("u_shaped").sample(50000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(((t < 0.1) | (t > 0.9)).float().mean()) > 0.3   # uniform would give 0.2


@pytest.mark.parametrize("interp,kind", [("linear", "velocity"), ("linear", "noise"), ("trig", "x1"),
                                         ("vp", "score"), ("sb", "z"), ("sb", "velocity"), ("sb", "x0")])
def test_exact_prediction_is_the_loss_minimiser(interp, kind):
    """The loss is a regression: its residual at the exact conditional expectation is orthogonal to any function
    of (t, x_t), and a perturbed predictor has a higher loss."""
    gmm = get_dataset("gmm").truth
    I = get(interp)
    loss = InterpolantLoss(I, kind, "uniform", weighting="none")
    g = torch.Generator().manual_seed(0)
    n = 100_000
    x1 = gmm.sample(n, g)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = loss.time_sampler.sample(n, g, dtype=torch.float64).clamp(0.05, 0.95)
    xt, target, _ = loss.targets(x0, x1, t, z if loss.uses_z else None)
    resid = gmm.predict(xt, t, I, kind) - target
    for test_fn in (torch.ones_like(xt), xt, torch.sin(xt) * t[:, None]):
        c = resid * test_fn
        assert abs(float(c.mean())) < 4 * float(c.std()) / math.sqrt(c.numel())
    exact = lambda x, tt: gmm.predict(x, tt, I, kind)  # noqa: E731
    perturbed = lambda x, tt: gmm.predict(x, tt, I, kind) + 0.1 * torch.tanh(x)  # noqa: E731
    l_exact = loss(exact, x1[:20000], torch.Generator().manual_seed(5))
    l_pert = loss(perturbed, x1[:20000], torch.Generator().manual_seed(5))
    assert float(l_pert) > float(l_exact)


def test_loss_rejects_undefined_targets():
    with pytest.raises(ConfigError, match="gamma"):
        InterpolantLoss(get("linear"), "z")
    with pytest.raises(ConfigError, match="weighting"):
        InterpolantLoss(get("linear"), "score", weighting="snr")
    with pytest.raises(ConfigError):
        get_time_sampler("beta")


@pytest.mark.parametrize("method", ["exact", "emd"])
def test_minibatch_ot_is_optimal(method):
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g) + 1.0
    y0, y1 = MinibatchOT(method)(x0, x1)
    assert torch.equal(y1, x1) and sorted(y0.tolist()) == sorted(x0.tolist())
    cost = float(((y0 - x1) ** 2).sum())
    best = min(float(((x0[list(p)] - x1) ** 2).sum()) for p in itertools.permutations(range(6)))
    assert abs(cost - best) < 1e-5


def test_sinkhorn_coupling_lowers_cost():
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(128, 2, generator=g), torch.randn(128, 2, generator=g) * 2
    y0, _ = MinibatchOT("sinkhorn", reg=0.02)(x0, x1, torch.Generator().manual_seed(0))
    assert float(((y0 - x1) ** 2).sum()) < 0.6 * float(((x0 - x1) ** 2).sum())

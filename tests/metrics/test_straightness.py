"""Straightness and curvature against closed forms."""
import math

import torch
from scipy.integrate import quad

from workbench.interpolants import get
from workbench.metrics import curvature, length_ratio, straightness
from workbench.models import Field, GaussianMixture


def test_straightness_of_gaussian_flow_matches_closed_form():
    # data N(mu, I), linear interpolant: X_t = t mu + sqrt(t^2 + (1-t)^2) X_0, so X_1 - X_0 = mu and
    # S per sample = |X_0|^2 * int_0^1 (2t-1)^2 / (2t^2 - 2t + 1) dt.
    g = GaussianMixture(torch.tensor([[1.0, -0.5]]), 1.0)
    x0 = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    J = quad(lambda t: (2 * t - 1) ** 2 / (2 * t * t - 2 * t + 1), 0, 1, epsabs=1e-13)[0]
    res = straightness(g.field(get("linear")), x0, nfe=400, solver="rk4")
    expected = (x0 ** 2).sum(1) * J
    assert torch.allclose(res.per_sample, expected, rtol=1e-4, atol=1e-8)
    assert torch.allclose(res.x1, g.flow_map(x0, 0.0, 1.0, get("linear")), atol=1e-8)
    assert res.nfe == 401


def test_constant_velocity_is_perfectly_straight():
    c = torch.tensor([0.3, -2.0], dtype=torch.float64)
    field = Field(lambda x, t: c.expand_as(x), get("linear"), "velocity")
    res = straightness(field, torch.randn(10, 2, dtype=torch.float64), nfe=8, solver="euler")
    assert res.value < 1e-20 and res.normalized < 1e-20


def test_curvature_of_line_and_half_circle():
    n = 50
    th = torch.linspace(0, math.pi, n + 1, dtype=torch.float64)
    half = torch.stack([torch.cos(th), torch.sin(th)], -1)[:, None]     # (T+1, 1, 2)
    line = torch.linspace(0, 1, n + 1, dtype=torch.float64)[:, None, None] * torch.tensor([1.0, 2.0])
    assert abs(float(curvature(half)[0]) - math.pi * (n - 1) / n) < 1e-9
    assert float(curvature(line)[0]) < 1e-6
    assert abs(float(length_ratio(half)[0]) - n * math.sin(math.pi / (2 * n))) < 1e-9  # chord sum / diameter
    assert abs(float(length_ratio(line)[0]) - 1.0) < 1e-12

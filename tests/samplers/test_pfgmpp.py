"""PFGM++ on a finite point set: the field is the kernel-weighted average, D → ∞ recovers the EDM/VE field at
rate 1/D, the prior's radial law passes a KS test (CDF checked against direct quadrature of the kernel), and the ODE
carries the prior at σ_max onto the points with their weights."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from workbench import solvers
from workbench.errors import ConfigError
from workbench.samplers.pfgmpp import PFGMPP

from .orders import slope

POINTS = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-1.5, 2.5]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def test_field_is_kernel_weighted_average_and_drives_the_ode():
    p = PFGMPP(POINTS, D=16, weights=WEIGHTS)
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    sigma = 0.8
    N, D, r2 = 2, 16, sigma ** 2 * 16
    k = WEIGHTS[None] * ((x[:, None] - POINTS[None]).pow(2).sum(-1) + r2) ** (-(N + D) / 2)
    expected = (k[:, :, None] * POINTS[None]).sum(1) / k.sum(1, keepdim=True)
    assert torch.allclose(p.denoiser(x, sigma), expected, rtol=1e-12, atol=1e-12)
    # the Field's velocity on VE is dσ/dt (x − ŷ)/σ: the PFGM++ ODE in the solver's time
    f = p.field()
    I = f.interpolant
    t = 0.4
    s = float(I.alpha(torch.tensor(t, dtype=torch.float64)))
    ds = float(I.d_alpha(torch.tensor(t, dtype=torch.float64)))
    assert torch.allclose(f.predict(x, t).velocity, ds * p.ode_drift(x, s), rtol=1e-10, atol=1e-12)


def test_large_D_recovers_the_edm_field_at_rate_one_over_D():
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    sigma = 1.0
    edm = PFGMPP(POINTS, D=math.inf, weights=WEIGHTS).denoiser(x, sigma)
    # the EDM/VE denoiser of the point set, written out: softmax of −‖x−y‖²/2σ²
    logits = torch.log(WEIGHTS)[None] - 0.5 * torch.cdist(x, POINTS) ** 2 / sigma ** 2
    assert torch.allclose(edm, torch.softmax(logits, 1) @ POINTS, atol=1e-13)
    Ds = (1e2, 1e3, 1e4, 1e5)
    errs = [float((PFGMPP(POINTS, D=D, weights=WEIGHTS).denoiser(x, sigma) - edm).norm(dim=1).mean()) for D in Ds]
    assert abs(slope(Ds, errs) - 1.0) <= 0.05, errs


def test_radial_cdf_matches_quadrature_of_the_kernel():
    p = PFGMPP(POINTS, D=5)
    sigma, N, D = 1.3, 2, 5
    dens = lambda R: R ** (N - 1) * (R ** 2 + sigma ** 2 * D) ** (-(N + D) / 2)  # noqa: E731
    total = integrate.quad(dens, 0, np.inf)[0]
    for R in (0.3, 1.0, 2.5, 7.0):
        assert abs(integrate.quad(dens, 0, R)[0] / total - p.radial_cdf(np.array(R), sigma)) < 1e-9


@pytest.mark.parametrize("D", [3.0, 64.0])
def test_prior_radial_law_ks(D):
    p = PFGMPP(POINTS[:1], D=D)
    sigma = 2.0
    x = p.sample_prior(4000, sigma, torch.Generator().manual_seed(2))
    R = x.norm(dim=1).numpy()
    assert stats.kstest(R, lambda r: p.radial_cdf(r, sigma)).pvalue > 1e-3
    # power: the Gaussian (D = ∞) radial law is rejected for a heavy-tailed kernel
    gauss = PFGMPP(POINTS[:1], D=math.inf)
    if D < 10:
        assert stats.kstest(R, lambda r: gauss.radial_cdf(r, sigma)).pvalue < 1e-6


def test_ode_transports_the_prior_onto_the_points():
    p = PFGMPP(POINTS, D=8, weights=WEIGHTS)
    I = p.interpolant(sigma_min=0.01, sigma_max=40.0)
    n = 2000
    x = p.sample_prior(n, 40.0, torch.Generator().manual_seed(3))
    out = solvers.get("heun").sample(p.field(I), x, 80, schedule="uniform").x
    d = torch.cdist(out, POINTS)
    assert float(d.min(1).values.max()) < 0.1  # every sample lands on a point (σ_min = 0.01)
    freq = torch.bincount(d.argmin(1), minlength=3).double() / n
    se = torch.sqrt(WEIGHTS * (1 - WEIGHTS) / n)
    assert bool(((freq - WEIGHTS).abs() <= 4 * se).all()), (freq, se)


def test_bad_input():
    with pytest.raises(ConfigError, match="D"):
        PFGMPP(POINTS, D=0)
    with pytest.raises(ConfigError, match="points"):
        PFGMPP(torch.zeros(3))
    with pytest.raises(ConfigError, match="interpolant"):
        from workbench import interpolants
        PFGMPP(POINTS).field(interpolants.get("linear"))

"""Kinetic energy of exact marginal velocities and the kinetic-optimal Gaussian path (Shaul et al. 2023)."""
import pytest
import torch

from workbench import interpolants
from workbench.data.gmm import gmm2d_ring
from workbench.errors import ConfigError
from workbench.interpolants.kinetic_optimal import KineticOptimal
from workbench.metrics.kinetic import (data_separation, default_snr_grid, gaussian_linear_kinetic_energy,
                                       kinetic_energy, kinetic_energy_difference, kinetic_energy_quadrature)
from workbench.models.gmm import GaussianMixture


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _points(d, n=8, seed=3):
    """n fixed points normalised to E||x||^2 = d (a finite point set: a mixture with 1e-6 covariances)."""
    pts = torch.randn(n, d, generator=_gen(seed), dtype=torch.float64)
    return GaussianMixture(pts / pts.pow(2).sum(1).mean().sqrt() * d ** 0.5, 1e-6)


def test_gaussian_linear_kinetic_energy_closed_form_within_4_se():
    gm = GaussianMixture(torch.tensor([[0.5, -1.0]]), torch.tensor([[0.3, 2.0]]))
    exact = gaussian_linear_kinetic_energy(gm)  # m2 + d - (π/2) Σ sqrt(λ)
    ke = kinetic_energy(gm, interpolants.get("linear"), 8000, _gen(1))
    assert abs(ke.value - exact) < 4 * ke.stderr, (ke.value, ke.stderr, exact)
    assert ke.stderr < 0.02 * exact
    # the 1-D form with the closed-form M(r) agrees too (grid interpolation error only)
    assert kinetic_energy_quadrature(interpolants.get("linear"), data_separation(gm)) == pytest.approx(exact, rel=5e-3)


def test_standard_gaussian_data_has_a_zero_energy_path_and_ko_finds_it():
    # data N(0, I) = base: a^2 + σ^2 = 1 keeps the marginal fixed, so the minimum is 0 (linear: 2 - π/2 per dim)
    gm = GaussianMixture(torch.zeros(1, 2), 1.0)
    ko = KineticOptimal.fit(data_separation(gm), 2.0, 2)
    a = kinetic_energy(gm, interpolants.get("linear"), 4000, _gen(2))
    b = kinetic_energy(gm, ko, 4000, _gen(2))
    assert a.value == pytest.approx(2 * (2 - torch.pi / 2), rel=0.05)
    assert b.value < 0.02 * a.value


def test_ko_below_linear_on_point_sets_and_gap_shrinks_with_dimension():
    lin = interpolants.get("linear")
    gaps = []
    for d in (2, 8, 32):
        gm = _points(d)
        sep = data_separation(gm, r=default_snr_grid(33), n_samples=512, generator=_gen(4))
        ko = KineticOptimal.fit(sep, sep.m2, sep.dim)
        # Monte Carlo with the exact field, common random numbers: K_KO - K_lin < 0 beyond 3 standard errors
        diff, se = kinetic_energy_difference(kinetic_energy(gm, ko, 1500, _gen(5)), kinetic_energy(gm, lin, 1500, _gen(5)))
        assert diff + 3 * se < 0, (d, diff, se)
        k_lin, k_ko = kinetic_energy_quadrature(lin, sep), kinetic_energy_quadrature(ko, sep)
        gaps.append((k_lin - k_ko) / k_lin)
    assert gaps[0] > gaps[1] > gaps[2] > 0, gaps  # cond-OT becomes kinetic optimal as n/sqrt(d) -> 0


def test_ko_below_linear_on_the_ring_mixture():
    gm = gmm2d_ring()
    sep = data_separation(gm, r=default_snr_grid(33), n_samples=512, generator=_gen(6))
    ko = KineticOptimal.fit(sep, sep.m2, sep.dim)
    diff, se = kinetic_energy_difference(kinetic_energy(gm, ko, 1500, _gen(7)),
                                         kinetic_energy(gm, interpolants.get("linear"), 1500, _gen(7)))
    assert diff + 3 * se < 0, (diff, se)


def test_registered_and_zero_modes_are_the_linear_path():
    ko = interpolants.get("ko", signal_modes=(0.0, 0.0), noise_modes=(0.0, 0.0))
    assert isinstance(ko, KineticOptimal) and "kinetic_optimal" in interpolants.names()
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    c, l = ko.coefficients(t), interpolants.get("linear").coefficients(t)
    for k in ("alpha", "beta", "d_alpha", "d_beta"):
        assert torch.allclose(getattr(c, k), getattr(l, k), atol=1e-15)
    # derivatives of a non-trivial path match finite differences; endpoints are exact
    ko = KineticOptimal((0.3, -0.1), (0.2, 0.05))
    h = 1e-6
    tt = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(ko.d_beta(tt), (ko.beta(tt + h) - ko.beta(tt - h)) / (2 * h), atol=1e-7)
    assert torch.allclose(ko.d_alpha(tt), (ko.alpha(tt + h) - ko.alpha(tt - h)) / (2 * h), atol=1e-7)
    e = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert ko.beta(e).tolist() == [0.0, 1.0] and ko.alpha(e).tolist() == [1.0, 0.0]


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="noise_modes"):
        KineticOptimal((0.1,), ())
    with pytest.raises(ConfigError, match="signal_modes"):
        KineticOptimal(("x",), (0.0,))
    with pytest.raises(ConfigError, match="n_samples"):
        kinetic_energy(_points(2), interpolants.get("linear"), 1)
    with pytest.raises(ConfigError, match="interpolant"):
        kinetic_energy(_points(2), interpolants.get("mirror"), 10)
    with pytest.raises(ConfigError, match="r"):
        data_separation(_points(2), r=torch.tensor([1.0, 0.5]))

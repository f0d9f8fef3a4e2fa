"""GRF generator and shell spectra: slope recovery, Parseval, spectral errors, tail ratio."""
import math

import pytest
import torch

from workbench.data.grf import gaussian_random_field
from workbench.errors import ConfigError
from workbench.metrics.spectra import (energy_spectrum, fit_slope, log_spectral_error, paired_spectral_error,
                                       spectral_error, tail_ratio, velocity_from_vorticity)


@pytest.mark.parametrize("slope", [5.0 / 3.0, 3.0])
def test_grf_slope_recovered(slope):
    g = torch.Generator().manual_seed(1)
    f = gaussian_random_field(8, 64, "power", slope=slope, generator=g)
    est = fit_slope(energy_spectrum(f), 2, 21)
    assert abs(est + slope) <= 0.1, est


def test_matern_spectrum_decays_like_its_law():
    # Matérn P(k) ∝ (κ² + k²)^-(ν+1) → E(k) ∝ k^(-2ν-1) far above κ
    g = torch.Generator().manual_seed(2)
    nu = 1.5
    f = gaussian_random_field(8, 64, "matern", nu=nu, length_scale=2.0, generator=g)
    est = fit_slope(energy_spectrum(f), 8, 21)
    assert abs(est + (2 * nu + 1)) < 0.3, est


def test_parseval_scalar_velocity_vorticity():
    g = torch.Generator().manual_seed(3)
    f = gaussian_random_field(3, 32, "power", slope=2.0, generator=g, std=2.0)
    e = energy_spectrum(f).energy.sum(-1)
    assert torch.allclose(e, 0.5 * (f ** 2).mean((-1, -2)), rtol=1e-6, atol=0)
    # velocity input
    u = velocity_from_vorticity(f)
    ke = 0.5 * (u ** 2).sum(-3).mean((-1, -2))
    assert torch.allclose(energy_spectrum(u, "velocity").energy.sum(-1), ke, rtol=1e-6, atol=0)
    # kinetic energy from vorticity (Biot–Savart in the spectrum) equals the velocity's
    assert torch.allclose(energy_spectrum(f, "vorticity").energy.sum(-1), ke, rtol=1e-6, atol=0)
    # odd grid size too
    h = gaussian_random_field(2, 31, "matern", generator=g)
    assert torch.allclose(energy_spectrum(h).energy.sum(-1), 0.5 * (h ** 2).mean((-1, -2)), rtol=1e-6, atol=0)


def test_spectrum_of_single_mode_lands_in_its_shell():
    n = 32
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    f = torch.cos(3 * x)[None, :] * torch.cos(4 * x)[:, None]  # |k| = 5, mean square 1/4
    s = energy_spectrum(f)
    assert torch.argmax(s.energy).item() == 5
    assert abs(float(s.energy[5]) - 0.125) < 1e-12
    # a non-unit box rescales the wavenumbers, not the energy
    s2 = energy_spectrum(f, length=1.0)
    assert abs(float(s2.k[5]) - 10 * math.pi) < 1e-9 and abs(float(s2.energy[5]) - 0.125) < 1e-12


def test_spectral_errors_and_tail_ratio():
    g = torch.Generator().manual_seed(4)
    a = gaussian_random_field(16, 32, "power", slope=3.0, generator=g)
    assert float(spectral_error(a, a).max()) == 0.0
    assert log_spectral_error(a, a) == 0.0
    # damping the high modes lowers the tail ratio by exactly the damping factor squared
    n = 32
    fh = torch.fft.rfft2(a)
    ky = torch.fft.fftfreq(n, d=1.0 / n).abs()[:, None]
    kx = torch.fft.rfftfreq(n, d=1.0 / n)[None, :]
    damp = torch.where(torch.sqrt(kx ** 2 + ky ** 2) > 4.5, 0.5, 1.0)
    b = torch.fft.irfft2(fh * damp, s=(n, n))
    r = tail_ratio(b, a, k_cut=6, k_max=10)
    assert abs(r - 0.25) < 1e-9
    # defaults (tail_window: N/4 .. N/2 - 1) are the same for tensors and for precomputed spectra
    assert tail_ratio(energy_spectrum(b).mean(), energy_spectrum(a)) == pytest.approx(tail_ratio(b, a), rel=1e-12)
    assert tail_ratio(b, a) == pytest.approx(0.25, rel=1e-9)
    err = spectral_error(b, a)
    assert abs(float(err[8]) - 0.75) < 1e-9 and float(err[2]) < 1e-12
    pe = paired_spectral_error(b, a)
    assert abs(float(pe[8]) - 0.5) < 1e-9 and float(pe[2]) < 1e-12


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="kind"):
        gaussian_random_field(1, 16, "pink")
    with pytest.raises(ConfigError, match="kind"):
        energy_spectrum(torch.zeros(2, 8, 8), "helicity")
    with pytest.raises(ConfigError, match="x"):
        energy_spectrum(torch.zeros(3, 8, 8), "velocity")

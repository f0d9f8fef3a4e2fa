"""Pseudo-spectral Navier–Stokes: exact Taylor–Green decay, inviscid invariants, CFL errors, the data cache."""
import numpy as np
import pytest
import torch

from workbench.data.grf import gaussian_random_field
from workbench.data.navier_stokes import (CFLError, NavierStokes2D, kolmogorov_config, load_or_generate,
                                          taylor_green)
from workbench.errors import ConfigError
from workbench.metrics.spectra import energy_spectrum


@pytest.mark.parametrize("integrator", ["rk4", "cnab2"])
def test_taylor_green_decays_at_the_viscous_rate(integrator):
    nu, t_end, n = 0.05, 1.0, 32
    ns = NavierStokes2D(n=n, nu=nu, dt=0.01, integrator=integrator)
    traj = ns.simulate(taylor_green(n, k=2), 100, record_every=50)
    for j, t in enumerate((0.0, 0.5, 1.0)):
        exact = taylor_green(n, t=t, nu=nu, k=2)
        rel = float((traj[:, j] - exact).norm() / exact.norm())
        assert rel <= 1e-6, (integrator, t, rel)
    # the decay is not trivial: the field lost exp(-2 ν k² t) of its amplitude
    assert float(traj[:, -1].norm() / traj[:, 0].norm()) == pytest.approx(np.exp(-2 * nu * 4 * t_end), rel=1e-6)


def _invariant_drift(integrator, dt):
    ns = NavierStokes2D(n=32, nu=0.0, dt=dt, integrator=integrator)
    w0 = gaussian_random_field(2, 32, "matern", std=2.0, generator=torch.Generator().manual_seed(5))
    w0 = ns.to_grid(ns.to_hat(w0))
    traj = ns.simulate(w0, int(round(1.0 / dt)), record_every=int(round(1.0 / dt)))
    de = (ns.energy(traj[:, -1]) / ns.energy(w0) - 1).abs().max()
    dz = (ns.enstrophy(traj[:, -1]) / ns.enstrophy(w0) - 1).abs().max()
    change = float((traj[:, -1] - w0).norm() / w0.norm())
    return float(de), float(dz), change


def test_inviscid_energy_and_enstrophy_conserved():
    de, dz, change = _invariant_drift("rk4", 0.005)
    assert change > 0.05  # the flow really evolved
    assert de < 1e-8 and dz < 1e-7, (de, dz)
    # CN/AB2 is second order: the drift shrinks ~4x when dt halves
    d1 = _invariant_drift("cnab2", 0.01)
    d2 = _invariant_drift("cnab2", 0.005)
    assert d1[0] / d2[0] > 3.0 and d1[1] / d2[1] > 3.0, (d1, d2)


def test_cfl_violation_is_a_clear_error():
    ns = NavierStokes2D(n=32, nu=1e-3, dt=0.5)
    w0 = gaussian_random_field(1, 32, "matern", std=5.0, generator=torch.Generator().manual_seed(0))
    with pytest.raises(CFLError, match=r"dt: CFL number .* exceeds max_cfl=1 .* use dt <="):
        ns.simulate(w0, 10)
    assert issubclass(CFLError, ConfigError)


def test_kolmogorov_forcing_and_drag_balance():
    # u = (A/(ν n² + μ)) sin(n y) is the laminar steady state: vorticity -A n cos(n y)/(ν n² + μ)
    n, nu, mu, A, kf = 16, 0.1, 0.5, 1.0, 2
    ns = NavierStokes2D(n=n, nu=nu, drag=mu, forcing_amplitude=A, forcing_wavenumber=kf, dt=0.05)
    y = torch.arange(n, dtype=torch.float64) * (2 * np.pi / n)
    steady = (-A * kf * torch.cos(kf * y) / (nu * kf * kf + mu))[:, None].expand(n, n)[None]
    traj = ns.simulate(torch.zeros(1, n, n, dtype=torch.float64), 600, record_every=600)
    assert float((traj[:, -1] - steady).norm() / steady.norm()) < 1e-6


def test_cache_roundtrip_and_refusal(tmp_path):
    cfg = kolmogorov_config(n_traj=2, n=16, frames=3, frame_dt=0.1, warmup=0.2, dt=0.02)
    path = str(tmp_path / "ns.npz")
    a = load_or_generate(cfg, path, progress=False)
    assert a["vorticity"].shape == (2, 3, 16, 16)
    b = load_or_generate(cfg, path, progress=False)
    assert torch.equal(a["vorticity"], b["vorticity"])
    other = kolmogorov_config(n_traj=2, n=16, frames=3, frame_dt=0.1, warmup=0.2, dt=0.02, nu=0.01)
    with pytest.raises(ConfigError, match=r"cache: .*different parameters: nu"):
        load_or_generate(other, path, progress=False)
    with pytest.raises(ConfigError, match="frame_dt"):
        kolmogorov_config(frame_dt=0.015).steps_per_frame()
    with pytest.raises(ConfigError, match="unknown data parameter"):
        kolmogorov_config(viscosity=1.0)


def test_dealiased_state_has_no_modes_beyond_two_thirds():
    ns = NavierStokes2D(n=24, nu=1e-3, forcing_amplitude=1.0, dt=0.01)
    w0 = gaussian_random_field(1, 24, "power", slope=1.0, generator=torch.Generator().manual_seed(0))
    traj = ns.simulate(w0, 20, record_every=20)
    s = energy_spectrum(traj[:, -1])
    # modes with |kx| or |ky| >= 8 are gone: every shell > 8*sqrt(2) is empty
    assert float(s.energy[0, 12:].abs().max()) < 1e-20

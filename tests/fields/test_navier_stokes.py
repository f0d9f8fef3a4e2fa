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


def _numerical_curl_of_x_force(fx: torch.Tensor, length: float, method: str) -> torch.Tensor:
    """-d/dy of the x component of a body force on an (n, n) grid (axis -2 is y), computed independently."""
    n = fx.shape[-1]
    h = length / n
    if method == "fd":  # 6th-order central differences
        d = (45 * (fx.roll(-1, -2) - fx.roll(1, -2)) - 9 * (fx.roll(-2, -2) - fx.roll(2, -2))
             + (fx.roll(-3, -2) - fx.roll(3, -2))) / (60 * h)
        return -d
    k = torch.fft.fftfreq(n, d=h, dtype=torch.float64) * 2 * np.pi
    return -torch.fft.ifft(1j * k[:, None] * torch.fft.fft(fx, dim=-2), dim=-2).real


@pytest.mark.parametrize("length", [1.0, 2 * np.pi])
@pytest.mark.parametrize("method", ["fd", "fft"])
def test_forcing_is_the_curl_of_the_body_force_for_any_length(length, method):
    # the vorticity forcing must be curl(A sin(2 pi n y / L) x) = -A (2 pi n / L) cos(2 pi n y / L)
    n, A, nf = 64, 1.3, 2
    ns = NavierStokes2D(n=n, forcing_amplitude=A, forcing_wavenumber=nf, length=length)
    y = torch.arange(n, dtype=torch.float64) * (length / n)
    fx = (A * torch.sin(2 * np.pi * nf * y / length))[:, None].expand(n, n)
    assert torch.allclose(ns.forcing_velocity, fx, atol=1e-14)
    curl = _numerical_curl_of_x_force(fx, length, method)
    tol = 1e-6 if method == "fd" else 1e-10
    rel = float((ns.forcing_grid - curl).abs().max() / curl.abs().max())
    assert rel < tol, (length, method, rel)
    # the amplitude is A * 2 pi n / L (12.57 for L = 1, n = 2, A = 1): the reproduction
    assert float(ns.forcing_grid.abs().max()) == pytest.approx(A * 2 * np.pi * nf / length, rel=1e-12)


def test_forcing_wavenumber_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match="forcing_wavenumber: must be an integer >= 1"):
        NavierStokes2D(n=16, forcing_wavenumber=1.5)
    with pytest.raises(ConfigError, match="forcing_wavenumber"):
        NavierStokes2D(n=16, forcing_wavenumber=0)


@pytest.mark.parametrize("length", [2 * np.pi, 1.0])
def test_kolmogorov_forcing_and_drag_balance(length):
    # u = (A/(ν k² + μ)) sin(k y), k = 2 pi n / L, is the laminar steady state: vorticity -A k cos(k y)/(ν k² + μ)
    n, A, nf = 16, 1.0, 2
    kf = 2 * np.pi * nf / length
    nu, mu = 0.1 / (kf / nf) ** 2, 0.5  # same viscous rate nu k^2 as on 2 pi
    ns = NavierStokes2D(n=n, nu=nu, drag=mu, forcing_amplitude=A, forcing_wavenumber=nf, dt=0.05, length=length)
    y = torch.arange(n, dtype=torch.float64) * (length / n)
    steady = (-A * kf * torch.cos(kf * y) / (nu * kf * kf + mu))[:, None].expand(n, n)[None]
    traj = ns.simulate(torch.zeros(1, n, n, dtype=torch.float64), 600, record_every=600)
    assert float((traj[:, -1] - steady).norm() / steady.norm()) < 1e-6
    # and its velocity is the closed-form shear flow (A / (nu k^2 + mu)) sin(k y) x
    u, v = ns.velocity(ns.to_hat(traj[:, -1]))
    u_exact = (A / (nu * kf * kf + mu)) * torch.sin(kf * y)[:, None].expand(n, n)
    assert float((u[0] - u_exact).abs().max()) < 1e-6 * float(u_exact.abs().max())
    assert float(v.abs().max()) < 1e-12


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


def test_batched_nonlinear_term_equals_the_term_by_term_form():
    # oracle: u, v from the stream function, grad w by separate inverse FFTs (the pre-batching code)
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        ns = NavierStokes2D(n=24, nu=1e-3, forcing_amplitude=1.0, length=3.0, dtype=dtype)
        w0 = gaussian_random_field(3, 24, "matern", std=2.0, generator=torch.Generator().manual_seed(1), dtype=dtype)
        wh = ns.to_hat(w0)
        u, v = ns.velocity(wh)
        wx = torch.fft.irfft2(1j * ns.kx * wh, s=(24, 24))
        wy = torch.fft.irfft2(1j * ns.ky * wh, s=(24, 24))
        ref = -torch.fft.rfft2(u * wx + v * wy) * ns.mask + ns.forcing_hat
        for limit in (0, 1 << 30):  # the one-by-one and the batched path
            ns.batch_fft_bytes = limit
            got = ns.nonlinear(wh)
            assert got.dtype == ref.dtype and float((got - ref).abs().max() / ref.abs().max()) < tol


def _rk4_errors(dts, ref_dt, fast=True):
    w0 = gaussian_random_field(2, 32, "matern", std=3.0, generator=torch.Generator().manual_seed(3))
    out = []
    ref = None
    for dt in (ref_dt,) + tuple(dts):
        ns = NavierStokes2D(n=32, nu=2e-3, drag=0.1, forcing_amplitude=1.0, dt=dt)
        if not fast:
            ns._fast = False
        w = ns.simulate(w0, int(round(0.5 / dt)), record_every=int(round(0.5 / dt)))[:, -1]
        if ref is None:
            ref = w
        else:
            out.append(float((w - ref).norm() / ref.norm()))
    return out


def test_if_rk4_fast_path_is_fourth_order_in_dt():
    # exact check: the time error of IF-RK4 falls 16x per halving of dt (against a 4x finer reference)
    errors = _rk4_errors((0.05, 0.025, 0.0125), 0.05 / 16)
    orders = [np.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(3.6 < p < 4.4 for p in orders), (errors, orders)
    assert errors[-1] > 1e-12  # not at round-off


def test_fast_step_equals_the_reference_step():
    # the fast path (Hermitian full-plane extension, two complex inverse FFTs, real views, reused buffers) against
    # the term-by-term IF-RK4 formula of step(), for both dtypes, several steps, a batch and a non-2π domain
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        kw = dict(n=24, nu=1e-3, drag=0.05, forcing_amplitude=1.0, length=3.0, dt=0.01, dtype=dtype)
        fast, ref = NavierStokes2D(**kw), NavierStokes2D(**kw)
        ref._fast = False
        assert fast._fast
        w0 = gaussian_random_field(3, 24, "matern", std=2.0, generator=torch.Generator().manual_seed(2), dtype=dtype)
        wh = fast.to_hat(w0)
        a, b = fast.simulate_hat(wh, 7), ref.simulate_hat(wh, 7)
        assert a.dtype == b.dtype and float((a - b).abs().max() / b.abs().max()) < tol
        assert torch.equal(fast.simulate_hat(wh, 7), a)  # reusing the work buffers changes nothing
        one = fast.step(wh, {})
        assert float((one - ref.step(wh, {})).abs().max() / one.abs().max()) < tol


def test_full_plane_loop_equals_the_half_plane_loop():
    # simulate_hat steps small states on the full plane (no Hermitian extension per right-hand side, fft2 of the
    # real advection term); it must give the half-plane loop's state to round-off, and step() (half plane) too
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        kw = dict(n=24, nu=1e-3, drag=0.05, forcing_amplitude=1.0, length=3.0, dt=0.01, dtype=dtype)
        full, half = NavierStokes2D(**kw), NavierStokes2D(**kw)
        half.full_plane_max_points = 0
        assert 2 * 24 * 24 <= full.full_plane_max_points
        w0 = gaussian_random_field(2, 24, "matern", std=2.0, generator=torch.Generator().manual_seed(3), dtype=dtype)
        wh = full.to_hat(w0)
        a, b = full.simulate_hat(wh, 9), half.simulate_hat(wh, 9)
        assert a.shape == b.shape == wh.shape and a.dtype == b.dtype
        assert float((a - b).abs().max() / b.abs().max()) < tol
        state = {}
        c = wh
        for _ in range(9):
            c = full.step(c, state)
        assert float((a - c).abs().max() / c.abs().max()) < tol
        assert torch.equal(full.simulate_hat(wh, 0), wh)


def test_mask_not_even_under_k_to_minus_k_takes_the_reference_path():
    ns = NavierStokes2D(n=24, nu=1e-3, forcing_amplitude=1.0)
    m = ns.mask.clone()
    m[-8, 0] = 1.0  # keep k_y = -8 on the k_x = 0 column but not +8 (as jax-cfd's brick-wall filter does)
    ns.set_mask(m)
    assert not ns._fast
    with pytest.raises(ConfigError, match="mask: must have shape"):
        ns.set_mask(m[:, :-1])


def test_compile_failure_falls_back_to_eager(monkeypatch):
    ns = NavierStokes2D(n=16, nu=1e-3, forcing_amplitude=1.0)
    w0 = gaussian_random_field(1, 16, "matern", std=2.0, generator=torch.Generator().manual_seed(0))
    want = ns.simulate_hat(ns.to_hat(w0), 3)

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no compiler here.*staying eager"):
        assert ns.enable_compile() is False
    assert torch.equal(ns.simulate_hat(ns.to_hat(w0), 3), want)
    cn = NavierStokes2D(n=16, integrator="cnab2")
    with pytest.warns(RuntimeWarning, match="only the dealiased IF-RK4"):
        assert cn.enable_compile() is False


def test_rhs_matches_jax_cfd_when_installed():
    jnp = pytest.importorskip("jax.numpy", reason="jax-cfd is a benchmark-only dependency (the bench extra)")
    pytest.importorskip("jax_cfd", reason="jax-cfd is a benchmark-only dependency (the bench extra)")
    import jax
    from jax_cfd.base import forcings, grids
    from jax_cfd.spectral import equations

    jax.config.update("jax_enable_x64", True)
    try:
        n = 32
        grid = grids.Grid((n, n), domain=((0, 2 * np.pi), (0, 2 * np.pi)))
        forcing = lambda g: forcings.kolmogorov_forcing(g, scale=1.0, k=4, swap_xy=True,  # noqa: E731
                                                        offsets=((0.0, 0.0), (0.0, 0.0)))
        eq = equations.NavierStokes2D(viscosity=2e-3, grid=grid, drag=0.1, smooth=True, forcing_fn=forcing)
        ns = NavierStokes2D(n=n, nu=2e-3, drag=0.1, forcing_amplitude=1.0)
        eq.filter_ = jnp.asarray(ns.mask.numpy())
        wh = ns.to_hat(gaussian_random_field(1, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0)))
        # jax-cfd indexes [x, y]: the same array is the mirror image x <-> y, whose vorticity is -w
        theirs = -np.asarray(jax.jit(eq.explicit_terms)(jnp.asarray(-wh[0].numpy())))
        ours = ns.nonlinear(wh)[0].numpy()
        assert np.abs(ours - theirs).max() / np.abs(ours).max() < 1e-12
    finally:
        jax.config.update("jax_enable_x64", False)


def test_decaying_config_is_time_converged():
    # its documented dt: error against a dt/4 run at t = 1 is ~1.7e-5 (64²); the old dt = 0.01 had 4.2e-3
    from workbench.data.navier_stokes import decaying_config

    cfg = decaying_config(n_traj=1)
    assert cfg.dt == 0.0025 and cfg.steps_per_frame() == 80
    w0 = gaussian_random_field(1, cfg.n, "matern", nu=cfg.init_nu, length_scale=cfg.init_length_scale,
                               std=cfg.init_std, generator=torch.Generator().manual_seed(cfg.seed))

    def run(dt):
        ns = NavierStokes2D(n=cfg.n, nu=cfg.nu, drag=cfg.drag, forcing_amplitude=cfg.forcing_amplitude, dt=dt)
        return ns.simulate(w0, int(round(1.0 / dt)), record_every=int(round(1.0 / dt)))[:, -1]

    ref = run(cfg.dt / 4)
    err = float((run(cfg.dt) - ref).norm() / ref.norm())
    old = float((run(0.01) - ref).norm() / ref.norm())
    assert err < 1e-4, err
    assert old > 1e-3 and old / err > 50, (old, err)  # the check tells the two time steps apart

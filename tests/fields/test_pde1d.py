"""1-D pseudo-spectral solvers: Burgers against Cole–Hopf (time order 4, spectral in space), KS invariants and
time order against a fine-step reference, input validation."""
import math

import pytest
import torch

from workbench.data.burgers import Burgers1D, cole_hopf, cole_hopf_sine
from workbench.data.kuramoto_sivashinsky import KuramotoSivashinsky1D, kassam_trefethen_initial
from workbench.data.navier_stokes import CFLError
from workbench.errors import ConfigError


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _orders(errors):
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


def test_cole_hopf_sine_starts_at_the_sine_and_solves_burgers_pointwise():
    x = torch.linspace(0, 2 * math.pi, 97, dtype=torch.float64)[:-1]
    assert _rel(cole_hopf_sine(x, 0.0, 0.1), torch.sin(x)) < 1e-10
    # the residual u_t + u u_x - nu u_xx of the closed form vanishes (checked by finite differences in t, FFT in x)
    b = Burgers1D(n=96, nu=0.1)
    t, h = 0.7, 1e-4
    u = cole_hopf_sine(b.x, t, 0.1)
    ut = (cole_hopf_sine(b.x, t + h, 0.1) - cole_hopf_sine(b.x, t - h, 0.1)) / (2 * h)
    res = ut + u * b.derivative(u) - 0.1 * b.derivative(u, 2)
    assert float(res.abs().max()) < 1e-6 * float(ut.abs().max())


@pytest.mark.parametrize("integrator", ["rk4", "etdrk4"])
def test_burgers_matches_cole_hopf_at_fourth_order_in_dt(integrator):
    nu, t_end, errors = 0.1, 0.9, []  # the front is steepest near t = 1; n = 192 makes space errors ~1e-12
    for dt in (0.03, 0.015, 0.0075):
        b = Burgers1D(n=192, nu=nu, dt=dt, integrator=integrator)
        steps = int(round(t_end / dt))
        u = b.simulate(torch.sin(b.x)[None], steps, record_every=steps)[:, -1]
        errors.append(_rel(u[0], cole_hopf_sine(b.x, t_end, nu)))
    orders = _orders(errors)
    assert all(3.6 < p < 4.4 for p in orders), (errors, orders)
    assert errors[-1] < 2e-8, errors


def test_burgers_converges_spectrally_in_space_and_is_batched():
    nu, t_end, dt = 0.1, 1.0, 0.005
    errors = []
    for n in (32, 64, 128):
        b = Burgers1D(n=n, nu=nu, dt=dt)
        # one batch: the sine front, a second harmonic of the other sign, and a two-mode Cole–Hopf start
        u0 = torch.stack([torch.sin(b.x), -0.7 * torch.sin(2 * b.x), cole_hopf(b.x, 0.0, nu, [0.5, 0.3], [0.0, 1.0])])
        u = b.simulate(u0, 200, record_every=100)
        assert u.shape == (3, 3, n)
        exact = [cole_hopf_sine(b.x, t_end, nu), cole_hopf_sine(b.x, t_end, nu, -0.7, 2),
                 cole_hopf(b.x, t_end, nu, [0.5, 0.3], [0.0, 1.0])]
        errors.append(max(_rel(u[i, -1], e) for i, e in enumerate(exact)))
    assert errors[0] / errors[1] > 50 and errors[1] / errors[2] > 1000, errors  # exponential, not algebraic
    assert errors[-1] < 1e-8, errors


def test_burgers_validates_and_checks_cfl():
    with pytest.raises(ConfigError, match="nu: must be a finite number > 0"):
        Burgers1D(nu=0.0)
    with pytest.raises(ConfigError, match="integrator: got 'euler'; allowed values are: rk4, etdrk4"):
        Burgers1D(integrator="euler")
    with pytest.raises(ConfigError, match=r"u0: must have shape \(B, 64\)"):
        Burgers1D(n=64).simulate(torch.zeros(64), 1)
    b = Burgers1D(n=64, nu=0.1, dt=0.5)
    with pytest.raises(CFLError, match="dt: CFL number .* use dt <="):
        b.simulate(torch.sin(b.x)[None], 4)
    with pytest.raises(ConfigError, match="coefficients"):
        cole_hopf(b.x, 0.0, 0.1, [0.6, 0.5])
    with pytest.raises(ConfigError, match="nu: a = A/"):
        cole_hopf_sine(b.x, 0.0, 0.01)


def _ks_start(ks):
    u0 = kassam_trefethen_initial(ks.x, ks.length) + 0.3
    return torch.stack([u0, 0.5 * u0.roll(7, -1)])


def test_ks_conserves_the_mean_through_chaos():
    ks = KuramotoSivashinsky1D(n=64, length=16 * math.pi, dt=0.1)
    u0 = _ks_start(ks)
    u = ks.simulate(u0, 600, record_every=100)
    drift = float((u.mean(-1) - u0.mean(-1)[:, None]).abs().max())
    assert drift < 1e-13, drift
    assert abs(float(u0.mean(-1)[0]) - 0.3) < 1e-12  # the invariant is not trivially zero
    # the flow is far from its start and stays bounded (the KS attractor, |u| of order 3)
    assert float((u[:, -1] - u0).norm() / u0.norm()) > 1.0
    assert 1.0 < float(u[:, -1].abs().max()) < 6.0


def test_ks_small_amplitude_mode_grows_at_the_linear_rate():
    # u = eps cos(kx) with k = 2 pi m / L: u(t) = eps exp((k^2 - nu k^4) t) cos(kx) + O(eps^2)
    length, nu, m, eps, t_end = 22.0, 1.0, 2, 1e-7, 4.0
    ks = KuramotoSivashinsky1D(n=64, length=length, nu=nu, dt=0.05)
    k = 2 * math.pi * m / length
    u = ks.simulate((eps * torch.cos(k * ks.x))[None], 80, record_every=80)[0, -1]
    exact = eps * math.exp((k * k - nu * k ** 4) * t_end) * torch.cos(k * ks.x)
    assert math.exp((k * k - nu * k ** 4) * t_end) > 2.0  # an unstable mode: it really grew
    assert _rel(u, exact) < 1e-5


@pytest.mark.parametrize("integrator", ["etdrk4", "rk4"])
def test_ks_converges_at_fourth_order_in_dt(integrator):
    t_end = 5.0

    def run(dt):
        ks = KuramotoSivashinsky1D(n=64, length=16 * math.pi, dt=dt, integrator=integrator)
        steps = int(round(t_end / dt))
        return ks.simulate(_ks_start(ks), steps, record_every=steps)[:, -1]

    ref = run(0.003125)
    errors = [float((run(dt) - ref).norm() / ref.norm()) for dt in (0.05, 0.025, 0.0125)]
    orders = _orders(errors)
    assert all(3.7 < p < 4.3 for p in orders), (errors, orders)

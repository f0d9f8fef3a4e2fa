"""Interpolant algebra: endpoints, derivatives, conversions, registry errors."""
import math

import pytest
import torch

from workbench import interpolants
from workbench.errors import ConfigError, UnknownNameError

ALL = interpolants.names()
# Truncated score-SDE diffusions keep a residual signal/noise at one end (documented in diffusion.py).
BOUNDARY = {
    "vp": {"t0_signal": math.exp(-0.5 * (0.1 + 0.5 * 19.9))},
    "subvp": {"t0_signal": math.exp(-0.5 * (0.1 + 0.5 * 19.9))},
    # diffusers' linear table at timestep 999: sqrt(prod(1 - beta_k))
    "discrete_vp": {"t0_signal": math.sqrt(math.prod(1 - (1e-4 + (0.02 - 1e-4) * k / 999) for k in range(1000)))},
}


def _xs(n=64, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(3)]


@pytest.mark.parametrize("name", ALL)
def test_endpoints(name):
    I = interpolants.get(name)
    x0, x1, z = _xs()
    if name == "mirror":
        x0 = x1  # the mirror interpolant's base is the data
    end = I.interpolate(x0, x1, 1.0, z)
    if name == "ve":
        assert torch.allclose(end, x1 + 0.01 * x0, atol=1e-14)  # sigma_min residual noise
    else:
        assert torch.allclose(end, x1, atol=1e-12), name
    start = I.interpolate(x0, x1, 0.0, z)
    if name in BOUNDARY:
        a0 = BOUNDARY[name]["t0_signal"]
        assert abs(I.coefficients(0.0).beta - a0) < 1e-12
        assert torch.allclose(start, I.coefficients(0.0).alpha * x0 + a0 * x1, atol=1e-12)
    elif name == "ve":
        assert torch.allclose(start, x1 + 50.0 * x0, atol=1e-10)
    elif name == "edm_ve":
        assert torch.allclose(start, x1 + 80.0 * x0, atol=1e-10)
    else:
        assert torch.allclose(start, x0, atol=1e-12), name
    # gamma vanishes at both ends
    assert I.coefficients(0.0).gamma == 0.0 and I.coefficients(1.0).gamma == 0.0


@pytest.mark.parametrize("name", ALL)
def test_derivatives_match_autograd(name):
    I = interpolants.get(name)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64, requires_grad=True)
    for f, df in ((I.alpha, I.d_alpha), (I.beta, I.d_beta), (I.gamma, I.d_gamma)):
        y = f(t)
        g = torch.autograd.grad(y.sum(), t)[0] if y.requires_grad else torch.zeros_like(t)
        assert torch.allclose(g, df(t.detach()), rtol=1e-10, atol=1e-10), (name, f.__name__)
    # the closed-form products used for finite velocities at the ends
    gg = I.gamma(t.detach()) * I.d_gamma(t.detach())
    assert torch.allclose(I.gamma_dgamma(t.detach()), gg, atol=1e-12)
    c = I.coefficients(t.detach())
    sig, sgn = I.coefficients(t).sigma, I.coefficients(t).signal
    ds = torch.autograd.grad(sig.sum(), t)[0] if sig.requires_grad else torch.zeros_like(t)
    assert torch.allclose(c.sigma_dsigma, c.sigma * ds, rtol=1e-9, atol=1e-12)
    da = torch.autograd.grad(sgn.sum(), t)[0] if sgn.requires_grad else torch.zeros_like(t)
    assert torch.allclose(c.d_signal, da, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_time_derivative_is_finite_difference(name):
    I = interpolants.get(name)
    x0, x1, z = _xs()
    if name == "mirror":
        x0 = x1
    t, h = 0.3705, 1e-6  # off the training timesteps of discrete_vp (its derivative is one-sided there)
    fd = (I.interpolate(x0, x1, t + h, z) - I.interpolate(x0, x1, t - h, z)) / (2 * h)
    assert torch.allclose(I.time_derivative(x0, x1, t, z), fd, rtol=1e-6, atol=1e-6)


KINDS = ("velocity", "score", "x1", "noise", "x0", "z")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_conversions_round_trip(name, t):
    I = interpolants.get(name)
    _, d, s = _xs(seed=1)
    kinds = [k for k in KINDS if not (k == "x0" and not I.gaussian_base) and not (k == "z" and I.coefficients(t).gamma == 0)]
    # consistent (x, D, s): x = a D - sigma^2 s
    c = I.coefficients(t)
    x = c.signal * d - c.sigma ** 2 * s
    for src in kinds:
        if name == "mirror" and src == "velocity" and t == 0.5:
            continue  # b = -γγ̇ s vanishes at t = 1/2: velocity carries no information there
        v = I.from_data_and_score(d, s, t, src)
        for dst in kinds:
            out = I.convert(v, x, t, src, dst)
            assert torch.allclose(out, I.from_data_and_score(d, s, t, dst), rtol=1e-9, atol=1e-9), (name, src, dst)


def test_velocity_score_closed_form_linear():
    """For the linear interpolant s = (t b - x) / (1 - t) (a classical identity)."""
    I = interpolants.get("linear")
    x, b, _ = _xs(seed=3)
    t = 0.3
    assert torch.allclose(I.velocity_to_score(b, x, t), (t * b - x) / (1 - t), atol=1e-12)
    assert torch.allclose(I.score_to_velocity(I.velocity_to_score(b, x, t), x, t), b, atol=1e-12)


def test_per_sample_times_broadcast():
    I = interpolants.get("trig")
    x0, x1, z = _xs()
    t = torch.rand(x0.shape[0], dtype=torch.float64)
    xt = I.interpolate(x0, x1, t)
    for i in (0, 7, 33):
        assert torch.allclose(xt[i], I.interpolate(x0[i:i + 1], x1[i:i + 1], float(t[i]))[0], atol=1e-12)


def test_log_snr_inverse_round_trip():
    for name in ("linear", "trig", "vp", "ve", "subvp", "sb"):
        I = interpolants.get(name)
        t = torch.linspace(0.05, 0.95, 11, dtype=torch.float64)
        assert torch.allclose(I.t_from_log_snr(I.log_snr(t)), t, atol=1e-10), name


def test_registry_errors_are_clear():
    with pytest.raises(UnknownNameError, match="valid names are: .*linear.*vp"):
        interpolants.get("vpp")
    with pytest.raises(ConfigError, match="no parameter 'beta'.*beta_min"):
        interpolants.get("vp", beta=3)
    with pytest.raises(ConfigError, match="beta_max"):
        interpolants.get("vp", beta_max=-1)
    with pytest.raises(ConfigError, match="a: must be > 0"):
        interpolants.get("sb", a=float("nan"))
    with pytest.raises(ConfigError, match="path.*linear, trig"):
        interpolants.get("one_sided", path="cubic")
    assert interpolants.get("GVP").name == "trig"  # aliases, case-insensitive


def test_mirror_has_no_x0_prediction():
    I = interpolants.get("mirror")
    x = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ConfigError, match="x0"):
        I.convert(x, x, 0.5, "score", "x0")


@pytest.mark.parametrize("name", ["linear", "trig", "vp", "ve"])
def test_closed_form_log_snr_inverse_equals_bisection(name):
    I = interpolants.get(name)
    lo, hi = 0.0, 1.0
    l_lo, l_hi = I.log_snr_range(lo, hi)
    lam = torch.linspace(max(l_lo, -9.0), min(l_hi, 9.0), 37, dtype=torch.float64)
    closed = I.t_from_log_snr(lam, lo, hi)
    assert I._t_from_log_snr_closed(lam) is not None
    assert torch.allclose(closed, I._t_from_log_snr_bisect(lam, lo, hi), atol=1e-12), name

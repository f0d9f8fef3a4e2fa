"""Interpolants a real model was trained with: diffusers' DDPM tables, iDDPM's cosine, EDM's σ-range, user callables."""
import math

import pytest
import torch

from workbench import interpolants
from workbench.errors import ConfigError
from workbench.interpolants import CosineVP, Custom, DiscreteVP, EDMVE

NEW = [DiscreteVP(), DiscreteVP("scaled_linear", beta_start=0.00085, beta_end=0.012), DiscreteVP(interpolation="cubic"),
       DiscreteVP("squaredcos_cap_v2"), CosineVP(), EDMVE(),
       Custom(lambda t: torch.cos(0.5 * math.pi * t), lambda t: torch.sin(0.5 * math.pi * t))]
IDS = ["ddpm_linear", "ddpm_scaled_linear", "ddpm_linear_cubic", "ddpm_cosine", "cosine_vp", "edm_ve", "custom_trig"]


@pytest.mark.parametrize("schedule,kw", [("linear", {}), ("scaled_linear", {"beta_start": 0.00085, "beta_end": 0.012}),
                                         ("squaredcos_cap_v2", {})])
def test_discrete_vp_is_exact_at_the_training_timesteps(schedule, kw):
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDPMScheduler(beta_schedule=schedule, **kw)
    ours = DiscreteVP(schedule, **kw)
    from workbench.interpolants.discrete import make_betas

    assert torch.allclose(make_betas(schedule, 1000, ours.beta_start, ours.beta_end), sch.betas.double(), rtol=2e-6)
    exact = DiscreteVP(alphas_cumprod=sch.alphas_cumprod)  # the scheduler's own float32 table, exactly
    k = torch.arange(1000, dtype=torch.float64)
    c = exact.coefficients(exact.t_of_timestep(k))
    assert torch.allclose(c.signal ** 2, sch.alphas_cumprod.double(), rtol=1e-13, atol=0)
    assert torch.allclose(c.sigma ** 2 + c.signal ** 2, torch.ones_like(k), atol=1e-15)
    assert torch.allclose(exact.timestep(exact.t_of_timestep(k)), k, atol=1e-9)
    lam = 0.5 * torch.log(sch.alphas_cumprod.double() / (1 - sch.alphas_cumprod.double()))
    assert torch.allclose(exact.t_from_log_snr(lam), exact.t_of_timestep(k), atol=1e-12)
    assert exact.coefficients(1.0).sigma == 0.0 and exact.log_snr(1.0) == math.inf
    cubic = DiscreteVP(alphas_cumprod=sch.alphas_cumprod, interpolation="cubic")
    assert torch.allclose(cubic.coefficients(cubic.t_of_timestep(k)).signal ** 2, sch.alphas_cumprod.double(),
                          rtol=1e-12, atol=0)


def test_cubic_interpolation_is_smooth_and_linear_has_kinks():
    lin, cub = DiscreteVP(), DiscreteVP(interpolation="cubic")
    knot = float(lin.t_of_timestep(500.0))
    eps = 1e-9
    for I, smooth in ((lin, False), (cub, True)):
        left = float(I.coefficients(torch.tensor([knot - eps], dtype=torch.float64)).d_alpha[0])
        right = float(I.coefficients(torch.tensor([knot + eps], dtype=torch.float64)).d_alpha[0])
        assert (abs(left - right) < 1e-6 * abs(left)) == smooth, (I.interpolation, left, right)


def test_cosine_vp_matches_the_squaredcos_table_where_uncapped():
    table = DiscreteVP("squaredcos_cap_v2")
    I = CosineVP()
    k = torch.arange(0, 980, dtype=torch.float64)
    # discrete ᾱ_k = ᾱ((k+1)/T) / ᾱ(0) of the continuous cosine, i.e. CosineVP at s = (k+1)/T = 1 − t
    t = table.t_of_timestep(k)
    assert torch.allclose(I.coefficients(t).signal, table.coefficients(t).signal, rtol=1e-12)


@pytest.mark.parametrize("I", NEW, ids=IDS)
def test_derivatives_and_log_snr_inverse(I):
    t = torch.tensor([0.1234, 0.3705, 0.5003, 0.8517], dtype=torch.float64)  # off the discrete knots
    h = 1e-6
    c, cp, cm = I.coefficients(t), I.coefficients(t + h), I.coefficients(t - h)
    for f, d in (("alpha", "d_alpha"), ("beta", "d_beta"), ("signal", "d_signal")):
        fd = (getattr(cp, f) - getattr(cm, f)) / (2 * h)
        assert torch.allclose(fd, getattr(c, d), rtol=1e-6, atol=1e-7), f
    assert torch.allclose(c.sigma * (cp.sigma - cm.sigma) / (2 * h), c.sigma_dsigma, rtol=1e-6, atol=1e-7)
    lam = I.log_snr(t)
    assert bool(torch.all(lam[1:] > lam[:-1]))
    assert torch.allclose(I.t_from_log_snr(lam), t, atol=1e-10)


@pytest.mark.parametrize("I", NEW, ids=IDS)
def test_log_snr_inverse_raises_outside_the_range(I):
    lo, hi = I.log_snr_range()
    if math.isfinite(lo):
        with pytest.raises(ConfigError, match="outside the log-SNR range"):
            I.t_from_log_snr(torch.tensor([lo - 0.01], dtype=torch.float64))
    else:
        lo2, _ = I.log_snr_range(0.2, 0.8)
        with pytest.raises(ConfigError, match=r"outside the log-SNR range.*t ∈ \[0\.2, 0\.8\]"):
            I.t_from_log_snr(torch.tensor([lo2 - 0.01], dtype=torch.float64), 0.2, 0.8)


def test_diffusers_start_is_inside_the_discrete_range_but_not_the_continuous_vp():
    lam999 = DiscreteVP().log_snr(0.0)  # diffusers' timestep 999 of the linear table
    assert abs(lam999 - (-5.0588)) < 1e-4
    with pytest.raises(ConfigError, match=r"-5\.0588.*\[-5\.0249"):
        interpolants.get("vp").t_from_log_snr(torch.tensor([lam999], dtype=torch.float64))


def test_custom_autograd_derivatives_equal_closed_forms_even_in_inference_mode():
    trig = interpolants.get("trig")
    I = NEW[-1]
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    with torch.inference_mode():
        c, ref = I.coefficients(t), trig.coefficients(t)
    for f in ("alpha", "beta", "d_alpha", "d_beta", "sigma_dsigma"):
        assert torch.allclose(getattr(c, f), getattr(ref, f), atol=1e-13), f
    with pytest.raises(ConfigError, match="alpha_fn"):
        Custom(alpha_fn=3.0, beta_fn=lambda t: t)
    with pytest.raises(ConfigError, match="beta_fn"):
        Custom(alpha_fn=lambda t: 1 - t, beta_fn=lambda t: [0.0])


def test_bad_tables_name_the_field():
    with pytest.raises(ConfigError, match="beta_schedule.*squaredcos_cap_v2"):
        DiscreteVP("exp")
    with pytest.raises(ConfigError, match="alphas_cumprod"):
        DiscreteVP(num_train_timesteps=3, alphas_cumprod=[0.9, 0.95, 0.5])
    with pytest.raises(ConfigError, match="alphas_cumprod"):
        DiscreteVP(num_train_timesteps=2, alphas_cumprod=[0.9, 0.0])
    with pytest.raises(ConfigError, match="betas"):
        DiscreteVP(num_train_timesteps=2, betas=[0.5, 1.5])
    with pytest.raises(ConfigError, match="sigma_max"):
        EDMVE(sigma_min=1.0, sigma_max=0.5)

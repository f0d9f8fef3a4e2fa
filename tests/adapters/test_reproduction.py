"""Our solvers on an adapted model reproduce the model's own samplers, on the same network and the same noise.

A tiny randomly initialised ``diffusers.UNet2DModel`` (no weights downloaded) is sampled by diffusers' own
scheduler loops and by our registered solvers through :func:`workbench.adapters.from_diffusers`; flow_matching's
``ODESolver`` and a k-diffusion-style σ-denoiser with EDM's Heun (Algorithm 1 written out here) likewise.
"""
import math

import pytest
import torch

from workbench import solvers
from workbench.adapters import (edm_sigma_grid, equivalent_solver, from_denoiser, from_diffusers, from_flow_matching,
                                from_velocity, scheduler_grid)
from workbench.errors import ConfigError

diffusers = pytest.importorskip("diffusers")

SCHEDULERS = {
    "ddim": lambda **kw: diffusers.DDIMScheduler(clip_sample=False, **kw),
    "euler": lambda **kw: diffusers.EulerDiscreteScheduler(**kw),
    "dpmpp_2m": lambda **kw: diffusers.DPMSolverMultistepScheduler(**kw),
    "unipc": lambda **kw: diffusers.UniPCMultistepScheduler(**kw),
}


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8,), down_block_types=("DownBlock2D",),
                                up_block_types=("UpBlock2D",), norm_num_groups=4, add_attention=False).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@pytest.fixture(scope="module")
def noise():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def diffusers_loop(net, sch, noise):
    """The scheduler's own sampling loop (as in diffusers' pipelines, η = 0)."""
    x = noise * sch.init_noise_sigma
    for k in sch.timesteps:
        x = sch.step(net(sch.scale_model_input(x, k), k).sample, k, x).prev_sample
    return x


def ours(net, sch, noise, model=None):
    """Our equivalent solver on the adapted model, from the same start state (in the VP variable)."""
    grid = scheduler_grid(sch)
    x = noise * sch.init_noise_sigma
    if isinstance(sch, diffusers.EulerDiscreteScheduler):  # Euler's state is the VE variable x / a
        x = x / math.sqrt(float(sch.sigmas[0]) ** 2 + 1.0)
    name, params = equivalent_solver(sch)
    res = solvers.get(name, **params).sample((model or from_diffusers(net, sch)).field(), x, len(grid) - 1, grid=grid)
    assert res.nfe == len(grid) - 1 == len(sch.timesteps)
    return res.x


def rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("which", list(SCHEDULERS))
def test_our_solver_reproduces_the_scheduler(unet, noise, which, prediction, spacing):
    for nfe in (5, 10, 25):
        sch = SCHEDULERS[which](prediction_type=prediction, timestep_spacing=spacing)
        sch.set_timesteps(nfe)
        theirs = diffusers_loop(unet, sch, noise)
        sch.set_timesteps(nfe)  # a fresh multistep history for the grid (the loop consumed it)
        assert rel(ours(unet, sch, noise), theirs) <= 1e-5, (which, prediction, spacing, nfe)


@pytest.mark.parametrize("which", ["euler", "dpmpp_2m", "unipc"])
def test_linspace_spacing_with_fractional_timesteps(unet, noise, which):
    sch = SCHEDULERS[which](timestep_spacing="linspace")
    sch.set_timesteps(5)  # Euler: timesteps 999, 749.25, 499.5, ... (σ interpolated in between)
    theirs = diffusers_loop(unet, sch, noise)
    sch.set_timesteps(5)
    assert rel(ours(unet, sch, noise), theirs) <= 1e-5


def test_the_reproduction_can_fail(unet, noise):
    """A time map off by one timestep, or a wrong order, is far outside the tolerance."""
    sch = SCHEDULERS["dpmpp_2m"](timestep_spacing="trailing")
    sch.set_timesteps(10)
    theirs = diffusers_loop(unet, sch, noise)
    sch.set_timesteps(10)
    shifted = from_diffusers(lambda x, k: unet(x, k + 1.0), sch)
    assert rel(ours(unet, sch, noise, shifted), theirs) > 1e-4
    grid = scheduler_grid(sch)
    first = solvers.get("dpm_solver_pp", order=1).sample(from_diffusers(unet, sch).field(), noise, 10, grid=grid).x
    assert rel(first, theirs) > 1e-3


def test_ddim_loops_that_are_not_a_grid_and_clipping_are_refused(unet):
    sch = SCHEDULERS["ddim"](timestep_spacing="linspace")
    sch.set_timesteps(10)  # 999, 888, ... but each step goes to k − 100
    with pytest.raises(ConfigError, match="timestep_spacing"):
        scheduler_grid(sch)
    with pytest.raises(ConfigError, match="clip_sample"):
        equivalent_solver(diffusers.DDIMScheduler(clip_sample=True))
    karras = diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True)
    karras.set_timesteps(10)
    with pytest.raises(ConfigError, match="use_karras_sigmas"):
        scheduler_grid(karras)
    with pytest.raises(ConfigError, match="set_timesteps"):
        scheduler_grid(diffusers.EulerDiscreteScheduler())


def test_scheduler_configs_the_adapter_does_not_understand_name_the_field(unet):
    for cfg, field in (({"prediction_type": "flow"}, "prediction_type"), ({"beta_schedule": "exp"}, "beta_schedule"),
                       ({"rescale_betas_zero_snr": True}, "rescale_betas_zero_snr"),
                       ({"timestep_type": "continuous"}, "timestep_type")):
        with pytest.raises(ConfigError, match=field):
            from_diffusers(unet, {"num_train_timesteps": 1000, **cfg})
    with pytest.raises(ConfigError, match="scheduler"):
        from_diffusers(unet, 3)


def test_a_prediction_the_interpolant_cannot_convert_at_the_end_names_t(unet, noise):
    """An ε-model has no velocity at σ = 0 (t = 1): a velocity solver reaching it is told where and what to do."""
    model = from_diffusers(unet, diffusers.DDPMScheduler())
    with pytest.raises(ConfigError, match=r"t=1.*t_end=0\.999"):
        solvers.get("heun").sample(model.field(), noise, 4)
    x = solvers.get("heun").sample(model.field(), noise, 4, t_end=model.t_max).x  # up to the last trained step: fine
    assert bool(torch.isfinite(x).all())


def test_load_a_local_diffusers_folder(unet, noise, tmp_path):
    from workbench.adapters import load_diffusers

    unet.save_pretrained(tmp_path / "pipe" / "unet")
    diffusers.DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path / "pipe" / "scheduler")
    model = load_diffusers(tmp_path / "pipe")
    assert model.prediction_type == "v_prediction" and model.sample_shape == (3, 8, 8)
    t = torch.full((2,), 0.5, dtype=torch.float64)
    again = from_diffusers(unet, diffusers.DDPMScheduler(prediction_type="v_prediction"))
    assert torch.allclose(model(noise, t), again(noise, t), atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a diffusers pipeline or UNet folder"):
        load_diffusers(tmp_path / "empty")


# ---- flow_matching ---------------------------------------------------------------------------------------------
class Velocity(torch.nn.Module):
    """A small random velocity network with flow_matching's ``forward(x, t)`` keyword contract."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()
        self.requires_grad_(False)

    def forward(self, x, t):
        tt = t.reshape(-1, 1).expand(x.shape[0], 1) if t.dim() else t.expand(x.shape[0], 1)
        return self.net(torch.cat([x, tt.to(x.dtype)], dim=1))


@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_flow_matching_ode_solver_equals_ours(method):
    pytest.importorskip("flow_matching")
    from flow_matching.path.scheduler import CondOTScheduler
    from flow_matching.solver import ODESolver

    v = Velocity()
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theirs = ODESolver(velocity_model=v).sample(x0, step_size=0.125, method=method,
                                                time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64))
    model = from_flow_matching(v, CondOTScheduler())
    nfe = 8 * (1 if method == "euler" else 2)
    mine = solvers.get(method).sample(model.field(), x0, nfe).x
    assert rel(mine, theirs) <= 1e-12


@pytest.mark.parametrize("path", ["CondOTScheduler", "VPScheduler", "CosineScheduler", "PolynomialConvexScheduler"])
def test_flow_matching_paths_convert_like_flow_matching(path):
    pytest.importorskip("flow_matching")
    from flow_matching.path import AffineProbPath
    from flow_matching.path import scheduler as fm

    sch = fm.PolynomialConvexScheduler(2) if path == "PolynomialConvexScheduler" else getattr(fm, path)()
    v = Velocity()
    model = from_flow_matching(v, sch)
    prob = AffineProbPath(sch)
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for t in (0.2, 0.55, 0.9):
        tt = torch.full((16,), t, dtype=torch.float64)
        pred = model.field().predict(x, t)
        vel = v(x, tt)
        assert torch.allclose(pred.velocity, vel, atol=1e-12)
        col = tt.reshape(-1, 1)
        assert torch.allclose(pred.data, prob.velocity_to_target(vel, x, col), rtol=1e-9, atol=1e-10), (path, t)
        assert torch.allclose(pred.noise, prob.velocity_to_epsilon(vel, x, col), rtol=1e-9, atol=1e-10), (path, t)


def test_time_first_velocity_model_matches_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    v = Velocity()

    def f(t, x):  # torchdiffeq / torchcfm order
        return v(x, t)

    x0 = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ts = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    theirs = torchdiffeq.odeint(f, x0, ts, method="euler")[-1]
    mine = solvers.get("euler").sample(from_velocity(f, "linear").field(), x0, 10).x
    assert rel(mine, theirs) <= 1e-12
    with pytest.raises(ConfigError, match="shape"):  # an output that is not a state
        solvers.get("euler").sample(from_velocity(lambda t, x: x[:, :1], "linear").field(), x0, 2)


# ---- EDM --------------------------------------------------------------------------------------------------------
def edm_algorithm_1(D, x, sigmas):
    """Karras et al. (2022), Algorithm 1 (deterministic Heun, 2N − 1 evaluations), written from the paper."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - D(x, s)) / s
        x_next = x + (s_next - s) * d
        if s_next != 0:
            d_prime = (x_next - D(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * (0.5 * d + 0.5 * d_prime)
        x = x_next
    return x


def test_edm_heun_equals_algorithm_1():
    torch.manual_seed(5)
    F = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2)).double()
    F.requires_grad_(False)

    def raw(x_in, c_noise):  # EDM's raw network F(c_in x, c_noise)
        return F(torch.cat([x_in, c_noise.reshape(-1, 1).expand(x_in.shape[0], 1)], dim=1))

    model = from_denoiser(raw, sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, raw=True)
    I = model.interpolant

    def D(x, s):  # the preconditioned denoiser of EDM Table 1, written out
        s = torch.tensor(float(s), dtype=torch.float64)
        sd = 0.5
        c_skip, c_out, c_in = sd ** 2 / (s ** 2 + sd ** 2), s * sd / (s ** 2 + sd ** 2).sqrt(), 1 / (s ** 2 + sd ** 2).sqrt()
        return c_skip * x + c_out * raw(c_in * x, (0.25 * s.log()).expand(x.shape[0]))

    N = 18
    sigmas = [(80.0 ** (1 / 7) + i / (N - 1) * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7 for i in range(N)] + [0.0]
    x_T = 80.0 * torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    ref = edm_algorithm_1(D, x_T.clone(), sigmas)
    grid = edm_sigma_grid(I, N)
    # σ is affine in t, so a small σ carries the absolute round-off of t (σ_max · 1e-16): 1e-11 relative at σ_min
    assert torch.allclose(I.sigma(grid), torch.tensor(sigmas, dtype=torch.float64), rtol=1e-10, atol=0)
    field = model.field()
    heun = solvers.get("heun").sample(field, x_T, 2 * (N - 1), grid=grid[:-1])  # N − 1 Heun steps
    last = solvers.get("euler").sample(field, heun.x, 1, grid=grid[-2:])  # EDM's last step: Euler into σ = 0
    assert heun.nfe + last.nfe == 2 * N - 1
    assert rel(last.x, ref) <= 1e-12

"""``Experiment(model=..., x_start=...)``: a user's model through the same front door as the built-in problems."""
import pytest
import torch

from workbench import Experiment, solvers
from workbench.adapters import ModelProblem, from_diffusers
from workbench.errors import ConfigError

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8,), down_block_types=("DownBlock2D",),
                                up_block_types=("UpBlock2D",), norm_num_groups=4, add_attention=False).double().eval()
    net.requires_grad_(False)
    # 50 training timesteps and the smooth (cubic) interpolation keep the model's own dopri5 reference cheap (~350 NFE)
    sch = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=50, beta_start=0.002, beta_end=0.4)
    return from_diffusers(net, sch, interpolation="cubic")


def test_experiment_samples_a_user_model_against_its_own_ode(model):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    exp = Experiment(model=model, x_start=x, solver="dpmpp_2m", nfe=8, schedule="logsnr", dtype="float64",
                     keep_trajectory=False)
    assert exp.n_samples == 2 and exp.interpolant == "discrete_vp"
    res = exp.run()
    assert res.nfe == 8 and torch.equal(res.start, x)
    assert res.reference is not None and res.error is not None and res.sliced_w2 is None
    # the reference is the model's own accurate ODE solution: finer runs converge to it (second order)
    errs = [float((solvers.get("dpmpp_2m").sample(model.field(), x, n, schedule="logsnr").x - res.reference)
                  .flatten(1).norm(dim=1).mean()) for n in (16, 32)]
    assert errs[0] < 0.5 * res.error and errs[1] < 0.5 * errs[0], (res.error, errs)
    cfg = exp.config()
    assert cfg["x_start"] == [2, 3, 8, 8] and cfg["model"]["prediction"] == "noise"


def test_x_start_with_a_built_in_problem_and_bad_inputs(model):
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    res = Experiment(data="gaussian", interpolant="linear", x_start=x, solver="rk4", nfe=16).run()
    assert res.samples.shape == (5, 2) and res.error is not None and res.error < 1e-3
    with pytest.raises(ConfigError, match="x_start.*shape"):
        Experiment(data="gaussian", x_start=torch.zeros(5, 3))
    with pytest.raises(ConfigError, match="model"):
        Experiment(model=lambda x, t: x)
    with pytest.raises(ConfigError, match="x_start.*shape"):
        Experiment(model=model, x_start=torch.zeros(2, 1, 8, 8))
    assert ModelProblem(model).shape == (3, 8, 8)

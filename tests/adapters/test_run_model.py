"""``workbench run --model DIR``: a local diffusers pipeline / UNet folder or a workbench model folder, sampled and
scored against the model's own accurate ODE solution, image samples written as a PNG grid; bad folders get one-line
errors naming what is missing."""
import json
import re

import pytest
import torch

from workbench import solvers
from workbench.adapters import load_model
from workbench.cli import main
from workbench.errors import ConfigError

diffusers = pytest.importorskip("diffusers")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8,), down_block_types=("DownBlock2D",),
                                up_block_types=("UpBlock2D",), norm_num_groups=4, add_attention=False).eval()
    net.requires_grad_(False)
    return net


def scheduler(**kw):
    # 50 training timesteps keep the model's own dopri5 reference cheap (a few hundred evaluations)
    return diffusers.DDPMScheduler(num_train_timesteps=50, beta_start=0.002, beta_end=0.2, **kw)


@pytest.fixture(scope="module")
def pipe(unet, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    diffusers.DDPMPipeline(unet=unet, scheduler=scheduler()).save_pretrained(str(root))
    return root


def run_cli(capsys, *argv):
    rc = main(["run", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_run_a_diffusers_pipeline_folder(pipe, tmp_path, capsys):
    png = tmp_path / "out" / "samples.png"
    js = tmp_path / "out" / "run.json"
    rc, out, err = run_cli(capsys, "--model", pipe, "--nfe", 4, "--n-samples", 2,
                           "--dtype", "float64", "--samples", png, "--json", js)
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG
    m = re.search(r"mean L2 error vs the model's own dopri5 solution \(rtol=atol=1e-07\): ([0-9.eE+-]+)", out)
    assert m, out
    printed = float(m.group(1))
    summary = json.loads(js.read_text())["summary"]
    assert summary["solver"] == "dpmpp_2m" and summary["schedule"] == "logsnr" and summary["nfe"] == 4
    # the printed error is the distance to the model's own ODE solution, recomputed here independently: the
    # reloaded network, the same seeded start states, DPM-Solver++(2M) by hand, and dopri5 to the last trained step
    # (k = 0) followed by the exact step of the frozen data prediction to σ = 0, written out
    from workbench import Experiment

    model = load_model(pipe, dtype=torch.float64)
    x0 = Experiment(model=model, n_samples=2, seed=0).start_states().to(torch.float64)
    x = solvers.get("dpmpp_2m").sample(model.field(), x0, 4, schedule="logsnr").x
    field, I, tm = model.field(), model.interpolant, model.t_max
    assert tm == pytest.approx(1 - 1 / 50)
    y = solvers.get("dopri5", rtol=1e-8, atol=1e-8).sample(field, x0, 100_000, t_end=tm).x
    c = I.coefficients(tm)
    ref = (y - c.sigma * field.predict(y, tm).noise) / c.signal  # σ(1) = 0, a(1) = 1: x1 = (y − σ ε̂)/a
    mine = float((x - ref).flatten(1).norm(dim=1).mean())
    assert abs(printed - mine) <= 1e-4 * mine, (printed, mine)
    assert printed == pytest.approx(summary["error"], rel=1e-5)


def test_run_a_bare_unet_folder_with_its_scheduler_config(unet, tmp_path, capsys):
    unet.save_pretrained(str(tmp_path / "m"))
    scheduler(prediction_type="v_prediction").save_pretrained(str(tmp_path / "m"))
    model = load_model(tmp_path / "m")
    assert model.prediction_type == "v_prediction" and model.sample_shape == (3, 8, 8)
    rc, out, err = run_cli(capsys, "--model", tmp_path / "m", "--nfe", 3, "--n-samples", 2, "--samples",
                           tmp_path / "s.png")
    assert rc == 0, err
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG and "dopri5 solution" in out


def test_run_a_workbench_model_folder(tmp_path, capsys):
    from workbench.models import io
    from workbench.models.predictor import Predictor
    from workbench.models.unet import UNet

    torch.manual_seed(1)
    pred = Predictor(UNet(shape=(1, 8, 8), channels=8, channel_mult=(1,), time_dim=16), "linear", "velocity")
    io.save(pred, tmp_path / "wb" / "model")
    rc, out, err = run_cli(capsys, "--model", tmp_path / "wb", "--solver", "heun", "--schedule", "uniform",
                           "--nfe", 4, "--n-samples", 3, "--samples", tmp_path / "wb.png")
    assert rc == 0, err
    assert "interpolant=linear" in out and "workbench model" in out and "dopri5 solution" in out
    assert (tmp_path / "wb.png").read_bytes()[:8] == PNG


def one_line_error(capsys, folder, match):
    rc, out, err = run_cli(capsys, "--model", folder, "--nfe", 2)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.search(match, lines[0]), err
    return lines[0]


def test_bad_folders_give_one_line_errors(pipe, unet, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, tmp_path / "empty", r"error: model: .*is not a model folder: expected a diffusers pipeline")
    one_line_error(capsys, tmp_path / "nowhere", r"model: .*does not exist")
    # a pipeline without its scheduler, a UNet folder without scheduler_config.json
    diffusers.DDPMPipeline(unet=unet, scheduler=scheduler()).save_pretrained(str(tmp_path / "nosched"))
    for f in (tmp_path / "nosched" / "scheduler").iterdir():
        f.unlink()
    one_line_error(capsys, tmp_path / "nosched", r"model: .*no scheduler config \(expected scheduler/scheduler_config")
    unet.save_pretrained(str(tmp_path / "bare"))
    one_line_error(capsys, tmp_path / "bare", r"no scheduler config \(expected scheduler_config.json beside config")
    # a prediction type the adapter does not know, named with the file it came from
    scheduler().save_pretrained(str(tmp_path / "bare"))
    cfg = tmp_path / "bare" / "scheduler_config.json"
    cfg.write_text(cfg.read_text().replace('"epsilon"', '"flow"'))
    line = one_line_error(capsys, tmp_path / "bare", r"error: prediction_type: 'flow' in .*scheduler_config.json; "
                                                     r"understood: epsilon, sample, v_prediction")
    assert "flow" in line
    cfg.write_text("{not json")
    one_line_error(capsys, tmp_path / "bare", r"scheduler: .*scheduler_config.json' is not readable JSON")
    # flags that a model fixes itself
    rc, _, err = run_cli(capsys, "--model", pipe, "--interpolant", "vp")
    assert rc == 2 and "--interpolant" in err
    with pytest.raises(ConfigError, match="interpolation"):
        load_model(pipe, interpolation="quadratic")


def test_the_readme_example_runs(tmp_path):
    """README's "sample your own diffusers model with a better solver": five lines, run on a local pipeline folder."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    head = text.index("Sample your own diffusers model with a better solver")
    block = text[text.index("```python\n", head) + 10:text.index("```\n", text.index("```python\n", head) + 10)]
    assert len(block.strip().splitlines()) == 5, block
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8,), down_block_types=("DownBlock2D",),
                                up_block_types=("UpBlock2D",), norm_num_groups=4, add_attention=False)
    diffusers.DDPMPipeline(unet=net, scheduler=scheduler()).save_pretrained(str(tmp_path / "my_ddpm"))
    assert '"my_ddpm"' in block
    scope = {}
    exec(block.replace('"my_ddpm"', repr(str(tmp_path / "my_ddpm"))), scope)
    res = scope["res"]
    assert res.nfe == 8 and res.samples.shape == (4, 3, 32, 32)
    assert res.error is not None and 0 < res.error < float("inf") and res.reference is not None

"""Experiment: validation of every field, scoring against the exact reference, streaming, CLI."""
import json
import os

import pytest
import torch

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.experiment import Experiment


def test_default_run_is_scored_against_exact_flow():
    r = Experiment(n_samples=300).run()
    assert r.nfe == 20 and r.nfe_budget == 20 and r.steps == 10
    assert r.samples.shape == (300, 2) and r.samples.dtype == torch.float32
    assert r.trajectory.shape == (11, 300, 2)
    assert 0 < r.error < 0.05 and r.sliced_w2 is not None
    # more NFE → closer to the exact flow (Heun is order 2)
    r80 = Experiment(n_samples=300, nfe=80, dtype="float64").run()
    assert r80.error < r.error / 8


def test_error_is_the_distance_to_the_reference_map():
    exp = Experiment(data="gaussian", solver="rk4", nfe=40, dtype="float64", n_samples=100)
    r = exp.run()
    manual = (r.samples - r.reference).norm(dim=1).mean()
    assert abs(float(manual) - r.error) < 1e-15 and r.error < 1e-5


def test_seeded_runs_are_identical_and_stream_matches_run():
    a = Experiment(solver="euler_maruyama", eps=0.5, nfe=30, n_samples=64, seed=3).run()
    b = Experiment(solver="euler_maruyama", eps=0.5, nfe=30, n_samples=64, seed=3).run()
    assert torch.equal(a.samples, b.samples)
    run = Experiment(solver="euler_maruyama", eps=0.5, nfe=30, n_samples=64, seed=3).stream()
    seen = [step.t_next for step in run]
    assert len(seen) == 30 and seen[-1] == 1.0 and torch.equal(run.result.samples, a.samples)
    assert a.error is None  # no pathwise reference for an SDE; the distributional score remains
    assert a.sliced_w2 is not None


def test_stream_can_be_cancelled():
    run = Experiment(nfe=40, n_samples=32).stream()
    for i, _ in enumerate(run):
        if i == 3:
            run.cancel()
    assert run.steps_done == 4 and run.result is None


@pytest.mark.parametrize("kwargs,field", [
    (dict(interpolant="nope"), "interpolant"),
    (dict(schedule="nope"), "schedule"),
    (dict(solver="nope"), "solver"),
    (dict(data="nope"), "data"),
    (dict(nfe=0), "nfe"),
    (dict(nfe=-3), "nfe"),
    (dict(solver="heun", nfe=1), "nfe"),
    (dict(eps=-1.0, solver="euler_maruyama"), "eps"),
    (dict(eps=0.5, solver="heun"), "eps"),
    (dict(n_samples=0), "n_samples"),
    (dict(seed=-1), "seed"),
    (dict(dtype="float16"), "dtype"),
    (dict(device="cuda:7"), "device"),
    (dict(device="banana"), "device"),
    (dict(t_start=0.5, t_end=0.2), "t_start/t_end"),
    (dict(interpolant_params={"beta_max": -1}, interpolant="vp"), "beta_max"),
    (dict(interpolant_params={"foo": 1}), "interpolant_params"),
    (dict(schedule="edm", interpolant="mirror"), "schedule"),
    (dict(interpolant_params=[1, 2]), "interpolant_params"),
])
def test_every_bad_field_names_itself(kwargs, field):
    with pytest.raises(ConfigError) as info:
        Experiment(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid names are: .*heun.*rk4"):
        Experiment(solver="hune")


def test_cli_run_writes_png_and_json(tmp_path, capsys):
    out, js = tmp_path / "fig.png", tmp_path / "s.json"
    rc = main(["run", "--solver", "rk4", "--nfe", "16", "--n-samples", "200", "--out", str(out), "--json", str(js)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean L2 error vs exact PF-ODE map" in text and "nfe=16/16" in text
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(js.read_text())["summary"]
    assert summary["nfe"] == 16 and summary["error"] < 0.05


def test_cli_bad_input_is_one_readable_line(capsys):
    assert main(["run", "--solver", "nope", "--out", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "solver: unknown name 'nope'; valid names are:" in err[0]
    assert main(["run", "--interpolant-param", "oops", "--out", ""]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_cli_help_lists_registered_names(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for name in ("linear", "vp", "mirror", "edm", "logit_normal", "dopri5", "euler_maruyama", "gmm2d"):
        assert name in text


def test_convergence_command_prints_table(capsys):
    assert main(["convergence", "--solvers", "euler", "heun", "--n-samples", "32"]) == 0
    text = capsys.readouterr().out
    assert "| solver | nominal | linear [0, 1] uniform | vp [0, 0.99] logsnr |" in text
    rows = [line for line in text.splitlines() if line.startswith(("| euler |", "| heun |"))]  # one row per solver
    assert [r.split(" | ")[:2] for r in rows] == [["| euler", "1"], ["| heun", "2"]]


def test_validation_builds_no_model_and_problems_refuse_early():
    """Constructing an Experiment checks everything without building (or training) the model."""
    from workbench.problems import GMMProblem
    from workbench.data.gmm import gaussian

    class NoModelYet(GMMProblem):
        def field(self, interpolant, device, dtype):
            raise AssertionError("field() must not be called during validation")

    exp = Experiment(data=NoModelYet(gaussian(2)), solver="rk4", nfe=8, schedule="edm")
    assert exp.grid().shape == (3,)
    with pytest.raises(ConfigError) as info:
        Experiment(data="toy2d", interpolant="mirror")
    assert info.value.field == "t_start"
    with pytest.raises(ConfigError) as info:
        Experiment(data="vorticity", interpolant="mirror")
    assert info.value.field == "interpolant"

"""Hostile inputs (issue 18): every row is input → expected exit code / exception type / words in the message.

The CLI rows call :func:`workbench.cli.main` in-process and must end with exit code 2 and one readable line on
stderr (no traceback) *before* any work is done; the API rows must raise the named exception; the file rows corrupt
one file and expect a one-line :class:`ConfigError` naming that file (or a rebuilt cache, never a used one).
"""
from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import Experiment
from workbench.cli import main
from workbench.errors import ConfigError, NonFiniteError, NonFiniteWarning
from workbench.data.toy2d import moons
from workbench.fitting import Search
from workbench.fitting.pilot import check_holdout
from workbench.interpolants import INTERPOLANTS
from workbench.models.field import Field
from workbench.schedules import SCHEDULES
from workbench.solvers import SOLVERS

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NB01, NB02 = str(NOTEBOOKS / "01_quickstart.ipynb"), str(NOTEBOOKS / "02_solver_shootout.ipynb")
NOWHERE = "/proc/no-such-dir/out"  # its parent cannot be created, even by root

RUN = ["run", "--n-samples", "16", "--out", ""]
TRAIN = ["train", "--steps", "2", "--no-progress"]
SIM = ["fields", "simulate", "--n-traj", "1", "--grid", "8", "--frames", "2"]

# (id, argv, words that must all appear in the one-line error)
CLI_ROWS = [
    # run: budgets, seeds, sizes, values
    ("run-nfe-huge", RUN + ["--nfe", "1000000000"], ["nfe", "1000000"]),
    ("run-nfe-overflow", RUN + ["--nfe", "99999999999999999999"], ["nfe", "1000000"]),
    ("run-nfe-zero", RUN + ["--nfe", "0"], ["nfe", ">= 2"]),
    ("run-nfe-float", RUN + ["--nfe", "1e3"], ["--nfe", "invalid int"]),
    ("run-seed-huge", RUN + ["--seed", "18446744073709551000"], ["seed", "9007199254740991"]),
    ("run-seed-negative", RUN + ["--seed", "-1"], ["seed"]),
    ("run-n-samples-huge", ["run", "--out", "", "--n-samples", "100000000"], ["n_samples", "10000000"]),
    ("run-n-samples-zero", ["run", "--out", "", "--n-samples", "0"], ["n_samples"]),
    ("run-dim-fraction", RUN + ["--data", "gmm_nd", "--data-param", "dim=3.5"], ["dim", "integer", "3.5"]),
    ("run-dim-bool", RUN + ["--data", "gmm_nd", "--data-param", "dim=true"], ["dim"]),
    ("run-dim-huge", RUN + ["--data", "gmm_nd", "--data-param", "dim=1000000000"], ["dim", "1024"]),
    ("run-dim-negative", RUN + ["--data", "gmm_nd", "--data-param", "dim=-2"], ["dim"]),
    ("run-solver-unknown", RUN + ["--solver", "nosuch"], ["solver", "nosuch", "heun"]),
    ("run-data-unknown", RUN + ["--data", "nosuch"], ["nosuch"]),
    ("run-eps-nan", RUN + ["--eps", "nan"], ["eps", "finite"]),
    ("run-eps-ode", RUN + ["--eps", "0.5"], ["eps", "ODE solver"]),
    ("run-interval", RUN + ["--t-start", "0.5", "--t-end", "0.2"], ["t_start", "t_end"]),
    ("run-param-unknown", RUN + ["--interpolant-param", "x=1"], ["interpolant", "x"]),
    ("run-param-no-eq", RUN + ["--solver-param", "nokey"], ["KEY=VALUE"]),
    ("run-device", RUN + ["--device", "tpu"], ["device", "cpu"]),
    ("run-dtype", RUN + ["--dtype", "float16"], ["--dtype", "float32"]),
    ("run-schedule-param", RUN + ["--schedule", "karras", "--schedule-param", "rho=abc"], ["rho"]),
    ("run-fit-pilot", RUN + ["--fit-schedule", "3"], ["n_pilot", "8"]),
    ("run-explicit-no-times", RUN + ["--schedule", "explicit"], ["times", "--schedule-param times="]),
    ("run-dopri5-budget", RUN + ["--solver", "dopri5", "--nfe", "3"], ["budget of 3", "at t=", "raise nfe"]),
    ("run-sde-overflow", RUN + ["--solver", "euler_maruyama", "--eps", "1e300"], ["NaN/Inf", "weights"]),
    ("run-out-unwritable", ["run", "--n-samples", "16", "--out", NOWHERE + "/x.png"], ["--out", "not writable"]),
    ("run-json-unwritable", RUN + ["--json", NOWHERE + "/x.json"], ["--json", "not writable"]),
    ("run-out-under-file", ["run", "--n-samples", "16", "--out", "/etc/hostname/x.png"], ["--out", "not a folder"]),
    # train
    ("train-steps-zero", ["train", "--steps", "0"], ["steps", ">= 1"]),
    ("train-weight-decay", TRAIN + ["--weight-decay", "-1"], ["weight_decay", ">= 0"]),
    ("train-lr-nan", TRAIN + ["--lr", "nan"], ["lr"]),
    ("train-seed-huge", TRAIN + ["--seed", "18446744073709551000"], ["seed", "9007199254740991"]),
    ("train-dataset", TRAIN + ["--dataset", "nosuch"], ["dataset", "moons"]),
    ("train-eval-nfe", TRAIN + ["--eval-nfe", "0"], ["nfe"]),
    ("train-eval-solver", TRAIN + ["--eval-solver", "nosuch"], ["solver", "nosuch"]),
    ("train-eval-samples", TRAIN + ["--eval-samples", "0"], ["eval.n"]),
    ("train-threads", TRAIN + ["--threads", "0"], ["threads"]),
    ("train-out-unwritable", TRAIN + ["--out", NOWHERE], ["--out", "not writable"]),
    ("train-config-missing", ["train", "--config", NOWHERE + "/spec.yaml"], ["config", "does not exist"]),
    # fields
    ("sim-frames-zero", SIM[:-2] + ["--frames", "0"], ["frames", "[1, 100000]"]),
    ("sim-n-traj-zero", SIM[:2] + ["--n-traj", "0"], ["n_traj"]),
    ("sim-grid-small", SIM[:2] + ["--grid", "3"], ["n", "8"]),
    ("sim-dt-negative", SIM + ["--dt", "-1"], ["dt"]),
    ("sim-threads", SIM + ["--threads", "0"], ["threads"]),
    ("sim-out-unwritable", SIM + ["--out", NOWHERE + "/a.npz"], ["--out", "not writable"]),
    ("spectra-refiner-nfe", ["fields", "spectra", "--quick", "--refiner-nfe", "0", "--out", "x.png"], ["nfe"]),
    ("spectra-refiner-solver", ["fields", "spectra", "--quick", "--refiner-solver", "nosuch"], ["solver", "nosuch"]),
    ("spectra-out-unwritable", ["fields", "spectra", "--quick", "--out", NOWHERE + "/s.png"], ["--out"]),
    # report: semantic checks before any kernel
    ("report-nfe-list-zero", ["report", NB02, "-p", "nfe_list", "0"], ["nfe_list", "[1, 1000000]"]),
    ("report-nfe-list-empty", ["report", NB02, "-p", "nfe_list", ""], ["nfe_list", "at least one"]),
    ("report-nfe-list-hole", ["report", NB02, "-p", "nfe_list", "4,,8"], ["nfe_list", "empty element"]),
    ("report-solver-unknown", ["report", NB02, "-p", "solvers", "euler,nosuch"], ["solvers", "nosuch", "heun"]),
    ("report-nfe-zero", ["report", NB01, "-p", "nfe", "0"], ["nfe"]),
    ("report-interpolant", ["report", NB01, "-p", "interpolant", "nosuch"], ["interpolant", "nosuch"]),
    ("report-seed-huge", ["report", NB01, "-p", "seed", "18446744073709551000"], ["seed"]),
    ("report-param-twice", ["report", NB01, "-p", "seed", "1", "-p", "seed", "2"], ["-p", "seed", "once"]),
    ("report-param-unknown", ["report", NB02, "-p", "nosuch", "1"], ["nosuch", "not a parameter"]),
    ("report-param-type", ["report", NB02, "-p", "dim", "abc"], ["dim", "int"]),
    ("report-notebook-missing", ["report", NOWHERE + ".ipynb"], ["notebook", "does not exist"]),
    ("report-out-root", ["report", NB02, "--out-root", NOWHERE], ["--out-root", "not writable"]),
    ("report-timeout", ["report", NB02, "--timeout", "-5"], ["--timeout"]),
    # sweep
    ("sweep-vary-twice", ["sweep", NB02, "-g", "seed", "1", "2", "-g", "seed", "3", "--dry-run"], ["seed", "twice"]),
    ("sweep-vary-and-fix", ["sweep", NB02, "-g", "seed", "1", "-p", "seed", "2", "--dry-run"], ["seed", "once"]),
    ("sweep-metric", ["sweep", NB02, "-g", "seed", "1", "--metric", "nosuch", "--dry-run"], ["--metric", "nosuch"]),
    ("sweep-workers-neg", ["sweep", NB02, "-g", "seed", "1", "--workers", "-1"], ["--workers", "[1, 4096]"]),
    ("sweep-workers-zero", ["sweep", NB02, "-g", "seed", "1", "--workers", "0"], ["--workers"]),
    ("sweep-scheduler", ["sweep", NB02, "-g", "seed", "1", "--scheduler", "notaurl"], ["--scheduler", "tcp://"]),
    ("sweep-list-hole", ["sweep", NB02, "-g", "nfe_list", "4,,8", "--dry-run"], ["nfe_list", "empty element"]),
    ("sweep-solver-unknown", ["sweep", NB02, "-g", "solvers", "euler", "nosuch", "--dry-run"], ["solvers", "nosuch"]),
    ("sweep-name-unknown", ["sweep", NB02, "-g", "nosuch", "1", "--dry-run"], ["nosuch", "not a parameter"]),
    ("sweep-no-values", ["sweep", NB02, "-g", "seed", "--dry-run"], ["-g", "value"]),
    ("sweep-out-root", ["sweep", NB02, "-g", "seed", "1", "--out-root", NOWHERE], ["--out-root"]),
    ("sweep-workers-with-scheduler", ["sweep", NB02, "-g", "seed", "1", "--workers", "2", "--scheduler",
                                      "tcp://127.0.0.1:8786"], ["--workers", "embedded cluster only"]),
    ("sweep-workers-text", ["sweep", NB02, "-g", "seed", "1", "--workers", "many"], ["--workers", "invalid int"]),
    ("sweep-worker-timeout-zero", ["sweep", NB02, "-g", "seed", "1", "--worker-timeout", "0"],
     ["--worker-timeout", "> 0"]),
    ("sweep-worker-timeout-nan", ["sweep", NB02, "-g", "seed", "1", "--worker-timeout", "nan"],
     ["--worker-timeout", "finite"]),
    ("sweep-scheduler-no-port", ["sweep", NB02, "-g", "seed", "1", "--scheduler", "tcp://host"],
     ["--scheduler", "tcp://host:8786"]),
    ("sweep-scheduler-unreachable", ["sweep", NB02, "-g", "seed", "1", "--scheduler", "tcp://127.0.0.1:9",
                                     "--worker-timeout", "1", "--no-progress"], ["scheduler", "cannot reach"]),
]


def _cli(argv, capsys):
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("argv,words", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_refuses_cleanly(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a row might still write lands in the repository
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    rc, err = _cli(argv, capsys)
    last = err.splitlines()[-1] if err else ""
    assert rc == 2, f"exit {rc}; stderr: {err[-500:]}"
    assert "Traceback" not in err
    for w in words:
        assert w in last, f"{w!r} not in {last!r}"
    assert not list(tmp_path.glob("reports*")), "a run folder was created for refused input"


# ---- API --------------------------------------------------------------------------------------------------
LINEAR = INTERPOLANTS.get("linear")
_F = Field(lambda x, t: -x, LINEAR)
_NAN_FIELD = Field(lambda x, t: torch.full_like(x, float("nan")), LINEAR)
_NAN_LATE = Field(lambda x, t: torch.full_like(x, float("nan")) if float(t[0]) > 0.5 else -x, LINEAR)
G64 = dict(dtype=torch.float64)

API_ROWS = [
    ("nfe-str", lambda: Experiment(nfe="8"), ConfigError, ["nfe", "'8'"]),
    ("nfe-bool", lambda: Experiment(nfe=True), ConfigError, ["nfe"]),
    ("nfe-huge", lambda: Experiment(nfe=10 ** 9), ConfigError, ["nfe", "1000000"]),
    ("nfe-fraction", lambda: Experiment(nfe=8.5), ConfigError, ["nfe"]),
    ("eps-str", lambda: Experiment(solver="euler_maruyama", eps="0.5"), ConfigError, ["eps", "'0.5'"]),
    ("eps-bool", lambda: Experiment(solver="euler_maruyama", eps=True), ConfigError, ["eps", "True"]),
    ("seed-huge", lambda: Experiment(seed=2 ** 64), ConfigError, ["seed"]),
    ("seed-str", lambda: Experiment(seed="1"), ConfigError, ["seed"]),
    ("n-samples-huge", lambda: Experiment(n_samples=10 ** 8), ConfigError, ["n_samples"]),
    ("n-samples-float", lambda: Experiment(n_samples=2.5), ConfigError, ["n_samples"]),
    ("n-samples-memory", lambda: Experiment(n_samples=10 ** 7, nfe=4000),
     ConfigError, ["n_samples", "GiB"]),
    ("params-not-dict", lambda: Experiment(solver_params=[1]), ConfigError, ["solver_params"]),
    ("grid-one-point", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4, grid=torch.tensor([0.5], **G64)),
     ConfigError, ["grid", "two"]),
    ("grid-repeated", lambda: SOLVERS.get("heun").sample(_F, torch.randn(4, 2), 4,
                                                         grid=torch.tensor([0.0, 0.5, 0.5, 1.0], **G64)),
     ConfigError, ["grid", "strictly"]),
    ("grid-unordered", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4,
                                                           grid=torch.tensor([0.0, 0.7, 0.3, 1.0], **G64)),
     ConfigError, ["grid", "t[1]=0.7"]),
    ("grid-nan", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4,
                                                     grid=torch.tensor([0.0, float("nan"), 1.0], **G64)),
     ConfigError, ["grid", "finite"]),
    ("grid-2d", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4, grid=torch.tensor([[0.0, 1.0]], **G64)),
     ConfigError, ["grid"]),
    ("grid-outside", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4, grid=[0.0, 0.5, 1.5]),
     ConfigError, ["grid", "[0, 1]"]),
    ("grid-text", lambda: SOLVERS.get("euler").sample(_F, torch.randn(4, 2), 4, grid="abc"), ConfigError, ["grid"]),
    ("x-start-nan", lambda: Experiment(x_start=torch.full((4, 2), float("nan"))), ConfigError, ["x_start", "NaN"]),
    # dopri5 and NaN (defect 7): a persistent NaN raises naming t, never a silent rejected step
    ("dopri5-nan-from-t0", lambda: SOLVERS.get("dopri5").sample(_NAN_FIELD, torch.randn(4, 2, **G64), 10 ** 6),
     NonFiniteError, ["dopri5", "NaN/Inf", "t=0"]),
    ("dopri5-nan-after-half", lambda: SOLVERS.get("dopri5").sample(_NAN_LATE, torch.randn(4, 2, **G64), 10 ** 6),
     NonFiniteError, ["dopri5", "NaN/Inf", "t=0.5"]),
    ("dopri5-max-nonfinite-zero", lambda: SOLVERS.get("dopri5", max_nonfinite=0), ConfigError,
     ["max_nonfinite", "[1, 1000]"]),
    ("dopri5-max-nonfinite-bool", lambda: SOLVERS.get("dopri5", max_nonfinite=True), ConfigError, ["max_nonfinite"]),
    # the shared validation layer (defect 7, formerly hand-written checks)
    ("dpm-order-bool", lambda: SOLVERS.get("dpm_solver_pp", order=True), ConfigError, ["order", "allowed values", "1, 2, 3"]),
    ("dpm-order-text", lambda: SOLVERS.get("dpm_solver_pp", order="2"), ConfigError, ["order", "'2'"]),
    ("deis-order-five", lambda: SOLVERS.get("deis", order=5), ConfigError, ["order", "1, 2, 3, 4"]),
    ("mrs-order-bool", lambda: SOLVERS.get("mrs", order=True), ConfigError, ["order", "1, 2"]),
    ("explicit-time-text", lambda: SCHEDULES.get("explicit", times=[0.0, "0.5", 1.0]), ConfigError, ["times", "'0.5'"]),
    ("t-start-text", lambda: Experiment(t_start="0"), ConfigError, ["t_start", "[0, 1]"]),
    ("t-end-bool", lambda: Experiment(t_end=True), ConfigError, ["t_end"]),
    ("edm-steps-bool", lambda: INTERPOLANTS.get("edm_ve").karras_sigmas(True), ConfigError, ["steps", ">= 2"]),
    ("toy2d-n-bool", lambda: moons(True), ConfigError, ["n"]),
    ("toy2d-n-fraction", lambda: moons(2.5), ConfigError,
     ["n", "2.5"]),
    ("holdout-bool", lambda: check_holdout(True), ConfigError,
     ["holdout"]),
    ("holdout-big", lambda: check_holdout(0.95), ConfigError,
     ["holdout", "[0, 0.9)"]),
    ("search-check-every-bool", lambda: Search(
        None, 1.0, check_every=True), ConfigError, ["check_every", ">= 1"]),
    ("search-max-seconds-zero", lambda: Search(
        None, 1.0, max_seconds=0), ConfigError, ["max_seconds", "> 0"]),
]


@pytest.mark.parametrize("make,exc,words", [r[1:] for r in API_ROWS], ids=[r[0] for r in API_ROWS])
def test_api_refuses(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    for w in words:
        assert w in str(info.value), f"{w!r} not in {info.value}"


def test_strictly_decreasing_grid_is_an_inversion_not_an_error():
    """A reversed grid integrates back (the inversion sampler's use): Euler there is x(0) = x(1) - (-x(1))·1."""
    x = torch.randn(4, 2, **G64)
    res = SOLVERS.get("euler").sample(_F, x, 1, grid=torch.tensor([1.0, 0.0], **G64))
    assert torch.allclose(res.x, x + x * -1.0 * -1.0)  # x + h·(-x) with h = -1


def test_dopri5_transient_nan_is_counted_and_reported():
    """One NaN evaluation inside (0.3, 0.5): that step is rejected and retried smaller, counted in the result and
    warned about; the result still matches the exact solution x0·e^{-1} of dx/dt = -x."""
    calls = {"nan": 0}

    def model(x, t):
        if 0.3 < float(t[0]) < 0.5 and not calls["nan"]:
            calls["nan"] += 1
            return torch.full_like(x, float("nan"))
        return -x

    x = torch.randn(8, 2, **G64)
    with pytest.warns(NonFiniteWarning, match=r"dopri5: 1 step\(s\) rejected because the model returned NaN"):
        res = SOLVERS.get("dopri5").sample(Field(model, LINEAR), x, 10_000)
    assert res.info["rejected_nonfinite"] == 1 and 0.0 < res.info["first_nonfinite_t"] < 0.5
    assert res.info["rejected"] >= 1
    assert torch.allclose(res.x, x * np.exp(-1.0), atol=1e-5)
    clean = SOLVERS.get("dopri5").sample(_F, x, 10_000)  # no NaN: nothing reported
    assert "rejected_nonfinite" not in clean.info


# ---- the model contract (defect 1) --------------------------------------------------------------------------
BAD_OUTPUTS = {"column": lambda x, t: x[:, :1], "row": lambda x, t: x[:1], "scalar": lambda x, t: x.sum(),
               "python-float": lambda x, t: 0.5, "float32": lambda x, t: -x.float()}


@pytest.mark.parametrize("solver", ["heun", "midpoint", "rk4", "dpmpp_2m", "unipc", "deis", "euler"])
@pytest.mark.parametrize("kind", list(BAD_OUTPUTS))
def test_wrong_model_output_raises(solver, kind):
    x = torch.randn(16, 2, **G64)
    with pytest.raises(ConfigError, match=r"model: .*(shape|tensor|float64)"):
        SOLVERS.get(solver).sample(Field(BAD_OUTPUTS[kind], LINEAR), x, 8)


@pytest.mark.parametrize("solver", ["euler", "heun", "dpmpp_2m"])
def test_float64_state_stays_float64(solver):
    """dx/dt = -x from x0: exact x0·e^{-1}; Euler/Heun/DPM++ keep float64 and are close at 64 NFE."""
    x = torch.randn(8, 2, **G64)
    res = SOLVERS.get(solver).sample(Field(lambda y, t: -y, LINEAR), x, 64)
    assert res.x.dtype == torch.float64
    assert torch.allclose(res.x, x * np.exp(-1.0), atol=2e-2)


# ---- files (defect 5) -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from workbench.models import io
    from workbench.models.mlp import MLP  # noqa: F401  (registers the architecture)
    from workbench.models.predictor import Predictor, build_network

    net = build_network("mlp", shape=2, width=8, depth=2)
    pred = Predictor(net, "linear", "velocity", "mlp")
    folder = tmp_path_factory.mktemp("model")
    io.save(pred, folder / "model")
    return folder


def _corrupt_model(kind: str, folder: Path) -> Path:
    w, c = folder / "model.safetensors", folder / "model.json"
    cfg = json.loads(c.read_text())
    if kind == "weights-truncated":
        w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    elif kind == "weights-random":
        w.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "weights-empty":
        w.write_bytes(b"")
    elif kind == "config-list":
        c.write_text("[1, 2]")
    elif kind == "config-garbage":
        c.write_text("{not json")
    elif kind == "config-width-text":
        cfg["architecture"].setdefault("config", {})["width"] = "abc"
        c.write_text(json.dumps(cfg))
    elif kind == "config-version":
        cfg["version"] = 99
        c.write_text(json.dumps(cfg))
    elif kind == "config-architecture-list":
        cfg["architecture"] = ["mlp"]
        c.write_text(json.dumps(cfg))
    return c if kind.startswith("config") else w


MODEL_FAULTS = {"weights-truncated": "safetensors", "weights-random": "safetensors", "weights-empty": "safetensors",
                "config-list": "JSON object", "config-garbage": "not valid JSON", "config-width-text": "cannot be built",
                "config-version": "version 99", "config-architecture-list": "architecture"}


@pytest.mark.parametrize("kind", list(MODEL_FAULTS))
def test_corrupt_model_files(kind, saved_model, tmp_path):
    from workbench.models import io

    folder = tmp_path / "m"
    shutil.copytree(saved_model, folder)
    bad = _corrupt_model(kind, folder)
    with pytest.raises(ConfigError) as info:
        io.load(folder / "model")
    msg = str(info.value)
    assert str(bad.name) in msg and MODEL_FAULTS[kind] in msg and "\n" not in msg


def test_model_save_is_atomic(saved_model, tmp_path, monkeypatch):
    """A save interrupted while writing the weights leaves the previous model intact and no temporary files."""
    from workbench.models import io

    folder = tmp_path / "m"
    shutil.copytree(saved_model, folder)
    before = (folder / "model.safetensors").read_bytes()
    pred = io.load(folder / "model")

    def boom(tensors, path):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        io.save(pred, folder / "model")
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]


def _ns_cfg():
    from workbench.data.navier_stokes import kolmogorov_config

    return kolmogorov_config(n_traj=1, n=8, frames=2, frame_dt=0.02, dt=0.01, warmup=0.0)


def _write_cache(path: Path, kind: str) -> None:
    from workbench.data.navier_stokes import _params_json

    cfg = _ns_cfg()
    w = np.zeros((1, 2, 8, 8))
    times = np.arange(2.0)
    params = np.array(_params_json(cfg))
    if kind == "truncated":
        np.savez(path, vorticity=w, times=times, params=params)
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "key-missing":
        np.savez(path, vorticity=w, params=params)
    elif kind == "params-garbage":
        np.savez(path, vorticity=w, times=times, params=np.array("{oops"))
    elif kind == "nan":
        w[0, 1, 2, 3] = np.nan
        np.savez(path, vorticity=w, times=times, params=params)
    elif kind == "wrong-shape":
        np.savez(path, vorticity=np.zeros((1, 2, 4, 4)), times=times, params=params)


CACHE_FAULTS = {"truncated": "cannot be read", "empty": "cannot be read", "key-missing": "times",
                "params-garbage": "cannot be read", "nan": "NaN", "wrong-shape": "shape"}


@pytest.mark.parametrize("kind", list(CACHE_FAULTS))
def test_corrupt_cache_at_a_given_path_is_refused(kind, tmp_path):
    from workbench.data.navier_stokes import load_or_generate

    path = tmp_path / "traj.npz"
    _write_cache(path, kind)
    with pytest.raises(ConfigError) as info:
        load_or_generate(_ns_cfg(), str(path), progress=False)
    msg = str(info.value)
    assert str(path) in msg and CACHE_FAULTS[kind] in msg and "\n" not in msg


def _write_h5_cache(path: Path, kind: str) -> None:
    from workbench.data.hdf5 import export_hdf5
    from workbench.data.navier_stokes import _params_json

    cfg = _ns_cfg()
    w = np.zeros((1, 2, 8, 8))
    coords = {"x": np.arange(8.0), "y": np.arange(8.0)}
    params = json.loads(_params_json(cfg))
    if kind == "nan":
        w[0, 1, 2, 3] = np.nan
    if kind == "wrong-shape":
        export_hdf5(str(path), np.zeros((1, 2, 4, 4)), np.arange(2.0), {"x": np.arange(4.0), "y": np.arange(4.0)},
                    params)
    elif kind in ("truncated", "empty"):
        export_hdf5(str(path), w, np.arange(2.0), coords, params)
        path.write_bytes(path.read_bytes()[:200] if kind == "truncated" else b"")
    else:
        export_hdf5(str(path), w, np.arange(2.0), coords, params)


H5_FAULTS = {"nan": "NaN", "wrong-shape": "shape", "truncated": "cannot be read", "empty": "cannot be read"}


@pytest.mark.parametrize("kind", list(H5_FAULTS))
def test_corrupt_h5_cache_at_a_given_path_is_refused(kind, tmp_path):
    pytest.importorskip("h5py", reason="the .h5 cache back end needs h5py (the pde extra)")
    from workbench.data.navier_stokes import load_or_generate

    path = tmp_path / "traj.h5"
    _write_h5_cache(path, kind)
    with pytest.raises(ConfigError) as info:
        load_or_generate(_ns_cfg(), str(path), progress=False)
    msg = str(info.value)
    assert str(path) in msg and H5_FAULTS[kind] in msg and "\n" not in msg


@pytest.mark.parametrize("kind", ["nan", "truncated"])
def test_corrupt_default_cache_is_rebuilt(kind, tmp_path, monkeypatch):
    """At the default cache path a corrupt file is regenerated (warning), and the fresh data are finite."""
    from workbench.data import navier_stokes as ns

    monkeypatch.chdir(tmp_path)
    cfg = _ns_cfg()
    path = Path(ns.cache_path(cfg))
    path.parent.mkdir(parents=True)
    _write_cache(path, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ns.load_or_generate(cfg, progress=False)
    assert any("regenerating" in str(w.message) for w in caught)
    assert torch.isfinite(out["vorticity"]).all() and out["vorticity"].abs().sum() > 0
    again = ns.load_or_generate(cfg, progress=False)  # the rebuilt file now loads as is
    assert torch.equal(again["vorticity"], out["vorticity"])


NOTEBOOK_FAULTS = {"garbage": ("{oops", "not a valid notebook"), "list": ("[1, 2]", "not a valid notebook"),
                   "empty": ("", "not a valid notebook")}


@pytest.mark.parametrize("kind", list(NOTEBOOK_FAULTS))
def test_corrupt_notebook(kind, tmp_path, capsys):
    text, words = NOTEBOOK_FAULTS[kind]
    nb = tmp_path / "bad.ipynb"
    nb.write_text(text)
    rc, err = _cli(["report", str(nb)], capsys)
    assert rc == 2 and words in err and "bad.ipynb" in err and "Traceback" not in err


def test_corrupt_trainer_state(tmp_path):
    from workbench.training.recipes import build, merge_spec
    from workbench.training.trainer import Trainer

    spec = merge_spec({"train": {"steps": 1, "progress": False, "out_dir": str(tmp_path)}})
    pred, ds, cfg = build(spec)
    tr = Trainer(pred, ds, cfg)
    (tmp_path / "trainer_state.safetensors").write_bytes(b"xx")
    (tmp_path / "trainer_state.json").write_text("[]")
    with pytest.raises(ConfigError, match="trainer_state.json is not a trainer state"):
        tr.resume()


# ---- the nbval sanitizer (defect 10) ------------------------------------------------------------------------
def test_nbval_sanitizer_loads_every_section_and_spares_figure_sizes():
    from nbval.plugin import get_sanitize_patterns

    text = (NOTEBOOKS / "nbval_sanitize.cfg").read_text()
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == len(re.findall(r"^\[\w+\]$", text, flags=re.M))  # no section silently dropped

    def sanitize(s: str) -> str:
        for regex, replace in patterns:
            s = re.sub(regex, replace, s)
        return s

    assert sanitize("<Figure size 650x450 with 1 Axes>") != sanitize("<Figure size 650x999 with 1 Axes>")
    assert sanitize("<object at 0x7f3a2b10>") == sanitize("<object at 0x55d0c0de>")
    warn = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. Use IPC.\n"
    assert sanitize(warn + "result 1") == "KERNEL-TCP-WARNINGresult 1"


def test_cached_generator_with_nan_weights_is_retrained(tmp_path):
    """A vorticity generator cache holding a NaN weight is never used: a warning names the file, the model is
    retrained, and the fresh weights (written back atomically) are finite."""
    from workbench.fields import problem as fp

    prob = fp.VorticityProblem(grid=16, iterations=1, width=4, modes=2, layers=1, sim_grid=16, warmup=0.5,
                               cache_dir=str(tmp_path))
    prob._snapshots = torch.randn(16, 16, 16, generator=torch.Generator().manual_seed(0))  # no solver run needed
    prob.generator()
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith("vorticity_gen_")]
    state = torch.load(path, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name].view(-1)[0] = float("nan")
    torch.save(state, path)
    fp._MODELS.clear()  # forget the in-memory copy: the next call reads the file
    with pytest.warns(RuntimeWarning, match=rf"{re.escape(str(path))} is unusable .*non-finite weights"):
        gen = prob.generator()
    assert all(torch.isfinite(p).all() for p in gen.parameters())
    assert all(torch.isfinite(v).all() for v in torch.load(path, weights_only=True)["model"].values())

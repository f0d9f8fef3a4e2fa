"""`workbench report` and `workbench sweep` end to end, checked against direct API calls.

Each papermill run starts a kernel and imports torch (~5 s), so the grids are tiny: notebook 02 with one solver and
one schedule per run, NFE 4 and 8, 64 (or 32) particles. The recorded errors must equal
``Experiment(...).run().error`` — the same quantity through the library's front door — to 1e-9.
"""
import functools
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.experiment import Experiment

from . import NOTEBOOK_DIR

NB02 = NOTEBOOK_DIR / "02_solver_shootout.ipynb"


@functools.lru_cache(maxsize=None)
def direct_error(solver: str, nfe: int, n_samples: int, schedule: str = "uniform") -> float:
    exp = Experiment(interpolant="linear", solver=solver, schedule=schedule, nfe=nfe, data="gmm2d",
                     n_samples=n_samples, seed=0, dtype="float64", keep_trajectory=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook does: tiny problems, and a shared CPU punishes spinning threads
    try:
        return exp.run().error
    finally:
        torch.set_num_threads(threads)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(b), 1e-12)


def test_report_runs_validates_and_records(tmp_path, capsys):
    rc = main(["report", str(NB02), "-p", "solvers", "heun", "-p", "schedules", "uniform", "-p", "nfe_list", "4,8",
               "-p", "n_samples", "64", "--out-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    (folder,) = list(tmp_path.iterdir())
    assert re.fullmatch(r"02_solver_shootout-\d{8}-\d{6}", folder.name)
    names = {p.name for p in folder.iterdir()}
    assert {"02_solver_shootout.ipynb", "02_solver_shootout.html", "run.json", "results.json"} <= names
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "ok" and run["error"] is None
    assert run["parameters"] == {"solvers": ["heun"], "schedules": ["uniform"], "nfe_list": [4, 8], "n_samples": 64}
    assert run["effective_parameters"]["interpolant"] == "linear" and run["effective_parameters"]["seed"] == 0
    assert {"python", "torch", "papermill", "nbconvert", "interpolant-workbench"} <= set(run["versions"])
    assert run["notebook_sha256"] == hashlib.sha256(NB02.read_bytes()).hexdigest() and "commit" in run["git"]
    results = json.loads((folder / "results.json").read_text())
    assert set(results) >= {"error_nfe4", "error_nfe8", "order"}
    assert _close(results["error_nfe4"], direct_error("heun", 4, 64))
    assert _close(results["error_nfe8"], direct_error("heun", 8, 64))
    assert "injected-parameters" in (folder / "02_solver_shootout.ipynb").read_text()
    html = (folder / "02_solver_shootout.html").read_text()
    assert "<html" in html[:2000].lower()
    assert 'id="workbench-provenance"' in html and "<b>ok</b>" in html and run["notebook_sha256"] in html
    assert "<math " in html and "mathjax" not in html.lower()  # maths readable offline


@pytest.mark.parametrize("args, field", [
    (["-p", "nfe", "8"], "nfe"),                      # unknown (the notebook has nfe_list)
    (["-p", "n_samples", "many"], "n_samples"),       # ill-typed
    (["-p", "nfe_list", "4,eight"], "nfe_list"),
])
def test_report_rejects_bad_parameters_before_running(tmp_path, capsys, args, field):
    rc = main(["report", str(NB02), *args, "--out-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"error: {field}" in err
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing written


def _rows(sweep_dir: Path):
    data = json.loads((sweep_dir / "summary.json").read_text())
    return data, data["rows"]


def test_sweep_local_cluster_collects_and_survives_a_failure(tmp_path, capsys):
    # dopri5 passes every check made before a kernel starts (an unknown name no longer does) and then runs out of
    # its 4-evaluation budget inside the kernel: a failure only the run can find
    rc = main(["sweep", str(NB02), "-g", "solvers", "euler", "heun", "dopri5", "-p", "schedules", "uniform",
               "-p", "nfe_list", "4,8", "-p", "n_samples", "64", "--no-html", "--no-progress",
               "--out-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1, out  # one run failed, the others finished
    (sweep_dir,) = list(tmp_path.iterdir())
    data, rows = _rows(sweep_dir)
    assert data["info"]["scheduler"] == "LocalCluster" and data["varying"] == ["solvers"]
    assert [(r["solvers"], r["status"]) for r in rows] == [(["euler"], "ok"), (["heun"], "ok"), (["dopri5"], "failed")]
    for r in rows[:2]:
        for nfe in (4, 8):
            assert _close(r[f"error_nfe{nfe}"], direct_error(r["solvers"][0], nfe, 64))
    assert rows[0]["error_nfe8"] > rows[1]["error_nfe8"]  # Heun beats Euler at equal NFE here
    assert "BudgetExceededError" in rows[2]["error"] and "budget" in rows[2]["error"]
    failed = data["runs"][2]
    partial = json.loads(Path(failed["notebook"]).read_text())  # the partial notebook is kept
    assert any(o.get("output_type") == "error" for c in partial["cells"] for o in c.get("outputs", []))
    md = (sweep_dir / "summary.md").read_text()
    assert "| run | solvers | status | error_nfe4 | error_nfe8 | order | error |" in md
    assert "Failed runs:" in md and "run 2" in md
    assert (sweep_dir / "summary.png").stat().st_size > 0 and (sweep_dir / "summary.csv").exists()
    assert "run 2 failed: cell" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def loopback_cluster(tmp_path):
    """A `dask scheduler` and one `dask worker` on 127.0.0.1, started as subprocesses and stopped afterwards."""
    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sched = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                              "--dashboard-address", "127.0.0.1:0"],
                             cwd=str(logs), stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT, env=env)
    worker = None
    try:
        worker = subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host",
                                   "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                   "--local-directory", str(logs)],
                                  cwd=str(logs), stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT,
                                  env=env)
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout=10) as c:
                    c.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or sched.poll() is not None:
                    raise RuntimeError("loopback Dask cluster did not start:\n"
                                       + (logs / "scheduler.log").read_text()[-2000:]
                                       + (logs / "worker.log").read_text()[-2000:])
                time.sleep(0.5)
        yield address
    finally:
        if worker is not None:
            _stop(worker)
        _stop(sched)


def test_sweep_on_an_existing_scheduler(tmp_path, loopback_cluster, capsys):
    out_root = tmp_path / "reports"
    rc = main(["sweep", str(NB02), "-g", "solvers", "euler", "heun", "-p", "schedules", "uniform",
               "-p", "nfe_list", "4", "-p", "n_samples", "32", "--no-html", "--no-progress",
               "--scheduler", loopback_cluster, "--out-root", str(out_root)])
    out = capsys.readouterr().out
    assert rc == 0, out
    (sweep_dir,) = list(out_root.iterdir())
    data, rows = _rows(sweep_dir)
    assert data["info"]["scheduler"] == loopback_cluster and data["info"]["workers"] == 1
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        assert _close(r["error_nfe4"], direct_error(r["solvers"][0], 4, 32))
    assert f"on {loopback_cluster} (1 workers)" in out

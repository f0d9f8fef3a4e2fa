"""A sweep on an external Dask cluster that loses its workers (issue 18, defect 3).

One `dask scheduler` on 127.0.0.1 (dashboard on 127.0.0.1:0) and one worker without a nanny (so killing its
process kills the worker). Two runs of a tiny notebook whose cell waits while a "hold" file exists:

1. run 0 finishes; run 1 is held; a second worker joins and the first is SIGKILLed mid-run;
2. the new worker restarts run 1 (the unfinished one) and never reruns run 0, whose result lived on the killed
   worker (its folder is untouched);
3. the new worker, now the only one, is SIGKILLed too and none comes back: the sweep stops with one clear line (what happened, what to
   do) within ``--worker-timeout`` seconds; run 1 is marked "lost", run 0 kept.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from workbench.cli import main

WORKER_TIMEOUT = 3.0


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('hold: str = "none"  # wait while this file exists')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, time\nwhile hold != 'none' and os.path.exists(hold):\n    time.sleep(0.05)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class _Cluster:
    """A loopback scheduler and nanny-less workers started on demand; everything stopped at the end."""

    def __init__(self, logs: Path):
        self.dask = str(Path(sys.executable).with_name("dask"))
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.logs = logs
        repo = str(Path(__file__).resolve().parents[2])  # the workers import this checkout's workbench
        self.env = {**os.environ, "OMP_NUM_THREADS": "1",
                    "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
        self.procs: list = []
        self.scheduler = self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                                   "--no-dashboard", "--dashboard-address", "127.0.0.1:0"])

    def _start(self, name: str, argv: list) -> subprocess.Popen:
        proc = subprocess.Popen([self.dask, *argv], cwd=str(self.logs), env=self.env, stderr=subprocess.STDOUT,
                                stdout=open(self.logs / f"{name}-{len(self.procs)}.log", "w"))
        self.procs.append(proc)
        return proc

    def worker(self) -> subprocess.Popen:
        return self._start("worker", ["worker", self.address, "--no-nanny", "--nthreads", "1", "--host",
                                      "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                      "--local-directory", str(self.logs)])

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as c:
            c.wait_for_workers(n, timeout=timeout)

    def close(self) -> None:
        for p in reversed(self.procs):
            _stop(p)


@pytest.fixture
def cluster(tmp_path):
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    c = _Cluster(logs)
    try:
        yield c
    finally:
        c.close()


def _status(path: Path):
    try:
        return json.loads(path.read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _wait(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sweep_loses_its_only_worker(tmp_path, cluster, capsys):
    nb = _notebook(tmp_path / "hold.ipynb")
    hold = tmp_path / "hold1"
    hold.touch()  # run 1 waits while this exists: it is mid-run whenever a worker is killed
    root = tmp_path / "reports"
    first = cluster.worker()
    cluster.wait_for_workers(1)
    events: dict = {}

    def choreography():
        try:
            run_json = lambda i: next(root.glob(f"sweep-*/run-{i:03d}-*/run.json"), Path("/nonexistent"))  # noqa: E731
            _wait(lambda: _status(run_json(0)) == "ok" and _status(run_json(1)) == "running", "run 0 done, 1 running")
            time.sleep(0.5)  # run 1's kernel is inside its held cell
            events["run0"] = run_json(0).read_bytes()
            events["run1-first"] = run_json(1).read_bytes()
            cluster.worker()  # a second worker joins (started first: a slow start must not race the timeout)
            cluster.wait_for_workers(2)
            first.kill()  # SIGKILL mid-run: the new worker must take run 1 again, and only run 1
            first.wait(10)
            _wait(lambda: run_json(1).read_bytes() != events["run1-first"], "run 1 restarted on the new worker")
            time.sleep(0.5)
            cluster.procs[-1].kill()  # the only worker again; nobody comes back
            events["killed"] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            events["error"] = exc
            for p in cluster.procs[1:]:
                p.kill()

    t = threading.Thread(target=choreography, daemon=True)
    t.start()
    rc = main(["sweep", str(nb), "-g", "hold", "none", str(hold), "--no-html", "--no-progress",
               "--scheduler", cluster.address, "--worker-timeout", str(WORKER_TIMEOUT), "--out-root", str(root)])
    ended = time.monotonic()
    t.join(5)
    err = capsys.readouterr().err.strip()
    assert "error" not in events, events.get("error")
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for words in ("no worker for 3 s", "last worker was lost", f"dask worker {cluster.address}", "1/2 runs finished"):
        assert words in err, err
    assert ended - events["killed"] < WORKER_TIMEOUT + 5  # the message came within the timeout (plus polling)
    (sweep_dir,) = root.iterdir()
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["info"]["status"] == "lost" and "no worker" in summary["info"]["error"]
    assert [r["status"] for r in summary["rows"]] == ["ok", "lost"]
    run0 = next(sweep_dir.glob("run-000-*/run.json"))
    assert run0.read_bytes() == events["run0"]  # the rejoining worker did not rerun or rewrite run 0


def test_a_finished_point_is_answered_from_its_run_json(tmp_path):
    """A task resubmitted for a point already finished (ok or failed) returns its record, runs nothing and leaves
    the folder as it was; a "running" record (a run cut short by a lost worker) is run again."""
    from workbench.reporting.sweep import _finished_record, _sweep_job

    out = tmp_path / "run-000"
    out.mkdir()
    rec = {"status": "ok", "parameters": {"hold": "none"}, "effective_parameters": {"hold": "none"},
           "results": {"x": 1.5}, "error": None, "seconds": 2.0, "executed_notebook": str(out / "nb.ipynb")}
    (out / "run.json").write_text(json.dumps(rec))
    before = (out / "run.json").read_bytes()
    got = _sweep_job(str(tmp_path / "no-such.ipynb"), {"hold": "none"}, str(out), False, None, None)
    assert got["reused"] and got["status"] == "ok" and got["results"] == {"x": 1.5}
    assert (out / "run.json").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["run.json"]
    assert _finished_record(str(out), {"hold": "other"}) is None  # other parameters: not this point
    (out / "run.json").write_text(json.dumps({**rec, "status": "running"}))
    assert _finished_record(str(out), {"hold": "none"}) is None

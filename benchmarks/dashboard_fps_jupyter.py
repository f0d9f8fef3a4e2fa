"""Painted frames with new data per second in the dashboard's **Jupyter front** (the Panel app in a JupyterLab
notebook cell through :mod:`widgets.ipywidget` / jupyter_bokeh), and the sampler's slowdown while watched (a
measurement, not a test).

The same measurement as :mod:`benchmarks.dashboard_fps` (its hook, run and row helpers are imported from there),
with the page being a notebook instead of ``panel serve``: starts ``jupyter lab`` headless on a free loopback port
with a random token, in a temporary directory holding one generated notebook per measured run, whose one cell is ::

    from widgets import jupyter_dashboard
    jupyter_dashboard(data="gmm2d", solver="euler", nfe=200, particles=2000, seed=1)

For each configuration and repeat it opens that notebook in Debian's headless chromium (a fresh kernel), runs the
cell, waits until the dashboard's Bokeh document (``Bokeh.documents``, one of several on a notebook page) holds the
particle source and its first run (the warm-up: it computes the cached references) says ``done``, then installs
the hook, presses Run and waits for ``done`` (:func:`benchmarks.dashboard_fps.measure_run`). The kernel is shut
down after each run; the server and every kernel are stopped at the end, also on errors.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dashboard_fps_jupyter.py [--particles 2000] [--nfe 200]
        [--solvers euler,rk4] [--repeats 3] [--widget batched|pn.ipywidget]
        [--md benchmarks/results/dashboard_fps_jupyter.md --label "..."]

Target (issue): the Jupyter front >= 10 updates/s on 2 cores (read here both as data updates/s and, the stricter
reading, as painted frames with new data per second).
Numbers depend on the machine's load (other processes share the 2 cores): compare rows of one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a namespace package of the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.dashboard_fps import (  # noqa: E402
    CHROMIUM_ARGS, READY, free_port, measure_run, medians, unwatched, write_markdown,
)

#: the notebook page is up and its kernel is idle (needs ``--LabApp.expose_app_in_browser``)
KERNEL_IDLE = """() => { const w = window.jupyterapp && jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle'; }"""


def notebook(data: str, solver: str, nfe: int, particles: int, widget: str = "batched") -> dict:
    """A one-cell notebook showing the dashboard for this configuration: as the workbench shows it
    (``widget="batched"``: :mod:`widgets.ipywidget`, one patch per event-loop turn) or, for comparison, through
    Panel's own ``pn.ipywidget`` (one patch message per document change)."""
    call = f"jupyter_dashboard(data={data!r}, solver={solver!r}, nfe={nfe}, particles={particles}, seed=1)"
    if widget == "batched":
        src = f"from widgets import jupyter_dashboard\n{call}"
    else:
        src = f"import panel as pn\nfrom widgets import jupyter_dashboard\npn.ipywidget({call}.layout)"
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "dashboard", "metadata": {},
                       "outputs": [], "source": src}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


class Lab:
    """``jupyter lab`` in ``workdir`` on a free loopback port with a random token; :meth:`stop` ends it and its
    kernels (kernels run in sessions of their own: shut down through the API, then killed by pid if left)."""

    def __init__(self, workdir: str, env: dict):
        self.dir, self.port, self.token = workdir, free_port(), secrets.token_hex(16)
        rt = os.path.join(workdir, ".rt")
        env = dict(env, JUPYTER_RUNTIME_DIR=rt, JUPYTER_CONFIG_DIR=os.path.join(workdir, ".cfg"))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={workdir}", "--ServerApp.terminals_enabled=False",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",
               f"--LabApp.user_settings_dir={os.path.join(workdir, '.settings')}",
               f"--LabApp.workspaces_dir={os.path.join(workdir, '.workspaces')}"]
        self.log = open(os.path.join(workdir, "server.log"), "w")
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 120.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}); see {self.log.name}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s")

    def url(self, name: str) -> str:
        # `reset`: an empty workspace (only this notebook open, not the previous run's)
        return f"{self.base}/lab/tree/{name}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for k in self.api("/api/kernels") or []:
            try:
                self.api(f"/api/kernels/{k['id']}", method="DELETE")
            except OSError:
                pass

    def _kernel_pids(self):
        """Processes started for this server's kernels (their command line names our runtime directory)."""
        rt = os.path.join(self.dir, ".rt").encode()
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                try:
                    with open(f"/proc/{d}/cmdline", "rb") as fh:
                        if rt in fh.read():
                            yield int(d)
                except OSError:
                    pass

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.shutdown_kernels()
        except Exception:  # the server is already gone or not answering: the kill below still runs
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        for pid in self._kernel_pids():  # left over (e.g. the server was killed): their own process groups
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=2000)
    ap.add_argument("--nfe", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--solvers", default="euler,rk4")
    ap.add_argument("--data", default="gmm2d")
    ap.add_argument("--widget", choices=("batched", "pn.ipywidget"), default="batched",
                    help="the notebook's widget: the workbench's (default) or Panel's pn.ipywidget, for comparison")
    ap.add_argument("--json", default=str(ROOT / "artifacts" / "dashboard_fps_jupyter.json"))
    ap.add_argument("--md", default=None, help="append a markdown table to this file")
    ap.add_argument("--label", default="", help="the table's heading")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (server log, notebooks)")
    args = ap.parse_args()
    import torch
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)
    # the kernel imports this checkout's widgets/workbench; one thread per process, as for `panel serve`
    pythonpath = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=pythonpath)
    workdir = tempfile.mkdtemp(prefix="wb-fps-jupyter-")
    lab = Lab(workdir, env)
    rows = []
    try:
        lab.wait_ready()
        configs = [(args.data, s, args.nfe) for s in args.solvers.split(",")]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            try:
                for data, solver, nfe in configs:
                    for rep in range(args.repeats):
                        free = unwatched(data, solver, nfe, args.particles)
                        name = f"dashboard_{solver}_{rep}.ipynb"
                        with open(os.path.join(workdir, name), "w") as fh:
                            json.dump(notebook(data, solver, nfe, args.particles, args.widget), fh)
                        page = b.new_page(viewport={"width": 1280, "height": 800})
                        page.set_default_timeout(120_000)
                        page.goto(lab.url(name))
                        page.wait_for_function(KERNEL_IDLE)
                        page.evaluate("() => jupyterapp.commands.execute('notebook:run-all-cells')")
                        page.wait_for_function(READY)
                        page.locator(".status-a").filter(has_text="done").wait_for(timeout=300_000)  # warm-up run
                        row = measure_run(page, data, solver, nfe, args.particles, rep, free)
                        row["front"] = f"jupyterlab ({args.widget})"
                        rows.append(row)
                        page.close()
                        lab.shutdown_kernels()
            finally:
                b.close()
    finally:
        lab.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(rows, fh, indent=2)
    for solver, med in medians(rows).items():
        print(f"{solver} median: painted {med['painted_per_s']:.1f}/s, updates {med['updates_per_s']:.1f}/s, "
              f"slowdown x{med['slowdown']:.2f}", flush=True)
    if args.md:
        write_markdown(rows, args.md, args.label, args.particles, args.nfe)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Painted frames with new data per second in the live dashboard, and the sampler's slowdown while watched
(a measurement, not a test).

Starts ``panel serve widgets/app.py`` on a free loopback port and opens it in Debian's headless chromium. For
each configuration (2 000 particles, NFE 200 by default) it first loads the page and lets one run finish (the
shared references are then cached), installs the JS hook below, presses Run and waits for ``done``. The hook
counts

* **data updates**: changes of the particle ``ColumnDataSource`` (``points_a``) arriving in the browser;
* **painted frames with new data**: ``requestAnimationFrame`` callbacks that see the update counter changed
  since the previous callback (a frame the browser actually painted carrying at least one new state; two updates
  between two paints count once);

from the first to the last update of the run. The sampler's speed while *watched* is the run's own steps/s
(steps / wall, from its status line); *unwatched* is the same configuration run by
:class:`widgets.live.LiveRun` in this process with no page attached (one warm-up run first, as in the page),
interleaved with the watched runs. ``slowdown = unwatched steps/s / watched steps/s``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dashboard_fps.py [--particles 2000] [--nfe 200] [--repeats 2]
        [--md benchmarks/results/dashboard_fps.md --label "after"]

Targets (issue 17): >= 20 painted frames/s with new data on 2 cores, slowdown <= 1.3x.
Numbers depend on the machine's load (other processes share the 2 cores): compare rows of one run only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: the dashboard's particle source is on the page (in every Bokeh document: a notebook page holds several)
READY = ("() => window.Bokeh && Bokeh.documents.some(d => [...d._all_models.values()]"
         ".some(m => m.name === 'points_a'))")
HOOK = """() => { const w = window; w.__wb = {upd: [], painted: [], raf: 0, seen: 0, n: 0};
  const ss = Bokeh.documents.flatMap(d => [...d._all_models.values()])
    .filter(m => m.type === 'ColumnDataSource' && m.name === 'points_a');
  if (ss.length !== 1) throw new Error(`expected one points_a source, found ${ss.length}`);
  const s = ss[0];
  s.properties.data.change.connect(() => { w.__wb.n++; w.__wb.upd.push(performance.now()); });
  const f = (t) => { w.__wb.raf++; if (w.__wb.n !== w.__wb.seen) { w.__wb.seen = w.__wb.n; w.__wb.painted.push(t); }
                     requestAnimationFrame(f); };
  requestAnimationFrame(f); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rate(ts) -> float:
    """Events per second over the span of ``ts`` (ms): ``(n - 1) / (t_last - t_first)``."""
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return float("nan")
    return (len(ts) - 1) / ((ts[-1] - ts[0]) / 1000)


def _p90_gap(ts) -> float:
    gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
    return gaps[int(0.9 * (len(gaps) - 1))] if gaps else float("nan")


def unwatched(data: str, solver: str, nfe: int, particles: int) -> float:
    """Steps/s of the same run in this process, no page attached (after one warm-up run)."""
    from widgets.live import LiveRun
    from widgets.state import DashboardConfig

    cfg = DashboardConfig(data=data, solver=solver, nfe=nfe, particles=particles, seed=1)
    for _ in range(2):  # the first run computes (and caches) the references, as the page's first run does
        run = LiveRun.from_config(cfg).start()
        run.join(600)
    f = run.latest()[1]
    return f["step"] / f["wall"]


def measure_run(page, data: str, solver: str, nfe: int, particles: int, rep: int, free: float) -> dict:
    """One measured run on a page whose dashboard has finished its warm-up run: install :data:`HOOK`, press Run,
    wait for ``done``; the row (rates, gaps, watched vs unwatched ``free`` steps/s) is printed and returned."""
    from widgets.app import PERIOD_MS

    load = os.getloadavg()[0]
    page.evaluate(HOOK)
    page.locator(".w-run button").click()
    # the previous run's "done" is still shown until the new run's first frame arrives
    page.wait_for_function("() => window.__wb.n > 0", timeout=120_000)
    page.locator(".status-a").filter(has_text="done").wait_for(timeout=300_000)
    time.sleep(0.3)
    wb = page.evaluate("() => window.__wb")
    status = page.locator(".status-a p").inner_text()
    m_steps, m_wall = re.search(r"steps (\d+)", status), re.search(r"([0-9.]+) s ·", status)
    if m_steps is None or m_wall is None:
        raise RuntimeError(f"status line without steps/wall: {status!r}")
    steps, wall = int(m_steps.group(1)), float(m_wall.group(1))
    upd, painted = wb["upd"], wb["painted"]
    watched = steps / wall
    row = {"data": data, "solver": solver, "nfe": nfe, "particles": particles, "repeat": rep,
           "updates": len(upd), "updates_per_s": _rate(upd), "painted": len(painted),
           "painted_per_s": _rate(painted), "p90_gap_ms": _p90_gap(painted),
           "watched_steps_per_s": watched, "unwatched_steps_per_s": free,
           "slowdown": free / watched, "run_s": wall, "callback_cap_per_s": 1000 / PERIOD_MS, "load_avg_1m": load,
           "update_ms": upd, "painted_ms": painted}
    print(f"{data} {solver} NFE {nfe}: painted {row['painted_per_s']:.1f}/s ({len(painted)}), updates "
          f"{row['updates_per_s']:.1f}/s ({len(upd)}), p90 gap {row['p90_gap_ms']:.0f} ms, sampler "
          f"{watched:.0f} steps/s watched vs {free:.0f} unwatched (x{row['slowdown']:.2f}), run "
          f"{wall:.2f} s, load {load:.1f}", flush=True)
    return row


def write_markdown(rows, path: str, label: str, particles: int, nfe: int) -> None:
    """Append the rows and the per-solver medians to ``path`` as a markdown table under a ``### label`` heading."""
    from widgets.app import PERIOD_MS

    lines = [f"\n### {label or 'run'} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{particles} particles, NFE {nfe}, periodic callback {PERIOD_MS} ms, load average "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n",
             "| solver | painted frames with new data /s | data updates /s | p90 gap between painted frames (ms) "
             "| sampler steps/s watched | unwatched | slowdown | run (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['solver']} | {r['painted_per_s']:.1f} | {r['updates_per_s']:.1f} | "
                     f"{r['p90_gap_ms']:.0f} | {r['watched_steps_per_s']:.0f} | {r['unwatched_steps_per_s']:.0f} | "
                     f"{r['slowdown']:.2f}x | {r['run_s']:.2f} |")
    for solver, med in medians(rows).items():
        lines.append(f"| {solver} median | {med['painted_per_s']:.1f} | {med['updates_per_s']:.1f} | | | | "
                     f"{med['slowdown']:.2f}x | |")
    with open(path, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def medians(rows) -> dict:
    """Per solver (sorted by name): medians of painted frames/s, updates/s and slowdown."""
    out = {}
    for solver in sorted({r["solver"] for r in rows}):
        rs = [r for r in rows if r["solver"] == solver]
        out[solver] = {k: statistics.median(r[k] for r in rs) for k in ("painted_per_s", "updates_per_s", "slowdown")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=2000)
    ap.add_argument("--nfe", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--solvers", default="euler,rk4")
    ap.add_argument("--json", default=str(ROOT / "artifacts" / "dashboard_fps.json"))
    ap.add_argument("--md", default=None, help="append a markdown table to this file")
    ap.add_argument("--label", default="", help="the table's heading (e.g. 'before', 'after')")
    args = ap.parse_args()
    import torch
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(ROOT / "widgets" / "app.py"), "--port",
                             str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}/app"
    rows = []
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base, timeout=5)
                break
            except OSError:
                time.sleep(0.3)
        configs = [("gmm2d", s, args.nfe) for s in args.solvers.split(",")]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(120_000)
            for data, solver, nfe in configs:
                for rep in range(args.repeats):
                    free = unwatched(data, solver, nfe, args.particles)
                    page.goto(f"{base}?data={data}&solver={solver}&nfe={nfe}&particles={args.particles}&seed=1")
                    page.wait_for_function(READY)
                    page.locator(".status-a").filter(has_text="done").wait_for(timeout=300_000)
                    rows.append(measure_run(page, data, solver, nfe, args.particles, rep, free))
            b.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(rows, fh, indent=2)
    if args.md:
        write_markdown(rows, args.md, args.label, args.particles, args.nfe)
    return 0


if __name__ == "__main__":
    sys.exit(main())

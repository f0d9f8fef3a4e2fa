"""Redraw rate of the live dashboard with 2 000 particles (a measurement, not a test).

Starts ``panel serve widgets/app.py`` on a free loopback port, opens it in Debian's headless chromium, and for
each configuration records in the page the time of every update of the particle ``ColumnDataSource`` (the
JS hook below) while the run streams. Reports, side by side from one run on this machine:

* redraws/s in the browser (updates of the 2 000-point source; ``(n-1)/(t_last-t_first)``),
* the sampler's own steps/s for the same run (the server-side upper bound: one frame per step at most),
* the periodic callback's cap (1000 / PERIOD_MS frames/s),
* requestAnimationFrame fps of the page.

    .venv/bin/python benchmarks/dashboard_fps.py [--particles 2000] [--json artifacts/dashboard_fps.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOOK = """() => { window.__wb_t = []; window.__wb_raf = 0;
  const s = [...Bokeh.documents[0]._all_models.values()].find(m => m.type === 'ColumnDataSource' && m.name === 'points_a');
  s.properties.data.change.connect(() => window.__wb_t.push(performance.now()));
  const f = () => { window.__wb_raf++; requestAnimationFrame(f); }; requestAnimationFrame(f); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=2000)
    ap.add_argument("--json", default=str(ROOT / "artifacts" / "dashboard_fps.json"))
    ap.add_argument("--screenshot", default=None, help="also save a screenshot of a live (mid-run) frame here")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from widgets.app import PERIOD_MS

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(ROOT / "widgets" / "app.py"), "--port",
                             str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/app"
    rows = []
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base, timeout=5)
                break
            except OSError:
                time.sleep(0.3)
        configs = [("gmm2d", "euler", 200), ("gmm2d", "rk4", 200), ("gaussian", "euler", 200)]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            for data, solver, nfe in configs:
                # load with a 1-NFE run, install the hook, then start the measured run with the Run button
                page.goto(f"{base}?data={data}&solver={solver}&nfe={nfe}&particles={args.particles}&seed=1")
                page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                                       "[...Bokeh.documents[0]._all_models.values()].some(m => m.name === 'points_a')")
                page.locator(".status-a").filter(has_text="done").wait_for(timeout=120_000)
                page.evaluate(HOOK)
                page.locator(".w-run button").click()
                page.locator(".status-a").filter(has_text="running").wait_for(timeout=60_000)
                if args.screenshot and solver == "euler" and data == "gmm2d":
                    time.sleep(1.0)
                    page.screenshot(path=args.screenshot, full_page=True)
                page.locator(".status-a").filter(has_text="done").wait_for(timeout=300_000)
                ts = page.evaluate("() => window.__wb_t")
                raf = page.evaluate("() => window.__wb_raf")
                status = page.locator(".status-a p").inner_text()
                steps = int(re.search(r"steps (\d+)", status).group(1))
                wall = float(re.search(r"([0-9.]+) s ·", status).group(1))
                span = (ts[-1] - ts[0]) / 1000 if len(ts) > 1 else float("nan")
                row = {"data": data, "solver": solver, "nfe": nfe, "particles": args.particles,
                       "redraws": len(ts), "redraws_per_s": (len(ts) - 1) / span if span > 0 else None,
                       "sampler_steps_per_s": steps / wall, "callback_cap_per_s": 1000 / PERIOD_MS,
                       "raf_fps": raf / span if span > 0 else None, "status": status}
                rows.append(row)
                print(f"{data:9s} {solver:6s} NFE {nfe}: {row['redraws_per_s']:.1f} redraws/s in the browser "
                      f"({len(ts)} over {span:.1f} s), sampler {row['sampler_steps_per_s']:.1f} steps/s, "
                      f"cap {row['callback_cap_per_s']:.0f}/s, rAF {row['raf_fps']:.0f} fps", flush=True)
            b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Solver vs FNO vs interpolant refiner on 2-D Kolmogorov flow (issue 4), plus the unconditional generator grid.

Run (≈ 15 min on one CPU thread; data cached in data/cache/):

    .venv/bin/python benchmarks/fields_refiner.py            # full default run
    .venv/bin/python benchmarks/fields_refiner.py --quick    # ~1 min smoke run

Writes benchmarks/results/fields/{spectra.png, spectra.csv, rollout_error.csv, generator.csv, summary.md}.
Timings are measured in the same run, side by side; the machine may be shared, so compare ratios only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from workbench.data.grf import gaussian_random_field  # noqa: E402
from workbench.data.navier_stokes import NavierStokes2D  # noqa: E402
from workbench.fields.pipeline import SpectraConfig, run_spectra_comparison, summary_markdown, write_outputs  # noqa: E402


def solver_timing(n: int = 64, batch: int = 8, sim_time: float = 2.0) -> str:
    """Wall time of the two integrators over the same simulated time (dt at the same CFL), as a Markdown table."""
    w0 = gaussian_random_field(batch, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0))
    rows = ["| integrator | dt | steps | wall s | relative |", "|---|---|---|---|---|"]
    times = {}
    # CN/AB2 is only conditionally stable for advection (AB2 has no imaginary-axis stability): it needs a smaller dt
    for integ, dt in (("rk4", 0.01), ("cnab2", 0.0025)):
        ns = NavierStokes2D(n=n, nu=2e-3, drag=0.1, forcing_amplitude=1.0, dt=dt, integrator=integ)
        steps = int(round(sim_time / ns.dt))
        t0 = time.perf_counter()
        ns.simulate(w0, steps, record_every=steps)
        times[integ] = (ns.dt, steps, time.perf_counter() - t0)
    base = times["rk4"][2]
    for integ, (dt, steps, s) in times.items():
        rows.append(f"| {integ} | {dt:g} | {steps} | {s:.2f} | {s / base:.2f} |")
    return "\n".join(rows) + "\n"


def append_timing(summary_path: str, n: int, threads: int) -> str:
    """Measure :func:`solver_timing` and append it to the summary Markdown."""
    timing = solver_timing(n=n)
    with open(summary_path, "a") as f:
        f.write(f"\nPseudo-spectral solver, {n}² batch 8, 2 time units, torch threads={threads}:\n\n")
        f.write(timing)
    return timing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out-dir", default=os.path.join("benchmarks", "results", "fields"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timing-only", action="store_true", help="only append the solver timing table to summary.md")
    ap.add_argument("--sim-grid", type=int, default=None,
                    help="simulation grid of the data (default SpectraConfig's 64; 128 resolves shells <= 15 to 0.1 %%)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.timing_only:
        print(append_timing(os.path.join(args.out_dir, "summary.md"), 64, args.threads))
        return 0
    cfg = SpectraConfig.quick() if args.quick else SpectraConfig()
    if args.sim_grid is not None:
        cfg.sim_grid = args.sim_grid
    res = run_spectra_comparison(cfg, progress=True, with_generator=True)
    paths = write_outputs(res, args.out_dir)
    timing = append_timing(paths["summary"], cfg.sim_grid, args.threads)
    print(summary_markdown(res))
    print(timing)
    for k, p in paths.items():
        print(f"wrote {k}: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

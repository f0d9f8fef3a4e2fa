"""Time convergence of ``decaying_config``: vorticity error of IF-RK4 runs at several dt against a run at
dt/4 of the finest, over the config's whole window (frames 0..99, t = 0..19.8), same initial field.

Run (≈ 2–4 min, one thread):  .venv/bin/python benchmarks/fields_decaying_dt.py
Writes benchmarks/results/fields/decaying_dt.md.
"""
from __future__ import annotations

import os
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from workbench.data.grf import gaussian_random_field  # noqa: E402
from workbench.data.navier_stokes import NavierStokes2D, decaying_config  # noqa: E402


def main() -> int:
    torch.set_num_threads(1)
    cfg = decaying_config(n_traj=2)
    t_end = (cfg.frames - 1) * cfg.frame_dt
    w0 = gaussian_random_field(cfg.n_traj, cfg.n, "matern", nu=cfg.init_nu, length_scale=cfg.init_length_scale,
                               std=cfg.init_std, generator=torch.Generator().manual_seed(cfg.seed))
    dts = (0.01, 0.005, 0.0025)
    ref_dt = dts[-1] / 4
    runs = {}
    for dt in dts + (ref_dt,):
        ns = NavierStokes2D(n=cfg.n, nu=cfg.nu, drag=cfg.drag, forcing_amplitude=cfg.forcing_amplitude,
                            forcing_wavenumber=cfg.forcing_wavenumber, dt=dt)
        r = int(round(cfg.frame_dt / dt))
        t0 = time.perf_counter()
        runs[dt] = ns.simulate(w0, (cfg.frames - 1) * r, record_every=r)
        cfl0 = float(ns.cfl(ns.to_hat(w0)))
        print(f"dt={dt:g}: {time.perf_counter() - t0:.1f} s, CFL at t=0 {cfl0:.3f}", flush=True)
    ref = runs[ref_dt]
    times = torch.arange(cfg.frames) * cfg.frame_dt
    err = {dt: ((runs[dt] - ref).flatten(2).norm(dim=-1) / ref.flatten(2).norm(dim=-1)).amax(0) for dt in dts}
    marks = [1.0, 5.0, 10.0, 15.0, float(times[-1])]
    idx = [int(round(t / cfg.frame_dt)) for t in marks]
    rows = ["| dt | " + " | ".join(f"t = {t:g}" for t in marks) + " | max over t ≤ %g |" % float(times[-1]),
            "|---|" + "---|" * (len(marks) + 1)]
    for dt in dts:
        rows.append(f"| {dt:g} | " + " | ".join(f"{float(err[dt][i]):.2e}" for i in idx)
                    + f" | {float(err[dt].max()):.2e} |")
    text = ("# decaying_config: time convergence\n\n"
            f"64², ν = {cfg.nu:g}, no forcing or drag, Matérn initial field (std {cfg.init_std:g}, length scale "
            f"{cfg.init_length_scale:g}, seed {cfg.seed}), batch {cfg.n_traj}, IF-RK4. Relative L2 error of the "
            f"vorticity (worst of the batch) against IF-RK4 at dt = {ref_dt:g}, at the config's frames "
            f"(frame_dt = {cfg.frame_dt:g}).\n\n" + "\n".join(rows) + "\n")
    out = os.path.join(REPO, "benchmarks", "results", "fields", "decaying_dt.md")
    with open(out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

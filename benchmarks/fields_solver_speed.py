"""Pseudo-spectral Navier–Stokes throughput: our torch solver side by side with jax-cfd's spectral solver.

Run (≈ 3–6 min on one CPU thread; jax-cfd comes from the ``bench`` extra, ``pip install jax[cpu] jax-cfd``):

    .venv/bin/python benchmarks/fields_solver_speed.py [--repeats 5] [--quick]

Writes benchmarks/results/fields/solver_speed.md and solver_speed.csv. The main process starts one worker process
per dtype (jax's float64 mode is process-wide, so float32 and float64 cannot share a process without jax
silently promoting float32 arrays); each worker pins itself to ONE CPU core, sets torch to one thread and XLA to
one intra-op thread, builds both solvers on the same initial fields and times them **interleaved** (ours, jax,
ours, jax, …), so load from other processes on a shared machine hits both alike; compare the ratio columns.

Same physics on both sides: 2π-periodic square, Kolmogorov forcing A sin(4y) x̂ (A = 1), ν = 2e-3, drag 0.1,
dt = 0.01, 2/3-rule dealiasing. Integrators differ by design: ours is integrating-factor RK4 (4 right-hand sides per
step), jax-cfd's spectral reference stepper is ``crank_nicolson_rk4`` (Carpenter–Kennedy low-storage RK4 with
Crank–Nicolson for the viscous term: 5 right-hand sides per step). The table gives field-steps/s (time steps of one
field per second) and two ratios: per step (what a user generating data at a given dt sees) and per right-hand
side (ours × 4 / jax × 5 in work units). jax-cfd runs jitted ``lax.scan`` loops over ``vmap``-ed steps (its own
``funcutils.repeated``), ours the Python loop of ``NavierStokes2D.step``.

A correctness check runs first (float64): the right-hand side of both solvers on the same state (our mask set to
jax-cfd's ``brick_wall_filter_2d``; jax-cfd's arrays are indexed [x, y], ours [y, x], so a field enters jax-cfd as
−ω with the forcing's axes swapped, a reflection x ↔ y that flips the vorticity's sign), and the max difference of
the vorticity after a short run at two dt (their integrators differ, so the gap must shrink with dt).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PHYS = dict(nu=2e-3, drag=0.1, forcing_amplitude=1.0, forcing_wavenumber=4, dt=0.01)
SIZES = (64, 128, 256)
BATCHES = (1, 8)
RHS_PER_STEP = {"ours": 4, "jax": 5}


def _one_thread_env() -> None:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def _jax_solver(n: int, dtype: str, mask=None, dt: float = PHYS["dt"]):
    """A jitted ``steps``-step function of jax-cfd's spectral NS (vmapped over the batch), and the equation."""
    import jax
    import jax.numpy as jnp
    from jax_cfd.base import forcings, funcutils, grids
    from jax_cfd.spectral import equations, time_stepping

    grid = grids.Grid((n, n), domain=((0, 2 * math.pi), (0, 2 * math.pi)))
    # ours: f_x = A sin(k y) with y on axis -2; jax-cfd indexes [x, y], so the same array seen by jax-cfd has the
    # axes swapped: the force is along jax's y and varies with jax's x (swap_xy), sampled at the nodes (offset 0)
    forcing = lambda g: forcings.kolmogorov_forcing(g, scale=PHYS["forcing_amplitude"], k=PHYS["forcing_wavenumber"],
                                                    swap_xy=True, offsets=((0.0, 0.0), (0.0, 0.0)))
    eq = equations.NavierStokes2D(viscosity=PHYS["nu"], grid=grid, drag=PHYS["drag"], smooth=True, forcing_fn=forcing)
    if mask is not None:
        eq.filter_ = jnp.asarray(mask)
    step = time_stepping.crank_nicolson_rk4(eq, dt)
    vstep = jax.vmap(step)

    def make(steps: int):
        return jax.jit(funcutils.repeated(vstep, steps))

    return make, eq


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def agreement() -> dict:
    """RHS and short-run agreement of our solver and jax-cfd's (float64, 64², batch 2, identical masks)."""
    import jax.numpy as jnp
    import numpy as np
    import torch
    from jax_cfd.spectral import utils as jsu
    from jax_cfd.base import grids

    from workbench.data.grf import gaussian_random_field
    from workbench.data.navier_stokes import NavierStokes2D

    n = 64
    grid = grids.Grid((n, n), domain=((0, 2 * math.pi), (0, 2 * math.pi)))
    # one mask on both sides: ours (|k_x|, |k_y| < N/3, even under k -> -k) given to jax-cfd, and jax-cfd's own
    # brick-wall filter (keeps k_y = -N/3 but not +N/3) given to ours, which then takes its reference path
    masks = {"ours": NavierStokes2D(n=n).mask.numpy(), "jax": np.asarray(jsu.brick_wall_filter_2d(grid))}
    w0 = gaussian_random_field(2, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0))
    out = {}
    for (name, jmask), dt in ((("ours", masks["ours"]), 0.01), (("ours", masks["ours"]), 0.0025),
                              (("jax", masks["jax"]), 0.01)):
        ns = NavierStokes2D(n=n, **{**PHYS, "dt": dt})
        ns.set_mask(torch.from_numpy(jmask.copy()))
        wh = ns.to_hat(w0)
        _, eq = _jax_solver(n, "float64", mask=jmask, dt=dt)
        if dt == 0.01:
            ours_rhs = ns.nonlinear(wh).numpy()
            jax_rhs = -np.stack([np.asarray(eq.explicit_terms(jnp.asarray(-h))) for h in wh.numpy()])
            out[f"rhs_{name}_mask_max_rel_diff"] = float(np.abs(ours_rhs - jax_rhs).max() / np.abs(ours_rhs).max())
            out[f"{name}_mask_fast_path"] = bool(ns._fast)
            if name == "jax":
                continue
        steps = int(round(1.0 / dt))
        ours = ns.to_grid(ns.simulate_hat(wh, steps)).numpy()
        make, _ = _jax_solver(n, "float64", mask=jmask, dt=dt)
        wj = -np.asarray(jnp.fft.irfftn(make(steps)(jnp.asarray(-wh.numpy())), axes=(-2, -1)))
        out[f"run_t1_dt{dt:g}_max_rel_diff"] = float(np.abs(ours - wj).max() / np.abs(ours).max())
    return out


def worker(dtype: str, repeats: int, quick: bool) -> list:
    """Interleaved timings of ours and jax-cfd's step for every size and batch, in ``dtype`` (this process)."""
    _one_thread_env()
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp
    import torch

    torch.set_num_threads(1)
    from workbench.data.grf import gaussian_random_field
    from workbench.data.navier_stokes import NavierStokes2D

    rows = []
    if dtype == "float64":
        rows.append({"agreement": agreement()})
        print(json.dumps(rows[-1]), flush=True)
    cdt = jnp.complex64 if dtype == "float32" else jnp.complex128
    for n in (SIZES[:2] if quick else SIZES):
        for batch in BATCHES:
            ns = NavierStokes2D(n=n, dtype=dtype, **PHYS)
            w0 = gaussian_random_field(batch, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0),
                                       dtype=dtype)
            wh = ns.to_hat(w0)
            # ≈ 0.25 s per timing at the measured speeds
            steps = max(3, int(round(160 * (64 / n) ** 2.2 / batch ** 0.7)))
            if quick:
                steps = max(2, steps // 4)
            make, _ = _jax_solver(n, dtype)
            run = make(steps)
            x = jnp.asarray(-wh.numpy()).astype(cdt)
            y = run(x)
            y.block_until_ready()  # compile
            assert y.dtype == cdt, (y.dtype, cdt)
            ns.simulate_hat(wh, 2)  # warm-up (and compile, if enabled)
            t_ours, t_jax = [], []
            for _ in range(repeats):
                t_ours.append(_time(lambda: ns.simulate_hat(wh, steps)))
                t_jax.append(_time(lambda: run(x).block_until_ready()))
            ours = steps * batch / statistics.median(t_ours)
            jx = steps * batch / statistics.median(t_jax)
            row = {"n": n, "batch": batch, "dtype": dtype, "steps": steps, "ours": ours, "jax": jx,
                   "ratio_step": ours / jx, "ratio_rhs": ours * RHS_PER_STEP["ours"] / (jx * RHS_PER_STEP["jax"]),
                   "spread_ours": (max(t_ours) - min(t_ours)) / statistics.median(t_ours),
                   "spread_jax": (max(t_jax) - min(t_jax)) / statistics.median(t_jax)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def equal_accuracy(n: int = 64, t_end: float = 1.0) -> str:
    """IF-RK4 vs CN/AB2 at equal accuracy: error at t_end against an IF-RK4 dt = 1/1600 reference, and the
    right-hand sides each needs (RK4: 4 per step, CN/AB2: 1); the cost of CN/AB2 at IF-RK4's error is read off the
    log–log line through CN/AB2's points (its measured order)."""
    import torch

    from workbench.data.grf import gaussian_random_field
    from workbench.data.navier_stokes import NavierStokes2D

    w0 = gaussian_random_field(2, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0))
    kw = dict(n=n, nu=2e-3, drag=0.1, forcing_amplitude=1.0)
    ref = NavierStokes2D(dt=1 / 1600, **kw).simulate(w0, 1600, record_every=1600)[:, -1]
    rows = ["| integrator | dt | right-hand sides | rel. L2 error at t = 1 | wall s |", "|---|---|---|---|---|"]
    pts = {"rk4": [], "cnab2": []}
    for integ, dts in (("rk4", (0.02, 0.01, 0.005)), ("cnab2", (0.005, 0.0025, 0.00125, 0.000625, 0.0003125))):
        for dt in dts:
            ns = NavierStokes2D(dt=dt, integrator=integ, max_cfl=10.0, **kw)
            steps = int(round(t_end / dt))
            t0 = time.perf_counter()
            rhs = steps * (4 if integ == "rk4" else 1)
            try:
                w = ns.simulate(w0, steps, record_every=steps)[:, -1]
                e = float((w - ref).norm() / ref.norm())
                pts[integ].append((rhs, e))
                err = f"{e:.2e}"
            except Exception as exc:  # blow-up is a result here
                err = f"failed ({type(exc).__name__})"
            rows.append(f"| {integ} | {dt:g} | {rhs} | {err} | {time.perf_counter() - t0:.2f} |")
            print(rows[-1], flush=True)
    (r1, e1), (r2, e2) = pts["cnab2"][-2], pts["cnab2"][-1]
    order = math.log(e1 / e2) / math.log(r2 / r1)
    lines = ["", f"CN/AB2's measured order over its two finest steps: {order:.2f}.", "",
             "| IF-RK4 dt | its error | IF-RK4 right-hand sides | CN/AB2 right-hand sides for that error | "
             "CN/AB2 / IF-RK4 |", "|---|---|---|---|---|"]
    for (rhs, e), dt in zip(pts["rk4"], (0.02, 0.01, 0.005)):
        need = r2 * (e2 / e) ** (1 / order)
        lines.append(f"| {dt:g} | {e:.2e} | {rhs} | {need:.0f}{' (extrapolated)' if e < e2 else ''} | "
                     f"{need / rhs:.1f} |")
    return "\n".join(rows + lines) + "\n"


def agreement_verdict(agree: dict) -> tuple:
    """(passed, sentence): both right-hand sides equal to round-off (< 1e-12 relative) and the short-run gap
    shrinking with dt (at dt/4 at most a tenth of the gap at dt; the integrators differ, so it need not vanish)."""
    rhs = max(agree.get("rhs_ours_mask_max_rel_diff", math.inf), agree.get("rhs_jax_mask_max_rel_diff", math.inf))
    g1, g4 = agree.get("run_t1_dt0.01_max_rel_diff", math.inf), agree.get("run_t1_dt0.0025_max_rel_diff", math.inf)
    ok = rhs < 1e-12 and g4 < 0.1 * g1
    return ok, (f"Check {'PASSED' if ok else 'FAILED'}: right-hand sides equal to {rhs:.1e} (< 1e-12), gap at "
                f"dt = 0.0025 / gap at dt = 0.01 = {g4 / g1:.1e} (< 0.1).")


def _table(rows: list, repeats: int) -> str:
    head = ["| grid | batch | dtype | ours field-steps/s | jax-cfd field-steps/s | ours/jax per step | "
            "ours/jax per RHS | met (per step ≥ 1) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        head.append(f"| {r['n']}² | {r['batch']} | {r['dtype']} | {r['ours']:.0f} | {r['jax']:.0f} | "
                    f"{r['ratio_step']:.2f} | {r['ratio_rhs']:.2f} | {'yes' if r['ratio_step'] >= 1 else 'NO'} |")
    return "\n".join(head) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="64² and 128² only, fewer steps (a smoke run)")
    ap.add_argument("--worker", choices=("float32", "float64"), help=argparse.SUPPRESS)
    ap.add_argument("--skip-accuracy", action="store_true", help="skip the IF-RK4 vs CN/AB2 table")
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "fields", "solver_speed.md"))
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.quick)
        return 0
    try:
        import jax_cfd  # noqa: F401
    except ImportError:
        print("jax-cfd is not installed: pip install 'interpolant-workbench[bench]' (jax[cpu], jax-cfd)")
        return 2
    import jax
    import torch

    rows, agree = [], {}
    for dtype in ("float32", "float64"):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", dtype, "--repeats", str(args.repeats)]
        cmd += ["--quick"] if args.quick else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])})
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr)
            return proc.returncode
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                if "agreement" in d:
                    agree = d["agreement"]
                else:
                    rows.append(d)
                print(line, flush=True)
    rows.sort(key=lambda r: (r["n"], r["batch"], r["dtype"]))
    base = os.path.splitext(args.out)[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(base + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    met = sum(r["ratio_step"] >= 1 for r in rows)
    met_rhs = sum(r["ratio_rhs"] >= 1 for r in rows)
    text = (f"# Navier–Stokes solver throughput: ours vs jax-cfd (one CPU core each, median of {args.repeats} "
            f"interleaved repeats)\n\nWritten by `benchmarks/fields_solver_speed.py`{' --quick' if args.quick else ''}"
            f" (torch {torch.__version__}, jax {jax.__version__}, jax-cfd {jax_cfd.__version__ if hasattr(jax_cfd, '__version__') else '?'}). "
            "Same physics: Kolmogorov forcing sin(4y), ν = 2e-3, drag 0.1, dt = 0.01, 2/3 dealiasing; ours = "
            "integrating-factor RK4 (4 right-hand sides per step), jax-cfd = `crank_nicolson_rk4` (5 per step). "
            "field-steps/s = time steps × batch / wall second. The machine is shared: the absolute numbers move "
            "from run to run, the ratios (measured interleaved) much less.\n\n" + _table(rows, args.repeats)
            + f"\nPer step ours ≥ jax-cfd in {met} of {len(rows)} rows; per right-hand side in {met_rhs} of "
            f"{len(rows)}.\n\nAgreement (float64, 64², batch 2, one mask on both sides): "
            f"right-hand side max |ours − jax| / max |ours| = {agree.get('rhs_ours_mask_max_rel_diff', float('nan')):.2e} "
            f"with our 2/3 mask on both sides (our fast path), "
            f"{agree.get('rhs_jax_mask_max_rel_diff', float('nan')):.2e} with jax-cfd's brick-wall filter on both "
            "sides (our reference path; that filter is not even under k → −k); "
            f"vorticity after t = 1, max |ours − jax| / max |ω|: "
            f"{agree.get('run_t1_dt0.01_max_rel_diff', float('nan')):.2e} at dt = 0.01, "
            f"{agree.get('run_t1_dt0.0025_max_rel_diff', float('nan')):.2e} at dt = 0.0025 (the integrators differ: "
            "IF-RK4 vs CN–RK4, whose viscous part is second order, so the gap is time-discretisation error and "
            "shrinks with dt).\n\n" + agreement_verdict(agree)[1] + "\n")
    if not args.skip_accuracy:
        text += ("\n## IF-RK4 vs CN/AB2 at equal accuracy\n\n64², ν = 2e-3, drag 0.1, Kolmogorov forcing, batch 2, "
                 "error at t = 1 against IF-RK4 dt = 1/1600; IF-RK4 costs 4 right-hand sides per step, CN/AB2 one. "
                 "CN/AB2 is unstable at dt = 0.01 (CFL ≈ 0.5), so its steps start at 0.005.\n\n" + equal_accuracy())
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out} and {base}.csv")
    ok, verdict = agreement_verdict(agree)
    print(verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

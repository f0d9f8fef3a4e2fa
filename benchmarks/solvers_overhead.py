"""Solver overhead per step beyond the model, side by side in one run.

overhead/step = (wall time of the whole sampling call − time spent inside the model) / steps, median of
``--repeats`` runs, on a trivial ε-model ``model(x, t) = 0.1 x`` with an 8×2 and a 64×3×32×32 float32 state.
Ours (through ``Solver.sample``, NFE audit and finiteness flags included) vs diffusers' scheduler loop,
flow_matching's ODESolver and torchdiffeq odeint (fixed step).

With ``--rounds R`` every case is measured R times, the rounds interleaved (all cases once, then again), and the
table gives the median over rounds with its range, so a load change on a shared machine hits every contestant.
The ``faults`` columns are minor page faults per step (fresh memory the allocator had to map again: on the large
state glibc's heap trimming makes these come and go between processes, at ~1–3 µs each, for every contestant).

    .venv/bin/python benchmarks/solvers_overhead.py --rounds 3   # writes benchmarks/results/solvers_overhead.{csv,md}
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch

from workbench import interpolants, solvers
from workbench.models.field import Field

OUT = os.path.join(os.path.dirname(__file__), "results")
STEPS = 50


class Timed:
    """A trivial model that accumulates the time spent inside it."""

    def __init__(self):
        self.t = 0.0
        self.calls = 0

    def __call__(self, x, t=None):
        tic = time.perf_counter()
        out = x * 0.1
        self.t += time.perf_counter() - tic
        self.calls += 1
        return out


def measure(fn: Callable[[Timed], int], repeats: int) -> Tuple[float, float]:
    """(median µs/step of (wall − model), minor page faults per step) over ``repeats`` runs; ``fn`` returns the
    number of steps it took."""
    vals = []
    fn(Timed())  # warm-up
    faults0, total_steps = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, 0
    for _ in range(repeats):
        m = Timed()
        tic = time.perf_counter()
        steps = fn(m)
        wall = time.perf_counter() - tic
        vals.append((wall - m.t) / steps * 1e6)
        total_steps += steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / total_steps
    return statistics.median(vals), faults


def ours(name: str, params: Dict, shape, steps: int = STEPS) -> Callable[[Timed], int]:
    I = interpolants.get("vp")
    if name == "nonstationary":  # DPM-Solver++ 2M in non-stationary form on ε (one fused addmv per step)
        c = solvers.linearize("dpmpp_2m", Field(Timed(), I, "noise"), steps, "logsnr", 0.0, 0.999, kind="noise")
        params = {"coefficients": c}
    s = solvers.get(name, **params)
    x = torch.randn(*shape)
    # the grid is built once per (N, schedule) and reused, as a sweep or dashboard does; its one-off cost is
    # reported separately (row "grid: logsnr schedule, once")
    # Like the peers: log-SNR solvers get an ε-model (as diffusers' schedulers do), the plain ODE solvers a
    # velocity model (as flow_matching / torchdiffeq do), so no solver pays for a conversion its peer skips.
    kind = "noise" if s.needs_gaussian or name == "nonstationary" else "velocity"
    grid = s.make_grid(Field(Timed(), I, kind), steps * s.evals_per_step, "logsnr", 0.0, 0.999)

    def fn(m: Timed) -> int:
        f = Field(m, I, kind)
        r = s.sample(f, x, steps * s.evals_per_step, grid=grid)
        return r.steps

    return fn


def diffusers_loop(cls_name: str, shape) -> Callable[[Timed], int]:
    import diffusers

    x0 = torch.randn(*shape)

    def fn(m: Timed) -> int:
        sch = getattr(diffusers, cls_name)(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
        sch.set_timesteps(STEPS)
        x = x0 * sch.init_noise_sigma
        for t in sch.timesteps:
            xin = sch.scale_model_input(x, t)
            x = sch.step(m(xin, t), t, x).prev_sample
        return len(sch.timesteps)

    return fn


def fm_loop(method: str, shape) -> Callable[[Timed], int]:
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    x0 = torch.randn(*shape)

    def fn(m: Timed) -> int:
        class V(ModelWrapper):
            def __init__(self):
                torch.nn.Module.__init__(self)

            def forward(self, x, t, **extras):
                return m(x, t)

        ODESolver(velocity_model=V()).sample(x0, step_size=1.0 / STEPS, method=method)
        return STEPS

    return fn


def tdq_loop(method: str, shape) -> Callable[[Timed], int]:
    import torchdiffeq

    x0 = torch.randn(*shape)

    def fn(m: Timed) -> int:
        torchdiffeq.odeint(lambda t, x: m(x, t), x0, torch.tensor([0.0, 1.0]), method=method,
                           options={"step_size": 1.0 / STEPS})
        return STEPS

    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds of the whole table (median, range)")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    # The trivial model (ε = 0.1·x) drives states into float32 denormals on the VP path, where CPU arithmetic
    # is ~100x slower; that measured the FPU, not the samplers. Flush denormals for every contestant.
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    cases = [
        ("ours", "euler", lambda sh: ours("euler", {}, sh)),
        ("ours", "heun", lambda sh: ours("heun", {}, sh)),
        ("ours", "dpmpp_2m", lambda sh: ours("dpmpp_2m", {}, sh)),
        ("ours", "dpmpp_3m", lambda sh: ours("dpmpp_3m", {}, sh)),
        # orders are global orders: unipc(order=3) is UniP-2 + UniC (diffusers' solver_order=2, its default)
        ("ours", "unipc(order=3)", lambda sh: ours("unipc", {"order": 3}, sh)),
        ("ours", "unipc(order=4)", lambda sh: ours("unipc", {"order": 4}, sh)),
        ("ours", "deis(order=2)", lambda sh: ours("deis", {"order": 2}, sh)),
        ("ours", "deis(order=3)", lambda sh: ours("deis", {"order": 3}, sh)),
        ("ours", "heun3", lambda sh: ours("heun3", {}, sh)),
        ("ours", "dpm_solver_2", lambda sh: ours("dpm_solver_2", {}, sh)),
        # a non-stationary step reads every output so far: O(n) per step, so it is measured where it is used (n = 10)
        ("ours", "nonstationary (n=10)", lambda sh: ours("nonstationary", {}, sh, 10)),
        ("ours", "dpmpp_2m (n=10)", lambda sh: ours("dpmpp_2m", {}, sh, 10)),
        ("peer", "diffusers.DPMSolverMultistep", lambda sh: diffusers_loop("DPMSolverMultistepScheduler", sh)),
        ("peer", "diffusers.UniPCMultistep", lambda sh: diffusers_loop("UniPCMultistepScheduler", sh)),
        ("peer", "diffusers.DEISMultistep", lambda sh: diffusers_loop("DEISMultistepScheduler", sh)),
        ("peer", "diffusers.EulerDiscrete", lambda sh: diffusers_loop("EulerDiscreteScheduler", sh)),
        ("peer", "flow_matching.euler", lambda sh: fm_loop("euler", sh)),
        ("peer", "flow_matching.midpoint", lambda sh: fm_loop("midpoint", sh)),
        ("peer", "torchdiffeq.euler", lambda sh: tdq_loop("euler", sh)),
        ("peer", "torchdiffeq.rk4", lambda sh: tdq_loop("rk4", sh)),
    ]
    shapes = {"8x2": (8, 2), "64x3x32x32": (64, 3, 32, 32)}
    I = interpolants.get("vp")
    tic = time.perf_counter()
    for _ in range(5):
        solvers.get("dpmpp_2m").make_grid(Field(Timed(), I, "noise"), STEPS, "logsnr", 0.0, 0.999)
    grid_us = (time.perf_counter() - tic) / 5 * 1e6
    print(f"grid construction (logsnr, {STEPS} steps): {grid_us:.0f} µs once", flush=True)
    samples: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    fns = {(sname, name): make(sh) for sname, sh in shapes.items() for _, name, make in cases}
    for r in range(a.rounds):
        for sname in shapes:
            for fam, name, _ in cases:
                us, faults = measure(fns[(sname, name)], a.repeats)
                samples.setdefault((sname, name), []).append((us, faults))
                print(f"round {r + 1}/{a.rounds} {sname:12s} {name:32s} {us:9.1f} µs/step {faults:7.1f} faults/step",
                      flush=True)
    rows: List[Dict] = []
    for sname in shapes:
        for fam, name, _ in cases:
            us = [v for v, _ in samples[(sname, name)]]
            fl = [f for _, f in samples[(sname, name)]]
            rows.append(dict(state=sname, family=fam, solver=name, overhead_us_per_step=round(statistics.median(us), 1),
                             min_us=round(min(us), 1), max_us=round(max(us), 1), rounds=len(us),
                             faults_per_step=round(statistics.median(fl), 1)))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "solvers_overhead.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rng = a.rounds > 1
    md = ["# Solver overhead per step beyond the model (µs/step, median; one run, same machine)", "",
          (f"Median over {a.rounds} interleaved rounds [min–max]; " if rng else "") +
          "faults = minor page faults per step (median).", "",
          "| solver | " + " | ".join(f"{s} | faults" for s in shapes) + " |", "|---|" + "---|---|" * len(shapes)]
    for fam, name, _ in cases:
        cells = []
        for s in shapes:
            r = next(r for r in rows if r["solver"] == name and r["state"] == s)
            v = f"{r['overhead_us_per_step']:.1f}" + (f" [{r['min_us']:.0f}–{r['max_us']:.0f}]" if rng else "")
            cells.append(f"{v} | {r['faults_per_step']:.0f}")
        md.append(f"| {'**' + name + '**' if fam == 'peer' else name} | " + " | ".join(cells) + " |")
    for s in shapes:
        d = {r["solver"]: r["overhead_us_per_step"] for r in rows if r["state"] == s}
        md.append("")
        md.append(f"Ratios on {s}: diffusers.DPMSolverMultistep / dpmpp_2m = "
                  f"{d['diffusers.DPMSolverMultistep'] / d['dpmpp_2m']:.1f}×, diffusers.UniPCMultistep / unipc(order=3) = "
                  f"{d['diffusers.UniPCMultistep'] / d['unipc(order=3)']:.1f}×, diffusers.DEISMultistep / deis(order=2) = "
                  f"{d['diffusers.DEISMultistep'] / d['deis(order=2)']:.1f}×, flow_matching.euler / euler = "
                  f"{d['flow_matching.euler'] / d['euler']:.1f}×, torchdiffeq.euler / euler = {d['torchdiffeq.euler'] / d['euler']:.1f}×")
    md += ["", f"Grid construction (our logsnr schedule, {STEPS} steps, closed-form λ→t for VP): {grid_us:.0f} µs once per "
               "(N, schedule); not included above (diffusers' set_timesteps is included in its rows).",
           f"Steps per run: {STEPS}; trivial model 0.1·x, float32, torch.no_grad; {a.repeats} repeats per measurement."]
    text = "\n".join(md)
    with open(os.path.join(OUT, "solvers_overhead.md"), "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

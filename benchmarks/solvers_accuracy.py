"""Accuracy vs NFE of every solver × schedule on the exact GMM problems, with the peers in the same run.

Metric 1: mean L2 distance of the final samples to the exact PF-ODE map of the same start states
(Dormand–Prince rtol = atol = 1e-10, float64). Metric 2: sliced-W2 to exact data samples.

Ours run on two interpolants: VP (diffusers' linear-β table 1e-4..0.02 as ``discrete_vp``, started at its first
timestep so the peers solve the same problem) and linear (t = 0 → 1). Peers: diffusers DPMSolverMultistep / UniPC / DEIS / Euler / Heun
(VP linear β, their own timesteps and step() loop, driven by the exact ε-model), flow_matching ODESolver
(euler, midpoint) and torchdiffeq odeint (rk4) on the linear interpolant.

Fitted grids (schedule "fitted"): for UniPC on VP, ``fit_grid`` chooses the grid for each NFE from a pilot run on
separate start states (seed 11), against the model's own Dormand–Prince solution (rtol = atol = 1e-8) — nothing a
user of a trained model would not have. The pilot's model calls and seconds are in the ``note`` column.

Fitted non-stationary solvers (solver "nonstationary(init=heun)", schedule "fitted"): on the linear interpolant,
``fit_nonstationary`` tunes every time and weight of Heun's non-stationary form to the model from the same kind of
pilot (seed 11, 1024 states), again against the model's own Dormand–Prince solution.

    .venv/bin/python benchmarks/solvers_accuracy.py            # writes benchmarks/results/solvers_accuracy.{csv,md,png}
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import time
from typing import Dict, List

import numpy as np
import torch

from workbench import interpolants, solvers
from workbench.metrics import sliced_wasserstein
from workbench.problems import PROBLEMS
from workbench.schedules import fit_grid
from workbench.solvers.learned import fit_nonstationary

NFES = (5, 8, 10, 15, 20, 40)
OURS = [
    ("euler", {}), ("heun", {}), ("rk4", {}), ("rk4_38", {}),
    ("dpmpp_2m", {}), ("dpmpp_3m", {}), ("dpm_solver_2", {}), ("dpm_solver_3", {}),
    ("unipc", {"order": 2}), ("unipc", {"order": 3}), ("deis", {"order": 2}), ("deis", {"order": 3}),
    ("dpm_solver_v3", {"order": 3}), ("dpm_solver_v3", {"order": 2}),
]
# solvers whose grid is fitted per NFE (on VP), and at which NFE
FITTED = [("unipc", {"order": 3}, (5, 8, 10, 15, 20)), ("unipc", {"order": 2}, (10,))]
# non-stationary solvers fitted per NFE on the linear interpolant: NFEs, pilot states, (Adam, L-BFGS) iterations
NS_FITTED = {"gmm2d": ((8, 10, 20), 1024, (4000, 2000)), "gmm_nd": ((10,), 1024, (1000, 500))}
SCHEDULES = {"vp": ("uniform", "logsnr", "edm"), "linear": ("uniform", "logsnr", "edm", "shift")}
OUT = os.path.join(os.path.dirname(__file__), "results")


def label(name: str, params: Dict) -> str:
    return name + ("(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")


def l2(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x.to(torch.float64) - ref).flatten(1).norm(dim=1).mean())


def diffusers_peers(prob, I, x0, t0, ref, target, rows, pname):
    import diffusers

    base = diffusers.DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    log_sig = torch.log(((1 - base.alphas_cumprod) / base.alphas_cumprod) ** 0.5).to(torch.float64)
    cache: Dict[float, float] = {}

    def t_of(timestep) -> float:
        key = float(timestep)
        if key not in cache:
            lam = -float(np.interp(key, np.arange(len(log_sig)), log_sig.numpy()))
            cache[key] = float(I.t_from_log_snr(torch.tensor([lam], dtype=torch.float64))[0])
        return cache[key]

    kinds = {
        "diffusers.DPMSolverMultistep": lambda: diffusers.DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, solver_order=2),
        "diffusers.UniPCMultistep": lambda: diffusers.UniPCMultistepScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, solver_order=2),
        "diffusers.DEISMultistep": lambda: diffusers.DEISMultistepScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, solver_order=2),
        "diffusers.EulerDiscrete": lambda: diffusers.EulerDiscreteScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, timestep_spacing="linspace"),
        "diffusers.HeunDiscrete": lambda: diffusers.HeunDiscreteScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, timestep_spacing="linspace"),
    }
    for name, make in kinds.items():
        for nfe in NFES:
            sch = make()
            steps = (nfe + 1) // 2 if "Heun" in name else nfe
            sch.set_timesteps(steps)
            sig0 = float(sch.sigmas[0])
            assert abs(math.log(sig0) - float(log_sig[-1])) < 1e-3, (name, sig0)
            x = x0.to(torch.float32) * float(sch.init_noise_sigma)  # VE scale for Euler/Heun (1 for the others)
            calls = 0
            for ts in sch.timesteps:
                xin = sch.scale_model_input(x, ts)
                eps = prob.gmm.predict(xin.to(torch.float64), t_of(ts), I, "noise").to(torch.float32)
                calls += 1
                x = sch.step(eps, ts, x).prev_sample
            sig_end = float(sch.sigmas[-1])
            r = ref if sig_end == 0.0 else prob.reference(I, x0, t0, float(I.t_from_log_snr(
                torch.tensor([-math.log(sig_end)], dtype=torch.float64))[0]))
            rows.append(dict(problem=pname, interpolant="vp", family="peer", solver=name, schedule="native",
                             nfe_budget=nfe, nfe=calls, l2=l2(x, r), sw2=float(sliced_wasserstein(
                                 x.to(torch.float64), target, generator=torch.Generator().manual_seed(0)))))


def fm_peers(prob, I, x0, ref, target, rows, pname):
    import torchdiffeq
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    calls = [0]

    class V(ModelWrapper):
        def __init__(self):
            torch.nn.Module.__init__(self)

        def forward(self, x, t, **extras):
            calls[0] += 1
            return prob.gmm.velocity(x, float(t), I)

    for method, per in (("euler", 1), ("midpoint", 2)):
        for nfe in NFES:
            steps = max(nfe // per, 1)
            calls[0] = 0
            x = ODESolver(velocity_model=V()).sample(x0.clone(), step_size=1.0 / steps, method=method,
                                                     time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64))
            rows.append(dict(problem=pname, interpolant="linear", family="peer", solver=f"flow_matching.{method}",
                             schedule="uniform", nfe_budget=nfe, nfe=calls[0], l2=l2(x, ref),
                             sw2=float(sliced_wasserstein(x, target, generator=torch.Generator().manual_seed(0)))))
    for nfe in NFES:
        steps = max(nfe // 4, 1)
        calls[0] = 0

        def f(t, x):
            calls[0] += 1
            return prob.gmm.velocity(x, float(t), I)

        x = torchdiffeq.odeint(f, x0.clone(), torch.tensor([0.0, 1.0], dtype=torch.float64), method="rk4",
                               options={"step_size": 1.0 / steps})[-1]
        rows.append(dict(problem=pname, interpolant="linear", family="peer", solver="torchdiffeq.rk4",
                         schedule="uniform", nfe_budget=nfe, nfe=calls[0], l2=l2(x, ref),
                         sw2=float(sliced_wasserstein(x, target, generator=torch.Generator().manual_seed(0)))))


def run(n: Dict[str, int], n_pilot: int = 384, ns: bool = True) -> List[Dict]:
    rows: List[Dict] = []
    for pname in ("gmm2d", "gmm_nd"):
        prob = PROBLEMS.get(pname)
        for iname in ("vp", "linear"):
            # "vp" is diffusers' own linear-β table (discrete_vp): t = 0 is its first timestep (t = 999, λ = −5.0588),
            # so ours and the peers solve the same problem from the same start states
            I = interpolants.get("discrete_vp" if iname == "vp" else iname)
            t0 = 0.0
            g = torch.Generator().manual_seed(0)
            x0 = prob.sample_start(I, t0, n[pname], g)
            target = prob.sample_target(I, 1.0, n[pname], g)
            tic = time.time()
            ref = prob.reference(I, x0, t0, 1.0)
            print(f"[{pname}/{iname}] reference in {time.time() - tic:.1f}s", flush=True)
            field = prob.field(I, "cpu", torch.float64)
            fitted = {}
            for name, params in OURS:
                s = solvers.get(name, **params)
                if name == "dpm_solver_v3":
                    if "ems" not in fitted:
                        xp = prob.sample_start(I, t0, 256, torch.Generator().manual_seed(7))
                        fitted["ems"] = solvers.get("dpm_solver_v3").fit(field, xp, t0, 1.0).ems
                    s.ems = fitted["ems"]
                for sched in SCHEDULES[iname]:
                    for nfe in NFES:
                        if nfe < s.evals_per_step:
                            continue
                        r = s.sample(field, x0, nfe, schedule=sched, t_start=t0, t_end=1.0)
                        rows.append(dict(problem=pname, interpolant=iname, family="ours", solver=label(name, params),
                                         schedule=sched, nfe_budget=nfe, nfe=r.nfe, l2=l2(r.x, ref),
                                         sw2=float(sliced_wasserstein(r.x, target,
                                                                      generator=torch.Generator().manual_seed(0)))))
            if iname == "vp" and n_pilot > 0:
                xp = prob.sample_start(I, t0, n_pilot, torch.Generator().manual_seed(11))
                for name, params, fit_nfes in FITTED:
                    s = solvers.get(name, **params)
                    for nfe in fit_nfes:
                        fit = fit_grid(s, field, xp, nfe, ["edm", "logsnr", "uniform"], t0, 1.0,
                                       max_evals=min(300 * s.steps_for_nfe(nfe), 3000))
                        r = s.sample(field, x0, nfe, grid=torch.tensor(fit.times, dtype=torch.float64))
                        print(f"  fitted {label(name, params)} NFE {nfe}: pilot {fit.init_loss:.3e} -> {fit.loss:.3e}, "
                              f"L2 {l2(r.x, ref):.3e} ({fit.seconds:.0f}s)", flush=True)
                        rows.append(dict(problem=pname, interpolant=iname, family="ours", solver=label(name, params),
                                         schedule="fitted", nfe_budget=nfe, nfe=r.nfe, l2=l2(r.x, ref),
                                         sw2=float(sliced_wasserstein(r.x, target,
                                                                      generator=torch.Generator().manual_seed(0))),
                                         note=f"pilot {xp.shape[0]} states, {fit.pilot_nfe} NFE, {fit.seconds:.0f} s, "
                                              f"{fit.evals} evals; pilot L2 {fit.init_loss:.3e} -> {fit.loss:.3e}"))
            if iname == "linear" and ns and pname in NS_FITTED:
                fit_nfes, m, (adam, lbfgs) = NS_FITTED[pname]
                xp = prob.sample_start(I, t0, m, torch.Generator().manual_seed(11))
                for nfe in fit_nfes:
                    fit = fit_nonstationary(field, xp, nfe, init="heun", schedule="uniform", t_start=t0,
                                            adam_steps=adam, lbfgs_steps=lbfgs)
                    r = fit.solver.sample(field, x0, nfe, t_start=t0)
                    print(f"  fitted nonstationary NFE {nfe}: pilot {fit.init_loss:.3e} -> {fit.loss:.3e}, "
                          f"L2 {l2(r.x, ref):.3e} ({fit.seconds:.0f}s)", flush=True)
                    rows.append(dict(problem=pname, interpolant=iname, family="ours", solver="nonstationary(init=heun)",
                                     schedule="fitted", nfe_budget=nfe, nfe=r.nfe, l2=l2(r.x, ref),
                                     sw2=float(sliced_wasserstein(r.x, target,
                                                                  generator=torch.Generator().manual_seed(0))),
                                     note=f"pilot {m} states, {fit.pilot_nfe} NFE (+ backward), {fit.seconds:.0f} s, "
                                          f"{fit.iterations} iterations; pilot L2 {fit.init_loss:.3e} -> {fit.loss:.3e}"
                                          f"; held-out {fit.init_holdout_loss:.3e} -> {fit.holdout_loss:.3e}"))
            if iname == "vp":
                diffusers_peers(prob, I, x0, t0, ref, target, rows, pname)
            else:
                fm_peers(prob, I, x0, ref, target, rows, pname)
            rows.append(dict(problem=pname, interpolant=iname, family="floor", solver="exact samples", schedule="-",
                             nfe_budget=0, nfe=0, l2=0.0, sw2=float(sliced_wasserstein(
                                 prob.sample_target(I, 1.0, n[pname], g), target,
                                 generator=torch.Generator().manual_seed(0)))))
    return rows


def best(rows, problem, family, nfe):
    c = [r for r in rows if r["problem"] == problem and r["family"] == family and r["nfe_budget"] == nfe]
    return min(c, key=lambda r: r["l2"]) if c else None


def write(rows: List[Dict]) -> str:
    os.makedirs(OUT, exist_ok=True)
    for r in rows:
        r.setdefault("note", "")
    with open(os.path.join(OUT, "solvers_accuracy.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    md = ["# Solver accuracy vs NFE (mean L2 to the exact PF-ODE map; sliced-W2 in the CSV)", ""]
    for p in ("gmm2d", "gmm_nd"):
        md += [f"## {p}", "", "| solver | interpolant | schedule | " + " | ".join(f"NFE {n}" for n in NFES) + " |",
               "|---|---|---|" + "---|" * len(NFES)]
        keys = sorted({(r["family"], r["solver"], r["interpolant"], r["schedule"]) for r in rows
                       if r["problem"] == p and r["family"] != "floor"})
        # best schedule per (solver, interpolant) for ours, every peer
        chosen = {}
        for fam, s, i, sc in keys:
            if fam == "peer":
                chosen[(fam, s, i)] = sc
                continue
            at10 = [r for r in rows if r["problem"] == p and r["solver"] == s and r["interpolant"] == i
                    and r["schedule"] == sc and r["nfe_budget"] == 10]
            cur = chosen.get((fam, s, i))
            if at10 and (cur is None or at10[0]["l2"] < cur[1]):
                chosen[(fam, s, i)] = (sc, at10[0]["l2"])
        for (fam, s, i), sc in sorted(chosen.items(), key=lambda kv: (kv[0][0] != "ours", kv[0][2], kv[0][1])):
            sc = sc if isinstance(sc, str) else sc[0]
            vals = []
            for n in NFES:
                r = [r for r in rows if r["problem"] == p and r["solver"] == s and r["interpolant"] == i
                     and r["schedule"] == sc and r["nfe_budget"] == n]
                vals.append(f"{r[0]['l2']:.2e}" if r else "—")
            md.append(f"| {'**' + s + '**' if fam == 'peer' else s} | {i} | {sc} | " + " | ".join(vals) + " |")
        md += ["", "| NFE | best ours (solver / interpolant / schedule) | L2 | best peer | L2 |", "|---|---|---|---|---|"]
        for n in NFES:
            o, q = best(rows, p, "ours", n), best(rows, p, "peer", n)
            md.append(f"| {n} | {o['solver']} / {o['interpolant']} / {o['schedule']} | {o['l2']:.2e} | "
                      f"{q['solver']} | {q['l2']:.2e} |")
        o10, p20 = best(rows, p, "ours", 10), best(rows, p, "peer", 20)
        md += ["", f"Target on {p}: best ours @ NFE 10 = {o10['solver']} / {o10['interpolant']} / {o10['schedule']}: "
                   f"L2 {o10['l2']:.3e}; best peer @ NFE 20 = {p20['solver']} ({p20['interpolant']}): L2 {p20['l2']:.3e}; "
                   f"ratio peer/ours = {p20['l2'] / o10['l2']:.2f} → {'MET' if o10['l2'] <= p20['l2'] else 'NOT MET'}"
               + (f" (fitted: {o10['note']})" if o10.get("note") else ""), ""]
        fitted = [r for r in rows if r["problem"] == p and r["schedule"] == "fitted"]
        if fitted:
            md += ["Fitted grids and solvers (pilot cost per fit):", ""]
            md += [f"- {r['solver']} NFE {r['nfe_budget']}: L2 {r['l2']:.3e}; {r['note']}" for r in fitted]
            md.append("")
    text = "\n".join(md)
    with open(os.path.join(OUT, "solvers_accuracy.md"), "w") as fh:
        fh.write(text + "\n")
    plot(rows)
    return text


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, p in zip(axes, ("gmm2d", "gmm_nd")):
        series = {}
        for r in rows:
            if r["problem"] != p or r["family"] == "floor":
                continue
            key = (r["family"], r["solver"], r["interpolant"])
            series.setdefault(key, {}).setdefault(r["nfe_budget"], []).append((r["l2"], r["nfe"]))
        for (fam, s, i), d in sorted(series.items()):
            ns = sorted(d)
            ys = [min(v[0] for v in d[n]) for n in ns]  # best schedule
            ax.loglog(ns, ys, "--" if fam == "peer" else "-", marker="o" if fam == "peer" else ".",
                      label=f"{s} [{i}]", lw=1.2 if fam == "peer" else 0.9)
        ax.set_title(f"{p}: mean L2 to exact PF-ODE map (best schedule)")
        ax.set_xlabel("NFE")
        ax.set_ylabel("mean L2")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "solvers_accuracy.png"), dpi=70)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n2d", type=int, default=1000, help="samples for gmm2d")
    ap.add_argument("--nnd", type=int, default=256, help="samples for gmm_nd")
    ap.add_argument("--n-pilot", type=int, default=384, help="pilot start states for fitted grids (0: skip)")
    ap.add_argument("--no-ns", action="store_true", help="skip the fitted non-stationary solvers")
    ap.add_argument("--from-csv", action="store_true", help="rebuild the table and plot from the stored CSV")
    a = ap.parse_args()
    torch.set_num_threads(1)  # one thread: no oversubscription on a shared CPU (accuracy does not depend on it)
    if a.from_csv:
        with open(os.path.join(OUT, "solvers_accuracy.csv")) as fh:
            rows = [{k: (float(v) if k in ("l2", "sw2") else int(v) if k in ("nfe", "nfe_budget") else v)
                     for k, v in r.items()} for r in csv.DictReader(fh)]
    else:
        rows = run({"gmm2d": a.n2d, "gmm_nd": a.nnd}, a.n_pilot, not a.no_ns)
    print(write(rows))


if __name__ == "__main__":
    main()

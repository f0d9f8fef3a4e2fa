"""Speed of the fitted non-stationary solver (issue 14, target 2): fresh-state error of a solver fitted at NFE 10
on the 2-D Gaussian mixture in <= 30 s wall on one CPU thread, against the best peer at NFE 20.

Pilot: 1024 start states (seed 11; 768 fit, 256 held out), reference = the mixture's exact PF-ODE map
(``problem.reference``, Dormand–Prince 1e-10 on the exact field: ground truth, not model calls; its wall time is
included in the fit's). The fit starts from the exact non-stationary form of --init (default DEIS-2) on the uniform grid. Error: mean L2
to the exact map on 512 fresh start states (seed 0). Peers are driven on the same model and starts
(benchmarks/solvers_accuracy.py: diffusers on vp, flow_matching / torchdiffeq on linear).

    cd <repo> && .venv/bin/python benchmarks/fitting_speed.py      # writes benchmarks/results/fitting_speed.md
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from solvers_accuracy import diffusers_peers, fm_peers, l2  # noqa: E402

from workbench import interpolants, solvers  # noqa: E402
from workbench.fitting import Pilot, fit_nonstationary  # noqa: E402
from workbench.problems import PROBLEMS  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")


def run(problem: str, nfes, n_pilot: int, n_fresh: int, lbfgs: int, init: str):
    prob = PROBLEMS.get(problem)
    rows, peers = [], []
    for iname in ("linear", "vp"):
        # vp: diffusers' own table (DiscreteVP, cubic in λ), t = 0 at its first timestep, so the peers and we
        # solve the same ODE from the same λ
        I = interpolants.get("linear") if iname == "linear" else interpolants.get("discrete_vp", interpolation="cubic")
        t0 = 0.0
        field = prob.field(I, "cpu", torch.float64)
        x0 = prob.sample_start(I, t0, n_fresh, torch.Generator().manual_seed(0))
        ref = prob.reference(I, x0, t0, 1.0)
        target = prob.sample_target(I, 1.0, n_fresh, torch.Generator().manual_seed(1))
        (diffusers_peers(prob, I, x0, t0, ref, target, peers, problem) if iname == "vp"
         else fm_peers(prob, I, x0, ref, target, peers, problem))
        for name in ("heun", "rk4", "dpmpp_2m", "unipc"):
            for nfe in (10, 20):
                r = solvers.get(name).sample(field, x0, nfe, schedule="uniform" if iname == "linear" else "logsnr",
                                             t_start=t0)
                rows.append(dict(interpolant=iname, solver=name, nfe=nfe, l2=l2(r.x, ref), note=""))
        xp = prob.sample_start(I, t0, n_pilot, torch.Generator().manual_seed(11))
        for nfe in nfes:
            tic, cpu = time.perf_counter(), time.process_time()
            pilot = Pilot.build(field, xp, t0, 1.0, reference=prob.reference(I, xp, t0, 1.0), holdout=0.25)
            fit = fit_nonstationary(field, None, nfe, init=init, schedule="uniform", t_start=t0,
                                    lbfgs_steps=lbfgs, pilot=pilot)
            wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
            r = fit.solver.sample(field, x0, nfe, t_start=t0)
            note = (f"{wall:.1f} s wall, {cpu:.1f} s CPU (reference {wall - fit.seconds:.1f} s), {fit.pilot_nfe} model calls "
                    f"(+ backward), {fit.iterations} evaluations, stopped: {fit.stopped}; pilot "
                    f"{fit.init_loss:.2e} -> {fit.loss:.2e}, held-out {fit.init_holdout_loss:.2e} -> "
                    f"{fit.holdout_loss:.2e}, {fit.n_parameters} numbers")
            print(f"[{iname}] fitted NFE {nfe}: fresh L2 {l2(r.x, ref):.3e}; {note}", flush=True)
            rows.append(dict(interpolant=iname, solver=f"fitted nonstationary(init={init})", nfe=nfe,
                             l2=l2(r.x, ref), note=note, wall=wall, calls=fit.pilot_nfe))
    return rows, peers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="gmm2d")
    ap.add_argument("--nfe", type=int, nargs="+", default=[10])
    ap.add_argument("--n-pilot", type=int, default=1024)
    ap.add_argument("--n-fresh", type=int, default=512)
    ap.add_argument("--lbfgs", type=int, default=750, help="L-BFGS objective evaluations")
    ap.add_argument("--init", default="deis", help="starting solver (deis: DEIS-2 on the uniform grid; heun, unipc, ...)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    # warm-up: torch.optim's first step imports torch._dynamo (seconds, once per process; not part of a fit)
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=1)
    opt.step(lambda: (opt.zero_grad(), (w - 1).pow(2).sum().backward(), (w - 1).pow(2).sum())[2])
    rows, peers = run(a.problem, a.nfe, a.n_pilot, a.n_fresh, a.lbfgs, a.init)
    best20 = min((p for p in peers if p["nfe_budget"] == 20), key=lambda p: p["l2"])
    md = [f"# Fitted non-stationary solver: speed and fresh-state error ({a.problem}, one CPU thread)", "",
          f"Best peer at NFE 20: {best20['solver']} ({best20['interpolant']}) L2 {best20['l2']:.3e}.", "",
          "Wall time depends on the machine's load (other processes share the cores); CPU time "
          "(`time.process_time`, one thread) is the fit's own cost. Both include the pilot's exact reference.", "",
          "| interpolant | solver | NFE | fresh L2 | vs best peer @ 20 | fit cost |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['interpolant']} | {r['solver']} | {r['nfe']} | {r['l2']:.3e} | "
                  f"{best20['l2'] / r['l2']:.2f}x | {r['note']} |")
    md += ["", "Peers at NFE 10 / 20:", ""]
    for p in sorted(peers, key=lambda p: (p["interpolant"], p["solver"], p["nfe_budget"])):
        if p["nfe_budget"] in (10, 20):
            md.append(f"- {p['solver']} ({p['interpolant']}) NFE {p['nfe_budget']}: L2 {p['l2']:.3e}")
    text = "\n".join(md) + "\n"
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"fitting_speed_{a.problem}.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()

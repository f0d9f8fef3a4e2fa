"""USF / S³ solver search vs its starting solvers, the best single solver on a fitted grid and the fitted
non-stationary solver (issue 14, item 5), at NFE 5, 8, 10.

Problems: gmm2d and the benchmark's random mixtures 0 (2-D) and 1 (16-D) (``random_mixtures.random_mixture``),
each on the linear and the vp path, over t ∈ [1e-3, 0.999] (finite log-SNR at both ends). Pilot: 512 states
(seed 11; 384 fit / 128 held out) with the exact map as reference; error: mean L2 to the exact PF-ODE map on 512
fresh start states (seed 0). Per cell:

* ``plain``: the best plain candidate USF starts from (uniform choices kind × order × corrector × B(h) — i.e.
  UniPC / DPM-Solver++-type multistep samplers — on the uniform / logsnr / edm grids, chosen on the pilot);
* ``usf``: ``FITS.get("usf")`` (default search: 12 × 10 generations, 24 proposals ranked by a 64-state subset,
  6 evaluated fully per generation, then 150 fit_grid runs on the winner's times);
* ``grid``: fit_grid of the plain winner from its grid (300 runs) — the best single solver on a fitted grid;
* ``ns``: fit_nonstationary from DEIS-2 on the uniform grid (L-BFGS, at most 300 evaluations / 40 s).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/usf_search.py --interpolant linear   # one process per path
    PYTHONPATH=$PWD .venv/bin/python benchmarks/usf_search.py --interpolant vp
    PYTHONPATH=$PWD .venv/bin/python benchmarks/usf_search.py --report               # writes results/usf_search.md
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(__file__))
from random_mixtures import random_mixture  # noqa: E402

from workbench import interpolants, solvers  # noqa: E402
from workbench.fitting import FITS, Pilot, PilotSizeWarning, fit_grid, fit_nonstationary  # noqa: E402
from workbench.problems import PROBLEMS, custom_gmm  # noqa: E402
from workbench.solvers.usf import USFSolver  # noqa: E402

T0, T1 = 1e-3, 0.999
NFES = (5, 8, 10)
OUT = os.path.join(os.path.dirname(__file__), "results")
FIELDS = ["problem", "interpolant", "nfe", "method", "l2", "pilot_loss", "held_loss", "pilot_nfe", "seconds", "note"]


def problems():
    yield "gmm2d", PROBLEMS.get("gmm2d")
    for i in (0, 1):
        g = random_mixture(i)
        yield f"random{i} ({g.dim}-D, {g.n_components} modes)", custom_gmm(g)


def l2(x, ref) -> float:
    return float((x - ref).flatten(1).norm(dim=1).mean())


def run(iname: str, out_csv: str, n_pilot: int, n_fresh: int) -> None:
    torch.set_num_threads(1)
    I = interpolants.get(iname)
    with open(out_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for pname, prob in problems():
            field = prob.field(I, "cpu", torch.float64)
            x0 = prob.sample_start(I, T0, n_fresh, torch.Generator().manual_seed(0))
            ref = prob.reference(I, x0, T0, T1)
            xp = prob.sample_start(I, T0, n_pilot, torch.Generator().manual_seed(11))
            pilot = Pilot.build(field, xp, T0, T1, reference=prob.reference(I, xp, T0, T1), holdout=0.25)
            for nfe in NFES:
                def emit(method, err, fit, note=""):
                    w.writerow(dict(problem=pname, interpolant=iname, nfe=nfe, method=method, l2=err,
                                    pilot_loss=fit.loss if fit else "", held_loss=fit.holdout_loss if fit else "",
                                    pilot_nfe=fit.pilot_nfe if fit else "", seconds=f"{fit.seconds:.1f}" if fit else "",
                                    note=note))
                    fh.flush()
                    print(f"[{pname} {iname} NFE {nfe}] {method}: {err:.3e} {note}", flush=True)

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PilotSizeWarning)
                    usf = FITS.get("usf").fit(field, None, nfe, T0, T1, pilot=pilot)
                    p = usf.init_params
                    plain = USFSolver(p["kinds"], p["orders"], p["correctors"], p["variants"])
                    g0 = torch.tensor(p["times"], dtype=torch.float64)
                    emit("plain (USF start)", l2(plain.sample(field, x0, nfe, grid=g0).x, ref), None, p["plain"])
                    emit("usf", l2(usf.sample(field, x0).x, ref), usf,
                         f"{usf.params['describe']}; {usf.iterations} candidates, predictor spearman "
                         f"{usf.params['proxy_spearman']:.2f}; kept={usf.improved}")
                    gf = fit_grid(plain, field, None, nfe, init=g0, t_start=T0, t_end=T1, pilot=pilot, max_evals=300)
                    g = torch.tensor(gf.times, dtype=torch.float64)
                    emit("grid (fit_grid of the plain winner)", l2(plain.sample(field, x0, nfe, grid=g).x, ref), gf,
                         f"{p['plain']}; {gf.evals} runs; kept={gf.improved}")
                    ns = fit_nonstationary(field, None, nfe, init=solvers.get("deis", order=2), t_start=T0, t_end=T1,
                                           pilot=pilot, lbfgs_steps=300, max_seconds=40.0)
                    emit("ns (fit_nonstationary from deis-2)", l2(ns.solver.sample(field, x0, nfe, t_start=T0,
                                                                                   t_end=T1).x, ref), ns,
                         f"{ns.iterations} evals, {ns.stopped}; kept={ns.improved}")


def report(paths) -> str:
    rows = []
    for p in paths:
        with open(p) as fh:
            rows += list(csv.DictReader(fh))
    md = ["# USF / S³ solver search (issue 14, item 5)", "",
          "From `benchmarks/usf_search.py` (docstring: problems, pilot, methods). Mean L2 to the exact PF-ODE map on "
          "512 fresh start states, t ∈ [1e-3, 0.999]; pilot 512 states (384 fit / 128 held out), exact reference. "
          "Gain = plain / method (> 1: better than USF's best starting solver). Pilot cost = batched model calls "
          "of the fit (backward passes of the non-stationary fit not counted) and wall time on one (shared) CPU "
          "thread.", ""]
    keys = []
    for r in rows:
        k = (r["problem"], r["interpolant"])
        if k not in keys:
            keys.append(k)
    summary = []
    for prob, iname in keys:
        md += [f"## {prob}, {iname}", "", "| NFE | method | fresh L2 | gain vs plain | pilot L2 (fit / held) | pilot calls | s | note |",
               "|---|---|---|---|---|---|---|---|"]
        for nfe in sorted({int(r["nfe"]) for r in rows if (r["problem"], r["interpolant"]) == (prob, iname)}):
            cell = [r for r in rows if (r["problem"], r["interpolant"], int(r["nfe"])) == (prob, iname, nfe)]
            base = next(float(r["l2"]) for r in cell if r["method"].startswith("plain"))
            best = {}
            for r in cell:
                e = float(r["l2"])
                best[r["method"].split()[0]] = e
                pl = (f"{float(r['pilot_loss']):.2e} / {float(r['held_loss']):.2e}" if r["pilot_loss"] else "")
                md.append(f"| {nfe} | {r['method']} | {e:.3e} | {base / e:.2f}× | {pl} | {r['pilot_nfe']} | "
                          f"{r['seconds']} | {r['note']} |")
            summary.append((prob, iname, nfe, best))
        md.append("")
    md += ["## Summary", "", "| problem | path | NFE | plain | USF | fitted grid | fitted non-stationary | USF gain vs plain | "
           "USF vs grid | USF vs ns |", "|---|---|---|---|---|---|---|---|---|---|"]
    for prob, iname, nfe, b in summary:
        md.append(f"| {prob} | {iname} | {nfe} | {b['plain']:.2e} | {b['usf']:.2e} | {b['grid']:.2e} | {b['ns']:.2e} | "
                  f"{b['plain'] / b['usf']:.2f}× | {b['grid'] / b['usf']:.2f}× | {b['ns'] / b['usf']:.2f}× |")
    md.append("")
    wins_g = sum(b["usf"] <= b["grid"] for *_, b in summary)
    wins_n = sum(b["usf"] <= b["ns"] for *_, b in summary)
    wins_p = sum(b["usf"] <= b["plain"] for *_, b in summary)
    md.append(f"USF ≤ plain start on {wins_p} of {len(summary)} cells, ≤ fitted grid on {wins_g}, ≤ fitted "
              f"non-stationary on {wins_n} (fresh states).")
    md.append("")
    return "\n".join(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interpolant", choices=("linear", "vp"), default="linear")
    ap.add_argument("--n-pilot", type=int, default=512)
    ap.add_argument("--n-fresh", type=int, default=512)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    paths = [os.path.join(OUT, f"usf_search_{i}.csv") for i in ("linear", "vp")]
    if a.report:
        text = report([p for p in paths if os.path.exists(p)])
        with open(os.path.join(OUT, "usf_search.md"), "w") as fh:
            fh.write(text)
        print(text)
        return
    tic = time.time()
    run(a.interpolant, paths[0 if a.interpolant == "linear" else 1], a.n_pilot, a.n_fresh)
    print(f"done in {time.time() - tic:.0f} s")


if __name__ == "__main__":
    main()

"""DC-Solver vs UniPC (order 3, bh2, log-SNR grid) on gmm2d: ratios fitted on a 10-state pilot with the exact map,
error (mean L2 to the exact map) on 512 fresh states; plus the cascade-polynomial regression fitted on NFE
5, 6, 10 predicting NFE 8 (unseen). Run: PYTHONPATH=$PWD python benchmarks/dc_solver.py"""
import sys
import time

import torch

from workbench import interpolants, schedules
from workbench.fitting import Pilot
from workbench.fitting.dc_solver import fit_dc_ratios, ratio_regression
from workbench.problems import PROBLEMS
from workbench.solvers.dc_solver import DCSolver

T0, T1 = 1e-3, 0.999
names = sys.argv[1:] or ["linear", "vp", "discrete_vp"]
prob = PROBLEMS.get("gmm2d")
for name in names:
    try:
        I = interpolants.get(name)
    except Exception as e:  # noqa: BLE001
        print(name, "unavailable:", e)
        continue
    field = prob.field(I, "cpu", torch.float64)
    x0 = prob.sample_start(I, T0, 512, torch.Generator().manual_seed(0))
    ref = prob.reference(I, x0, T0, T1)
    xp = prob.sample_start(I, T0, 10, torch.Generator().manual_seed(1))
    pilot = Pilot.build(field, xp, T0, T1, prob.reference(I, xp, T0, T1), holdout=0.2)
    pm = Pilot.build(field, x0, T0, T1, ref).model(field)
    err = lambda s, g: float((s.compensated(pm, x0, g) - ref).norm(dim=1).mean())
    fits = {}
    for nfe in (5, 6, 8, 10):
        g = schedules.get("logsnr").grid(nfe, I, T0, T1).tolist()
        t = time.time()
        f = fit_dc_ratios(field, pilot, g, iterations=80)
        fits[nfe] = f.params["ratios"]
        e_u, e_d = err(DCSolver(), g), err(DCSolver(tuple(f.params["ratios"])), g)
        print(f"{name:12s} NFE {nfe:2d}: UniPC {e_u:.4g}  DC {e_d:.4g}  gain x{e_u / e_d:.2f}  kept={f.improved} "
              f"pilot_nfe={f.pilot_nfe} ({time.time() - t:.1f}s)  ratios={[round(r, 3) for r in f.params['ratios']]}")
    pred = ratio_regression({n: fits[n] for n in (5, 6, 10)})(8)
    g = schedules.get("logsnr").grid(8, I, T0, T1).tolist()
    print(f"{name:12s} NFE  8 from regression on 5,6,10: UniPC {err(DCSolver(), g):.4g}  DC {err(DCSolver(tuple(pred)), g):.4g}")

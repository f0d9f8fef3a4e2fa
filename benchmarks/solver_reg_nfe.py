"""Solver-aware regularisation (Pal et al. 2021) on 2-D toy sets: does dopri5 at a fixed tolerance need fewer NFE
after fine-tuning with :class:`~workbench.training.regularizers.SolverErrorRegularizer`, at equal sliced W2?

    .venv/bin/python benchmarks/solver_reg_nfe.py [moons checkerboard] [--seed S]

One teacher per data set (MLP velocity model, linear path); it is fine-tuned for the same number of Adam steps with
the plain velocity loss (weight 0) and with the regulariser at several weights, from the same seed. Each model is then
sampled by dopri5 at rtol = atol = 1e-3 from 2000 seeded noise draws; reported: NFE, accepted/rejected steps (the
per-step log of :func:`workbench.samplers.adaptive_log`), the largest accepted error estimate, and SW2 to held-out
data with its standard error over 4 independent evaluation draws. "Equal SW2" = |ΔSW2| ≤ 2·SE(Δ).
Writes benchmarks/results/paths/solver_reg_nfe.jsonl (``--seed S`` > 0: teacher and fine-tuning seed S, written to
solver_reg_nfe_seedS.jsonl, to see how much of a difference is the seed's).
"""
import copy
import json
import math
import os
import sys
import time

import torch

from workbench.metrics import sliced_wasserstein
from workbench.models.predictor import Predictor
from workbench.samplers import adaptive_log
from workbench.training import InterpolantLoss
from workbench.training.recipes import build, merge_spec
from workbench.training.regularizers import SolverErrorRegularizer
from workbench.training.trainer import Trainer

WEIGHTS = (0.0, 0.03, 0.1, 0.3)
RTOL = 1e-3


def finetune(pred: Predictor, data, steps: int, weight: float, seed: int = 0) -> Predictor:
    new = Predictor(copy.deepcopy(pred.network).requires_grad_(True), pred.interpolant, pred.prediction, pred.architecture)
    loss_fn = InterpolantLoss(pred.interpolant, "velocity")
    reg = SolverErrorRegularizer(weight=weight, rtol=RTOL, atol=RTOL)
    opt = torch.optim.Adam(new.network.parameters(), lr=3e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x1 = data.sample(256, g).float()
        z = torch.randn(32, 2, generator=g)  # drawn for every weight: identical data/time draws across runs
        loss = loss_fn(new.network, x1, g)
        if weight > 0:
            loss = loss + reg(new.network, z)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return new


def evaluate(pred: Predictor, ds, n: int = 2000, draws: int = 4) -> dict:
    sws, nfes, acc, rej, emax = [], [], [], [], []
    for k in range(draws):
        z = torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + k))
        log = adaptive_log("dopri5", pred.field(), z, 10 ** 6, rtol=RTOL, atol=RTOL)
        data = ds.sample(n, torch.Generator().manual_seed(200 + k)).double()
        sws.append(float(sliced_wasserstein(log.x.double(), data, generator=torch.Generator().manual_seed(1))))
        nfes.append(log.nfe)
        acc.append(log.accepted)
        rej.append(log.rejected)
        emax.append(max(log.errors[i] for i in range(len(log.errors)) if log.accepted_mask[i]))
    m = sum(sws) / draws
    se = math.sqrt(sum((s - m) ** 2 for s in sws) / (draws - 1) / draws)
    return {"sw2": m, "sw2_se": se, "sw2_draws": sws, "nfe": sum(nfes) / draws, "accepted": sum(acc) / draws,
            "rejected": sum(rej) / draws, "max_accepted_error": max(emax)}


def run(dataset: str, steps: int = 1000, tune_steps: int = 300, seed: int = 0) -> list:
    torch.set_num_threads(1)
    spec = merge_spec({"dataset": dataset, "architecture_params": {"width": 64},
                       "train": {"steps": steps, "progress": False, "seed": seed}})
    pred, ds, cfg = build(spec)
    teacher = Trainer(pred, ds, cfg).train().ema_predictor()
    rows = []
    for w in WEIGHTS:
        t0 = time.time()
        tuned = finetune(teacher, ds, tune_steps, w, seed=seed)
        row = {"dataset": dataset, "seed": seed, "weight": w, "tune_steps": tune_steps, "rtol": RTOL, **evaluate(tuned, ds),
               "tune_seconds": round(time.time() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    for r in rows[1:]:
        d = r["sw2"] - base["sw2"]
        se = math.sqrt(r["sw2_se"] ** 2 + base["sw2_se"] ** 2)
        r["delta_sw2"], r["delta_sw2_se"] = d, se
        r["equal_sw2"] = abs(d) <= 2 * se
        r["fewer_nfe"] = r["nfe"] < base["nfe"]
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="*", default=["moons", "checkerboard"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = args.datasets
    out = os.path.join(os.path.dirname(__file__), "results", "paths",
                       "solver_reg_nfe.jsonl" if args.seed == 0 else f"solver_reg_nfe_seed{args.seed}.jsonl")
    t0 = time.time()
    allrows = []
    for n in names:
        allrows += run(n, seed=args.seed)
    with open(out, "w") as fh:
        for r in allrows:
            fh.write(json.dumps(r) + "\n")
    print(f"wall {time.time() - t0:.0f} s -> {out}")

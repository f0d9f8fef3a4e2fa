"""Neural PDE surrogates on resolved Kolmogorov flow: FNO, UNet, PDE-Refiner-style refiner, Spectral-Refiner, TSM.

Data: Kolmogorov flow (forcing sin(4y), ν = 2e-3, drag 0.1) simulated at 128² (IF-RK4, dt = 0.01, resolved to its
cutoff at 32²; see workbench.data.resolution) and spectrally truncated to 32²; frames every 0.2 time units after a
warm-up of 10. Every model is trained on the same windows and rolled out from the same held-out histories; scores
from workbench.metrics.rollout. CPU-sized on purpose (small models, few hundred iterations): a comparison of
methods at equal small budget, not converged numbers.

    .venv/bin/python benchmarks/fields_surrogates.py            # ~5-10 min on one shared CPU thread
    .venv/bin/python benchmarks/fields_surrogates.py --quick    # smoke test (16² grid, seconds; labelled)

    .venv/bin/python benchmarks/fields_surrogates.py --plot-only  # redraw surrogates.png from surrogates.json

Writes benchmarks/results/fields/surrogates.md, surrogates.json with the curves, and surrogates.png (nRMSE against
the solver's own rollout per step, with persistence and the decorrelated level √2 as references).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from workbench.data.navier_stokes import cache_path, kolmogorov_config, load_or_generate  # noqa: E402
from workbench.fields.pipeline import downsample, metric_bands  # noqa: E402
from workbench.fields.refiner import count_parameters  # noqa: E402
from workbench.fields.surrogates import SURROGATES, SpectralRefiner  # noqa: E402
from workbench.metrics.rollout import nrmse, rollout_report  # noqa: E402


FRAME_DT = 0.2  # simulated time between frames (module docstring)


def plot_curves(json_path: str, png_path: str) -> None:
    """nRMSE_k = ‖û_k − u_k‖/‖u_k‖ against simulated time k·Δt for every model, persistence (û_k = u_0) and √2 (a
    decorrelated field of equal variance); a diverged rollout's curve stops at its last finite frame."""
    import math

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(json_path) as f:
        d = json.load(f)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for name, curve in d["nrmse"].items():
        ax.plot([k * FRAME_DT for k in range(len(curve))], curve, label=name)
    pers = d["persistence"]
    ax.plot([k * FRAME_DT for k in range(len(pers))], pers, "k--", label="persistence (u_0 kept)")
    ax.axhline(math.sqrt(2.0), color="0.5", lw=0.8, ls=":", label="√2 (decorrelated)")
    ax.set(xlabel="simulated time", ylabel="nRMSE vs solver", ylim=(0, 3.5),
           title=f"Kolmogorov flow {d['args']['grid']}² rollouts (from {d['args']['sim_grid']}² simulation)")
    ax.legend(fontsize=8)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, output labelled as such")
    ap.add_argument("--out-dir", default=os.path.join("benchmarks", "results", "fields"))
    ap.add_argument("--cache-dir", default=os.path.join("data", "cache"))
    ap.add_argument("--sim-grid", type=int, default=128)
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=300, help="training iterations per model")
    ap.add_argument("--fine-tune-iterations", type=int, default=150)
    ap.add_argument("--unroll", type=int, default=1, help="push-forward steps for the deterministic models")
    ap.add_argument("--rollout-steps", type=int, default=40)
    ap.add_argument("--input-noise", type=float, default=0.05, help="training input noise (the pipeline's default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="output file stem (default surrogates)")
    ap.add_argument("--plot-only", action="store_true", help="redraw <name>.png from the stored <name>.json")
    args = ap.parse_args()
    if args.plot_only:
        stem = os.path.join(args.out_dir, args.name or "surrogates")
        plot_curves(stem + ".json", stem + ".png")
        return 0
    torch.set_num_threads(args.threads)
    if args.quick:
        args.sim_grid, args.grid, args.iterations, args.fine_tune_iterations, args.rollout_steps = 32, 16, 20, 10, 8
    t_all = time.perf_counter()
    history = 4
    common = dict(n=args.sim_grid, frame_dt=0.2, warmup=10.0, dtype="float64")
    train_cfg = kolmogorov_config(n_traj=8 if not args.quick else 2, frames=41 if not args.quick else 12,
                                  seed=args.seed, **common)
    test_cfg = kolmogorov_config(n_traj=4 if not args.quick else 2, frames=args.rollout_steps + history + 1,
                                 seed=args.seed + 1000, **common)
    t0 = time.perf_counter()
    train = load_or_generate(train_cfg, cache_path(train_cfg, args.cache_dir), progress=False)["vorticity"]
    test = load_or_generate(test_cfg, cache_path(test_cfg, args.cache_dir), progress=False)["vorticity"]
    t_data = time.perf_counter() - t0
    train = downsample(train, args.grid).float()
    test = downsample(test, args.grid).float()
    print(f"data: train {tuple(train.shape)}, test {tuple(test.shape)} from {args.sim_grid}² ({t_data:.0f}s)", flush=True)

    n = args.grid
    fno_kw = dict(width=16, modes=min(8, n // 4), layers=4)
    specs = {
        "fno": ("fno", fno_kw),
        "unet": ("unet", dict(grid=n, channels=12, channel_mult=(1, 2))),
        "pde_refiner": ("pde_refiner", dict(nfe=8, solver="euler", **fno_kw)),
        "tsm": ("tsm", dict(history=history, order=4, stencil=3, **fno_kw)),
    }
    models, logs, secs = {}, {}, {}
    for label, (name, kw) in specs.items():
        torch.manual_seed(args.seed)
        m = SURROGATES.get(name, **kw)
        unroll = 1 if name == "pde_refiner" else args.unroll
        t0 = time.perf_counter()
        logs[label] = m.fit(train, args.iterations, 16, 2e-3, args.seed, progress=False,
                            input_noise=args.input_noise, unroll=unroll)
        secs[label] = time.perf_counter() - t0
        models[label] = m
        print(f"{label}: {count_parameters(m)} params, final loss {logs[label].loss[-1]:.4g} ({secs[label]:.0f}s)",
              flush=True)
    sr = SpectralRefiner.from_operator(models["fno"], bands=metric_bands(n), band_weights="balanced", trainable_layers=1)
    t0 = time.perf_counter()
    logs["spectral_refiner"] = sr.fine_tune(train, args.fine_tune_iterations, 16, 5e-4, args.seed, progress=False,
                                            input_noise=args.input_noise, unroll=args.unroll)
    secs["spectral_refiner"] = secs["fno"] + time.perf_counter() - t0
    models["spectral_refiner"] = sr
    print(f"spectral_refiner: fine-tuned {sum(p.numel() for mm in sr.fine_tuned_modules() for p in mm.parameters())} "
          f"of {count_parameters(sr)} params, weights {sr.spectral_loss.weights} ({secs['spectral_refiner']:.0f}s "
          "incl. the FNO)", flush=True)

    hist0 = test[:, :history]
    truth = test[:, history - 1:history + args.rollout_steps]
    bands = metric_bands(n)
    rows, curves = [], {}
    for label in ("fno", "unet", "pde_refiner", "spectral_refiner", "tsm"):
        m = models[label].eval()
        if hasattr(m, "reset_noise"):
            m.reset_noise()
        h = hist0 if m.history == history else hist0[:, -m.history:]
        t0 = time.perf_counter()
        pred = m.rollout(h, args.rollout_steps)
        t_roll = time.perf_counter() - t0
        finite = torch.isfinite(pred).flatten(2).all(-1).all(0)  # (T,)
        good = int(torch.cumprod(finite.long(), 0).sum())
        diverged = good <= args.rollout_steps
        if good < 2:
            raise RuntimeError(f"{label}: non-finite prediction at the first step")
        # scores over the finite prefix; a rollout that blew up is reported as such
        r = rollout_report(pred[:, :good].double(), truth[:, :good].double(), dt=0.2, bands=bands)
        r["diverged_at"] = good if diverged else None
        curves[label] = r["nrmse"].tolist()
        rows.append((label, r, t_roll))
    pers = nrmse(truth[:, :1].expand_as(truth).double(), truth.double())
    steps = sorted({1, 10, args.rollout_steps} & set(range(1, args.rollout_steps + 1)))

    lo, hi = bands
    desc = ("SMOKE TEST (--quick): tiny sizes, not a result\n\n" if args.quick else "")
    out = [desc + f"# Neural PDE surrogates on resolved Kolmogorov flow ({args.grid}² from a {args.sim_grid}² "
           "simulation)\n",
           f"CPU budget (one thread, shared machine): {train.shape[0]} training trajectories × {train.shape[1]} "
           f"frames (Δt = 0.2), {args.iterations} AdamW iterations of batch 16 per model (Spectral-Refiner: the FNO's "
           f"weights + {args.fine_tune_iterations} fine-tuning iterations of its last Fourier layer and head), "
           f"unroll = {args.unroll}, input noise {args.input_noise:g}·s_u; FNO/TSM/refiner width 16, {fno_kw['modes']} modes, 4 layers; UNet 12·(1,2) "
           f"channels. Rollouts of {args.rollout_steps} steps from {test.shape[0]} held-out histories "
           f"({history} frames for TSM, the last one for the others). Small, briefly trained models: a comparison "
           "at equal small budget, not converged accuracy. Total run time "
           "{TOTAL} s.\n",
           "| model | params | train s | " + " | ".join(f"nRMSE step {s}" for s in steps)
           + f" | corr. time ρ ≥ 0.8 | ρ ≥ 0.95 | fRMSE low (s < {lo}) | mid ({lo} ≤ s < {hi}) | high (s ≥ {hi}) "
           "| enstrophy drift (final) |",
           "|---|---|---|" + "---|" * len(steps) + "---|---|---|---|---|---|"]
    for label, r, t_roll in rows:
        ct = r["correlation_time"]

        def _ct(th):
            c = ct[th]
            return ("≥ " if c["censored"] else "") + f"{c['time']:.1f}"

        be = r["band_errors"]
        e = r["nrmse"]
        out.append(f"| {label} | {count_parameters(models[label])} | {secs[label]:.0f} | "
                   + " | ".join(f"{float(e[s]):.3f}" if s < len(e) else f"diverged (step {r['diverged_at']})" for s in steps)
                   + f" | {_ct(0.8)} | {_ct(0.95)} | {float(be['low'][1:].mean()):.4g} | {float(be['mid'][1:].mean()):.4g}"
                   f" | {float(be['high'][1:].mean()):.4g} | {float(r['invariant_drift'][-1]):+.3g} |")
    out.append(f"| persistence (u_0 kept) | – | – | " + " | ".join(f"{float(pers[s]):.3f}" for s in steps)
               + " | – | – | – | – | – | – |")
    out.append("\nnRMSE = ‖û − u‖/‖u‖ (batch mean; √2 ≈ 1.414 = a decorrelated field of equal variance). "
               "Correlation time: simulated time for which the batch-mean Pearson correlation with the solver stays "
               "≥ the threshold (≥: never fell below within the rollout). fRMSE: per-shell RMS error amplitude averaged "
               "over the band's shells and all rollout steps (PDEBench's bands). Enstrophy drift: model / solver − 1 at "
               "the last step. The refiner samples each step with euler, 8 NFE (logsnr grid). A rollout that became "
               "non-finite ('diverged (step k)': first non-finite frame) is scored over its finite prefix only; the "
               "train s column is wall time on a machine shared with other jobs (Spectral-Refiner: FNO + "
               "fine-tuning).\n")
    total = time.perf_counter() - t_all
    text = "\n".join(out).replace("{TOTAL}", f"{total:.0f}")
    os.makedirs(args.out_dir, exist_ok=True)
    name = args.name or ("surrogates_quick" if args.quick else "surrogates")
    with open(os.path.join(args.out_dir, name + ".md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out_dir, name + ".json"), "w") as f:
        json.dump({"nrmse": curves, "persistence": pers.tolist(), "train_seconds": secs,
                   "losses": {k: v.loss for k, v in logs.items()}, "args": vars(args)}, f, indent=1)
    plot_curves(os.path.join(args.out_dir, name + ".json"), os.path.join(args.out_dir, name + ".png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

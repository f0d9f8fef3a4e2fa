"""Better than the model's own sampler, on a *trained* network: a small diffusers ``UNet2DModel`` trained on
scikit-learn's 8×8 digits by the workbench's own trainer, saved and reloaded through diffusers'
``save_pretrained`` / ``from_pretrained`` on a local folder, then sampled by diffusers' schedulers and by ours
(plain, on a fitted grid, and as a fitted non-stationary solver).

Training: ``workbench.training.Trainer`` (the trainer of ``benchmarks/train_digits.py``) on the ``digits`` data set,
ε-prediction on diffusers' linear DDPM table (T = 1000) as our :class:`~workbench.interpolants.DiscreteVP`; the UNet
sees diffusers' timestep ``k = T(1 − t) − 1`` (t uniform on [0.001, 0.999], i.e. k ∈ [0, 998]). The trained UNet and
its ``DDPMScheduler`` config are written with ``DDPMPipeline.save_pretrained`` to ``--model-dir`` (default
``runs/adapters_digits``, not committed; reused when present unless ``--retrain``), and everything below runs on the
reloaded model (``workbench.adapters.load_model``, ``from_pretrained(local_files_only=True)``, cubic table
interpolation).

Reference: the model's own probability-flow ODE, Dormand–Prince at rtol = atol = 1e-7 in float64 (to the last
trained step k = 0, then the frozen data prediction to σ = 0), from k = 999. Error: mean L2 distance to it over
``--n-eval`` start states, relative to the mean reference norm. Fits use ``--n-pilot`` separate pilot states (their
own dopri5 reference, built once) with a wall-time cap per fit; held-out pilot states decide keep-if-better.

Run: ``.venv/bin/python benchmarks/adapters_digits.py`` (one CPU thread; a few minutes of training on an idle core)
→ the "Digits-trained UNet" section of ``benchmarks/results/adapters_diffusers.md`` and ``digits_unet_samples.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
NFES = (5, 8, 10, 20)


def make_unet():
    import diffusers

    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(16, 32), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8, add_attention=False)


class TimestepNet(torch.nn.Module):
    """A diffusers UNet in the trainer's contract ``net(x, t)``: our t → diffusers' timestep k = T(1 − t) − 1."""

    def __init__(self, unet, interpolant):
        super().__init__()
        self.unet, self.interpolant = unet, interpolant

    def forward(self, x, t):
        k = self.interpolant.timestep(t.to(torch.float64)).to(x.dtype)
        return self.unet(x, k).sample


def train(model_dir: Path, steps: int, batch_size: int, lr: float, seed: int) -> dict:
    """Train with the workbench trainer and save a diffusers pipeline folder; returns training facts."""
    import diffusers

    from workbench.adapters import interpolant_from_scheduler
    from workbench.data.datasets import get_dataset
    from workbench.models.predictor import Predictor
    from workbench.training import Trainer

    torch.manual_seed(seed)
    scheduler = diffusers.DDPMScheduler()  # linear betas 1e-4 .. 0.02, T = 1000, epsilon
    interp = interpolant_from_scheduler(scheduler)
    unet = make_unet()
    pred = Predictor(TimestepNet(unet, interp), interp, "noise", architecture="diffusers_unet")
    ds = get_dataset("digits")
    trainer = Trainer(pred, ds, {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "warmup": 100,
                                 "ema_decay": 0.999, "threads": 1, "progress": False, "log_every": 100})
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    ema_unet = trainer.ema_predictor().network.unet
    model_dir.mkdir(parents=True, exist_ok=True)
    diffusers.DDPMPipeline(unet=ema_unet, scheduler=scheduler).save_pretrained(str(model_dir))
    facts = {"steps": trainer.step, "train_seconds": round(seconds, 1), "final_loss": trainer.history[-1][1],
             "parameters": sum(p.numel() for p in ema_unet.parameters()), "batch_size": batch_size, "lr": lr,
             "seed": seed}
    (model_dir / "training.json").write_text(json.dumps(facts, indent=2))
    return facts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default="runs/adapters_digits")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-eval", type=int, default=16)
    ap.add_argument("--n-pilot", type=int, default=32)
    ap.add_argument("--fit-seconds", type=float, default=45.0, help="wall-time cap of each fit")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model_dir = Path(args.model_dir)
    if args.retrain or not (model_dir / "model_index.json").is_file():
        facts = train(model_dir, args.steps, args.batch_size, args.lr, args.seed)
        print("trained:", json.dumps(facts), flush=True)
    if args.train_only:
        return 0
    facts = json.loads((model_dir / "training.json").read_text()) if (model_dir / "training.json").is_file() else {}
    lines = evaluate(model_dir, facts, args.n_eval, args.n_pilot, args.fit_seconds)
    write_section(RESULTS / "adapters_diffusers.md", SECTION, lines)
    print("\n".join(lines))
    return 0


SECTION = "## Digits-trained UNet"


def write_section(path: Path, heading: str, lines) -> None:
    """Replace (or append) the ``heading`` section of a markdown file, keeping the rest."""
    text = path.read_text() if path.is_file() else ""
    body = "\n".join([heading, "", *lines]) + "\n"
    pat = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pat.sub(lambda _: body + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")


def diffusers_loop(net32, make, n, x0):
    """A diffusers scheduler's own loop (float32, as it is used) from our t = 0 state ``x0``."""
    import diffusers

    sch = make()
    sch.set_timesteps(n)
    x = x0.to(torch.float32)
    if isinstance(sch, diffusers.EulerDiscreteScheduler):  # Euler's state is the VE variable x / a
        x = x * math.sqrt(float(sch.sigmas[0]) ** 2 + 1)
    with torch.no_grad():
        for k in sch.timesteps:
            x = sch.step(net32(sch.scale_model_input(x, k), k).sample, k, x).prev_sample
    return x.to(torch.float64)


def evaluate(model_dir: Path, facts: dict, n_eval: int, n_pilot: int, fit_seconds: float):
    import copy

    import diffusers

    from workbench import schedules, solvers
    from workbench.adapters import ModelProblem, load_model, scheduler_grid
    from workbench.fitting import Pilot, fit_grid, fit_nonstationary
    from workbench.plotting import plot_image_grid

    model = load_model(model_dir, interpolation="cubic", dtype=torch.float64)  # from_pretrained, local files only
    net = model.network
    net32 = copy.deepcopy(net).float()
    I, tm = model.interpolant, model.t_max
    x_eval = torch.randn(n_eval, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_pilot = torch.randn(n_pilot, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    problem = ModelProblem(model)
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = problem.reference(I, x_eval, 0.0, 1.0)
        ref_pilot = problem.reference(I, x_pilot, 0.0, 1.0)
    ref_s = time.perf_counter() - t0
    scale = float(ref.flatten(1).norm(dim=1).mean())

    def err(x):
        return float((x - ref).flatten(1).norm(dim=1).mean()) / scale

    def our_grid(sched, n):  # the trained range [k = 999, k = 0], then the step to σ = 0 (see adapters_diffusers.py)
        inner = schedules.get(sched).grid(n - 1, I, 0.0, tm)
        return torch.cat([inner, torch.ones(1, dtype=torch.float64)])

    peers = {
        "diffusers DDIM (trailing)": lambda: diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing"),
        "diffusers Euler": lambda: diffusers.EulerDiscreteScheduler(),
        "diffusers DPM-Solver++ 2M": lambda: diffusers.DPMSolverMultistepScheduler(),
        "diffusers UniPC (bh2, 2)": lambda: diffusers.UniPCMultistepScheduler(),
    }
    rows, grids = [], {}
    for label, make in peers.items():
        rows.append({"solver": label, **{n: err(diffusers_loop(net32, make, n, x_eval)) for n in NFES}})
        print(rows[-1], flush=True)
    field = model.field()
    plain = [("dpmpp_2m", "logsnr"), ("unipc", "logsnr"), ("unipc", "uniform"), ("dpmpp_3m", "uniform")]
    for name, sched in plain:
        r = {"solver": f"ours {name} ({sched})"}
        with torch.no_grad():
            for n in NFES:
                r[n] = err(solvers.get(name, variable="log_snr").sample(field, x_eval, n, grid=our_grid(sched, n)).x)
        rows.append(r)
        print(r, flush=True)
    r = {"solver": "ours unipc (diffusers' DPM-Solver grid)"}
    with torch.no_grad():
        for n in NFES:
            sch = diffusers.DPMSolverMultistepScheduler()
            sch.set_timesteps(n)
            r[n] = err(solvers.get("unipc", variable="log_snr").sample(field, x_eval, n, grid=scheduler_grid(sch)).x)
    rows.append(r)
    # the fits start from the best plain row of ours at each NFE (on the pilot, not on the evaluation states)
    pilot = Pilot.build(field, x_pilot, 0.0, 1.0, reference=ref_pilot, holdout=0.25)
    base = min((r for r in rows if r["solver"].startswith("ours") and "(" in r["solver"] and "diffusers" not in r["solver"]),
               key=lambda r: sum(math.log(r[n]) for n in NFES))
    bname, bsched = base["solver"].split()[1], base["solver"].split("(")[1].rstrip(")")
    solver = solvers.get(bname, variable="log_snr")
    r_grid = {"solver": f"ours {bname}, fitted grid"}
    r_ns = {"solver": f"ours non-stationary, fitted (from {bname} on the fitted grid)"}
    fit_info = []
    for n in NFES:
        g0 = our_grid(bsched, n)
        tic = time.perf_counter()  # one pilot run's time sets the grid fit's evaluation budget (≈ fit_seconds)
        with torch.no_grad():
            solver.sample(field, pilot.fit[0], n, grid=g0)
        per_run = time.perf_counter() - tic
        gfit = fit_grid(solver, field, None, n, init=[g0], t_start=0.0, t_end=1.0, pilot=pilot,
                        max_evals=max(10, int(fit_seconds / per_run)))
        grid = torch.tensor(gfit.times, dtype=torch.float64)
        grids[n] = grid
        with torch.no_grad():
            r_grid[n] = err(solver.sample(field, x_eval, n, grid=grid).x)
        nsfit = fit_nonstationary(field, None, n, init=solver, grid=grid, pilot=pilot, lbfgs_steps=200,
                                  max_seconds=fit_seconds, patience=60)
        with torch.no_grad():
            r_ns[n] = err(nsfit.solver.sample(field, x_eval, n).x)
        fit_info.append(f"NFE {n}: grid {gfit.evals} pilot runs {gfit.seconds:.0f} s, held-out "
                        f"{gfit.init_holdout_loss:.3g} → {gfit.holdout_loss:.3g}{'' if gfit.improved else ' (kept start)'}; "
                        f"non-stationary {nsfit.iterations} iterations {nsfit.seconds:.0f} s, held-out "
                        f"{nsfit.init_holdout_loss:.3g} → {nsfit.holdout_loss:.3g}{'' if nsfit.improved else ' (kept start)'}")
        print(fit_info[-1], r_grid[n], r_ns[n], flush=True)
    rows += [r_grid, r_ns]
    target = next(r for r in rows if r["solver"] == "diffusers DPM-Solver++ 2M")[20]
    # the smallest NFE at which our best plain solver matches diffusers' DPM-Solver++ 2M at NFE 20, every NFE tried
    match_plain = None
    with torch.no_grad():
        for n in range(3, 21):
            e = err(solver.sample(field, x_eval, n, grid=our_grid(bsched, n)).x)
            if e <= target:
                match_plain = (n, e)
                break
    match_fit = min(((n, r["solver"], r[n]) for r in (r_grid, r_ns) for n in NFES if r[n] <= target), default=None)
    lines = [f"A diffusers `UNet2DModel` (8×8×1, channels (16, 32), {facts.get('parameters', '?')} parameters) trained "
             f"on the digits by `workbench.training.Trainer` (ε on the linear DDPM table, T = 1000; "
             f"{facts.get('steps', '?')} steps of batch {facts.get('batch_size', '?')}, {facts.get('train_seconds', '?')} s "
             "on one shared CPU thread), saved with `DDPMPipeline.save_pretrained` and reloaded with "
             "`workbench.adapters.load_model` (`from_pretrained`, local files only; cubic table interpolation). "
             f"Relative error to the model's own dopri5 solution (rtol = atol = 1e-7, float64; {ref_s:.0f} s for "
             f"{n_eval} + {n_pilot} states), {n_eval} evaluation start states; fits on {n_pilot} separate pilot states "
             f"({pilot.n_held} held out), ≤ {fit_seconds:.0f} s per fit. Regenerate: "
             "`.venv/bin/python benchmarks/adapters_digits.py` (trains into runs/adapters_digits when absent).", "",
             "| solver | " + " | ".join(f"NFE {n}" for n in NFES) + " |", "|---|" + "---|" * len(NFES)]
    for r in rows:
        lines.append(f"| {r['solver']} | " + " | ".join(f"{r[n]:.2e}" for n in NFES) + " |")
    lines += ["", f"diffusers DPM-Solver++ 2M at NFE 20: {target:.2e}. "
              + (f"Our best plain solver ({bname}, {bsched} grid on the trained range) matches it at NFE "
                 f"{match_plain[0]} ({match_plain[1]:.2e}). " if match_plain else
                 f"Our best plain solver ({bname}, {bsched}) does not match it at NFE ≤ 20. ")
              + (f"Fitted: at NFE {match_fit[0]} ({match_fit[1]}, {match_fit[2]:.2e})." if match_fit else
                 "No fitted row matches it at NFE ≤ 20."), "", "Fits (pilot, held-out mean L2 before → after):", ""]
    lines += [f"- {f}" for f in fit_info]
    # a picture: the reference and our best fitted sampler at NFE 8
    with torch.no_grad():
        x8 = solver.sample(field, x_eval, 8, grid=grids[8]).x
    plot_image_grid(torch.cat([ref[:8], x8[:8]]), str(RESULTS / "digits_unet_samples.png"),
                    title="digits UNet: dopri5 reference (top) / ours, fitted grid, NFE 8 (bottom)")
    lines += ["", "Samples: `benchmarks/results/digits_unet_samples.png` (reference top row, fitted-grid NFE 8 bottom)."]
    return lines

if __name__ == "__main__":
    raise SystemExit(main())

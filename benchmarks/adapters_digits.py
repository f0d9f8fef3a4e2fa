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
    from evaluate_adapters import evaluate_digits  # noqa: F401  (filled in below)

    return 0


if __name__ == "__main__":
    raise SystemExit(main())

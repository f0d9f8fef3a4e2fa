"""Train a small UNet flow on scikit-learn's 8×8 digits and save a PNG grid of samples.

Run:  .venv/bin/python benchmarks/train_digits.py [--steps 3000] [--out benchmarks/results/digits]

Reports (and writes to ``<out>/metrics.json``): training time, sliced-W2 / MMD² of 500 samples against the held-out
test digits next to the same numbers for 500 *training* digits (the floor a perfect model reaches), the mean
distance to the nearest training image (memorisation check), and how confidently a logistic-regression digit
classifier (fit on the training split) recognises the samples, compared with real test digits.
Outputs: ``samples.png`` (8×8 grid of samples), ``real.png`` (test digits), ``metrics.json`` (not committed). No checkpoint is kept
under ``benchmarks/`` (the model goes to ``--model-dir``, default ``runs/digits``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def grid_png(x: torch.Tensor, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.data.digits import to_unit

    imgs = to_unit(x[:64]).reshape(-1, 8, 8).numpy()
    fig, axes = plt.subplots(8, 8, figsize=(5, 5.3))
    for ax, im in zip(axes.ravel(), imgs):
        ax.imshow(im, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--interpolant", default="linear")
    ap.add_argument("--prediction", default="velocity")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nfe", type=int, default=40)
    ap.add_argument("--solver", default="heun")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/digits")
    ap.add_argument("--model-dir", default="runs/digits")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from sklearn.linear_model import LogisticRegression

    from workbench.metrics import mmd, sliced_wasserstein
    from workbench.training.recipes import generate, train_spec

    spec = {"dataset": "digits", "interpolant": args.interpolant, "prediction": args.prediction, "architecture": "unet",
            "architecture_params": {"channels": args.channels, "channel_mult": [1, 2], "blocks": 1},
            "train": {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                      "ema_decay": 0.999, "warmup": 200, "threads": args.threads, "out_dir": args.model_dir,
                      "log_every": 100}}
    t0 = time.perf_counter()
    trainer, ds, spec = train_spec(spec)
    train_s = time.perf_counter() - t0
    pred = trainer.ema_predictor()
    t0 = time.perf_counter()
    x = generate(pred, 500, args.solver, args.nfe, seed=args.seed + 1).clamp(-1, 1)
    sample_s = time.perf_counter() - t0
    test = ds.test_images[:500]
    train_ref = ds.train_images[:500]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    nn_train = torch.cdist(flat(x), flat(ds.train_images)).min(1).values
    nn_test = torch.cdist(flat(test), flat(ds.train_images)).min(1).values
    clf = LogisticRegression(max_iter=2000).fit(flat(ds.train_images).numpy(), ds.train_labels.numpy())
    p_samples = clf.predict_proba(flat(x).numpy())
    p_test = clf.predict_proba(flat(test).numpy())
    counts = np.bincount(p_samples.argmax(1), minlength=10).tolist()
    metrics = {
        "steps": trainer.step, "train_seconds": round(train_s, 1), "sample_seconds_500": round(sample_s, 2),
        "final_loss": trainer.history[-1][1], "solver": args.solver, "nfe": args.nfe,
        "sw2_samples_vs_test": float(sliced_wasserstein(x, test, 512, generator=g())),
        "sw2_train_vs_test": float(sliced_wasserstein(train_ref, test, 512, generator=g())),
        "mmd_samples_vs_test": float(mmd(x, test)), "mmd_train_vs_test": float(mmd(train_ref, test)),
        "mean_nn_dist_samples_to_train": float(nn_train.mean()), "mean_nn_dist_test_to_train": float(nn_test.mean()),
        "classifier_confidence_samples": float(p_samples.max(1).mean()),
        "classifier_confidence_test": float(p_test.max(1).mean()),
        "predicted_class_counts_samples": counts,
        "spec": spec,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid_png(x, out / "samples.png", f"flow samples ({args.interpolant}, {args.solver} @ {args.nfe} NFE, {trainer.step} steps)")
    grid_png(test, out / "real.png", "held-out test digits")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    print(json.dumps({k: v for k, v in metrics.items() if k != "spec"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

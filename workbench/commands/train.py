"""``workbench train``: train a velocity/score/denoiser model on a data set, save it, and score it.

A config file (JSON or YAML, the spec of :mod:`workbench.training.recipes`) gives defaults; flags override it.
Writes ``<out>/model.safetensors`` + ``model.json`` (EMA weights + config, loadable by ``workbench.models.io.load``),
the resumable ``trainer_state.*``, and ``metrics.json``; prints sliced-W2 / MMD / energy distance of model samples
against held-out data.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .run import parse_kv
from ..errors import ConfigError


def _read_config(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise ConfigError("config", f"file {path} does not exist")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - report any parse error as a config error
        raise ConfigError("config", f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping")
    return data


_TRAIN_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "ema_decay": "ema_decay",
                "grad_clip": "grad_clip", "seed": "seed", "time_sampling": "time_sampling", "coupling": "coupling",
                "device": "device", "dtype": "dtype", "threads": "threads", "checkpoint_every": "checkpoint_every",
                "warmup": "warmup", "weight_decay": "weight_decay", "lr_schedule": "lr_schedule"}


def spec_from_args(args) -> dict:
    """The training spec: config file, then flags on top."""
    spec = _read_config(args.config) if args.config else {}
    spec.setdefault("train", {})
    spec.setdefault("eval", {})
    for flag, key in (("dataset", "dataset"), ("interpolant", "interpolant"), ("prediction", "prediction"),
                      ("architecture", "architecture")):
        if getattr(args, flag) is not None:
            spec[key] = getattr(args, flag)
    for flag, key in (("dataset_param", "dataset_params"), ("interpolant_param", "interpolant_params"),
                      ("arch_param", "architecture_params")):
        kv = parse_kv(getattr(args, flag), key)
        if kv:
            spec[key] = {**spec.get(key, {}), **kv}
    for flag, key in _TRAIN_FLAGS.items():
        if getattr(args, flag) is not None:
            spec["train"][key] = getattr(args, flag)
    for flag, key in (("time_param", "time_params"), ("coupling_param", "coupling_params")):
        kv = parse_kv(getattr(args, flag), key)
        if kv:
            spec["train"][key] = {**spec["train"].get(key, {}), **kv}
    spec["train"]["out_dir"] = args.out
    spec["train"]["progress"] = not args.no_progress
    for flag, key in (("eval_samples", "n"), ("eval_solver", "solver"), ("eval_nfe", "nfe")):
        if getattr(args, flag) is not None:
            spec["eval"][key] = getattr(args, flag)
    return spec


def run(args) -> int:
    from ..training.recipes import evaluate, train_spec

    import torch

    from ..training.recipes import merge_spec

    from ..files import atomic_write_text, check_writable
    from ..training.recipes import check_eval

    spec = merge_spec(spec_from_args(args))
    check_eval(spec["eval"])
    check_writable("--out", args.out, directory=True)
    threads = spec["train"].get("threads")
    if threads:
        torch.set_num_threads(int(threads))   # small models: 1 thread is fastest, esp. on a shared CPU
    trainer, ds, spec = train_spec(spec, resume=args.resume)
    pred = trainer.ema_predictor()
    ev = spec["eval"]
    metrics = evaluate(pred, ds, ev["n"], ev["solver"], ev["nfe"], ev["seed"])
    summary = {"dataset": spec["dataset"], "interpolant": spec["interpolant"], "prediction": spec["prediction"],
               "steps": trainer.step, "final_loss": trainer.history[-1][1] if trainer.history else None,
               "train_seconds": round(trainer.wall_time, 2), **metrics, "out": args.out}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "spec.json", json.dumps(spec, indent=2, default=str))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        floor = f" (floor {metrics['sw2_floor']:.4f}: two held-out sets)" if "sw2_floor" in metrics else ""
        print(f"trained {spec['dataset']} / {spec['interpolant']} / {spec['prediction']}: {trainer.step} steps in "
              f"{trainer.wall_time:.1f} s, final loss "
              f"{'n/a' if summary['final_loss'] is None else format(summary['final_loss'], '.4f')}")
        print(f"sliced-W2 vs held-out ({metrics['n']} samples, {metrics['solver']} @ {metrics['nfe']} NFE): "
              f"{metrics['sw2']:.4f}{floor}; MMD² {metrics['mmd']:.2e}; energy {metrics['energy']:.2e}")
        print(f"saved {out / 'model.safetensors'} + {out / 'model.json'}")
    return 0


def register(sub) -> None:
    from ..data.datasets import DATASETS
    from ..interpolants import INTERPOLANTS

    p = sub.add_parser("train", help="train a velocity/score/denoiser model on a data set and score it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"datasets:\n{DATASETS.describe()}\ninterpolants:\n{INTERPOLANTS.describe()}")
    p.add_argument("--config", default=None, help="JSON or YAML spec (flags override it)")
    p.add_argument("--dataset", default=None, help="data set name (default moons)")
    p.add_argument("--dataset-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--interpolant", default=None, help="interpolant name (default linear)")
    p.add_argument("--interpolant-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--prediction", default=None, help="velocity, score, x1, noise, x0 or z (default velocity)")
    p.add_argument("--architecture", default=None, help="mlp or unet (default: mlp for vectors, unet for images)")
    p.add_argument("--arch-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--lr-schedule", default=None, help="constant or cosine")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--ema-decay", type=float, default=None)
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--time-sampling", default=None, help="uniform, logit_normal or u_shaped")
    p.add_argument("--time-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--coupling", default=None, help="independent or ot (minibatch OT)")
    p.add_argument("--coupling-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=None, help="torch threads while training (default 1)")
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/trainer_state.*")
    p.add_argument("--eval-samples", type=int, default=None, help="samples for the metrics (default 2000)")
    p.add_argument("--eval-solver", default=None, help="sampler for the metrics (default heun)")
    p.add_argument("--eval-nfe", type=int, default=None, help="NFE for the metrics (default 50)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)

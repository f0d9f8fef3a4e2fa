"""End-to-end recipes: build model + data from one config dict, train, evaluate against held-out data.

Used by ``workbench train``, the digits benchmark and the ``toy2d`` problem. A *spec* is a JSON/YAML-ready dict::

    {"dataset": "moons", "dataset_params": {}, "interpolant": "linear", "interpolant_params": {},
     "prediction": "velocity", "architecture": "mlp", "architecture_params": {"width": 128},
     "train": {...TrainConfig fields...}, "eval": {"n": 2000, "solver": "heun", "nfe": 50, "seed": 0}}
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from ..data.datasets import Dataset, get_dataset
from ..errors import ConfigError
from ..interpolants import INTERPOLANTS
from ..models import io
from ..models.predictor import Predictor, build_network
from .trainer import TrainConfig, Trainer

DEFAULT_SPEC: Dict[str, Any] = {
    "dataset": "moons", "dataset_params": {},
    "interpolant": "linear", "interpolant_params": {},
    "prediction": "velocity",
    "architecture": None, "architecture_params": {},
    "train": {"steps": 2000, "batch_size": 256, "lr": 2e-3, "threads": 1},
    "eval": {"n": 2000, "solver": "heun", "nfe": 50, "seed": 0},
}
EVAL_KEYS = ("n", "solver", "nfe", "seed")


def merge_spec(spec: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``DEFAULT_SPEC`` updated with ``spec`` (``train``/``eval`` merged key by key); unknown keys rejected."""
    out = copy.deepcopy(DEFAULT_SPEC)
    for k, v in (spec or {}).items():
        if k not in out:
            raise ConfigError("config", f"unknown key {k!r}; valid keys are: {', '.join(out)}")
        if k in ("train", "eval") and v is not None:
            if k == "eval":
                bad = sorted(set(v) - set(EVAL_KEYS))
                if bad:
                    raise ConfigError("eval", f"unknown key(s) {', '.join(bad)}; valid keys are: {', '.join(EVAL_KEYS)}")
            out[k].update(v)
        elif v is not None:
            out[k] = v
    return out


def build(spec: Dict[str, Any]) -> Tuple[Predictor, Dataset, TrainConfig]:
    """The (untrained) predictor, the dataset and the train config a merged spec describes.

    The network is initialised from ``train.seed`` (so a spec fixes the whole run).
    """
    ds = get_dataset(spec["dataset"], **spec["dataset_params"])
    interp = INTERPOLANTS.get(spec["interpolant"], **spec["interpolant_params"])
    arch = spec["architecture"] or ("mlp" if len(ds.shape) == 1 else "unet")
    cfg = TrainConfig.from_dict(spec["train"]).validate()
    check_eval(spec["eval"])
    torch.manual_seed(cfg.seed)
    net = build_network(arch, shape=list(ds.shape), **spec["architecture_params"])
    return Predictor(net, interp, spec["prediction"], arch), ds, cfg


@torch.no_grad()
def generate(predictor: Predictor, n: int, solver: str = "heun", nfe: int = 50, seed: int = 0,
             batch_size: int = 4096) -> torch.Tensor:
    """``n`` samples (float64, CPU) from the model's ODE from seeded Gaussian noise."""
    from .. import solvers

    param = next(predictor.network.parameters())
    g = torch.Generator().manual_seed(int(seed))
    x0 = torch.randn((int(n), *predictor.network.shape), generator=g, dtype=torch.float64)
    sol = solvers.get(solver)
    field = predictor.field()
    out = [sol.sample(field, x0[i:i + batch_size].to(param.device, param.dtype), nfe).x.to("cpu", torch.float64)
           for i in range(0, int(n), batch_size)]
    return torch.cat(out)


def evaluate(predictor: Predictor, dataset: Dataset, n: int = 2000, solver: str = "heun", nfe: int = 50,
             seed: int = 0) -> Dict[str, float]:
    """Sample quality against held-out data: sliced W2 (512 directions), MMD², energy distance; plus the
    ``sw2_floor`` of two independent held-out sets of the same size (what a perfect model would score)."""
    from ..metrics.distances import energy_distance, mmd, sliced_wasserstein

    x = generate(predictor, n, solver, nfe, seed)
    test = dataset.held_out(n)
    g = lambda: torch.Generator().manual_seed(1234)  # noqa: E731
    out = {"sw2": float(sliced_wasserstein(x, test, 512, generator=g())),
           "mmd": float(mmd(x[:2000], test[:2000])), "energy": float(energy_distance(x[:2000], test[:2000])),
           "n": int(n), "solver": solver, "nfe": int(nfe)}
    if dataset.shape and len(dataset.shape) == 1:
        other = dataset.held_out(n, seed=1)
        out["sw2_floor"] = float(sliced_wasserstein(other, test, 512, generator=g()))
    return out


def check_eval(ev: Dict[str, Any]) -> Dict[str, Any]:
    """Validate the ``eval`` part of a merged spec (sample count, solver, NFE, seed) before any training."""
    from .. import validation
    from ..solvers import SOLVERS, check_nfe

    validation.n_samples(ev["n"], "eval.n", minimum=2)
    solver = SOLVERS.canonical(ev["solver"])
    cls = SOLVERS.cls(solver)
    check_nfe(ev["nfe"], 1 if cls.adaptive else cls.evals_per_step, solver)
    validation.seed(ev["seed"], "eval.seed")
    return ev


def train_spec(spec: Optional[Dict[str, Any]] = None, resume: bool = False) -> Tuple[Trainer, Dataset, Dict[str, Any]]:
    """Build and train what ``spec`` describes; returns ``(trainer, dataset, merged spec)``."""
    spec = merge_spec(spec)
    pred, ds, cfg = build(spec)
    tr = Trainer(pred, ds, cfg)
    if resume:
        tr.resume()
    tr.train()
    return tr, ds, spec


def _cache_root() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "interpolant-workbench"))


def pretrained(spec: Optional[Dict[str, Any]] = None, cache: bool = True) -> Predictor:
    """A trained model for ``spec``, from the on-disk cache when the same spec was trained before.

    The cache key is a hash of the merged spec (dataset, interpolant, prediction, architecture, training).
    ``$WORKBENCH_CACHE`` overrides the cache folder (default ``~/.cache/interpolant-workbench``).
    """
    spec = merge_spec(spec)
    key_spec = {k: v for k, v in spec.items() if k != "eval"}
    key_spec["train"] = {k: v for k, v in spec["train"].items() if k not in ("progress", "out_dir", "threads")}
    key = hashlib.sha1(json.dumps(key_spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    stem = _cache_root() / f"{spec['dataset']}-{spec['interpolant']}-{key}" / "model"
    if cache and io.paths(stem)[0].exists():
        try:
            return io.load(stem)
        except ConfigError as exc:  # a corrupt cache entry is rebuilt, never used
            import warnings

            warnings.warn(f"the cached model is unusable ({exc}); retraining it", RuntimeWarning, stacklevel=2)
    spec["train"] = {**spec["train"], "progress": False, "out_dir": None}
    with torch.random.fork_rng(devices=[]):   # do not disturb the caller's global RNG
        tr, _, _ = train_spec(spec)
    pred = tr.ema_predictor()
    if cache:
        io.save(pred, stem, extra={"spec": spec})
    return pred


__all__ = ["DEFAULT_SPEC", "merge_spec", "check_eval", "build", "generate", "evaluate", "train_spec", "pretrained"]

"""Save and load trained models: weights in ``<stem>.safetensors``, a JSON config in ``<stem>.json``.

The config records the interpolant (name and parameters), the prediction kind and the architecture with its
constructor arguments; :func:`load` rebuilds the network from it, loads the weights strictly, and refuses a
checkpoint whose interpolant, prediction or architecture differs from what the caller expects.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from safetensors.torch import load_file, save_file

from ..errors import ConfigError
from ..files import atomic_path, atomic_write_text
from ..interpolants import Interpolant, canonical_prediction
from .predictor import Predictor, interpolant_config, resolve_interpolant

FORMAT = "workbench-model"
VERSION = 1
PathLike = Union[str, os.PathLike]


def paths(path: PathLike) -> Tuple[Path, Path]:
    """``(weights, config)`` paths for a stem (``.safetensors``/``.json`` suffixes are stripped)."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save(predictor: Predictor, path: PathLike, extra: Optional[Dict[str, Any]] = None,
         state_dict: Optional[Dict[str, torch.Tensor]] = None) -> Path:
    """Write ``predictor`` (or ``state_dict`` for its network, e.g. EMA weights) and its config.

    Returns:
        The weights path.
    """
    weights, cfg_path = paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    sd = state_dict if state_dict is not None else predictor.network.state_dict()
    cfg = {"format": FORMAT, "version": VERSION, **predictor.config(), "extra": dict(extra or {})}
    text = json.dumps(cfg, indent=2, sort_keys=True)
    with atomic_path(weights) as tmp:  # an interrupted save leaves the old model (or none), never a truncated one
        save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(tmp))
    atomic_write_text(cfg_path, text)
    return weights


def read_config(path: PathLike) -> Dict[str, Any]:
    """The JSON config of a saved model, validated for format and required fields."""
    _, cfg_path = paths(path)
    if not cfg_path.exists():
        raise ConfigError("checkpoint", f"no config {cfg_path} (a model is saved as <stem>.safetensors + <stem>.json)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("checkpoint", f"{cfg_path} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError("checkpoint", f"{cfg_path} must hold a JSON object, got a {type(cfg).__name__}")
    if cfg.get("format") != FORMAT:
        raise ConfigError("checkpoint", f"{cfg_path} is not a workbench model config (format={cfg.get('format')!r})")
    if cfg.get("version") != VERSION:
        raise ConfigError("checkpoint", f"{cfg_path} has format version {cfg.get('version')!r}; this workbench "
                                        f"reads version {VERSION}")
    missing = [k for k in ("interpolant", "prediction", "architecture") if k not in cfg]
    if missing:
        raise ConfigError("checkpoint", f"{cfg_path} lacks the field(s) {', '.join(missing)}")
    arch = cfg["architecture"]
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise ConfigError("checkpoint", f"{cfg_path}: 'architecture' must be an object with a 'name'")
    if not isinstance(cfg["prediction"], str):
        raise ConfigError("checkpoint", f"{cfg_path}: 'prediction' must be a string, got {cfg['prediction']!r}")
    return cfg


def load(path: PathLike, interpolant: Union[None, str, Interpolant, Dict[str, Any]] = None,
         prediction: Optional[str] = None, architecture: Optional[str] = None,
         device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32) -> Predictor:
    """Load a saved model, checking it against what the caller expects.

    Args:
        path: the stem (or either file) given to :func:`save`.
        interpolant, prediction, architecture: when given, the checkpoint must match them exactly
            (interpolant name *and* parameters).

    Raises:
        ConfigError: a missing/invalid file, a mismatch with the expectations, or weights that do not fit
            the architecture in the config.
    """
    cfg = read_config(path)
    weights, _ = paths(path)
    if interpolant is not None:
        want = interpolant_config(resolve_interpolant(interpolant))
        have = interpolant_config(resolve_interpolant(cfg["interpolant"]))
        if want != have:
            raise ConfigError("interpolant", f"checkpoint {weights.name} was trained for interpolant {have['name']!r} "
                                             f"{have['params']}, not {want['name']!r} {want['params']}")
    if prediction is not None and canonical_prediction(prediction) != cfg["prediction"]:
        raise ConfigError("prediction", f"checkpoint {weights.name} predicts {cfg['prediction']!r}, not "
                                        f"{canonical_prediction(prediction)!r}")
    if architecture is not None and architecture != cfg["architecture"]["name"]:
        raise ConfigError("architecture", f"checkpoint {weights.name} is a {cfg['architecture']['name']!r} network, "
                                          f"not {architecture!r}")
    _, cfg_path = paths(path)
    try:
        pred = Predictor.from_config(cfg)
    except ConfigError as exc:
        raise ConfigError("checkpoint", f"{cfg_path}: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # e.g. "width": "abc"
        raise ConfigError("checkpoint", f"{cfg_path} describes a network that cannot be built "
                                        f"({type(exc).__name__}: {exc})") from None
    if not weights.exists():
        raise ConfigError("checkpoint", f"weights file {weights} is missing")
    try:
        sd = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...: a truncated or foreign file
        raise ConfigError("checkpoint", f"{weights} is not a readable safetensors file "
                                        f"({type(exc).__name__}: {exc}); retrain or restore it") from None
    own = pred.network.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    bad = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or unexpected or bad:
        raise ConfigError("checkpoint", f"weights in {weights.name} do not fit the configured architecture: "
                                        f"missing={missing[:5]}, unexpected={unexpected[:5]}, wrong shape={bad[:5]}")
    pred.network.load_state_dict(sd)
    return pred.to(device=device, dtype=dtype).eval()


__all__ = ["save", "load", "read_config", "paths"]

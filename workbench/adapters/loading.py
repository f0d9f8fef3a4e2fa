r"""Load a model folder from disk into our contract: a local diffusers pipeline / UNet folder
(:func:`~workbench.adapters.diffusers.load_diffusers`) or a workbench model (``model.safetensors`` + ``model.json``,
:func:`workbench.models.io.load`), so ``workbench run --model DIR`` and ``Experiment(model=load_model(DIR))``
sample either. Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..errors import ConfigError
from .base import AdaptedModel
from .diffusers import find_diffusers_folder, load_diffusers

INTERPOLATIONS = ("linear", "cubic")


def from_predictor(predictor: Any, source: str = "workbench model") -> AdaptedModel:
    """A trained workbench :class:`~workbench.models.predictor.Predictor` (network, interpolant, prediction) as an
    :class:`AdaptedModel`: its own time (t ∈ [0, 1]), its own interpolant and prediction kind, no conversion.

    Raises:
        ConfigError: ``predictor`` is not a Predictor.
    """
    from ..models.predictor import Predictor

    if not isinstance(predictor, Predictor):
        raise ConfigError("model", f"expected a workbench Predictor, got {type(predictor).__name__}")
    net = predictor.network
    cfg = getattr(net, "config", None) or {}
    shape = tuple(int(s) for s in cfg["shape"]) if isinstance(cfg, dict) and cfg.get("shape") else None
    model = AdaptedModel(net, predictor.interpolant, predictor.prediction, t_max=1.0, sample_shape=shape,
                         source=f"{source} ({predictor.architecture}, {predictor.prediction})")
    model.network = net
    return model


def _workbench_stem(p: Path) -> Optional[Path]:
    """The ``<stem>`` of a workbench model at ``p`` (a folder holding ``model.json`` or a stem / either file)."""
    if p.is_dir():
        return p / "model" if (p / "model.json").is_file() else None
    stem = p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    return stem if stem.with_name(stem.name + ".json").is_file() else None


def load_model(path: Union[str, Path], interpolation: str = "cubic",
               dtype: Optional[torch.dtype] = None) -> AdaptedModel:
    r"""The model stored at ``path`` as an :class:`AdaptedModel`.

    ``path`` is a diffusers pipeline folder (``model_index.json``, ``unet/``, ``scheduler/``), a diffusers UNet folder
    (``config.json`` + weights + ``scheduler_config.json``) or a workbench model (a folder with ``model.safetensors``
    + ``model.json`` as ``workbench train`` writes, or that stem).

    Args:
        interpolation: of a diffusers table between its training timesteps (``"cubic"``: a smooth ODE, so the
            model's own Dormand–Prince reference is cheap and high-order solvers keep their order; ``"linear"``:
            diffusers' own fractional-timestep rule). Identical at the training timesteps.
        dtype: cast the network to it (default: as saved).

    Raises:
        ConfigError: (field ``model``) not a folder/stem of either kind, or the specific error of the loader
            (missing scheduler config, unknown ``prediction_type``, corrupt files), each one line.
    """
    if interpolation not in INTERPOLATIONS:
        raise ConfigError("interpolation", f"got {interpolation!r}; allowed values are: {', '.join(INTERPOLATIONS)}")
    p = Path(path)
    if not p.exists() and _workbench_stem(p) is None:
        raise ConfigError("model", f"{str(path)!r} does not exist")
    if p.is_dir() and find_diffusers_folder(p) is not None:
        return load_diffusers(p, interpolation=interpolation, dtype=dtype)
    stem = _workbench_stem(p)
    if stem is not None:
        from ..models import io

        pred = io.load(stem, dtype=dtype or torch.float32)
        pred.network.requires_grad_(False)
        return from_predictor(pred, source=f"workbench model {stem.name}")
    raise ConfigError("model", f"{str(path)!r} is not a model folder: expected a diffusers pipeline "
                               "(model_index.json, unet/, scheduler/), a diffusers UNet folder (config.json + "
                               "scheduler_config.json) or a workbench model (model.safetensors + model.json)")


__all__ = ["load_model", "from_predictor"]

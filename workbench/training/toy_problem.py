"""The ``toy2d`` problem: a small flow trained on a 2-D toy set, for the Experiment system and the dashboard.

``PROBLEMS.get("toy2d", dataset="moons")`` gives a problem whose ``field(interpolant, ...)`` is a velocity MLP trained
for *that* interpolant on the data set (≈ 1,500 steps, seconds on a CPU), cached on disk by its spec
(``$WORKBENCH_CACHE`` or ``~/.cache/interpolant-workbench``) and in memory, so a dashboard pays the training once.
``checkpoint=`` uses a model saved by ``workbench train`` instead (its interpolant must match).
Start states are Gaussian noise at ``t = 0``; target samples are fresh data at ``t = 1``; there is no exact map.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ..errors import ConfigError
from ..interpolants import Interpolant
from ..models import io
from ..models.predictor import Predictor, interpolant_config
from ..problems import Problem, register


@register("toy2d", "trained2d")
class Toy2D(Problem):
    """A trained 2-D flow.

    Args:
        dataset: a 2-D data set (``moons``, ``checkerboard``, ``spirals``, ``rings``, ``gmm``).
        steps, width, depth, seed: the training recipe (ignored with ``checkpoint``).
        checkpoint: path stem of a model saved by ``workbench train`` (``<out>/model``).
    """

    exact = False

    def __init__(self, dataset: str = "moons", steps: int = 1500, width: int = 64, depth: int = 2, seed: int = 0,
                 checkpoint: Optional[str] = None):
        from ..data.datasets import get_dataset

        self._data = get_dataset(dataset)
        if tuple(self._data.shape) != (2,):
            raise ConfigError("dataset", f"toy2d needs a 2-D data set, {dataset!r} has shape {self._data.shape}")
        self.dataset, self.steps, self.width, self.depth, self.seed = dataset, steps, width, depth, seed
        self._spec_base = {"dataset": dataset, "prediction": "velocity", "architecture": "mlp",
                          "architecture_params": {"width": int(width), "depth": int(depth)},
                          "train": {"steps": int(steps), "batch_size": 256, "seed": int(seed), "threads": 1}}
        self.checkpoint = checkpoint
        self._models: Dict[str, Predictor] = {}

    @property
    def shape(self) -> Tuple[int, ...]:
        return (2,)

    def predictor(self, interpolant: Interpolant) -> Predictor:
        """The trained model for ``interpolant`` (trained on first use, then cached)."""
        cfg = interpolant_config(interpolant)
        key = repr(cfg)
        if key not in self._models:
            if self.checkpoint:
                self._models[key] = io.load(self.checkpoint, interpolant=interpolant)
            else:
                from .recipes import pretrained

                self._models[key] = pretrained({**self._spec_base, "interpolant": cfg["name"],
                                                "interpolant_params": cfg["params"]})
        return self._models[key]

    def field(self, interpolant, device, dtype):
        return self.predictor(interpolant).to(device=device, dtype=dtype).field()

    def check(self, interpolant, t_start, t_end):
        if not interpolant.gaussian_base or float(t_start) != 0.0:
            raise ConfigError("t_start", "toy2d starts from Gaussian noise at t_start = 0 (interpolants with a "
                                         "Gaussian base only)")

    def sample_start(self, interpolant, t_start, n, generator):
        self.check(interpolant, t_start, 1.0)
        return torch.randn(n, 2, generator=generator, dtype=torch.float64)

    def sample_target(self, interpolant, t_end, n, generator):
        return self._data.sample(n, generator) if float(t_end) == 1.0 else None


__all__ = ["Toy2D"]

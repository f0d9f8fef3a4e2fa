"""scikit-learn's bundled 8×8 handwritten digits (1,797 images shipped inside scikit-learn; no download).

Pixels (0..16) are mapped to [-1, 1] and shaped ``(N, 1, 8, 8)``. The train/test split is a fixed seeded
permutation, so held-out images are never seen in training.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import torch

from ..errors import ConfigError


@lru_cache(maxsize=1)
def _load() -> Tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float64) / 8.0 - 1.0
    return x[:, None], torch.as_tensor(d.target, dtype=torch.long)


def load(split: str = "train", test_fraction: float = 0.2, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 8, 8)`` in [-1, 1] (float64) and labels ``(N,)`` of one split.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        test_fraction: share of images held out (fixed seeded permutation).
        seed: seed of the permutation.
    """
    if split not in ("train", "test", "all"):
        raise ConfigError("split", f"got {split!r}; allowed values are: train, test, all")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError("test_fraction", f"must be in (0, 1), got {test_fraction}")
    x, y = _load()
    if split == "all":
        return x.clone(), y.clone()
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * x.shape[0]))
    idx = perm[:n_test] if split == "test" else perm[n_test:]
    return x[idx].clone(), y[idx].clone()


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map model-space images in [-1, 1] back to [0, 1] (clamped) for display."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


__all__ = ["load", "to_unit"]

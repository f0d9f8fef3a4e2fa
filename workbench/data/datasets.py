"""The dataset registry: ``DATASETS.get("moons")``, ``get_dataset("digits")``.

A :class:`Dataset` draws training samples from a seeded generator (``sample``) and gives held-out samples that
the training stream never contains (``held_out``): fresh draws from a separate seed for generated sets, the
test split for shipped image sets. Unknown names raise an error listing the available ones.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Dict, Optional, Tuple

import torch

from ..errors import ConfigError
from ..models.gmm import GaussianMixture
from ..registry import Registry
from . import digits as _digits
from . import toy2d

DATASETS: "Registry[Dataset]" = Registry("dataset")
register = DATASETS.register

#: Seed offset of the held-out stream of generated data sets (disjoint from training seeds in practice).
HELD_OUT_SEED = 1_000_003


class Dataset(ABC):
    """A data law to train on.

    Attributes:
        shape: shape of one sample.
        truth: the exact law when known (a :class:`GaussianMixture`), else None.
    """

    name: str = "dataset"
    shape: Tuple[int, ...] = ()
    truth: Optional[GaussianMixture] = None

    def params(self) -> Dict[str, object]:
        """Constructor parameters (for configs)."""
        return dict(getattr(self, "_params", {}))

    @abstractmethod
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` training samples ``(n, *shape)``, float64 on the CPU."""

    def held_out(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` samples never drawn by the training stream (float64, CPU)."""
        return self.sample(n, torch.Generator().manual_seed(HELD_OUT_SEED + int(seed)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


class _Toy(Dataset):
    shape = (2,)
    fn: Callable[..., torch.Tensor]

    def __init__(self, **params):
        self._params = params

    def sample(self, n, generator=None):
        return type(self).fn(n, generator, **self._params)


@register("moons", "two_moons")
class Moons(_Toy):
    """Two interleaving half circles."""

    fn = staticmethod(toy2d.moons)

    def __init__(self, noise: float = 0.05):
        super().__init__(noise=float(noise))


@register("checkerboard", "checker")
class Checkerboard(_Toy):
    """Uniform on the black cells of a checkerboard over [-2, 2]²."""

    fn = staticmethod(toy2d.checkerboard)

    def __init__(self, size: int = 4):
        super().__init__(size=int(size))


@register("spirals", "2spirals")
class Spirals(_Toy):
    """Two interleaved spirals."""

    fn = staticmethod(toy2d.spirals)

    def __init__(self, noise: float = 0.1, turns: float = 1.5):
        super().__init__(noise=float(noise), turns=float(turns))


@register("rings", "circles")
class Rings(_Toy):
    """Concentric circles."""

    fn = staticmethod(toy2d.rings)

    def __init__(self, n_rings: int = 4, radius: float = 2.0, noise: float = 0.04):
        super().__init__(n_rings=int(n_rings), radius=float(radius), noise=float(noise))


@register("gmm", "gmm2d", "gaussian_mixture")
class GMM(_Toy):
    """8 anisotropic Gaussian modes on a ring with unequal weights; ``truth`` is the exact mixture."""

    fn = staticmethod(toy2d.gmm)

    def __init__(self, n_modes: int = 8, radius: float = 2.0):
        super().__init__(n_modes=int(n_modes), radius=float(radius))
        self.truth = toy2d.gmm_truth(int(n_modes), float(radius))


@register("digits", "digits8x8")
class Digits(Dataset):
    """scikit-learn's 8×8 digits in [-1, 1], shape ``(1, 8, 8)``; ``sample`` draws from the training split
    with replacement, ``held_out`` returns test-split images."""

    shape = (1, 8, 8)

    def __init__(self, test_fraction: float = 0.2, split_seed: int = 0):
        self._params = {"test_fraction": float(test_fraction), "split_seed": int(split_seed)}
        self.train_images, self.train_labels = _digits.load("train", float(test_fraction), int(split_seed))
        self.test_images, self.test_labels = _digits.load("test", float(test_fraction), int(split_seed))

    def sample(self, n, generator=None):
        idx = torch.randint(0, self.train_images.shape[0], (int(n),), generator=generator)
        return self.train_images[idx]

    def held_out(self, n, seed=0):
        if n > self.test_images.shape[0]:
            raise ConfigError("n", f"the digits test split has {self.test_images.shape[0]} images, asked for {n}")
        return self.test_images[:n]


def get_dataset(name: str, **params) -> Dataset:
    """Build the dataset ``name`` (error lists the available names and parameters)."""
    return DATASETS.get(name, **params)


__all__ = ["DATASETS", "Dataset", "get_dataset", "Moons", "Checkerboard", "Spirals", "Rings", "GMM", "Digits"]

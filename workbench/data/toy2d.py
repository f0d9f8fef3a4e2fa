r"""2-D toy data sets, generated in torch from a seeded :class:`torch.Generator` (any ``n``, no download).

Each function returns a float64 tensor of shape ``(n, 2)`` scaled to roughly unit spread, so one set of
training hyper-parameters works for all of them. ``gmm`` has an exact density (see :func:`gmm_truth`).
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from .. import validation
from ..errors import ConfigError
from ..models.gmm import GaussianMixture
from .gmm import gmm2d_ring


def _check_n(n: int) -> int:
    return validation.integer("n", n, 1, integral_floats=True)


def _u(n: int, g: Optional[torch.Generator]) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def _z(shape, g: Optional[torch.Generator]) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def moons(n: int, generator: Optional[torch.Generator] = None, noise: float = 0.05) -> torch.Tensor:
    r"""Two interleaving half circles (scikit-learn's ``make_moons`` in torch), centred and scaled by 1.5:

    .. math:: (\cos\theta, \sin\theta)\ \text{or}\ (1-\cos\theta,\ \tfrac12-\sin\theta),\ \theta\sim U[0,\pi],\ +\ \text{noise}\cdot N(0,I).
    """
    n = _check_n(n)
    theta = math.pi * _u(n, generator)
    upper = _u(n, generator) < 0.5
    x = torch.where(upper, torch.cos(theta), 1.0 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.5
    return pts + noise * 1.5 * _z((n, 2), generator)


def checkerboard(n: int, generator: Optional[torch.Generator] = None, size: int = 4) -> torch.Tensor:
    """Uniform on the black cells of a ``size``×``size`` checkerboard covering [-2, 2]² (FFJORD's toy)."""
    n = _check_n(n)
    if size < 2:
        raise ConfigError("size", f"must be >= 2, got {size}")
    cell = 4.0 / size
    i = torch.randint(0, size, (n,), generator=generator)
    j = torch.randint(0, size // 2 + (size % 2), (n,), generator=generator)
    j = 2 * j + (i % 2)                       # black cells: (i + j) even
    j = torch.where(j >= size, j - 2, j)
    x = -2.0 + cell * (i.to(torch.float64) + _u(n, generator))
    y = -2.0 + cell * (j.to(torch.float64) + _u(n, generator))
    return torch.stack([x, y], 1)


def spirals(n: int, generator: Optional[torch.Generator] = None, noise: float = 0.1, turns: float = 1.5) -> torch.Tensor:
    r"""Two interleaved spirals (FFJORD's ``2spirals``), divided by 3: radius grows as the angle
    :math:`\phi = \sqrt{u}\cdot 2\pi\,\text{turns}`."""
    n = _check_n(n)
    phi = torch.sqrt(_u(n, generator)) * turns * 2 * math.pi
    x = -torch.cos(phi) * phi + 0.5 * _u(n, generator)
    y = torch.sin(phi) * phi + 0.5 * _u(n, generator)
    sign = torch.where(_u(n, generator) < 0.5, -1.0, 1.0).to(torch.float64)
    pts = sign[:, None] * torch.stack([x, y], 1) / 3.0
    return pts / 1.5 + noise * _z((n, 2), generator)


def rings(n: int, generator: Optional[torch.Generator] = None, n_rings: int = 4, radius: float = 2.0,
          noise: float = 0.04) -> torch.Tensor:
    """``n_rings`` concentric circles with radii ``radius·k/n_rings``; points uniform in arc length."""
    n = _check_n(n)
    if n_rings < 1:
        raise ConfigError("n_rings", f"must be >= 1, got {n_rings}")
    radii = radius * torch.arange(1, n_rings + 1, dtype=torch.float64) / n_rings
    k = torch.multinomial(radii, n, replacement=True, generator=generator)
    theta = 2 * math.pi * _u(n, generator)
    r = radii[k]
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1) + noise * _z((n, 2), generator)


def gmm_truth(n_modes: int = 8, radius: float = 2.0) -> GaussianMixture:
    """The ``gmm`` toy's exact law: :func:`~workbench.data.gmm.gmm2d_ring` (anisotropic modes, unequal weights)
    with the mode shapes scaled to the ring radius."""
    s = radius / 3.0
    return gmm2d_ring(int(n_modes), float(radius), 0.45 * s, 0.15 * s)


def gmm(n: int, generator: Optional[torch.Generator] = None, n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """Samples of :func:`gmm_truth` (exact density, score and velocity available)."""
    return gmm_truth(n_modes, radius).sample(_check_n(n), generator)


__all__ = ["moons", "checkerboard", "spirals", "rings", "gmm", "gmm_truth"]

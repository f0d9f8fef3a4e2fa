"""Built-in Gaussian-mixture data sets with exact ground truth (generated, seeded; no download)."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..models.gmm import GaussianMixture


def gmm2d_ring(n_modes: int = 8, radius: float = 3.0, std_tangent: float = 0.45, std_radial: float = 0.15) -> GaussianMixture:
    """The default 2-D problem: ``n_modes`` anisotropic modes on a ring with unequal weights ∝ 1, 2, …, n.

    Each mode is elongated along the ring (``std_tangent``) and thin across it (``std_radial``).
    """
    if n_modes < 1:
        raise ConfigError("n_modes", f"must be >= 1, got {n_modes}")
    ang = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    means = radius * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    radial = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    tangent = torch.stack([-torch.sin(ang), torch.cos(ang)], 1)
    covs = (std_tangent ** 2) * tangent[:, :, None] * tangent[:, None, :] + (std_radial ** 2) * radial[:, :, None] * radial[:, None, :]
    weights = torch.arange(1, n_modes + 1, dtype=torch.float64)
    return GaussianMixture(means, covs, weights)


def gmm_random(dim: int = 64, n_modes: int = 8, seed: int = 0, mean_scale: float = 1.5,
               eig_min: float = 0.05, eig_max: float = 1.0) -> GaussianMixture:
    """A seeded random mixture in ``dim`` dimensions: random means, rotations and log-uniform eigenvalues, unequal weights."""
    if dim < 1 or n_modes < 1:
        raise ConfigError("dim", f"dim and n_modes must be >= 1, got {dim}, {n_modes}")
    g = torch.Generator().manual_seed(seed)
    means = mean_scale * torch.randn(n_modes, dim, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(n_modes, dim, dim, generator=g, dtype=torch.float64))
    u = torch.rand(n_modes, dim, generator=g, dtype=torch.float64)
    lam = torch.exp(math.log(eig_min) + u * (math.log(eig_max) - math.log(eig_min)))
    covs = q @ torch.diag_embed(lam) @ q.transpose(1, 2)
    covs = 0.5 * (covs + covs.transpose(1, 2))
    weights = 0.5 + torch.rand(n_modes, generator=g, dtype=torch.float64)
    return GaussianMixture(means, covs, weights)


def gaussian(dim: int = 2, seed: int = 0) -> GaussianMixture:
    """One anisotropic Gaussian (closed-form flow map), mean ≠ 0, eigenvalues in [0.1, 2]."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    lam = torch.linspace(0.1, 2.0, dim, dtype=torch.float64)
    cov = q @ torch.diag(lam) @ q.T
    return GaussianMixture(torch.full((1, dim), 0.7, dtype=torch.float64), (0.5 * (cov + cov.T))[None])

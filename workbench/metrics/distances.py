r"""Sample-based distances between distributions."""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import ConfigError


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dim() < 2 or y.dim() < 2 or x.shape[1:] != y.shape[1:]:
        raise ConfigError("x/y", f"need samples of equal event shape (N, ...), got {tuple(x.shape)} and {tuple(y.shape)}")


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256, p: int = 2,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Sliced Wasserstein-p distance, Monte-Carlo over random directions :math:`\theta`:

    .. math:: SW_p(\mu,\nu) = \Big(E_\theta\, W_p^p(\theta_\#\mu, \theta_\#\nu)\Big)^{1/p}

    1-D :math:`W_p` between empirical laws is computed by sorting (on quantiles when ``N ≠ M``).
    """
    _check_pair(x, y)
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    y = y.reshape(y.shape[0], -1).to(torch.float64)
    theta = torch.randn(x.shape[1], n_projections, generator=generator, dtype=torch.float64).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    if px.shape[0] != py.shape[0]:
        q = (torch.arange(max(px.shape[0], py.shape[0]), dtype=torch.float64, device=x.device) + 0.5)
        q = q / q.shape[0]
        px = torch.quantile(px, q, dim=0)
        py = torch.quantile(py, q, dim=0)
    return ((px - py).abs() ** p).mean() ** (1.0 / p)

r"""Sample-based distances between distributions."""
from __future__ import annotations

from typing import Optional, Sequence, Union

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


def _flat64(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).to(torch.float64)


def _sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d.clamp_min(0.0)


def default_bandwidths(x: torch.Tensor, y: torch.Tensor, factors: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)
                       ) -> torch.Tensor:
    """Multi-bandwidth default: ``factors`` × the median pairwise distance of the pooled sample (≤ 2,000 points)."""
    z = torch.cat([_flat64(x)[:1000], _flat64(y)[:1000]])
    med = torch.sqrt(torch.median(_sqdist(z, z)[torch.triu_indices(z.shape[0], z.shape[0], 1).unbind()]))
    return med * torch.as_tensor(factors, dtype=torch.float64, device=z.device)


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: Union[None, float, Sequence[float], torch.Tensor] = None,
        unbiased: bool = True) -> torch.Tensor:
    r"""Squared maximum mean discrepancy with a sum of RBF kernels (Gretton et al. 2012):

    .. math::
        \mathrm{MMD}^2 = E\,k(X,X') + E\,k(Y,Y') - 2E\,k(X,Y),\qquad
        k(x,y) = \sum_j \exp\!\big(-|x-y|^2 / (2h_j^2)\big).

    ``unbiased=True`` drops the diagonal terms (the U-statistic; may be slightly negative), else the V-statistic.
    ``bandwidths=None`` uses :func:`default_bandwidths` (the median heuristic times 1/4 … 4).
    """
    _check_pair(x, y)
    xf, yf = _flat64(x), _flat64(y)
    if bandwidths is None:
        h = default_bandwidths(xf, yf)
    else:
        h = torch.as_tensor(bandwidths, dtype=torch.float64, device=xf.device).reshape(-1)
    if not bool((h > 0).all()):
        raise ConfigError("bandwidths", f"must be > 0, got {h.tolist()}")

    def k(a, b):
        d = _sqdist(a, b)
        return sum(torch.exp(-d / (2 * hj * hj)) for hj in h)

    n, m = xf.shape[0], yf.shape[0]
    kxx, kyy, kxy = k(xf, xf), k(yf, yf), k(xf, yf)
    if unbiased:
        if n < 2 or m < 2:
            raise ConfigError("x/y", "the unbiased MMD needs at least 2 samples on each side")
        exx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        eyy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    else:
        exx, eyy = kxx.mean(), kyy.mean()
    return exx + eyy - 2.0 * kxy.mean()


def energy_distance(x: torch.Tensor, y: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    r"""Energy distance (Székely & Rizzo 2013), the squared form:

    .. math:: \mathcal E(\mu,\nu) = 2E|X-Y| - E|X-X'| - E|Y-Y'| \ \ge 0,\ = 0 \iff \mu = \nu.

    ``unbiased=True`` averages the within-sample terms over distinct pairs only.
    """
    _check_pair(x, y)
    xf, yf = _flat64(x), _flat64(y)
    n, m = xf.shape[0], yf.shape[0]
    dxy = torch.sqrt(_sqdist(xf, yf)).mean()
    dxx, dyy = torch.sqrt(_sqdist(xf, xf)), torch.sqrt(_sqdist(yf, yf))
    dxx.fill_diagonal_(0.0)
    dyy.fill_diagonal_(0.0)
    if unbiased:
        exx = dxx.sum() / (n * (n - 1)) if n > 1 else dxx.sum() * 0
        eyy = dyy.sum() / (m * (m - 1)) if m > 1 else dyy.sum() * 0
    else:
        exx, eyy = dxx.mean(), dyy.mean()
    return 2.0 * dxy - exx - eyy

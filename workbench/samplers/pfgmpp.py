r"""PFGM++ on a finite point set: the augmented-dimension kernel, its exact field and its prior.

Xu, Liu, Tian, Tegmark, Jaakkola (2023), "PFGM++: Unlocking the Potential of Physics-Inspired Generative Models".
Data :math:`y \in \mathbb R^N` is augmented with ``D`` extra dimensions; the electric field of the data charges
in :math:`N + D` dimensions defines the perturbation kernel (``r`` the augmented radius)

.. math:: p_r(x\mid y) \propto (\|x - y\|^2 + r^2)^{-\frac{N+D}{2}},\qquad r = \sigma\sqrt D,

a multivariate Student-t with ``D`` degrees of freedom and scale σ. Its field lines are the ODE

.. math:: \frac{dx}{dr} = \frac{x - \hat y_r(x)}{r}\ \Longleftrightarrow\ \frac{dx}{d\sigma} = \frac{x - \hat y_\sigma(x)}{\sigma},\qquad
          \hat y_\sigma(x) = \frac{\sum_j w_j\, (\|x-y_j\|^2 + r^2)^{-\frac{N+D}{2}}\, y_j}{\sum_j w_j\, (\|x-y_j\|^2 + r^2)^{-\frac{N+D}{2}}},

exact for a finite point set (a kernel-weighted average). The ODE has the EDM/VE form with :math:`\hat y` as the data
denoiser, so :meth:`PFGMPP.field` is a :class:`~workbench.models.field.Field` on the ``ve`` interpolant
(:math:`\sigma(t)` = VE's α) predicting ``x1``, and every ODE solver of the workbench integrates it. As
:math:`D\to\infty` (σ fixed) the kernel tends to :math:`\exp(-\|x-y\|^2/2\sigma^2)`: the field becomes the EDM/VE
field with an :math:`O(1/D)` error. The radius :math:`R = \|x - y\|` has the law
:math:`R^2/(R^2 + r^2) \sim \mathrm{Beta}(N/2, D/2)`; the prior is sampled as :math:`y + \sigma z/\sqrt{\chi^2_D/D}`.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..interpolants import INTERPOLANTS
from ..interpolants.base import Interpolant
from ..models.field import Field
from .registry import register


def check_augmented_dim(D: float) -> float:
    """``D`` must be a positive number or ``math.inf`` (the EDM/VE limit)."""
    try:
        d = float(D)
    except (TypeError, ValueError):
        raise ConfigError("D", f"must be a positive number or inf, got {D!r}") from None
    if not d > 0 or math.isnan(d):
        raise ConfigError("D", f"must be > 0 (or inf for the EDM/VE limit), got {D!r}")
    return d


@register("pfgmpp", "pfgm++")
class PFGMPP:
    """The PFGM++ kernel, exact field and prior of the weighted point set ``points`` ``(M, N)``.

    Args:
        points: the data charges ``(M, N)``.
        D: augmented dimension (``math.inf``: the Gaussian / EDM limit).
        weights: ``(M,)`` positive charges (normalised); default equal.
    """

    def __init__(self, points: torch.Tensor, D: float = 128.0, weights: Optional[torch.Tensor] = None):
        pts = torch.as_tensor(points, dtype=torch.float64)
        if pts.dim() != 2 or pts.shape[0] < 1:
            raise ConfigError("points", f"must have shape (M, N) with M >= 1, got {tuple(pts.shape)}")
        w = torch.ones(pts.shape[0], dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (pts.shape[0],) or not bool((w > 0).all()):
            raise ConfigError("weights", f"must be {pts.shape[0]} positive numbers")
        self.points, self.weights, self.D = pts, w / w.sum(), check_augmented_dim(D)
        self._params = {"D": self.D}

    @property
    def dim(self) -> int:
        """N, the data dimension."""
        return self.points.shape[1]

    def log_kernel(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        r"""Unnormalised :math:`\log p_r(x\mid y_j)` ``(B, M)``; ``sigma`` ``(B,)`` or a float.
        The constant :math:`-\tfrac{N+D}{2}\log r^2` is subtracted so that the limit D → ∞ is finite."""
        y = self.points.to(x)
        d2 = torch.cdist(x, y).pow(2)
        s2 = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1) ** 2
        if math.isinf(self.D):
            return -0.5 * d2 / s2
        return -0.5 * (self.dim + self.D) * torch.log1p(d2 / (self.D * s2))

    def denoiser(self, x: torch.Tensor, sigma) -> torch.Tensor:
        r"""The exact field's kernel-weighted average :math:`\hat y_\sigma(x)` ``(B, N)``."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ConfigError("x", f"expected shape (B, {self.dim}), got {tuple(x.shape)}")
        logits = torch.log(self.weights.to(x))[None] + self.log_kernel(x, sigma)
        return torch.softmax(logits, dim=1) @ self.points.to(x)

    def ode_drift(self, x: torch.Tensor, sigma) -> torch.Tensor:
        r""":math:`dx/d\sigma = (x - \hat y_\sigma(x))/\sigma`."""
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
        return (x - self.denoiser(x, sigma)) / s

    def interpolant(self, sigma_min: float = 0.01, sigma_max: float = 80.0) -> Interpolant:
        """The ``ve`` interpolant whose σ(t) runs the PFGM++ ODE from ``sigma_max`` (t = 0) to ``sigma_min`` (t = 1)."""
        return INTERPOLANTS.get("ve", sigma_min=sigma_min, sigma_max=sigma_max)

    def field(self, interpolant: Optional[Interpolant] = None) -> Field:
        """The exact field as a :class:`Field` predicting ``x1`` on a VE interpolant (σ(t) = its α)."""
        interpolant = self.interpolant() if interpolant is None else interpolant
        if getattr(interpolant, "name", "") != "ve":
            raise ConfigError("interpolant", f"PFGM++'s ODE has the VE form; got {interpolant.name!r}, use 've'")

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, interpolant.alpha(t.to(torch.float64)).to(x.dtype))

        return Field(model, interpolant, "x1")

    def sample_prior(self, n: int, sigma: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        r"""``n`` exact samples of :math:`p_\sigma = \sum_j w_j p_{r}(\cdot\mid y_j)`: :math:`y_j + \sigma z/\sqrt{\chi^2_D/D}`."""
        if not sigma > 0:
            raise ConfigError("sigma", f"must be > 0, got {sigma!r}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        j = torch.multinomial(self.weights, n, replacement=True, generator=g)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=g)
        if math.isinf(self.D):
            return self.points[j] + sigma * z
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=g)))
        chi2 = torch.from_numpy(rng.chisquare(self.D, size=n))
        return self.points[j] + sigma * z / torch.sqrt(chi2 / self.D)[:, None]

    def radial_cdf(self, R: np.ndarray, sigma: float) -> np.ndarray:
        r"""CDF of :math:`R = \|x - y\|` under the kernel: :math:`I_{R^2/(R^2+r^2)}(N/2, D/2)` (regularised incomplete beta)."""
        from scipy.special import betainc

        R = np.asarray(R, dtype=np.float64)
        if math.isinf(self.D):
            from scipy.stats import chi

            return chi.cdf(R / sigma, self.dim)
        r2 = sigma ** 2 * self.D
        return betainc(self.dim / 2.0, self.D / 2.0, R ** 2 / (R ** 2 + r2))

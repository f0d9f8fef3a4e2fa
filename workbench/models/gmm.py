r"""Exact ground truth: a Gaussian-mixture data law pushed through any interpolant.

If :math:`x_1 \sim \sum_k w_k N(\mu_k, \Sigma_k)` and :math:`x_t = a(t)x_1 + \sigma(t)\xi`, then

.. math::
    x_t \sim \sum_k w_k N(a\mu_k,\ C_k),\quad C_k = a^2\Sigma_k + \sigma^2 I,\qquad
    r_k(x) = \frac{w_k N(x; a\mu_k, C_k)}{\sum_j w_j N(x; a\mu_j, C_j)},

.. math::
    s(t,x) = -\sum_k r_k C_k^{-1}(x - a\mu_k),\qquad
    D(t,x) = E[x_1|x_t=x] = \sum_k r_k\big(\mu_k + a\Sigma_k C_k^{-1}(x - a\mu_k)\big),

and the velocity is :math:`b = \dot a D - \sigma\dot\sigma\, s`. With :math:`\Sigma_k = U_k\,\mathrm{diag}(\lambda_k)U_k^\top`
every :math:`C_k` is diagonal in the same basis, so inverses and log-determinants cost nothing at any t.
For one component the probability-flow map is closed-form (see :meth:`GaussianMixture.flow_map`).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant, TimeLike
from ..utils import expand_like
from .field import DATA_SCORE, Field


class GaussianMixture:
    """A Gaussian mixture in ``d`` dimensions with exact interpolant marginals.

    Args:
        means: ``(K, d)``.
        covs: ``(K, d, d)`` full, ``(K, d)`` diagonal, or a float (isotropic, shared).
        weights: ``(K,)`` positive (normalised here); default uniform.
    """

    def __init__(self, means: torch.Tensor, covs: Union[torch.Tensor, float] = 1.0,
                 weights: Optional[torch.Tensor] = None):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() != 2:
            raise ConfigError("means", f"must have shape (K, d), got {tuple(means.shape)}")
        K, d = means.shape
        if isinstance(covs, (int, float)):
            covs = torch.full((K, d), float(covs), dtype=torch.float64)
        covs = torch.as_tensor(covs, dtype=torch.float64)
        if covs.shape == (K, d):
            lam, U = covs.clone(), torch.eye(d, dtype=torch.float64).expand(K, d, d).clone()
        elif covs.shape == (K, d, d):
            if not torch.allclose(covs, covs.transpose(1, 2)):
                raise ConfigError("covs", "covariance matrices must be symmetric")
            lam, U = torch.linalg.eigh(covs)
        else:
            raise ConfigError("covs", f"must have shape (K, d, d), (K, d) or be a float; got {tuple(covs.shape)}")
        if not bool((lam > 0).all()):
            raise ConfigError("covs", "covariances must be positive definite")
        w = torch.ones(K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (K,) or not bool((w > 0).all()):
            raise ConfigError("weights", f"must be {K} positive numbers")
        self.means, self.eigvals, self.eigvecs = means, lam, U
        self.weights = w / w.sum()
        self.log_weights = torch.log(self.weights)

    # ---- basic properties ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension d."""
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        """Number of components K."""
        return self.means.shape[0]

    @property
    def covs(self) -> torch.Tensor:
        """Full covariances ``(K, d, d)``."""
        return self.eigvecs @ torch.diag_embed(self.eigvals) @ self.eigvecs.transpose(1, 2)

    def to(self, device=None, dtype=None) -> "GaussianMixture":
        """A copy with parameters on ``device`` / in ``dtype``."""
        out = GaussianMixture.__new__(GaussianMixture)
        for k in ("means", "eigvals", "eigvecs", "weights", "log_weights"):
            setattr(out, k, getattr(self, k).to(device=device, dtype=dtype))
        return out

    def mean(self) -> torch.Tensor:
        """Mixture mean."""
        return (self.weights[:, None] * self.means).sum(0)

    def covariance(self) -> torch.Tensor:
        """Mixture covariance :math:`\\sum_k w_k(\\Sigma_k + \\mu_k\\mu_k^T) - \\mu\\mu^T`."""
        m = self.mean()
        second = (self.weights[:, None, None] * (self.covs + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        return second - m[:, None] * m[None, :]

    # ---- sampling ------------------------------------------------------------------------------
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw ``n`` data samples ``(n, d)`` (float64, CPU)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        return self.means[k] + torch.einsum("nij,nj->ni", self.eigvecs[k], self.eigvals[k].sqrt() * z)

    def marginal(self, interpolant: Interpolant, t: float) -> "GaussianMixture":
        """The law of :math:`x_t` (a Gaussian mixture) at a scalar time ``t``."""
        c = interpolant.coefficients(float(t))
        out = GaussianMixture.__new__(GaussianMixture)
        out.means = c.signal * self.means
        out.eigvals = c.signal ** 2 * self.eigvals + c.sigma ** 2
        out.eigvecs, out.weights, out.log_weights = self.eigvecs, self.weights, self.log_weights
        if not bool((out.eigvals > 0).all()):
            raise ConfigError("t", f"the marginal at t={t} is degenerate for this interpolant")
        return out

    def sample_marginal(self, interpolant: Interpolant, t: float, n: int,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Exact samples of :math:`x_t` ``(n, d)`` (float64)."""
        return self.marginal(interpolant, t).sample(n, generator)

    # ---- exact fields ----------------------------------------------------------------------------
    def _terms(self, x: torch.Tensor, t: TimeLike, interpolant: Interpolant):
        """Per-component quantities: responsibilities, eigen-coordinates, variances."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ConfigError("x", f"expected shape (B, {self.dim}), got {tuple(x.shape)}")
        p = self if self.means.dtype == x.dtype and self.means.device == x.device else self.to(x.device, x.dtype)
        if isinstance(t, torch.Tensor):
            t = t.to(x.device)
        c = interpolant.coefficients(t)
        a = expand_like(torch.as_tensor(c.signal, dtype=x.dtype, device=x.device), x)
        s2 = expand_like(torch.as_tensor(c.sigma, dtype=x.dtype, device=x.device) ** 2, x)
        if isinstance(a, torch.Tensor) and a.dim() == 2:
            a3, s3 = a[:, :, None], s2[:, :, None]  # (B,1,1)
        else:
            a3, s3 = a, s2
        diff = x[:, None, :] - a3 * p.means[None]                  # (B, K, d)
        y = torch.einsum("bki,kij->bkj", diff, p.eigvecs)          # eigen-coordinates
        e = a3 * a3 * p.eigvals[None] + s3                         # (B, K, d) eigenvalues of C_k
        logn = -0.5 * ((y * y / e).sum(-1) + torch.log(e).sum(-1) + self.dim * math.log(2 * math.pi))
        logp = p.log_weights[None] + logn                          # (B, K)
        r = torch.softmax(logp, dim=1)
        return p, a3, e, y, r, logp

    def log_prob(self, x: torch.Tensor, t: TimeLike, interpolant: Interpolant) -> torch.Tensor:
        """Exact :math:`\\log\\rho_t(x)` ``(B,)``."""
        return torch.logsumexp(self._terms(x, t, interpolant)[5], dim=1)

    def data_and_score(self, x: torch.Tensor, t: TimeLike, interpolant: Interpolant) -> Tuple[torch.Tensor, torch.Tensor]:
        """Exact (E[x1|x_t = x], ∇log ρ_t(x)), each ``(B, d)``."""
        p, a3, e, y, r, _ = self._terms(x, t, interpolant)
        cinv = torch.einsum("bkj,kij->bki", y / e, p.eigvecs)                  # C_k^{-1}(x - aμ_k)
        score = -(r[:, :, None] * cinv).sum(1)
        post = torch.einsum("bkj,kij->bki", y * p.eigvals[None] / e, p.eigvecs)  # Σ_k C_k^{-1}(x - aμ_k)
        data = (r[:, :, None] * (p.means[None] + a3 * post)).sum(1)
        return data, score

    def score(self, x, t, interpolant):
        """Exact score :math:`\\nabla\\log\\rho_t`."""
        return self.data_and_score(x, t, interpolant)[1]

    def velocity(self, x, t, interpolant):
        """Exact velocity :math:`b = \\dot a D - \\sigma\\dot\\sigma s`."""
        d, s = self.data_and_score(x, t, interpolant)
        return interpolant.from_data_and_score(d, s, t, "velocity")

    def predict(self, x, t, interpolant, kind: str):
        """Exact prediction of any kind (velocity, score, x1, noise, x0, z)."""
        d, s = self.data_and_score(x, t, interpolant)
        return interpolant.from_data_and_score(d, s, t, kind)

    def as_model(self, interpolant: Interpolant):
        """A ``model(x, t) -> (data, score)`` for :class:`Field` with ``prediction="data_score"``."""
        def model(x: torch.Tensor, t: torch.Tensor):
            return self.data_and_score(x, t, interpolant)

        return model

    def field(self, interpolant: Interpolant) -> Field:
        """The exact field, ready for any solver."""
        return Field(self.as_model(interpolant), interpolant, DATA_SCORE)

    def flow_map(self, x: torch.Tensor, t0: float, t1: float, interpolant: Interpolant) -> torch.Tensor:
        r"""Exact probability-flow map from ``t0`` to ``t1`` (one component only):

        .. math:: x_{t_1} = a_1\mu + U\,\mathrm{diag}\Big(\sqrt{e_1/e_0}\Big)U^\top (x_{t_0} - a_0\mu),\quad e = a^2\lambda + \sigma^2.
        """
        if self.n_components != 1:
            raise ConfigError("gmm", "flow_map is closed-form only for a single Gaussian; use a reference solver")
        p = self.to(x.device, x.dtype)
        c0, c1 = interpolant.coefficients(float(t0)), interpolant.coefficients(float(t1))
        mu, lam, U = p.means[0], p.eigvals[0], p.eigvecs[0]
        e0 = c0.signal ** 2 * lam + c0.sigma ** 2
        e1 = c1.signal ** 2 * lam + c1.sigma ** 2
        y = (x - c0.signal * mu) @ U
        return c1.signal * mu + (y * torch.sqrt(e1 / e0)) @ U.T

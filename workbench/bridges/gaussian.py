r"""The entropic Schrödinger bridge between two Gaussians, in closed form.

Reference: Brownian motion :math:`dX = \sqrt{\varepsilon}\,dW` on :math:`t \in [0, 1]`; marginals
:math:`X_0 \sim N(\mu_0, A)`, :math:`X_1 \sim N(\mu_1, B)`. The static bridge is the entropic OT plan for the cost
:math:`\|x - y\|^2/2` at regularisation :math:`\varepsilon`, a Gaussian with cross-covariance (Janati et al. 2020,
"Entropic OT between unbalanced Gaussian measures has a closed form"; Mallasto et al. 2022; Bunne et al. 2023,
"The Schrödinger Bridge between Gaussian Measures has a Closed Form", Thm. 3)

.. math:: C_\varepsilon = \operatorname{Cov}(X_0, X_1) = \tfrac12\big(A^{1/2} D_\varepsilon A^{-1/2} - \varepsilon I\big),\qquad
    D_\varepsilon = \big(4A^{1/2}BA^{1/2} + \varepsilon^2 I\big)^{1/2}.

The dynamic bridge mixes Brownian bridges over that plan, so :math:`X_t = (1-t)X_0 + tX_1 + \sqrt{\varepsilon t(1-t)}Z`
is Gaussian with :math:`\mu_t = (1-t)\mu_0 + t\mu_1`,
:math:`\Sigma_t = (1-t)^2A + t^2B + t(1-t)(C + C^\top + \varepsilon I)`, and (being Markov) its drift is the
bridge drift averaged over the endpoint given :math:`X_t`:

.. math:: g(x, t) = \frac{E[X_1 | X_t = x] - x}{1 - t} = \frac{\mu_1 + ((1-t)C^\top + tB)\Sigma_t^{-1}(x - \mu_t) - x}{1 - t}.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import ConfigError


def sym_sqrt(m: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Symmetric square root (or inverse square root) of an SPD matrix via ``eigh``."""
    lam, u = torch.linalg.eigh(0.5 * (m + m.transpose(-1, -2)))
    if not bool((lam > 0).all()):
        raise ConfigError("covariance", "must be symmetric positive definite")
    p = lam.rsqrt() if inverse else lam.sqrt()
    return (u * p[..., None, :]) @ u.transpose(-1, -2)


def check_eps(eps: float) -> float:
    """The reference volatility ε: a finite number > 0."""
    try:
        v = float(eps)
    except (TypeError, ValueError):
        raise ConfigError("eps", f"must be a number > 0, got {eps!r}") from None
    if not v > 0 or v == float("inf"):
        raise ConfigError("eps", f"must be a finite number > 0, got {eps!r}")
    return v


def _mean_cov(mean, cov, name: str):
    mean = torch.as_tensor(mean, dtype=torch.float64)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if mean.dim() != 1 or cov.shape != (mean.numel(), mean.numel()):
        raise ConfigError(name, f"need a mean (d,) and covariance (d, d); got {tuple(mean.shape)} and {tuple(cov.shape)}")
    sym_sqrt(cov)  # validates SPD
    return mean, 0.5 * (cov + cov.T)


def entropic_cross_covariance(A: torch.Tensor, B: torch.Tensor, eps: float) -> torch.Tensor:
    r""":math:`C_\varepsilon = \tfrac12(A^{1/2}D_\varepsilon A^{-1/2} - \varepsilon I)` (see the module docstring)."""
    eps = check_eps(eps)
    a_half, a_mhalf = sym_sqrt(A), sym_sqrt(A, inverse=True)
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    d = sym_sqrt(4.0 * a_half @ B @ a_half + eps ** 2 * eye)
    return 0.5 * (a_half @ d @ a_mhalf - eps * eye)


class GaussianBridge:
    """The closed-form Schrödinger bridge between ``N(mean0, cov0)`` and ``N(mean1, cov1)`` (reference √ε W).

    Attributes:
        cross_cov: :math:`C = \\operatorname{Cov}(X_0, X_1)`.
        plan_matrix, plan_shift, plan_cov: the conditional plan :math:`X_1 | X_0 = x \\sim N(Mx + m, \\Sigma_{1|0})`.
    """

    def __init__(self, mean0, cov0, mean1, cov1, eps: float = 1.0):
        self.mean0, self.cov0 = _mean_cov(mean0, cov0, "mean0/cov0")
        self.mean1, self.cov1 = _mean_cov(mean1, cov1, "mean1/cov1")
        if self.mean0.shape != self.mean1.shape:
            raise ConfigError("mean1", f"both ends need the same dimension; got {self.mean0.numel()} and {self.mean1.numel()}")
        self.eps = check_eps(eps)
        self.cross_cov = entropic_cross_covariance(self.cov0, self.cov1, self.eps)
        self.plan_matrix = torch.linalg.solve(self.cov0, self.cross_cov).T          # C^T A^{-1}
        self.plan_shift = self.mean1 - self.plan_matrix @ self.mean0
        self.plan_cov = self.cov1 - self.plan_matrix @ self.cross_cov              # B - C^T A^{-1} C

    @property
    def dim(self) -> int:
        """Dimension d."""
        return self.mean0.numel()

    def joint_cov(self) -> torch.Tensor:
        """Covariance of :math:`(X_0, X_1)`, ``(2d, 2d)``."""
        return torch.cat([torch.cat([self.cov0, self.cross_cov], 1), torch.cat([self.cross_cov.T, self.cov1], 1)], 0)

    def sample_plan(self, n: int, generator: Optional[torch.Generator] = None):
        """``(x0, x1)`` pairs from the static bridge (float64)."""
        x0 = self.mean0 + torch.randn(n, self.dim, dtype=torch.float64, generator=generator) @ sym_sqrt(self.cov0)
        return x0, self.sample_conditional(x0, generator)

    def sample_conditional(self, x0: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """:math:`X_1 \\sim N(Mx_0 + m, \\Sigma_{1|0})` for each row of ``x0``."""
        z = torch.randn(x0.shape, dtype=torch.float64, generator=generator)
        return x0.to(torch.float64) @ self.plan_matrix.T + self.plan_shift + z @ torch.linalg.cholesky(self.plan_cov).T

    def marginal(self, t: float):
        r"""``(μ_t, Σ_t)`` of the dynamic bridge at time ``t``."""
        t = float(t)
        c = self.cross_cov
        eye = torch.eye(self.dim, dtype=torch.float64)
        cov = (1 - t) ** 2 * self.cov0 + t ** 2 * self.cov1 + t * (1 - t) * (c + c.T + self.eps * eye)
        return (1 - t) * self.mean0 + t * self.mean1, cov

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        r""":math:`g(x,t) = (E[X_1|X_t=x] - x)/(1-t)` for ``t`` in [0, 1)."""
        t = float(t)
        if not 0.0 <= t < 1.0:
            raise ConfigError("t", f"the drift is defined for t in [0, 1), got {t}")
        mu, cov = self.marginal(t)
        k = (1 - t) * self.cross_cov.T + t * self.cov1
        gain = torch.linalg.solve(cov, k.T).T                                       # K Σ_t^{-1}
        x = x.to(torch.float64)
        return (self.mean1 + (x - mu) @ gain.T - x) / (1 - t)

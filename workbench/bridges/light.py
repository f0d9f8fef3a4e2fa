r"""Light Schrödinger Bridge (Korotin, Gushchin & Burnaev 2024, "Light Schrödinger Bridge", ICLR).

Reference :math:`dX = \sqrt{\varepsilon}\,dW` on [0, 1]. The adjusted Schrödinger potential is a Gaussian mixture

.. math:: v_\theta(x_1) = \sum_k \alpha_k\, N(x_1 \mid r_k, \varepsilon S_k),

which makes everything closed form. The conditional plan
:math:`\pi_\theta(x_1|x_0) \propto e^{\langle x_0, x_1\rangle/\varepsilon} v_\theta(x_1)` is the mixture

.. math:: \pi_\theta(x_1|x_0) = \sum_k \tilde w_k(x_0)\, N(x_1 \mid r_k + S_k x_0,\ \varepsilon S_k),\quad
    \tilde w_k \propto \alpha_k \exp\!\Big(\frac{x_0^\top S_k x_0/2 + r_k^\top x_0}{\varepsilon}\Big),

with normaliser :math:`c_\theta(x_0) = \sum_k \alpha_k \exp((x_0^\top S_k x_0/2 + r_k^\top x_0)/\varepsilon)`. The
bridge's drift is :math:`g(x,t) = \varepsilon\nabla_x\log\phi_t(x)`,
:math:`\phi_t(x) = \int N(x_1|x, \varepsilon(1-t)I)\,e^{\|x_1\|^2/2\varepsilon} v_\theta(x_1)\,dx_1`; per component,
with :math:`\tau = \varepsilon(1-t)`, :math:`P_k = (\tau^{-1} - \varepsilon^{-1})I + (\varepsilon S_k)^{-1}` and
:math:`b_k = x/\tau + (\varepsilon S_k)^{-1}r_k`,

.. math:: \log\phi^k_t = \log\alpha_k - \tfrac d2\log\tau - \tfrac12\log\det(2\pi\varepsilon S_k) - \frac{\|x\|^2}{2\tau}
    - \tfrac12 r_k^\top(\varepsilon S_k)^{-1}r_k + \tfrac12 b_k^\top P_k^{-1}b_k - \tfrac12\log\det P_k,

.. math:: g(x,t) = \varepsilon\sum_k \mathrm{softmax}_k(\log\phi^k_t)\,\frac{P_k^{-1}b_k - x}{\tau}.

Training is simulation-free from two sample sets: minimise
:math:`\mathcal L(\theta) = E_{x_0}\log c_\theta(x_0) - E_{x_1}\log v_\theta(x_1)` (the KL to the bridge up to a
constant). Here :math:`S_k = L_kL_k^\top` is full (the paper's experiments use diagonal :math:`S_k`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from tqdm.auto import tqdm

from .. import validation
from ..errors import ConfigError
from .gaussian import check_eps


@dataclass
class LightSBLog:
    """Training record: the loss per iteration."""

    loss: List[float] = field(default_factory=list)


class LightSB(torch.nn.Module):
    """Gaussian-mixture adjusted potential with closed-form plan, drift and simulation-free fit.

    Args:
        dim: d.  n_components: K.  eps: reference volatility ε.
        dtype/device: of the parameters.
    """

    def __init__(self, dim: int, n_components: int = 4, eps: float = 1.0, dtype=torch.float64, device=None):
        super().__init__()
        for name, v in (("dim", dim), ("n_components", n_components)):
            validation.integer(name, v, 1)
        self.dim, self.n_components, self.eps = dim, n_components, check_eps(eps)
        kw = dict(dtype=dtype, device=device)
        self.log_alpha = torch.nn.Parameter(torch.zeros(n_components, **kw))
        self.r = torch.nn.Parameter(torch.zeros(n_components, dim, **kw))
        self.chol = torch.nn.Parameter(torch.eye(dim, **kw).repeat(n_components, 1, 1))

    # ---- parameters ---------------------------------------------------------------------------------------
    @property
    def S(self) -> torch.Tensor:
        """:math:`S_k = L_kL_k^\\top` (L lower triangular), ``(K, d, d)``."""
        lower = torch.tril(self.chol)
        return lower @ lower.transpose(-1, -2)

    @classmethod
    def from_parameters(cls, log_alpha, r, S, eps: float) -> "LightSB":
        """A bridge with given :math:`\\log\\alpha_k`, :math:`r_k`, :math:`S_k` (e.g. a closed-form Gaussian one)."""
        r = torch.as_tensor(r, dtype=torch.float64)
        S = torch.as_tensor(S, dtype=torch.float64)
        out = cls(r.shape[1], r.shape[0], eps)
        with torch.no_grad():
            out.log_alpha.copy_(torch.as_tensor(log_alpha, dtype=torch.float64))
            out.r.copy_(r)
            out.chol.copy_(torch.linalg.cholesky(S))
        return out

    def _check_x(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ConfigError(name, f"expected shape (B, {self.dim}), got {tuple(x.shape)}")
        return x.to(self.r)

    # ---- closed forms ---------------------------------------------------------------------------------------
    def _plan_logits(self, x0: torch.Tensor) -> torch.Tensor:
        quad = 0.5 * torch.einsum("bi,kij,bj->bk", x0, self.S, x0)
        return torch.log_softmax(self.log_alpha, 0) + (quad + x0 @ self.r.T) / self.eps

    def log_c(self, x0: torch.Tensor) -> torch.Tensor:
        """:math:`\\log c_\\theta(x_0)` ``(B,)``."""
        return torch.logsumexp(self._plan_logits(self._check_x(x0, "x0")), 1)

    def log_potential(self, x1: torch.Tensor) -> torch.Tensor:
        """:math:`\\log v_\\theta(x_1)` ``(B,)``."""
        x1 = self._check_x(x1, "x1")
        L = math.sqrt(self.eps) * torch.tril(self.chol)                             # chol of εS_k
        diff = (x1[:, None, :] - self.r[None])[..., None]                          # (B,K,d,1)
        y = torch.linalg.solve_triangular(L[None], diff, upper=False)[..., 0]
        half_logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1).abs()).sum(-1)
        logn = -0.5 * (y * y).sum(-1) - half_logdet - 0.5 * self.dim * math.log(2 * math.pi)
        return torch.logsumexp(torch.log_softmax(self.log_alpha, 0) + logn, 1)

    def loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """:math:`E\\log c_\\theta(x_0) - E\\log v_\\theta(x_1)`."""
        return self.log_c(x0).mean() - self.log_potential(x1).mean()

    @torch.no_grad()
    def sample_plan(self, x0: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """:math:`x_1 \\sim \\pi_\\theta(\\cdot|x_0)` for each row of ``x0``."""
        x0 = self._check_x(x0, "x0")
        k = torch.multinomial(torch.softmax(self._plan_logits(x0), 1), 1, generator=generator)[:, 0]
        mean = self.r[k] + torch.einsum("bij,bj->bi", self.S[k], x0)
        z = torch.randn(x0.shape, dtype=x0.dtype, generator=generator).to(x0.device)
        L = torch.linalg.cholesky(self.eps * self.S)[k]
        return mean + torch.einsum("bij,bj->bi", L, z)

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        r""":math:`g(x, t)` for a scalar ``t`` in [0, 1) (see the module docstring)."""
        t = float(t)
        if not 0.0 <= t < 1.0:
            raise ConfigError("t", f"the drift is defined for t in [0, 1), got {t}")
        x = self._check_x(x, "x")
        eps, tau, d = self.eps, self.eps * (1.0 - t), self.dim
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        prec_s = torch.linalg.inv(eps * self.S)                                    # (K,d,d)
        P = (1.0 / tau - 1.0 / eps) * eye + prec_s
        b = x[:, None, :] / tau + (prec_s @ self.r[:, :, None])[None, :, :, 0]      # (B,K,d)
        Pinv_b = torch.linalg.solve(P[None], b[..., None])[..., 0]                  # (B,K,d)
        logdet_s = torch.logdet(2 * math.pi * eps * self.S)
        logphi = (torch.log_softmax(self.log_alpha, 0) - 0.5 * logdet_s - 0.5 * torch.logdet(P)
                  - 0.5 * torch.einsum("ki,kij,kj->k", self.r, prec_s, self.r))[None]
        logphi = logphi + 0.5 * (b * Pinv_b).sum(-1) - 0.5 * (x * x).sum(-1, keepdim=True) / tau
        w = torch.softmax(logphi, 1)
        return eps * (w[:, :, None] * (Pinv_b - x[:, None, :])).sum(1) / tau

    @torch.no_grad()
    def simulate(self, x0: torch.Tensor, steps: int = 100, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        r"""Euler–Maruyama for :math:`dX = g(X,t)dt + \sqrt\varepsilon dW` from t = 0 to 1 (``steps`` uniform steps)."""
        if not isinstance(steps, int) or steps < 1:
            raise ConfigError("steps", f"must be an integer >= 1, got {steps!r}")
        x = self._check_x(x0, "x0").clone()
        h = 1.0 / steps
        for i in range(steps):
            z = torch.randn(x.shape, dtype=x.dtype, generator=generator).to(x.device)
            x = x + self.drift(x, i * h) * h + math.sqrt(self.eps * h) * z
        return x

    # ---- training -------------------------------------------------------------------------------------------
    def init_from(self, x1: torch.Tensor, generator: Optional[torch.Generator] = None) -> None:
        """Means at random target samples, :math:`S_k` from the target covariance scaled by 1/ε (a neutral start)."""
        x1 = self._check_x(x1, "x1")
        idx = torch.randperm(x1.shape[0], generator=generator)[: self.n_components]
        cov = torch.cov(x1.T).reshape(self.dim, self.dim) + 1e-6 * torch.eye(self.dim, dtype=x1.dtype)
        with torch.no_grad():
            self.r.copy_(x1[idx % x1.shape[0]])
            self.chol.copy_(torch.linalg.cholesky(cov / self.eps / max(1, self.n_components)).expand_as(self.chol))
            self.log_alpha.zero_()

    def fit(self, x0: torch.Tensor, x1: torch.Tensor, iterations: int = 500, lr: float = 0.02,
            batch_size: Optional[int] = None, generator: Optional[torch.Generator] = None,
            progress: bool = False) -> LightSBLog:
        """Simulation-free fit from two sample sets with Adam (full batch when ``batch_size`` is None)."""
        x0, x1 = self._check_x(x0, "x0"), self._check_x(x1, "x1")
        if not isinstance(iterations, int) or iterations < 1:
            raise ConfigError("iterations", f"must be an integer >= 1, got {iterations!r}")
        self.init_from(x1, generator)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        log = LightSBLog()
        for _ in tqdm(range(iterations), disable=not progress, desc="LightSB"):
            if batch_size is None:
                b0, b1 = x0, x1
            else:
                b0 = x0[torch.randint(x0.shape[0], (batch_size,), generator=generator)]
                b1 = x1[torch.randint(x1.shape[0], (batch_size,), generator=generator)]
            opt.zero_grad()
            loss = self.loss(b0, b1)
            loss.backward()
            opt.step()
            log.loss.append(float(loss.detach()))
        return log

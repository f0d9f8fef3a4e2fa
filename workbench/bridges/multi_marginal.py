r"""Multi-marginal Schrödinger bridges through observed time marginals (the trajectory-inference setting).

Given marginals :math:`\mu_0, \dots, \mu_N` at times :math:`t_0 < \dots < t_N` and the Brownian reference
:math:`dX = \sqrt\varepsilon\,dW`, the bridge :math:`\min KL(P\,\|\,R)` subject to :math:`P_{t_i} = \mu_i` is
:math:`dP/dR = \prod_i f_i(X_{t_i})`: Markov, and its consecutive pair laws have the form
:math:`a(x)\,R(x \to y)\,b(y)` with the right marginals, i.e. they are the two-marginal bridges over each interval
with reference volatility :math:`\varepsilon\,\Delta t_i` (Chen, Conforti & Georgiou 2019; the reference-refinement
scheme of Shen et al. 2024, "Multi-marginal Schrödinger Bridges with Iterative Reference Refinement", starts from
this Brownian case). Two implementations glue those pairwise bridges into one Markov chain:

* :class:`GaussianMultiMarginalBridge` — Gaussian marginals, closed-form pairwise bridges
  (:class:`~workbench.bridges.gaussian.GaussianBridge`), the joint Gaussian of all observed states;
* :class:`LightMultiMarginalBridge` — sample sets at each time, one simulation-free
  :class:`~workbench.bridges.light.LightSB` per interval.

Between observed times paths are Brownian bridges of variance :math:`\varepsilon(t - t_i)(t_{i+1} - t)/\Delta t_i`.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch

from ..errors import ConfigError
from .gaussian import GaussianBridge, check_eps, sym_sqrt
from .light import LightSB


def _check_times(times: Sequence[float], n: int) -> List[float]:
    ts = [float(t) for t in times]
    if len(ts) != n or len(ts) < 2 or any(b <= a for a, b in zip(ts, ts[1:])):
        raise ConfigError("times", f"need {n} >= 2 strictly increasing times, one per marginal; got {list(times)!r}")
    return ts


class GaussianMultiMarginalBridge:
    """Closed-form multi-marginal bridge through ``N(means[i], covs[i])`` at ``times[i]``.

    Attributes:
        bridges: the pairwise :class:`GaussianBridge` of each interval (reference volatility ε·Δt).
    """

    def __init__(self, times: Sequence[float], means, covs, eps: float = 1.0):
        means = torch.as_tensor(means, dtype=torch.float64)
        covs = torch.as_tensor(covs, dtype=torch.float64)
        if means.dim() != 2 or covs.shape != (means.shape[0], means.shape[1], means.shape[1]):
            raise ConfigError("means/covs", f"need means (N, d) and covs (N, d, d); got {tuple(means.shape)}, {tuple(covs.shape)}")
        self.times = _check_times(times, means.shape[0])
        self.eps = check_eps(eps)
        self.means, self.covs = means, covs
        self.bridges = [GaussianBridge(means[i], covs[i], means[i + 1], covs[i + 1], self.eps * (b - a))
                        for i, (a, b) in enumerate(zip(self.times, self.times[1:]))]

    @property
    def dim(self) -> int:
        """Dimension d."""
        return self.means.shape[1]

    def joint_cov(self) -> torch.Tensor:
        r"""Covariance of :math:`(X_{t_0}, \dots, X_{t_N})`, ``(N+1)d × (N+1)d``: Markov chaining,
        :math:`\operatorname{Cov}(X_i, X_j) = \operatorname{Cov}(X_i,X_{i+1})\Sigma_{i+1}^{-1}\cdots\operatorname{Cov}(X_{j-1},X_j)`."""
        n, d = len(self.times), self.dim
        out = torch.zeros(n * d, n * d, dtype=torch.float64)
        for i in range(n):
            block = self.covs[i]
            out[i * d:(i + 1) * d, i * d:(i + 1) * d] = block
            for j in range(i + 1, n):
                block = block @ self.bridges[j - 1].plan_matrix.T                    # Cov(X_i, X_j)
                out[i * d:(i + 1) * d, j * d:(j + 1) * d] = block
                out[j * d:(j + 1) * d, i * d:(i + 1) * d] = block.T
        return out

    def sample_paths(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """States at the observed times ``(n, N+1, d)``: the Markov chain of pairwise plans."""
        x = self.means[0] + torch.randn(n, self.dim, dtype=torch.float64, generator=generator) @ sym_sqrt(self.covs[0])
        out = [x]
        for br in self.bridges:
            x = br.sample_conditional(x, generator)
            out.append(x)
        return torch.stack(out, 1)


class LightMultiMarginalBridge:
    """Multi-marginal bridge from sample sets: one :class:`LightSB` per interval, glued as a Markov chain.

    Args:
        times: observation times.  eps: reference volatility ε (interval i uses ε·Δt_i).
        n_components: K of each LightSB.
    """

    def __init__(self, times: Sequence[float], eps: float = 1.0, n_components: int = 4):
        self.times = [float(t) for t in times]
        self.eps = check_eps(eps)
        self.n_components = n_components
        self.bridges: List[LightSB] = []

    def fit(self, samples: Sequence[torch.Tensor], iterations: int = 300, lr: float = 0.03,
            generator: Optional[torch.Generator] = None, progress: bool = False) -> "LightMultiMarginalBridge":
        """Fit each interval's LightSB from the unpaired sample sets at its two ends (simulation-free)."""
        _check_times(self.times, len(samples))
        dim = samples[0].shape[1]
        self.bridges = []
        for i, (a, b) in enumerate(zip(self.times, self.times[1:])):
            sb = LightSB(dim, self.n_components, self.eps * (b - a))
            sb.fit(samples[i].to(torch.float64), samples[i + 1].to(torch.float64), iterations=iterations, lr=lr,
                   generator=generator, progress=progress)
            self.bridges.append(sb)
        return self

    @torch.no_grad()
    def sample_paths(self, x0: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """States at the observed times ``(n, N+1, d)`` starting from ``x0`` at ``times[0]``."""
        if not self.bridges:
            raise ConfigError("bridges", "call fit() before sample_paths()")
        x, out = x0.to(torch.float64), [x0.to(torch.float64)]
        for sb in self.bridges:
            x = sb.sample_plan(x, generator)
            out.append(x)
        return torch.stack(out, 1)


def brownian_bridge_fill(x_a: torch.Tensor, x_b: torch.Tensor, t_a: float, t_b: float, t: float, eps: float,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Sample :math:`X_t` between observed states: :math:`N\big(x_a + \tfrac{t-t_a}{\Delta}(x_b - x_a),\
    \varepsilon\tfrac{(t-t_a)(t_b-t)}{\Delta}\big)`."""
    if not t_a <= t <= t_b:
        raise ConfigError("t", f"must lie in [{t_a}, {t_b}], got {t}")
    dt = t_b - t_a
    w = (t - t_a) / dt
    z = torch.randn(x_a.shape, dtype=x_a.dtype, generator=generator)
    return x_a + w * (x_b - x_a) + math.sqrt(check_eps(eps) * (t - t_a) * (t_b - t) / dt) * z if 0 < w < 1 else (x_a if w == 0 else x_b)

r"""Denoising MCMC: a Markov chain on (state, noise level), then an ODE solve from the level to the data end.

Kim & Ye (2022), "Denoising MCMC for Accelerating Diffusion-Based Generative Models". The chain targets the joint

.. math:: p(x, j) = \pi_j\,\rho_{t_j}(x)

over a grid of levels :math:`t_1 < \dots < t_K` with prior :math:`\pi`, alternating

* a Gibbs update of the level from the exact conditional :math:`p(j\mid x) \propto \pi_j\rho_{t_j}(x)` (exact for a
  Gaussian mixture: :meth:`~workbench.models.gmm.GaussianMixture.log_prob` of :math:`x_t` under any interpolant);
* Langevin steps on x at the current level, :math:`x' = x + \tau_j s_{t_j}(x) + \sqrt{2\tau_j}\,\xi`,
  :math:`\tau_j = \text{step}\cdot\sigma(t_j)^2`, Metropolis-adjusted (MALA) by default so the joint is invariant exactly.

The level marginal of the joint is the prior π and the state given the level is the interpolant's marginal
:math:`\rho_{t_j}`; each chain's final state is then carried to ``t_end`` by the probability-flow ODE, landing on the
data law. Noisy levels let the chain cross between modes that Langevin at the data end would never leave.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import torch

from .. import validation
from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..models.gmm import GaussianMixture
from ..solvers import SOLVERS, Solver
from .registry import register


@dataclass
class ChainState:
    """Chains after :meth:`DenoisingMCMC.run`: states ``x`` ``(n, d)``, level indices ``level`` ``(n,)``, the mean
    MALA acceptance rate, and the number of iterations."""

    x: torch.Tensor
    level: torch.Tensor
    acceptance: float
    iterations: int


@register("denoising_mcmc", "dmcmc")
class DenoisingMCMC:
    """Denoising MCMC on an exact Gaussian mixture (see the module docstring).

    Args:
        gmm: the data mixture (exact score and log-density of every level).
        interpolant: the path whose marginals define the levels.
        levels: increasing level times ``(K,)`` in the open interval where σ(t) > 0.
        prior: ``(K,)`` positive level weights (normalised); default uniform.
        step: Langevin step τ_j = ``step`` · σ(t_j)².
        langevin_steps: Langevin updates per Gibbs update.
        metropolis: True (MALA, exact invariance) or False (unadjusted Langevin, O(τ) bias).
    """

    def __init__(self, gmm: GaussianMixture, interpolant: Interpolant, levels, prior=None, step: float = 0.3,
                 langevin_steps: int = 1, metropolis: bool = True):
        lv = torch.as_tensor(levels, dtype=torch.float64).flatten()
        if lv.numel() < 1 or not bool((lv[1:] > lv[:-1]).all()):
            raise ConfigError("levels", "must be a non-empty increasing sequence of times")
        sig = torch.tensor([interpolant.coefficients(float(t)).sigma for t in lv], dtype=torch.float64)
        if not bool((sig > 0).all()):
            raise ConfigError("levels", f"every level needs σ(t) > 0 on {interpolant.name!r}; got σ = {sig.tolist()}")
        pr = torch.ones_like(lv) if prior is None else torch.as_tensor(prior, dtype=torch.float64)
        if pr.shape != lv.shape or not bool((pr > 0).all()):
            raise ConfigError("prior", f"must be {lv.numel()} positive numbers")
        if not (isinstance(step, (int, float)) and step > 0 and math.isfinite(step)):
            raise ConfigError("step", f"must be a finite number > 0, got {step!r}")
        validation.integer("langevin_steps", langevin_steps, 1)
        self.gmm, self.interpolant, self.levels = gmm, interpolant, lv
        self.log_prior = torch.log(pr / pr.sum())
        self.tau = step * sig ** 2
        self.langevin_steps, self.metropolis = langevin_steps, bool(metropolis)

    @property
    def prior(self) -> torch.Tensor:
        """Normalised level prior π."""
        return torch.exp(self.log_prior)

    def level_log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(j\mid x)` ``(n, K)``, exact: softmax over j of :math:`\log\pi_j + \log\rho_{t_j}(x)`."""
        lp = torch.stack([self.gmm.log_prob(x, float(t), self.interpolant) for t in self.levels], 1)
        return torch.log_softmax(self.log_prior.to(x)[None] + lp, 1)

    def gibbs_level(self, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Draw each chain's level from the exact conditional."""
        return torch.multinomial(torch.exp(self.level_log_posterior(x)), 1, generator=generator).flatten()

    def langevin(self, x: torch.Tensor, level: torch.Tensor, generator: Optional[torch.Generator]):
        """One (Metropolis-adjusted) Langevin step per chain at its level; returns (x, accepted mask)."""
        t = self.levels.to(x)[level]
        tau = self.tau.to(x)[level][:, None]
        d, s = self.gmm.data_and_score(x, t, self.interpolant)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        y = x + tau * s + torch.sqrt(2 * tau) * noise
        if not self.metropolis:
            return y, torch.ones(x.shape[0], dtype=torch.bool)
        _, sy = self.gmm.data_and_score(y, t, self.interpolant)
        lq_fwd = -((y - x - tau * s) ** 2).sum(1) / (4 * tau[:, 0])
        lq_bwd = -((x - y - tau * sy) ** 2).sum(1) / (4 * tau[:, 0])
        log_a = self.gmm.log_prob(y, t, self.interpolant) - self.gmm.log_prob(x, t, self.interpolant) + lq_bwd - lq_fwd
        u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype)
        acc = torch.log(u) < log_a
        return torch.where(acc[:, None], y, x), acc

    def run(self, x: torch.Tensor, iterations: int, generator: Optional[torch.Generator] = None,
            level: Optional[torch.Tensor] = None, progress: bool = False) -> ChainState:
        """Run ``iterations`` sweeps (Gibbs level, then ``langevin_steps`` Langevin moves) of the chains started at ``x``."""
        validation.integer("iterations", iterations, 1)
        if x.dim() != 2 or x.shape[1] != self.gmm.dim:
            raise ConfigError("x", f"expected shape (n, {self.gmm.dim}), got {tuple(x.shape)}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        lvl = self.gibbs_level(x, g) if level is None else level
        acc_sum, moves = 0.0, 0
        it = range(iterations)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="denoising-mcmc", leave=False)
        for _ in it:
            lvl = self.gibbs_level(x, g)
            for _ in range(self.langevin_steps):
                x, acc = self.langevin(x, lvl, g)
                acc_sum += float(acc.double().mean())
                moves += 1
        return ChainState(x, lvl, acc_sum / moves, iterations)

    def to_data(self, chains: ChainState, solver: Union[str, Solver] = "heun", nfe: int = 40, t_end: float = 1.0,
                schedule: str = "uniform") -> torch.Tensor:
        """Carry each chain's state from its level to ``t_end`` by the PF-ODE (one solver run per level, ``nfe`` each)."""
        s = SOLVERS.get(solver) if isinstance(solver, str) else solver
        field = self.gmm.to(chains.x.device, chains.x.dtype).field(self.interpolant)
        out = torch.empty_like(chains.x)
        for j, t in enumerate(self.levels.tolist()):
            m = chains.level == j
            if bool(m.any()):
                out[m] = s.sample(field, chains.x[m], nfe, schedule=schedule, t_start=t, t_end=t_end).x
        return out

r"""Training regularisers acting on the path of a model rather than its regression target.

:class:`FokkerPlanckRegularizer` — the mean squared score Fokker–Planck residual
:math:`\lambda\,E\|R_\theta(x_t, t)\|^2` of Deveney et al. (2023), "Closing the ODE-SDE gap in score-based diffusion
models through the Fokker-Planck equation" (see :mod:`workbench.metrics.fokker_planck`), added to a score-matching
loss so that the probability-flow ODE and the SDEs of the model keep the same marginals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..metrics.fokker_planck import ScoreFn, fokker_planck_metric
from ..solvers.dopri5 import DP_A, DP_B5, DP_C, DP_E  # the Dormand–Prince tableau


@dataclass(frozen=True)
class FokkerPlanckRegularizer:
    """``penalty(score, x1)`` = ``weight`` × E‖R‖² over ``t ~ U(t_min, t_max)`` (differentiable in the model).

    Attributes:
        interpolant: the Gaussian-base path the score belongs to.
        weight: λ ≥ 0.  t_min, t_max: the time window (a(t) > 0 needed).
    """

    interpolant: Interpolant
    weight: float = 1.0
    t_min: float = 0.05
    t_max: float = 0.95

    def __post_init__(self):
        if not float(self.weight) >= 0.0:
            raise ConfigError("weight", f"must be >= 0, got {self.weight!r}")

    def __call__(self, score: ScoreFn, x1: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return float(self.weight) * fokker_planck_metric(score, self.interpolant, x1, self.t_min, self.t_max,
                                                         generator=generator, create_graph=True)


# ---- solver-aware regularisation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolverErrorPenalty:
    """The outcome of one differentiable adaptive solve: the penalty and the solver's own counts."""

    penalty: torch.Tensor
    nfe: int
    accepted: int
    rejected: int
    errors: tuple  # accepted steps' scaled error estimates (floats)
    steps: tuple   # accepted step sizes


@dataclass(frozen=True)
class SolverErrorRegularizer:
    r"""Error-estimate regulariser of Pal, Ma, Shah & Rackauckas (2021), "Opening the Blackbox: Accelerating Neural
    Differential Equations by Regularizing Internal Solver Heuristics":

    .. math:: R_E = \sum_{j\ \text{accepted}} E_j\,|h_j|,\qquad
        E_j = \Big\|\frac{h_j\sum_i e_i k_i}{atol + rtol\max(|y_j|, |y_{j+1}|)}\Big\|_{RMS},

    the Dormand–Prince embedded local-error estimates of an adaptive solve of :math:`\dot x = v_\theta(x, t)` from
    ``x0`` over [0, 1]. The step-size controller (:math:`h \leftarrow h\min(10, \max(0.2, 0.9E^{-1/5}))`) is run on
    detached values; :math:`E_j` stays differentiable in the model, so minimising :math:`R_E` pushes the model towards
    fields the solver can cross in fewer steps at the same tolerance.
    """

    weight: float = 1.0
    rtol: float = 1e-3
    atol: float = 1e-3
    first_step: float = 0.1
    max_steps: int = 64

    def __post_init__(self):
        for name in ("weight", "rtol", "atol", "first_step"):
            v = getattr(self, name)
            if not (float(v) >= 0.0 if name == "weight" else float(v) > 0.0):
                raise ConfigError(name, f"must be {'>= 0' if name == 'weight' else '> 0'}, got {v!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ConfigError("max_steps", f"must be an integer >= 1, got {self.max_steps!r}")

    def solve(self, velocity, x0: torch.Tensor) -> SolverErrorPenalty:
        """Run the adaptive solve of ``velocity(x, t_batch)`` from ``x0`` and return the weighted penalty."""
        x, t, h = x0, 0.0, float(self.first_step)
        tb = lambda s: torch.full((x0.shape[0],), s, dtype=x0.dtype, device=x0.device)
        k1 = velocity(x, tb(0.0))
        nfe, acc, rej, total, errs, hs = 1, 0, 0, x0.new_zeros(()), [], []
        while t < 1.0 - 1e-12 and acc + rej < self.max_steps:
            h = min(h, 1.0 - t)
            ks = [k1]
            for i in range(1, 7):
                xi = x + h * sum(a * k for a, k in zip(DP_A[i], ks) if a != 0.0)
                ks.append(velocity(xi, tb(t + DP_C[i] * h)))
            nfe += 6
            x5 = x + h * sum(b * k for b, k in zip(DP_B5, ks) if b != 0.0)
            err_vec = h * sum(e * k for e, k in zip(DP_E, ks))
            scale = (self.atol + self.rtol * torch.maximum(x.abs(), x5.abs())).detach()
            err = torch.sqrt(((err_vec / scale) ** 2).mean())
            e = float(err.detach())
            if e <= 1.0:
                total = total + err * h
                errs.append(e)
                hs.append(h)
                x, t, k1 = x5, t + h, ks[6]
                acc += 1
            else:
                rej += 1
            h = h * min(10.0, max(0.2, 0.9 * (e if e > 0 else 1e-10) ** -0.2))
        return SolverErrorPenalty(float(self.weight) * total, nfe, acc, rej, tuple(errs), tuple(hs))

    def __call__(self, velocity, x0: torch.Tensor) -> torch.Tensor:
        return self.solve(velocity, x0).penalty

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

r"""The PDE-Refiner-style interpolant refiner (:class:`workbench.fields.Refiner`) in the :class:`FieldSurrogate`
contract: each step samples :math:`u_{n+1} \sim p(\cdot|u_n)` with ``nfe`` model calls of ``solver`` on the
``schedule`` grid (see :mod:`workbench.fields.refiner`). One-step training only (its loss is velocity matching,
not a prediction error, so push-forward unrolling does not apply)."""
from __future__ import annotations

from typing import Optional

import torch

from ... import validation
from ...errors import ConfigError
from ..refiner import Refiner
from ..training import TrainLog
from .base import SURROGATES, FieldSurrogate


@SURROGATES.register("pde_refiner", "refiner")
class PDERefinerSurrogate(FieldSurrogate):
    """Args: FNO ``width``, ``modes``, ``layers`` of the denoiser; sampling ``solver``, ``nfe``, ``schedule``; ``seed``
    of the sampling noise (one generator per surrogate, so rollouts are reproducible)."""

    stochastic = True

    def __init__(self, width: int = 16, modes: int = 8, layers: int = 4, solver: str = "euler", nfe: int = 8,
                 schedule: str = "logsnr", seed: int = 0):
        super().__init__(1)
        self.refiner = Refiner(width=width, modes=modes, layers=layers)
        self.solver, self.schedule = solver, schedule
        self.nfe = validation.nfe(nfe)
        self.seed = validation.seed(seed)
        self._gen = torch.Generator().manual_seed(self.seed)

    def reset_noise(self) -> None:
        """Restart the sampling noise from ``seed``."""
        self._gen = torch.Generator().manual_seed(self.seed)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        h = self._as_history(frames)
        return self.refiner(h[:, -1], self.solver, self.nfe, self.schedule, generator=self._gen)

    def fit(self, traj: torch.Tensor, iterations: int = 500, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
            progress: bool = True, input_noise: float = 0.0, unroll: int = 1, refit_normalizers: bool = True,
            desc: Optional[str] = None) -> TrainLog:
        if validation.integer("unroll", unroll, 1, 1000) != 1:
            raise ConfigError("unroll", "the refiner trains by velocity matching on one-step pairs: unroll must be 1")
        log = self.refiner.fit(traj, iterations, batch_size, lr, seed, progress, input_noise)
        self.u_norm, self.r_norm = self.refiner.u_norm, self.refiner.r_norm
        return log

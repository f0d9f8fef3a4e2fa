r"""FNO one-step surrogate (Li et al. 2021) in the :class:`FieldSurrogate` contract.

.. math:: u_{n+1} = u_n + s_r\,\mathrm{FNO}_\theta(u_{n-K+1}/s_u, \dots, u_n/s_u)

(the history as input channels; ``history=1`` is the plain one-step FNO of :class:`~workbench.fields.OneStepSurrogate`).
"""
from __future__ import annotations

import torch

from ...models.fno import FNO2d
from .base import SURROGATES, FieldSurrogate


@SURROGATES.register("fno")
class FNOSurrogate(FieldSurrogate):
    """Args: ``history`` input frames; ``width``, ``modes``, ``layers``, ``local_kernel`` of the :class:`FNO2d`."""

    def __init__(self, history: int = 1, width: int = 16, modes: int = 8, layers: int = 4, local_kernel: int = 1):
        super().__init__(history)
        self.net = FNO2d(self.history, 1, width=width, modes=modes, layers=layers, local_kernel=local_kernel)

    def increment(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)[:, 0]

"""Per-run NFE counting for the samplers' own loops (the solver core counts per run; these loops do the same).

:class:`CountedField` wraps a :class:`~workbench.models.field.Field` for one run: it counts the model calls made
through it (``.nfe``) and never reads or relies on the shared field's counter. A budget an earlier
``solver.sample`` left on the shared field is cleared once at the start, so a direct evaluation loop is not refused
by someone else's budget.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..models.field import Field, Prediction


def clear_stale_budget(field: Field) -> None:
    """Drop a budget an earlier ``solver.sample`` left on the shared ``field`` (before per-run counting)."""
    if getattr(field, "budget", None) is not None:
        field.reset()


class CountedField:
    """A run-local view of ``field`` with its own call counter; offers ``predict``, ``velocity`` and ``interpolant``."""

    def __init__(self, field: Field):
        self.field = field
        self.interpolant = field.interpolant
        self.prediction = field.prediction
        self.nfe = 0
        clear_stale_budget(field)

    def predict(self, x: torch.Tensor, t: float, t_batch: Optional[torch.Tensor] = None) -> Prediction:
        """One counted model call."""
        self.nfe += 1
        return self.field.predict(x, t, t_batch)

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """One counted model call, as velocity."""
        return self.predict(x, t).velocity

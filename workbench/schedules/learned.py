"""Fitted time grids: kept as the historical import path of :mod:`workbench.fitting.grid` (``fit_grid``,
``GridFit``), where the fit lives."""
from __future__ import annotations

from typing import Any

from ..fitting.result import GridFit


def fit_grid(*args: Any, **kwargs: Any) -> GridFit:
    """:func:`workbench.fitting.fit_grid` (imported late: the fits import the solvers, which import the schedules)."""
    from ..fitting.grid import fit_grid as fit

    return fit(*args, **kwargs)


__all__ = ["GridFit", "fit_grid"]

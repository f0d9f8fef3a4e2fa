"""Fitting solvers and grids to a model from a pilot run: one pilot, one result type, one selection rule.

* :class:`Pilot` (pilot.py): start states, the reference end states (the exact map when the problem has one,
  else one accurate Dormand–Prince pass of the model, paid once and reused), the fit/held-out split, and a
  counted model view (:class:`PilotModel`) through which every fit makes its model calls.
* :class:`FitResult` (result.py): losses before/after on the fitting and the held-out part, pilot NFE, wall time,
  JSON round-trip; :class:`GridFit` and :class:`NSFit` are its two views.
* :func:`keep_if_better` and :class:`Search` (selection.py): the one keep-if-better-on-held-out rule, best-so-far
  bookkeeping, held-out early stopping and the progress bar shared by every fit.
* Each fit is then an objective and a parameterisation: :func:`fit_grid` (grid.py, derivative-free, any fixed-step
  solver), :func:`fit_nonstationary` (nonstationary.py, autograd + L-BFGS) and :func:`fit_time_shift`
  (time_shift.py, golden section on one offset; ``TimeShifted.fit`` wraps it), DC-Solver's ratios (dc_solver.py)
  and the USF / S³ solver search :class:`USFSearch` (usf.py; registered in ``FITS`` as ``usf``).

>>> from workbench.fitting import Pilot, fit_nonstationary   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

from .result import FitResult, GridFit, NSFit
from .selection import Search, keep_if_better

_LAZY = {"Pilot": "pilot", "PilotModel": "pilot", "PilotSizeWarning": "pilot", "fit_grid": "grid",
         "fit_nonstationary": "nonstationary", "NSParameters": "nonstationary", "ns_forward": "nonstationary",
         "fit_time_shift": "time_shift", "fit_dc_ratios": "dc_solver", "ratio_regression": "dc_solver",
         "USFSearch": "usf", "USFFit": "usf", "FITS": "usf"}

__all__ = ["FitResult", "GridFit", "NSFit", "Search", "keep_if_better", *_LAZY]


def __getattr__(name: str) -> Any:
    # the fits import the solvers, which import the schedules, which re-export GridFit/fit_grid: load them lazily
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

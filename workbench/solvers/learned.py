"""Fitted non-stationary solvers: kept as the historical import path of :mod:`workbench.fitting.nonstationary`
(``fit_nonstationary``, ``NSFit``, ``ns_forward``), where the fit lives."""
from __future__ import annotations

from ..fitting.nonstationary import NSParameters, fit_nonstationary, ns_forward
from ..fitting.result import NSFit

__all__ = ["NSFit", "NSParameters", "fit_nonstationary", "ns_forward"]

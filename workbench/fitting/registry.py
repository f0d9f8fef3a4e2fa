"""The registry of solver searches/fits that are configuration objects (``FITS.get("usf", population=...)``)."""
from __future__ import annotations

from ..registry import Registry

#: searches over solvers registered by name; each entry has ``fit(field, x_pilot, nfe, ...) -> FitResult``
FITS: Registry = Registry("fit")

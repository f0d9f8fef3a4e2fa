"""Pilot-run helpers shared by the fitted grids and the fitted solvers: an accurate reference solution of the
model's own PF-ODE, and the split of the pilot into a fitting and a held-out part."""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..errors import ConfigError
from ..models.field import Field
from .base import SOLVERS

Pair = Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]


def check_pilot(x_pilot: object) -> None:
    """Raise :class:`ConfigError` unless ``x_pilot`` is a tensor of at least 4 start states ``(M, ...)``."""
    if not isinstance(x_pilot, torch.Tensor) or x_pilot.dim() < 1 or x_pilot.shape[0] < 4:
        raise ConfigError("x_pilot", "needs a tensor of at least 4 pilot start states, shape (M, ...)")


def check_holdout(holdout: object) -> float:
    """Raise :class:`ConfigError` unless ``holdout`` is a fraction in [0, 0.9)."""
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.0 <= holdout < 0.9:
        raise ConfigError("holdout", f"must be a fraction in [0, 0.9), got {holdout!r}")
    return float(holdout)


def pilot_reference(field: Field, x_pilot: torch.Tensor, t_start: float, t_end: float,
                    reference: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, int]:
    """``(reference end states, model calls spent)``: the given ``reference`` checked against the pilot's shape,
    or the model's own PF-ODE solved by Dormand–Prince (rtol = atol = 1e-8 in float64, 1e-5 in float32).

    Raises:
        ConfigError: fewer than 4 pilot states, or a reference of another shape.
    """
    check_pilot(x_pilot)
    spent = 0
    if reference is None:
        tol = 1e-8 if x_pilot.dtype == torch.float64 else 1e-5
        with torch.no_grad():
            run = SOLVERS.get("dopri5", rtol=tol, atol=tol).sample(field, x_pilot, 10**7, t_start=t_start, t_end=t_end)
        reference, spent = run.x, run.nfe
    if not isinstance(reference, torch.Tensor) or reference.shape != x_pilot.shape:
        got = tuple(reference.shape) if isinstance(reference, torch.Tensor) else type(reference).__name__
        raise ConfigError("reference", f"must have the pilot's shape {tuple(x_pilot.shape)}, got {got}")
    return reference.to(device=x_pilot.device, dtype=x_pilot.dtype), spent


def split_holdout(x: torch.Tensor, ref: torch.Tensor, holdout: float) -> Tuple[Pair, Pair]:
    """``((x_fit, ref_fit), (x_held, ref_held))``: the last ``round(holdout × M)`` states are held out
    (``None`` when there are none).

    Raises:
        ConfigError: ``holdout`` outside [0, 0.9).
    """
    n_hold = int(round(check_holdout(holdout) * x.shape[0]))
    n_fit = x.shape[0] - n_hold
    if n_hold == 0:
        return (x, ref), (None, None)
    return (x[:n_fit], ref[:n_fit]), (x[n_fit:], ref[n_fit:])

r"""The pilot of a fit: start states, reference end states, the fit/held-out split and a counted model view.

The reference is the exact PF-ODE map when the problem has one (a Gaussian mixture's ground truth), else the
model's own PF-ODE solved once by Dormand–Prince (rtol = atol = 1e-8 in float64, 1e-5 in float32), and reused by
every objective evaluation of the fit. The last ``round(holdout × M)`` states are held out.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .. import validation
from ..errors import ConfigError, WorkbenchError
from ..models.field import DATA_SCORE, Field

Pair = Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]

#: a fit of ``P`` numbers warns below ``STATES_PER_PARAMETER × P`` fitting states
STATES_PER_PARAMETER = 8


class PilotSizeWarning(UserWarning):
    """The pilot's fitting part is small for the number of fitted numbers (the fit may over-fit)."""


def check_pilot(x_pilot: object) -> None:
    """Raise :class:`ConfigError` unless ``x_pilot`` is a tensor of at least 4 start states ``(M, ...)``."""
    if not isinstance(x_pilot, torch.Tensor) or x_pilot.dim() < 1 or x_pilot.shape[0] < 4:
        raise ConfigError("x_pilot", "needs a tensor of at least 4 pilot start states, shape (M, ...)")


def check_holdout(holdout: object) -> float:
    """Raise :class:`ConfigError` unless ``holdout`` is a fraction in [0, 0.9)."""
    v = validation.number("holdout", holdout, 0.0, hint=" (a fraction in [0, 0.9))")
    if not v < 0.9:
        raise ConfigError("holdout", f"must be a fraction in [0, 0.9), got {holdout!r}")
    return v


def mean_l2(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1M\sum_m \|y^{(m)} - x_{ref}^{(m)}\|_2` (differentiable; ``1e-30`` under the root keeps the
    gradient finite at a zero residual)."""
    return (out - ref).flatten(1).pow(2).sum(dim=1).add(1e-30).sqrt().mean()


@dataclass(frozen=True)
class Pilot:
    """Pilot start states and their reference end states, split into a fitting and a held-out part.

    Build with :meth:`build`. Attributes: ``x`` ``(M, ...)`` at ``t_start``; ``reference`` their end states at
    ``t_end``; ``n_held`` held-out states (the last ones); ``reference_nfe`` model calls spent on the reference
    (0 when it was given, e.g. the exact map).
    """

    x: torch.Tensor
    reference: torch.Tensor
    t_start: float
    t_end: float
    n_held: int
    reference_nfe: int = 0

    @staticmethod
    def build(field: Field, x: torch.Tensor, t_start: float = 0.0, t_end: float = 1.0,
              reference: Optional[torch.Tensor] = None, holdout: float = 0.25) -> "Pilot":
        """The pilot of ``x``: ``reference`` checked against its shape, or the model's own Dormand–Prince solution.

        Raises:
            ConfigError: fewer than 4 states, a reference of another shape, ``holdout`` outside [0, 0.9).
        """
        from ..solvers.base import SOLVERS  # late: the solvers import the schedules, which re-export the fits

        check_pilot(x)
        n_held = int(round(check_holdout(holdout) * x.shape[0]))
        spent = 0
        if reference is None:
            tol = 1e-8 if x.dtype == torch.float64 else 1e-5
            with torch.no_grad():
                run = SOLVERS.get("dopri5", rtol=tol, atol=tol).sample(field, x, 10**7, t_start=t_start, t_end=t_end)
            reference, spent = run.x, run.nfe
        if not isinstance(reference, torch.Tensor) or reference.shape != x.shape:
            got = tuple(reference.shape) if isinstance(reference, torch.Tensor) else type(reference).__name__
            raise ConfigError("reference", f"must have the pilot's shape {tuple(x.shape)}, got {got}")
        return Pilot(x.detach(), reference.detach().to(device=x.device, dtype=x.dtype), float(t_start),
                     float(t_end), n_held, spent)

    @property
    def n_fit(self) -> int:
        """States in the fitting part."""
        return self.x.shape[0] - self.n_held

    @property
    def fit(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(x, reference)`` of the fitting part."""
        return self.x[: self.n_fit], self.reference[: self.n_fit]

    @property
    def held(self) -> Pair:
        """``(x, reference)`` of the held-out part, ``(None, None)`` when there is none."""
        if self.n_held == 0:
            return None, None
        return self.x[self.n_fit:], self.reference[self.n_fit:]

    def check_interval(self, t_start: float, t_end: float) -> None:
        """Raise :class:`ConfigError` unless the pilot runs from ``t_start`` to ``t_end``."""
        if abs(self.t_start - float(t_start)) > 1e-12 or abs(self.t_end - float(t_end)) > 1e-12:
            raise ConfigError("pilot", f"runs from {self.t_start!r} to {self.t_end!r}, the fit from {t_start!r} "
                                       f"to {t_end!r}")

    def warn_if_small(self, n_parameters: int, what: str = "fit") -> bool:
        """Warn (:class:`PilotSizeWarning`) when the fitting part has fewer than ``STATES_PER_PARAMETER ×
        n_parameters`` states; returns whether it warned."""
        need = STATES_PER_PARAMETER * int(n_parameters)
        if self.n_fit < need:
            warnings.warn(f"{what}: {self.n_fit} fitting states for {n_parameters} fitted numbers; below "
                          f"{need} the fit may over-fit the pilot (use more pilot states, or select='holdout')",
                          PilotSizeWarning, stacklevel=3)
            return True
        return False

    def model(self, field: Field) -> "PilotModel":
        """A counted view of ``field`` for this pilot's fit (its ``calls`` start at ``reference_nfe``)."""
        return PilotModel(field, self.reference_nfe)


class PilotModel:
    """The model as a fit sees it: every batched call is counted in :attr:`calls`.

    :meth:`evaluate` is one differentiable call at a 0-dim time tensor (gradients flow through the time and the
    interpolant's conversion), :meth:`run` one sampling run of a solver (its own count added).
    """

    def __init__(self, field: Field, calls: int = 0):
        if not isinstance(field, Field):
            raise ConfigError("field", f"must be a Field, got {type(field).__name__}")
        self.field, self.calls = field, int(calls)

    def evaluate(self, y: torch.Tensor, tau: torch.Tensor, kind: str) -> torch.Tensor:
        """The model's prediction of ``kind`` at ``(y, tau)``, differentiable in both (one counted call)."""
        self.calls += 1
        f = self.field
        out = f.model(y, tau.expand(y.shape[0]))
        if f.prediction == DATA_SCORE:
            d, s = out
            return f.interpolant.from_data_and_score(d, s, tau, kind)
        return f.interpolant.convert(out, y, tau, f.prediction, kind)

    def run(self, solver, x: torch.Tensor, nfe: int, grid: torch.Tensor) -> Optional[torch.Tensor]:
        """End states of ``solver`` from ``x`` on ``grid`` (no gradient), or ``None`` when the run fails
        (a :class:`WorkbenchError`: non-finite values, a degenerate step). Its calls are counted either way."""
        run = solver.stream(self.field, x, nfe, grid=grid)
        try:
            with torch.no_grad():
                for _ in run:
                    pass
            return run.result.x  # type: ignore[union-attr]
        except WorkbenchError:
            return None
        finally:
            self.calls += run.nfe

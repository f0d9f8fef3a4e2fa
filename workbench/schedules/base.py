r"""Time grids: ``schedule.grid(steps, interpolant, t_start, t_end)`` → float64 tensor of ``steps + 1``
increasing times with *exact* endpoints ``t_start`` and ``t_end`` and no zero-length step.

Warped schedules place points uniformly in a monotone warp :math:`u(t)` (log-SNR, :math:`\sigma^{1/\rho}`, …).
Where the warp is infinite at an end (λ = ±∞ where the signal or the noise vanishes), it is clamped to a
finite range for the interior points and the end point itself is kept exact.
"""
from __future__ import annotations

import math
from abc import abstractmethod

import torch

from .. import validation
from ..config import Config
from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..registry import Registry


class Schedule(Config):
    """A rule mapping a step count to a time grid on ``[t_start, t_end]``.

    An immutable value (:class:`~workbench.config.Config`): parameters are the constructor's arguments,
    ``params()``/``repr``/``==``/``hash`` derive from them, ``replace(...)`` makes a new schedule."""

    name: str = "schedule"
    #: True when the grid is defined through the log-SNR, which must then increase monotonically in t.
    needs_log_snr: bool = False

    def grid(self, steps: int, interpolant: Interpolant, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        """Return the ``steps + 1`` grid points (float64, CPU), increasing, endpoints exact.

        Raises:
            ConfigError: ``steps < 1`` or ``t_start >= t_end`` or an interior point leaves the interval.
        """
        validation.integer("steps", steps, 1)
        if not (0.0 <= t_start < t_end <= 1.0):
            raise ConfigError("t_start/t_end", f"need 0 <= t_start < t_end <= 1, got {t_start}, {t_end}")
        if self.needs_log_snr and not interpolant.monotone_snr:
            raise ConfigError(
                "schedule",
                f"{self.name!r} places steps by log-SNR, which is not monotone for the {interpolant.name!r} "
                "interpolant; use one of: uniform, shift, logit_normal",
            )
        ts = self._grid(steps, interpolant, float(t_start), float(t_end)).to(torch.float64)
        ts[0], ts[-1] = t_start, t_end
        if ts.shape != (steps + 1,) or not bool(torch.all(ts[1:] > ts[:-1])):
            raise ConfigError(
                "schedule",
                f"{self!r} produced a non-increasing grid for steps={steps} on [{t_start}, {t_end}]; "
                "adjust its parameters",
            )
        return ts

    @abstractmethod
    def _grid(self, steps: int, interpolant: Interpolant, t_start: float, t_end: float) -> torch.Tensor:
        """The grid before endpoint snapping."""


SCHEDULES: Registry[Schedule] = Registry("schedule")
register = SCHEDULES.register


def warped_grid(u_start: float, u_end: float, steps: int, inverse, lo: float, hi: float) -> torch.Tensor:
    """Uniform points in a warp coordinate, clamped to ``[lo, hi]``, mapped back by ``inverse``."""
    def clamp(u: float) -> float:
        return min(max(u, lo), hi)

    u = torch.linspace(clamp(u_start), clamp(u_end), steps + 1, dtype=torch.float64)
    return inverse(u)


def finite(v: float, field: str) -> float:
    """Validate a finite float parameter."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ConfigError(field, f"must be finite, got {v!r}")
    return f

r"""An explicit grid: the user (or :func:`~workbench.schedules.learned.fit_grid`) gives every time point.

:math:`t_0 = t_{start} < t_1 < \dots < t_N = t_{end}`; the grid is used as given, so it fixes the number of steps
(``nfe = N × evaluations per step``) and the interval.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch

from .. import validation
from ..errors import ConfigError
from .base import Schedule, register


def check_times(times: object, field: str = "times") -> List[float]:
    """Validate a grid: at least two finite floats in [0, 1], strictly increasing."""
    if isinstance(times, torch.Tensor):
        times = times.detach().cpu().tolist()
    if isinstance(times, (str, bytes)) or not isinstance(times, Sequence):
        raise ConfigError(field, f"must be a list of increasing times in [0, 1], got {times!r}")
    out: List[float] = []
    for v in times:
        out.append(validation.number(field, v, hint=" (every time)"))
    if len(out) < 2:
        raise ConfigError(field, f"needs at least two points (one step), got {len(out)}")
    if not (0.0 <= out[0] and out[-1] <= 1.0):
        raise ConfigError(field, f"must lie in [0, 1], got [{out[0]}, {out[-1]}]")
    for i in range(len(out) - 1):
        if not out[i + 1] > out[i]:
            raise ConfigError(field, f"must increase strictly; times[{i}]={out[i]!r} >= times[{i + 1}]={out[i + 1]!r}")
    return out


@register("explicit", "custom", "fitted")
class ExplicitGrid(Schedule):
    r"""The grid :math:`t_0 < \dots < t_N` exactly as given (for instance one fitted by ``fit_grid``).

    Args:
        times: the ``N + 1`` points, endpoints included.
    """

    def __init__(self, times: Sequence[float] = (0.0, 1.0)):
        self.times = tuple(check_times(times))

    @property
    def steps(self) -> int:
        """Number of steps the grid has."""
        return len(self.times) - 1

    def _grid(self, steps, interpolant, t_start, t_end):
        if steps != self.steps and self.times == (0.0, 1.0):
            raise ConfigError(
                "times", f"the explicit schedule needs its time points (it has only the default (0, 1), one step, "
                         f"while the budget buys {steps}); give them, e.g. --schedule-param times=[0,0.3,0.7,1] "
                         f"or schedule_params={{'times': [...]}}")
        if steps != self.steps:
            raise ConfigError(
                "nfe",
                f"the explicit grid has {self.steps} steps but the budget buys {steps}; set nfe to {self.steps} "
                f"× the solver's evaluations per step",
            )
        if abs(t_start - self.times[0]) > 1e-12 or abs(t_end - self.times[-1]) > 1e-12:
            raise ConfigError(
                "t_start/t_end",
                f"the explicit grid spans [{self.times[0]!r}, {self.times[-1]!r}] but the run asks for "
                f"[{t_start!r}, {t_end!r}]",
            )
        return torch.tensor(self.times, dtype=torch.float64)

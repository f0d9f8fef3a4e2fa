r"""Per-step log of an adaptive solve: every attempt's interval, accept/reject decision and error estimate.

``adaptive_log("dopri5", field, x, nfe, rtol=..., atol=...)`` runs the solver's own step iterator (nothing is
re-implemented) and keeps, per attempt :math:`j`, the interval :math:`[t_j, t_j + h_j]`, whether it was accepted and
the scaled error estimate :math:`E_j = \|(y_5 - y_4)/(atol + rtol\max(|y_n|, |y_{n+1}|))\|_{RMS}` (accepted iff
:math:`E_j \le 1`), with the cumulative model calls. Totals (``accepted``, ``rejected``, ``nfe``) equal the
solver's ``SampleResult.info``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Union

import torch

from ..errors import ConfigError
from ..models.field import RunField
from ..solvers import SOLVERS, Solver


@dataclass
class AdaptiveLog:
    """Attempts in order: ``t``, ``h`` (attempted step), ``accepted_mask``, ``errors`` (E_j), ``nfe`` (cumulative)."""

    x: torch.Tensor
    t: List[float]
    h: List[float]
    accepted_mask: List[bool]
    errors: List[float]
    nfe_after: List[int]
    nfe: int

    @property
    def accepted(self) -> int:
        return sum(self.accepted_mask)

    @property
    def rejected(self) -> int:
        return len(self.accepted_mask) - self.accepted

    def rows(self) -> List[dict]:
        """One dict per attempt (for a table or JSON)."""
        return [{"t": t, "h": h, "accepted": a, "error": e, "nfe": n}
                for t, h, a, e, n in zip(self.t, self.h, self.accepted_mask, self.errors, self.nfe_after)]


def adaptive_log(solver: Union[str, Solver], field, x: torch.Tensor, nfe: int, t_start: float = 0.0, t_end: float = 1.0,
                 **solver_params) -> AdaptiveLog:
    """Run an adaptive ``solver`` (e.g. ``"dopri5"``, parameters ``rtol``/``atol``/``first_step``) from ``x`` with at
    most ``nfe`` model calls and return every attempt's record (module docstring)."""
    s = SOLVERS.get(solver, **solver_params) if isinstance(solver, str) else solver
    if not s.adaptive:
        raise ConfigError("solver", f"{s.name!r} is not adaptive; the per-step error log needs an adaptive solver (dopri5)")
    run = RunField(field, budget=int(nfe))
    grid = torch.tensor([t_start, t_end], dtype=torch.float64)
    base = 0
    log = AdaptiveLog(x, [], [], [], [], [], 0)
    with torch.no_grad():
        for step in s.iterate(run, x, grid):
            log.t.append(step.t)
            log.h.append(step.t_next - step.t)
            log.accepted_mask.append(bool(step.accepted))
            log.errors.append(float(step.error) if step.error is not None else float("nan"))
            log.nfe_after.append(int(step.nfe) - base)
            if step.accepted:
                log.x = step.x
    log.nfe = log.nfe_after[-1] if log.nfe_after else 0
    return log

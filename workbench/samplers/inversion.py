r"""Inverting a deterministic sampler: data → noise, so that sampling from the result gives the data back.

:func:`invert` works for every deterministic fixed-step solver. It says whether the inverse is **exact**:

* solvers with an exact inverse (``exact_inverse = True``, e.g. :class:`~workbench.solvers.bdia.BDIA`) store
  the pair of states their update needs and undo each step in closed form — the round trip data → noise → data
  is exact up to round-off (Zhang, Lewis & Kleijn 2024, BDIA);
* any other solver is run on the reversed grid (the usual "DDIM inversion"): the same explicit update from the
  *other* end of each interval, so the round trip leaves an :math:`O(h^{p})`-type error (:math:`O(h)` for DDIM/Euler).

:func:`regenerate` runs the solver forward from an :class:`Inversion`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch

from ..errors import ConfigError
from ..models.field import Field
from ..schedules.base import Schedule
from ..solvers import SOLVERS, Solver
from ..solvers.bdia import ddim_delta
from .counting import CountedField


@dataclass(frozen=True)
class Inversion:
    """The result of :func:`invert`.

    Attributes:
        x: the state at ``grid[0]`` (the noise end).
        latent: what the forward solver starts from: ``(x_0, x_1)`` for a pair solver (BDIA), ``(x_0,)`` otherwise.
        grid: the forward grid (increasing), shared by the inversion and :func:`regenerate`.
        exact: True when the forward run from ``latent`` reproduces the inverted data up to round-off.
        nfe: model calls the inversion made.
        solver: the solver's registered name.
    """

    x: torch.Tensor
    latent: Tuple[torch.Tensor, ...]
    grid: torch.Tensor
    exact: bool
    nfe: int
    solver: str


def _solver(solver: Union[str, Solver]) -> Solver:
    s = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if not isinstance(s, Solver):
        raise ConfigError("solver", f"expected a solver name or a Solver, got {type(solver).__name__}")
    if s.stochastic or s.adaptive:
        kind = "stochastic" if s.stochastic else "adaptive"
        raise ConfigError("solver", f"{s.name!r} is {kind}; invert needs a deterministic fixed-step solver "
                                    f"(e.g. bdia for an exact inverse, or euler, heun, dpmpp_2m)")
    if s.needs_gaussian:
        raise ConfigError("solver", f"{s.name!r} builds a log-SNR table that must increase along the grid, so it "
                                    f"cannot run backwards; use bdia (exact inverse) or ddim, euler, heun, rk4 (approximate)")
    return s


def invert(solver: Union[str, Solver], field: Field, x: torch.Tensor, nfe: int,
           schedule: Union[str, Schedule] = "uniform", t_start: float = 0.0, t_end: float = 1.0,
           grid: Optional[torch.Tensor] = None) -> Inversion:
    """Map data-end states ``x`` (at ``t_end``) to noise-end states at ``t_start`` with ``solver``'s own grid for ``nfe``.

    For an exact-inverse solver (BDIA) the state one step before the data end is first found by one DDIM inversion
    step (as in the paper), then every bidirectional step is undone in closed form: the forward run from the returned
    ``latent`` lands on ``x`` up to round-off. For any other deterministic solver the inverse is its run on the
    reversed grid (approximate; ``exact = False``).
    """
    s = _solver(solver)
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ConfigError("x", "must be a tensor of shape (B, ...)")
    if grid is None:
        grid = s.make_grid(field, nfe, schedule, t_start, t_end)
    ts = [float(v) for v in grid]
    if getattr(s, "exact_inverse", False):
        run = CountedField(field)
        pred = run.predict(x, ts[-1])
        x_prev = x + ddim_delta(pred, ts[-1], ts[-2])
        x0, x1 = s.backward_pair(run, x_prev, x, grid)  # type: ignore[attr-defined]
        return Inversion(x0, (x0, x1), grid, True, run.nfe, s.name)
    back = torch.flip(grid, [0])
    res = s.sample(field, x, nfe, grid=back)
    return Inversion(res.x, (res.x,), grid, False, res.nfe, s.name)


def regenerate(solver: Union[str, Solver], field: Field, inversion: Inversion) -> torch.Tensor:
    """Run ``solver`` forward from ``inversion.latent`` on ``inversion.grid``: the data back (exactly for BDIA)."""
    s = _solver(solver)
    if getattr(s, "exact_inverse", False):
        if len(inversion.latent) != 2:
            raise ConfigError("inversion", f"{s.name!r} needs the pair latent of its own inversion; this one came "
                                           f"from {inversion.solver!r}")
        return s.forward_pair(CountedField(field), inversion.latent[0], inversion.latent[1], inversion.grid)[1]  # type: ignore[attr-defined]
    nfe = s.nfe_for_steps(len(inversion.grid) - 1)
    return s.sample(field, inversion.latent[0], nfe, grid=inversion.grid).x

r"""Path straightness and curvature of a flow's trajectories.

Straightness (Liu, Gong & Liu 2023, "Flow Straight and Fast", Def. 2.2) of the ODE flow :math:`\dot X_t = b(t, X_t)`:

.. math:: S(b) = \int_0^1 E\,\big|(X_1 - X_0) - b(t, X_t)\big|^2\,dt,

zero iff every trajectory is a straight line traversed at constant speed (then one Euler step is exact).
``normalized`` divides by :math:`E|X_1 - X_0|^2` (scale-free). The integral is the trapezoid rule on the solver's
grid, with the velocities the solver evaluated at each step start plus one evaluation at the end.

Curvature: the total turning angle :math:`\sum_k \angle(\Delta_k, \Delta_{k+1})` of the discrete trajectory
(the discrete :math:`\int\kappa\,ds`, 0 for a straight path, π for a half circle), and the length ratio
:math:`\sum_k|\Delta_k| / |X_1 - X_0| \ge 1`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import torch

from ..errors import ConfigError
from ..models.field import RunField, as_field


@dataclass
class StraightnessResult:
    """Attributes: ``value`` :math:`S`; ``normalized`` :math:`S / E|X_1-X_0|^2`; ``per_sample`` ``(B,)`` integrals;
    ``nfe`` model calls; ``times`` the grid; ``x0``, ``x1`` start and end states."""

    value: float
    normalized: float
    per_sample: torch.Tensor
    nfe: int
    times: torch.Tensor
    x0: torch.Tensor
    x1: torch.Tensor




@torch.no_grad()
def straightness(field: Any, x0: torch.Tensor, nfe: int = 64, solver: str = "rk4", schedule: str = "uniform",
                 t_start: float = 0.0, t_end: float = 1.0) -> StraightnessResult:
    """Straightness :math:`S` of the ODE flow started at ``x0`` (``(B, ...)`` at ``t_start``).

    Args:
        field: a :class:`Field` or a :class:`~workbench.models.predictor.Predictor`.
        nfe: evaluation budget of the trajectory (one more evaluation is spent at ``t_end``).
        solver, schedule: any fixed-step solver and schedule of the registries.
    """
    from .. import solvers

    f = as_field(field)
    sol = solvers.get(solver)
    if sol.adaptive or sol.stochastic:
        raise ConfigError("solver", f"straightness needs a deterministic fixed-step solver, got {solver!r}")
    grid = sol.make_grid(f, nfe, schedule, t_start, t_end)
    f = RunField(f)  # this measurement's own call count
    times, vels = [], []
    x = x0
    for step in sol.iterate(f, x0, grid):
        times.append(step.t)
        vels.append(step.prediction.velocity)
        x = step.x
    times.append(float(grid[-1]))
    vels.append(f.predict(x, float(grid[-1])).velocity)
    if not torch.isfinite(x).all():
        raise ConfigError("field", "the trajectory is not finite; straightness is undefined")
    chord = (x - x0).reshape(x.shape[0], -1).to(torch.float64)
    dev = torch.stack([((chord - v.reshape(v.shape[0], -1).to(torch.float64)) ** 2).sum(1) for v in vels])  # (T+1, B)
    tt = torch.tensor(times, dtype=torch.float64, device=dev.device)
    per = torch.trapezoid(dev, tt, dim=0) / (times[-1] - times[0])
    value = float(per.mean())
    return StraightnessResult(value, value / float((chord ** 2).sum(1).mean()), per, f.nfe, tt, x0, x)


def curvature(trajectory: torch.Tensor) -> torch.Tensor:
    """Total turning angle (radians) of each discrete path; ``trajectory`` is ``(T+1, B, ...)`` → ``(B,)``."""
    if trajectory.dim() < 3 or trajectory.shape[0] < 3:
        raise ConfigError("trajectory", f"need (T+1, B, ...) with T >= 2, got {tuple(trajectory.shape)}")
    d = torch.diff(trajectory.reshape(trajectory.shape[0], trajectory.shape[1], -1).to(torch.float64), dim=0)
    a, b = d[:-1], d[1:]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)
    return torch.arccos(cos.clamp(-1.0, 1.0)).sum(0)


def length_ratio(trajectory: torch.Tensor) -> torch.Tensor:
    """Path length over chord length (≥ 1, = 1 for straight paths) of each path ``(T+1, B, ...)`` → ``(B,)``."""
    tr = trajectory.reshape(trajectory.shape[0], trajectory.shape[1], -1).to(torch.float64)
    length = torch.diff(tr, dim=0).norm(dim=-1).sum(0)
    return length / (tr[-1] - tr[0]).norm(dim=-1).clamp_min(1e-300)


@torch.no_grad()
def trajectory_curvature(field: Any, x0: torch.Tensor, nfe: int = 64, solver: str = "rk4") -> dict:
    """Mean total turning angle and length ratio of the ODE paths from ``x0`` (plus the trajectory)."""
    from .. import solvers

    res = solvers.get(solver).sample(as_field(field), x0, nfe, return_trajectory=True)
    return {"curvature": float(curvature(res.trajectory).mean()), "length_ratio": float(length_ratio(res.trajectory).mean()),
            "trajectory": res.trajectory}


__all__ = ["straightness", "StraightnessResult", "curvature", "length_ratio", "trajectory_curvature"]

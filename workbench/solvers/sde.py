r"""Stochastic samplers for :math:`dX = (b + \varepsilon(t)\,s)\,dt + \sqrt{2\varepsilon(t)}\,dW` (SI paper, Thm. 2.4).

Every :math:`\varepsilon \ge 0` gives the same time marginals as the probability-flow ODE; ``eps = 0`` *is*
the ODE and reproduces :class:`~workbench.solvers.runge_kutta.Euler` bit for bit.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Union

import torch

from ..errors import ConfigError
from .base import FixedStepSolver, OrderCheck, register
from .plan import euler_update

EpsLike = Union[float, Callable[[float], float]]


def check_eps(eps: EpsLike) -> EpsLike:
    """Validate ε: a finite number ≥ 0 or a callable ``t -> float``."""
    if callable(eps):
        return eps
    if isinstance(eps, (bool, str)) or not isinstance(eps, numbers.Real):
        raise ConfigError("eps", f"must be a number >= 0 or a callable t -> eps(t), got {eps!r} ({type(eps).__name__})")
    v = float(eps)
    if not math.isfinite(v) or v < 0:
        raise ConfigError("eps", f"must be >= 0 and finite, got {eps!r}")
    return v


def eval_eps(eps: EpsLike, t: float) -> float:
    """ε(t), checked ≥ 0 and finite."""
    v = float(eps(t)) if callable(eps) else float(eps)
    if not math.isfinite(v) or v < 0:
        raise ConfigError("eps", f"eps(t) must be >= 0 and finite; got {v} at t={t:.6g}")
    return v


@register("euler_maruyama", "em", "sde_euler")
class EulerMaruyama(FixedStepSolver):
    r"""Euler–Maruyama: :math:`x_{n+1} = x_n + h\,(b + \varepsilon s) + \sqrt{2\varepsilon h}\,\xi_n`; 1 NFE/step.

    Args:
        eps: diffusion coefficient ε, a number ≥ 0 or a callable ``t -> ε(t)``.
    """

    order = 1
    evals_per_step = 1
    stochastic = True
    order_checks = (OrderCheck({"eps": 0.0}),)  # ε = 0 is the ODE (Euler); the SDE's law: tests/core/test_solvers.py

    def __init__(self, eps: EpsLike = 1.0):
        self.eps = check_eps(eps)

    def iterate(self, field, x, grid, generator=None):
        if not callable(self.eps) and self.eps == 0.0:  # ε = 0 is the probability-flow ODE: Euler's own plan, bit for bit
            from .runge_kutta import Euler

            return Euler().iterate(field, x, grid, generator)
        return super().iterate(field, x, grid, generator)

    def step(self, field, x, t, t_next, index, state, generator):
        h = t_next - t
        pred = field.predict(x, t)
        e = eval_eps(self.eps, t)
        if e == 0.0:  # the ODE step, with Euler's own arithmetic
            return euler_update(field.interpolant, pred, x, h), pred, 1
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        drift = pred.velocity + e * pred.score
        return x + h * drift + math.sqrt(2.0 * e * h) * noise, pred, 1

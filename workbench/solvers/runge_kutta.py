r"""Explicit Runge–Kutta methods as Butcher-tableau data (one class, four tableaus).

.. math::
    k_i = b\big(t + c_i h,\ x + h\textstyle\sum_{j<i} a_{ij}k_j\big),\qquad x_{n+1} = x_n + h\textstyle\sum_i w_i k_i
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

from .base import FixedStepSolver, register


class ExplicitRK(FixedStepSolver):
    """A fixed-step explicit RK method given by ``(c, a, w)``; ``evals_per_step = len(c)``."""

    tableau: Tuple[Sequence[float], Sequence[Sequence[float]], Sequence[float]]

    def __init__(self):
        self._params = {}

    def step(self, field, x, t, t_next, index, state, generator):
        c, a, w = self.tableau
        h = t_next - t
        first = field.predict(x, t)
        ks = [first.velocity]
        if len(c) == 1:  # Euler: x + h k with one new tensor (same bits as ``x + h * k``: h·k, then + x)
            out = ks[0] * h
            return out.add_(x), first, self.order
        for i in range(1, len(c)):
            xi = x
            for aij, kj in zip(a[i], ks):
                if aij != 0.0:
                    xi = torch.add(xi, kj, alpha=h * aij) if xi is x else xi.add_(kj, alpha=h * aij)
            ks.append(field.velocity(xi, t + c[i] * h))
        out = None
        for wi, ki in zip(w, ks):  # x + h Σ w_i k_i, accumulated in place into one new tensor
            if wi != 0.0:
                out = torch.add(x, ki, alpha=h * wi) if out is None else out.add_(ki, alpha=h * wi)
        return (x.clone() if out is None else out), first, self.order


@register("euler")
class Euler(ExplicitRK):
    r"""Forward Euler: :math:`x_{n+1} = x_n + h\,b(t_n, x_n)`; 1 NFE/step, order 1."""

    order, evals_per_step = 1, 1
    tableau = ((0.0,), ((),), (1.0,))


@register("heun", "heun2")
class Heun(ExplicitRK):
    r"""Heun (explicit trapezoid): :math:`x_{n+1} = x_n + \tfrac h2(k_1 + k_2)`; 2 NFE/step, order 2."""

    order, evals_per_step = 2, 2
    tableau = ((0.0, 1.0), ((), (1.0,)), (0.5, 0.5))


@register("midpoint")
class Midpoint(ExplicitRK):
    r"""Explicit midpoint: :math:`x_{n+1} = x_n + h\,b(t_n + \tfrac h2, x_n + \tfrac h2 k_1)`; 2 NFE/step, order 2."""

    order, evals_per_step = 2, 2
    tableau = ((0.0, 0.5), ((), (0.5,)), (0.0, 1.0))


@register("rk4")
class RK4(ExplicitRK):
    r"""Classical fourth-order Runge–Kutta; 4 NFE/step, order 4."""

    order, evals_per_step = 4, 4
    tableau = (
        (0.0, 0.5, 0.5, 1.0),
        ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        (1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0),
    )


@register("rk4_38", "rk38", "three_eighths")
class RK4ThreeEighths(ExplicitRK):
    r"""Kutta's 3/8-rule fourth-order method (torchdiffeq's fixed-step ``rk4``); 4 NFE/step, order 4:

    .. math:: x_{n+1} = x_n + \tfrac h8(k_1 + 3k_2 + 3k_3 + k_4),\quad
              k_2 = b(t + \tfrac h3, x + \tfrac h3 k_1),\ k_3 = b(t + \tfrac{2h}3, x - \tfrac h3 k_1 + h k_2),\
              k_4 = b(t + h, x + h(k_1 - k_2 + k_3)).
    """

    order, evals_per_step = 4, 4
    tableau = (
        (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0),
        ((), (1.0 / 3.0,), (-1.0 / 3.0, 1.0), (1.0, -1.0, 1.0)),
        (1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0),
    )

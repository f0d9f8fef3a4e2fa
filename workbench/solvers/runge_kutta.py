r"""Explicit Runge–Kutta methods as Butcher-tableau data (one class; each method is its tableau).

.. math::
    k_i = b\big(t + c_i h,\ x + h\textstyle\sum_{j<i} a_{ij}k_j\big),\qquad x_{n+1} = x_n + h\textstyle\sum_i w_i k_i
"""
from __future__ import annotations

from typing import Sequence, Tuple

from .base import LinearSolver, OrderCheck, register
from .plan import PlanBuilder


class ExplicitRK(LinearSolver):
    """A fixed-step explicit RK method given by its tableau ``(c, a, w)``; ``evals_per_step = len(c)``.

    Its plan: stage ``s`` of step ``i`` evaluates :math:`y = x_i + h\sum_{m<s} a_{sm} k_m` at :math:`t_i + c_s h` and
    the step ends at :math:`x_i + h\sum_s w_s k_s` (the next step's first stage, :math:`c_0 = 0`, evaluates it).
    """

    tableau: Tuple[Sequence[float], Sequence[Sequence[float]], Sequence[float]]

    def build_plan(self, interpolant, grid):
        c, a, w = self.tableau
        b = PlanBuilder(grid, repr(self))
        for i in range(len(grid) - 1):
            t, h = grid[i], grid[i + 1] - grid[i]
            start, ks = b.current, []
            for s in range(len(c)):
                ks.append(b.evaluate(t + c[s] * h))
                weights = a[s + 1] if s + 1 < len(c) else w
                terms = [("x", start, 1.0)] + [("velocity", k, h * wk) for k, wk in zip(ks, weights)]
                b.advance(terms, step=i if s + 1 == len(c) else -1, order=self.order)
        return b.build()


@register("euler")
class Euler(ExplicitRK):
    r"""Forward Euler: :math:`x_{n+1} = x_n + h\,b(t_n, x_n)`; 1 NFE/step, order 1."""

    order, evals_per_step = 1, 1
    order_checks = (OrderCheck(),)
    tableau = ((0.0,), ((),), (1.0,))


@register("heun", "heun2")
class Heun(ExplicitRK):
    r"""Heun (explicit trapezoid): :math:`x_{n+1} = x_n + \tfrac h2(k_1 + k_2)`; 2 NFE/step, order 2."""

    order, evals_per_step = 2, 2
    order_checks = (OrderCheck(),)
    tableau = ((0.0, 1.0), ((), (1.0,)), (0.5, 0.5))


@register("midpoint")
class Midpoint(ExplicitRK):
    r"""Explicit midpoint: :math:`x_{n+1} = x_n + h\,b(t_n + \tfrac h2, x_n + \tfrac h2 k_1)`; 2 NFE/step, order 2."""

    order, evals_per_step = 2, 2
    order_checks = (OrderCheck(),)
    tableau = ((0.0, 0.5), ((), (0.5,)), (0.0, 1.0))


@register("heun3")
class Heun3(ExplicitRK):
    r"""Heun's third-order method (torchdiffeq's / flow_matching's fixed-step ``heun3``); 3 NFE/step, order 3:

    .. math:: k_2 = b(t + \tfrac h3, x + \tfrac h3 k_1),\ k_3 = b(t + \tfrac{2h}3, x + \tfrac{2h}3 k_2),\
              x_{n+1} = x_n + \tfrac h4(k_1 + 3k_3).
    """

    order, evals_per_step = 3, 3
    order_checks = (OrderCheck(),)
    tableau = ((0.0, 1.0 / 3.0, 2.0 / 3.0), ((), (1.0 / 3.0,), (0.0, 2.0 / 3.0)), (0.25, 0.0, 0.75))


@register("kutta3", "rk3")
class Kutta3(ExplicitRK):
    r"""Kutta's third-order method; 3 NFE/step, order 3:

    .. math:: k_2 = b(t + \tfrac h2, x + \tfrac h2 k_1),\ k_3 = b(t + h, x - h k_1 + 2h k_2),\
              x_{n+1} = x_n + \tfrac h6(k_1 + 4k_2 + k_3).
    """

    order, evals_per_step = 3, 3
    order_checks = (OrderCheck(),)
    tableau = ((0.0, 0.5, 1.0), ((), (0.5,), (-1.0, 2.0)), (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0))


@register("ssprk3", "shu_osher")
class SSPRK3(ExplicitRK):
    r"""Shu–Osher strong-stability-preserving RK3; 3 NFE/step, order 3:

    .. math:: k_2 = b(t + h, x + h k_1),\ k_3 = b(t + \tfrac h2, x + \tfrac h4(k_1 + k_2)),\
              x_{n+1} = x_n + \tfrac h6(k_1 + k_2 + 4k_3).
    """

    order, evals_per_step = 3, 3
    order_checks = (OrderCheck(),)
    tableau = ((0.0, 1.0, 0.5), ((), (1.0,), (0.25, 0.25)), (1.0 / 6.0, 1.0 / 6.0, 2.0 / 3.0))


@register("rk4")
class RK4(ExplicitRK):
    r"""Classical fourth-order Runge–Kutta; 4 NFE/step, order 4."""

    order, evals_per_step = 4, 4
    order_checks = (OrderCheck(steps=(32, 64, 128)),)
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
    order_checks = (OrderCheck(steps=(32, 64, 128)),)
    tableau = (
        (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0),
        ((), (1.0 / 3.0,), (-1.0 / 3.0, 1.0), (1.0, -1.0, 1.0)),
        (1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0),
    )

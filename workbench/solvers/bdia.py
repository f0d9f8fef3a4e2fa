r"""BDIA: bi-directional integration approximation, an exactly invertible DDIM sampler.

Zhang, Lewis & Kleijn (2024), "Exact Diffusion Inversion via Bi-directional Integration Approximation" (ECCV).
With :math:`\Delta(t\to s\mid x)` the DDIM (first-order exponential-integrator) increment from the model's
prediction at :math:`(x, t)`,

.. math::
    \Delta(t\to s\mid x) = a_s \hat D + \sigma_s \hat\varepsilon - x,\qquad
    \hat D = E[x_1\mid x_t = x],\ \hat\varepsilon = (x - a_t\hat D)/\sigma_t,

BDIA steps with the two latest states. In the paper's indexing (``i`` counts down towards the data)

.. math::
    z_{i-1} = z_{i+1} - (1-\gamma)(z_{i+1} - z_i) - \gamma\,\Delta(t_i\to t_{i+1}\mid z_i) + \Delta(t_i\to t_{i-1}\mid z_i),

i.e. in the workbench's order (``k`` counts up towards the data, :math:`x_{k-1}` the older state)

.. math::
    x_{k+1} = \gamma x_{k-1} + (1-\gamma)x_k - \gamma\,\Delta(t_k\to t_{k-1}\mid x_k) + \Delta(t_k\to t_{k+1}\mid x_k).

The update is affine in :math:`x_{k-1}` with the model evaluated only at :math:`x_k`, so it is solved for the older
state in closed form — the inverse costs one model call per step and is exact up to round-off (``γ > 0``). The first
step is plain DDIM. Order: with ``γ = 1`` the two :math:`O(h^2)` DDIM errors cancel (a leapfrog in exponential form,
order 2); for ``γ < 1`` the :math:`(1-\gamma)` DDIM part leaves order 1. One model call per step.
"""
from __future__ import annotations

from typing import Tuple

import torch

from ..errors import ConfigError
from ..models.field import Field, Prediction
from .base import FixedStepSolver, OrderCheck, register


def ddim_delta(pred: Prediction, t: float, s: float) -> torch.Tensor:
    r""":math:`\Delta(t\to s\mid x) = a_s\hat D + \sigma_s\hat\varepsilon - x` from one prediction at ``(x, t)``."""
    c = pred.interpolant.coefficients(float(s))
    return c.signal * pred.data + c.sigma * pred.noise - pred.x


@register("bdia", "bdia_ddim")
class BDIA(FixedStepSolver):
    r"""BDIA-DDIM (see the module docstring); ``gamma`` ∈ (0, 1] weights the backward DDIM term.

    Args:
        gamma: the paper's γ (0.5 in its image-editing experiments); ``gamma = 1`` gives order 2, else order 1.
    """

    evals_per_step = 1
    #: The inverse (``invert``) reproduces the forward run up to round-off.
    exact_inverse = True
    order_checks = (OrderCheck(), OrderCheck({"gamma": 0.5}))

    def __init__(self, gamma: float = 1.0):
        try:
            g = float(gamma)
        except (TypeError, ValueError):
            raise ConfigError("gamma", f"must be a number in (0, 1], got {gamma!r}") from None
        if not 0.0 < g <= 1.0:
            raise ConfigError("gamma", f"must be in (0, 1] (γ = 0 is plain DDIM, which has no exact inverse), got {gamma!r}")
        self.gamma = g
        self.order = 2 if g == 1.0 else 1

    def bidirectional(self, pred: Prediction, x_prev: torch.Tensor, t_prev: float, t: float, t_next: float) -> torch.Tensor:
        """One BDIA update :math:`x_{k+1}` from :math:`(x_{k-1}, x_k)` and the prediction at :math:`x_k`."""
        g = self.gamma
        return g * x_prev + (1.0 - g) * pred.x - g * ddim_delta(pred, t, t_prev) + ddim_delta(pred, t, t_next)

    def step(self, field, x, t, t_next, index, state, generator):
        pred = field.predict(x, t)
        if index == 0:
            x_next, order = x + ddim_delta(pred, t, t_next), 1
        else:
            x_next, order = self.bidirectional(pred, state["prev"], state["t_prev"], t, t_next), self.order
        state["prev"], state["t_prev"] = x, t
        return x_next, pred, order

    # --- the exact pair map and its inverse -------------------------------------------------------
    def forward_pair(self, field: Field, x0: torch.Tensor, x1: torch.Tensor, grid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the bidirectional recursion from the pair ``(x0, x1)`` at ``(grid[0], grid[1])`` to the end:
        returns ``(x_{N-1}, x_N)``; ``len(grid) - 2`` model calls."""
        ts = _check_grid(grid)
        prev, cur = x0, x1
        for k in range(1, len(ts) - 1):
            pred = field.predict(cur, ts[k])
            prev, cur = cur, self.bidirectional(pred, prev, ts[k - 1], ts[k], ts[k + 1])
        return prev, cur

    def backward_pair(self, field: Field, x_prev: torch.Tensor, x_last: torch.Tensor,
                      grid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Exact inverse of :meth:`forward_pair`: from ``(x_{N-1}, x_N)`` back to ``(x_0, x_1)`` by

        .. math:: x_{k-1} = \big(x_{k+1} - (1-\gamma)x_k + \gamma\Delta(t_k\to t_{k-1}\mid x_k) - \Delta(t_k\to t_{k+1}\mid x_k)\big)/\gamma.
        """
        ts = _check_grid(grid)
        g = self.gamma
        cur, nxt = x_prev, x_last
        for k in range(len(ts) - 2, 0, -1):
            pred = field.predict(cur, ts[k])
            older = (nxt - (1.0 - g) * cur + g * ddim_delta(pred, ts[k], ts[k - 1]) - ddim_delta(pred, ts[k], ts[k + 1])) / g
            cur, nxt = older, cur
        return cur, nxt


def _check_grid(grid: torch.Tensor) -> list:
    ts = [float(v) for v in grid]
    if len(ts) < 3:
        raise ConfigError("nfe", f"BDIA's pair recursion needs a grid of at least 3 points, got {len(ts)}")
    return ts


@register("ddim")
class DDIM(FixedStepSolver):
    r"""DDIM (Song, Meng & Ermon 2021), the first-order exponential integrator in log-SNR, on any grid direction:

    .. math:: x_{k+1} = x_k + \Delta(t_k\to t_{k+1}\mid x_k) = a_{k+1}\hat D + \sigma_{k+1}\hat\varepsilon.

    Run on a reversed grid it is the usual (approximate, :math:`O(h)` round trip) DDIM inversion. Order 1, 1 NFE/step.
    """

    order, evals_per_step = 1, 1
    order_checks = (OrderCheck(),)

    def step(self, field, x, t, t_next, index, state, generator):
        pred = field.predict(x, t)
        return x + ddim_delta(pred, t, t_next), pred, 1

r"""Gradients through a sampler: backprop through the run, gradient checkpointing, and the adjoint ODE.

Pan, Liew, Tan, Yan, Zhou (2023), "Adjoint Sensitivity Method for Gradient Backpropagation of Diffusion
Probabilistic Models" (AdjointDPM). For the probability-flow ODE :math:`\dot x = b_\theta(t, x)` from ``t_start`` to
``t_end`` and a loss :math:`L(x(t_{end}))`, the adjoint :math:`a(t) = \partial L/\partial x(t)` and the parameter
gradient :math:`g(t)` solve, backward from ``t_end``,

.. math:: \dot x = b,\qquad \dot a = -a^\top\frac{\partial b}{\partial x},\qquad \dot g = -a^\top\frac{\partial b}{\partial\theta},
          \qquad a(t_{end}) = \nabla L,\ g(t_{end}) = 0,

and :math:`\partial L/\partial x(t_{start}) = a(t_{start})`, :math:`\partial L/\partial\theta = g(t_{start})`. The state
is re-integrated backward with the adjoint (memory independent of the step count: one vector–Jacobian product alive
at a time), here with classical RK4 in t on the same grid reversed (4 model calls + 4 VJPs per step).

Three methods, one entry point :func:`sample_with_grad`:

* ``"backprop"``: autograd through every step of the solver (memory grows with the steps; the exact gradient of the
  *discrete* map);
* ``"checkpoint"``: the same gradient, keeping only each step's input state: the backward pass recomputes one step
  at a time and takes its vector–Jacobian product (memory: the states plus one step's activations; single-step solvers);
* ``"adjoint"``: the adjoint ODE above (approximates the gradient of the *exact* flow map to RK4's order 4);
* ``"adjoint_ei"``: the same adjoint ODE in exponential-integrator form on the log-SNR variables, solved backward
  at order ``order`` (1–4; :mod:`workbench.samplers.adjoint_ei`, AdjointDPM's formulation).

:func:`sample` is the front door: ``sample(solver, field, x, nfe, grad=Grad(loss, params, method))``.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch

from ..errors import ConfigError
from ..models.field import Field
from ..schedules.base import Schedule
from ..solvers import SOLVERS, Solver
from ..solvers.bdia import DDIM
from ..solvers.runge_kutta import ExplicitRK
from .adjoint_ei import adjoint_backward_ei, check_ei_order
from .counting import CountedField

METHODS = ("backprop", "checkpoint", "adjoint", "adjoint_ei")


@dataclass
class GradResult:
    """Output of :func:`sample_with_grad`.

    Attributes:
        x: final state (detached).
        loss: the loss value.
        grad_x: :math:`\\partial L/\\partial x_{start}`.
        grad_params: :math:`\\partial L/\\partial\\theta` for each parameter passed (zeros when unused).
        nfe: model calls of the forward run plus the backward pass (adjoint: its 4 calls per step).
        method: ``backprop``, ``checkpoint`` or ``adjoint``.
    """

    x: torch.Tensor
    loss: float
    grad_x: torch.Tensor
    grad_params: Tuple[torch.Tensor, ...]
    nfe: int
    method: str
    info: Dict[str, float] = dc_field(default_factory=dict)


def _zeros_for_none(grads, params):
    return tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, params))


def sample_with_grad(solver: Union[str, Solver], field: Field, x: torch.Tensor, nfe: int,
                     loss: Callable[[torch.Tensor], torch.Tensor], params: Sequence[torch.Tensor] = (),
                     method: str = "backprop", schedule: Union[str, Schedule] = "uniform", t_start: float = 0.0,
                     t_end: float = 1.0, grid: Optional[torch.Tensor] = None, order: int = 2) -> GradResult:
    """Sample from ``x`` with ``solver`` at ``nfe`` and return the gradient of ``loss(x_end)`` (a scalar) with respect
    to ``x`` and to ``params`` (tensors the model uses, ``requires_grad=True``), by ``method`` (see the module).
    ``order`` is the order of the ``adjoint_ei`` backward solve (1–4; ignored by the other methods)."""
    s = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if method not in METHODS:
        raise ConfigError("method", f"got {method!r}; allowed values are: {', '.join(METHODS)}")
    if method == "adjoint_ei":
        check_ei_order(order)
    if s.stochastic or s.adaptive:
        raise ConfigError("solver", f"{s.name!r} is {'stochastic' if s.stochastic else 'adaptive'}; gradients through a "
                                    f"sampler need a deterministic fixed-step solver (euler, heun, rk4, ddim, bdia, ...)")
    params = tuple(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ConfigError("params", f"entry {i} must be a tensor with requires_grad=True")
    if grid is None:
        grid = s.make_grid(field, nfe, schedule, t_start, t_end)
    x_in = x.detach().requires_grad_(True)
    if method == "backprop":
        with torch.enable_grad():
            res = s.sample(field, x_in, nfe, grid=grid)
            L = loss(res.x)
            grads = torch.autograd.grad(L, (x_in, *params), allow_unused=True)
        return GradResult(res.x.detach(), float(L.detach()), grads[0], _zeros_for_none(grads[1:], params), res.nfe, method)
    if method == "checkpoint":
        if not isinstance(s, (ExplicitRK, DDIM)):
            raise ConfigError("method", f"'checkpoint' recomputes one step at a time and needs a single-step solver "
                                        f"(euler, heun, midpoint, rk4, rk4_38, ddim); got {s.name!r}")
        ts = [float(v) for v in grid]
        calls = [0]

        def one_step(z: torch.Tensor, i: int) -> torch.Tensor:
            """Step ``i`` alone: a single-step solver's run on the one interval ``[t_i, t_{i+1}]``."""
            r = s.sample(field, z, s.evals_per_step, grid=grid[i:i + 2])
            calls[0] += r.nfe
            return r.x

        inputs = [x.detach()]
        with torch.no_grad():  # forward: keep only each step's input state
            for i in range(len(ts) - 1):
                inputs.append(one_step(inputs[-1], i))
        with torch.enable_grad():
            xe = inputs[-1].detach().requires_grad_(True)
            L = loss(xe)
            (a,) = torch.autograd.grad(L, xe)
            gp = [torch.zeros_like(p) for p in params]
            for i in range(len(ts) - 2, -1, -1):  # backward: recompute step i, one vector–Jacobian product
                xi = inputs[i].detach().requires_grad_(True)
                out = one_step(xi, i)
                vj = torch.autograd.grad(out, (xi, *params), a, allow_unused=True)
                a = vj[0]
                gp = [g if v is None else g + v for g, v in zip(gp, vj[1:])]
        return GradResult(inputs[-1], float(L.detach()), a, tuple(gp), calls[0], method)
    # adjoint: the forward run keeps no graph
    with torch.no_grad():
        res = s.sample(field, x.detach(), nfe, grid=grid)
    forward_nfe = res.nfe
    with torch.enable_grad():
        xe = res.x.detach().requires_grad_(True)
        L = loss(xe)
        (a,) = torch.autograd.grad(L, xe)
    run = CountedField(field)
    if method == "adjoint_ei":
        gx, ga, gp = adjoint_backward_ei(run, res.x.detach(), a, params, grid, order)
    else:
        gx, ga, gp = adjoint_backward(run, res.x.detach(), a, params, torch.flip(grid, [0]))
    return GradResult(res.x.detach(), float(L.detach()), ga, gp, forward_nfe + run.nfe, method, {"x_start_error": float((gx - x).norm())})


@dataclass(frozen=True)
class Grad:
    """A gradient request for :func:`sample`: ``loss(x_end)`` (scalar), the parameters to differentiate
    (``requires_grad=True``), the ``method`` (one of :data:`METHODS`) and the ``adjoint_ei`` ``order``."""

    loss: Callable[[torch.Tensor], torch.Tensor]
    params: Tuple[torch.Tensor, ...] = ()
    method: str = "adjoint_ei"
    order: int = 2


def sample(solver: Union[str, Solver], field: Field, x: torch.Tensor, nfe: int, schedule: Union[str, Schedule] = "uniform",
           t_start: float = 0.0, t_end: float = 1.0, grid: Optional[torch.Tensor] = None,
           grad: Optional[Grad] = None, **kwargs):
    """Sampling with an optional gradient: without ``grad`` this is ``solver.sample(field, x, nfe, ...)`` (a
    :class:`~workbench.solvers.base.SampleResult`); with ``grad=Grad(loss, params, method, order)`` it delegates to
    :func:`sample_with_grad` and returns its :class:`GradResult` (final state, loss, ∂L/∂x_start, ∂L/∂θ, NFE)."""
    s = SOLVERS.get(solver) if isinstance(solver, str) else solver
    if grad is None:
        return s.sample(field, x, nfe, schedule=schedule, t_start=t_start, t_end=t_end, grid=grid, **kwargs)
    if not isinstance(grad, Grad):
        raise ConfigError("grad", f"expected a workbench.samplers.Grad(loss, params, method, order); got {type(grad).__name__}")
    if kwargs:
        raise ConfigError("grad", f"options {sorted(kwargs)} are not available with a gradient request")
    return sample_with_grad(s, field, x, nfe, grad.loss, grad.params, grad.method, schedule, t_start, t_end, grid,
                            grad.order)


def adjoint_backward(field: Field, x_end: torch.Tensor, a_end: torch.Tensor, params: Tuple[torch.Tensor, ...],
                     grid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, Tuple[torch.Tensor, ...]]:
    r"""Integrate the augmented adjoint system :math:`(x, a, g)` with RK4 along ``grid`` (decreasing, ``t_end → t_start``).

    Returns the reconstructed start state, :math:`a(t_{start})` and :math:`g(t_{start})` (4 model calls per step).
    """

    def rhs(t: float, x: torch.Tensor, a: torch.Tensor):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            b = field.velocity(xr, t)
            vj = torch.autograd.grad(b, (xr, *params), a, allow_unused=True)
        return b.detach(), -vj[0], tuple(torch.zeros_like(p) if v is None else -v for v, p in zip(vj[1:], params))

    ts = [float(v) for v in grid]
    x, a = x_end, a_end
    g = tuple(torch.zeros_like(p) for p in params)
    for i in range(len(ts) - 1):
        t, h = ts[i], ts[i + 1] - ts[i]
        k1 = rhs(t, x, a)
        k2 = rhs(t + h / 2, x + h / 2 * k1[0], a + h / 2 * k1[1])
        k3 = rhs(t + h / 2, x + h / 2 * k2[0], a + h / 2 * k2[1])
        k4 = rhs(t + h, x + h * k3[0], a + h * k3[1])
        x = x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        a = a + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        g = tuple(gj + h / 6 * (u1 + 2 * u2 + 2 * u3 + u4) for gj, u1, u2, u3, u4 in zip(g, k1[2], k2[2], k3[2], k4[2]))
    return x, a, g

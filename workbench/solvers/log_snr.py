r"""Shared machinery of the log-SNR (exponential-integrator) samplers: DPM-Solver(++), UniPC, DEIS, DPM-Solver-v3.

With :math:`x_t = a(t)x_1 + \sigma(t)\xi` and :math:`\lambda = \log(a/\sigma)` (increasing in t), the
probability-flow ODE has two exact variation-of-constants forms (Lu et al. 2022, eqs. 3.4 / Lu et al. 2022b, eq. 8):

.. math::
    x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\lambda_s}^{\lambda_t} e^{\lambda} D(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(data prediction } D = E[x_1|x]\text{)},

.. math::
    x_t = \frac{a_t}{a_s}x_s - a_t\int_{\lambda_s}^{\lambda_t} e^{-\lambda} \hat\varepsilon(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(noise prediction } \hat\varepsilon = E[\xi|x]\text{)}.

Every fixed-step sampler here is *linear* in the state and in the stored model outputs, so a run turns the time
grid into a table of python-float coefficients **once** (``plan``) and each step is a handful of fused
``x * c + Σ c_j m_j`` tensor operations: no host synchronisation, no per-step ``log``/``exp`` on tensors.

Endpoints: where :math:`\sigma = 0` (λ = +∞, the data end of linear/VP paths) the first-order data step is
exact algebra :math:`x_t = a_t D`, and where :math:`a = 0` (λ = −∞, the noise end of the linear path) it is
:math:`x_t = \tfrac{\sigma_t}{\sigma_s}x_s + a_t D`. Such steps always use order 1, and history points at
λ = −∞ are never used for extrapolation, so no ``log(0)`` or ``inf - inf`` ever reaches a tensor.
"""
from __future__ import annotations

from collections import OrderedDict

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..models.field import Field, Prediction
from .base import FixedStepSolver, Step

#: Kinds of model output a log-SNR sampler extrapolates.
KINDS = ("data", "noise")

# Gauss–Legendre nodes on [0, 1] for the exponential-integrator weights (exact to ~1e-16 for h ≲ 30).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(40)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def check_kind(kind: str, field: str = "predict") -> str:
    """Validate the extrapolated quantity: ``"data"`` (DPM-Solver++ style) or ``"noise"`` (DPM-Solver/DEIS style)."""
    if kind not in KINDS:
        raise ConfigError(field, f"got {kind!r}; allowed values are: {', '.join(KINDS)}")
    return kind


def check_order(order: object, allowed: Sequence[int], field: str = "order") -> int:
    """Validate an integer order from ``allowed``."""
    if isinstance(order, bool) or not isinstance(order, int) or order not in allowed:
        raise ConfigError(field, f"got {order!r}; allowed values are: {', '.join(map(str, allowed))}")
    return order


@dataclass(frozen=True)
class LogSNRTable:
    """The grid in log-SNR coordinates (python floats; ``lam`` may hold ±inf at the ends).

    Attributes:
        t: grid times. lam: :math:`\\lambda(t_i)`. a: signal :math:`a(t_i)`. sigma: :math:`\\sigma(t_i)`.
    """

    t: List[float]
    lam: List[float]
    a: List[float]
    sigma: List[float]

    @staticmethod
    def build(interpolant: Interpolant, ts: Sequence[float]) -> "LogSNRTable":
        """Evaluate the coefficients on the grid once (float64)."""
        a, s, lam = [], [], []
        for t in ts:
            c = interpolant.coefficients(float(t))
            ai, si = float(c.signal), float(c.sigma)
            if ai < 0 or si < 0 or (ai == 0 and si == 0):
                raise ConfigError("interpolant", f"signal/noise coefficients are degenerate at t={t:.6g}")
            a.append(ai)
            s.append(si)
            lam.append(math.inf if si == 0 else (-math.inf if ai == 0 else math.log(ai) - math.log(si)))
        for i in range(len(lam) - 1):
            if not lam[i + 1] > lam[i]:
                raise ConfigError("grid", f"log-SNR must increase along the grid; λ({ts[i]:.6g})={lam[i]:.6g} "
                                          f">= λ({ts[i + 1]:.6g})={lam[i + 1]:.6g}")
        return LogSNRTable(list(map(float, ts)), lam, a, s)

    def finite(self, i: int) -> bool:
        """True when λ at grid point ``i`` is finite."""
        return math.isfinite(self.lam[i])


def ddim_coefficients(tab: LogSNRTable, i: int, j: int) -> Tuple[float, float]:
    r"""First-order (DDIM) step ``i → j`` in data form: :math:`x_j = c_x x_i + c_D D_i`,
    :math:`c_x = \sigma_j/\sigma_i`, :math:`c_D = a_j - c_x a_i = a_j(1 - e^{-h})` (finite at both ends)."""
    cx = tab.sigma[j] / tab.sigma[i]
    return cx, tab.a[j] - cx * tab.a[i]


def exp_integrator_weights(h: float, nodes: Sequence[float], kind: str) -> List[float]:
    r"""Weights :math:`w_j` of :math:`\int_0^h K(u)\,P(u)\,du = \sum_j w_j m_j` where :math:`P` is the Lagrange
    polynomial through ``(nodes[j], m_j)`` (offsets in λ from the step start) and the kernel is
    :math:`K(u) = e^{-(h-u)}` for data prediction, :math:`e^{h-u}` for noise prediction (see module docstring,
    after pulling out :math:`a_t` resp. :math:`\sigma_t`). Evaluated by 40-point Gauss–Legendre quadrature."""
    u = h * _GL_X
    kern = np.exp(-(h - u)) if kind == "data" else np.exp(h - u)
    out = []
    for j, uj in enumerate(nodes):
        lj = np.ones_like(u)
        for k, uk in enumerate(nodes):
            if k != j:
                lj = lj * (u - uk) / (uj - uk)
        out.append(float(h * np.sum(_GL_W * kern * lj)))
    return out


def model_output(pred: Prediction, kind: str, x: torch.Tensor, a: float, sigma: float) -> torch.Tensor:
    r"""The data (``D``) or noise (``ε̂``) prediction with scalar fast paths:
    :math:`D = x/a - (\sigma/a)\hat\varepsilon`, :math:`\hat\varepsilon = x/\sigma - (a/\sigma) D` (two fused ops);
    anything else goes through the interpolant's conversions. The result is cached on ``pred``."""
    want = "x1" if kind == "data" else "noise"
    if pred.kind == want:
        return pred.value  # type: ignore[return-value]
    cache = pred._cache  # noqa: SLF001  (the Prediction's own conversion cache)
    if want in cache:
        return cache[want]
    if kind == "data" and pred.kind == "noise" and a > 0:
        out = torch.add(x * (1.0 / a), pred.value, alpha=-sigma / a)  # type: ignore[arg-type]
    elif kind == "noise" and pred.kind == "x1" and sigma > 0:
        out = torch.add(x * (1.0 / sigma), pred.value, alpha=-a / sigma)  # type: ignore[arg-type]
    else:
        out = pred.as_kind(want)
    cache[want] = out
    return out


def combine(x: Optional[torch.Tensor], cx: float, terms: Sequence[Tuple[float, torch.Tensor]]) -> torch.Tensor:
    r""":math:`c_x x + \sum_j c_j m_j` with one fused kernel per term (zero coefficients skipped)."""
    out: Optional[torch.Tensor] = None
    if x is not None and cx != 0.0:
        out = x * cx
    for c, m in terms:
        if c == 0.0:
            continue
        out = m * c if out is None else out.add_(m, alpha=c)
    if out is None:
        ref = x if x is not None else terms[0][1]
        out = torch.zeros_like(ref)
    return out


class LogSNRSolver(FixedStepSolver):
    """Base of the log-SNR samplers: builds the :class:`LogSNRTable` and a per-step coefficient plan once per run.

    Subclasses implement :meth:`plan` (python-float coefficients for every step, from the table only) and
    :meth:`step`, which reads ``state["plan"][index]``.
    """

    needs_gaussian = True

    def iterate(self, field: Field, x: torch.Tensor, grid: torch.Tensor,
                generator: Optional[torch.Generator] = None):
        ts = [float(v) for v in grid.tolist()]
        tab, plan = self.table_and_plan(field.interpolant, ts)
        state: Dict[str, Any] = {"n_steps": len(ts) - 1, "table": tab, "hist": []}
        state["plan"] = plan
        for i in range(len(ts) - 1):
            x, pred, order = self.step(field, x, ts[i], ts[i + 1], i, state, generator)
            yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, order)

    def plan(self, tab: LogSNRTable) -> List[Any]:
        """Per-step coefficients computed from the grid alone (override)."""
        return []

    def table_and_plan(self, interpolant, ts: List[float]) -> Tuple["LogSNRTable", Any]:
        """The λ/a/σ table and the coefficient plan of a grid, memoised per (solver, parameters, interpolant, grid).

        Both are pure functions of those inputs and read-only during a run, so a sweep or a dashboard that reruns
        the same grid pays for them once (UniPC's plan solves a small linear system per step).
        """
        # The workbench's own interpolants are fully described by their parameters (repr); anything else is
        # keyed by identity, in case it carries state its repr does not show.
        ident = repr(interpolant) if type(interpolant).__module__.startswith("workbench.") else id(interpolant)
        key = (type(self).__module__, type(self).__name__, repr(sorted(self.params().items())),
               type(interpolant).__name__, ident, tuple(ts))
        hit = _PLAN_CACHE.get(key)
        if hit is None:
            tab = LogSNRTable.build(interpolant, ts)
            hit = (tab, self.plan(tab))
            _PLAN_CACHE[key] = hit
            while len(_PLAN_CACHE) > _PLAN_CACHE_SIZE:
                _PLAN_CACHE.popitem(last=False)
        else:
            _PLAN_CACHE.move_to_end(key)
        return hit


_PLAN_CACHE: "OrderedDict[tuple, Tuple[LogSNRTable, Any]]" = OrderedDict()
_PLAN_CACHE_SIZE = 128


def multistep_orders(tab: LogSNRTable, order: int, lower_order_final: bool, final_policy: str = "dpm") -> List[int]:
    """The order used at each step of a multistep method.

    Rules (as in DPM-Solver++ / diffusers): warm-up with lower orders while history is short; history
    points at λ = −∞ are not usable; a step into λ = +∞ or out of λ = −∞ has order 1. With
    ``lower_order_final``: ``final_policy="dpm"`` uses order ≤ 1 on the last and ≤ 2 on the second-to-last
    step when the run has fewer than 15 steps (DPM-Solver++); ``"unipc"`` caps the order by the number of
    steps left (UniPC).
    """
    n = len(tab.t) - 1
    orders = []
    usable = 0  # consecutive finite-λ history points ending at the current one
    for i in range(n):
        usable = usable + 1 if tab.finite(i) else 0
        k = min(order, max(usable, 1))
        if not (tab.finite(i) and tab.finite(i + 1)):
            k = 1
        if lower_order_final:
            if final_policy == "unipc":
                k = min(k, n - i)
            elif n < 15:
                if i == n - 1:
                    k = 1
                elif i == n - 2:
                    k = min(k, 2)
        orders.append(k)
    return orders

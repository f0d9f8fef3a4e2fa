r"""The adjoint ODE in exponential-integrator form on log-SNR paths (AdjointDPM, Pan et al. 2023, §3.2).

With :math:`x_t = a(t)x_1 + \sigma(t)\xi` and :math:`\lambda = \log(a/\sigma)`, the probability-flow ODE has a linear
part that the variation of constants integrates exactly. Pulling it out gives two *plain* quadrature forms
(the variables of :mod:`workbench.solvers.log_snr`):

* data form, :math:`u = e^{\lambda} = a/\sigma`, :math:`y = x/\sigma`: :math:`\; dy/du = D(x, t)`;
* noise form, :math:`\rho = e^{-\lambda} = \sigma/a`, :math:`w = x/a`: :math:`\; dw/d\rho = \hat\varepsilon(x, t)`.

The adjoint of the transformed state is the transformed adjoint, :math:`\bar a = \partial L/\partial y = \sigma\,a_x`
resp. :math:`\hat a = \partial L/\partial w = a\,a_x` (:math:`a_x = \partial L/\partial x`), and the augmented system
keeps the same exponential-integrator structure (AdjointDPM eq. 9, here also in the data form):

.. math::
    \frac{d}{du}\begin{pmatrix} y\\ \bar a\\ g\end{pmatrix}
      = \begin{pmatrix} D \\ -\sigma\,\bar a^\top \partial_x D \\ -\bar a^\top \partial_\theta D\end{pmatrix},\qquad
    \frac{d}{d\rho}\begin{pmatrix} w\\ \hat a\\ g\end{pmatrix}
      = \begin{pmatrix} \hat\varepsilon \\ -a\,\hat a^\top \partial_x \hat\varepsilon \\ -\hat a^\top \partial_\theta\hat\varepsilon\end{pmatrix},

solved *backward* (from the data end to the start) with :math:`g(t_{end}) = 0`, :math:`a_x(t_{end}) = \nabla L`. Each
step of the grid is taken in the variable that stays finite on it (``u`` on the noise half and out of :math:`a = 0`,
``ρ`` on the data half and out of :math:`\sigma = 0`; :func:`workbench.solvers.log_snr.step_region`), by an explicit
Runge–Kutta rule of order ``order`` ∈ {1, 2, 3, 4} on the quadrature; ``order = 1`` is the DDIM / DPM-Solver-1 step
applied to the augmented state, e.g. :math:`x_j = (\sigma_j/\sigma_i)x_i + \sigma_j(u_j-u_i)D_i`,
:math:`a_{x,j} = (\sigma_i/\sigma_j)a_{x,i} - (u_j - u_i)(\sigma_i^2/\sigma_j)\,a_{x,i}^\top\partial_x D_i`.
The global error of the gradient of the exact flow map is :math:`O(h^{order})`; memory is one vector–Jacobian
product at a time (flat in the number of steps).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch

from .. import validation
from ..errors import ConfigError
from ..solvers.log_snr import LogSNRTable, step_region

#: Explicit Runge–Kutta tableaux ``(c, A, b)`` used on the quadrature variable, by order.
TABLEAUX = {
    1: ((0.0,), ((),), (1.0,)),
    2: ((0.0, 0.5), ((), (0.5,)), (0.0, 1.0)),
    3: ((0.0, 0.5, 1.0), ((), (0.5,), (-1.0, 2.0)), (1 / 6, 2 / 3, 1 / 6)),
    4: ((0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}
ORDERS = tuple(TABLEAUX)


def check_ei_order(order: object) -> int:
    """Validate the order of the exponential-integrator adjoint (1–4)."""
    return validation.one_of("order", order, ORDERS)


def _time_of(interpolant, region: str, v: float, ends: Tuple[Tuple[float, float], Tuple[float, float]]) -> float:
    """The time at quadrature variable ``v`` (``u`` or ``ρ``); the step's two ends are returned exactly."""
    for vv, tt in ends:
        if v == vv:
            return tt
    lam = math.log(v) if region == "data" else -math.log(v)
    return float(interpolant.t_from_log_snr(torch.tensor([lam], dtype=torch.float64))[0])


def adjoint_backward_ei(field, x_end: torch.Tensor, a_end: torch.Tensor, params: Tuple[torch.Tensor, ...],
                        grid: torch.Tensor, order: int = 2) -> Tuple[torch.Tensor, torch.Tensor, Tuple[torch.Tensor, ...]]:
    r"""Integrate the augmented adjoint system backward along ``grid`` (increasing, ``t_start → t_end``; the
    integration runs from ``t_end`` to ``t_start``) in exponential-integrator form (module docstring).

    Returns the reconstructed start state, :math:`a_x(t_{start}) = \partial L/\partial x_{start}` and
    :math:`g(t_{start}) = \partial L/\partial\theta` (``order`` model calls and vector–Jacobian products per step).
    """
    order = check_ei_order(order)
    I = field.interpolant
    ts = [float(v) for v in grid]
    if any(ts[i + 1] <= ts[i] for i in range(len(ts) - 1)):
        raise ConfigError("grid", "the exponential-integrator adjoint needs an increasing grid (t_start < t_end)")
    tab = LogSNRTable.build(I, ts)
    if len(ts) == 2 and tab.a[0] == 0.0 and tab.sigma[1] == 0.0:
        raise ConfigError("nfe", "a single step from a = 0 to σ = 0 has no finite exponential-integrator variable; "
                                 "use at least 2 steps")
    c, A, b = TABLEAUX[order]

    def rhs(region: str, t: float, z: torch.Tensor, abar: torch.Tensor):
        co = I.coefficients(t)
        sc = float(co.sigma) if region == "data" else float(co.signal)  # x = sc * z
        with torch.enable_grad():
            xr = (z * sc).detach().requires_grad_(True)
            p = field.predict(xr, t)
            m = p.data if region == "data" else p.noise
            vj = torch.autograd.grad(m, (xr, *params), abar, allow_unused=True)
        return (m.detach(), -sc * vj[0],
                tuple(torch.zeros_like(q) if v is None else -v for v, q in zip(vj[1:], params)))

    x, ax = x_end, a_end
    g = [torch.zeros_like(p) for p in params]
    for i in range(len(ts) - 2, -1, -1):  # backward over step i: t_{i+1} → t_i
        region = step_region(tab, i)
        sc1, sc0 = (tab.sigma[i + 1], tab.sigma[i]) if region == "data" else (tab.a[i + 1], tab.a[i])
        v1 = (tab.a[i + 1] / tab.sigma[i + 1]) if region == "data" else (tab.sigma[i + 1] / tab.a[i + 1])
        v0 = (tab.a[i] / tab.sigma[i]) if region == "data" else (tab.sigma[i] / tab.a[i])
        ends = ((v1, ts[i + 1]), (v0, ts[i]))
        h = v0 - v1
        z, abar = x / sc1, ax * sc1
        ks: List[Tuple[torch.Tensor, torch.Tensor, Tuple[torch.Tensor, ...]]] = []
        for s in range(len(c)):
            zs, as_ = z, abar
            for j, aij in enumerate(A[s]):
                if aij != 0.0:
                    zs = zs + (h * aij) * ks[j][0]
                    as_ = as_ + (h * aij) * ks[j][1]
            vs = v1 + c[s] * h
            ks.append(rhs(region, _time_of(I, region, vs, ends), zs, as_))
        for s, bs in enumerate(b):
            if bs != 0.0:
                z = z + (h * bs) * ks[s][0]
                abar = abar + (h * bs) * ks[s][1]
                g = [gj + (h * bs) * u for gj, u in zip(g, ks[s][2])]
        x, ax = z * sc0, abar / sc0
    return x, ax, tuple(g)

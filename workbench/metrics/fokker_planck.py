r"""The ODE–SDE gap of a score model through the Fokker–Planck equation (Deveney, Stanczuk, Kreusser, Budd &
Schönlieb 2023, "Closing the ODE-SDE gap in score-based diffusion models through the Fokker-Planck equation").

For a Gaussian-base interpolant :math:`x_t = a x_1 + \sigma\xi` the probability-flow velocity written with the score
alone is :math:`b = k\,x + m\,s` with :math:`k = \dot a/a`, :math:`m = \dot a\sigma^2/a - \sigma\dot\sigma`. The
continuity equation :math:`\partial_t\log\rho = -\nabla\cdot b - b\cdot\nabla\log\rho`, differentiated in x, is a
closed equation for the true score (the *score Fokker–Planck equation*):

.. math:: \partial_t s = -\nabla_x\big(m\,\nabla\cdot s + k\,x\cdot s + m\,\|s\|^2\big).

Its residual for a model :math:`s_\theta`,

.. math:: R_\theta(x, t) = \partial_t s_\theta + \nabla_x\big(m\,\nabla\cdot s_\theta + k\,x\cdot s_\theta + m\|s_\theta\|^2\big),

vanishes for the exact score; when it does not, the probability-flow ODE and the SDEs
:math:`dx = (b + \varepsilon s)dt + \sqrt{2\varepsilon}dW` built from :math:`s_\theta` no longer share their marginals
(the ODE–SDE gap). :func:`fokker_planck_residual` computes :math:`R_\theta` with autograd (third derivatives, so
for small d), :func:`fokker_planck_metric` its mean square over :math:`t \sim U(t_{min}, t_{max})`,
:math:`x \sim \rho_t`, and :func:`gaussian_ode_sde_gap` the exact gap for Gaussian data and a linear score error,
where both laws stay Gaussian (moment equations) and :math:`W_2` is closed form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _kinetic_coefficients(interpolant: Interpolant, t: torch.Tensor):
    c = interpolant.coefficients(t)
    k = c.d_signal / c.signal
    m = c.d_signal * c.sigma ** 2 / c.signal - c.sigma_dsigma
    return k, m


def fokker_planck_residual(score: ScoreFn, interpolant: Interpolant, x: torch.Tensor, t: torch.Tensor,
                           create_graph: bool = False) -> torch.Tensor:
    r""":math:`R(x,t)` ``(B, d)`` for ``score(x, t) -> (B, d)`` at states ``x (B, d)`` and times ``t (B,)`` with
    :math:`a(t) > 0` (set ``create_graph=True`` to backpropagate into the model, e.g. as a regulariser)."""
    if not interpolant.gaussian_base:
        raise ConfigError("interpolant", f"the score Fokker–Planck equation needs a Gaussian base; {interpolant.name!r} has none")
    if x.dim() != 2 or t.shape != (x.shape[0],):
        raise ConfigError("x/t", f"need x (B, d) and t (B,); got {tuple(x.shape)} and {tuple(t.shape)}")
    x = x.detach().requires_grad_(True)
    t = t.detach().to(x.dtype).requires_grad_(True)
    s = score(x, t)
    d = x.shape[1]
    ds_dt, div = [], torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(d):
        gx, gt = torch.autograd.grad(s[:, i].sum(), (x, t), create_graph=True)
        div = div + gx[:, i]
        ds_dt.append(gt)
    k, m = _kinetic_coefficients(interpolant, t.detach())
    k, m = k.to(x.dtype), m.to(x.dtype)
    phi = m * div + k * (x * s).sum(1) + m * (s * s).sum(1)
    grad_phi = torch.autograd.grad(phi.sum(), x, create_graph=True)[0]
    res = torch.stack(ds_dt, 1) + grad_phi
    return res if create_graph else res.detach()


@dataclass(frozen=True)
class ResidualEstimate:
    """Monte-Carlo :math:`E\\|R\\|^2` and its standard error."""

    value: float
    stderr: float


def fokker_planck_metric(score: ScoreFn, interpolant: Interpolant, x1: torch.Tensor, t_min: float = 0.05,
                         t_max: float = 0.95, generator: Optional[torch.Generator] = None,
                         create_graph: bool = False):
    r""":math:`E_{t\sim U(t_{min},t_{max}),\,x\sim\rho_t}\|R(x,t)\|^2` with :math:`x_t = a x_1 + \sigma\xi` built from
    the data samples ``x1``. Returns a :class:`ResidualEstimate`, or the differentiable mean when
    ``create_graph=True`` (the training regulariser)."""
    if not 0.0 < float(t_min) < float(t_max) <= 1.0:
        raise ConfigError("t_min/t_max", f"need 0 < t_min < t_max <= 1, got {t_min}, {t_max}")
    n = x1.shape[0]
    t = float(t_min) + (float(t_max) - float(t_min)) * torch.rand(n, dtype=x1.dtype, generator=generator).to(x1.device)
    xi = torch.randn(x1.shape, dtype=x1.dtype, generator=generator).to(x1.device)
    xt = interpolant.interpolate(xi, x1, t)
    r2 = (fokker_planck_residual(score, interpolant, xt, t, create_graph) ** 2).sum(1)
    if create_graph:
        return r2.mean()
    return ResidualEstimate(float(r2.mean()), float(r2.std() / math.sqrt(n)))


@dataclass(frozen=True)
class GaussianGap:
    """Laws at ``t_end`` of the probability-flow ODE and the SDE driven by the same (perturbed) score.

    Attributes:
        ode_mean, ode_var, sde_mean, sde_var: per-coordinate means and variances ``(d,)``.
        w2: :math:`W_2` between the two Gaussian laws (closed form for diagonal covariances).
        w2_ode_to_truth, w2_sde_to_truth: each law's :math:`W_2` to the exact marginal at ``t_end``.
    """

    ode_mean: torch.Tensor
    ode_var: torch.Tensor
    sde_mean: torch.Tensor
    sde_var: torch.Tensor
    w2: float
    w2_ode_to_truth: float
    w2_sde_to_truth: float


def gaussian_w2(m1: torch.Tensor, v1: torch.Tensor, m2: torch.Tensor, v2: torch.Tensor) -> float:
    r""":math:`W_2` between :math:`N(m_1, \mathrm{diag}\,v_1)` and :math:`N(m_2, \mathrm{diag}\,v_2)`:
    :math:`\sqrt{\|m_1-m_2\|^2 + \|\sqrt{v_1}-\sqrt{v_2}\|^2}`."""
    return float(torch.sqrt(((m1 - m2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()))


def gaussian_ode_sde_gap(mean, var, interpolant: Interpolant, score_error: float,
                         eps: Callable[[float], float], t_start: float = 0.05, t_end: float = 1.0,
                         steps: int = 4000) -> GaussianGap:
    r"""Exact ODE–SDE gap for data :math:`N(\mu, \mathrm{diag}\,\lambda)` and the linear score error
    :math:`\tilde s = s - \delta\,(x - a\mu)` (a constant ``score_error`` δ).

    With :math:`v = a^2\lambda + \sigma^2`, :math:`c = 1/v + \delta`, both dynamics are linear, so starting from the
    exact marginal at ``t_start`` the laws stay Gaussian with

    .. math:: \text{ODE: } \dot{\bar x} = k\bar x - m c(\bar x - a\mu),\ \dot P = 2(k - mc)P;\qquad
        \text{SDE: } \dot{\bar x} = k\bar x - (m+\varepsilon)c(\bar x - a\mu),\ \dot P = 2(k - (m+\varepsilon)c)P + 2\varepsilon,

    integrated by RK4 on ``steps`` uniform steps (float64). For δ = 0 both equal the exact marginal.
    """
    mu = torch.as_tensor(mean, dtype=torch.float64)
    lam = torch.as_tensor(var, dtype=torch.float64)
    if mu.shape != lam.shape or mu.dim() != 1 or not bool((lam > 0).all()):
        raise ConfigError("mean/var", "need a mean (d,) and positive variances (d,)")
    if not 0.0 < float(t_start) < float(t_end) <= 1.0:
        raise ConfigError("t_start/t_end", f"need 0 < t_start < t_end <= 1, got {t_start}, {t_end}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError("steps", f"must be an integer >= 1, got {steps!r}")
    delta = float(score_error)

    def coeffs(t: float):
        c = interpolant.coefficients(t)
        k = c.d_signal / c.signal
        m = c.d_signal * c.sigma ** 2 / c.signal - c.sigma_dsigma
        v = c.signal ** 2 * lam + c.sigma ** 2
        return c.signal, k, m, 1.0 / v + delta

    def rhs(t: float, y: torch.Tensor) -> torch.Tensor:
        a, k, m, c = coeffs(t)
        e = float(eps(t))
        xo, po, xs, ps = y
        return torch.stack([k * xo - m * c * (xo - a * mu), 2 * (k - m * c) * po,
                            k * xs - (m + e) * c * (xs - a * mu), 2 * (k - (m + e) * c) * ps + 2 * e])

    c0 = interpolant.coefficients(float(t_start))
    m0, v0 = c0.signal * mu, c0.signal ** 2 * lam + c0.sigma ** 2
    y = torch.stack([m0, v0, m0, v0])
    h = (float(t_end) - float(t_start)) / steps
    t = float(t_start)
    for _ in range(steps):
        k1 = rhs(t, y)
        k2 = rhs(t + h / 2, y + h / 2 * k1)
        k3 = rhs(t + h / 2, y + h / 2 * k2)
        k4 = rhs(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += h
    c1 = interpolant.coefficients(float(t_end))
    mt, vt = c1.signal * mu, c1.signal ** 2 * lam + c1.sigma ** 2
    return GaussianGap(y[0], y[1], y[2], y[3], gaussian_w2(y[0], y[1], y[2], y[3]),
                       gaussian_w2(y[0], y[1], mt, vt), gaussian_w2(y[2], y[3], mt, vt))

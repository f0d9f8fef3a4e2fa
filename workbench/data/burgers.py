r"""Viscous Burgers' equation on the circle :math:`[0, L)`, pseudo-spectral, and its Cole–Hopf exact solutions.

.. math:: \partial_t u + u\,\partial_x u = \nu\,\partial_x^2 u,

solved by :class:`~workbench.data.spectral1d.PseudoSpectral1D` with :math:`\mathcal L = -\nu k^2` and
:math:`\mathcal N(u) = -\tfrac12\partial_x(u^2)` (2/3-dealiased).

Cole–Hopf: :math:`u = -2\nu\,\partial_x\log\varphi` maps Burgers to the heat equation
:math:`\partial_t\varphi = \nu\partial_x^2\varphi`. With

.. math::
    \varphi(x, t) = 1 + \sum_m c_m e^{-\nu k_m^2 t}\cos(k_m x + \theta_m),\qquad k_m = 2\pi m/L,\quad
    \sum_m |c_m| < 1,

:math:`\varphi > 0` and :func:`cole_hopf` returns the exact, smooth, periodic
:math:`u = 2\nu\sum_m c_m k_m e^{-\nu k_m^2 t}\sin(k_m x + \theta_m)/\varphi` (zero mean). Taking
:math:`\sum|c_m|` close to 1 makes steep fronts of width :math:`\sim\nu`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence, Union

import torch

from ..errors import ConfigError
from .spectral1d import PseudoSpectral1D, _check_number


class Burgers1D(PseudoSpectral1D):
    r"""Batched pseudo-spectral viscous Burgers solver :math:`u_t + uu_x = \nu u_{xx}` on ``n`` points.

    Args:
        n: grid points (≥ 8).
        nu: viscosity ν > 0.
        length: domain length L (default 2π).
        dt: time step h.
        integrator: ``"rk4"`` (integrating-factor RK4, default) or ``"etdrk4"``.
        dealias, max_cfl, device, dtype: as in :class:`~workbench.data.spectral1d.PseudoSpectral1D`.
    """

    name = "burgers"

    def __init__(self, n: int = 256, nu: float = 0.01, length: float = 2 * math.pi, dt: float = 1e-3,
                 integrator: str = "rk4", dealias: bool = True, max_cfl: float = 1.0,
                 device: Union[str, torch.device] = "cpu", dtype: Union[str, torch.dtype] = "float64"):
        self.nu = _check_number("nu", nu, strict=True)
        super().__init__(n, length, dt, integrator, dealias, max_cfl, device, dtype)

    def linear_symbol(self, k: torch.Tensor) -> torch.Tensor:
        r""":math:`-\nu k^2`."""
        return -self.nu * k ** 2

    def nonlinear(self, u_hat: torch.Tensor) -> torch.Tensor:
        r""":math:`-\tfrac12 ik\,\widehat{u^2}` (dealiased)."""
        return self.advection(u_hat)

    def params(self) -> Dict[str, Any]:
        return {"equation": "burgers", "nu": self.nu, **super().params()}


def _series(x: torch.Tensor, t: float, nu: float, c, th, length: float) -> torch.Tensor:
    """u = -2ν φ_x/φ for φ = 1 + Σ_m c_m e^{-ν k_m² t} cos(k_m x + θ_m), k_m = 2π m/L."""
    phi = torch.ones_like(x)
    dphi = torch.zeros_like(x)
    for m, (cm, tm) in enumerate(zip(c, th), start=1):
        k = 2 * math.pi * m / length
        amp = cm * math.exp(-nu * k * k * t)
        if amp == 0.0:
            continue
        phi = phi + amp * torch.cos(k * x + tm)
        dphi = dphi - amp * k * torch.sin(k * x + tm)
    return -2.0 * nu * dphi / phi


def cole_hopf(x: torch.Tensor, t: float, nu: float, coefficients: Sequence[float], phases: Sequence[float] = (),
              length: float = 2 * math.pi) -> torch.Tensor:
    r"""Exact Burgers solution :math:`u = -2\nu\,\partial_x\log\varphi` at time ``t`` on the points ``x``.

    Args:
        x: grid points (any shape, float tensor).
        t: time ≥ 0.
        nu: viscosity ν > 0.
        coefficients: :math:`c_1, c_2, …` of modes m = 1, 2, …; :math:`\sum|c_m| < 1` keeps φ > 0.
        phases: :math:`\theta_m` (default 0).
        length: domain length L.
    """
    nu = _check_number("nu", nu, strict=True)
    t = _check_number("t", t, strict=False)
    c = [float(v) for v in coefficients]
    if not c or sum(abs(v) for v in c) >= 1.0:
        raise ConfigError("coefficients", f"need at least one and sum |c_m| < 1 (so φ > 0), got {list(coefficients)}")
    th = [float(v) for v in phases] + [0.0] * (len(c) - len(phases))
    return _series(x, t, nu, c, th, length)


def cole_hopf_sine(x: torch.Tensor, t: float, nu: float, amplitude: float = 1.0, wavenumber: int = 1,
                   length: float = 2 * math.pi) -> torch.Tensor:
    r"""Exact Burgers solution from :math:`u_0 = A\sin(kx)`, :math:`k = 2\pi n/L` (a front steepens near
    :math:`t = 1/(Ak)` and then decays).

    :math:`\varphi_0 = e^{-\frac1{2\nu}\int u_0} = e^{a\cos kx}`, :math:`a = A/(2\nu k)`, expands by
    Jacobi–Anger as :math:`I_0(a)\,[1 + 2\sum_m (I_m(a)/I_0(a))\cos(mkx)]`; each mode then decays as
    :math:`e^{-\nu m^2k^2t}`. The ratios come from the exponentially scaled Bessel functions (``scipy.special.ive``);
    the series is cut where they fall below 1e-18. Round-off grows like :math:`e^{2a}\epsilon`, so keep
    :math:`a \lesssim 8` (e.g. ν ≥ 0.06 for A = k = 1).
    """
    from scipy.special import ive

    nu = _check_number("nu", nu, strict=True)
    t = _check_number("t", t, strict=False)
    A = float(amplitude)
    if not math.isfinite(A):
        raise ConfigError("amplitude", f"must be finite, got {amplitude!r}")
    if int(wavenumber) != wavenumber or int(wavenumber) < 1:
        raise ConfigError("wavenumber", f"must be an integer >= 1, got {wavenumber!r}")
    n = int(wavenumber)
    a = A / (2 * nu * 2 * math.pi * n / length)
    if abs(a) > 12:
        raise ConfigError("nu", f"a = A/(2νk) = {a:.3g} is beyond 12: the Cole–Hopf series loses all accuracy to "
                          "round-off (e^{2a}·1e-16); use a larger nu or a smaller amplitude")
    i0 = float(ive(0, abs(a)))
    c = [0.0] * n * (int(abs(a) + 10 * math.sqrt(abs(a) + 1) + 40))
    for m in range(1, len(c) // n + 1):
        r = float(ive(m, abs(a))) / i0 * (1 if a >= 0 or m % 2 == 0 else -1)
        if abs(r) < 1e-18:
            break
        c[m * n - 1] = 2.0 * r
    return _series(x, t, nu, c, [0.0] * len(c), length)


__all__ = ["Burgers1D", "cole_hopf", "cole_hopf_sine"]

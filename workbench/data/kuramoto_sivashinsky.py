r"""The Kuramoto–Sivashinsky equation on the circle :math:`[0, L)`, pseudo-spectral (PDE-Refiner's benchmark).

.. math:: \partial_t u + u\,\partial_x u + \partial_x^2 u + \nu\,\partial_x^4 u = 0,

solved by :class:`~workbench.data.spectral1d.PseudoSpectral1D` with :math:`\mathcal L = k^2 - \nu k^4` (long
waves :math:`k < 1/\sqrt\nu` grow, short ones are damped) and :math:`\mathcal N(u) = -\tfrac12\partial_x(u^2)`.
The default integrator is ETDRK4 (Kassam & Trefethen 2005). The spatial mean :math:`\hat u_0` is an exact
invariant: :math:`\mathcal L(0) = 0` and :math:`\partial_x(u^2)` has no mean, so it is conserved to round-off.
:func:`kassam_trefethen_initial` is their standard start :math:`u_0 = \cos(x/16)(1 + \sin(x/16))` on
:math:`L = 32\pi`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Union

import torch

from .spectral1d import PseudoSpectral1D, _check_number


class KuramotoSivashinsky1D(PseudoSpectral1D):
    r"""Batched pseudo-spectral KS solver :math:`u_t + uu_x + u_{xx} + \nu u_{xxxx} = 0` on ``n`` points.

    Args:
        n: grid points (≥ 8).
        length: domain length L (default 32π; chaotic for L ≳ 22 at ν = 1).
        nu: coefficient ν > 0 of the fourth-order term (PDE-Refiner varies it as a conditioning input).
        dt: time step h.
        integrator: ``"etdrk4"`` (default) or ``"rk4"`` (integrating-factor RK4).
        dealias, max_cfl, device, dtype: as in :class:`~workbench.data.spectral1d.PseudoSpectral1D`.
    """

    name = "kuramoto-sivashinsky"

    def __init__(self, n: int = 128, length: float = 32 * math.pi, nu: float = 1.0, dt: float = 0.1,
                 integrator: str = "etdrk4", dealias: bool = True, max_cfl: float = 1.0,
                 device: Union[str, torch.device] = "cpu", dtype: Union[str, torch.dtype] = "float64"):
        self.nu = _check_number("nu", nu, strict=True)
        super().__init__(n, length, dt, integrator, dealias, max_cfl, device, dtype)

    def linear_symbol(self, k: torch.Tensor) -> torch.Tensor:
        r""":math:`k^2 - \nu k^4`."""
        return k ** 2 - self.nu * k ** 4

    def nonlinear(self, u_hat: torch.Tensor) -> torch.Tensor:
        r""":math:`-\tfrac12 ik\,\widehat{u^2}` (dealiased)."""
        return self.advection(u_hat)

    def params(self) -> Dict[str, Any]:
        return {"equation": "kuramoto_sivashinsky", "nu": self.nu, **super().params()}


def kassam_trefethen_initial(x: torch.Tensor, length: float = 32 * math.pi) -> torch.Tensor:
    r""":math:`u_0 = \cos(2\pi x/L)(1 + \sin(2\pi x/L))` (on L = 32π this is Kassam & Trefethen's :math:`\cos(x/16)(1 + \sin(x/16))`)."""
    length = _check_number("length", length, strict=True)
    s = 2.0 * math.pi * x / length
    return torch.cos(s) * (1.0 + torch.sin(s))


__all__ = ["KuramotoSivashinsky1D", "kassam_trefethen_initial"]

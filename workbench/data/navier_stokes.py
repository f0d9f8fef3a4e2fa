r"""2-D incompressible Navier–Stokes on the torus :math:`[0, L)^2` in vorticity form, pseudo-spectral.

.. math::
    \partial_t\omega + u\cdot\nabla\omega = \nu\Delta\omega - \mu\,\omega + f,\qquad
    u = (\partial_y\psi,\ -\partial_x\psi),\quad -\Delta\psi = \omega,

with viscosity ν, linear drag μ and the Kolmogorov forcing

.. math::
    f = \nabla\times\big(A\sin(k_f y)\,\hat x\big) = -\partial_y\big(A\sin(k_f y)\big) = -A k_f\cos(k_f y),
    \qquad k_f = 2\pi n_f / L,

(:math:`n_f` = ``forcing_wavenumber``, an integer number of periods across the domain; on the default
:math:`L = 2\pi`, :math:`k_f = n_f`). The state is kept in Fourier space (``rfft2``); the advection term is computed on the grid
and projected with the 2/3 rule (modes with :math:`|k_x|` or :math:`|k_y| \ge N/3` are zeroed, in the state and
in the nonlinear term), so the semi-discrete system conserves energy and enstrophy exactly when ν = μ = f = 0.

Integrators (``integrator=``):

* ``"rk4"``: integrating-factor RK4 (Lawson): the linear part :math:`L = -\nu|k|^2 - \mu` is integrated exactly,
  :math:`\hat\omega_{n+1} = E\hat\omega_n + \tfrac h6(E a + 2E_{1/2}(b + c) + d)`, :math:`E = e^{Lh}`;
* ``"cnab2"``: IMEX Crank–Nicolson (viscous) / Adams–Bashforth 2 (advection, forcing):
  :math:`(1 - \tfrac h2 L)\hat\omega_{n+1} = (1 + \tfrac h2 L)\hat\omega_n + h(\tfrac32 N_n - \tfrac12 N_{n-1})`
  (first step forward Euler in N).

A CFL number :math:`h\max(|u|,|v|)/\Delta x` above ``max_cfl`` raises :class:`CFLError` (checked at the start
and at every recorded frame, without a host sync per step); a NaN raises :class:`~workbench.errors.NonFiniteError`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from .. import validation
from ..errors import ConfigError, NonFiniteError
from ..files import check_writable
from ..utils import resolve_device, resolve_dtype
from .grf import gaussian_random_field

INTEGRATORS = ("rk4", "cnab2")


class CFLError(ConfigError):
    """The time step violates the CFL condition (the message gives the CFL number and a safe ``dt``)."""

    def __init__(self, message: str):
        super().__init__("dt", message)


class NavierStokes2D:
    r"""Pseudo-spectral vorticity solver on an ``n × n`` periodic grid (batched, any device).

    Args:
        n: grid points per side (≥ 8).
        nu: viscosity ν ≥ 0.
        drag: linear drag μ ≥ 0.
        forcing_amplitude: A of the body force :math:`A\sin(k_f y)\,\hat x`, whose curl
            :math:`-Ak_f\cos(k_f y)` drives the vorticity (0: unforced).
        forcing_wavenumber: :math:`n_f \ge 1`, periods of the forcing across the domain (:math:`k_f = 2\pi n_f/L`).
        dt: time step h > 0.
        integrator: ``"rk4"`` (integrating-factor RK4) or ``"cnab2"`` (IMEX CN/AB2).
        dealias: apply the 2/3 rule.
        max_cfl: largest allowed CFL number.
        length: side L of the torus (default 2π).
        device, dtype: where the state lives and its real precision.
        compile: wrap the IF-RK4 step in ``torch.compile`` (optional; falls back to eager with a warning when
            compilation fails; see :meth:`enable_compile`).
    """

    def __init__(self, n: int = 64, nu: float = 1e-3, drag: float = 0.0, forcing_amplitude: float = 0.0,
                 forcing_wavenumber: int = 4, dt: float = 1e-2, integrator: str = "rk4", dealias: bool = True,
                 max_cfl: float = 1.0, length: float = 2 * math.pi, device: Union[str, torch.device] = "cpu",
                 dtype: Union[str, torch.dtype] = "float64", compile: bool = False):
        if int(n) < 8:
            raise ConfigError("n", f"must be >= 8, got {n}")
        for name, val, strict in (("nu", nu, False), ("drag", drag, False), ("dt", dt, True),
                                  ("max_cfl", max_cfl, True), ("length", length, True)):
            v = float(val)
            if not math.isfinite(v) or v < 0 or (strict and v == 0):
                raise ConfigError(name, f"must be a finite number {'>' if strict else '>='} 0, got {val!r}")
        if integrator not in INTEGRATORS:
            raise ConfigError("integrator", f"got {integrator!r}; allowed values are: {', '.join(INTEGRATORS)}")
        if not math.isfinite(float(forcing_amplitude)):
            raise ConfigError("forcing_amplitude", f"must be finite, got {forcing_amplitude!r}")
        if int(forcing_wavenumber) != forcing_wavenumber or int(forcing_wavenumber) < 1:
            raise ConfigError("forcing_wavenumber", f"must be an integer >= 1 (periods across the domain), "
                              f"got {forcing_wavenumber!r}")
        self.n, self.nu, self.drag, self.dt = int(n), float(nu), float(drag), float(dt)
        self.forcing_amplitude, self.forcing_wavenumber = float(forcing_amplitude), int(forcing_wavenumber)
        self.integrator, self.dealias, self.max_cfl, self.length = integrator, bool(dealias), float(max_cfl), float(length)
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        n, dev, rdt = self.n, self.device, self.dtype
        scale = 2 * math.pi / self.length
        self.ky = torch.fft.fftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[:, None] * scale
        self.kx = torch.fft.rfftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[None, :] * scale
        k2 = self.kx ** 2 + self.ky ** 2
        self.k2 = k2
        self.inv_k2 = torch.where(k2 > 0, 1.0 / k2.clamp_min(1e-30), torch.zeros_like(k2))
        iky = torch.fft.fftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[:, None].abs()
        ikx = torch.fft.rfftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[None, :]
        self.mask = ((iky < n / 3.0) & (ikx < n / 3.0)).to(rdt) if self.dealias else torch.ones_like(k2)
        # the four derivative symbols of the advection term, stacked so one batched inverse FFT gives
        # (u, v, ω_x, ω_y) = irfft2([i k_y/|k|², -i k_x/|k|², i k_x, i k_y] · ω̂)
        self.derivatives = torch.stack([1j * self.ky * self.inv_k2, -1j * self.kx * self.inv_k2,
                                        (1j * self.kx).expand_as(k2), (1j * self.ky).expand_as(k2)])
        self.lin = -self.nu * k2 - self.drag
        h = self.dt
        self.e1 = torch.exp(self.lin * h)
        self.e2 = torch.exp(self.lin * h / 2)
        y = torch.arange(n, device=dev, dtype=rdt) * (self.length / n)
        kf = self.forcing_wavenumber * scale  # angular wavenumber 2π n_f / L
        #: the body force's x component A sin(k_f y) on the grid, (n, n); its curl is ``forcing_grid``
        self.forcing_velocity = (self.forcing_amplitude * torch.sin(kf * y))[:, None].expand(n, n).contiguous()
        f = -self.forcing_amplitude * kf * torch.cos(kf * y)
        self.forcing_grid = f[:, None].expand(n, n).contiguous()
        self.forcing_hat = torch.fft.rfft2(self.forcing_grid) * self.mask
        self.dx = self.length / n
        self._prepare_fast()
        self._compiled: Optional[Any] = None
        if compile:
            self.enable_compile()

    def params(self) -> Dict[str, Any]:
        """The generating parameters (for caches and reports)."""
        return {"n": self.n, "nu": self.nu, "drag": self.drag, "forcing_amplitude": self.forcing_amplitude,
                "forcing_wavenumber": self.forcing_wavenumber, "dt": self.dt, "integrator": self.integrator,
                "dealias": self.dealias, "length": self.length}

    # ---- transforms -----------------------------------------------------------------------------
    def to_hat(self, w: torch.Tensor) -> torch.Tensor:
        """Grid vorticity ``(B, n, n)`` → dealiased Fourier state."""
        return torch.fft.rfft2(w.to(device=self.device, dtype=self.dtype)) * self.mask

    def to_grid(self, w_hat: torch.Tensor) -> torch.Tensor:
        """Fourier state → grid vorticity ``(B, n, n)``."""
        return torch.fft.irfft2(w_hat, s=(self.n, self.n))

    def velocity(self, w_hat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Grid velocity :math:`(u, v) = (\partial_y\psi, -\partial_x\psi)`, :math:`\hat\psi = \hat\omega/|k|^2`."""
        psi = w_hat * self.inv_k2
        u = torch.fft.irfft2(1j * self.ky * psi, s=(self.n, self.n))
        v = torch.fft.irfft2(-1j * self.kx * psi, s=(self.n, self.n))
        return u, v

    #: largest stacked spectrum (bytes) transformed by one batched ``irfft2``; beyond it the four inverse FFTs run
    #: one by one (measured on a 2-core CPU, benchmarks/fields_solver_speed.py: one batched call is 1.2–1.7× faster
    #: up to ~0.5 MB and up to 3× slower above ~1 MB, when the batch leaves the cache).
    batch_fft_bytes = 384 * 1024

    def nonlinear(self, w_hat: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat N = -P_{2/3}\,\widehat{u\cdot\nabla\omega} + \hat f`.

        :math:`(u, v, \omega_x, \omega_y)` are the inverse transforms of the precomputed ``derivatives`` tensor
        times :math:`\hat\omega`: one batched ``irfft2`` for small states, four calls for large ones
        (``batch_fft_bytes``); then one ``rfft2``.
        """
        if self._fast:
            return torch.view_as_complex(self._rhs_real(torch.view_as_real(w_hat.contiguous()), 1.0,
                                                        out=torch.empty_like(torch.view_as_real(w_hat))))
        s = (self.n, self.n)
        if 4 * w_hat.numel() * w_hat.element_size() <= self.batch_fft_bytes:
            g = torch.fft.irfft2(self.derivatives * w_hat.unsqueeze(-3), s=s)
            adv = g[..., 0, :, :] * g[..., 2, :, :] + g[..., 1, :, :] * g[..., 3, :, :]
        else:
            d = self.derivatives
            adv = (torch.fft.irfft2(d[0] * w_hat, s=s) * torch.fft.irfft2(d[2] * w_hat, s=s)
                   + torch.fft.irfft2(d[1] * w_hat, s=s) * torch.fft.irfft2(d[3] * w_hat, s=s))
        return self.forcing_hat - torch.fft.rfft2(adv) * self.mask

    # ---- fast path ------------------------------------------------------------------------------
    def _prepare_fast(self) -> None:
        r"""Precompute the tensors of the fast right-hand side (per dtype/device, once).

        With the 2/3 rule the Nyquist row and column of :math:`\hat\omega` are zero, so the half spectrum extends
        to the full plane exactly by Hermitian symmetry, :math:`\hat\omega(-k) = \overline{\hat\omega(k)}` (one
        ``index_select`` and a sign flip of the imaginary part). On the full plane two complex inverse FFTs give
        the four fields at once:

        .. math::
            \mathcal F^{-1}\big[(k_x + i k_y)\hat\omega/|k|^2\big] = u + iv,\qquad
            \mathcal F^{-1}\big[(ik_x - k_y)\hat\omega\big] = \omega_x + i\omega_y,\qquad
            u\omega_x + v\omega_y = \operatorname{Re}\big(\overline{(u + iv)}\,(\omega_x + i\omega_y)\big),

        which costs about half of four real inverse transforms (measured in benchmarks/fields_solver_speed.py).
        Elementwise work runs on real views (``view_as_real``) with the factors pre-expanded to ``(..., 2)``.
        """
        n, dev, rdt = self.n, self.device, self.dtype
        h = n // 2 + 1
        m = self.mask
        # exact only when the Nyquist row and column are masked and the mask is even under k -> -k (the 2/3
        # rule is; jax-cfd's brick-wall filter keeps k_y = -N/3 but not +N/3 and takes the reference path)
        even = torch.equal(m, m[(n - torch.arange(n, device=dev)) % n])
        self._fast = bool(even and float(m[n // 2].abs().max()) == 0.0 and float(m[:, h - 1].abs().max()) == 0.0)
        self._work: Dict[Tuple[int, ...], Dict[str, torch.Tensor]] = {}
        if not self._fast:
            return
        rows = torch.arange(n, device=dev)[:, None].expand(n, n)
        cols = torch.arange(n, device=dev)[None, :].expand(n, n)
        neg = cols >= h
        src = torch.where(neg, (n - rows) % n, rows) * h + torch.where(neg, n - cols, cols)
        self._full_index = src.reshape(-1).contiguous()
        sign = torch.ones(n * n, 2, device=dev, dtype=rdt)
        sign[neg.reshape(-1), 1] = -1.0
        self._full_sign = sign
        scale = 2 * math.pi / self.length
        ky = torch.fft.fftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[:, None] * scale
        kx = torch.fft.fftfreq(n, d=1.0 / n, device=dev, dtype=rdt)[None, :] * scale
        k2 = kx ** 2 + ky ** 2
        inv = torch.where(k2 > 0, 1.0 / k2.clamp_min(1e-30), torch.zeros_like(k2))
        self._full_symbols = torch.stack([(kx + 1j * ky) * inv, (1j * kx - ky).expand(n, n)]).contiguous()

        def pair(x: torch.Tensor) -> torch.Tensor:  # a real (n, h) factor expanded to the real view (n, h, 2)
            return x[..., None].expand(*x.shape, 2).contiguous()

        dt = self.dt
        self._fr = {1.0: torch.view_as_real(self.forcing_hat).contiguous(),
                    dt: torch.view_as_real(dt * self.forcing_hat).contiguous()}
        self._mr = {1.0: pair(-m), dt: pair(-dt * m)}
        self._e1r, self._e2r = pair(self.e1), pair(self.e2)
        self._e1r6, self._e2r3 = pair(self.e1 / 6.0), pair(self.e2 / 3.0)
        # the same factors on the full plane (the state of the full-plane loop, see ``full_plane_max_points``):
        # the even real ones extended by the index, the forcing by Hermitian symmetry like the state
        ext = lambda x: pair(x.reshape(-1)[self._full_index].reshape(n, n))  # noqa: E731
        self._fe1r, self._fe2r = ext(self.e1), ext(self.e2)
        self._fe1r6, self._fe2r3 = ext(self.e1 / 6.0), ext(self.e2 / 3.0)
        self._fmr = {1.0: ext(-m), dt: ext(-dt * m)}
        self._ffr = {k: self._extend(v) for k, v in self._fr.items()}

    #: batch × n² up to which :meth:`simulate_hat` steps the state on the full plane (``(B, n, n)`` complex)
    #: instead of the half plane: no Hermitian extension (an ``index_select`` and a sign flip) per right-hand
    #: side and a complex ``fft2`` of the real advection term in place of ``rfft2``, i.e. two aten calls fewer per
    #: right-hand side for twice the elementwise work; a win where call overhead dominates (64², 128² at batch
    #: 1), a loss for large states (measured in benchmarks/fields_solver_speed.py on one core).
    full_plane_max_points = 128 * 128

    def _extend(self, wr: torch.Tensor) -> torch.Tensor:
        """Half-plane real view ``(..., n, h, 2)`` → full-plane real view ``(..., n, n, 2)`` (Hermitian)."""
        n = self.n
        full = torch.index_select(wr.flatten(-3, -2), -2, self._full_index).mul_(self._full_sign)
        return full.unflatten(-2, (n, n))

    def _buffers(self, batch_shape: Tuple[int, ...], full_plane: bool = False) -> Dict[str, torch.Tensor]:
        """Work arrays of the fast path for one batch shape, allocated once and reused (``out=``): fresh large
        arrays cost a page fault per 4 kB on every right-hand side."""
        if full_plane:
            return self._buffers_full(tuple(batch_shape))
        key = tuple(batch_shape)
        buf = self._work.get(key)
        if buf is None:
            n, h, rdt = self.n, self.n // 2 + 1, self.dtype
            cdt = torch.complex64 if rdt == torch.float32 else torch.complex128
            mk = lambda *s, d=rdt: torch.empty(*key, *s, device=self.device, dtype=d)  # noqa: E731
            buf = {"full": mk(n * n, 2), "Z": mk(2, n, n, d=cdt), "z": mk(2, n, n, d=cdt), "adv": mk(n, n),
                   "R": mk(n, h, d=cdt), "s": mk(n, h, 2), "e1w": mk(n, h, 2),
                   **{k: mk(n, h, 2) for k in ("a", "b", "c", "d", "x0", "x1")}}
            buf["W"] = torch.view_as_complex(buf["full"]).unflatten(-1, (n, n)).unsqueeze(-3)
            # the views the right-hand side reads, made once: a view costs an aten call (~1–2 µs) every time,
            # which at 64², batch 1 is a sizeable part of a step
            z = buf["z"]
            buf["ur"], buf["ui"] = z[..., 0, :, :].real, z[..., 0, :, :].imag  # u + iv
            buf["gr"], buf["gi"] = z[..., 1, :, :].real, z[..., 1, :, :].imag  # ω_x + iω_y
            buf["Rr"] = torch.view_as_real(buf["R"])
            buf["flat"] = {id(buf[k]): buf[k].flatten(-3, -2) for k in ("s", "x0", "x1")}
            self._work[key] = buf
        return buf

    def _buffers_full(self, key: Tuple[int, ...]) -> Dict[str, Any]:
        """Work arrays of the full-plane loop (state ``(..., n, n, 2)``), as :meth:`_buffers`."""
        buf = self._work.get(("full",) + key)
        if buf is None:
            n, rdt = self.n, self.dtype
            cdt = torch.complex64 if rdt == torch.float32 else torch.complex128
            mk = lambda *s, d=rdt: torch.empty(*key, *s, device=self.device, dtype=d)  # noqa: E731
            buf = {"Z": mk(2, n, n, d=cdt), "z": mk(2, n, n, d=cdt), "adv": mk(n, n), "F": mk(n, n, d=cdt),
                   **{k: mk(n, n, 2) for k in ("s", "e1w", "a", "b", "c", "d", "x0", "x1")}}
            z = buf["z"]
            buf["ur"], buf["ui"] = z[..., 0, :, :].real, z[..., 0, :, :].imag
            buf["gr"], buf["gi"] = z[..., 1, :, :].real, z[..., 1, :, :].imag
            buf["Fr"] = torch.view_as_real(buf["F"])
            buf["cplx"] = {id(buf[k]): torch.view_as_complex(buf[k]).unsqueeze(-3) for k in ("s", "x0", "x1")}
            self._work[("full",) + key] = buf
        return buf

    def _rhs_full(self, wr: torch.Tensor, scale: float, out: torch.Tensor, buf: Dict[str, Any]) -> torch.Tensor:
        """:meth:`_rhs_real` on the full plane: ``wr`` ``(B, n, n, 2)`` Hermitian, ``out`` likewise."""
        W = buf["cplx"].get(id(wr))
        torch.mul(self._full_symbols, torch.view_as_complex(wr).unsqueeze(-3) if W is None else W, out=buf["Z"])
        torch.fft.ifft2(buf["Z"], out=buf["z"])
        torch.mul(buf["ur"], buf["gr"], out=buf["adv"]).addcmul_(buf["ui"], buf["gi"])
        torch.fft.fft2(buf["adv"], out=buf["F"])  # Hermitian: the full plane of rfft2
        return torch.addcmul(self._ffr[scale], buf["Fr"], self._fmr[scale], out=out)

    def _rhs_real(self, wr: torch.Tensor, scale: float, out: Optional[torch.Tensor] = None,
                  buf: Optional[Dict[str, Any]] = None) -> torch.Tensor:
        """``scale`` × the right-hand side on real views ``(B, n, h, 2)`` (fast path; ``out`` receives it)."""
        if buf is None:
            buf = self._buffers(wr.shape[:-3])
        full, adv = buf["full"], buf["adv"]
        flat = buf["flat"].get(id(wr))
        torch.index_select(wr.flatten(-3, -2) if flat is None else flat, -2, self._full_index, out=full)
        full.mul_(self._full_sign)
        torch.mul(self._full_symbols, buf["W"], out=buf["Z"])
        torch.fft.ifft2(buf["Z"], out=buf["z"])
        torch.mul(buf["ur"], buf["gr"], out=adv).addcmul_(buf["ui"], buf["gi"])  # Re(conj(u + iv)(ω_x + iω_y))
        torch.fft.rfft2(adv, out=buf["R"])
        return torch.addcmul(self._fr[scale], buf["Rr"], self._mr[scale], out=out)

    def _rk4_real(self, wr: torch.Tensor, out: Optional[torch.Tensor] = None, full_plane: bool = False) -> torch.Tensor:
        """One IF-RK4 step on the real view (fast path); the same update as :meth:`step`."""
        h = self.dt
        if full_plane:  # the state is (B, n, n, 2) (see full_plane_max_points)
            buf, rhs = self._buffers_full(tuple(wr.shape[:-3])), self._rhs_full
            e1r, e2r, e1r6, e2r3 = self._fe1r, self._fe2r, self._fe1r6, self._fe2r3
        else:
            buf, rhs = self._buffers(wr.shape[:-3]), self._rhs_real
            e1r, e2r, e1r6, e2r3 = self._e1r, self._e2r, self._e1r6, self._e2r3
        s, e1w = buf["s"], buf["e1w"]
        a = rhs(wr, h, out=buf["a"], buf=buf)
        torch.mul(e1r, wr, out=e1w)
        b = rhs(torch.add(wr, a, alpha=0.5, out=s).mul_(e2r), h, out=buf["b"], buf=buf)
        acc = torch.addcmul(e1w, e1r6, a, out=out)
        c = rhs(torch.mul(e2r, wr, out=s).add_(b, alpha=0.5), h, out=buf["c"], buf=buf)
        acc.addcmul_(e2r3, b).addcmul_(e2r3, c)
        d = rhs(torch.addcmul(e1w, e2r, c, out=s), h, out=buf["d"], buf=buf)
        return acc.add_(d, alpha=1.0 / 6.0)

    def enable_compile(self, **options: Any) -> bool:
        """Wrap the fast IF-RK4 step in ``torch.compile`` (``options`` go to it); returns whether it worked.

        Compilation is tried on a 1-field state at once; any failure (no compiler, unsupported op) warns and
        leaves the eager step in place, so results never depend on it."""
        if not self._fast or self.integrator != "rk4":
            warnings.warn("compile: only the dealiased IF-RK4 fast path is compiled; staying eager", RuntimeWarning,
                          stacklevel=2)
            return False
        try:
            fn = torch.compile(self._rk4_real, dynamic=False, **options)
            probe = torch.zeros(1, self.n, self.n // 2 + 1, 2, device=self.device, dtype=self.dtype)
            fn(probe)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
            warnings.warn(f"compile: torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); staying eager",
                          RuntimeWarning, stacklevel=2)
            self._compiled = None
            return False
        self._compiled = fn
        return True

    def cfl(self, w_hat: torch.Tensor) -> torch.Tensor:
        """CFL number :math:`h\\max(|u|, |v|)/\\Delta x` (0-dim tensor, over the whole batch)."""
        u, v = self.velocity(w_hat)
        return torch.maximum(u.abs().amax(), v.abs().amax()) * (self.dt / self.dx)

    def check_cfl(self, w_hat: torch.Tensor, t: float) -> None:
        """Raise :class:`CFLError` (or :class:`NonFiniteError`) when the state at time ``t`` is unsafe."""
        c = float(self.cfl(w_hat))
        if not math.isfinite(c):
            raise NonFiniteError(f"vorticity: NaN/Inf at t={t:.4g}; the run blew up (dt={self.dt:g} too large?)")
        if c > self.max_cfl:
            safe = self.dt * self.max_cfl / c
            raise CFLError(f"CFL number {c:.3g} exceeds max_cfl={self.max_cfl:g} at t={t:.4g} "
                           f"(max velocity {c * self.dx / self.dt:.3g}, dx={self.dx:.3g}); use dt <= {safe:.3g}")

    # ---- time stepping --------------------------------------------------------------------------
    def step(self, w_hat: torch.Tensor, state: Dict[str, Any]) -> torch.Tensor:
        """One time step of the chosen integrator (``state`` holds multistep history for CN/AB2)."""
        h = self.dt
        if self.integrator == "rk4" and self._fast:
            wr = torch.view_as_real(w_hat.contiguous())
            if self._compiled is not None:
                return torch.view_as_complex(self._compiled(wr))
            return torch.view_as_complex(self._rk4_real(wr, out=torch.empty_like(wr)))
        if self.integrator == "rk4":
            e1, e2 = self.e1, self.e2
            a = h * self.nonlinear(w_hat)
            b = h * self.nonlinear(e2 * (w_hat + 0.5 * a))
            c = h * self.nonlinear(e2 * w_hat + 0.5 * b)
            d = h * self.nonlinear(e1 * w_hat + e2 * c)
            return e1 * w_hat + (e1 * a + 2.0 * e2 * (b + c) + d) / 6.0
        nl = self.nonlinear(w_hat)
        prev = state.get("prev_nl")
        expl = nl if prev is None else 1.5 * nl - 0.5 * prev
        state["prev_nl"] = nl
        half = 0.5 * h * self.lin
        return ((1.0 + half) * w_hat + h * expl) / (1.0 - half)

    def simulate_hat(self, w_hat: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` time steps of a Fourier state (no frames, no CFL check): the inner loop of :meth:`simulate`."""
        if self.integrator == "rk4" and self._fast:
            wr = torch.view_as_real(w_hat.contiguous())
            if self._compiled is not None:
                for _ in range(int(steps)):
                    wr = self._compiled(wr)
                return torch.view_as_complex(wr)
            full = int(steps) > 0 and wr[..., 0].numel() // (self.n // 2 + 1) * self.n <= self.full_plane_max_points
            if full:
                wr = self._extend(wr)
            buf = self._buffers(wr.shape[:-3], full_plane=full)
            x0, x1 = buf["x0"], buf["x1"]
            for i in range(int(steps)):
                wr = self._rk4_real(wr, out=x0 if i % 2 == 0 else x1, full_plane=full)
            if full:
                return torch.view_as_complex(wr[..., : self.n // 2 + 1, :].contiguous())
            return torch.view_as_complex(wr.clone() if steps else wr)
        state: Dict[str, Any] = {}
        for _ in range(int(steps)):
            w_hat = self.step(w_hat, state)
        return w_hat

    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the dealiasing mask (shape ``(n, n//2 + 1)``, 0/1) and the tensors derived from it.

        The fast path assumes a mask that zeros the Nyquist row and column (any 2/3-rule mask does)."""
        if tuple(mask.shape) != tuple(self.k2.shape):
            raise ConfigError("mask", f"must have shape {tuple(self.k2.shape)}, got {tuple(mask.shape)}")
        self.mask = mask.to(device=self.device, dtype=self.dtype).clone()
        self.forcing_hat = torch.fft.rfft2(self.forcing_grid) * self.mask
        self._prepare_fast()

    def simulate(self, w0: torch.Tensor, steps: int, record_every: int = 1, progress: bool = False,
                 desc: str = "navier-stokes") -> torch.Tensor:
        r"""Integrate ``steps`` steps from grid vorticity ``w0`` ``(B, n, n)``.

        Returns:
            ``(B, T, n, n)`` grid vorticity at steps ``0, r, 2r, …`` (``T = steps // r + 1``), in ``self.dtype``.
        """
        if w0.dim() != 3 or w0.shape[-1] != self.n or w0.shape[-2] != self.n:
            raise ConfigError("w0", f"must have shape (B, {self.n}, {self.n}), got {tuple(w0.shape)}")
        if int(steps) < 0 or int(record_every) < 1:
            raise ConfigError("record_every", f"need steps >= 0 and record_every >= 1, got {steps}, {record_every}")
        w_hat = self.to_hat(w0)
        self.check_cfl(w_hat, 0.0)
        frames = [self.to_grid(w_hat)]
        state: Dict[str, Any] = {}
        it = range(1, int(steps) + 1)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=desc, leave=False)
        for i in it:
            w_hat = self.step(w_hat, state)
            if i % record_every == 0:
                self.check_cfl(w_hat, i * self.dt)
                frames.append(self.to_grid(w_hat))
        return torch.stack(frames, 1)

    # ---- diagnostics ----------------------------------------------------------------------------
    def energy(self, w: torch.Tensor) -> torch.Tensor:
        r"""Kinetic energy :math:`\tfrac12\langle|u|^2\rangle` per field (grid vorticity ``(..., n, n)``)."""
        u, v = self.velocity(torch.fft.rfft2(w.to(self.dtype)))
        return 0.5 * (u ** 2 + v ** 2).mean((-1, -2))

    @staticmethod
    def enstrophy(w: torch.Tensor) -> torch.Tensor:
        r"""Enstrophy :math:`\tfrac12\langle\omega^2\rangle` per field."""
        return 0.5 * (w ** 2).mean((-1, -2))


def taylor_green(n: int, t: float = 0.0, nu: float = 0.0, amplitude: float = 1.0, k: int = 1,
                 device: Union[str, torch.device] = "cpu", dtype: Union[str, torch.dtype] = "float64") -> torch.Tensor:
    r"""Taylor–Green vorticity :math:`\omega = 2kA\sin(kx)\sin(ky)\,e^{-2\nu k^2 t}` (exact NS solution, L = 2π).

    Its stream function is :math:`\psi = \omega/(2k^2)`, so :math:`u\cdot\nabla\omega = J(\psi, \omega) = 0` and only
    viscosity acts. Returns ``(1, n, n)``.
    """
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    x = torch.arange(n, device=dev, dtype=dt) * (2 * math.pi / n)
    w = 2 * k * amplitude * torch.sin(k * x)[None, :] * torch.sin(k * x)[:, None] * math.exp(-2 * nu * k * k * t)
    return w[None]


# ---- data sets ------------------------------------------------------------------------------------
@dataclass
class NSDataConfig:
    """Generating parameters of a Navier–Stokes trajectory set (all of them go into the cache key).

    ``frame_dt`` is the time between recorded frames (a multiple of ``dt``), ``warmup`` the simulated time
    discarded before the first frame. The initial vorticity is a Matérn GRF (``init_nu``, ``init_length_scale``)
    with pointwise std ``init_std``.
    """

    n_traj: int = 16
    n: int = 64
    nu: float = 2e-3
    drag: float = 0.1
    forcing_amplitude: float = 1.0
    forcing_wavenumber: int = 4
    dt: float = 0.01
    integrator: str = "rk4"
    frames: int = 100
    frame_dt: float = 0.2
    warmup: float = 10.0
    init_std: float = 3.0
    init_nu: float = 2.0
    init_length_scale: float = 0.5
    seed: int = 0
    dtype: str = "float64"

    def steps_per_frame(self) -> int:
        """``frame_dt / dt`` as an integer (error when not a multiple)."""
        r = self.frame_dt / self.dt
        if abs(r - round(r)) > 1e-9 or round(r) < 1:
            raise ConfigError("frame_dt", f"must be a positive multiple of dt={self.dt}, got {self.frame_dt}")
        return int(round(r))


def kolmogorov_config(**overrides: Any) -> NSDataConfig:
    """The default Kolmogorov-flow setting (forcing sin(4y), drag 0.1, ν = 2e-3) with ``overrides``."""
    cfg = NSDataConfig()
    return _replace(cfg, overrides)


#: time step of :func:`decaying_config`, chosen for time convergence (benchmarks/results/fields/decaying_dt.md)
DECAYING_DT = 0.0025


def decaying_config(**overrides: Any) -> NSDataConfig:
    """Decaying turbulence: no forcing, no drag, random initial field, ν = 1e-3, no warm-up, dt = 0.0025.

    The time step is time-converged over the whole window (100 frames, t = 0..19.8): the relative L2 error of the
    vorticity against an IF-RK4 run at dt/4 = 6.25e-4 (64², the config's initial field, batch 2, worst field) is
    1.7e-5 at t = 1, 4.1e-4 at t = 10 and at most 6.3e-4 up to t = 19.8. The former dt = 0.01 had 4.2e-3 at t = 1
    and 0.21 at t = 15, dt = 0.005 at most 1.0e-2 (IF-RK4 is fourth order: ≈ 16× per halving; the error still grows
    with t, as any perturbation does in this chaotic flow). Measured by ``benchmarks/fields_decaying_dt.py``.
    """
    cfg = NSDataConfig(nu=1e-3, drag=0.0, forcing_amplitude=0.0, warmup=0.0, init_std=5.0, init_length_scale=0.3,
                       dt=DECAYING_DT)
    return _replace(cfg, overrides)


def _replace(cfg: NSDataConfig, overrides: Dict[str, Any]) -> NSDataConfig:
    valid = set(asdict(cfg))
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ConfigError(bad[0], f"unknown data parameter; valid ones are: {', '.join(sorted(valid))}")
    for k, v in overrides.items():
        kind = type(getattr(cfg, k))
        if kind is int:
            v = validation.integer(k, v)
        elif kind is float:
            v = validation.number(k, v)
        setattr(cfg, k, kind(v))
    validation.integer("frames", cfg.frames, 1, 100_000)
    validation.integer("n_traj", cfg.n_traj, 1, 100_000)
    validation.seed(cfg.seed)
    return cfg


def generate_trajectories(cfg: NSDataConfig, device: Union[str, torch.device] = "cpu",
                          progress: bool = True) -> Dict[str, torch.Tensor]:
    """Simulate ``cfg.n_traj`` trajectories; returns ``{"vorticity": (B, T, n, n), "times": (T,)}`` on the CPU."""
    solver = NavierStokes2D(n=cfg.n, nu=cfg.nu, drag=cfg.drag, forcing_amplitude=cfg.forcing_amplitude,
                            forcing_wavenumber=cfg.forcing_wavenumber, dt=cfg.dt, integrator=cfg.integrator,
                            device=device, dtype=cfg.dtype)
    g = torch.Generator().manual_seed(int(cfg.seed))
    w0 = gaussian_random_field(cfg.n_traj, cfg.n, "matern", nu=cfg.init_nu, length_scale=cfg.init_length_scale,
                               std=cfg.init_std, generator=g, device=device, dtype=cfg.dtype)
    r = cfg.steps_per_frame()
    warm = int(round(cfg.warmup / cfg.dt))
    if warm > 0:
        w0 = solver.simulate(w0, warm, record_every=warm, progress=progress, desc="warm-up")[:, -1]
    traj = solver.simulate(w0, (cfg.frames - 1) * r, record_every=r, progress=progress, desc="trajectories")
    times = cfg.warmup + torch.arange(cfg.frames, dtype=torch.float64) * cfg.frame_dt
    return {"vorticity": traj.cpu(), "times": times}


def _params_json(cfg: NSDataConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True)


def cache_path(cfg: NSDataConfig, directory: str = os.path.join("data", "cache")) -> str:
    """Default cache file for ``cfg``: ``data/cache/ns_<hash>.npz`` (hash of the generating parameters)."""
    h = hashlib.sha1(_params_json(cfg).encode()).hexdigest()[:12]
    return os.path.join(directory, f"ns_{h}.npz")


class CorruptCacheError(Exception):
    """A cache file that cannot be read, or whose arrays are not what its parameters describe."""


def _read_cache(path: str, cfg: NSDataConfig, want: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The arrays of a ``.npz`` cache, checked (parameters, keys, shapes, finiteness); CorruptCacheError if unusable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"params", "vorticity", "times"} - set(z.files))
            if missing:
                raise CorruptCacheError(f"lacks the array(s) {', '.join(missing)}")
            have = json.loads(str(z["params"]))
            w, times = z["vorticity"], z["times"]
    except CorruptCacheError:
        raise
    except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, OSError, JSONDecodeError, ValueError, ...
        raise CorruptCacheError(f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(have, dict):
        raise CorruptCacheError("its 'params' entry is not a mapping")
    if have != want:
        diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        shown = ", ".join(f"{k} (file {have.get(k)!r}, requested {want.get(k)!r})" for k in diff)
        raise ConfigError("cache", f"{path} was generated with different parameters: {shown}; "
                          "delete it or choose another path")
    _check_arrays(w, times, cfg)
    return {"vorticity": torch.from_numpy(w), "times": torch.from_numpy(times)}


def _check_arrays(w: Any, times: Any, cfg: NSDataConfig) -> None:
    """CorruptCacheError unless ``w`` is ``(n_traj, frames, n, n)``, ``times`` ``(frames,)``, both finite
    (numpy arrays or tensors; the one check of both back ends)."""
    w, times = np.asarray(w), np.asarray(times)
    shape = (cfg.n_traj, cfg.frames, cfg.n, cfg.n)
    if tuple(w.shape) != shape or tuple(times.shape) != (cfg.frames,):
        raise CorruptCacheError(f"holds vorticity of shape {tuple(w.shape)} and times of shape {tuple(times.shape)}; "
                                f"its parameters describe {shape} and ({cfg.frames},)")
    if not (np.isfinite(w).all() and np.isfinite(times).all()):
        bad = int((~np.isfinite(w)).sum()) + int((~np.isfinite(times)).sum())
        raise CorruptCacheError(f"holds {bad} NaN or Inf value(s)")


def load_or_generate(cfg: NSDataConfig, path: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                     progress: bool = True) -> Dict[str, torch.Tensor]:
    """Load trajectories from the cache at ``path``, or generate and save them there.

    Two back ends, chosen by the extension: ``.npz`` (default; numpy, compressed) and ``.h5``/``.hdf5``
    (:mod:`workbench.data.hdf5`, PDEBench layout ``[batch, time, x, y]`` with coordinates, readable window by
    window with :class:`~workbench.data.hdf5.H5Windows`). Either file stores the arrays and the generating
    parameters. A cache whose parameters differ from ``cfg`` is refused with a :class:`ConfigError` naming the
    differing fields (it is never silently reused nor overwritten). A corrupt cache (unreadable, missing arrays,
    wrong shapes, NaN) is never used: at the default path it is regenerated (with a warning), at a path the caller
    gave it is refused naming the file.
    """
    default = path is None
    path = path or cache_path(cfg)
    want = json.loads(_params_json(cfg))
    h5 = path.endswith((".h5", ".hdf5"))
    if os.path.exists(path):
        try:
            if h5:
                from .hdf5 import import_hdf5

                try:
                    z = import_hdf5(path)
                except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
                    raise CorruptCacheError(f"cannot be read ({type(exc).__name__}: {exc})") from None
                have = z["params"]
                if have != want:
                    diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
                    shown = ", ".join(f"{k} (file {have.get(k)!r}, requested {want.get(k)!r})" for k in diff)
                    raise ConfigError("cache", f"{path} was generated with different parameters: {shown}; "
                                      "delete it or choose another path")
                if "times" not in z:
                    raise CorruptCacheError("lacks the time coordinate")
                w = z["fields"].transpose(-1, -2).contiguous()
                _check_arrays(w.numpy(), z["times"].numpy(), cfg)
                return {"vorticity": w, "times": z["times"]}
            return _read_cache(path, cfg, want)
        except CorruptCacheError as exc:
            if not default:
                raise ConfigError("cache", f"{path}: {exc}; delete it or choose another path") from None
            warnings.warn(f"the cache {path} is unusable ({exc}); regenerating it", RuntimeWarning, stacklevel=2)
    else:
        check_writable("cache", path)
    out = generate_trajectories(cfg, device=device, progress=progress)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if h5:
        from .hdf5 import export_hdf5

        coord = np.arange(cfg.n) * (2 * math.pi / cfg.n)
        export_hdf5(path, out["vorticity"].transpose(-1, -2), out["times"], {"x": coord, "y": coord}, want)  # atomic
        return out
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, vorticity=out["vorticity"].numpy(), times=out["times"].numpy(),
                        params=np.array(_params_json(cfg)))
    os.replace(tmp, path)
    return out

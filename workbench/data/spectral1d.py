r"""Batched pseudo-spectral solvers of 1-D periodic equations :math:`\partial_t u = \mathcal L u + \mathcal N(u)`.

A subclass gives the Fourier symbol of the linear operator (``linear_symbol(k)``, diagonal) and the nonlinear term
in Fourier space (``nonlinear(u_hat)``); this base owns the grid :math:`x_j = jL/n` on :math:`[0, L)`, the
angular wavenumbers :math:`k = 2\pi m/L` (``rfft`` layout), the 2/3 dealiasing mask (modes
:math:`|m| \ge n/3` zeroed, in the state and in every nonlinear term), the time integrators, the CFL check and
the recorded simulation. The state is kept in Fourier space as a ``(B, n//2 + 1)`` complex tensor; everything is
batched over ``B`` and lives on ``device``.

Integrators (``integrator=``):

* ``"rk4"``: integrating-factor RK4 (Lawson), :math:`E = e^{\mathcal Lh}`, :math:`E_{1/2} = e^{\mathcal Lh/2}`,

  .. math::
      a = hN(v),\ b = hN(E_{1/2}(v + a/2)),\ c = hN(E_{1/2}v + b/2),\ d = hN(Ev + E_{1/2}c),\\
      v_{n+1} = Ev + \tfrac16(Ea + 2E_{1/2}(b + c) + d)

  (the same update as :class:`~workbench.data.navier_stokes.NavierStokes2D`);
* ``"etdrk4"``: exponential time differencing RK4 of Cox & Matthews (2002), with the φ-functions evaluated by
  the contour integral of Kassam & Trefethen (2005, eq. 2.5 and Fig. 3's code; ``M`` = 32 points on a circle of
  radius 1 around each :math:`\mathcal Lh`):

  .. math::
      a = E_{1/2}v + Q N_v,\quad b = E_{1/2}v + Q N_a,\quad c = E_{1/2}a + Q(2N_b - N_v),\\
      v_{n+1} = Ev + f_1 N_v + 2 f_2 (N_a + N_b) + f_3 N_c,

  :math:`Q = h\,\overline{(e^{z/2} - 1)/z}`, :math:`f_1 = h\,\overline{(-4 - z + e^z(4 - 3z + z^2))/z^3}`,
  :math:`f_2 = h\,\overline{(2 + z + e^z(z - 2))/z^3}`, :math:`f_3 = h\,\overline{(-4 - 3z - z^2 + e^z(4 - z))/z^3}`.

Both are fourth order in h. A CFL number :math:`h\max|u|/\Delta x` above ``max_cfl`` raises
:class:`~workbench.data.navier_stokes.CFLError` (checked at the start and at every recorded frame, no host sync
per step); a NaN/Inf raises :class:`~workbench.errors.NonFiniteError`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Union

import torch

from ..errors import ConfigError, NonFiniteError
from ..utils import resolve_device, resolve_dtype

#: Time integrators of :class:`PseudoSpectral1D`.
INTEGRATORS_1D = ("rk4", "etdrk4")


def _check_number(name: str, value: Any, strict: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (strict and v == 0):
        raise ConfigError(name, f"must be a finite number {'>' if strict else '>='} 0, got {value!r}")
    return v


class PseudoSpectral1D:
    """Base of the 1-D pseudo-spectral solvers (see the module docstring for the equations).

    Args:
        n: grid points (≥ 8).
        length: domain length L > 0.
        dt: time step h > 0.
        integrator: ``"rk4"`` (integrating-factor RK4) or ``"etdrk4"`` (Cox–Matthews / Kassam–Trefethen).
        dealias: apply the 2/3 rule.
        max_cfl: largest allowed :math:`h\\max|u|/\\Delta x`.
        device, dtype: where the state lives and its real precision.
    """

    #: name used in progress bars and messages
    name = "pde1d"

    def __init__(self, n: int, length: float, dt: float, integrator: str, dealias: bool = True,
                 max_cfl: float = 1.0, device: Union[str, torch.device] = "cpu",
                 dtype: Union[str, torch.dtype] = "float64"):
        if int(n) != n or int(n) < 8:
            raise ConfigError("n", f"must be an integer >= 8, got {n!r}")
        self.length = _check_number("length", length, strict=True)
        self.dt = _check_number("dt", dt, strict=True)
        self.max_cfl = _check_number("max_cfl", max_cfl, strict=True)
        if integrator not in INTEGRATORS_1D:
            raise ConfigError("integrator", f"got {integrator!r}; allowed values are: {', '.join(INTEGRATORS_1D)}")
        self.n, self.integrator, self.dealias = int(n), integrator, bool(dealias)
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        n, dev, rdt = self.n, self.device, self.dtype
        m = torch.fft.rfftfreq(n, d=1.0 / n, device=dev, dtype=rdt)
        #: angular wavenumbers 2π m / L, (n//2 + 1,)
        self.k = m * (2 * math.pi / self.length)
        self.mask = (m < n / 3.0).to(rdt) if self.dealias else torch.ones_like(m)
        if n % 2 == 0:  # the Nyquist mode has no well-defined derivative
            self.mask[-1] = 0.0
        #: i k (first-derivative symbol), complex
        self.ik = (1j * self.k).to(torch.complex128 if rdt == torch.float64 else torch.complex64)
        self.dx = self.length / n
        self.x = torch.arange(n, device=dev, dtype=rdt) * self.dx
        lin = self.linear_symbol(self.k.to(torch.float64))
        self.lin = lin.to(rdt)
        self._build_integrator(lin)

    # ---- the equation (subclasses) ----------------------------------------------------------------
    def linear_symbol(self, k: torch.Tensor) -> torch.Tensor:
        """Fourier symbol of the linear operator at angular wavenumbers ``k`` (float64, real)."""
        raise NotImplementedError

    def nonlinear(self, u_hat: torch.Tensor) -> torch.Tensor:
        """The dealiased nonlinear term (and forcing) in Fourier space, same shape as ``u_hat``."""
        raise NotImplementedError

    def params(self) -> Dict[str, Any]:
        """The generating parameters (for caches, exports and reports)."""
        return {"n": self.n, "length": self.length, "dt": self.dt, "integrator": self.integrator,
                "dealias": self.dealias}

    # ---- shared pieces ----------------------------------------------------------------------------
    def _build_integrator(self, lin: torch.Tensor) -> None:
        h = self.dt
        rdt = self.dtype
        self.e1 = torch.exp(lin * h).to(rdt)
        self.e2 = torch.exp(lin * h / 2).to(rdt)
        if self.integrator == "etdrk4":
            mpts = 32
            r = torch.exp(1j * math.pi * (torch.arange(1, mpts + 1, dtype=torch.float64) - 0.5) / mpts)
            z = (lin * h).to(torch.complex128)[:, None] + r.to(lin.device)[None, :]
            ez = torch.exp(z)
            self.q = (h * ((torch.exp(z / 2) - 1) / z).mean(-1).real).to(rdt)
            self.f1 = (h * ((-4 - z + ez * (4 - 3 * z + z ** 2)) / z ** 3).mean(-1).real).to(rdt)
            self.f2 = (h * ((2 + z + ez * (z - 2)) / z ** 3).mean(-1).real).to(rdt)
            self.f3 = (h * ((-4 - 3 * z - z ** 2 + ez * (4 - z)) / z ** 3).mean(-1).real).to(rdt)

    def to_hat(self, u: torch.Tensor) -> torch.Tensor:
        """Grid field ``(B, n)`` → dealiased Fourier state ``(B, n//2 + 1)``."""
        return torch.fft.rfft(u.to(device=self.device, dtype=self.dtype)) * self.mask

    def to_grid(self, u_hat: torch.Tensor) -> torch.Tensor:
        """Fourier state → grid field ``(B, n)``."""
        return torch.fft.irfft(u_hat, n=self.n)

    def derivative(self, u: torch.Tensor, order: int = 1) -> torch.Tensor:
        r"""Spectral derivative :math:`\partial_x^{p} u` of a grid field (``order`` = p ≥ 0; Nyquist mode dropped)."""
        if int(order) < 0:
            raise ConfigError("order", f"must be >= 0, got {order}")
        return torch.fft.irfft(torch.fft.rfft(u.to(self.dtype)) * self.ik ** int(order) * self._nyq_keep, n=self.n)

    @property
    def _nyq_keep(self) -> torch.Tensor:
        keep = torch.ones_like(self.k)
        if self.n % 2 == 0:
            keep[-1] = 0.0
        return keep

    def cfl(self, u_hat: torch.Tensor) -> torch.Tensor:
        """CFL number :math:`h\\max|u|/\\Delta x` over the batch (0-dim tensor)."""
        return self.to_grid(u_hat).abs().amax() * (self.dt / self.dx)

    def check_cfl(self, u_hat: torch.Tensor, t: float) -> None:
        """Raise :class:`CFLError` (or :class:`NonFiniteError`) when the state at time ``t`` is unsafe."""
        from .navier_stokes import CFLError

        c = float(self.cfl(u_hat))
        if not math.isfinite(c):
            raise NonFiniteError(f"{self.name}: NaN/Inf at t={t:.4g}; the run blew up (dt={self.dt:g} too large?)")
        if c > self.max_cfl:
            safe = self.dt * self.max_cfl / c
            raise CFLError(f"CFL number {c:.3g} exceeds max_cfl={self.max_cfl:g} at t={t:.4g} "
                           f"(max |u| {c * self.dx / self.dt:.3g}, dx={self.dx:.3g}); use dt <= {safe:.3g}")

    def step(self, v: torch.Tensor) -> torch.Tensor:
        """One step of the chosen integrator on the Fourier state ``v``."""
        nl = self.nonlinear
        if self.integrator == "rk4":
            h, e1, e2 = self.dt, self.e1, self.e2
            a = h * nl(v)
            b = h * nl(e2 * (v + 0.5 * a))
            c = h * nl(e2 * v + 0.5 * b)
            d = h * nl(e1 * v + e2 * c)
            return e1 * v + (e1 * a + 2.0 * e2 * (b + c) + d) / 6.0
        e1, e2, q = self.e1, self.e2, self.q
        nv = nl(v)
        a = e2 * v + q * nv
        na = nl(a)
        b = e2 * v + q * na
        nb = nl(b)
        c = e2 * a + q * (2.0 * nb - nv)
        nc = nl(c)
        return e1 * v + self.f1 * nv + 2.0 * self.f2 * (na + nb) + self.f3 * nc

    def simulate(self, u0: torch.Tensor, steps: int, record_every: int = 1, progress: bool = False) -> torch.Tensor:
        r"""Integrate ``steps`` steps from the grid field ``u0`` ``(B, n)``.

        Returns:
            ``(B, T, n)`` grid fields at steps ``0, r, 2r, …`` (``T = steps // r + 1``), in ``self.dtype``.
        """
        if not isinstance(u0, torch.Tensor) or u0.dim() != 2 or u0.shape[-1] != self.n:
            raise ConfigError("u0", f"must have shape (B, {self.n}), got {tuple(getattr(u0, 'shape', ()))}")
        if int(steps) < 0 or int(record_every) < 1:
            raise ConfigError("record_every", f"need steps >= 0 and record_every >= 1, got {steps}, {record_every}")
        v = self.to_hat(u0)
        self.check_cfl(v, 0.0)
        frames = [self.to_grid(v)]
        it = range(1, int(steps) + 1)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=self.name, leave=False)
        for i in it:
            v = self.step(v)
            if i % record_every == 0:
                self.check_cfl(v, i * self.dt)
                frames.append(self.to_grid(v))
        return torch.stack(frames, 1)

    def advection(self, u_hat: torch.Tensor) -> torch.Tensor:
        r"""The conservative advection term :math:`-\widehat{u u_x} = -\tfrac12 ik\,\widehat{u^2}`, dealiased."""
        u = self.to_grid(u_hat)
        return -0.5 * self.ik * torch.fft.rfft(u * u) * self.mask


def random_sines(x: torch.Tensor, length: float, batch: int, modes: int = 10, max_wavenumber: int = 3,
                 amplitude: float = 0.5, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Random smooth periodic starts :math:`u_0 = \sum_{j=1}^{J} A_j\sin(2\pi l_j x/L + \phi_j)`, ``(batch, n)``.

    :math:`A_j \sim U(-a, a)`, :math:`l_j \sim U\{1, …, l_{max}\}`, :math:`\phi_j \sim U(0, 2\pi)` (the
    KS initial conditions of PDE-Refiner / Brandstetter et al., with J = ``modes``, a = ``amplitude``).
    """
    if int(batch) < 1 or int(modes) < 1 or int(max_wavenumber) < 1:
        raise ConfigError("modes", f"batch, modes and max_wavenumber must be >= 1, got {batch}, {modes}, {max_wavenumber}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    shape = (int(batch), int(modes), 1)
    amp = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * float(amplitude)
    ell = torch.randint(1, int(max_wavenumber) + 1, shape, generator=g).to(torch.float64)
    phase = torch.rand(shape, generator=g, dtype=torch.float64) * 2 * math.pi
    xx = x.to(torch.float64).cpu()[None, None, :]
    u = (amp * torch.sin(2 * math.pi * ell * xx / float(length) + phase)).sum(1)
    return u.to(device=x.device, dtype=x.dtype)


def trajectories_1d(solver: "PseudoSpectral1D", u0: torch.Tensor, frames: int, frame_dt: float,
                    warmup: float = 0.0, progress: bool = False) -> Dict[str, torch.Tensor]:
    """``frames`` frames ``frame_dt`` apart after a discarded ``warmup``: ``{"u": (B, frames, n), "times": (frames,)}``."""
    r = frame_dt / solver.dt
    if abs(r - round(r)) > 1e-9 or round(r) < 1:
        raise ConfigError("frame_dt", f"must be a positive multiple of dt={solver.dt}, got {frame_dt}")
    if int(frames) < 1:
        raise ConfigError("frames", f"must be >= 1, got {frames}")
    r = int(round(r))
    warm = int(round(warmup / solver.dt))
    if warm > 0:
        u0 = solver.simulate(u0, warm, record_every=warm, progress=progress)[:, -1]
    u = solver.simulate(u0, (int(frames) - 1) * r, record_every=r, progress=progress)
    times = warm * solver.dt + torch.arange(int(frames), dtype=torch.float64) * (r * solver.dt)
    return {"u": u.cpu(), "times": times}


__all__ = ["PseudoSpectral1D", "INTEGRATORS_1D", "random_sines", "trajectories_1d"]

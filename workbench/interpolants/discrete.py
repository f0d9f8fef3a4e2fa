r"""A discrete-time VP diffusion (DDPM, Ho et al. 2020) made continuous in t: the interpolant a diffusers model was
trained with.

The model was trained at timesteps :math:`k = 0, \dots, T-1` with :math:`x_k = \sqrt{\bar\alpha_k}\,x_1 +
\sqrt{1-\bar\alpha_k}\,\xi`, :math:`\bar\alpha_k = \prod_{i\le k}(1-\beta_i)`. In the noise-to-signal ratio
:math:`\tilde\sigma_k = \sqrt{(1-\bar\alpha_k)/\bar\alpha_k} = e^{-\lambda_k}` we add the clean end
:math:`\tilde\sigma_{-1} = 0` and interpolate linearly in k (diffusers' ``interpolation_type="linear"``, used by
its Euler/Heun schedulers at fractional timesteps), so the log-SNR :math:`\lambda = -\log\tilde\sigma` is
monotone and exact at every training timestep. Our time is

.. math:: t = 1 - \frac{k + 1}{T}\quad(k = T(1-t) - 1),\qquad a(t) = \frac{1}{\sqrt{1+\tilde\sigma^2}},\quad
    \sigma(t) = \frac{\tilde\sigma}{\sqrt{1+\tilde\sigma^2}},

so t = 0 is the noisiest training step (k = T−1), t = 1 − 1/T is k = 0 and t = 1 is the clean data (σ = 0).
The derivatives are those of the piecewise-linear :math:`\tilde\sigma` (one-sided at the knots: the interval
below). The log-SNR inverse is exact (a search in the table) and raises outside
:math:`[\lambda_{T-1}, +\infty]`.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch

from .. import validation
from ..errors import ConfigError
from .base import Coefficients, TabulatedInterpolant, check_positive
from .registry import register

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
INTERPOLATIONS = ("linear", "cubic")


def make_betas(beta_schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    r"""DDPM betas (float64) as diffusers defines them: ``linear`` :math:`\beta_k` evenly spaced; ``scaled_linear``
    :math:`\sqrt{\beta_k}` evenly spaced (Stable Diffusion); ``squaredcos_cap_v2`` the iDDPM cosine schedule
    :math:`\beta_k = \min(1 - \bar\alpha(\tfrac{k+1}{T})/\bar\alpha(\tfrac kT), 0.999)`,
    :math:`\bar\alpha(s) = \cos^2(\tfrac{s + 0.008}{1.008}\tfrac\pi2)` (Nichol & Dhariwal 2021)."""
    T = num_train_timesteps
    if beta_schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if beta_schedule == "scaled_linear":
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float64) ** 2
    if beta_schedule == "squaredcos_cap_v2":
        def bar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor([min(1 - bar((i + 1) / T) / bar(i / T), 0.999) for i in range(T)], dtype=torch.float64)
    raise ConfigError("beta_schedule", f"got {beta_schedule!r}; allowed values are: {', '.join(BETA_SCHEDULES)}")


@register("discrete_vp", "ddpm_discrete", "diffusers_vp")
class DiscreteVP(TabulatedInterpolant):
    r"""The DDPM training table :math:`\bar\alpha_k` as an interpolant (see the module docstring).

    Args:
        beta_schedule, num_train_timesteps, beta_start, beta_end: diffusers' names for the table (ignored when
            ``alphas_cumprod`` is given).
        betas: the table's :math:`\beta_k` (diffusers' ``trained_betas``), used when ``alphas_cumprod`` is not given.
        alphas_cumprod: the table :math:`\bar\alpha_0, \dots, \bar\alpha_{T-1}` itself (e.g. a scheduler's own,
            so that a reproduction uses exactly its numbers); strictly decreasing in (0, 1].
        interpolation: between training timesteps, ``"linear"`` in :math:`\tilde\sigma` (diffusers' own, needed to
            reproduce its Euler/Heun at fractional timesteps; the coefficients have a kink at every timestep, which
            costs an adaptive solver ~200 evaluations per timestep at 1e-7) or ``"cubic"``: a natural cubic spline of
            :math:`\lambda` in k (C², checked monotone; smooth ODE for references and high-order solvers). Both are
            exact at the training timesteps; below k = 0 both are linear in :math:`\tilde\sigma` down to 0.
    """

    def __init__(self, beta_schedule: str = "linear", num_train_timesteps: int = 1000, beta_start: float = 0.0001,
                 beta_end: float = 0.02, betas: Optional[Sequence[float]] = None,
                 alphas_cumprod: Optional[Sequence[float]] = None, interpolation: str = "linear"):
        if interpolation not in INTERPOLATIONS:
            raise ConfigError("interpolation", f"got {interpolation!r}; allowed values are: {', '.join(INTERPOLATIONS)}")
        self.interpolation = interpolation
        validation.integer("num_train_timesteps", num_train_timesteps, 2)
        self.beta_schedule = beta_schedule
        self.num_train_timesteps = num_train_timesteps
        self.beta_start = check_positive("beta_start", beta_start)
        self.beta_end = check_positive("beta_end", beta_end)
        self.betas = None
        if alphas_cumprod is None and betas is not None:
            b = torch.as_tensor(betas, dtype=torch.float64).flatten()
            if b.numel() != num_train_timesteps or not bool(((b > 0) & (b < 1)).all()):
                raise ConfigError("betas", f"must be {num_train_timesteps} values in (0, 1), got {b.numel()} values "
                                           f"in [{float(b.min()):g}, {float(b.max()):g}]")
            self.betas = tuple(float(v) for v in b)
            alphas_cumprod = torch.cumprod(1.0 - b, 0)
        if alphas_cumprod is None:
            if beta_schedule not in BETA_SCHEDULES:
                raise ConfigError("beta_schedule", f"got {beta_schedule!r}; allowed values are: {', '.join(BETA_SCHEDULES)}")
            betas = make_betas(beta_schedule, num_train_timesteps, self.beta_start, self.beta_end)
            if not bool(((betas > 0) & (betas < 1)).all()):
                raise ConfigError("beta_end", f"betas must lie in (0, 1); got beta_start={beta_start}, beta_end={beta_end}")
            ac = torch.cumprod(1.0 - betas, 0)
            self.alphas_cumprod = None
        else:
            ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
            if ac.numel() != num_train_timesteps:
                raise ConfigError("alphas_cumprod", f"has {ac.numel()} entries but num_train_timesteps={num_train_timesteps}")
            if not bool(torch.isfinite(ac).all()) or not bool(((ac > 0) & (ac <= 1)).all()):
                raise ConfigError("alphas_cumprod", "must lie in (0, 1] (a zero-terminal-SNR table, alphas_cumprod = 0 "
                                                    "at the last step, has no finite noise-to-signal ratio there)")
            if not bool((ac[1:] < ac[:-1]).all()):
                raise ConfigError("alphas_cumprod", "must decrease strictly with the timestep")
            self.alphas_cumprod = tuple(float(v) for v in ac)
        nsr = torch.sqrt((1.0 - ac) / ac)
        self._nsr = torch.cat([torch.zeros(1, dtype=torch.float64), nsr])  # index j = k + 1; j = 0 is clean data
        self._on: Dict[torch.device, torch.Tensor] = {}
        if interpolation == "cubic":
            self._lam = -torch.log(nsr)  # λ at j = 1..T
            self._m = _natural_spline_second_derivatives(self._lam)
            w = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)[:, None]
            dl = self._spline_slope(w, self._lam[:-1], self._lam[1:], self._m[:-1], self._m[1:])
            if not bool((dl < 0).all()):
                raise ConfigError("interpolation", "the cubic spline of this table's log-SNR is not monotone; "
                                                   "use interpolation='linear'")

    # ---- the time map -----------------------------------------------------------------------------------------
    def timestep(self, t):
        """The model's (fractional) timestep :math:`k = T(1-t) - 1` at our time ``t``."""
        return self.num_train_timesteps * (1.0 - t) - 1.0

    def t_of_timestep(self, k):
        """Our time :math:`t = 1 - (k+1)/T` of the model's timestep ``k`` (``k = -1``: the clean end)."""
        return 1.0 - (k + 1.0) / self.num_train_timesteps

    @property
    def table(self) -> torch.Tensor:
        r""":math:`\bar\alpha_k`, k = 0..T−1 (float64)."""
        nsr = self._nsr[1:]
        return 1.0 / (1.0 + nsr * nsr)

    # ---- coefficients ------------------------------------------------------------------------------------------
    def _nsr_and_slope(self, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        table = self._on.get(t.device)
        if table is None:
            table = self._on[t.device] = self._nsr.to(t.device)
        T = self.num_train_timesteps
        j = T * (1.0 - t)
        idx = torch.floor(j).clamp(0, T - 1).long()
        lo, hi = table[idx], table[idx + 1]
        slope = hi - lo
        return lo + (j - idx) * slope, -T * slope  # σ̃(t), dσ̃/dt

    @staticmethod
    def _spline_slope(w, l0, l1, m0, m1):
        return (l1 - l0) + (-(3 * (1 - w) ** 2 - 1) * m0 + (3 * w ** 2 - 1) * m1) / 6.0

    def _cubic_nsr_and_slope(self, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        T = self.num_train_timesteps
        lam, m = self._lam.to(t.device), self._m.to(t.device)
        j = T * (1.0 - t)
        i = torch.floor(j - 1.0).clamp(0, T - 2).long()  # spline interval [i+1, i+2] in j, i.e. λ[i], λ[i+1]
        w = j - 1.0 - i
        l0, l1, m0, m1 = lam[i], lam[i + 1], m[i], m[i + 1]
        lw = (1 - w) * l0 + w * l1 + ((1 - w) ** 3 - (1 - w)) * m0 / 6.0 + (w ** 3 - w) * m1 / 6.0
        s = torch.exp(-lw)
        ds = T * s * self._spline_slope(w, l0, l1, m0, m1)  # dσ̃/dt = −σ̃ dλ/dj · dj/dt, dj/dt = −T
        s_lin, ds_lin = self._nsr_and_slope(t)
        below = j < 1.0  # between k = 0 and the clean end: linear in σ̃
        return torch.where(below, s_lin, s), torch.where(below, ds_lin, ds)

    def _tensor_coefficients(self, t: torch.Tensor) -> Coefficients:
        s, ds = self._cubic_nsr_and_slope(t) if self.interpolation == "cubic" else self._nsr_and_slope(t)
        a = torch.rsqrt(1.0 + s * s)
        a3 = a * a * a
        sig = s * a
        zero = torch.zeros_like(t)
        d_sig = a3 * ds
        d_a = -s * a3 * ds
        return Coefficients(sig, a, zero, d_sig, d_a, zero, a, d_a, sig, sig * d_sig)

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> Optional[torch.Tensor]:
        r"""Exact inverse: :math:`\tilde\sigma = e^{-\lambda}`, located in the table, linear within its interval
        (the cubic spline uses bisection)."""
        if self.interpolation == "cubic":
            return None
        table = self._nsr.to(lam.device)
        T = self.num_train_timesteps
        s = torch.exp(-lam)
        idx = (torch.searchsorted(table, s.contiguous(), right=True) - 1).clamp(0, T - 1)
        lo, hi = table[idx], table[idx + 1]
        j = idx + (s - lo) / (hi - lo)
        return 1.0 - j / T


def _natural_spline_second_derivatives(y: torch.Tensor) -> torch.Tensor:
    """Second derivatives of the natural cubic spline through ``y`` at unit spacing (Thomas algorithm, float64)."""
    n = y.numel()
    m = torch.zeros(n, dtype=torch.float64)
    if n < 3:
        return m
    rhs = (6.0 * (y[2:] - 2.0 * y[1:-1] + y[:-2])).tolist()
    k = n - 2
    c, d = [0.0] * k, [0.0] * k
    for i in range(k):  # tridiagonal (1, 4, 1)
        denom = 4.0 - (c[i - 1] if i else 0.0)
        c[i] = 1.0 / denom
        d[i] = (rhs[i] - (d[i - 1] if i else 0.0)) / denom
    out = [0.0] * k
    for i in reversed(range(k)):
        out[i] = d[i] - c[i] * (out[i + 1] if i + 1 < k else 0.0)
    m[1:-1] = torch.tensor(out, dtype=torch.float64)
    return m

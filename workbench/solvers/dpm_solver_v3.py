r"""DPM-Solver-v3 style multistep sampler with empirical model statistics (Zheng et al. 2023, eqs. 7–12).

Write the PF-ODE in λ as :math:`\tfrac{dx}{d\lambda} = (\tfrac{a'}{a} - l_\lambda)x - f`, with
:math:`f = \sigma\hat\varepsilon - l_\lambda x`. The empirical model statistics (EMS), per dimension, are

.. math::
    l_\lambda = E\big[\mathrm{diag}\,\sigma\nabla_x\hat\varepsilon\big],\qquad
    (s_\lambda, b_\lambda) = \arg\min E\big\|f^{(1)} - s_\lambda f - b_\lambda\big\|^2,

(:math:`f^{(1)} = df/d\lambda` along the ODE), estimated by a pilot run on a few hundred samples: the
Jacobian diagonal by Hutchinson probes :math:`E[v\odot J^\top v]`, :math:`f^{(1)}` by central differences along
an accurate pilot trajectory (DPM-Solver++ 3M on a fine uniform-λ grid). With
:math:`S(\lambda) = \int s`, :math:`L(\lambda) = \int l` and :math:`K(\lambda) = \int e^{-S}b`, the
transformed output :math:`g = e^{-(S(\lambda)-S(\lambda_s))}f - e^{S(\lambda_s)}(K(\lambda) - K(\lambda_s))`
is nearly constant in λ, and the exact solution

.. math::
    x_t = \frac{a_t}{a_s}e^{-(L_t-L_s)}x_s - a_t\int_{\lambda_s}^{\lambda_t}\frac{e^{-(L_t-L_\lambda)}}{a_\lambda}
    \Big[e^{S_\lambda - S_s}g_\lambda + e^{S_\lambda}(K_\lambda - K_s)\Big]d\lambda

is discretised with the Lagrange polynomial of :math:`g` through the last ``order`` evaluations. All
integrals are per-dimension, computed once per grid by Gauss–Legendre quadrature on the cached EMS, so a
step is ``x_t = A⊙x_s + C + Σ_j W_j⊙f_j``. Steps outside the EMS λ-range or touching λ = ±∞ fall back to
the first-order DDIM step. (The paper's pseudo-order and corrector are not implemented.)
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..models.field import Field
from .base import Exempt, Solver, Step, register
from .dpm_solver import DPMSolverPP
from .log_snr import LogSNRTable, check_order, ddim_coefficients, lagrange_basis, multistep_orders

_QX, _QW = np.polynomial.legendre.leggauss(24)
_QX, _QW = 0.5 * (_QX + 1.0), 0.5 * _QW


@dataclass(eq=False)
class EMS:
    """Cached empirical model statistics on a uniform λ grid (float64, CPU).

    Attributes:
        lam: ``(K,)`` λ nodes. l, s, b: ``(K, *shape)``. L, S, Kb: cumulative integrals ``∫l``, ``∫s``,
        ``∫e^{-S}b`` from ``lam[0]`` (trapezoid). pilot_nfe: model calls the pilot used (not part of any run's NFE).
    """

    lam: torch.Tensor
    l: torch.Tensor
    s: torch.Tensor
    b: torch.Tensor
    L: torch.Tensor
    S: torch.Tensor
    Kb: torch.Tensor
    pilot_nfe: int = 0

    def interp(self, name: str, lam: torch.Tensor) -> torch.Tensor:
        """Linear interpolation of a per-node table at λ values ``lam`` ``(Q,)`` → ``(Q, *shape)``."""
        tab = getattr(self, name)
        pos = (lam - self.lam[0]) / (self.lam[1] - self.lam[0])
        i0 = pos.floor().clamp(0, len(self.lam) - 2).long()
        w = (pos - i0).clamp(0.0, 1.0).reshape(-1, *([1] * (tab.dim() - 1)))
        return tab[i0] * (1 - w) + tab[i0 + 1] * w

    def save(self, path: str) -> None:
        """Store as safetensors."""
        from safetensors.torch import save_file

        save_file({k: getattr(self, k).contiguous() for k in ("lam", "l", "s", "b", "L", "S", "Kb")}, path)

    @staticmethod
    def load(path: str) -> "EMS":
        """Load from :meth:`save`'s file."""
        from safetensors.torch import load_file

        return EMS(**load_file(path))


def _cumtrapz(y: torch.Tensor, dx: float) -> torch.Tensor:
    out = torch.zeros_like(y)
    out[1:] = torch.cumsum(0.5 * (y[1:] + y[:-1]) * dx, dim=0)
    return out


def _smooth(v: torch.Tensor, width: float) -> torch.Tensor:
    k = int(3 * width) + 1
    ker = torch.exp(-0.5 * (torch.arange(-k, k + 1, dtype=torch.float64) / width) ** 2)
    out = torch.zeros_like(v)
    norm = torch.zeros(v.shape[0], dtype=torch.float64)
    n = v.shape[0]
    for j, w in zip(range(-k, k + 1), ker.tolist()):
        lo, hi = max(0, -j), min(n, n - j)
        out[lo:hi] += w * v[lo + j:hi + j]
        norm[lo:hi] += w
    return out / norm.reshape(-1, *([1] * (v.dim() - 1)))


def compute_ems(field: Field, x: torch.Tensor, t_start: float, t_end: float, n_lambda: int = 200,
                lambda_range: Tuple[float, float] = (-8.0, 8.0), n_probes: int = 8, seed: int = 0,
                smooth: float = 2.0, progress: bool = False) -> EMS:
    """Estimate the EMS by a pilot run from the start states ``x`` ``(B, ...)`` at ``t_start``.

    Args:
        field: the model (its counter is never reset; the pilot's count is stored in ``EMS.pilot_nfe``).
        x: pilot start states (a few hundred).
        t_start, t_end: the sampling interval; the EMS cover λ(t_start)…λ(t_end) clipped to ``lambda_range``.
        n_lambda: λ nodes of the EMS grid. n_probes: Hutchinson probes per node (states with more than 16
            entries; smaller ones use the exact diagonal). smooth: Gaussian smoothing width (in nodes) along λ.
    """
    I = field.interpolant
    lo = max(I.log_snr(float(t_start)), lambda_range[0])
    hi = min(I.log_snr(float(t_end)), lambda_range[1])
    if not hi > lo:
        raise ConfigError("lambda_range", f"empty EMS range [{lo}, {hi}]")
    lam = torch.linspace(lo, hi, n_lambda, dtype=torch.float64)
    t_nodes = I.t_from_log_snr(lam, float(t_start), float(t_end))
    if I.log_snr(float(t_start)) >= lo - 1e-12:
        t_nodes[0] = float(t_start)
    nfe0 = field.nfe  # the user's counter is read, never reset
    x = x.detach()
    if float(t_nodes[0]) > t_start:  # λ(t_start) was clipped: reach the first node accurately
        x = DPMSolverPP(3, lower_order_final=False).sample(
            field, x, 400, "uniform", float(t_start), float(t_nodes[0])).x
    gen = torch.Generator(device=x.device).manual_seed(seed)
    tab = LogSNRTable.build(I, t_nodes.tolist())
    fs, ls = [], []
    # the pilot trajectory through the λ nodes: DPM-Solver++ 3M (data prediction) through the plan executor
    pilot = DPMSolverPP(3, lower_order_final=False).stream(
        field, x, n_lambda - 1, grid=torch.as_tensor(tab.t, dtype=torch.float64))
    states = itertools.chain([x], (step.x for step in pilot))
    it = range(n_lambda)
    if progress:
        it = tqdm(it, desc="EMS pilot", leave=False)
    for k in it:
        xs = next(states).detach()
        sig = tab.sigma[k]
        xr = xs.detach().requires_grad_(True)
        with torch.enable_grad():
            eps = field.predict(xr, tab.t[k]).noise
            y = sig * eps
            diag = torch.zeros_like(xr)
            exact = xr[0].numel() <= 16  # small states: the exact diagonal (one VJP per dimension)
            n_vec = xr[0].numel() if exact else n_probes
            for p in range(n_vec):
                if exact:
                    v = torch.zeros_like(xr).reshape(xr.shape[0], -1)
                    v[:, p] = 1.0
                    v = v.reshape(xr.shape)
                else:
                    v = torch.randint(0, 2, xr.shape, generator=gen, device=xr.device).to(xr.dtype) * 2 - 1
                (jt_v,) = torch.autograd.grad(y, xr, v, retain_graph=p < n_vec - 1)
                diag = diag + v * jt_v
        diag = diag if exact else diag / n_probes
        lk = diag.mean(0).detach()
        ls.append(lk)
        yk = y.detach()
        fs.append(yk - lk * xs)
    F = torch.stack(fs).to(torch.float64)               # (K, B, ...)
    dlam = float(lam[1] - lam[0])
    F1 = torch.gradient(F, spacing=dlam, dim=0)[0]      # df/dλ along the trajectory (2nd-order differences)
    mf, mf1 = F.mean(1), F1.mean(1)
    var = ((F - mf[:, None]) ** 2).mean(1)
    cov = ((F - mf[:, None]) * (F1 - mf1[:, None])).mean(1)
    s = cov / var.clamp_min(1e-12)
    b = mf1 - s * mf
    lt = torch.stack(ls).to(torch.float64)
    if smooth > 0:  # Gaussian smoothing along λ: the extrapolated g must be smooth in λ
        lt, s, b = (_smooth(v, smooth) for v in (lt, s, b))
    L, S = _cumtrapz(lt, dlam), _cumtrapz(s, dlam)
    Kb = _cumtrapz(torch.exp(-S) * b, dlam)
    return EMS(lam, lt.cpu(), s.cpu(), b.cpu(), L.cpu(), S.cpu(), Kb.cpu(), field.nfe - nfe0)


@register("dpm_solver_v3", "dpmv3", "dpm_v3")
class DPMSolverV3(Solver):
    """DPM-Solver-v3 multistep predictor with EMS; 1 NFE/step. Attach statistics with :meth:`fit` or ``ems=``.

    Args:
        order: number of points of the g-extrapolation (1–3).
        lower_order_final: as DPM-Solver++.
        ems: an :class:`EMS` (else :meth:`fit` must be called; statistics are cached on the instance).
    """

    evals_per_step = 1
    needs_gaussian = True
    order_checks = Exempt("needs pilot statistics: order 3 with zero statistics",
                          "tests/solvers/test_multistep_orders.py::test_dpm_solver_v3_with_zero_statistics_is_third_order")

    def __init__(self, order: int = 3, lower_order_final: bool = True, ems: Optional[EMS] = None):
        self.order = check_order(order, (1, 2, 3))
        self.lower_order_final = bool(lower_order_final)
        self.ems = ems

    def fit(self, field: Field, x: torch.Tensor, t_start: float = 0.0, t_end: float = 1.0, **kw) -> "DPMSolverV3":
        """Compute and cache the EMS for ``field`` from pilot states ``x`` (see :func:`compute_ems`)."""
        return type(self)(self.order, self.lower_order_final, compute_ems(field, x, t_start, t_end, **kw))

    @property
    def needs_pilot(self) -> bool:
        """True until the EMS are attached."""
        return self.ems is None

    def prepare(self, field: Field, x_pilot: torch.Tensor, t_start: float = 0.0,
                t_end: float = 1.0) -> "DPMSolverV3":
        """This solver with EMS estimated from ``x_pilot`` (:meth:`fit`) when it has none, else ``self``."""
        return self.fit(field, x_pilot, t_start, t_end) if self.ems is None else self

    def _in_range(self, lam: float) -> bool:
        e = self.ems
        return math.isfinite(lam) and float(e.lam[0]) - 1e-9 <= lam <= float(e.lam[-1]) + 1e-9

    def plan(self, tab: LogSNRTable, interpolant, device, dtype):
        e = self.ems
        n = len(tab.t) - 1
        ok = [self._in_range(v) for v in tab.lam]
        orders = multistep_orders(tab, self.order, self.lower_order_final, "dpm")
        plans: List[tuple] = []
        run = 0
        for i in range(n):
            run = run + 1 if ok[i] else 0
            k = min(orders[i], run)
            if not (ok[i] and ok[i + 1]) or k < 1:
                cx, cd = ddim_coefficients(tab, i, i + 1)
                plans.append(("ddim", 1, cx, cd))
                continue
            ls, lt = tab.lam[i], tab.lam[i + 1]
            q = torch.tensor(ls + (lt - ls) * _QX, dtype=torch.float64)
            wq = torch.tensor((lt - ls) * _QW, dtype=torch.float64)
            a_q = interpolant.coefficients(interpolant.t_from_log_snr(q, tab.t[i], tab.t[i + 1])).signal
            one = torch.tensor([ls, lt], dtype=torch.float64)
            Ls, Lt = e.interp("L", one)
            Ss, _ = e.interp("S", one)
            Ks, _ = e.interp("Kb", one)
            Lq, Sq, Kq = e.interp("L", q), e.interp("S", q), e.interp("Kb", q)
            shp = (-1, *([1] * (Lq.dim() - 1)))
            w = torch.exp(-(Lt - Lq)) / a_q.reshape(shp)                       # (Q, *shape)
            A = (tab.a[i + 1] / tab.a[i]) * torch.exp(-(Lt - Ls))
            C = -tab.a[i + 1] * (wq.reshape(shp) * w * torch.exp(Sq) * (Kq - Ks)).sum(0)
            nodes = [tab.lam[i - j] for j in range(k)]
            terms = []
            for j, lj in enumerate(nodes):
                ell = lagrange_basis(q, nodes, j)
                Wj = -tab.a[i + 1] * (wq.reshape(shp) * w * torch.exp(Sq - Ss) * ell.reshape(shp)).sum(0)
                lj_t = torch.tensor([lj], dtype=torch.float64)
                Ej = torch.exp(-(e.interp("S", lj_t)[0] - Ss))
                Fj = torch.exp(Ss) * (e.interp("Kb", lj_t)[0] - Ks)
                C = C - Wj * Fj
                terms.append((j, (Wj * Ej).to(device=device, dtype=dtype)))
            plans.append(("v3", k, A.to(device=device, dtype=dtype), C.to(device=device, dtype=dtype), terms))
        return plans

    def iterate(self, field, x, grid, generator=None):
        if self.ems is None:
            raise ConfigError("ems", "dpm_solver_v3 needs empirical model statistics: call solver.fit(field, x_pilot, "
                                     "t_start, t_end) or pass ems=")
        ts = [float(v) for v in grid.tolist()]
        tab = LogSNRTable.build(field.interpolant, ts)
        plans = self.plan(tab, field.interpolant, x.device, x.dtype)
        l_nodes = self.ems.interp("l", torch.tensor([v if math.isfinite(v) else 0.0 for v in tab.lam],
                                                    dtype=torch.float64)).to(device=x.device, dtype=x.dtype)
        hist: List[Optional[torch.Tensor]] = []
        for i in range(len(ts) - 1):
            pred = field.predict(x, ts[i])
            p = plans[i]
            if self._in_range(tab.lam[i]):
                eps = pred.noise
                hist.append(torch.addcmul(eps * tab.sigma[i], l_nodes[i], x, value=-1.0))  # f = σε − l⊙x
            else:
                hist.append(None)
            if len(hist) > 4:
                del hist[0]
            if p[0] == "ddim":
                _, order, cx, cd = p
                x = torch.add(x * cx, pred.data, alpha=cd)
            else:
                _, order, A, C, terms = p
                out = torch.addcmul(C, A, x)
                for j, W in terms:
                    out = out.addcmul_(W, hist[-1 - j])
                x = out
            yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, order)

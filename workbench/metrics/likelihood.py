r"""Log-likelihood through the probability-flow ODE (instantaneous change of variables; Chen et al. 2018,
Grathwohl et al. 2019 "FFJORD", Song et al. 2021 App. D).

Along :math:`\dot x = b(t, x)` the log-density obeys :math:`\frac{d}{dt}\log\rho_t(x_t) = -\nabla\!\cdot b(t, x_t)`, so
integrating the augmented system backwards from the data time :math:`t_1` to the base time :math:`t_0`,

.. math::
    \frac{d}{dt}\begin{pmatrix} x \\ \ell \end{pmatrix} = \begin{pmatrix} b(t, x) \\ \nabla\!\cdot b(t, x)\end{pmatrix},
    \quad x(t_1) = x_{data},\ \ell(t_1) = 0 \quad\Longrightarrow\quad
    \log\rho_{t_1}(x_{data}) = \log\rho_{t_0}(x(t_0)) + \ell(t_0).

The divergence is exact (``method="exact"``: one reverse-mode pass per dimension, for small dimension) or the
Hutchinson estimate :math:`\nabla\!\cdot b \approx \frac1P\sum_p \epsilon_p^\top (\partial b/\partial x)\,\epsilon_p` with
Rademacher or Gaussian probes held fixed along the path (``method="hutchinson"``, ``n_probes`` = P). Because the
path does not depend on the probes, the Hutchinson log-likelihood is unbiased; its per-sample standard error is
reported. Integration: fixed-step Runge–Kutta (the tableaus of :mod:`workbench.solvers.runge_kutta`) or adaptive
Dormand–Prince 5(4) (the tableau of :mod:`workbench.solvers.dopri5`) with error control on :math:`(x, \ell)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import torch

from ..errors import BudgetExceededError, ConfigError, NonFiniteError
from ..interpolants.base import check_positive
from ..models.field import Field, RunField, as_field

METHODS = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")
FIXED = ("euler", "heun", "midpoint", "rk4")


@dataclass
class LikelihoodResult:
    """Per-sample log-likelihood and the cost of computing it.

    Attributes:
        log_prob: :math:`\\log\\rho_{t_1}(x)` ``(B,)`` in nats.
        nll_per_dim: :math:`-\\log\\rho/D` ``(B,)``; ``bits_per_dim`` the same in bits.
        log_prob_base: :math:`\\log\\rho_{t_0}(x(t_0))` ``(B,)``; ``delta``: :math:`\\ell(t_0)` ``(B,)``.
        x_base: the states at ``t_base``.
        nfe: model calls (forward); ``vjp``: reverse-mode passes for the divergence.
        steps, rejected: accepted and rejected steps.
        method, n_probes: the divergence estimator.
    """

    log_prob: torch.Tensor
    nll_per_dim: torch.Tensor
    bits_per_dim: torch.Tensor
    log_prob_base: torch.Tensor
    delta: torch.Tensor
    x_base: torch.Tensor
    nfe: int
    vjp: int
    steps: int
    rejected: int
    method: str
    n_probes: int

    def mean_nll_per_dim(self) -> float:
        """Average NLL in nats per dimension."""
        return float(self.nll_per_dim.mean())




def gaussian_log_prob(x: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """:math:`\\log N(x; 0, \\mathrm{std}^2 I)` per sample ``(B,)``."""
    d = x[0].numel()
    xf = x.reshape(x.shape[0], -1)
    return -0.5 * (xf * xf).sum(1) / std ** 2 - d * math.log(std) - 0.5 * d * math.log(2 * math.pi)


class _Augmented:
    """``(t, x) -> (b, div b)`` with the chosen divergence estimator and counters."""

    def __init__(self, field: Field, method: str, probes: Optional[torch.Tensor]):
        self.field, self.method, self.probes, self.vjp = field, method, probes, 0

    def __call__(self, t: float, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            v = self.field.velocity(xg, t)
            B = x.shape[0]
            if self.method == "exact":
                vf = v.reshape(B, -1)
                div = torch.zeros(B, dtype=x.dtype, device=x.device)
                D = vf.shape[1]
                for i in range(D):
                    g = torch.autograd.grad(vf[:, i].sum(), xg, retain_graph=i < D - 1)[0]
                    div = div + g.reshape(B, -1)[:, i]
                self.vjp += D
            else:
                P = self.probes.shape[0]
                div = torch.zeros(B, dtype=x.dtype, device=x.device)
                for p in range(P):
                    eps = self.probes[p]
                    g = torch.autograd.grad((v * eps).sum(), xg, retain_graph=p < P - 1)[0]
                    div = div + (g * eps).reshape(B, -1).sum(1)
                div = div / P
                self.vjp += P
        return v.detach(), div.detach()


def _rk_stages(f, t, x, l, h, c, a, first=None):
    ks = []
    for i in range(len(c)):
        if i == 0 and first is not None:
            ks.append(first)
            continue
        xi, li = x, l
        for aij, (kx, kl) in zip(a[i], ks):
            if aij != 0.0:
                xi = xi + (h * aij) * kx
                li = li + (h * aij) * kl
        ks.append(f(t + c[i] * h, xi))
    return ks


def _combine(x, l, h, w, ks):
    for wi, (kx, kl) in zip(w, ks):
        if wi != 0.0:
            x = x + (h * wi) * kx
            l = l + (h * wi) * kl
    return x, l


def log_likelihood(field: Any, x: torch.Tensor, method: str = "exact", n_probes: int = 1, probe: str = "rademacher",
                   solver: str = "dopri5", nfe: int = 100_000, rtol: float = 1e-6, atol: float = 1e-6,
                   t_data: float = 1.0, t_base: float = 0.0,
                   base_log_prob: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                   generator: Optional[torch.Generator] = None) -> LikelihoodResult:
    """Log-density of ``x`` under the flow of ``field`` (a :class:`Field` or a ``Predictor``).

    Args:
        x: points ``(B, ...)`` at ``t_data``.
        method: ``exact`` (autograd trace; cost ∝ dimension) or ``hutchinson``.
        n_probes, probe: Hutchinson probes per sample and their law (``rademacher`` or ``gaussian``).
        solver: ``dopri5`` (adaptive; ``rtol``/``atol``; ``nfe`` is its maximum) or a fixed-step
            ``euler``/``heun``/``midpoint``/``rk4`` using ``nfe // stages`` uniform steps.
        t_data, t_base: the interval (integrated from ``t_data`` down to ``t_base``). Models predicting the
            score or a denoiser may need ``t_data < 1`` where the conversion to velocity is singular.
        base_log_prob: :math:`\\log\\rho_{t_0}`; default :math:`N(0, \\sigma(t_0)^2 I)`, valid when the signal
            coefficient vanishes at ``t_base`` (e.g. linear, trig, SB interpolants at ``t_base = 0``).
        generator: RNG of the Hutchinson probes.

    Raises:
        ConfigError: bad arguments, or no default base density for this interpolant at ``t_base``.
        NonFiniteError: the augmented state became NaN/Inf.
        BudgetExceededError: dopri5 needed more than ``nfe`` evaluations.
    """
    f = as_field(field)
    if method not in METHODS:
        raise ConfigError("method", f"got {method!r}; allowed values are: {', '.join(METHODS)}")
    if probe not in PROBES:
        raise ConfigError("probe", f"got {probe!r}; allowed values are: {', '.join(PROBES)}")
    if solver not in FIXED + ("dopri5",):
        raise ConfigError("solver", f"got {solver!r}; allowed values are: {', '.join(FIXED + ('dopri5',))}")
    if not (0.0 <= t_base < t_data <= 1.0):
        raise ConfigError("t_data", f"need 0 <= t_base < t_data <= 1, got t_base={t_base}, t_data={t_data}")
    I = f.interpolant
    if base_log_prob is None:
        c = I.coefficients(float(t_base))
        if not I.gaussian_base or abs(c.signal) > 1e-12 or c.sigma <= 0:
            raise ConfigError("base_log_prob", f"the {I.name!r} interpolant's law at t_base={t_base} is not N(0, σ²I) "
                                               "(its signal coefficient is not 0); pass base_log_prob")
        std = float(c.sigma)
        base_log_prob = lambda z: gaussian_log_prob(z, std)  # noqa: E731
    probes = None
    if method == "hutchinson":
        n_probes = int(n_probes)
        if n_probes < 1:
            raise ConfigError("n_probes", f"must be >= 1, got {n_probes}")
        shape = (n_probes, *x.shape)
        if probe == "rademacher":
            probes = torch.randint(0, 2, shape, generator=generator).to(device=x.device, dtype=x.dtype) * 2 - 1
        else:
            probes = torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device)
    f = RunField(f)  # this computation's own call count
    aug = _Augmented(f, method, probes)
    l0 = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    if solver == "dopri5":
        xb, lb, steps, rej = _dopri5(aug, x.detach(), l0, t_data, t_base, check_positive("rtol", rtol),
                                     check_positive("atol", atol), int(nfe))
    else:
        xb, lb, steps = _fixed(aug, x.detach(), l0, t_data, t_base, solver, int(nfe))
        rej = 0
    if not (torch.isfinite(xb).all() and torch.isfinite(lb).all()):
        raise NonFiniteError("log_likelihood: the augmented ODE state became NaN/Inf; try t_data < 1 or tighter tolerances")
    lp_base = base_log_prob(xb)
    lp = lp_base + lb
    D = x[0].numel()
    nll = -lp / D
    return LikelihoodResult(lp, nll, nll / math.log(2), lp_base, lb, xb, f.nfe, aug.vjp, steps, rej, method,
                            0 if probes is None else int(probes.shape[0]))


def _fixed(f, x, l, t0, t1, solver, nfe):
    from ..solvers import SOLVERS

    cls = SOLVERS.cls(solver)
    c, a, w = cls.tableau
    n = nfe // len(c)
    if n < 1:
        raise ConfigError("nfe", f"{solver} needs nfe >= {len(c)}, got {nfe}")
    ts = torch.linspace(t0, t1, n + 1, dtype=torch.float64).tolist()
    ts[0], ts[-1] = t0, t1
    for i in range(n):
        h = ts[i + 1] - ts[i]
        ks = _rk_stages(f, ts[i], x, l, h, c, a)
        x, l = _combine(x, l, h, w, ks)
    return x, l, n


def _dopri5(f, x, l, t0, t1, rtol, atol, max_nfe):
    from ..solvers.dopri5 import DP_A as _A, DP_B5 as _B5, DP_C as _C, DP_E as _E

    direction = -1.0 if t1 < t0 else 1.0
    span = abs(t1 - t0)
    k1 = f(t0, x)
    used = 1
    h = 0.05 * span
    t, steps, rejected = t0, 0, 0
    while direction * (t1 - t) > 1e-14:
        h = min(h, abs(t1 - t))
        hs = direction * h
        if used + 6 > max_nfe:
            raise BudgetExceededError(f"nfe: dopri5 needed more than {max_nfe} evaluations for the likelihood")
        ks = _rk_stages(f, t, x, l, hs, _C, _A, first=k1)
        used += 6
        x5, l5 = _combine(x, l, hs, _B5, ks)
        ex = sum((hs * e) * k[0] for e, k in zip(_E, ks) if e != 0.0)
        el = sum((hs * e) * k[1] for e, k in zip(_E, ks) if e != 0.0)
        sx = atol + rtol * torch.maximum(x.abs(), x5.abs())
        sl = atol + rtol * torch.maximum(l.abs(), l5.abs())
        sq = ((ex / sx) ** 2).sum() + ((el / sl) ** 2).sum()
        err = math.sqrt(float(sq) / (x.numel() + l.numel()))
        if not math.isfinite(err):
            err = math.inf
        if err <= 1.0:
            x, l, k1 = x5, l5, ks[-1]
            t = t1 if abs(t1 - (t + hs)) < 1e-14 else t + hs
            steps += 1
        else:
            rejected += 1
            if h < 1e-12:
                raise NonFiniteError(f"log_likelihood: dopri5 step size underflow at t={t:.6g}")
        h = h * (10.0 if err == 0.0 else min(10.0, max(0.2, 0.9 * err ** -0.2)))
    return x, l, steps, rejected


__all__ = ["log_likelihood", "LikelihoodResult", "gaussian_log_prob", "METHODS"]

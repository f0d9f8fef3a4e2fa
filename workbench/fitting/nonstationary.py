r"""Fit a non-stationary solver to a model from a pilot run (bespoke non-stationary solvers, Shaul et al. 2024).

Starting from the exact non-stationary form of a solver (:func:`~workbench.solvers.nonstationary.linearize`),
:math:`y_{j+1} = a_{j+1}x_0 + \sum_{k\le j} b_{j+1,k}K(y_k,\tau_k)`, all of its numbers are tuned by autograd
through the model to minimise the mean L2 distance to the pilot's reference (:class:`~workbench.fitting.Pilot`)

.. math::
    \frac1M\sum_{m=1}^{M}\big\|y_n^{(m)}(\theta) - x^{(m)}_{\mathrm{ref}}(t_{end})\big\|_2 .

Parameterisation (:class:`NSParameters`; :math:`\theta = 0` is the starting solver exactly). With
:math:`u = (t - t_{start})/(t_{end} - t_{start})` and the distinct starting times :math:`0 = u_0 < \dots < u_S = 1`:

* times: a monotone piecewise-linear warp :math:`\phi` of :math:`[0, 1]` with knots
  :math:`\phi(u_i) = \sum_{l\le i}\mathrm{softmax}(\log\Delta u + \theta_\phi)_l` (increments through a softmax:
  monotone, endpoints exact, evaluations sharing a time keep sharing it), plus a small free offset per evaluation
  (scale 2 % of the interval), :math:`\tau_j = \phi(u^0_j) + 0.02\,\theta_{\delta,j}`;
* weights as corrections to the starting solver, carried along by the warp: for velocity weights (which have the
  unit of time) :math:`b_{j+1,k} = r_k\,(b^0_{j+1,k} + s_b\theta_{b,j+1,k})` with :math:`r_k` the stretch of
  the warped interval of evaluation :math:`k` (the one holding the midpoint of :math:`\tau_{k-1}, \tau_k`; so a warp alone is the starting method on the warped grid),
  :math:`a_{j+1} = a^0_{j+1} + s_a\theta_{a,j+1}`; :math:`s_a, s_b` are the mean size of the starting numbers.

The optimiser is L-BFGS with a strong-Wolfe line search from the start (optionally Adam first), stopped early when
the held-out loss has not improved for ``patience`` evaluations. The fit is kept by
:func:`~workbench.fitting.keep_if_better`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any, List, Optional, Tuple, Union

import torch

from .. import validation
from ..errors import ConfigError
from ..models.field import Field
from ..solvers.base import SOLVERS, Solver
from ..solvers.nonstationary import NSCoefficients, linearize
from .pilot import Pilot, PilotModel, check_holdout, check_pilot, mean_l2
from .result import NSFit
from .selection import Search, StopSearch, keep_if_better

_OFFSET = 0.02  # scale of the per-evaluation time offsets (fraction of the interval)


class NSParameters:
    """The free numbers of a non-stationary solver around a starting :class:`NSCoefficients` (module docstring).

    Args:
        c: the starting coefficients. offsets: fit a free time offset per evaluation (else the warp only).
    """

    def __init__(self, c: NSCoefficients, dtype: torch.dtype = torch.float64, device: Any = "cpu",
                 offsets: bool = True):
        self.c, self.n, self.offsets = c, c.n, bool(offsets)
        kw = dict(dtype=dtype, device=device)
        n = c.n
        self.span = c.t_end - c.t_start
        u = (torch.tensor(c.times, **kw) - c.t_start) / self.span
        uc = u.clamp(0.0, 1.0)
        self.u_out = u - uc  # a start evaluating outside the interval keeps its excess
        knots = torch.unique(torch.cat([uc, torch.tensor([0.0, 1.0], **kw)]))
        self.S = len(knots) - 1
        self.knots = knots
        # evaluation k belongs to the interval holding the midpoint of (τ_{k-1}, τ_k) (of (τ_0, τ_1) for k = 0):
        # Heun's second stage at t_{i+1} to step i, the next step's first stage at the same time to step i + 1
        prev = torch.cat([uc[1:2] if n > 1 else uc.new_ones(1), uc[:-1]])
        self.idx = (torch.searchsorted(knots, 0.5 * (uc + prev), right=True) - 1).clamp(0, self.S - 1)
        self.h0 = knots.diff()
        self.frac = (uc - knots[self.idx]) / self.h0[self.idx]
        self.a0 = torch.tensor(c.a, **kw)
        b0 = torch.zeros(n, n, **kw)
        for j, row in enumerate(c.b):
            b0[j, : j + 1] = torch.tensor(row, **kw)
        self.b0 = b0
        rows, cols = torch.tril_indices(n, n, device=device)
        self.lin = rows * n + cols
        self.sa = 0.1 * max(float(self.a0.abs().mean()), 1e-3)
        self.sb = max(float(b0[rows, cols].abs().mean()), 1e-6)
        self.stretch = c.kind == "velocity"
        self.sizes = (self.S, n if self.offsets else 0, n, len(self.lin))
        self.size = sum(self.sizes)

    def zeros(self) -> torch.Tensor:
        """The start, :math:`\\theta = 0`."""
        return torch.zeros(self.size, dtype=self.a0.dtype, device=self.a0.device)

    def unpack(self, theta: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor, List[torch.Tensor]]:
        """``(times τ_j (0-dim tensors), a, rows of b)`` of ``theta`` (differentiable)."""
        n, (S, no, _, nb) = self.n, self.sizes
        th_w, th_o, th_a, th_b = theta.split(self.sizes)
        h = torch.softmax(torch.log(self.h0) + th_w, 0)
        kn = torch.cat([h.new_zeros(1), torch.cumsum(h, 0)])
        u = kn[self.idx] + self.frac * h[self.idx] + self.u_out
        if no:
            u = u + _OFFSET * th_o
        taus = self.c.t_start + self.span * u.clamp(min(0.0, float(self.u_out.min())),
                                                    max(1.0, 1.0 + float(self.u_out.max())))
        a = self.a0 + self.sa * th_a
        b = self.b0 + self.sb * torch.zeros(n * n, dtype=theta.dtype, device=theta.device).index_put(
            (self.lin,), th_b).reshape(n, n)
        if self.stretch:
            b = b * (h / self.h0)[self.idx][None, :]
        return list(taus.unbind()), a, [b[j, : j + 1] for j in range(n)]

    def coefficients(self, theta: torch.Tensor, source: str) -> NSCoefficients:
        """The :class:`NSCoefficients` of ``theta``."""
        with torch.no_grad():
            taus, a, rows = self.unpack(theta.detach())
        return NSCoefficients(times=[float(t) for t in taus], a=a.tolist(), b=[r.tolist() for r in rows],
                              kind=self.c.kind, t_start=self.c.t_start, t_end=self.c.t_end, source=source,
                              order=self.c.order)


def ns_forward(model: Union[PilotModel, Field], x: torch.Tensor, taus: List[torch.Tensor], a: torch.Tensor,
               rows: List[torch.Tensor], kind: str) -> torch.Tensor:
    r"""Differentiable run of a non-stationary solver, :math:`y_{j+1} = a_{j+1}x_0 + \sum_k b_{j+1,k}K_k`
    (calls counted when ``model`` is a :class:`PilotModel`)."""
    pm = model if isinstance(model, PilotModel) else PilotModel(model)
    outs: List[torch.Tensor] = []
    y = x
    for j in range(len(taus)):
        outs.append(pm.evaluate(y, taus[j], kind))
        y = a[j] * x
        for k, o in enumerate(outs):
            y = y + rows[j][k] * o
    return y


def _start(field: Field, nfe: int, init, schedule, t_start, t_end, grid, kind) -> NSCoefficients:
    if isinstance(init, (NSCoefficients, dict)):
        c0 = NSCoefficients.from_dict(init)
        # the solver's own NFE and interval checks (ConfigError naming nfe or t_start/t_end)
        SOLVERS.get("nonstationary", coefficients=c0).make_grid(field, nfe, t_start=t_start, t_end=t_end)
        return c0
    if init is None:
        init = "heun" if nfe % 2 == 0 else "euler"
    c0 = linearize(init, field, nfe, schedule=schedule, t_start=t_start, t_end=t_end, grid=grid, kind=kind)
    if c0.n != nfe:
        raise ConfigError("init", f"{c0.source} makes {c0.n} model calls, not nfe={nfe}; pick an NFE it uses "
                                  f"fully or a one-call-per-step start (euler, dpmpp_2m, unipc, deis)")
    return c0


def _count(name: str, v: object) -> int:
    return validation.integer(name, v, 0)


def fit_nonstationary(field: Field, x_pilot: Optional[torch.Tensor], nfe: int,
                      init: Union[str, Solver, NSCoefficients, dict, None] = None, schedule: Any = "uniform",
                      t_start: float = 0.0, t_end: float = 1.0, grid: Optional[torch.Tensor] = None,
                      kind: Optional[str] = None, reference: Optional[torch.Tensor] = None, holdout: float = 0.25,
                      adam_steps: int = 0, lbfgs_steps: int = 800, lr: float = 0.02, select: str = "fit",
                      check_every: int = 25, patience: Optional[int] = 300, max_seconds: Optional[float] = None,
                      offsets: bool = True, progress: bool = False, pilot: Optional[Pilot] = None) -> NSFit:
    """Tune a non-stationary solver with ``nfe`` evaluations to the model behind ``field`` (module docstring).

    Args:
        field: the model; it must be differentiable in its input and time (any torch model is).
        x_pilot: pilot start states ``(M, ...)`` at ``t_start`` (not the states you evaluate on).
        nfe: the number of model evaluations of the solver.
        init: the starting solver: a registry name or :class:`Solver` (linearised on ``schedule``/``grid``) or
            :class:`NSCoefficients` (then ``schedule``, ``grid``, ``kind`` are not used). ``None``: Heun for an
            even ``nfe``, Euler for an odd one.
        kind: the prediction kind the weights multiply (see :func:`linearize`).
        reference: end states of an accurate PF-ODE solution from ``x_pilot`` (the exact map when there is one);
            ``None``: the model's own Dormand–Prince solution, computed once.
        holdout: fraction of the pilot kept aside (keep-if-better check and early stopping; 0 disables both).
        adam_steps / lbfgs_steps: objective evaluations of each stage (Adam with a cosine step ``lr`` on the
            scaled parameters, then L-BFGS; the default is L-BFGS only).
        select: ``"fit"`` returns the best point on the fitting part, ``"holdout"`` the best held-out checkpoint
            (every ``check_every`` evaluations; its reported held-out loss is then no longer an unbiased check).
        patience: stop when the held-out loss has not improved for this many evaluations (``None``: never).
        max_seconds: wall-time budget of the optimiser (``None``: none).
        offsets: fit a free time per evaluation on top of the monotone warp.
        pilot: a prebuilt :class:`Pilot` (then ``x_pilot``, ``reference``, ``holdout``, ``t_start``/``t_end``'s
            reference are taken from it).

    Raises:
        ConfigError: bad pilot, holdout, iteration counts, or starting coefficients for another NFE/interval.
    """
    if not isinstance(field, Field):
        raise ConfigError("field", f"must be a Field, got {type(field).__name__}")
    adam_steps, lbfgs_steps = _count("adam_steps", adam_steps), _count("lbfgs_steps", lbfgs_steps)
    lr = validation.number("lr", lr, above=0.0)
    if pilot is None:
        check_pilot(x_pilot)
        if select == "holdout" and not check_holdout(holdout):
            raise ConfigError("select", "'holdout' needs a held-out part: set holdout > 0")
        check_holdout(holdout)
    tic = time.perf_counter()
    c0 = _start(field, nfe, init, schedule, t_start, t_end, grid, kind)
    if pilot is None:
        pilot = Pilot.build(field, x_pilot, t_start, t_end, reference, holdout)
    pilot.check_interval(t_start, t_end)
    model = pilot.model(field)
    (xf, rf), (xh, rh) = pilot.fit, pilot.held
    pk = NSParameters(c0, xf.dtype, xf.device, offsets)
    pilot.warn_if_small(pk.size, f"fit_nonstationary(nfe={nfe})")

    def loss_of(theta: torch.Tensor, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return mean_l2(ns_forward(model, x, *pk.unpack(theta), c0.kind), ref)

    def value(theta: torch.Tensor, x: torch.Tensor, ref: torch.Tensor) -> float:
        with torch.no_grad():
            v = float(loss_of(theta, x, ref))
        return v if math.isfinite(v) else math.inf

    zero = pk.zeros()
    init_loss = value(zero, xf, rf)
    held = (lambda th: value(th, xh, rh)) if xh is not None else None
    search = Search(zero, init_loss, held=held, select=select, check_every=check_every,
                    patience=patience if held is not None else None, max_evals=adam_steps + lbfgs_steps or None,
                    max_seconds=max_seconds, progress=progress, desc=f"fit non-stationary solver (NFE {nfe})")
    theta = zero.clone().requires_grad_(True)

    def evaluate() -> torch.Tensor:
        loss = loss_of(theta, xf, rf)
        v = float(loss.detach())
        if math.isfinite(v):
            loss.backward()
            theta.grad.nan_to_num_(0.0, 0.0, 0.0)  # e.g. a model call exactly at a singular end
        search.record(theta, v if math.isfinite(v) else math.inf)
        return loss

    try:
        if adam_steps:
            opt = torch.optim.Adam([theta], lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, adam_steps, eta_min=lr / 100)
            for _ in range(adam_steps):
                opt.zero_grad()
                if not math.isfinite(float(evaluate().detach())):
                    break
                opt.step()
                sched.step()
        if lbfgs_steps:
            with torch.no_grad():
                theta.copy_(search.best)
            lb = torch.optim.LBFGS([theta], lr=1.0, max_iter=lbfgs_steps, max_eval=lbfgs_steps, history_size=100,
                                   line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

            def closure() -> torch.Tensor:
                lb.zero_grad()
                return evaluate()

            try:
                lb.step(closure)
            except RuntimeError:  # a line search into a region where the model returns NaN: keep the best so far
                search.stopped = "non-finite"
    except StopSearch as stop:
        search.stopped = stop.reason
    fitted = search.close()
    fit_loss = value(fitted, xf, rf)
    hold, init_hold = (value(fitted, xh, rh), value(zero, xh, rh)) if xh is not None else (math.nan, math.nan)
    improved = keep_if_better(init_loss, fit_loss, init_hold, hold)
    if improved:
        coeffs = pk.coefficients(fitted, f"fit_nonstationary(nfe={nfe}, init={c0.source or 'coefficients'})")
    else:
        coeffs, hold, fit_loss = c0, init_hold, init_loss
    return NSFit(what="nonstationary", params=asdict(coeffs), init_params=asdict(c0), loss=fit_loss,
                 init_loss=init_loss, holdout_loss=hold, init_holdout_loss=init_hold, improved=improved,
                 iterations=search.evals, pilot_nfe=model.calls, reference_nfe=pilot.reference_nfe,
                 seconds=time.perf_counter() - tic, n_parameters=pk.size, n_fit=pilot.n_fit, n_held=pilot.n_held,
                 stopped=search.stopped if adam_steps + lbfgs_steps else "no evaluations")

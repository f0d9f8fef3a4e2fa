r"""Fit a non-stationary solver to a model from a pilot run (bespoke non-stationary solvers, Shaul et al. 2024).

Starting from the exact non-stationary form of a good solver (:func:`~workbench.solvers.nonstationary.linearize`),
all of its numbers — evaluation times :math:`\tau_1 \dots \tau_{n-1}`, start weights :math:`a` and output weights
:math:`b` — are tuned by gradient descent through the model to minimise

.. math::
    \frac1M\sum_{m=1}^{M}\big\|y_n^{(m)}(\tau, a, b) - x^{(m)}_{\mathrm{ref}}(t_{end})\big\|_2

over pilot start states, against the model's *own* accurate PF-ODE solution (Dormand–Prince at a tight tolerance;
no data or ground truth needed). The optimiser is Adam on the offsets from the starting coefficients (scaled by
their size), followed by L-BFGS with a strong-Wolfe line search: the problem is small (:math:`\approx n^2/2`
numbers) and deterministic. A held-out part of the pilot must improve too, or the starting coefficients are kept.

The pilot's cost is reported: reference model calls, plus ``n`` batched model calls (and one backward pass through
them) per optimiser iteration.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, List, Optional, Tuple, Union

import torch

from .. import validation
from ..errors import ConfigError
from ..models.field import DATA_SCORE, Field
from .base import SOLVERS, Solver
from .nonstationary import NSCoefficients, linearize
from .pilot import check_holdout, check_pilot, pilot_reference, split_holdout


@dataclass
class NSFit:
    """Outcome of :func:`fit_nonstationary`.

    Attributes:
        coefficients / init_coefficients: the fitted and the starting solver (as dicts of
            :class:`NSCoefficients` fields, so the record is JSON).
        loss / init_loss: mean L2 to the reference on the fitting part of the pilot.
        holdout_loss / init_holdout_loss: the same on the held-out part (``nan`` when there is none).
        improved: False when the fit did not beat the start on the held-out part (``coefficients`` is then the start).
        iterations: optimiser iterations; pilot_nfe: batched model calls of the whole fit (reference + forward
            passes; each optimiser iteration also back-propagates through its ``n`` calls); seconds: wall time.
    """

    coefficients: dict
    init_coefficients: dict
    loss: float
    init_loss: float
    holdout_loss: float
    init_holdout_loss: float
    improved: bool
    iterations: int
    pilot_nfe: int
    seconds: float

    @property
    def solver(self) -> Solver:
        """The fitted solver (``SOLVERS.get("nonstationary", coefficients=...)``)."""
        return SOLVERS.get("nonstationary", coefficients=self.coefficients)

    def to_json(self) -> str:
        """All fields as JSON (:meth:`from_json` reads it back)."""
        return json.dumps(asdict(self), indent=1)

    @staticmethod
    def from_json(text: str) -> "NSFit":
        """Inverse of :meth:`to_json`."""
        return NSFit(**json.loads(text))


class _Packed:
    """The free numbers of a non-stationary solver as one vector of scaled offsets from a starting point.

    ``theta = 0`` is the start; entry ``i`` moves its coefficient by ``theta_i × scale_i`` (scale: the size of the
    starting value, floored; 5 % of the interval for times), so the optimiser sees numbers of one size. Times stay
    inside the interval.
    """

    def __init__(self, c: NSCoefficients, dtype: torch.dtype, device: torch.device):
        self.c, self.n = c, c.n
        flat = c.times + c.a + [v for row in c.b for v in row]
        self.base = torch.tensor(flat, dtype=dtype, device=device)
        span = abs(c.t_end - c.t_start)
        w = self.base[c.n:]
        self.scale = torch.cat([torch.full((c.n,), 0.05 * span, dtype=dtype, device=device),
                                w.abs().clamp_min(0.05 * max(1e-3, float(w.abs().mean())))])
        self.lo, self.hi = min(c.t_start, c.t_end), max(c.t_start, c.t_end)

    def unpack(self, theta: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor, List[torch.Tensor]]:
        v = self.base + theta * self.scale
        n = self.n
        taus = v[:n].clamp(self.lo, self.hi)
        a = v[n: 2 * n]
        rest, rows, k = v[2 * n:], [], 0
        for j in range(n):
            rows.append(rest[k: k + j + 1])
            k += j + 1
        return list(taus), a, rows

    def coefficients(self, theta: torch.Tensor, source: str) -> NSCoefficients:
        taus, a, rows = self.unpack(theta.detach())
        return NSCoefficients(times=[float(t) for t in taus], a=a.tolist(), b=[r.tolist() for r in rows],
                              kind=self.c.kind, t_start=self.c.t_start, t_end=self.c.t_end, source=source,
                              order=self.c.order)


def _evaluate(field: Field, y: torch.Tensor, tau: torch.Tensor, kind: str) -> torch.Tensor:
    """One differentiable model call at the 0-dim time ``tau`` (gradients flow through the time and the
    interpolant's conversion coefficients), returned as ``kind``."""
    out = field.model(y, tau.expand(y.shape[0]))
    interp = field.interpolant
    if field.prediction == DATA_SCORE:
        d, s = out
        return interp.from_data_and_score(d, s, tau, kind)
    return interp.convert(out, y, tau, field.prediction, kind)


def ns_forward(field: Field, x: torch.Tensor, taus: List[torch.Tensor], a: torch.Tensor,
               rows: List[torch.Tensor], kind: str) -> torch.Tensor:
    r"""Differentiable run of a non-stationary solver: :math:`y_{j+1} = a_{j+1}x_0 + \sum_k b_{j+1,k}K_k`
    (model calls are not counted by the field; :func:`fit_nonstationary` counts them)."""
    outs: List[torch.Tensor] = []
    y = x
    for j in range(len(taus)):
        outs.append(_evaluate(field, y, taus[j], kind))
        y = a[j] * x
        for k, o in enumerate(outs):
            y = y + rows[j][k] * o
    return y


def fit_nonstationary(field: Field, x_pilot: torch.Tensor, nfe: int,
                      init: Union[str, Solver, NSCoefficients, dict, None] = None, schedule: Any = "uniform",
                      t_start: float = 0.0, t_end: float = 1.0, grid: Optional[torch.Tensor] = None,
                      kind: Optional[str] = None, reference: Optional[torch.Tensor] = None, holdout: float = 0.25,
                      adam_steps: int = 2000, lbfgs_steps: int = 1000, lr: float = 0.02,
                      select: str = "fit", check_every: int = 25, progress: bool = False) -> NSFit:
    """Tune a non-stationary solver with ``nfe`` evaluations to the model behind ``field`` (module docstring).

    Args:
        field: the model; it must be differentiable in its input and time (any torch model is).
        x_pilot: pilot start states ``(M, ...)`` at ``t_start`` (not the states you evaluate on).
        nfe: the number of model evaluations of the solver.
        init: the starting solver: a registry name or :class:`Solver` (linearised on ``schedule``/``grid``) or
            :class:`NSCoefficients` (then ``schedule``, ``grid``, ``kind`` are not used). ``None``: Heun for an
            even ``nfe`` (the best start on the GMM benchmarks), Euler for an odd one.
        kind: the prediction kind the weights multiply (see :func:`linearize`).
        reference: end states of an accurate PF-ODE solution from ``x_pilot``; ``None`` solves the model's own.
        holdout: fraction of the pilot kept aside to check the fit generalises (0 disables the check).
        adam_steps / lbfgs_steps: iterations of each optimiser stage; lr: Adam's step on the scaled offsets.
        select: which iterate to return: ``"fit"`` the lowest loss on the fitting part; ``"holdout"`` the lowest
            loss on the held-out part among checkpoints every ``check_every`` iterations (early stopping: use it
            when the pilot is small for the number of coefficients, about ``n²/2``; the held-out loss it reports is
            then no longer an unbiased check).
        progress: show a tqdm bar.

    Raises:
        ConfigError: bad pilot, holdout, iteration counts, or starting coefficients for another NFE/interval.
    """
    if not isinstance(field, Field):
        raise ConfigError("field", f"must be a Field, got {type(field).__name__}")
    for name, v in (("adam_steps", adam_steps), ("lbfgs_steps", lbfgs_steps)):
        validation.integer(name, v, 0)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ConfigError("lr", f"must be a positive number, got {lr!r}")
    if select not in ("fit", "holdout"):
        raise ConfigError("select", f"must be 'fit' or 'holdout', got {select!r}")
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ConfigError("check_every", f"must be an integer >= 1, got {check_every!r}")
    check_pilot(x_pilot)
    check_holdout(holdout)
    if select == "holdout" and not holdout:
        raise ConfigError("select", "'holdout' needs a held-out part: set holdout > 0")
    tic = time.perf_counter()
    if isinstance(init, (NSCoefficients, dict)):
        c0 = NSCoefficients.from_dict(init)
        # the solver's own NFE and interval checks (ConfigError naming nfe or t_start/t_end)
        SOLVERS.get("nonstationary", coefficients=c0).make_grid(field, nfe, t_start=t_start, t_end=t_end)
    else:
        if init is None:
            init = "heun" if nfe % 2 == 0 else "euler"
        c0 = linearize(init, field, nfe, schedule=schedule, t_start=t_start, t_end=t_end, grid=grid, kind=kind)
        if c0.n != nfe:
            raise ConfigError("init", f"{c0.source} makes {c0.n} model calls, not nfe={nfe}; pick an NFE it uses "
                                      f"fully or a one-call-per-step start (euler, dpmpp_2m, unipc, deis)")
    reference, pilot_nfe = pilot_reference(field, x_pilot, t_start, t_end, reference)
    (xf, rf), (xh, rh) = split_holdout(x_pilot, reference, holdout)
    n = c0.n
    pk = _Packed(c0, x_pilot.dtype, x_pilot.device)

    def loss_of(theta: torch.Tensor, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        nonlocal pilot_nfe
        pilot_nfe += n
        out = ns_forward(field, x, *pk.unpack(theta), c0.kind)
        return (out - ref).flatten(1).pow(2).sum(dim=1).add(1e-30).sqrt().mean()

    def value(theta: torch.Tensor, x: torch.Tensor, ref: torch.Tensor) -> float:
        with torch.no_grad():
            v = float(loss_of(theta, x, ref))
        return v if math.isfinite(v) else math.inf

    theta = torch.zeros_like(pk.base, requires_grad=True)
    init_loss = value(theta, xf, rf)
    best = {"loss": init_loss, "theta": theta.detach().clone()}

    early = select == "holdout" and xh is not None
    best_hold = {"loss": value(theta, xh, rh) if early else math.inf, "theta": theta.detach().clone()}

    def record(v: float) -> None:
        if math.isfinite(v) and v < best["loss"]:
            best["loss"], best["theta"] = v, theta.detach().clone()
        if early and iterations % check_every == 0:
            checkpoint(theta.detach())

    def checkpoint(candidate: torch.Tensor) -> None:
        h = value(candidate, xh, rh)
        if h < best_hold["loss"]:
            best_hold["loss"], best_hold["theta"] = h, candidate.clone()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=adam_steps + lbfgs_steps, desc=f"fit non-stationary solver (NFE {nfe})", leave=False)
    iterations = 0
    opt = torch.optim.Adam([theta], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(adam_steps, 1), eta_min=lr / 100)
    for _ in range(adam_steps):
        opt.zero_grad()
        loss = loss_of(theta, xf, rf)
        if not torch.isfinite(loss):
            break
        record(float(loss.detach()))
        loss.backward()
        theta.grad.nan_to_num_(0.0, 0.0, 0.0)  # e.g. a model call exactly at a singular end
        opt.step()
        sched.step()
        iterations += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{best['loss']:.3e}")
    if lbfgs_steps:
        with torch.no_grad():
            theta.copy_(best["theta"])
        lb = torch.optim.LBFGS([theta], lr=1.0, max_iter=lbfgs_steps, history_size=50,
                               line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

        def closure():
            nonlocal iterations
            lb.zero_grad()
            loss = loss_of(theta, xf, rf)
            if torch.isfinite(loss):
                record(float(loss.detach()))
                loss.backward()
                theta.grad.nan_to_num_(0.0, 0.0, 0.0)
            iterations += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{best['loss']:.3e}")
            return loss

        try:
            lb.step(closure)
        except RuntimeError:  # a line search into a region where the model returns NaN: keep the best so far
            pass
    if bar is not None:
        bar.close()
    fitted = best["theta"]
    if early:
        checkpoint(fitted)
        fitted = best_hold["theta"]
        best["loss"] = value(fitted, xf, rf)
    zero = torch.zeros_like(fitted)
    hold, init_hold = (value(fitted, xh, rh), value(zero, xh, rh)) if xh is not None else (math.nan, math.nan)
    improved = best["loss"] < init_loss and (xh is None or hold <= init_hold)
    coeffs = pk.coefficients(fitted if improved else zero,
                             f"fit_nonstationary(nfe={nfe}, init={c0.source or 'coefficients'})" if improved else c0.source)
    if not improved:
        hold, best["loss"] = init_hold, init_loss
    return NSFit(coefficients=asdict(coeffs), init_coefficients=asdict(c0), loss=best["loss"], init_loss=init_loss,
                 holdout_loss=hold, init_holdout_loss=init_hold, improved=improved, iterations=iterations,
                 pilot_nfe=pilot_nfe, seconds=time.perf_counter() - tic)

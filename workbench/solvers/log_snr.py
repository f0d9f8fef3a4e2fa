r"""Shared machinery of the log-SNR (exponential-integrator) samplers: DPM-Solver(++), UniPC, DEIS, DPM-Solver-v3.

With :math:`x_t = a(t)x_1 + \sigma(t)\xi` and :math:`\lambda = \log(a/\sigma)` (increasing in t), the
probability-flow ODE has two exact variation-of-constants forms (Lu et al. 2022, eqs. 3.4 / Lu et al. 2022b, eq. 8):

.. math::
    x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\lambda_s}^{\lambda_t} e^{\lambda} D(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(data prediction } D = E[x_1|x]\text{)},

.. math::
    x_t = \frac{a_t}{a_s}x_s - a_t\int_{\lambda_s}^{\lambda_t} e^{-\lambda} \hat\varepsilon(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(noise prediction } \hat\varepsilon = E[\xi|x]\text{)}.

Every fixed-step sampler here is *linear* in the state and in the stored model outputs, so a run turns the time
grid into a table of python-float coefficients **once** (``plan``) and each step is a handful of fused
``x * c + Σ c_j m_j`` tensor operations: no host synchronisation, no per-step ``log``/``exp`` on tensors.
The linear multistep samplers (DPM-Solver++ multistep, UniPC, DEIS) go one step further (:class:`FusedPlan`):
the D ↔ ε̂ conversion is folded into the coefficients and UniPC's corrector into the next predictor, so a step
costs one model call, at most one fused op for the history entry, one multiplication and one in-place ``add_`` per
further tensor, and allocates only the new state.

Endpoints: where :math:`\sigma = 0` (λ = +∞, the data end of linear/VP paths) the first-order data step is
exact algebra :math:`x_t = a_t D`, and where :math:`a = 0` (λ = −∞, the noise end of the linear path) it is
:math:`x_t = \tfrac{\sigma_t}{\sigma_s}x_s + a_t D`. Such steps always use order 1, and history points at
λ = −∞ are never used for extrapolation, so no ``log(0)`` or ``inf - inf`` ever reaches a tensor.
"""
from __future__ import annotations

from collections import OrderedDict

import math
import threading
from dataclasses import dataclass, field as dc_field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..models.field import Field, Prediction
from .base import FixedStepSolver, Step

#: Kinds of model output a log-SNR sampler extrapolates.
KINDS = ("data", "noise")

# Gauss–Legendre nodes on [0, 1] for the exponential-integrator weights (exact to ~1e-16 for h ≲ 30).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(40)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def check_kind(kind: str, field: str = "predict") -> str:
    """Validate the extrapolated quantity: ``"data"`` (DPM-Solver++ style) or ``"noise"`` (DPM-Solver/DEIS style)."""
    if kind not in KINDS:
        raise ConfigError(field, f"got {kind!r}; allowed values are: {', '.join(KINDS)}")
    return kind


def check_order(order: object, allowed: Sequence[int], field: str = "order") -> int:
    """Validate an integer order from ``allowed``."""
    if isinstance(order, bool) or not isinstance(order, int) or order not in allowed:
        raise ConfigError(field, f"got {order!r}; allowed values are: {', '.join(map(str, allowed))}")
    return order


@dataclass(frozen=True)
class LogSNRTable:
    """The grid in log-SNR coordinates (python floats; ``lam`` may hold ±inf at the ends).

    Attributes:
        t: grid times. lam: :math:`\\lambda(t_i)`. a: signal :math:`a(t_i)`. sigma: :math:`\\sigma(t_i)`.
    """

    t: List[float]
    lam: List[float]
    a: List[float]
    sigma: List[float]

    @staticmethod
    def build(interpolant: Interpolant, ts: Sequence[float]) -> "LogSNRTable":
        """Evaluate the coefficients on the grid once (float64)."""
        a, s, lam = [], [], []
        for t in ts:
            c = interpolant.coefficients(float(t))
            ai, si = float(c.signal), float(c.sigma)
            if ai < 0 or si < 0 or (ai == 0 and si == 0):
                raise ConfigError("interpolant", f"signal/noise coefficients are degenerate at t={t:.6g}")
            a.append(ai)
            s.append(si)
            lam.append(math.inf if si == 0 else (-math.inf if ai == 0 else math.log(ai) - math.log(si)))
        for i in range(len(lam) - 1):
            if not lam[i + 1] > lam[i]:
                raise ConfigError("grid", f"log-SNR must increase along the grid; λ({ts[i]:.6g})={lam[i]:.6g} "
                                          f">= λ({ts[i + 1]:.6g})={lam[i + 1]:.6g}")
        return LogSNRTable(list(map(float, ts)), lam, a, s)

    def finite(self, i: int) -> bool:
        """True when λ at grid point ``i`` is finite."""
        return math.isfinite(self.lam[i])


def ddim_coefficients(tab: LogSNRTable, i: int, j: int) -> Tuple[float, float]:
    r"""First-order (DDIM) step ``i → j`` in data form: :math:`x_j = c_x x_i + c_D D_i`,
    :math:`c_x = \sigma_j/\sigma_i`, :math:`c_D = a_j - c_x a_i = a_j(1 - e^{-h})` (finite at both ends)."""
    cx = tab.sigma[j] / tab.sigma[i]
    return cx, tab.a[j] - cx * tab.a[i]


def exp_integrator_weights(h: float, nodes: Sequence[float], kind: str) -> List[float]:
    r"""Weights :math:`w_j` of :math:`\int_0^h K(u)\,P(u)\,du = \sum_j w_j m_j` where :math:`P` is the Lagrange
    polynomial through ``(nodes[j], m_j)`` (offsets in λ from the step start) and the kernel is
    :math:`K(u) = e^{-(h-u)}` for data prediction, :math:`e^{h-u}` for noise prediction (see module docstring,
    after pulling out :math:`a_t` resp. :math:`\sigma_t`). Evaluated by 40-point Gauss–Legendre quadrature."""
    u = h * _GL_X
    kern = np.exp(-(h - u)) if kind == "data" else np.exp(h - u)
    out = []
    for j, uj in enumerate(nodes):
        lj = np.ones_like(u)
        for k, uk in enumerate(nodes):
            if k != j:
                lj = lj * (u - uk) / (uj - uk)
        out.append(float(h * np.sum(_GL_W * kern * lj)))
    return out


def model_output(pred: Prediction, kind: str, x: torch.Tensor, a: float, sigma: float) -> torch.Tensor:
    r"""The data (``D``) or noise (``ε̂``) prediction with scalar fast paths:
    :math:`D = x/a - (\sigma/a)\hat\varepsilon`, :math:`\hat\varepsilon = x/\sigma - (a/\sigma) D` (two fused ops);
    anything else goes through the interpolant's conversions. The result is cached on ``pred``."""
    want = "x1" if kind == "data" else "noise"
    if pred.kind == want:
        return pred.value  # type: ignore[return-value]
    cache = pred._cache  # noqa: SLF001  (the Prediction's own conversion cache)
    if want in cache:
        return cache[want]
    if kind == "data" and pred.kind == "noise" and a > 0:
        out = torch.add(x * (1.0 / a), pred.value, alpha=-sigma / a)  # type: ignore[arg-type]
    elif kind == "noise" and pred.kind == "x1" and sigma > 0:
        out = torch.add(x * (1.0 / sigma), pred.value, alpha=-a / sigma)  # type: ignore[arg-type]
    else:
        out = pred.as_kind(want)
    cache[want] = out
    return out


def combine(x: Optional[torch.Tensor], cx: float, terms: Sequence[Tuple[float, torch.Tensor]]) -> torch.Tensor:
    r""":math:`c_x x + \sum_j c_j m_j` with one fused kernel per term (zero coefficients skipped)."""
    out: Optional[torch.Tensor] = None
    if x is not None and cx != 0.0:
        out = x * cx
    for c, m in terms:
        if c == 0.0:
            continue
        out = m * c if out is None else out.add_(m, alpha=c)
    if out is None:
        ref = x if x is not None else terms[0][1]
        out = torch.zeros_like(ref)
    return out


# How a history entry m_i of the solver's kind is kept, given the model's own output kind (see `FusedPlan`).
_OWN, _FAST, _SLOW = 0, 1, 2
#: The prediction names of the two extrapolated kinds (as a Field spells them).
_RAW_NAME = {"data": "x1", "noise": "noise"}


def _storage(raw_kind: str, kind: str, a: float, sigma: float) -> Tuple[int, float, float]:
    r"""How to get ``m`` (of ``kind``) from a model output of ``raw_kind`` at a point with signal ``a``, noise ``sigma``.

    Returns ``(mode, alpha, scale)``: ``_OWN``: ``m = raw``; ``_FAST``: ``m = scale * (x + alpha * raw)``, i.e.
    :math:`D = (x - \sigma\hat\varepsilon)/a` or :math:`\hat\varepsilon = (x - a D)/\sigma`; ``_SLOW``: the
    interpolant's conversion (:func:`model_output`), ``scale = 1``.
    """
    if raw_kind == _RAW_NAME[kind]:
        return _OWN, 0.0, 1.0
    if kind == "data" and raw_kind == "noise" and a > 0:
        return _FAST, -sigma, 1.0 / a
    if kind == "noise" and raw_kind == "x1" and sigma > 0:
        return _FAST, -a, 1.0 / sigma
    return _SLOW, 0.0, 1.0


@dataclass(frozen=True)
class FusedStep:
    """One step of a :class:`FusedPlan`. Tensors are named by their index in the run's slot list: ``0 … depth-1``
    the history ring, then ``X`` (the state the model saw), ``RAW`` (its output) and one slot per converted kind.

    Attributes:
        order: the order reported for the step.
        store: ``None`` when ``m_i`` is not needed by a later step, else ``(mode, alpha, slot)``: the history slot
            receives ``S_i = raw`` (own kind), ``x + alpha * raw`` (one fused op into a per-run ring buffer) or
            the converted tensor; ``m_i = scale * S_i``.
        convert: kinds whose converted value (:func:`model_output`) this step needs in their slot (rare: steps
            that touch λ = ±∞, or models of a third kind).
        lead: ``(slot, coefficient)``: the term that starts the new state with one multiplication.
        rest: ``((slot, coefficient), ...)`` added in place with ``add_(alpha=...)``.
        generic: ``(c_x, ((slot, c), ...))`` with this step's own terms read from the converted-kind slots: used when a
            step's prediction is not of the kind the plan assumed (e.g. a time-shifted field mixing kinds).
        scale: the factor with ``m_i = scale * S_i``.
    """

    order: int
    store: Optional[Tuple[int, float, int]]
    convert: Tuple[str, ...]
    lead: Tuple[int, float]
    rest: Tuple[Tuple[int, float], ...]
    generic: Tuple[float, Tuple[Tuple[int, float], ...]]
    scale: float


@dataclass
class FusedPlan:
    r"""A multistep plan rewritten in the tensors a run actually holds, for one model output kind.

    A linear multistep update :math:`x_{i+1} = c_x x_i + \sum_g c_g m_{i-g}` needs the history ``m`` in the
    solver's kind (D or ε̂). When the model returns the other one, :math:`m_j = s_j (x_j + \alpha_j\,\mathrm{raw}_j)`
    (e.g. :math:`D = (x - \sigma\hat\varepsilon)/a`), so a history entry is kept as the *unscaled*
    :math:`S_j = x_j + \alpha_j \mathrm{raw}_j` (one fused op, written into a ring of scratch buffers from
    :data:`SCRATCH`: no allocation)
    and :math:`s_j` is folded into the coefficients; the current step's own term is expanded into
    :math:`x_i` and :math:`\mathrm{raw}_i` directly (merged with :math:`c_x`). A step is then one multiplication
    plus one in-place ``add_`` per further tensor, and the only tensor allocated per step is the new state.

    Attributes:
        raw_kind: the model output kind the plan is for. depth: ring size (largest lag + 1). steps: one
        :class:`FusedStep` per grid interval. slots: the number of tensor slots a run keeps.
    """

    raw_kind: str
    depth: int
    steps: Tuple[FusedStep, ...]
    slots: int
    _leads: Dict[torch.dtype, Tuple[torch.Tensor, ...]] = dc_field(default_factory=dict, repr=False, compare=False)

    def lead_coefficients(self, dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
        """Each step's lead coefficient as a 0-d CPU tensor (memoised per dtype): a multiplication by a 0-d
        tensor of the state's dtype dispatches ~2x faster than by a python float, with the same result."""
        key = dtype if dtype in (torch.float32, torch.float64) else torch.float64
        hit = self._leads.get(key)
        if hit is None:
            hit = self._leads[key] = torch.tensor([s.lead[1] for s in self.steps], dtype=key).unbind(0)
        return hit


def fuse_plan(entries: Sequence["LinearStep"], tab: LogSNRTable, kind: str, raw_kind: str) -> FusedPlan:
    """Rewrite per-step linear updates (in ``m`` of ``kind``; other kinds only at lag 0) for a model whose output is
    ``raw_kind`` (see :class:`FusedPlan`). History entries at λ = −∞ are not kept for ``kind="noise"`` (a = 0), and
    no later step may use them."""
    n = len(entries)
    depth = 1 + max([g for _, _, terms in entries for g, c, _ in terms if c != 0.0] + [0])
    X, RAW = depth, depth + 1
    conv_slot = {k: depth + 2 + j for j, k in enumerate(KINDS)}
    needed = [False] * n
    for i, (_, _, terms) in enumerate(entries):
        for g, c, k in terms:
            if g >= 1 and c != 0.0:
                if k != kind:
                    raise ValueError(f"step {i}: a history term of kind {k!r} in a {kind!r} plan")
                needed[i - g] = True
    steps = []
    for i, (order, cx, terms) in enumerate(entries):
        own = kind == "data" or tab.finite(i)
        mode, alpha, scale = _storage(raw_kind, kind, tab.a[i], tab.sigma[i])
        if needed[i] and not own:
            raise ValueError(f"step {i}: history at λ = -inf is used")
        store = (mode, alpha, i % depth) if needed[i] else None
        fast: Dict[int, float] = {X: cx}
        generic: Dict[int, float] = {}
        convert: List[str] = []

        def add(d: Dict[int, float], key: int, c: float) -> None:
            d[key] = d.get(key, 0.0) + c

        for g, c, k in terms:
            if c == 0.0:
                continue
            if g >= 1:
                slot = (i - g) % depth
                add(fast, slot, c * _storage(raw_kind, kind, tab.a[i - g], tab.sigma[i - g])[2])
                add(generic, slot, c * _storage(raw_kind, kind, tab.a[i - g], tab.sigma[i - g])[2])
                continue
            add(generic, conv_slot[k], c)
            if k == kind and store is not None:
                add(fast, i % depth, c * scale)
                continue
            m, al, sc = _storage(raw_kind, k, tab.a[i], tab.sigma[i])
            if m == _OWN:
                add(fast, RAW, c)
            elif m == _FAST:
                add(fast, X, c * sc)
                add(fast, RAW, c * sc * al)
            else:
                add(fast, conv_slot[k], c)
                if k not in convert:
                    convert.append(k)
        items = [(slot, c) for slot, c in fast.items() if c != 0.0] or [(X, 0.0)]
        steps.append(FusedStep(order, store, tuple(convert), items[0], tuple(items[1:]),
                               (cx, tuple(generic.items())), scale))
    return FusedPlan(raw_kind, depth, tuple(steps), depth + 2 + len(KINDS))


#: A linear step ``x_{i+1} = c_x x_i + Σ c m_{i-lag}`` with each term's kind: (order, c_x, [(lag, c, kind)]).
LinearStep = Tuple[int, float, List[Tuple[int, float, str]]]


class ScratchPool:
    """Scratch tensors (the fused loop's history ring) reused across runs: first touching fresh memory costs a page
    fault per 4 KiB (≈ 200 per 64×3×32×32 float32 buffer), more than the arithmetic that fills it.

    A run checks buffers out and gives them back when it ends (also when abandoned), so concurrent or interleaved
    runs never share one. Scratch never leaves a run (states and predictions handed out are never pool tensors).
    The pool keeps at most ``max_bytes`` in total.
    """

    def __init__(self, max_bytes: int = 64 * 2 ** 20):
        self.max_bytes = max_bytes
        self._free: Dict[tuple, List[torch.Tensor]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(t: torch.Tensor) -> tuple:
        return tuple(t.shape), t.stride(), t.dtype, t.device

    def take(self, like: torch.Tensor) -> torch.Tensor:
        """A tensor with ``like``'s shape, strides, dtype and device (reused or new; contents undefined)."""
        with self._lock:
            free = self._free.get(self._key(like))
            if free:
                t = free.pop()
                self._bytes -= t.element_size() * t.numel()
                return t
        return torch.empty_like(like).as_subclass(torch.Tensor)

    def give(self, tensors: Sequence[Optional[torch.Tensor]]) -> None:
        """Return buffers taken with :meth:`take` (dropped when the pool is full)."""
        with self._lock:
            for t in tensors:
                if t is None:
                    continue
                size = t.element_size() * t.numel()
                if self._bytes + size <= self.max_bytes:
                    self._free.setdefault(self._key(t), []).append(t)
                    self._bytes += size


#: The scratch pool of the fused log-SNR step loops.
SCRATCH = ScratchPool()


class LogSNRSolver(FixedStepSolver):
    """Base of the log-SNR samplers: builds the :class:`LogSNRTable` and a per-step coefficient plan once per run.

    Subclasses implement :meth:`plan` (python-float coefficients for every step, from the table only) and
    :meth:`step`, which reads ``state["plan"][index]``. Linear multistep samplers also implement
    :meth:`linear_steps`; their runs then go through :meth:`iterate_fused` (set ``fused = False`` on an instance
    to run the reference :meth:`step` path instead).
    """

    needs_gaussian = True
    fused = False

    def iterate(self, field: Field, x: torch.Tensor, grid: torch.Tensor,
                generator: Optional[torch.Generator] = None):
        # returns the generator itself (no `yield from` layer: one generator resume per step, not two)
        return self.iterate_fused(field, x, grid) if self.fused else self._iterate_steps(field, x, grid, generator)

    def _iterate_steps(self, field: Field, x: torch.Tensor, grid: torch.Tensor,
                       generator: Optional[torch.Generator] = None):
        """The reference loop: :meth:`step` per grid interval with ``state["plan"]``."""
        ts = [float(v) for v in grid.tolist()]
        tab, plan = self.table_and_plan(field.interpolant, ts)
        state: Dict[str, Any] = {"n_steps": len(ts) - 1, "table": tab, "hist": []}
        state["plan"] = plan
        for i in range(len(ts) - 1):
            x, pred, order = self.step(field, x, ts[i], ts[i + 1], i, state, generator)
            yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, order)

    def plan(self, tab: LogSNRTable) -> List[Any]:
        """Per-step coefficients computed from the grid alone (override)."""
        return []

    def linear_steps(self, tab: LogSNRTable, plan: Any) -> List[LinearStep]:
        """The plan as ``(order, c_x, [(lag, c, kind)])`` per step (override in linear multistep samplers)."""
        raise NotImplementedError

    def iterate_fused(self, field: Field, x: torch.Tensor, grid: torch.Tensor):
        """The step loop on a :class:`FusedPlan`: per step one model call, at most one fused op to keep the history
        entry, one multiplication and one ``add_`` per further tensor. No host synchronisation."""
        ts = [float(v) for v in grid.tolist()]
        n = len(ts) - 1
        tab, plan, fused = self._cached(field.interpolant, ts)
        kind: str = self.kind  # type: ignore[attr-defined]
        a_, s_ = tab.a, tab.sigma
        # every step's (B,) time tensor in one op (rows of one contiguous (n, B) tensor), for a plain Field
        tts: Optional[List[torch.Tensor]] = None
        if type(field).predict is Field.predict and n > 0:
            tts = list(torch.tensor(ts[:-1], dtype=x.dtype).to(x.device)[:, None].expand(n, x.shape[0])
                       .contiguous().unbind(0))
        add, mul = torch.add, torch.mul
        fp: Optional[FusedPlan] = None
        ring: List[Optional[torch.Tensor]] = []  # scratch from SCRATCH, given back when the run ends
        try:
            for i in range(n):
                pred = field.predict(x, ts[i]) if tts is None else field.predict(x, ts[i], tts[i])
                raw = pred.value
                if fp is None:  # the plan for this model's output kind (memoised with the grid's plan)
                    fp = fused.get(pred.kind)
                    if fp is None:
                        fp = fused[pred.kind] = fuse_plan(self.linear_steps(tab, plan), tab, kind, pred.kind)
                    raw_kind, steps, leads = fp.raw_kind, fp.steps, fp.lead_coefficients(x.dtype)
                    X, RAW, conv = fp.depth, fp.depth + 1, {k: fp.depth + 2 + j for j, k in enumerate(KINDS)}
                    slots: List[Any] = [None] * fp.slots
                    ring.extend([None] * fp.depth)
                st = steps[i]
                slots[X] = x
                slots[RAW] = raw
                if pred.kind == raw_kind:
                    if st.convert:
                        for k in st.convert:
                            slots[conv[k]] = model_output(pred, k, x, a_[i], s_[i])
                    store = st.store
                    if store is not None:
                        mode, alpha, slot = store
                        if mode == _FAST:
                            buf = ring[slot]
                            if buf is None and not (raw.requires_grad or x.requires_grad) and raw.dtype == x.dtype \
                                    and raw.shape == x.shape:
                                buf = ring[slot] = SCRATCH.take(x)
                            slots[slot] = add(x, raw, alpha=alpha) if buf is None else \
                                add(x, raw, alpha=alpha, out=buf)
                        elif mode == _OWN:
                            slots[slot] = raw
                        else:
                            slots[slot] = slots[conv[kind]] if kind in st.convert else \
                                model_output(pred, kind, x, a_[i], s_[i])
                    x = mul(slots[st.lead[0]], leads[i])
                    for slot, c in st.rest:
                        x.add_(slots[slot], alpha=c)
                else:  # e.g. a time-shifted field mixing kinds: convert, keep the plan's scaling of the history
                    for k in KINDS:
                        slots[conv[k]] = None
                    cx, terms = st.generic
                    for slot, _ in terms:
                        if slot >= X:
                            slots[slot] = model_output(pred, KINDS[slot - X - 2], pred.x, a_[i], s_[i])
                    if st.store is not None:
                        m = slots[conv[kind]]
                        if m is None:
                            m = model_output(pred, kind, pred.x, a_[i], s_[i])
                        slots[st.store[2]] = m if st.scale == 1.0 else m * (1.0 / st.scale)
                    x = combine(x, cx, [(c, slots[slot]) for slot, c in terms])
                yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, st.order)
        finally:
            slots = []
            SCRATCH.give(ring)

    def table_and_plan(self, interpolant, ts: List[float]) -> Tuple["LogSNRTable", Any]:
        """The λ/a/σ table and the coefficient plan of a grid, memoised per (solver, parameters, interpolant, grid).

        Both are pure functions of those inputs and read-only during a run, so a sweep or a dashboard that reruns
        the same grid pays for them once (UniPC's plan solves a small linear system per step).
        """
        # The workbench's own interpolants are fully described by their parameters (repr); anything else is
        # keyed by identity, in case it carries state its repr does not show.
        tab, plan, _ = self._cached(interpolant, ts)
        return tab, plan

    def _cached(self, interpolant, ts: List[float]) -> Tuple["LogSNRTable", Any, Dict[str, FusedPlan]]:
        """The memoised (table, plan, fused plans by model output kind) of a grid (see :meth:`table_and_plan`)."""
        ident = repr(interpolant) if type(interpolant).__module__.startswith("workbench.") else id(interpolant)
        key = (type(self).__module__, type(self).__name__, repr(sorted(self.params().items())),
               type(interpolant).__name__, ident, tuple(ts))
        hit = _PLAN_CACHE.get(key)
        if hit is None:
            tab = LogSNRTable.build(interpolant, ts)
            hit = (tab, self.plan(tab), {})
            _PLAN_CACHE[key] = hit
            while len(_PLAN_CACHE) > _PLAN_CACHE_SIZE:
                _PLAN_CACHE.popitem(last=False)
        else:
            _PLAN_CACHE.move_to_end(key)
        return hit


_PLAN_CACHE: "OrderedDict[tuple, Tuple[LogSNRTable, Any, Dict[str, FusedPlan]]]" = OrderedDict()
_PLAN_CACHE_SIZE = 128


def multistep_orders(tab: LogSNRTable, order: int, lower_order_final: bool, final_policy: str = "dpm") -> List[int]:
    """The order used at each step of a multistep method.

    Rules (as in DPM-Solver++ / diffusers): warm-up with lower orders while history is short; history
    points at λ = −∞ are not usable; a step into λ = +∞ or out of λ = −∞ has order 1. With
    ``lower_order_final``: ``final_policy="dpm"`` uses order ≤ 1 on the last and ≤ 2 on the second-to-last
    step when the run has fewer than 15 steps (DPM-Solver++); ``"unipc"`` caps the order by the number of
    steps left (UniPC).
    """
    n = len(tab.t) - 1
    orders = []
    usable = 0  # consecutive finite-λ history points ending at the current one
    for i in range(n):
        usable = usable + 1 if tab.finite(i) else 0
        k = min(order, max(usable, 1))
        if not (tab.finite(i) and tab.finite(i + 1)):
            k = 1
        if lower_order_final:
            if final_policy == "unipc":
                k = min(k, n - i)
            elif n < 15:
                if i == n - 1:
                    k = 1
                elif i == n - 2:
                    k = min(k, 2)
        orders.append(k)
    return orders

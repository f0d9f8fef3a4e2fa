r"""One plan, one executor: every deterministic linear sampler on a fixed grid.

A deterministic fixed-step sampler (Runge–Kutta tableaux, DPM-Solver++ multistep, single-step DPM-Solver, UniPC
with its corrector, DEIS, time-shifted variants, non-stationary solvers) evaluates the model at states
:math:`y_0 = x, y_1, \dots, y_{n-1}` and forms each new state — and the output — as a *linear combination of
earlier states and earlier model outputs*, each output read as some prediction kind:

.. math::
    y_{j+1} = \sum_{k \le j} c^{x}_{j,k}\, y_k + \sum_{k \le j}\sum_{\kappa} c^{\kappa}_{j,k}\, K^{\kappa}_k,
    \qquad K^{\kappa}_k = \text{model output at } (y_k, \tau_k) \text{ read as kind } \kappa,

with :math:`y_n` the result. A :class:`Plan` holds exactly these numbers (and the evaluation times, the grid and
the order per step); it is immutable, built once per (solver, interpolant, grid) and cached by value.

Reading an output as another kind is affine in the evaluated state and the raw output,
:math:`K^{\kappa}_k = p_k y_k + q_k\,\mathrm{raw}_k` (the interpolant's conversions; scalars at a time), so
:func:`compile_plan` folds every conversion into the coefficients for the model's own output kind: the
:class:`Program` a run executes is a list of rows over *states and raw outputs* only. :func:`execute` then runs
any program with one model call and one fused multiply–add chain per evaluation, reusing no tensor it hands out
and never synchronising with the device; rows dense in the outputs (non-stationary solvers) use one ``addmv``
over an output buffer instead.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from ..config import Config
from ..errors import ConfigError
from ..interpolants.base import Interpolant, canonical_prediction
from ..models.field import DATA_SCORE, Field

#: A term of a plan row: ``(kind, k, c)``; ``kind == "x"`` means the state :math:`y_k`, else output ``k`` read as
#: the prediction ``kind`` (one of the interpolant's PREDICTIONS).
Term = Tuple[str, int, float]
STATE = "x"


@dataclass(frozen=True)
class Plan:
    """The linear form of one run (see the module docstring).

    Attributes:
        grid: the step boundaries :math:`t_0 < \\dots < t_S` (the times :class:`~workbench.solvers.base.Step` s report).
        times: the nominal time :math:`\\tau_j` of each evaluation (conversions are taken there).
        model_times: the time the model is called at (differs from ``times`` for time-shifted samplers).
        rows: ``rows[j]`` builds :math:`y_{j+1}` (``rows[-1]`` the result) from terms with ``k <= j``.
        ends: ``ends[j]`` is the index of the solver step that row ``j`` completes, or ``-1`` for a stage state.
        orders: the order reported for each step.
        label: where the numbers come from (for errors and ``linearize``).
    """

    grid: Tuple[float, ...]
    times: Tuple[float, ...]
    model_times: Tuple[float, ...]
    rows: Tuple[Tuple[Term, ...], ...]
    ends: Tuple[int, ...]
    orders: Tuple[int, ...]
    label: str = ""

    @property
    def n(self) -> int:
        """The number of model evaluations."""
        return len(self.times)

    def shifted(self, model_time: Callable[[float], float]) -> "Plan":
        """The same plan with the model called at ``model_time(τ)`` instead of τ (time-shifted sampling)."""
        return Plan(self.grid, self.times, tuple(float(model_time(t)) for t in self.times), self.rows, self.ends,
                    self.orders, self.label)


class PlanBuilder:
    """Builds a :class:`Plan` in the order a sampler runs: ``evaluate`` the current state, then ``advance`` to the
    next state with a row of terms, alternately; the last ``advance`` gives the result.

    >>> b = PlanBuilder([0.0, 1.0]); k = b.evaluate(0.0)
    >>> b.advance([("x", k, 1.0), ("velocity", k, 1.0)], step=0, order=1)  # forward Euler
    >>> b.build().rows
    ((('x', 0, 1.0), ('velocity', 0, 1.0)),)
    """

    def __init__(self, grid: Sequence[float], label: str = ""):
        self.grid = tuple(float(v) for v in grid)
        self.label = label
        self.times: List[float] = []
        self.rows: List[Tuple[Term, ...]] = []
        self.ends: List[int] = []
        self.orders: Dict[int, int] = {}

    @property
    def current(self) -> int:
        """Index of the state the next :meth:`evaluate` sees (``y_0`` is the start)."""
        return len(self.rows)

    def evaluate(self, t: float) -> int:
        """Register the model evaluation at the current state and time ``t``; returns its index."""
        if len(self.times) != len(self.rows):
            raise RuntimeError("PlanBuilder: evaluate twice without advance")
        self.times.append(float(t))
        return len(self.times) - 1

    def advance(self, terms: Sequence[Term], step: int = -1, order: int = 1) -> int:
        """Form the next state from ``terms`` (merged by source, zeros dropped); ``step >= 0`` marks it as the end of
        that solver step with ``order``. Returns the new state's index."""
        if len(self.times) != len(self.rows) + 1:
            raise RuntimeError("PlanBuilder: advance without a preceding evaluate")
        merged: Dict[Tuple[str, int], float] = {}
        for kind, k, c in terms:
            if k > len(self.rows) or k < 0:
                raise RuntimeError(f"PlanBuilder: term {kind, k} is not causal")
            key = (kind if kind == STATE else canonical_prediction(kind, "kind"), int(k))
            merged[key] = merged.get(key, 0.0) + float(c)
        self.rows.append(tuple((kd, k, c) for (kd, k), c in merged.items() if c != 0.0))
        self.ends.append(int(step))
        if step >= 0:
            self.orders[int(step)] = int(order)
        return len(self.rows)

    def build(self) -> Plan:
        """The finished plan (every solver step must have been completed)."""
        steps = len(self.grid) - 1
        if len(self.rows) != len(self.times) or sorted(self.orders) != list(range(steps)):
            raise RuntimeError(f"PlanBuilder: incomplete plan ({len(self.times)} evaluations, {len(self.rows)} rows, "
                               f"steps {sorted(self.orders)} of {steps})")
        return Plan(self.grid, tuple(self.times), tuple(self.times), tuple(self.rows), tuple(self.ends),
                    tuple(self.orders[i] for i in range(steps)), self.label)


# --------------------------------------------------------------------------------------------------------------
# Reading an output as another kind: K = p·y + Σ_c q_c·raw_c (raw_c: the model's output components)
# --------------------------------------------------------------------------------------------------------------
def read_coefficients(interpolant: Interpolant, raw_kind: str, model_time: float, kind: str,
                      time: float) -> Tuple[float, Tuple[float, ...]]:
    r"""``(p, q)`` with :math:`K^{\kappa}(\tau) = p\,y + \sum_c q_c\,\mathrm{raw}_c` for a model output of
    ``raw_kind`` at ``model_time`` read as ``kind`` at the nominal ``time`` (for ``data_score`` models the raw
    components are :math:`(D, s)`). The conversions are linear, so they are evaluated on basis vectors.

    Raises:
        ConfigError: the conversion is singular there (e.g. the data denoiser from a noise prediction at
            :math:`a = 0`), naming t_start/t_end as :meth:`Prediction.as_kind` does.
    """
    if raw_kind == kind and model_time == time:
        return 0.0, (1.0,)
    I = interpolant
    if raw_kind != DATA_SCORE:
        checks = [(raw_kind, kind)] if model_time == time else [(raw_kind, "x1"), (raw_kind, "score")]
        for src, dst in checks:  # a shifted read goes through (D, s) at the model's time
            why = I.conversion_singularity(src, dst, model_time)
            if why is not None:
                raise ConfigError(
                    "t_start/t_end",
                    f"{why} ({I.name!r} interpolant). Integrate over a shorter interval (e.g. t_end=0.999), use a "
                    f"solver that needs only the model's own prediction, or a model predicting a different quantity",
                )
    width = 2 if raw_kind == DATA_SCORE else 1
    eye = torch.eye(1 + width, dtype=torch.float64)  # basis: y, raw_0 (, raw_1)
    y = eye[:, :1]
    if raw_kind == DATA_SCORE:
        d, s = eye[:, 1:2], eye[:, 2:3]
    else:
        d, s = I.to_data_and_score(eye[:, 1:2], y, model_time, raw_kind)
    out = I.from_data_and_score(d, s, time, kind).reshape(-1).tolist()
    return float(out[0]), tuple(float(v) for v in out[1:])


# --------------------------------------------------------------------------------------------------------------
# Programs: rows over states and raw outputs, for one model output kind
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Program:
    """A :class:`Plan` compiled for a model whose output is ``raw_kind``.

    Slots: state ``y_k`` is slot ``k`` (``0 … n-1``), raw output component ``c`` of evaluation ``k`` is slot
    ``n + width*k + c``. Each row is ``(lead, rest)``: the new state is ``slot[lead] * c`` then ``add_`` of each
    further ``(slot, c)``. ``dense[j]`` is ``(beta, weights)`` when row ``j`` is ``beta*y_0 + Σ_k w_k raw_k`` over many
    outputs (run as one ``addmv`` over a buffer of the outputs), else ``None``. ``free[j]`` lists the slots no later
    row reads (their tensors are dropped after row ``j``). ``derive[j]`` lists ``(slot, alpha)``: the derived tensor
    ``y_j + alpha * raw_j`` formed right after evaluation ``j`` (slots from ``n + width*n`` on, see :func:`compile_plan`).
    """

    plan: Plan
    raw_kind: str
    width: int
    rows: Tuple[Tuple[Tuple[int, float], Tuple[Tuple[int, float], ...]], ...]
    dense: Tuple[Optional[Tuple[float, Tuple[float, ...]]], ...]
    free: Tuple[Tuple[int, ...], ...]
    derive: Tuple[Tuple[Tuple[int, float], ...], ...] = ()
    n_derived: int = 0

    @property
    def uses_buffer(self) -> bool:
        """True when some row runs as an ``addmv`` over the output buffer."""
        return any(d is not None for d in self.dense)


#: Rows reading more raw outputs than this run as one ``addmv`` (when they read no state but ``y_0``).
DENSE_AT = 6


def compile_plan(plan: Plan, interpolant: Interpolant, raw_kind: str) -> Program:
    """Fold every read-as-kind conversion of ``plan`` into coefficients on states and raw outputs of ``raw_kind``.

    An output read as a kind :math:`K = p\,y_k + q\,\mathrm{raw}_k` by later rows is kept once as the derived tensor
    :math:`S_k = y_k + (q/p)\,\mathrm{raw}_k` (one fused op right after the evaluation) and referenced with weight
    :math:`c\,p`, so a history term costs one ``add_``, not two; the evaluation's own row expands it in place.
    """
    n = plan.n
    width = 2 if raw_kind == DATA_SCORE else 1
    base_d = n + width * n
    reads: Dict[Tuple[int, str], Tuple[float, Tuple[float, ...]]] = {}
    for j, row in enumerate(plan.rows):
        for kind, k, _ in row:
            if kind != STATE and (k, kind) not in reads:
                reads[(k, kind)] = read_coefficients(interpolant, raw_kind, plan.model_times[k], kind, plan.times[k])
    later = {(k, kind) for j, row in enumerate(plan.rows) for kind, k, _ in row if kind != STATE and k != j}
    derived: Dict[Tuple[int, str], int] = {}
    derive: List[List[Tuple[int, float]]] = [[] for _ in range(n)]
    for (k, kind) in sorted(later):
        p, q = reads[(k, kind)]
        if width == 1 and p != 0.0 and q[0] != 0.0:
            derived[(k, kind)] = base_d + len(derived)
            derive[k].append((derived[(k, kind)], q[0] / p))
    rows, dense = [], []
    last_use: Dict[int, int] = {}
    for j, row in enumerate(plan.rows):
        acc: Dict[int, float] = {}
        for kind, k, c in row:
            if kind == STATE:
                acc[k] = acc.get(k, 0.0) + c
                continue
            p, q = reads[(k, kind)]
            if k != j and (k, kind) in derived:
                slot = derived[(k, kind)]
                acc[slot] = acc.get(slot, 0.0) + c * p
                continue
            if p != 0.0:
                acc[k] = acc.get(k, 0.0) + c * p
            for comp, qc in enumerate(q):
                if qc != 0.0:
                    slot = n + width * k + comp
                    acc[slot] = acc.get(slot, 0.0) + c * qc
        items = sorted((s, c) for s, c in acc.items() if c != 0.0)
        raw_items = [(s, c) for s, c in items if n <= s < base_d]
        others = {s for s, _ in items if s < n or s >= base_d}
        if width == 1 and len(raw_items) > DENSE_AT and others <= {0}:
            w = [0.0] * (j + 1)
            for s, c in raw_items:
                w[s - n] = c
            dense.append((acc.get(0, 0.0), tuple(w)))
            rows.append(((0, 0.0), ()))
            last_use[0] = j
            continue
        dense.append(None)
        if not items:
            items = [(j, 0.0)]
        # lead with the current state when it appears (its tensor is the freshest), else the first term
        lead = next((it for it in items if it[0] == j), items[0])
        rest = tuple(it for it in items if it is not lead)
        rows.append((lead, rest))
        for s, _ in items:
            last_use[s] = j
    free: List[List[int]] = [[] for _ in range(n)]
    for slot, j in last_use.items():
        free[j].append(slot)
    return Program(plan, raw_kind, width, tuple(rows), tuple(dense), tuple(tuple(f) for f in free),
                   tuple(tuple(d) for d in derive), len(derived))


def combine_terms(lead: torch.Tensor, c0: float, rest: Sequence[Tuple[torch.Tensor, float]]) -> torch.Tensor:
    """:math:`c_0\,\mathrm{lead} + \sum c_k t_k` as one new tensor: ``lead + c_1 t_1`` in one kernel when
    :math:`c_0 = 1` (Runge–Kutta stages), else one multiplication, then one in-place ``add_`` per further term."""
    if c0 == 1.0 and rest:
        t1, c1 = rest[0]
        y = torch.add(lead, t1, alpha=c1)
        rest = rest[1:]
    else:
        y = torch.mul(lead, c0)
    for t, c in rest:
        y.add_(t, alpha=c)
    return y


def euler_update(interpolant: Interpolant, pred: Any, x: torch.Tensor, h: float) -> torch.Tensor:
    """:math:`x + h\,b(t, x)` from a prediction made at ``x``, with exactly the arithmetic of Euler's compiled plan
    (so an SDE step with ε = 0 reproduces the ODE sampler bit for bit)."""
    p, q = read_coefficients(interpolant, pred.kind, pred.t, "velocity", pred.t)
    raws = pred.value if pred.kind == DATA_SCORE else (pred.value,)
    rest = [(r, h * qc) for r, qc in zip(raws, q) if h * qc != 0.0]
    return combine_terms(x, 1.0 + h * p, rest)


def execute(program: Program, field: Field, x: torch.Tensor) -> Iterator[Tuple[int, torch.Tensor, Any]]:
    """Run a program from ``x`` (``y_0``): yields ``(row, new state, prediction at that row's evaluation)`` for every
    row that ends a solver step (``program.plan.ends[row] >= 0``).

    Per evaluation: one model call (the ``(B,)`` time tensors of all calls are built in one op for a plain field),
    then one multiplication and one in-place ``add_`` per further term (or one ``addmv`` for a dense row).
    Differentiable: with ``x`` requiring grad, gradients flow through the states and outputs.
    """
    plan, n, width = program.plan, program.plan.n, program.width
    mtimes = plan.model_times
    tts: Optional[List[torch.Tensor]] = None
    if n > 0:
        tts = list(torch.tensor(mtimes, dtype=x.dtype).to(x.device)[:, None].expand(n, x.shape[0])
                   .contiguous().unbind(0))
    slots: List[Any] = [None] * (n + width * n + program.n_derived)
    slots[0] = x
    buf = vecs = mats = flat0 = None
    if program.uses_buffer:
        flat0 = x.reshape(-1)
        buf = torch.empty((n, flat0.shape[0]), dtype=x.dtype, device=x.device)
        rowsv = list(buf.unbind(0))
        mats = [buf[: j + 1].t() for j in range(n)]
        vecs = {j: torch.tensor(d[1], dtype=x.dtype).to(x.device) for j, d in enumerate(program.dense) if d is not None}
    ends, rows, dense, free, derive = plan.ends, program.rows, program.dense, program.free, program.derive
    first = None  # the prediction at the current step's first evaluation (what a Step reports)
    for j in range(n):
        y = slots[j]
        pred = field.predict(y, mtimes[j], tts[j])  # type: ignore[index]
        if first is None:
            first = pred
        raw = pred.value
        base = n + width * j
        if width == 1:
            slots[base] = raw
        else:
            slots[base], slots[base + 1] = raw
        for ds, al in derive[j]:
            slots[ds] = torch.add(y, raw, alpha=al)
        if buf is not None:
            rowsv[j].copy_(raw.reshape(-1))  # type: ignore[union-attr]
        d = dense[j]
        if d is not None:
            y = torch.addmv(flat0, mats[j], vecs[j], beta=d[0]).view_as(x)  # type: ignore[index,arg-type]
        else:
            (ls, lc), rest = rows[j]
            y = combine_terms(slots[ls], lc, [(slots[s], c) for s, c in rest])
        for s in free[j]:
            if s != 0 or buf is None:
                slots[s] = None
        if j + 1 < n:
            slots[j + 1] = y
        if ends[j] >= 0:
            yield j, y, first
            first = None


# --------------------------------------------------------------------------------------------------------------
# Caches keyed by value
# --------------------------------------------------------------------------------------------------------------
def value_key(obj: Config) -> Tuple[Any, ...]:
    """A hashable key describing a configuration (solver, interpolant) by value, holding no reference to it."""
    return obj.config_key()


class ValueCache:
    """A small thread-safe LRU map for plans and programs (pure functions of their keys)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._data: "OrderedDict[Any, Any]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built (outside the lock) and stored on a miss."""
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        value = build()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


PLANS = ValueCache()
PROGRAMS = ValueCache()

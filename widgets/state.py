"""Dashboard state: one validated configuration, its URL form, and the parameter specs the controls are built from.

Everything here is pure (no Panel, no ipywidgets), so both front ends and the tests share it. URL parameters are
untrusted input: :func:`parse_query` only ever converts strings with ``int``/``float``/``json.loads`` (never
``eval``), bounds every number and length, checks every name against its registry, and returns readable
messages instead of raising. The combination (e.g. a log-SNR solver on an interpolant without a Gaussian part)
is checked by :func:`build_experiment`, which turns every failure into one readable line.

URL form (all keys optional)::

    ?data=gmm2d&interpolant=sb&interpolant.a=0.5&schedule=edm&schedule.rho=7&solver=heun&nfe=20
     &eps=0&seed=0&particles=2000&compare=1&solver_b=euler&schedule_b=uniform&nfe_b=20
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from workbench.errors import ConfigError, WorkbenchError
from workbench.interpolants import INTERPOLANTS
from workbench.problems import PROBLEMS
from workbench.schedules import SCHEDULES
from workbench.solvers import SOLVERS

#: Bounds of the numeric controls (URL values outside them are rejected with a message).
NFE_RANGE = (1, 200)
PARTICLES_RANGE = (1, 20_000)
SEED_RANGE = (0, 2**31 - 1)
EPS_RANGE = (0.0, 10.0)
#: Limits on untrusted URL input.
MAX_VALUE_CHARS = 200
MAX_QUERY_KEYS = 64
#: Largest integer a data parameter (dimension, modes) may take in the dashboard.
MAX_DATA_INT = 100_000

#: family prefix in the URL → registry.
FAMILIES = {"data": PROBLEMS, "interpolant": INTERPOLANTS, "schedule": SCHEDULES, "solver": SOLVERS}


@dataclass
class DashboardConfig:
    """Everything the dashboard's controls set. Panel ``b`` (side-by-side mode) shares data, interpolant,
    seed and particles with panel ``a`` (hence the same start states and the same noise) and has its own
    solver, schedule and NFE."""

    data: str = "gmm2d"
    data_params: Dict[str, Any] = field(default_factory=dict)
    interpolant: str = "linear"
    interpolant_params: Dict[str, Any] = field(default_factory=dict)
    schedule: str = "uniform"
    schedule_params: Dict[str, Any] = field(default_factory=dict)
    solver: str = "heun"
    solver_params: Dict[str, Any] = field(default_factory=dict)
    nfe: int = 20
    eps: float = 0.0
    seed: int = 0
    particles: int = 2000
    compare: bool = False
    solver_b: str = "euler"
    schedule_b: str = "uniform"
    nfe_b: int = 20

    def to_json(self) -> str:
        """The configuration as pretty JSON (the dashboard's 'config' export)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def panel(self, which: str = "a") -> "DashboardConfig":
        """The configuration of side ``which`` (``"b"`` swaps in solver_b/schedule_b/nfe_b)."""
        if which == "a":
            return self
        return replace(self, solver=self.solver_b, schedule=self.schedule_b, nfe=self.nfe_b,
                       schedule_params={} if self.schedule_b != self.schedule else dict(self.schedule_params),
                       solver_params={} if self.solver_b != self.solver else dict(self.solver_params))


@dataclass
class ParamSpec:
    """One constructor parameter of a registry entry, as a control: ``kind`` is float/int/bool/str/json."""

    name: str
    default: Any
    kind: str


def param_specs(family: str, name: str) -> List[ParamSpec]:
    """The controls for the parameters of registry entry ``name`` of ``family`` (from its signature)."""
    reg = FAMILIES[family]
    out = []
    for pname, default in reg.parameters(name).items():
        if family == "solver" and pname == "eps":  # the ε(t) control sets it
            continue
        if isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif isinstance(default, str):
            kind = "str"
        else:  # None, required, dicts, ...: entered as JSON text
            kind = "json"
            default = None if default is _empty() else default
        out.append(ParamSpec(pname, default, kind))
    return out


def _empty():
    import inspect

    return inspect.Parameter.empty


def convert_param(spec: ParamSpec, raw: Any, field_name: str) -> Any:
    """Convert a raw control/URL value to the parameter's type; raise :class:`ConfigError` naming the field."""
    try:
        if spec.kind == "bool":
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if spec.kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            v = float(raw) if not isinstance(raw, int) else raw
            limit = MAX_DATA_INT if field_name.startswith("data") else 1e12
            if not math.isfinite(v) or v != int(v) or (abs(v) > limit and v != spec.default):
                raise ValueError
            return int(v)
        if spec.kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            v = float(raw)
            if not math.isfinite(v) or abs(v) > 1e12:
                raise ValueError
            return v
        if spec.kind == "str":
            s = str(raw)
            if len(s) > MAX_VALUE_CHARS:
                raise ValueError
            return s
        # json: only plain literals (null, numbers, strings, booleans, flat lists of numbers)
        if raw is None or (isinstance(raw, str) and raw.strip() in ("", "null", "None")):
            return None
        v = json.loads(raw) if isinstance(raw, str) else raw
        ok = v is None or isinstance(v, (bool, int, float, str)) or (
            isinstance(v, list) and len(v) <= 64 and all(isinstance(e, (int, float)) for e in v))
        if not ok:
            raise ValueError
        return v
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        shown = str(raw)[:40]
        raise ConfigError(field_name, f"expected a {spec.kind} value, got {shown!r}") from None


def _as_str(v: Any) -> str:
    """A query value (Bokeh's session args are lists of bytes) as one bounded string."""
    if isinstance(v, (list, tuple)):
        v = v[-1] if v else ""
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace")
    s = str(v)
    if len(s) > MAX_VALUE_CHARS:
        raise ConfigError("url", f"a value is longer than {MAX_VALUE_CHARS} characters")
    return s


def _bounded_int(raw: str, name: str, lo: int, hi: int) -> int:
    try:
        v = float(raw)
        if not math.isfinite(v) or v != int(v):
            raise ValueError
    except (ValueError, OverflowError):
        raise ConfigError(name, f"must be an integer in [{lo}, {hi}], got {raw[:40]!r}") from None
    v = int(v)
    if not lo <= v <= hi:
        raise ConfigError(name, f"must be an integer in [{lo}, {hi}], got {v}")
    return v


def _bounded_float(raw: str, name: str, lo: float, hi: float) -> float:
    try:
        v = float(raw)
    except (ValueError, OverflowError):
        raise ConfigError(name, f"must be a number in [{lo}, {hi}], got {raw[:40]!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ConfigError(name, f"must be a number in [{lo}, {hi}], got {raw[:40]!r}")
    return v


_SCALARS = {
    "nfe": lambda s: _bounded_int(s, "nfe", *NFE_RANGE),
    "nfe_b": lambda s: _bounded_int(s, "nfe_b", *NFE_RANGE),
    "particles": lambda s: _bounded_int(s, "particles", *PARTICLES_RANGE),
    "seed": lambda s: _bounded_int(s, "seed", *SEED_RANGE),
    "eps": lambda s: _bounded_float(s, "eps", *EPS_RANGE),
    "compare": lambda s: convert_param(ParamSpec("compare", False, "bool"), s, "compare"),
    "solver_b": lambda s: SOLVERS.canonical(s),
    "schedule_b": lambda s: SCHEDULES.canonical(s),
}


def parse_query(query: Optional[Mapping[str, Any]], base: Optional[DashboardConfig] = None
                ) -> Tuple[DashboardConfig, List[str]]:
    """Validate URL query parameters into a :class:`DashboardConfig`.

    Never raises and never evaluates input: each bad entry is dropped (its default is kept) and reported as
    one readable message.

    Args:
        query: ``{key: value}``; values may be str, bytes, or lists of them (Bokeh's ``session_args``).
        base: the configuration to start from (default: :class:`DashboardConfig()`).

    Returns:
        ``(config, messages)``.
    """
    cfg = replace(base) if base is not None else DashboardConfig()
    for fam in FAMILIES:
        setattr(cfg, f"{fam}_params", dict(getattr(cfg, f"{fam}_params")))
    msgs: List[str] = []
    if not query:
        return cfg, msgs
    if not isinstance(query, Mapping):
        return cfg, ["url: query parameters must be a mapping"]
    items = list(query.items())
    if len(items) > MAX_QUERY_KEYS:
        msgs.append(f"url: more than {MAX_QUERY_KEYS} parameters; only the first {MAX_QUERY_KEYS} were read")
        items = items[:MAX_QUERY_KEYS]
    raw: Dict[str, str] = {}
    for k, v in items:
        key = _as_str(k) if isinstance(k, bytes) else str(k)
        if len(key) > 64:
            msgs.append("url: a parameter name is too long; ignored")
            continue
        try:
            raw[key] = _as_str(v)
        except ConfigError as exc:
            msgs.append(f"{key[:40]}: {exc}")
    # 1. registry names (params depend on them)
    for fam, reg in FAMILIES.items():
        if fam in raw:
            try:
                new = reg.canonical(raw[fam])
                if new != getattr(cfg, fam):
                    setattr(cfg, f"{fam}_params", {})
                setattr(cfg, fam, new)
            except ConfigError:
                msgs.append(f"{fam}: unknown name {raw[fam][:40]!r}; valid names are: {', '.join(reg.names())}")
    # 2. scalars
    for key, conv in _SCALARS.items():
        if key in raw:
            try:
                setattr(cfg, key, conv(raw[key]))
            except ConfigError as exc:
                if key in ("solver_b", "schedule_b"):
                    reg = SOLVERS if key == "solver_b" else SCHEDULES
                    msgs.append(f"{key}: unknown name {raw[key][:40]!r}; valid names are: {', '.join(reg.names())}")
                else:
                    msgs.append(str(exc))
    # 3. family parameters "family.param"
    for key, value in raw.items():
        if key in FAMILIES or key in _SCALARS:
            continue
        fam, dot, pname = key.partition(".")
        if not dot or fam not in FAMILIES:
            msgs.append(f"url: unknown parameter {key[:40]!r} ignored")
            continue
        specs = {s.name: s for s in param_specs(fam, getattr(cfg, fam))}
        if pname not in specs:
            allowed = ", ".join(specs) or "(none)"
            msgs.append(f"{fam}_params: {fam} {getattr(cfg, fam)!r} has no parameter {pname[:40]!r}; "
                        f"its parameters are: {allowed}")
            continue
        try:
            getattr(cfg, f"{fam}_params")[pname] = convert_param(specs[pname], value, f"{fam}.{pname}")
        except ConfigError as exc:
            msgs.append(str(exc))
    return cfg, msgs


def config_to_query(cfg: DashboardConfig) -> Dict[str, str]:
    """The URL query of ``cfg`` (inverse of :func:`parse_query`; side-b keys only in compare mode)."""
    q: Dict[str, str] = {}
    for fam in FAMILIES:
        q[fam] = getattr(cfg, fam)
        for k, v in getattr(cfg, f"{fam}_params").items():
            q[f"{fam}.{k}"] = json.dumps(v) if (v is None or isinstance(v, (list, bool))) else str(v)
    q.update(nfe=str(cfg.nfe), eps=repr(float(cfg.eps)), seed=str(cfg.seed), particles=str(cfg.particles))
    if cfg.compare:
        q.update(compare="1", solver_b=cfg.solver_b, schedule_b=cfg.schedule_b, nfe_b=str(cfg.nfe_b))
    return q


def solver_traits(name: str) -> str:
    """A one-line description of a solver from its class attributes (shown under the selector)."""
    c = SOLVERS.cls(name)
    kind = "SDE" if c.stochastic else "ODE"
    bits = [kind, f"order {c.order}"]
    bits.append("adaptive (NFE = cap)" if c.adaptive else f"{c.evals_per_step} eval/step")
    if c.needs_gaussian:
        bits.append("log-SNR: needs a Gaussian part")
    return f"{name}: " + ", ".join(bits)


def build_experiment(cfg: DashboardConfig, which: str = "a", keep_trajectory: bool = False):
    """The :class:`~workbench.experiment.Experiment` of side ``which``, or ``(None, message)``.

    Every failure (unknown names, bad parameter values, a log-SNR solver on an interpolant without a
    Gaussian part, NFE below the solver's evaluations per step) becomes one readable line.

    Returns:
        ``(experiment, None)`` or ``(None, message)``.
    """
    from workbench.experiment import Experiment

    c = cfg.panel(which)
    label = "A" if which == "a" else "B"
    try:
        stochastic = SOLVERS.cls(c.solver).stochastic
        exp = Experiment(
            interpolant=c.interpolant, interpolant_params=dict(c.interpolant_params), schedule=c.schedule,
            schedule_params=dict(c.schedule_params), solver=c.solver, solver_params=dict(c.solver_params),
            nfe=c.nfe, eps=float(c.eps) if stochastic else 0.0, data=c.data, data_params=dict(c.data_params),
            n_samples=c.particles, seed=c.seed, keep_trajectory=keep_trajectory,
        )
        if c.nfe > NFE_RANGE[1] or c.particles > PARTICLES_RANGE[1]:
            raise ConfigError("nfe" if c.nfe > NFE_RANGE[1] else "particles", "out of the dashboard's range")
        return exp, None
    except WorkbenchError as exc:
        return None, f"{label}: {exc}"
    except Exception as exc:  # a constructor rejecting a value in its own words: still one line, no traceback
        return None, f"{label}: {type(exc).__name__}: {exc}"

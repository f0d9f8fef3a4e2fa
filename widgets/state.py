"""Dashboard state: one validated configuration, its URL form, and the parameter specs the controls are built from.

Everything here is pure (no Panel, no ipywidgets), so both front ends and the tests share it. URL parameters are
untrusted input: :func:`parse_query` only ever converts strings with ``int``/``float``/``json.loads`` (never
``eval``), bounds every number and length, checks every name against its registry, and returns readable
messages instead of raising. The combination (e.g. a log-SNR solver on an interpolant without a Gaussian part)
is checked by :func:`build_experiment`, which turns every failure into one readable line.

URL form (all keys optional)::

    ?data=gmm2d&interpolant=sb&interpolant.a=0.5&schedule=edm&schedule.rho=7&solver=heun&nfe=20
     &eps=0&seed=0&particles=2000&t_start=0&t_end=1&compare=1&solver_b=euler&schedule_b=uniform&nfe_b=20
     &theme=dark

Server-side safety (a link is untrusted input, and so is every control):

* **No path, file or folder ever comes from a URL or a control.** Constructor parameters that name one
  (``cache_dir``, ``checkpoint`` and any name containing ``path``/``dir``/``file``/``ckpt``/``root``) get no
  control, and a URL naming them is refused with a message. Caches live in the server-configured folder
  :data:`SERVER_CACHE_DIR` (``$WORKBENCH_DASHBOARD_CACHE``, default ``data/cache``); a model checkpoint is chosen
  *by name* from the server's list :func:`server_checkpoints` (``$WORKBENCH_DASHBOARD_CHECKPOINTS`` =
  ``name=path`` entries separated by ``os.pathsep``); the path itself never leaves the server.
* **Every size is capped**, so one session cannot exhaust memory or CPU (values outside are refused with a
  message, never clamped):

  ==================================  ==============================================================
  ``nfe``, ``nfe_b``                   1 … 200 model evaluations
  ``particles``                        1 … 10 000, and particles × (numbers per sample) ≤ 2²² (≈ 4 M
                                       numbers = 32 MB per float64 state; e.g. ≤ 4 096 vorticity
                                       fields of 32², ≤ 1 024 of 64²)
  ``eps``                              0 … 5;  ``t_start``, ``t_end``: 0 ≤ t_start < t_end ≤ 1
  ``data.dim``                         1 … 256;  ``data.n_modes``: 1 … 64
  ``data.steps`` / ``data.iterations``  training steps 1 … 5 000 / 1 … 2 000
  ``data.width``, ``data.depth``       1 … 128, 1 … 6;  ``data.modes``, ``data.layers``: 1 … 16, 1 … 8
  ``data.grid``, ``data.sim_grid``     16 … 64, 16 … 128;  ``data.warmup``: 0 … 50
  ``solver.n_corrector``               0 … 10;  ``solver.order``/``solver.history``: 1 … 4
  other integers                       |v| ≤ 10 000;  other numbers: finite, |v| ≤ 10⁶
  JSON values                          flat lists of ≤ 64 numbers;  strings ≤ 200 characters
  ==================================  ==============================================================
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from workbench.errors import ConfigError, WorkbenchError
from workbench.interpolants import INTERPOLANTS
from workbench.problems import PROBLEMS
from workbench.schedules import SCHEDULES
from workbench.solvers import SOLVERS

#: Bounds of the numeric controls (URL values outside them are rejected with a message).
NFE_RANGE = (1, 200)
PARTICLES_RANGE = (1, 10_000)
SEED_RANGE = (0, 2**31 - 1)
EPS_RANGE = (0.0, 5.0)
T_RANGE = (0.0, 1.0)
#: page themes (``?theme=dark`` also darkens the plots).
THEMES = ("default", "dark")
#: particles × numbers per sample may not exceed this (32 MB per float64 state).
MAX_STATE_ELEMENTS = 2**22
#: Limits on untrusted URL input.
MAX_VALUE_CHARS = 200
MAX_QUERY_KEYS = 64
#: (family, parameter) → inclusive (lo, hi) of the dashboard; see the module docstring's table.
PARAM_CAPS: Dict[Tuple[str, str], Tuple[float, float]] = {
    ("data", "dim"): (1, 256), ("data", "n_modes"): (1, 64), ("data", "steps"): (1, 5000),
    ("data", "iterations"): (1, 2000), ("data", "width"): (1, 128), ("data", "depth"): (1, 6),
    ("data", "modes"): (1, 16), ("data", "layers"): (1, 8), ("data", "grid"): (16, 64),
    ("data", "sim_grid"): (16, 128), ("data", "warmup"): (0.0, 50.0), ("data", "seed"): (0, 2**31 - 1),
    ("solver", "n_corrector"): (0, 10), ("solver", "order"): (1, 4), ("solver", "history"): (1, 4),
    ("interpolant", "num_train_timesteps"): (2, 10_000),
}
#: caps of parameters without an entry in PARAM_CAPS.
DEFAULT_INT_CAP = 10_000
DEFAULT_FLOAT_CAP = 1e6
#: constructor parameters naming a path, file or folder: never a control, never read from a URL.
_PATHLIKE = re.compile(r"(path|dir|file|ckpt|checkpoint|root|cache|folder)", re.I)
#: the folder where the dashboard's problems cache data and trained models (set by the server, not a link).
SERVER_CACHE_DIR = os.environ.get("WORKBENCH_DASHBOARD_CACHE", os.path.join("data", "cache"))


def server_checkpoints() -> Dict[str, str]:
    """The server's model checkpoints a session may choose *by name*: ``$WORKBENCH_DASHBOARD_CHECKPOINTS`` holds
    ``name=path`` entries separated by ``os.pathsep`` (names: letters, digits, ``_-.``)."""
    out: Dict[str, str] = {}
    for entry in os.environ.get("WORKBENCH_DASHBOARD_CHECKPOINTS", "").split(os.pathsep):
        name, eq, path = entry.partition("=")
        if eq and re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name.strip()) and path.strip():
            out[name.strip()] = path.strip()
    return out


def is_server_only(family: str, pname: str) -> bool:
    """True when parameter ``pname`` names a path, file or folder (never set from a URL or a control)."""
    return bool(_PATHLIKE.search(pname))

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
    t_start: float = 0.0
    t_end: float = 1.0
    compare: bool = False
    solver_b: str = "euler"
    schedule_b: str = "uniform"
    nfe_b: int = 20
    theme: str = "default"

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
    """One constructor parameter of a registry entry, as a control: ``kind`` is float/int/bool/str/json/choice
    (``choice``: one of ``choices``); ``bounds`` is the dashboard's inclusive range of a number."""

    name: str
    default: Any
    kind: str
    choices: Tuple[str, ...] = ()
    bounds: Optional[Tuple[float, float]] = None


#: the value of a checkpoint choice meaning "train / use the built-in model".
NO_CHECKPOINT = "none"


def param_specs(family: str, name: str) -> List[ParamSpec]:
    """The controls for the parameters of registry entry ``name`` of ``family`` (from its signature).

    Path-like parameters are left out (:func:`is_server_only`), except ``checkpoint``, which becomes a choice
    among the server's checkpoint *names* (:func:`server_checkpoints`)."""
    reg = FAMILIES[family]
    out = []
    for pname, default in reg.parameters(name).items():
        if family == "solver" and pname == "eps":  # the ε(t) control sets it
            continue
        if family == "data" and pname == "checkpoint":
            out.append(ParamSpec(pname, NO_CHECKPOINT, "choice", (NO_CHECKPOINT, *sorted(server_checkpoints()))))
            continue
        if is_server_only(family, pname):
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
        bounds = None
        if kind == "int":
            bounds = PARAM_CAPS.get((family, pname), (-DEFAULT_INT_CAP, DEFAULT_INT_CAP))
        elif kind == "float":
            bounds = PARAM_CAPS.get((family, pname), (-DEFAULT_FLOAT_CAP, DEFAULT_FLOAT_CAP))
        out.append(ParamSpec(pname, default, kind, bounds=bounds))
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
        if spec.kind == "choice":
            s = str(raw)
            if s not in spec.choices:
                raise ConfigError(field_name, f"must be one of: {', '.join(spec.choices)}; got {s[:40]!r}")
            return s
        if spec.kind in ("int", "float"):
            if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip()):
                raise ValueError
            v = float(raw) if not isinstance(raw, int) else raw
            if not math.isfinite(v) or (spec.kind == "int" and v != int(v)):
                raise ValueError
            lo, hi = spec.bounds or (-math.inf, math.inf)
            if not lo <= v <= hi:
                raise ConfigError(field_name, f"must be {'an integer' if spec.kind == 'int' else 'a number'} in "
                                              f"[{lo}, {hi}] (the dashboard's cap), got {v:g}")
            return int(v) if spec.kind == "int" else float(v)
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
    except ConfigError:
        raise
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


def _bounded_int(raw: Any, name: str, lo: int, hi: int) -> int:
    """``raw`` (a URL string or a control's value) as an int in ``[lo, hi]``, else :class:`ConfigError`."""
    if raw is None or isinstance(raw, bool) or (isinstance(raw, str) and not raw.strip()):
        raise ConfigError(name, f"enter an integer in [{lo}, {hi}]")
    raw = str(raw)
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


def _bounded_float(raw: Any, name: str, lo: float, hi: float) -> float:
    """``raw`` as a finite float in ``[lo, hi]``, else :class:`ConfigError` (never clamped)."""
    if raw is None or isinstance(raw, bool) or (isinstance(raw, str) and not raw.strip()):
        raise ConfigError(name, f"enter a number in [{lo}, {hi}]")
    raw = str(raw)
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
    "t_start": lambda s: _bounded_float(s, "t_start", *T_RANGE),
    "t_end": lambda s: _bounded_float(s, "t_end", *T_RANGE),
    "compare": lambda s: convert_param(ParamSpec("compare", False, "bool"), s, "compare"),
    "solver_b": lambda s: SOLVERS.canonical(s),
    "schedule_b": lambda s: SCHEDULES.canonical(s),
    "theme": lambda s: convert_param(ParamSpec("theme", "default", "choice", THEMES), s, "theme"),
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
        if is_server_only(fam, pname) and pname != "checkpoint":
            msgs.append(f"{fam}.{pname[:40]}: refused: paths, files and folders are set by the server, never by "
                        "a link")
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
    if (cfg.t_start, cfg.t_end) != (0.0, 1.0):
        q.update(t_start=repr(float(cfg.t_start)), t_end=repr(float(cfg.t_end)))
    if cfg.theme != "default":
        q["theme"] = cfg.theme
    if cfg.compare:
        q.update(compare="1", solver_b=cfg.solver_b, schedule_b=cfg.schedule_b, nfe_b=str(cfg.nfe_b))
    return q


def solver_traits(name: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """A one-line description of solver ``name`` built with ``params``, read from the *instance* (its order and
    evaluations per step may depend on the parameters and differ from the class defaults)."""
    c = SOLVERS.cls(name)
    try:
        s = SOLVERS.get(name, **dict(params or {}))
    except Exception:  # bad parameters: describe the class (the run reports the error)
        s = c
    kind = "SDE" if getattr(s, "stochastic", c.stochastic) else "ODE"
    bits = [kind, f"order {getattr(s, 'order', c.order)}"]
    eps = getattr(s, "evals_per_step", c.evals_per_step)
    bits.append("adaptive (NFE = cap)" if getattr(s, "adaptive", c.adaptive) else
                f"{eps} eval{'s' if eps != 1 else ''}/step")
    if getattr(s, "needs_gaussian", c.needs_gaussian):
        bits.append("log-SNR: needs a Gaussian part")
    return f"{name}: " + ", ".join(bits)


def server_data_params(data: str, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The data parameters as the server passes them: the cache folder is :data:`SERVER_CACHE_DIR`, and a
    checkpoint *name* becomes the server's path for it (or no checkpoint)."""
    out = dict(params)
    accepted = PROBLEMS.parameters(data)
    if "cache_dir" in accepted:
        out["cache_dir"] = SERVER_CACHE_DIR
    if "checkpoint" in accepted:
        name = out.pop("checkpoint", NO_CHECKPOINT)
        if name != NO_CHECKPOINT:
            paths = server_checkpoints()
            if name not in paths:
                raise ConfigError("data.checkpoint", f"unknown checkpoint {str(name)[:40]!r}; the server offers: "
                                  f"{', '.join([NO_CHECKPOINT, *sorted(paths)])}")
            out["checkpoint"] = paths[name]
    return out


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
        takes_eps = "eps" in SOLVERS.parameters(c.solver)  # pc, mrs_sde: stochastic without an ε(t) parameter
        for key, lo, hi in (("nfe", *NFE_RANGE), ("particles", *PARTICLES_RANGE), ("seed", *SEED_RANGE)):
            _bounded_int(getattr(c, key), key, lo, hi)
        _bounded_float(c.eps, "eps", *EPS_RANGE)
        _bounded_float(c.t_start, "t_start", *T_RANGE)
        _bounded_float(c.t_end, "t_end", *T_RANGE)
        if not c.t_start < c.t_end:
            raise ConfigError("t_start", f"must be below t_end = {c.t_end:g}, got {c.t_start:g}")
        for fam in FAMILIES:  # the caps and the no-path rule hold for values set in Python too
            specs = {s.name: s for s in param_specs(fam, getattr(c, fam))}
            for k, v in getattr(c, f"{fam}_params").items():
                if k not in specs:
                    raise ConfigError(f"{fam}.{k}", "is not a dashboard parameter (paths are set by the server)")
                convert_param(specs[k], v, f"{fam}.{k}")
        solver = SOLVERS.get(c.solver, **dict(c.solver_params))
        per_step = 1 if getattr(solver, "adaptive", False) else int(getattr(solver, "evals_per_step", 1))
        if c.nfe < per_step:
            raise ConfigError("nfe", f"{c.solver} spends {per_step} evaluations per step; NFE must be at least "
                                     f"{per_step}, got {c.nfe}")
        exp = Experiment(
            interpolant=c.interpolant, interpolant_params=dict(c.interpolant_params), schedule=c.schedule,
            schedule_params=dict(c.schedule_params), solver=c.solver, solver_params=dict(c.solver_params),
            nfe=c.nfe, eps=float(c.eps) if takes_eps else 0.0, data=c.data,
            data_params=server_data_params(c.data, c.data_params), n_samples=c.particles, seed=c.seed,
            t_start=float(c.t_start), t_end=float(c.t_end), keep_trajectory=keep_trajectory,
        )
        per_sample = math.prod(int(d) for d in exp._problem.shape)
        if c.particles * per_sample > MAX_STATE_ELEMENTS:
            raise ConfigError("particles", f"at most {MAX_STATE_ELEMENTS // per_sample} for {c.data} (samples of "
                                           f"shape {tuple(exp._problem.shape)}: particles × {per_sample} numbers must "
                                           f"stay ≤ {MAX_STATE_ELEMENTS}), got {c.particles}")
        return exp, None
    except WorkbenchError as exc:
        return None, f"{label}: {exc}"
    except Exception as exc:  # a constructor rejecting a value in its own words: still one line, no traceback
        return None, f"{label}: {type(exc).__name__}: {exc}"

"""The dashboard's state as ``param`` objects: what the Panel controls are generated from.

* :class:`DashboardState` -- the *validated* state of one session: ``param.Selector`` over each registry
  (problems, interpolants, schedules, solvers), ``param.Integer``/``param.Number`` with hard ``bounds`` = the caps
  of :mod:`widgets.state` (:data:`~widgets.state.NFE_RANGE`, :data:`~widgets.state.PARTICLES_RANGE`,
  :data:`~widgets.state.EPS_RANGE`, :data:`~widgets.state.T_RANGE`, ...), and one Parameterized *sub-object* per
  family (``data_params``, ``interpolant_params``, ...) whose class is generated from the chosen registry entry's
  constructor signature (:func:`entry_class`; caps from :data:`~widgets.state.PARAM_CAPS`, choices become
  ``param.Selector``, path-like parameters are left out). A value outside the bounds raises, as param does.
* :class:`DashboardForm` -- the same parameters with the caps as *soft* bounds (the widgets' ranges) and
  ``allow_None`` (an empty box): what the controls are linked to. A typed-in value outside the caps is kept as
  typed (nothing the user typed is lost) and :meth:`DashboardForm.check` refuses it with a readable message for
  that control (never clamped); only a checked configuration reaches :class:`DashboardState`.

Both convert to and from :class:`~widgets.state.DashboardConfig`, so :func:`~widgets.state.parse_query` (the one
validator of untrusted URL input), :func:`~widgets.state.config_to_query` and
:func:`~widgets.state.build_experiment` keep working on the dataclass. Pure param: no Panel import here.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional, Tuple, Type

import param

from workbench.errors import ConfigError
from widgets.state import (EPS_RANGE, FAMILIES, NFE_RANGE, PARTICLES_RANGE, SEED_RANGE, T_RANGE, THEMES,
                           DashboardConfig, ParamSpec, _bounded_float, _bounded_int, convert_param, param_specs,
                           server_checkpoints)

_DEFAULT = DashboardConfig()
#: the top-level numeric parameters and their caps (hard bounds of the state, soft bounds of the form).
SCALAR_CAPS: Dict[str, Tuple[Any, Any]] = {"nfe": NFE_RANGE, "nfe_b": NFE_RANGE, "particles": PARTICLES_RANGE,
                                           "seed": SEED_RANGE, "eps": EPS_RANGE, "t_start": T_RANGE, "t_end": T_RANGE}



def first_error(errors: Dict[str, str]) -> ConfigError:
    """The first refusal of ``errors`` (control key → "key: message") as a :class:`ConfigError` naming its key."""
    key = next(iter(errors))
    return ConfigError(key, errors[key].split(": ", 1)[-1])

class EntryParams(param.Parameterized):
    """Base of the generated per-entry classes: the constructor parameters of one registry entry.

    Class attributes set by :func:`entry_class`: ``family``, ``entry`` (the registry name), ``specs``
    (``{name: ParamSpec}``) and ``form`` (True: the controls' variant, with soft bounds and JSON as text)."""

    family: str = ""
    entry: str = ""
    specs: Dict[str, ParamSpec] = {}
    form: bool = False

    def names(self):
        """The parameter names, in signature order."""
        return list(self.specs)

    def set_values(self, values: Dict[str, Any]) -> None:
        """Set parameters from DashboardConfig-style values (missing ones keep their defaults)."""
        upd = {}
        for k, v in values.items():
            spec = self.specs.get(k)
            if spec is None:
                continue
            upd[k] = _form_value(spec, v) if self.form else v
        self.param.update(**upd)

    def check(self) -> Tuple[Dict[str, Any], Dict[str, str]]:
        """``(values that differ from the defaults, {"family.param": message})`` (caps and JSON checked)."""
        out, errors = {}, {}
        for k, spec in self.specs.items():
            key = f"{self.family}.{k}"
            try:
                v = convert_param(spec, getattr(self, k), key)
            except ConfigError as exc:
                errors[key] = str(exc)
                continue
            if v != spec.default:
                out[k] = v
        return out, errors


def _form_value(spec: ParamSpec, v: Any) -> Any:
    """A DashboardConfig value as the form holds it (JSON values as text)."""
    if spec.kind == "json":
        return "" if v is None else json.dumps(v)
    return v


class JSONLiteral(param.Parameter):
    """A JSON literal (null, a number, a string, a flat list of numbers); its URL form is its JSON text."""

    @classmethod
    def serialize(cls, value):
        return value

    @classmethod
    def deserialize(cls, value):
        return json.loads(value) if isinstance(value, str) else value


def _param_of(spec: ParamSpec, form: bool, family: str = "", entry: str = "") -> param.Parameter:
    """The param Parameter of one constructor parameter (its kind from :func:`~widgets.state.param_specs`),
    labelled ``family.name`` (the URL key)."""
    label = f"{family}.{spec.name}" if family else spec.name
    doc = f"constructor parameter {spec.name} of {family} {entry}".rstrip()
    if spec.bounds is not None:
        doc += f"; the dashboard allows {spec.bounds[0]:g} … {spec.bounds[1]:g}"
    p = _make_param(spec, form, doc)
    p.label = label + (" (JSON: null, a number or a list like [0, 0.5, 1])" if spec.kind == "json" else "")
    return p


def _make_param(spec: ParamSpec, form: bool, doc: str) -> param.Parameter:
    if spec.kind == "bool":
        return param.Boolean(default=bool(spec.default), doc=doc)
    if spec.kind == "choice":
        return param.Selector(objects=list(spec.choices), default=spec.default, doc=doc)
    if spec.kind in ("int", "float"):
        cls = param.Integer if spec.kind == "int" else param.Number
        lo, hi = spec.bounds
        if form:
            return cls(default=spec.default, bounds=None, softbounds=(lo, hi), allow_None=True, doc=doc)
        return cls(default=spec.default, bounds=(lo, hi), doc=doc)
    if spec.kind == "str":
        return param.String(default=spec.default, doc=doc)
    # json: a literal (null, number, string, flat list of numbers); the form holds its JSON text
    if form:
        return param.String(default=_form_value(spec, spec.default), doc=doc)
    return JSONLiteral(default=spec.default, doc=doc)


_CLASSES: Dict[Tuple[str, str, bool, Tuple[str, ...]], Type[EntryParams]] = {}


def entry_class(family: str, name: str, form: bool = False) -> Type[EntryParams]:
    """The Parameterized class of registry entry ``name`` of ``family``, generated from its constructor signature
    (cached; the checkpoint choices follow the server's list)."""
    key = (family, name, form, tuple(sorted(server_checkpoints())) if family == "data" else ())
    cls = _CLASSES.get(key)
    if cls is None:
        specs = {s.name: s for s in param_specs(family, name)}
        attrs: Dict[str, Any] = {k: _param_of(s, form, family, name) for k, s in specs.items()}
        attrs.update(family=family, entry=name, specs=specs, form=form)
        cname = re.sub(r"\W", "_", f"{family}_{name}{'_form' if form else ''}")
        cls = _CLASSES[key] = type(cname, (EntryParams,), attrs)
    return cls


def _sub(family: str, label: str) -> param.ClassSelector:
    return param.ClassSelector(class_=EntryParams, default=None, label=label, instantiate=False,
                               doc=f"the parameters of the chosen {family} (generated from its signature)")


class DashboardState(param.Parameterized):
    """The validated state of one dashboard session (see the module docstring)."""

    data = param.Selector(objects=FAMILIES["data"].names(), default=_DEFAULT.data, label="data / model")
    interpolant = param.Selector(objects=FAMILIES["interpolant"].names(), default=_DEFAULT.interpolant,
                                 label="interpolant")
    schedule = param.Selector(objects=FAMILIES["schedule"].names(), default=_DEFAULT.schedule, label="schedule")
    solver = param.Selector(objects=FAMILIES["solver"].names(), default=_DEFAULT.solver, label="solver")
    nfe = param.Integer(default=_DEFAULT.nfe, bounds=NFE_RANGE, label="NFE")
    eps = param.Number(default=_DEFAULT.eps, bounds=EPS_RANGE, step=0.05, label="ε (SDE solvers)")
    seed = param.Integer(default=_DEFAULT.seed, bounds=SEED_RANGE, label="seed")
    particles = param.Integer(default=_DEFAULT.particles, bounds=PARTICLES_RANGE, step=100, label="particles")
    t_start = param.Number(default=_DEFAULT.t_start, bounds=T_RANGE, step=0.001, label="t_start")
    t_end = param.Number(default=_DEFAULT.t_end, bounds=T_RANGE, step=0.001, label="t_end")
    compare = param.Boolean(default=_DEFAULT.compare, label="side-by-side: compare with B (same noise)")
    solver_b = param.Selector(objects=FAMILIES["solver"].names(), default=_DEFAULT.solver_b, label="solver B")
    schedule_b = param.Selector(objects=FAMILIES["schedule"].names(), default=_DEFAULT.schedule_b,
                                label="schedule B")
    nfe_b = param.Integer(default=_DEFAULT.nfe_b, bounds=NFE_RANGE, label="NFE B")
    theme = param.Selector(objects=list(THEMES), default=_DEFAULT.theme, precedence=-1)
    data_params = _sub("data", "data parameters")
    interpolant_params = _sub("interpolant", "interpolant parameters")
    schedule_params = _sub("schedule", "schedule parameters")
    solver_params = _sub("solver", "solver parameters")

    #: True in :class:`DashboardForm` (sub-objects are the controls' variant).
    _form = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        for fam in FAMILIES:
            self._new_entry(fam)
        self.param.watch(self._on_entry_chosen, list(FAMILIES))

    def _new_entry(self, fam: str) -> None:
        setattr(self, f"{fam}_params", entry_class(fam, getattr(self, fam), form=self._form)())

    def _on_entry_chosen(self, *events: Any) -> None:
        """A new registry entry: a new sub-object generated from its signature (its defaults)."""
        for event in events:
            self._new_entry(event.name)

    def entry(self, fam: str) -> EntryParams:
        """The sub-object of family ``fam`` (``"data"``, ``"interpolant"``, ``"schedule"``, ``"solver"``)."""
        return getattr(self, f"{fam}_params")

    @classmethod
    def from_config(cls, cfg: DashboardConfig) -> "DashboardState":
        obj = cls()
        obj.set_config(cfg)
        return obj

    def set_config(self, cfg: DashboardConfig) -> None:
        """Show ``cfg``: registry names first (each gets a fresh sub-object), then the sub-objects' values and
        the scalars. Raises ``ValueError`` for a value outside the bounds of :class:`DashboardState`."""
        with param.parameterized.batch_call_watchers(self):
            for fam in FAMILIES:
                if getattr(self, fam) != getattr(cfg, fam):
                    setattr(self, fam, getattr(cfg, fam))
                else:  # the same entry: back to its defaults (the sub-object stays, and so do its links)
                    entry = self.entry(fam)
                    entry.param.update(**{k: entry.param[k].default for k in entry.names()})
        for fam in FAMILIES:
            self.entry(fam).set_values(getattr(cfg, f"{fam}_params"))
        self.param.update(**{k: getattr(cfg, k) for k in (*SCALAR_CAPS, "compare", "solver_b", "schedule_b",
                                                          "theme")})

    def to_config(self) -> DashboardConfig:
        """The state as a :class:`DashboardConfig` (sub-objects: only values that differ from the defaults)."""
        cfg, errors = self.check()
        if cfg is None:
            raise first_error(errors)
        return cfg

    def check(self, theme: Optional[str] = None) -> Tuple[Optional[DashboardConfig], Dict[str, str]]:
        """``(DashboardConfig, {})``, or ``(None, {parameter: message})`` naming every refused value (outside
        its cap, an empty box, JSON that is not a plain literal, ``t_start >= t_end``); nothing is clamped."""
        errors: Dict[str, str] = {}

        def get(key, lo_hi, conv):
            try:
                return conv(getattr(self, key), key, *lo_hi)
            except ConfigError as exc:
                errors[key] = str(exc)
                return None

        vals = {}
        for key, caps in SCALAR_CAPS.items():
            if key == "nfe_b" and not self.compare:  # side B is not shown: its value is kept, not checked
                v = self.nfe_b
                vals[key] = v if isinstance(v, int) and NFE_RANGE[0] <= v <= NFE_RANGE[1] else _DEFAULT.nfe_b
                continue
            conv = _bounded_int if isinstance(self.param[key], param.Integer) else _bounded_float
            vals[key] = get(key, caps, conv)
        if vals["t_start"] is not None and vals["t_end"] is not None and not vals["t_start"] < vals["t_end"]:
            errors["t_start"] = f"t_start: must be below t_end = {vals['t_end']:g}, got {vals['t_start']:g}"
        params = {}
        for fam in FAMILIES:
            out, errs = self.entry(fam).check()
            params[f"{fam}_params"] = out
            errors.update(errs)
        if errors:
            return None, errors
        return DashboardConfig(data=self.data, interpolant=self.interpolant, schedule=self.schedule,
                               solver=self.solver, compare=bool(self.compare), solver_b=self.solver_b,
                               schedule_b=self.schedule_b, theme=theme or self.theme, **vals, **params), {}


#: the allow-list of the URL: state parameter → query key (``pn.state.location.sync``); the sub-objects' keys are
#: ``family.parameter`` (:func:`entry_url_keys`). Anything else in a URL is refused by
#: :func:`~widgets.state.parse_query` and dropped from the address.
URL_KEYS: Dict[str, str] = {k: k for k in (*FAMILIES, *SCALAR_CAPS, "compare", "solver_b", "schedule_b")}


def entry_url_keys(entry: EntryParams) -> Dict[str, str]:
    """The URL keys of a sub-object's parameters: ``{"dim": "data.dim", ...}``."""
    return {k: f"{entry.family}.{k}" for k in entry.names()}


def _unbounded(p: param.Number) -> param.Number:
    """The form's copy of a bounded number: the caps become soft bounds (the widget's range), and ``None``
    (an empty box) is allowed, so a typed-in value is kept and refused by :meth:`DashboardState.check`."""
    return type(p)(default=p.default, bounds=None, softbounds=p.bounds, allow_None=True, label=p.label,
                   step=p.step, doc=p.doc)


class DashboardForm(DashboardState):
    """What the controls are linked to: :class:`DashboardState` with soft bounds (see the module docstring)."""

    _form = True
    nfe = _unbounded(DashboardState.param.nfe)
    nfe_b = _unbounded(DashboardState.param.nfe_b)
    particles = _unbounded(DashboardState.param.particles)
    seed = _unbounded(DashboardState.param.seed)
    eps = _unbounded(DashboardState.param.eps)
    t_start = _unbounded(DashboardState.param.t_start)
    t_end = _unbounded(DashboardState.param.t_end)

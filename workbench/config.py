r"""Immutable, value-typed configuration objects (the base of interpolants, schedules, solvers and problems).

A :class:`Config` subclass declares its parameters the ordinary way, as the arguments of ``__init__``, validates
them there and stores each one on ``self`` under the same name. When the constructor returns, the object is frozen:

- its **fields** are the constructor's parameters (what :meth:`Registry.parameters <workbench.registry.Registry.parameters>`
  reads), their values normalised to hashable ones (tensors, lists → tuples; dicts → :class:`FrozenDict`);
- ``==`` and ``hash`` compare the type and the field values, so two equal configurations are interchangeable
  (and share value-keyed caches);
- :meth:`params` and ``repr`` are derived from the fields (no hand-written ``_params`` dict);
- setting or deleting a field (or any other public attribute) afterwards raises :class:`~workbench.errors.ConfigError`
  naming it; :meth:`replace` makes a new, validated instance instead;
- ``type(c)(**json.loads(json.dumps(c.params()))) == c`` for every configuration whose fields are JSON values.

Private attributes (leading underscore) stay writable: they hold caches and lazily built state owned by the object
(e.g. a trained model), never a parameter.

>>> from workbench import interpolants
>>> I = interpolants.get("vp", beta_max=10.0)
>>> I == interpolants.get("vp", beta_max=10.0), I.replace(beta_max=20.0).beta_max
(True, 20.0)
"""
from __future__ import annotations

import inspect
import math
from abc import ABCMeta
from typing import Any, Dict, Tuple

from .errors import ConfigError

__all__ = ["Config", "ConfigMeta", "FrozenDict", "freeze_value", "config_fields"]


class FrozenDict(dict):
    """A read-only, hashable ``dict`` (still a ``dict``, so it serialises to JSON as one)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: repr(kv[0]))))

    def _readonly(self, *args: Any, **kwargs: Any):
        raise ConfigError("params", "a configuration's dict parameter is read-only; use replace(...) to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


def freeze_value(value: Any) -> Any:
    """Normalise a parameter value to a hashable one: tensors/arrays/lists/tuples → tuples (recursively),
    dicts → :class:`FrozenDict`, numpy scalars → python numbers; other values are kept as they are."""
    if isinstance(value, (str, bytes, bool, int, float, type(None))):
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze_value(v) for k, v in value.items()})
    tolist = getattr(value, "tolist", None)  # torch tensors, numpy arrays and numpy scalars
    if callable(tolist) and type(value).__module__.split(".")[0] in ("torch", "numpy"):
        return freeze_value(tolist())
    if isinstance(value, (list, tuple)):
        return tuple(freeze_value(v) for v in value)
    return value


def config_fields(cls: type) -> Tuple[str, ...]:
    """The field names of a configuration class: its constructor's named parameters, in order."""
    cached = cls.__dict__.get("_config_fields_cache")
    if cached is not None:
        return cached
    sig = inspect.signature(cls.__init__)
    names = tuple(
        p.name for p in list(sig.parameters.values())[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    type.__setattr__(cls, "_config_fields_cache", names)
    return names


class ConfigMeta(ABCMeta):
    """Freezes an instance once its (outermost) constructor has returned."""

    def __call__(cls, *args: Any, **kwargs: Any):
        obj = super().__call__(*args, **kwargs)
        obj._freeze()
        return obj


class Config(metaclass=ConfigMeta):
    """Base of immutable, value-typed configurations (see the module docstring).

    Attributes:
        _opaque_fields: names of fields kept as given and compared by identity (a user's tensor or network).
    """

    __slots__ = ()
    _opaque_fields: Tuple[str, ...] = ()

    # ---- freezing -------------------------------------------------------------------------------
    def _freeze(self) -> None:
        d = object.__getattribute__(self, "__dict__")
        if d.get("_frozen", False):
            return
        values = {}
        keyed = {}
        opaque = getattr(type(self), "_opaque_fields", ())
        for name in config_fields(type(self)):
            if name not in d:
                raise TypeError(
                    f"{type(self).__name__}.__init__ must store its parameter {name!r} as self.{name} "
                    "(configuration fields are the constructor's parameters)"
                )
            if name in opaque:  # large or foreign values (a user's tensor, a network): compared by identity
                values[name] = d[name]
                keyed[name] = _ByIdentity(d[name])
                continue
            v = freeze_value(d[name])
            if isinstance(v, float) and math.isnan(v):
                raise ConfigError(name, "must not be NaN")
            d[name] = v
            values[name] = keyed[name] = v
        d["_config_values"] = values
        d["_config_key"] = (type(self), tuple(keyed.items()))
        try:
            d["_config_hash"] = hash(d["_config_key"])
        except TypeError:  # a field value without value semantics: this instance equals only itself
            d["_config_key"] = (type(self), _ByIdentity(self))
            d["_config_hash"] = hash(d["_config_key"])
        d["_config_by_identity"] = any(isinstance(v, _ByIdentity) for v in keyed.values()) or isinstance(
            d["_config_key"][1], _ByIdentity)
        d["_frozen"] = True
        self._after_freeze()

    def _after_freeze(self) -> None:
        """Hook for subclasses: runs once, after the fields are frozen (e.g. to attach value-keyed caches)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False) and not name.startswith("_"):
            raise ConfigError(
                name,
                f"{type(self).__name__} is immutable; make a new one with .replace({name}=...) instead of setting it",
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen", False) and not name.startswith("_"):
            raise ConfigError(name, f"{type(self).__name__} is immutable; its attributes cannot be deleted")
        object.__delattr__(self, name)

    # ---- value semantics --------------------------------------------------------------------------
    def params(self) -> Dict[str, Any]:
        """The fields and their (normalised) values, in constructor order."""
        return dict(self.__dict__["_config_values"])

    def config_key(self) -> Tuple[Any, ...]:
        """``(type, ((field, value), ...))``: the hashable value of this configuration (a cache key)."""
        return self.__dict__["_config_key"]

    def replace(self, **changes: Any) -> "Config":
        """A new instance with some fields changed (validated by the constructor, like any other)."""
        fields = config_fields(type(self))
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ConfigError(
                unknown[0], f"{type(self).__name__} has no parameter {unknown[0]!r}; its parameters are: "
                + (", ".join(fields) or "(none)"),
            )
        return type(self)(**{**self.params(), **changes})

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Config) or type(other) is not type(self):
            return NotImplemented
        return self.__dict__["_config_key"] == other.__dict__["_config_key"]

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return self.__dict__["_config_hash"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={_short_repr(v)}' for k, v in self.params().items())})"

    def __reduce__(self):
        # rebuild through the constructor (validation, freezing, fresh private caches)
        return (_rebuild, (type(self), self.params()))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class _ByIdentity:
    """A key wrapper comparing by identity (for fields with no value semantics)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _short_repr(v: Any) -> str:
    """``repr`` with long tuples (tables) summarised by their length, ends and a digest (still unique per value)."""
    if isinstance(v, tuple) and len(v) > 12:
        import hashlib

        digest = hashlib.sha1(repr(v).encode()).hexdigest()[:12]
        return f"<{len(v)} values {v[0]!r} … {v[-1]!r}, sha1 {digest}>"
    return repr(v)


def _rebuild(cls: type, params: Dict[str, Any]) -> Config:
    return cls(**params)

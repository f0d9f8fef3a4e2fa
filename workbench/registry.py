"""A small name → class registry, one per family (interpolants, schedules, solvers, ...).

``REGISTRY.get("name", **params)`` builds an instance, and rejects unknown names and
unknown parameters with an error that lists what is valid.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Generic, List, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names (and aliases) to classes of one family.

    Args:
        family: the family's name as shown in errors, e.g. ``"solver"``.
    """

    def __init__(self, family: str):
        self.family = family
        self._classes: Dict[str, type] = {}
        self._aliases: Dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[type], type]:
        """Class decorator registering ``cls`` under ``name`` and ``aliases``."""

        def deco(cls: type) -> type:
            for key in (name, *aliases):
                if key in self._classes or key in self._aliases:
                    raise RuntimeError(f"{self.family} {key!r} registered twice")
            self._classes[name] = cls
            for alias in aliases:
                self._aliases[alias] = name
            cls.name = name
            return cls

        return deco

    def canonical(self, name: str) -> str:
        """Return the registered name for ``name`` or an alias of it."""
        if isinstance(name, str):
            key = name.strip().lower().replace("-", "_")
            if key in self._classes:
                return key
            if key in self._aliases:
                return self._aliases[key]
        raise UnknownNameError(self.family, name, self.names())

    def cls(self, name: str) -> type:
        """The class registered under ``name``."""
        return self._classes[self.canonical(name)]

    def names(self) -> List[str]:
        """All registered names (aliases excluded), sorted."""
        return sorted(self._classes)

    def aliases(self) -> Dict[str, str]:
        """Alias → registered name."""
        return dict(self._aliases)

    def parameters(self, name: str) -> Dict[str, Any]:
        """Constructor parameters of ``name`` with their defaults (``inspect.Parameter.empty`` if required)."""
        sig = inspect.signature(self.cls(name).__init__)
        return {
            p.name: p.default
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def get(self, name: str, **params: Any) -> T:
        """Build the instance registered under ``name`` with ``params``.

        Raises:
            UnknownNameError: ``name`` is not registered.
            ConfigError: a parameter is not accepted by that class.
        """
        canon = self.canonical(name)
        allowed = self.parameters(canon)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            shown = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "(none)"
            raise ConfigError(
                f"{self.family}_params",
                f"{self.family} {canon!r} has no parameter {', '.join(map(repr, unknown))}; its parameters are: {shown}",
            )
        return self._classes[canon](**params)

    def describe(self) -> str:
        """One line per registered name with parameters and aliases (for ``--help``)."""
        lines = []
        for n in self.names():
            params = ", ".join(f"{k}={v!r}" for k, v in self.parameters(n).items())
            al = [a for a, c in self._aliases.items() if c == n]
            extra = f" (alias: {', '.join(al)})" if al else ""
            lines.append(f"  {n}{extra}" + (f": {params}" if params else ""))
        return "\n".join(lines)

    def __contains__(self, name: object) -> bool:
        try:
            self.canonical(name)  # type: ignore[arg-type]
            return True
        except ConfigError:
            return False

    def __iter__(self):
        return iter(self.names())

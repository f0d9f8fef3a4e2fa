"""What a report or a sweep can check before a kernel starts, beyond the declared types.

The notebooks follow naming conventions, so a value's meaning is known from its parameter's name:

* ``nfe``, ``*_nfe``, ``nfe_list``: budgets, integers in ``[1, MAX_NFE]``;
* ``solver(s)``, ``*_solver``, ``interpolant(s)``, ``schedule(s)``, ``data``, ``dataset``: registry names;
* ``seed``: an integer in ``[0, MAX_SEED]``; ``threads`` and ``n_*``: integers ``>= 1``;
* every list-valued parameter: at least one element.

:func:`check_value` applies these (an unknown solver or ``nfe_list 0`` fails in milliseconds, not ~20 s later in the
kernel); :func:`check_metric` and :func:`check_scheduler_address` check a sweep's ``--metric`` and ``--scheduler``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Union

from .. import validation
from ..errors import ConfigError, UnknownNameError


def _registry(kind: str):
    if kind == "solver":
        from ..solvers import SOLVERS as reg
    elif kind == "interpolant":
        from ..interpolants import INTERPOLANTS as reg
    elif kind == "schedule":
        from ..schedules import SCHEDULES as reg
    elif kind == "data":
        from ..problems import PROBLEMS as reg
    else:
        from ..data.datasets import DATASETS as reg
    return reg


def _name_check(kind: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, str):
            reg = _registry(kind)
            try:
                reg.canonical(value)
            except UnknownNameError as exc:
                raise UnknownNameError(name, value, exc.valid) from None
    return check


def _nfe(name: str, value: Any) -> None:
    if isinstance(value, int):
        validation.integer(name, value, 1, validation.MAX_NFE)


def _positive(name: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        validation.integer(name, value, 1)


def _seed(name: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        validation.seed(value, name)


#: (pattern on the parameter name, check of one value or of each element of a list value)
RULES = [
    (re.compile(r"^(nfe|nfe_list|.*_nfe)$"), _nfe),
    (re.compile(r"^(solvers?|.*_solver)$"), _name_check("solver")),
    (re.compile(r"^interpolants?$"), _name_check("interpolant")),
    (re.compile(r"^schedules?$"), _name_check("schedule")),
    (re.compile(r"^data$"), _name_check("data")),
    (re.compile(r"^dataset$"), _name_check("dataset")),
    (re.compile(r"^seed$"), _seed),
    (re.compile(r"^(threads|n_.*)$"), _positive),
]


def check_value(name: str, value: Any) -> Any:
    """Raise a :class:`ConfigError` naming ``name`` when ``value`` breaks its naming convention's meaning."""
    if isinstance(value, (list, tuple)) and len(value) == 0:
        raise ConfigError(name, "needs at least one value, got an empty list")
    items = value if isinstance(value, (list, tuple)) else [value]
    for pattern, check in RULES:
        if pattern.match(name):
            for v in items:
                check(name, v)
    return value


def check_scheduler_address(address: str) -> str:
    """A Dask scheduler address: ``scheme://host:port`` or ``host:port`` (else a :class:`ConfigError`)."""
    ok = re.match(r"^([a-z][a-z0-9+]*://)?(\[[0-9a-fA-F:.]+\]|[\w.\-]+):\d{1,5}$", address or "")
    if not ok and not re.match(r"^(inproc|ucx)://\S+$", address or ""):
        raise ConfigError("--scheduler", f"expected an address like tcp://host:8786 or host:8786, got {address!r}")
    return address


def _code(notebook: Union[str, Path]) -> str:
    with open(notebook, encoding="utf-8") as fh:
        nb = json.load(fh)
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return "\n".join("".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                     for c in cells if isinstance(c, dict) and c.get("cell_type") == "code")


def check_metric(notebook: Union[str, Path], metric: str) -> str:
    """Refuse a ``--metric`` the notebook cannot record: its name (trailing digits aside, e.g. ``error_nfe8``
    from an f-string key ``error_nfe{nfe}``) must occur in the notebook's code."""
    source = _code(notebook)
    stem = re.sub(r"\d+$", "", metric)
    if not metric or not stem or stem not in source:
        raise ConfigError("--metric", f"{metric!r} is not recorded by {Path(notebook).name} (the name, trailing "
                                      "digits aside, does not occur in its code); see its record(...) cell")
    return metric


__all__ = ["RULES", "check_value", "check_metric", "check_scheduler_address"]

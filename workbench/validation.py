"""One typed validation layer for user-facing scalar parameters, shared by ``Experiment``, the CLI, the trainer,
reports and sweeps.

Every check names the parameter and the allowed values in a :class:`~workbench.errors.ConfigError`; nothing is
coerced silently: ``True`` is not an integer, ``"8"`` is not a number, ``3.5`` is not an integer (an NFE budget
alone also takes an integral float such as ``8.0``, as it always did). Upper bounds keep hostile values (``nfe=10**9``,
``seed=2**64``) from reaching allocators or C ``long long`` conversions as raw tracebacks.

Bounds (module constants, the same everywhere):

* :data:`MAX_NFE` = 10⁶ model evaluations per fixed-step run (a grid of 10⁶ float64 points is 8 MB);
  :data:`MAX_ADAPTIVE_NFE` = 10¹² for an adaptive solver's cap (internal reference solves use 10⁷);
* :data:`MAX_SEED` = 2⁵³ − 1 (exact in JSON/float64, and far from torch's 64-bit limit after seed offsets);
* :data:`MAX_SAMPLES` = 10⁷ particles per run.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Iterable, Optional

from .errors import ConfigError

MAX_NFE = 1_000_000
MAX_ADAPTIVE_NFE = 10 ** 12
MAX_SEED = 2 ** 53 - 1
MAX_SAMPLES = 10_000_000


def _range_text(minimum: Optional[float], maximum: Optional[float]) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum:g}, {maximum:g}]" if isinstance(minimum, float) or isinstance(maximum, float) \
            else f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def integer(name: str, value: object, minimum: Optional[int] = None, maximum: Optional[int] = None,
            hint: str = "", integral_floats: bool = False) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` or a :class:`ConfigError` naming ``name``.

    Accepted: ints (numpy ints too), and integral floats (``8.0``) when ``integral_floats``; refused: bools,
    strings, other floats.
    """
    what = f"an integer {_range_text(minimum, maximum)}".rstrip() + hint
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, f"must be {what}, got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        if not integral_floats:
            raise ConfigError(name, f"must be {what}, got {value!r} ({type(value).__name__})")
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            raise ConfigError(name, f"must be {what}, got {value!r}")
        value = int(f)
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ConfigError(name, f"must be {what}, got {v}")
    return v


def number(name: str, value: object, minimum: Optional[float] = None, maximum: Optional[float] = None,
           above: Optional[float] = None, hint: str = "") -> float:
    """``value`` as a finite ``float`` (``>= minimum``, ``<= maximum``, ``> above``) or a :class:`ConfigError`.

    Refused: bools, strings, NaN and infinities.
    """
    parts = [p for p in (_range_text(minimum, maximum), f"> {above:g}" if above is not None else "") if p]
    what = ("a finite number " + " and ".join(parts)).rstrip() + hint
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, f"must be {what}, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or (minimum is not None and v < minimum) or (maximum is not None and v > maximum) \
            or (above is not None and not v > above):
        raise ConfigError(name, f"must be {what}, got {value!r}")
    return v


def nfe(value: object, minimum: int = 1, solver: str = "", maximum: int = MAX_NFE) -> int:
    """An NFE budget: an integer in ``[minimum, maximum]`` (an adaptive solver's budget is only a cap, no grid is
    built from it, so its callers pass :data:`MAX_ADAPTIVE_NFE`)."""
    who = f" for solver {solver!r}" if solver else ""
    v = integer("nfe", value, maximum=maximum, integral_floats=True)
    if v < minimum:
        raise ConfigError("nfe", f"must be >= {minimum}{who}, got {v}")
    return v


def seed(value: object, name: str = "seed") -> int:
    """A random seed: an integer in ``[0, MAX_SEED]``."""
    return integer(name, value, 0, MAX_SEED)


def n_samples(value: object, name: str = "n_samples", minimum: int = 1) -> int:
    """A particle count: an integer in ``[minimum, MAX_SAMPLES]``."""
    return integer(name, value, minimum, MAX_SAMPLES)


def one_of(name: str, value: object, allowed: Iterable[int]) -> int:
    """``value`` if it is an integer (not a bool) among ``allowed``, else a :class:`ConfigError` listing them."""
    allowed = list(allowed)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) not in allowed:
        raise ConfigError(name, f"got {value!r}; allowed values are: {', '.join(map(str, allowed))}")
    return int(value)


def choice(name: str, value: object, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed`` (exact strings), else a :class:`ConfigError` listing them."""
    allowed = list(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(name, f"got {value!r}; allowed values are: {', '.join(allowed)}")
    return value


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def check_memory(name: str, needed: int, what: str) -> None:
    """Raise a :class:`ConfigError` naming ``name`` when ``needed`` bytes exceed the memory available."""
    avail = available_memory()
    if avail is not None and needed > avail:
        raise ConfigError(name, f"{what} needs about {needed / 2**30:.3g} GiB but only {avail / 2**30:.3g} GiB "
                                f"of memory is available; lower it")


__all__ = ["MAX_NFE", "MAX_ADAPTIVE_NFE", "MAX_SEED", "MAX_SAMPLES", "integer", "number", "nfe", "seed", "n_samples", "one_of", "choice",
           "available_memory", "check_memory"]

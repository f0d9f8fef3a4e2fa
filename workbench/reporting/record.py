"""Scalar results of a notebook run: written by :func:`record` in the notebook, read back by :func:`read_results`.

``record(error=0.0123, order=1.98)`` in the last cell of a notebook displays a short table of the values (rounded
to ``digits`` significant digits, so nbval compares stable text) and stores the full-precision values in the
output's metadata under :data:`METADATA_KEY` — the "glue" a report or a sweep collects from the executed notebook
(metadata is not compared by nbval). Several ``record`` calls merge (later keys win).
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from ..errors import ConfigError

#: Key of the output metadata holding the recorded values.
METADATA_KEY = "workbench_results"


def _scalar(key: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # 0-d torch tensors and numpy scalars
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ConfigError(key, f"record() takes scalars (int, float, str, bool, None), got {type(value).__name__}")


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def record(values: Optional[Mapping[str, Any]] = None, digits: int = 4, **kw: Any) -> None:
    """Record scalar results of this notebook run (shown as a table; full precision kept in metadata).

    Args:
        values: name → scalar (int, float, str, bool, None; 0-d tensors and numpy scalars are converted).
        digits: significant digits of floats in the displayed table.
        **kw: more name → scalar pairs.

    Nothing is returned, so a final ``record(...)`` line does not echo the values a second time (at full
    precision, which nbval would then compare); :func:`read_results` reads them back from the notebook.
    """
    merged = {**dict(values or {}), **kw}
    out = {str(k): _scalar(str(k), v) for k, v in merged.items()}
    width = max((len(k) for k in out), default=0)
    text = "\n".join(f"{k:<{width}}  {_fmt(v, digits)}" for k, v in out.items())
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            # a list of pairs keeps the order (notebook JSON is written with sorted keys)
            display({"text/plain": text}, raw=True, metadata={METADATA_KEY: [[k, v] for k, v in out.items()]})
            return None
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks extra
        pass
    print(text)
    return None


def read_results(notebook: Union[str, Path, Mapping]) -> Dict[str, Any]:
    """Every value recorded by :func:`record` in an executed notebook (a path or a loaded dict), merged in order."""
    if not isinstance(notebook, Mapping):
        with open(notebook, encoding="utf-8") as fh:
            notebook = json.load(fh)
    out: Dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            meta = output.get("metadata", {})
            if isinstance(meta, Mapping) and isinstance(meta.get(METADATA_KEY), (list, Mapping)):
                out.update(meta[METADATA_KEY])
    return out

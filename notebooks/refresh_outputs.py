"""Re-execute the notebooks at their defaults and store the outputs nbval compares (images stripped).

    .venv/bin/python notebooks/refresh_outputs.py                 # every notebook here
    .venv/bin/python notebooks/refresh_outputs.py 02_solver_shootout.ipynb

Run it after editing a notebook, then ``python -m pytest tests/notebooks`` (nbval) must pass. Text outputs stay
(nbval compares them, with notebooks/nbval_sanitize.cfg applied); image data is dropped so each file stays small
(its ``text/plain`` twin, e.g. ``<Figure size 640x480 with 1 Axes>``, is kept and compared); execution timings and
widget state are cleared.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
HEAVY = ("image/png", "image/jpeg", "image/svg+xml", "application/vnd.jupyter.widget-view+json", "text/html")
MAX_BYTES = 1_000_000


def strip(nb) -> None:
    """Drop heavy output data, per-cell execution metadata and widget state, in place."""
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and "text/plain" in data:
                for key in HEAVY:
                    data.pop(key, None)


def refresh(path: Path) -> int:
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    strip(nb)
    nbformat.write(nb, str(path))
    size = path.stat().st_size
    print(f"{path.name}: {size / 1024:.1f} KiB")
    return size


def main(argv) -> int:
    paths = [HERE / a for a in argv] if argv else sorted(HERE.glob("*.ipynb"))
    sizes = [refresh(p) for p in paths]
    return 0 if all(s < MAX_BYTES for s in sizes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

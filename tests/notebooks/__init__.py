"""Tests of the notebooks (nbval), `workbench report` and `workbench sweep`."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SANITIZE = NOTEBOOK_DIR / "nbval_sanitize.cfg"

"""nbval on every shipped notebook: the committed outputs are the ones compared (sanitized by
notebooks/nbval_sanitize.cfg), so plain ``python -m pytest`` checks the notebooks too.

The nbval run is a subprocess (``pytest --nbval --nbval-current-env …``) so the notebooks are executed by the
Jupyter kernel of this interpreter's environment (the ``python3`` kernelspec resolves to ``sys.executable``).
"""
import json
import re
import subprocess
import sys

import pytest

from . import NOTEBOOK_DIR, NOTEBOOKS, ROOT, SANITIZE

MAX_BYTES = 1_000_000
HEAVY = ("image/png", "image/jpeg", "image/svg+xml", "text/html", "application/vnd.jupyter.widget-view+json")


def _code(path):
    nb = json.loads(path.read_text())
    return nb, ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert "01_quickstart.ipynb" in names and "02_solver_shootout.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_public_and_has_outputs(path):
    assert path.stat().st_size < MAX_BYTES
    nb, sources = _code(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    for src in sources:
        # public API only: no private modules, names or attributes
        assert not re.search(r"workbench(\.\w+)*\._", src), src
        assert not re.search(r"import[^\n]*\b_\w+", src), src
        assert not re.search(r"\._[A-Za-z]", src), src
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs, "commit the executed outputs (notebooks/refresh_outputs.py): nbval compares them"
    for o in outputs:
        assert not set(o.get("data", {})) & set(HEAVY), "heavy output stored; run notebooks/refresh_outputs.py"
        assert o.get("output_type") != "error"
    assert any("workbench_results" in o.get("metadata", {}) for o in outputs), "the last cell should record()"


def test_nbval_every_notebook():
    cmd = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
           "-p", "no:cacheprovider", "-q", "--rootdir", str(NOTEBOOK_DIR), *map(str, NOTEBOOKS)]
    proc = subprocess.run(cmd, cwd=str(NOTEBOOK_DIR), capture_output=True, text=True, timeout=600)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"nbval failed:\n{tail}"
    assert re.search(r"\d+ passed", proc.stdout) and "failed" not in proc.stdout.splitlines()[-1], tail

"""An interrupted report is recorded honestly (issue 18, defect 2): run.json says "running" from the start, and
after SIGINT/SIGTERM "interrupted" with the cell reached; the partial notebook marks un-run cells pending."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import nbformat
import pytest

from workbench.cli import main


def _notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("pause: float = 30.0  # seconds the second cell sleeps")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(pause)"), nbformat.v4.new_code_cell("y = 2")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _send_when_running(root, sig):
    """Send ``sig`` to this process once the report's run.json exists and the sleeping cell has started."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for run in root.glob("*/slow.ipynb"):
            try:
                nb = json.loads(run.read_text())
                if nb["cells"][2]["metadata"]["papermill"]["status"] == "running":
                    assert json.loads((run.parent / "run.json").read_text())["status"] == "running"
                    time.sleep(0.3)
                    os.kill(os.getpid(), sig)
                    return
            except (ValueError, KeyError, OSError):
                pass
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_report_interrupted_by_signal(sig, tmp_path, capsys):
    nb = _notebook(tmp_path / "slow.ipynb")
    root = tmp_path / "reports"
    watcher = threading.Thread(target=_send_when_running, args=(root, sig), daemon=True)
    watcher.start()
    rc = main(["report", str(nb), "--out-root", str(root), "--no-html"])
    watcher.join(5)
    err = capsys.readouterr().err.strip()
    assert rc == 128 + int(sig), err
    assert len(err.splitlines()) == 1 and signal.Signals(sig).name in err and "Traceback" not in err
    (folder,) = root.iterdir()
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert record["cell_reached"]["index"] == 2 and "time.sleep" in record["cell_reached"]["source"]
    cells = json.loads((folder / "slow.ipynb").read_text())
    states = [c["metadata"]["papermill"]["status"] for c in cells["cells"]]
    assert states[2:] == ["interrupted", "pending"]
    assert cells["metadata"]["workbench_status"] == "interrupted" and cells["metadata"]["papermill"]["exception"]

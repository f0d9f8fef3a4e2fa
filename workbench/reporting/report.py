"""``workbench report``: run a notebook with validated parameters through papermill and keep everything.

:func:`run_report` validates the parameters against the notebook's ``parameters`` cell (see
:mod:`workbench.reporting.params`) *before* starting a kernel, executes the notebook with papermill into a fresh
timestamped folder, exports HTML with nbconvert, and writes beside them ``run.json`` (notebook, parameters given
and effective, package versions, status, error, wall time) and ``results.json`` (the values the notebook recorded
with :func:`~workbench.reporting.record`). A failing cell does not raise: the partial executed notebook is kept
and the result says which cell failed and why.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Union

from ..files import atomic_write_text
from .params import notebook_parameters, validate_parameters
from .html import git_commit, notebook_sha256
from .record import read_results

#: Distributions whose versions every report records.
RECORDED_PACKAGES = ("interpolant-workbench", "torch", "numpy", "scipy", "matplotlib", "papermill", "nbconvert",
                     "nbformat", "ipykernel", "nbval", "dask", "distributed")


@dataclass
class ReportResult:
    """The outcome of one report run.

    Attributes:
        status: ``"ok"`` or ``"failed"``.
        out_dir: the run's folder.
        notebook: the executed notebook (partial when the run failed).
        html: the HTML export (None when disabled or when the export failed).
        parameters: the parameters passed (validated and converted).
        effective: every declared parameter's value in this run (defaults overridden by ``parameters``).
        results: the scalars the notebook recorded.
        error: why the run failed (None when it did not).
        seconds: wall time of the execution.
    """

    status: str
    out_dir: str
    notebook: str
    html: Optional[str]
    parameters: Dict[str, Any]
    effective: Dict[str, Any]
    results: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.status == "ok"

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def package_versions() -> Dict[str, str]:
    """Python and the versions of :data:`RECORDED_PACKAGES` that are installed."""
    out = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def timestamped_dir(root: Union[str, Path], stem: str) -> Path:
    """Create and return ``root/stem-YYYYmmdd-HHMMSS`` (``-2``, ``-3``, … when it already exists)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a fresh folder under {root}")  # pragma: no cover


def export_html(executed: Union[str, Path], html_path: Union[str, Path],
                record: Optional[Mapping[str, Any]] = None) -> str:
    """Export an executed notebook to one HTML file readable offline (maths as MathML, no network script) with,
    when ``record`` (a ``run.json`` dict) is given, a status/provenance header; see :mod:`.html`."""
    from .html import export_offline_html

    return export_offline_html(executed, html_path, record)["html"]


def _notebook_kernel(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh).get("metadata", {}).get("kernelspec", {}).get("name", "python3")


def _kernel_command(name: str) -> Dict[str, Any]:
    """Which interpreter the kernel ``name`` starts (jupyter_client runs ``python`` as this interpreter)."""
    import sys

    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = list(KernelSpecManager().get_kernel_spec(name).argv)
    except Exception as exc:  # noqa: BLE001 - recorded, papermill reports the real failure
        return {"name": name, "error": f"{type(exc).__name__}: {exc}"}
    exe = sys.executable if argv and argv[0] in ("python", "python3") else (argv[0] if argv else None)
    return {"name": name, "executable": exe, "this_interpreter": exe == sys.executable}


def _describe_failure(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename is not None:
        cell = getattr(exc, "exec_count", None)
        evalue = str(getattr(exc, "evalue", "")).strip().splitlines()
        where = f"cell [{cell}]: " if cell is not None else ""
        return f"{where}{ename}: {evalue[-1] if evalue else ''}".strip()
    return f"{type(exc).__name__}: {exc}"


class ReportInterrupted(KeyboardInterrupt):
    """A report stopped by SIGINT or SIGTERM; its ``run.json`` says ``"interrupted"`` and names the cell reached."""

    def __init__(self, signal_name: str, message: str = ""):
        self.signal_name = signal_name
        super().__init__(message or f"interrupted by {signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell convention 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        import signal

        return 128 + int(getattr(signal, self.signal_name, signal.SIGINT))


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """While running, SIGTERM (and SIGINT) raise :class:`ReportInterrupted` in the main thread."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise ReportInterrupted(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def mark_interrupted(executed: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """Mark a partial papermill notebook honestly after an interrupt and return the cell reached.

    papermill's finalisation marks every pending cell "completed"; here a cell that never started is "pending", the
    last one that started is "interrupted" (the cell the signal reached), and the notebook's metadata says ``exception: true`` and
    ``workbench_status: "interrupted"``. Returns ``{"index", "execution_count", "source"}`` of the cell reached.
    """
    path = Path(executed)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    reached = None
    cells = [c for c in nb.get("cells", []) if isinstance(c.get("metadata", {}).get("papermill"), dict)]
    started = [i for i, c in enumerate(nb.get("cells", [])) if c in cells and c["metadata"]["papermill"].get("start_time")]
    for cell in cells:
        if cell["metadata"]["papermill"].get("start_time") is None:
            cell["metadata"]["papermill"]["status"] = "pending"  # never ran (papermill calls it "completed")
    if started:  # the last cell that started is the one the interrupt reached (papermill closes it as "completed")
        i = started[-1]
        cell = nb["cells"][i]
        cell["metadata"]["papermill"].update(status="interrupted", exception=True)
        src = cell.get("source", "")
        reached = {"index": i, "execution_count": cell.get("execution_count"),
                   "source": ("".join(src) if isinstance(src, list) else src)[:200]}
    meta = nb.setdefault("metadata", {})
    meta.setdefault("papermill", {})["exception"] = True
    meta["workbench_status"] = "interrupted"
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False))
    return reached


def run_report(notebook: Union[str, Path], parameters: Optional[Mapping[str, Any]] = None, *,
               out_root: Union[str, Path] = "reports", out_dir: Optional[Union[str, Path]] = None,
               html: bool = True, from_text: bool = False, kernel_name: Optional[str] = None,
               timeout: Optional[float] = None, progress: bool = False,
               env: Optional[Mapping[str, str]] = None) -> ReportResult:
    """Validate ``parameters``, execute ``notebook`` with papermill, export HTML and record provenance.

    Args:
        notebook: the ``.ipynb`` with a cell tagged ``parameters``.
        parameters: name → value (strings parsed by the declared type when ``from_text``).
        out_root: folder under which a timestamped run folder ``<stem>-YYYYmmdd-HHMMSS`` is created.
        out_dir: use this folder instead (created if needed; used by sweeps).
        html: also write ``<stem>.html`` with nbconvert.
        from_text: the values are command-line strings.
        kernel_name: Jupyter kernel (default: the notebook's kernelspec, ``python3``, which resolves to the
            interpreter running this function).
        timeout: per-cell timeout in seconds (None: no limit).
        progress: show papermill's cell progress bar.
        env: extra environment variables for the kernel (e.g. ``OMP_NUM_THREADS``).

    Returns:
        A :class:`ReportResult`; ``status == "failed"`` with ``error`` set when a cell raised.

    Raises:
        ConfigError: an unknown or ill-typed parameter, or a notebook without a parameters cell (nothing ran).
    """
    nb_path = Path(notebook).resolve()
    schema = notebook_parameters(nb_path)
    params = validate_parameters(schema, dict(parameters or {}), from_text=from_text)
    effective = {name: params.get(name, p.default) for name, p in schema.items()}
    folder = Path(out_dir) if out_dir is not None else timestamped_dir(out_root, nb_path.stem)
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    executed = folder / nb_path.name
    record: Dict[str, Any] = {
        "notebook": str(nb_path), "parameters": params, "effective_parameters": effective,
        "started": _dt.datetime.now().isoformat(timespec="seconds"), "versions": package_versions(),
        "host": platform.node(), "notebook_sha256": notebook_sha256(nb_path), "git": git_commit(),
    }
    record["status"] = "running"
    atomic_write_text(folder / "run.json", json.dumps(record, indent=2, default=str))
    import papermill as pm

    record["kernel"] = _kernel_command(kernel_name or _notebook_kernel(nb_path))
    logging.getLogger("papermill").setLevel(logging.WARNING)
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    t0 = time.perf_counter()
    error = None
    try:
        with _signals_as_interrupts():
            pm.execute_notebook(str(nb_path), str(executed), parameters=params, kernel_name=kernel_name,
                                progress_bar=progress, log_output=False, cwd=str(nb_path.parent),
                                execution_timeout=timeout)
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM: record honestly, then stop
        name = exc.signal_name if isinstance(exc, ReportInterrupted) else "SIGINT"
        reached = mark_interrupted(executed) if executed.exists() else None
        where = f" at cell [{reached['execution_count']}] (index {reached['index']})" if reached else ""
        record.update({"status": "interrupted", "error": f"interrupted by {name}{where}", "cell_reached": reached,
                       "seconds": round(time.perf_counter() - t0, 3), "executed_notebook": str(executed),
                       "results": read_results(executed) if executed.exists() else {}})
        atomic_write_text(folder / "run.json", json.dumps(record, indent=2, default=str))
        raise ReportInterrupted(name, f"interrupted by {name}{where}; partial notebook and run.json in {folder}") \
            from None
    except Exception as exc:  # noqa: BLE001 - a failed run is a result, not a crash
        error = _describe_failure(exc)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    results = read_results(executed) if executed.exists() else {}
    html_path = None
    record.update({"status": "ok" if error is None else "failed", "error": error, "seconds": round(seconds, 3)})
    if html and executed.exists():
        try:
            html_path = export_html(executed, folder / f"{nb_path.stem}.html", record)
        except Exception as exc:  # noqa: BLE001 - keep the run even if the export fails
            record["html_error"] = f"{type(exc).__name__}: {exc}"
    result = ReportResult(status="ok" if error is None else "failed", out_dir=str(folder), notebook=str(executed),
                          html=html_path, parameters=params, effective=effective, results=results, error=error,
                          seconds=round(seconds, 3))
    record.update({"status": result.status, "error": error, "seconds": result.seconds, "results": results,
                   "executed_notebook": str(executed), "html": html_path})
    atomic_write_text(folder / "results.json", json.dumps(results, indent=2, default=str))
    atomic_write_text(folder / "run.json", json.dumps(record, indent=2, default=str))
    return result

"""``workbench sweep``: a grid of parameter sets through papermill on Dask, collected into one summary.

Every parameter set is validated against the notebook before anything runs. Each run is one
:func:`~workbench.reporting.report.run_report` executed as a Dask task — on an embedded
``distributed.LocalCluster`` sized to the machine (one single-threaded worker process per core, at most one per
run), or on an existing cluster given by its scheduler address. A progress bar follows the futures as they
complete. A run that fails does not stop the sweep: its partial notebook is kept and the summary says which run
failed and why. The summary (``summary.md``, ``summary.csv``, ``summary.json``, ``summary.png``) has one row per
run: the parameters that vary, the status, and every scalar the notebook recorded.

Grid files (YAML or TOML)::

    notebook: 02_solver_shootout.ipynb   # optional, relative to the grid file
    parameters:                          # fixed for every run
      nfe_list: [4, 8, 16]
    grid:                                # the cartesian product of these lists
      solvers: [[euler], [heun]]
      schedules: [[uniform], [logsnr]]
"""
from __future__ import annotations

import csv
import datetime as _dt
import itertools
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import ClusterLostError, ConfigError
from .params import notebook_parameters, validate_parameters
from ..files import atomic_write_text
from .report import ReportInterrupted, _signals_as_interrupts, package_versions, run_report, timestamped_dir


@dataclass
class SweepResult:
    """The outcome of a sweep.

    Attributes:
        out_dir: the sweep's folder (one ``run-NNN`` sub-folder per run).
        runs: one dict per run (parameters, status, error, results, paths), in grid order.
        varying: the parameter names that differ between runs.
        summary: path of ``summary.md``; ``plot``: path of ``summary.png`` (None without numeric results).
    """

    out_dir: str
    runs: List[Dict[str, Any]]
    varying: List[str]
    summary: str
    plot: Optional[str] = None
    seconds: float = 0.0
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> List[Dict[str, Any]]:
        """The runs that did not finish."""
        return [r for r in self.runs if r["status"] != "ok"]

    def table(self) -> List[Dict[str, Any]]:
        """One row per run: ``run``, the varying parameters, ``status``, the recorded scalars, ``error``."""
        return summary_rows(self.runs, self.varying)


# ---- grids --------------------------------------------------------------------------------------------------
def load_grid(path: Union[str, Path]) -> Tuple[Optional[str], Dict[str, Any], Dict[str, List[Any]]]:
    """Read a YAML/TOML grid file → ``(notebook or None, fixed parameters, grid of name → values)``."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("grid", f"file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml", ".json"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ConfigError("grid", f"{str(p)!r}: use a .yaml, .yml, .toml or .json file")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error is a config error
        raise ConfigError("grid", f"cannot parse {str(p)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("grid", f"{str(p)!r} must hold a mapping with 'grid' (and optional 'parameters', 'notebook')")
    extra = set(data) - {"notebook", "parameters", "grid"}
    if extra:
        raise ConfigError("grid", f"unknown key(s) {sorted(extra)} in {str(p)!r}; allowed: notebook, parameters, grid")
    notebook = data.get("notebook")
    if notebook is not None:
        notebook = str((p.parent / notebook).resolve()) if not Path(notebook).is_absolute() else notebook
    fixed = data.get("parameters") or {}
    grid = data.get("grid") or {}
    if not isinstance(fixed, dict) or not isinstance(grid, dict):
        raise ConfigError("grid", "'parameters' and 'grid' must be mappings")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(k, f"grid values must be a non-empty list, got {v!r}")
    return notebook, fixed, grid


def expand_grid(grid: Mapping[str, Sequence[Any]], fixed: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """The cartesian product of ``grid`` (first key varies slowest), each merged over ``fixed``."""
    fixed = dict(fixed or {})
    overlap = set(fixed) & set(grid)
    if overlap:
        raise ConfigError(sorted(overlap)[0], "is both fixed and swept; give it in one place")
    keys = list(grid)
    return [{**fixed, **dict(zip(keys, combo))} for combo in itertools.product(*(grid[k] for k in keys))]


# ---- running ------------------------------------------------------------------------------------------------
def _finished_record(out_dir: str, params: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The result of a run already finished in ``out_dir`` with these parameters (from its ``run.json``), or None.

    A run is finished when its ``run.json`` says ``"ok"`` or ``"failed"`` (not ``"running"``/``"interrupted"``).
    """
    path = Path(out_dir) / "run.json"
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("status") not in ("ok", "failed"):
        return None
    if json.dumps(rec.get("parameters"), sort_keys=True, default=str) != json.dumps(dict(params), sort_keys=True,
                                                                                   default=str):
        return None
    return {"status": rec["status"], "out_dir": str(out_dir), "notebook": rec.get("executed_notebook"),
            "html": rec.get("html"), "parameters": rec.get("parameters", {}),
            "effective": rec.get("effective_parameters", {}), "results": rec.get("results", {}),
            "error": rec.get("error"), "seconds": rec.get("seconds"), "reused": True}


def _sweep_job(notebook: str, params: Dict[str, Any], out_dir: str, html: bool, timeout: Optional[float],
               threads: Optional[int]) -> Dict[str, Any]:
    """One run (executed on a Dask worker): never raises, returns a JSON-able dict.

    A point already finished in ``out_dir`` (a task the scheduler resubmits after a worker was lost and rejoined)
    is returned from its ``run.json``: it is never run twice and its folder is never rewritten.
    """
    done = _finished_record(out_dir, params)
    if done is not None:
        return done
    env = {k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} if threads else None
    t0 = time.perf_counter()
    try:
        res = run_report(notebook, params, out_dir=out_dir, html=html, timeout=timeout, env=env)
        return res.to_dict()
    except Exception as exc:  # noqa: BLE001 - report, do not crash the sweep
        return {"status": "failed", "out_dir": out_dir, "notebook": None, "html": None, "parameters": params,
                "effective": {}, "results": {}, "error": f"{type(exc).__name__}: {exc}",
                "seconds": round(time.perf_counter() - t0, 3)}


def _n_workers(client: Any) -> int:
    """Workers the scheduler knows now (an RPC; raises OSError when the scheduler is gone)."""
    return len(client.nthreads())


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _run_dirname(i: int, params: Mapping[str, Any], varying: Sequence[str]) -> str:
    label = "-".join(f"{k}={_short(params[k])}" for k in varying if k in params)
    label = "".join(c if c.isalnum() or c in "=-_.," else "_" for c in label)[:80]
    return f"run-{i:03d}" + (f"-{label}" if label else "")


def run_sweep(notebook: Union[str, Path], param_sets: Sequence[Mapping[str, Any]], *,
              out_root: Union[str, Path] = "reports", scheduler: Optional[str] = None,
              n_workers: Optional[int] = None, html: bool = True, timeout: Optional[float] = None,
              progress: bool = True, connect_timeout: float = 30.0, metric: Optional[str] = None,
              worker_timeout: float = 60.0, poll: float = 0.25) -> SweepResult:
    """Run ``notebook`` once per parameter set on Dask and collect the recorded scalars.

    Args:
        notebook: the ``.ipynb`` to run.
        param_sets: one mapping of parameters per run (validated strictly before any run starts).
        out_root: a folder ``sweep-<stem>-YYYYmmdd-HHMMSS`` is created under it.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); None starts an embedded
            ``LocalCluster``. Workers of a remote cluster must see the same file system paths and have the
            workbench installed.
        n_workers: processes of the embedded cluster (default: ``min(runs, cores)``).
        html: export each executed notebook to HTML.
        timeout: per-cell timeout in seconds.
        progress: show a progress bar over the completed runs.
        connect_timeout: seconds to wait for a remote scheduler (and for its first worker).
        worker_timeout: seconds the sweep waits while the cluster has no worker at all (its last worker was lost)
            before it stops with a :class:`~workbench.errors.ClusterLostError`; finished runs are summarised,
            unfinished ones marked ``"lost"``. A worker that rejoins in time picks up the unfinished runs only.
        poll: seconds between checks of the futures and the worker count.
        metric: the recorded scalar to plot (default: every numeric one, at most four panels).

    Returns:
        A :class:`SweepResult`; failed runs are listed, not raised.

    Raises:
        ConfigError: a parameter set does not match the notebook's parameters (nothing ran).
        ClusterLostError: the scheduler went away, or no worker was left for ``worker_timeout`` seconds.
    """
    nb_path = Path(notebook).resolve()
    schema = notebook_parameters(nb_path)
    if not param_sets:
        raise ConfigError("grid", "the sweep has no parameter sets")
    checked = []
    for i, ps in enumerate(param_sets):
        try:
            checked.append(validate_parameters(schema, dict(ps)))
        except ConfigError as exc:
            raise ConfigError("grid", f"run {i}: {exc}") from None
    varying = [k for k in schema if len({json.dumps(ps.get(k, schema[k].default), default=str)
                                         for ps in checked}) > 1]

    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    logging.getLogger("distributed").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    cluster = None
    cores = os.cpu_count() or 1
    if scheduler is None:
        workers = int(n_workers or max(1, min(len(checked), cores)))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
        threads = max(1, cores // workers)
    else:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError("scheduler", f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
        try:
            client.wait_for_workers(1, timeout=connect_timeout)
        except (OSError, TimeoutError):
            client.close()
            raise ConfigError("scheduler", f"the Dask scheduler at {scheduler!r} has no workers "
                                           f"(waited {connect_timeout:g} s); start some with `dask worker {scheduler}`")
        workers, threads = len(client.scheduler_info().get("workers", {})), None
    sweep_dir = timestamped_dir(out_root, f"sweep-{nb_path.stem}").resolve()
    run_dirs = [str(sweep_dir / _run_dirname(i, ps, varying)) for i, ps in enumerate(checked)]
    info = {"notebook": str(nb_path), "scheduler": scheduler or "LocalCluster", "workers": workers,
            "started": _dt.datetime.now().isoformat(timespec="seconds"), "versions": package_versions()}
    runs: List[Optional[Dict[str, Any]]] = [None] * len(checked)
    info["status"] = "running"
    atomic_write_text(sweep_dir / "summary.json", json.dumps({"info": info, "varying": varying, "rows": [],
                                                              "runs": []}, indent=2, default=str))
    interrupted: Optional[ReportInterrupted] = None
    lost: Optional[str] = None
    where = scheduler or "the embedded LocalCluster"

    def failed_out(i: int, error: str, status: str = "failed") -> Dict[str, Any]:
        return {"status": status, "out_dir": run_dirs[i], "notebook": None, "html": None, "parameters": checked[i],
                "effective": {}, "results": {}, "error": error, "seconds": None}

    def progress_summary() -> None:  # completed points recorded as they finish
        done_now = [r for r in runs if r is not None]
        atomic_write_text(sweep_dir / "summary.json", json.dumps(
            {"info": info, "varying": varying, "rows": summary_rows(done_now, varying), "runs": done_now},
            indent=2, default=str))

    try:
        with _signals_as_interrupts():
            # priority -i: runs start in grid order, also when a lost worker's run is rescheduled
            pending = {client.submit(_sweep_job, str(nb_path), ps, rd, html, timeout, threads, pure=False,
                                     priority=-i): i
                       for i, (ps, rd) in enumerate(zip(checked, run_dirs))}
            bar = tqdm(total=len(pending), desc=f"sweep {nb_path.stem}", unit="run", disable=not progress)
            n_failed = 0
            no_worker_since: Optional[float] = None
            while pending:
                finished = [f for f in pending if f.done()]
                for fut in finished:
                    i = pending.pop(fut)
                    try:
                        out = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker killed 3 times etc.: record and go on
                        out = failed_out(i, f"{type(exc).__name__}: {exc}")
                    fut.release()  # the scheduler forgets it: a rejoining worker never recomputes a finished run
                    out["run"] = i
                    runs[i] = out
                    n_failed += out["status"] != "ok"
                    bar.set_postfix(failed=n_failed)
                    bar.update(1)
                if finished:
                    progress_summary()
                if not pending:
                    break
                try:
                    n_now = _n_workers(client)
                except Exception as exc:  # noqa: BLE001 - the scheduler itself is gone
                    lost = (f"lost the connection to the Dask scheduler at {where} ({type(exc).__name__}); "
                            f"restart it and its workers, then run the sweep again")
                    break
                now = time.monotonic()
                if n_now:
                    no_worker_since = None
                elif no_worker_since is None:
                    no_worker_since = now
                    bar.write(f"sweep: the cluster at {where} has no worker; waiting up to {worker_timeout:g} s "
                              f"for one to (re)join")
                elif now - no_worker_since >= worker_timeout:
                    lost = (f"the Dask cluster at {where} has had no worker for {worker_timeout:g} s (its last "
                            f"worker was lost); start one with `dask worker {scheduler or 'ADDRESS'}` and run the "
                            f"sweep again (or raise --worker-timeout)")
                    break
                time.sleep(poll)
            bar.close()
            if lost is not None:
                try:
                    client.cancel(list(pending))
                except Exception:  # noqa: BLE001 - the scheduler may be gone
                    pass
                for fut, i in pending.items():
                    runs[i] = {**failed_out(i, f"not finished: {lost.split(';')[0]}", status="lost"), "run": i}
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM: the finished runs are summarised, then we stop
        interrupted = exc if isinstance(exc, ReportInterrupted) else ReportInterrupted("SIGINT")
    finally:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - a lost scheduler cannot be closed politely
            pass
        if cluster is not None:
            cluster.close()
    done = [r for r in runs if r is not None]
    seconds = round(time.perf_counter() - t0, 3)
    info["seconds"] = seconds
    info["status"] = "interrupted" if interrupted else "lost" if lost else (
        "failed" if any(r["status"] != "ok" for r in done) else "ok")
    n_finished = sum(r["status"] in ("ok", "failed") for r in done)
    if lost:
        info["error"] = lost
        info["runs_finished"] = f"{n_finished}/{len(checked)}"
    if interrupted:
        info["interrupted_by"] = interrupted.signal_name
        info["runs_finished"] = f"{len(done)}/{len(checked)}"
    result = SweepResult(out_dir=str(sweep_dir), runs=done, varying=varying, summary=str(sweep_dir / "summary.md"),
                         seconds=seconds, info=info)
    write_summary(result, metric=metric)
    if interrupted:
        raise ReportInterrupted(interrupted.signal_name, f"interrupted by {interrupted.signal_name} after "
                                f"{len(done)}/{len(checked)} runs; summary of the finished ones in {sweep_dir}")
    if lost:
        raise ClusterLostError(f"{lost}; {n_finished}/{len(checked)} runs finished, summary in {sweep_dir}")
    return result


# ---- collection ---------------------------------------------------------------------------------------------
def summary_rows(runs: Sequence[Mapping[str, Any]], varying: Sequence[str]) -> List[Dict[str, Any]]:
    """One flat row per run: ``run``, varying parameters, ``status``, recorded scalars, ``error``."""
    rows = []
    for r in runs:
        eff = {**r.get("effective", {}), **r.get("parameters", {})}
        row = {"run": r.get("run")}
        row.update({k: eff.get(k) for k in varying})
        row["status"] = r["status"]
        row.update(r.get("results", {}))
        row["error"] = r.get("error") or ""
        rows.append(row)
    return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    cols: List[str] = []
    for row in rows:
        for k in row:
            if k not in cols and k != "error":
                cols.append(k)
    return cols + ["error"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return _short(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of :func:`summary_rows` (floats to 4 significant digits)."""
    if not rows:
        return "(no runs)"
    cols = _columns(rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _series(keys: Sequence[str]) -> Tuple[Dict[str, List[Tuple[float, str]]], List[str]]:
    """Split scalar names into series ``prefix<number>`` (two or more members) and the rest."""
    groups: Dict[str, List[Tuple[float, str]]] = {}
    for k in keys:
        m = re.match(r"^(.*?)(\d+(?:\.\d+)?)$", k)
        if m and m.group(1):
            groups.setdefault(m.group(1), []).append((float(m.group(2)), k))
    series = {p: sorted(v) for p, v in groups.items() if len(v) >= 2}
    in_series = {k for v in series.values() for _, k in v}
    return series, [k for k in keys if k not in in_series]


def _log_ok(values: Sequence[float]) -> bool:
    vals = [v for v in values if math.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 10


def plot_summary(rows: Sequence[Mapping[str, Any]], varying: Sequence[str], path: Union[str, Path],
                 metric: Optional[str] = None) -> Optional[str]:
    """One panel per recorded numeric scalar, or per series of scalars named ``<prefix><number>``.

    A series (``error_nfe4, error_nfe8, …``) is drawn as one line per run against the number (log–log when
    positive over more than a decade: the error-vs-NFE plot of a solver sweep); a single scalar as bars per run.
    Returns the path, or None when there is nothing numeric to draw.
    """
    ok = [r for r in rows if r["status"] == "ok"]
    skip = set(varying) | {"run", "status", "error"}
    keys: List[str] = []
    for r in ok:
        for k, v in r.items():
            if k not in skip and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    if metric is not None:
        keys = [k for k in keys if k == metric or re.match(rf"^{re.escape(metric)}\d", k)]
    series, singles = _series(keys)
    panels: List[Tuple[str, Any]] = [(p, v) for p, v in series.items()] + [(k, None) for k in singles]
    panels = panels[:4]
    if not ok or not panels:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    def num(v: Any) -> float:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

    labels = [", ".join(f"{k}={_short(r.get(k))}" for k in varying) or f"run {r['run']}" for r in ok]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    for ax, (name, members) in zip(axes[0], panels):
        if members is not None:
            xs = [x for x, _ in members]
            allv = []
            for r, label in zip(ok, labels):
                ys = [num(r.get(k)) for _, k in members]
                allv += ys
                ax.plot(xs, ys, marker="o", label=label)
            if _log_ok(allv) and min(xs) > 0:
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(name.rstrip("_"))
            ax.legend(fontsize=7)
            ax.set_title(f"{name}<n>", fontsize=10)
        else:
            vals = [num(r.get(name)) for r in ok]
            ax.bar(range(len(vals)), vals, color="tab:blue")
            if _log_ok(vals):
                ax.set_yscale("log")
            ax.set_xticks(range(len(vals)), labels, rotation=30, ha="right", fontsize=8)
            ax.set_title(name, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write_summary(result: SweepResult, metric: Optional[str] = None) -> None:
    """Write ``summary.md``, ``summary.csv``, ``summary.json`` and ``summary.png`` into the sweep folder."""
    folder = Path(result.out_dir)
    rows = result.table()
    md = format_summary(rows)
    failed = result.failed
    if failed:
        md += "\n\nFailed runs:\n" + "\n".join(
            f"- run {r['run']} ({r['out_dir']}): {r['error']}" for r in failed)
    atomic_write_text(folder / "summary.md", md + "\n")
    cols = _columns(rows)
    with open(folder / "summary.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for row in rows:
            w.writerow({c: (_short(row.get(c)) if isinstance(row.get(c), (list, tuple)) else row.get(c))
                        for c in cols})
    result.plot = plot_summary(rows, result.varying, folder / "summary.png", metric=metric)
    atomic_write_text(folder / "summary.json", json.dumps({"info": result.info, "varying": result.varying,
                                                           "rows": rows, "runs": result.runs}, indent=2, default=str))

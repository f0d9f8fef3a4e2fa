"""``workbench sweep NOTEBOOK -g key v1 v2 … [--grid FILE] [--scheduler ADDRESS]``: a parameter grid on Dask."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a notebook over a parameter grid on Dask (local or --scheduler) → one summary table",
        description="Run NOTEBOOK once per point of a parameter grid (cartesian product of -g lists and/or the "
                    "'grid' of a YAML/TOML file) through papermill on Dask: an embedded LocalCluster sized to "
                    "the machine, or an existing cluster with --scheduler. Every parameter set is validated "
                    "first. Failed runs are reported (their partial notebooks kept) and the sweep goes on. "
                    "Writes OUT_ROOT/sweep-<name>-<timestamp>/{run-NNN-*/, summary.md, summary.csv, "
                    "summary.json, summary.png}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  workbench sweep notebooks/02_solver_shootout.ipynb -g solvers euler heun -g schedules uniform logsnr\n"
               "  workbench sweep --grid sweep.yaml --scheduler tcp://10.0.0.5:8786\n"
               "grid file:\n  notebook: 02_solver_shootout.ipynb\n  parameters: {nfe_list: [4, 8]}\n"
               "  grid: {solvers: [[euler], [heun]], schedules: [[uniform], [logsnr]]}")
    p.add_argument("notebook", nargs="?", default=None, help="the .ipynb (or 'notebook:' in the grid file)")
    p.add_argument("--grid", default=None, help="YAML/TOML file with 'grid' (and 'parameters', 'notebook')")
    p.add_argument("-g", "--vary", nargs="+", action="append", metavar="KEY VALUE", default=[],
                   help="a swept parameter and its values: -g solvers euler heun")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                   help="a parameter fixed for every run")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes of the embedded cluster, 1 to 4096 (default: cores); not with --scheduler")
    p.add_argument("--worker-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for a scheduler, a first worker, or a worker to rejoin after the last "
                        "one was lost, before stopping with a message (default 60)")
    p.add_argument("--out-root", default="reports", help="folder for the sweep folder (default reports)")
    p.add_argument("--no-html", action="store_true", help="skip the HTML export of each run")
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    p.add_argument("--metric", default=None, help="recorded scalar to plot (default: the numeric ones)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="validate and list the runs, run nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ConfigError
    from ..reporting import expand_grid, format_summary, load_grid, notebook_parameters, run_sweep, validate_parameters

    from .. import validation
    from ..files import check_writable
    from ..reporting.semantics import check_metric, check_scheduler_address

    if args.workers is not None:
        validation.integer("--workers", args.workers, 1, 4096,
                           hint=" (processes of the embedded cluster; omit it for one per core)")
        if args.scheduler is not None:
            raise ConfigError("--workers", "sizes the embedded cluster only; with --scheduler the cluster's own "
                                           "workers run the sweep (start more with `dask worker ADDRESS`)")
    validation.number("--worker-timeout", args.worker_timeout, above=0.0, maximum=86400.0)
    if args.timeout is not None:
        validation.number("--timeout", args.timeout, above=0.0)
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    file_nb, fixed, grid = load_grid(args.grid) if args.grid else (None, {}, {})
    notebook = args.notebook or file_nb
    if notebook is None:
        raise ConfigError("notebook", "give NOTEBOOK or 'notebook:' in the --grid file")
    schema = notebook_parameters(notebook)
    fixed = validate_parameters(schema, fixed)
    given = [k for k, _ in args.parameter]
    twice = sorted({k for k in given if given.count(k) > 1})
    if twice:
        raise ConfigError("-p", f"{twice[0]} is given more than once; give each parameter once")
    fixed.update(validate_parameters(schema, {k: v for k, v in args.parameter}, from_text=True))
    seen: set = set()
    for item in args.vary:
        if len(item) < 2:
            raise ConfigError("vary", f"-g needs a name and at least one value, got {item}")
        key, values = item[0], item[1:]
        if key in seen:
            raise ConfigError("vary", f"-g {key} is given twice; list all its values after one -g {key}")
        seen.add(key)
        if key in fixed:
            raise ConfigError("vary", f"{key} is both swept (-g) and fixed (-p or 'parameters'); give it once")
        if key not in schema:
            validate_parameters(schema, {key: None})  # raises the unknown-name error
        grid[key] = [schema[key].parse(v) for v in values]
    sets = [validate_parameters(schema, ps) for ps in expand_grid(grid, fixed)]  # semantic checks of every point
    if args.metric is not None:
        check_metric(notebook, args.metric)
    if not args.dry_run:
        check_writable("--out-root", args.out_root, directory=True)
    if args.dry_run:
        for i, ps in enumerate(sets):
            print(f"run {i}: {validate_parameters(schema, ps)}")
        return 0
    res = run_sweep(notebook, sets, out_root=args.out_root, scheduler=args.scheduler, n_workers=args.workers,
                    html=not args.no_html, timeout=args.timeout, progress=not args.no_progress, metric=args.metric,
                    worker_timeout=args.worker_timeout, connect_timeout=min(30.0, args.worker_timeout))
    print(format_summary(res.table()))
    print(f"\n{len(res.runs) - len(res.failed)}/{len(res.runs)} runs ok in {res.seconds:.1f} s on "
          f"{res.info['scheduler']} ({res.info['workers']} workers) → {res.out_dir}")
    for r in res.failed:
        print(f"  run {r['run']} failed: {r['error']} (partial notebook: {r['notebook'] or r['out_dir']})")
    if res.plot:
        print(f"  plot: {res.plot}")
    return 0 if not res.failed else 1

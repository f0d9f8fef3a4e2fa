"""``workbench report NOTEBOOK -p key value …``: a validated papermill run into a timestamped folder with HTML."""
from __future__ import annotations

import argparse
import json


def _read_params_file(path: str) -> dict:
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(path)
    if not p.exists():
        raise ConfigError("parameters-file", f"file {path} does not exist")
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            data = tomllib.loads(p.read_text())
        else:
            import yaml

            data = yaml.safe_load(p.read_text())
    except Exception as exc:  # noqa: BLE001
        raise ConfigError("parameters-file", f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("parameters-file", f"{path} must hold a mapping of parameter names to values")
    return data


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="run a notebook with validated parameters (papermill) → executed .ipynb + HTML + run.json",
        description="Run NOTEBOOK with papermill after checking every parameter's name and type against the "
                    "notebook's 'parameters' cell; write the executed notebook, an HTML export, run.json "
                    "(parameters, package versions, status) and results.json into OUT_ROOT/<name>-<timestamp>/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  workbench report notebooks/02_solver_shootout.ipynb -p nfe_list 4,8,16 -p dim 8")
    p.add_argument("notebook", help="the .ipynb to run")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                   help="a parameter (parsed by its declared type: 8, 0.5, true, [4, 8] or 4,8, text)")
    p.add_argument("-f", "--parameters-file", default=None, help="YAML/TOML mapping of parameters (-p overrides)")
    p.add_argument("--out-root", default="reports", help="folder for the timestamped run folder (default reports)")
    p.add_argument("--no-html", action="store_true", help="skip the nbconvert HTML export")
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    p.add_argument("--progress", action="store_true", help="show papermill's cell progress bar")
    p.add_argument("--list", action="store_true", help="list the notebook's parameters and exit")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import validation
    from ..errors import ConfigError
    from ..files import check_writable
    from ..reporting import describe_parameters, notebook_parameters, run_report, validate_parameters

    schema = notebook_parameters(args.notebook)
    if args.list:
        print(f"parameters of {args.notebook}:\n{describe_parameters(schema)}")
        return 0
    params = validate_parameters(schema, _read_params_file(args.parameters_file)) if args.parameters_file else {}
    given = [k for k, _ in args.parameter]
    twice = sorted({k for k in given if given.count(k) > 1})
    if twice:
        raise ConfigError("-p", f"{twice[0]} is given more than once; give each parameter once")
    params.update(validate_parameters(schema, {k: v for k, v in args.parameter}, from_text=True))
    if args.timeout is not None:
        validation.number("--timeout", args.timeout, above=0.0)
    check_writable("--out-root", args.out_root, directory=True)
    res = run_report(args.notebook, params, out_root=args.out_root, html=not args.no_html, timeout=args.timeout,
                     progress=args.progress)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))
    else:
        print(f"{res.status}: {args.notebook} in {res.seconds:.1f} s → {res.out_dir}")
        print(f"  notebook: {res.notebook}")
        if res.html:
            print(f"  html:     {res.html}")
        for k, v in res.results.items():
            print(f"  {k} = {v:.6g}" if isinstance(v, float) else f"  {k} = {v}")
        if res.error:
            print(f"  failed at {res.error}")
    return 0 if res.ok else 1

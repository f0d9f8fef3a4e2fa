"""The ``workbench`` command line: one sub-command per module in :mod:`workbench.commands`.

Each module there defines ``register(subparsers)`` adding its parser and setting ``func`` to a callable
``func(args) -> int``. Errors the workbench raises for bad input are printed as one readable line (exit 2).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional

from .errors import WorkbenchError


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every sub-command found in :mod:`workbench.commands`."""
    from . import commands

    parser = argparse.ArgumentParser(prog="workbench", description="Interpolant Workbench: sample, measure, report.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``workbench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM (reports record it first): one line, shell exit code
        print(f"workbench {args.command}: {exc or 'interrupted'}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

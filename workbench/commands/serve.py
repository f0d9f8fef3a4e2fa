"""``workbench serve``: the live dashboard (``panel serve widgets/app.py``), on 127.0.0.1 unless told otherwise.

Binding to another interface is explicit: ``--address 0.0.0.0`` (or any non-loopback address) must come with at
least one ``--allow-websocket-origin HOST:PORT`` naming the address browsers will use, because Bokeh refuses
websocket connections from origins it was not told about.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from typing import List

from .. import validation
from ..errors import ConfigError

LOOPBACK_NAMES = ("localhost",)


def _is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def app_path() -> str:
    """Path of the dashboard script served by ``panel serve``."""
    import widgets.app  # noqa: F401  (fails early and clearly when the dashboard extras are missing)

    return os.path.abspath(widgets.app.__file__)


def build_command(args: argparse.Namespace) -> List[str]:
    """The ``panel serve`` command line for ``args`` (validated; no side effects)."""
    port = args.port
    validation.integer("port", port, 1, 65535)
    address = str(args.address).strip()
    origins = list(args.allow_websocket_origin or [])
    if not _is_loopback(address):
        if not origins:
            raise ConfigError(
                "address",
                f"{address!r} exposes the dashboard beyond this machine; add --allow-websocket-origin HOST:{port} "
                "for every host name browsers will use (or keep the default 127.0.0.1)",
            )
    else:
        origins = origins + [f"127.0.0.1:{port}", f"localhost:{port}"]
        if ":" in address:  # an IPv6 loopback: browsers send its bracketed form as the origin
            origins.append(f"[{address}]:{port}")
    cmd = [sys.executable, "-m", "panel", "serve", app_path(), "--port", str(port), "--address", address]
    for o in dict.fromkeys(origins):
        cmd += ["--allow-websocket-origin", o]
    if args.show:
        cmd.append("--show")
    return cmd


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="open the live dashboard (Panel) on 127.0.0.1",
        description="Serve the live dashboard. Binds to 127.0.0.1 by default; another --address needs "
                    "--allow-websocket-origin.",
    )
    p.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    p.add_argument("--address", default="127.0.0.1", help="interface to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST:PORT",
                   help="origin browsers connect from; required when --address is not loopback (repeatable)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--dry-run", action="store_true", help="print the panel command and exit")
    p.set_defaults(func=run)


def check_port_free(address: str, port: int) -> None:
    """Raise a ConfigError naming ``--port`` when ``address:port`` cannot be bound (busy or not allowed), so
    the URL is never printed for a server that is about to fail."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise ConfigError("port", f"cannot listen on {address}:{port} ({exc.strerror or exc}); "
                                      "choose a free --port") from None


def run(args) -> int:
    """Run ``panel serve`` as a child process; SIGINT/SIGTERM to this process are forwarded to it and its exit
    is awaited, so stopping ``workbench serve`` never leaves the dashboard listening."""
    cmd = build_command(args)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    check_port_free(str(args.address).strip(), args.port)
    child = subprocess.Popen(cmd)

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"workbench dashboard on http://{args.address}:{args.port}/app  (Ctrl-C to stop)", flush=True)
    try:
        rc = child.wait()
    finally:
        if child.poll() is None:  # this process is leaving for another reason: take the child with it
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if rc in (0, -signal.SIGINT, -signal.SIGTERM) else rc

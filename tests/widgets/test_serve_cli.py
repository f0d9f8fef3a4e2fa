"""`workbench serve`: loopback by default, other interfaces only with an explicit websocket origin."""
from __future__ import annotations

import pytest

from workbench.cli import build_parser
from workbench.commands.serve import build_command
from workbench.errors import ConfigError


def _args(*argv):
    return build_parser().parse_args(["serve", *argv])


def test_default_binds_loopback():
    cmd = build_command(_args())
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5006"
    assert "127.0.0.1:5006" in cmd and cmd[1:4] == ["-m", "panel", "serve"] and cmd[4].endswith("widgets/app.py")


def test_ipv6_loopback_gets_its_bracketed_origin():
    cmd = build_command(_args("--address", "::1", "--port", "7001"))
    assert cmd[cmd.index("--address") + 1] == "::1" and "[::1]:7001" in cmd


def test_other_interface_needs_origin():
    with pytest.raises(ConfigError, match="allow-websocket-origin"):
        build_command(_args("--address", "0.0.0.0"))
    cmd = build_command(_args("--address", "0.0.0.0", "--port", "7000", "--allow-websocket-origin", "box.lan:7000"))
    assert cmd[cmd.index("--address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--allow-websocket-origin") + 1] == "box.lan:7000"
    assert "127.0.0.1:7000" not in cmd


def test_bad_port_and_dry_run(capsys):
    with pytest.raises(ConfigError, match="port"):
        build_command(_args("--port", "70000"))
    args = _args("--dry-run", "--port", "5123")
    assert args.func(args) == 0
    assert "--port 5123" in capsys.readouterr().out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_busy_port_is_refused_before_the_url_is_printed(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = _args("--port", str(port))
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            args.func(args)
    assert "http://" not in capsys.readouterr().out


def test_sigterm_to_serve_stops_the_panel_server():
    """Stopping `workbench serve` stops the `panel serve` child: the port stops accepting connections."""
    import signal
    import subprocess
    import sys
    import time

    port = _free_port()
    code = f"from workbench.cli import main; raise SystemExit(main(['serve', '--port', '{port}']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the dashboard never started listening"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while _listening(port):
            assert time.monotonic() < deadline, "panel serve is still listening after workbench serve stopped"
            time.sleep(0.3)
    finally:
        if proc.poll() is None:
            proc.kill()

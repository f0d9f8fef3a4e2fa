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

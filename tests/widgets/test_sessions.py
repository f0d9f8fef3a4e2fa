"""Session lifecycle in a real (in-process) Bokeh server: each session gets its own Dashboard, and a destroyed
session stops its periodic callback and cancels its runs (Panel callbacks must not outlive their session)."""
from __future__ import annotations

import socket
import time
import urllib.request

import pytest

pn = pytest.importorskip("panel")

from widgets.app import DASHBOARDS, create_app  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sessions_are_separate_and_destroyed_sessions_stop_their_callbacks():
    port = _port()
    server = pn.serve({"app": lambda: create_app()}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}"], check_unused_sessions_milliseconds=250,
                      unused_session_lifetime_milliseconds=4000)  # both alive when first checked
    try:
        before = set(DASHBOARDS)
        for q in ("solver=euler&nfe=4&particles=50", "solver=rk4&nfe=8&particles=50"):
            deadline = time.time() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/app?{q}", timeout=10).read()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
        mine = [d for d in DASHBOARDS if d not in before]
        assert len(mine) == 2
        assert {d.w["solver"].value for d in mine} == {"euler", "rk4"}     # one Dashboard per session
        assert all(d._periodic for d in mine)
        deadline = time.time() + 20                                        # no websocket: sessions expire
        while time.time() < deadline and not all(d.closed for d in mine):
            time.sleep(0.1)
        assert all(d.closed and d._callback is None for d in mine)
    finally:
        server.stop()

"""Load: 20 concurrent sessions on loopback, each a plain websocket client speaking Bokeh's protocol (no browser).
Every session must finish its own run without errors, and show only its own configuration (no cross-talk)."""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from urllib.parse import urlencode

import pytest

tornado = pytest.importorskip("tornado")
from tornado.httpclient import AsyncHTTPClient, HTTPRequest  # noqa: E402
from tornado.websocket import websocket_connect  # noqa: E402

N_SESSIONS = 20
DEADLINE_S = 100


async def _read_message(ws):
    """One Bokeh protocol message: header, metadata, content (+ buffer header/payload pairs)."""
    header = json.loads(await ws.read_message())
    await ws.read_message()  # metadata
    content = json.loads(await ws.read_message())
    for _ in range(header.get("num_buffers", 0)):
        await ws.read_message()
        await ws.read_message()
    return header, content


def _find_ids(obj, css: str, out: dict):
    """Ids (and current text) of models whose css_classes contain ``css`` in a serialized document."""
    if isinstance(obj, dict):
        attrs = obj.get("attributes")
        if isinstance(attrs, dict) and css in (attrs.get("css_classes") or []):
            out[obj["id"]] = attrs.get("text", "")
        for v in obj.values():
            _find_ids(v, css, out)
    elif isinstance(obj, list):
        for v in obj:
            _find_ids(v, css, out)


async def _session(base: str, query: dict, deadline: float) -> dict:
    http = AsyncHTTPClient()
    page = await http.fetch(base + "?" + urlencode(query), request_timeout=60)
    token = re.search(r'"token":\s*"([^"]+)"', page.body.decode()).group(1)
    ws_url = base.replace("http://", "ws://") + "/ws"
    origin = base.split("/app")[0]
    ws = await websocket_connect(HTTPRequest(ws_url, headers={"Origin": origin}), subprotocols=["bokeh", token])
    try:
        hdr, _ = await _read_message(ws)
        assert hdr["msgtype"] == "ACK"
        for frame in (json.dumps({"msgid": "pull", "msgtype": "PULL-DOC-REQ"}), "{}", "{}"):
            await ws.write_message(frame)
        status, alerts, errors = {}, {}, []
        while True:
            hdr, content = await asyncio.wait_for(_read_message(ws), max(deadline - time.monotonic(), 0.1))
            if hdr["msgtype"] == "PULL-DOC-REPLY":
                _find_ids(content["doc"], "status-a", status)
                _find_ids(content["doc"], "error-msg", alerts)
                assert len(status) == 1
            elif hdr["msgtype"] == "PATCH-DOC":
                for ev in content.get("events", []):
                    mid = (ev.get("model") or {}).get("id")
                    if ev.get("kind") == "ModelChanged" and ev.get("attr") == "text":
                        if mid in status:
                            status[mid] = ev["new"]
                        elif mid in alerts and ev["new"]:
                            errors.append(ev["new"])
            elif hdr["msgtype"] == "ERROR":
                errors.append(str(content))
            text = next(iter(status.values()), "")
            if "done" in text or "failed" in text:
                return {"status": text, "errors": errors}
    finally:
        ws.close()


def test_twenty_concurrent_sessions(dashboard_server):
    solvers = ["euler", "heun", "rk4", "midpoint"]
    queries = [{"solver": solvers[i % 4], "nfe": str(8 + 2 * i), "seed": str(i % 3), "particles": "200"}
               for i in range(N_SESSIONS)]

    async def main():
        deadline = time.monotonic() + DEADLINE_S
        return await asyncio.gather(*[_session(dashboard_server, q, deadline) for q in queries])

    # in its own thread: Playwright's sync API (browser tests in the same session) keeps a loop in this one
    box = {}
    th = threading.Thread(target=lambda: box.update(r=asyncio.run(main())), daemon=True)
    th.start()
    th.join(DEADLINE_S + 20)
    assert "r" in box, "the sessions did not finish in time"
    results = box["r"]
    for q, r in zip(queries, results):
        assert not r["errors"], r["errors"]
        st = r["status"]
        assert "done" in st, st
        # its own solver and budget, nobody else's
        assert q["solver"] in st and f"/{q['nfe']} " in st, (q, st)
        for other in solvers:
            if other != q["solver"]:
                assert f">{other}<" not in st and f"`{other}`" not in st
    # determinism across sessions: same (solver, nfe, seed) never differs; different budgets give different errors
    errs = [float(re.search(r"error ([0-9.e+-]+)", r["status"]).group(1)) for r in results]
    assert len(set(errs)) == N_SESSIONS

"""Issue 17 in Debian's headless chromium (Playwright): a crafted link runs no script and shows its value as text;
a link naming a path or an oversized value is refused with a message; a typed-in value out of range gets a message
next to its control; one session's slow model build does not hold up another session's run."""
from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect
pn = pytest.importorskip("panel")

XSS = "/app?solver=%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D1%22%3E&particles=300"


def test_injection_link_runs_nothing_and_shows_the_value_as_text(page, dashboard_server):
    page.goto(dashboard_server.replace("/app", "") + XSS)
    alert = page.locator(".error-msg")
    expect(alert).to_contain_text('unknown name \'<img src=x onerror="window.__xss=1">\'')
    expect(page.locator(".status-a")).to_contain_text("done", timeout=45_000)   # the defaults still run
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0                             # no element was injected
    assert "solver=heun" in page.url                                            # the URL shows what ran


def test_path_and_oversized_links_are_refused_with_a_message(page, dashboard_server):
    folder = Path("/tmp") / f"wb-link-{uuid.uuid4().hex[:8]}"
    page.goto(dashboard_server + f"?data=gmm_nd&data.cache_dir={folder}&data.dim=100000&eps=7"
                                 "&particles=100000000&solver=euler&nfe=6")
    alert = page.locator(".error-msg")
    expect(alert).to_contain_text("data.cache_dir: refused: paths, files and folders are set by the server")
    expect(alert).to_contain_text("data.dim: must be an integer in [1, 256]")
    expect(alert).to_contain_text("eps: must be a number in [0.0, 5.0], got '7'")
    expect(alert).to_contain_text("particles: must be an integer in [1, 10000]")
    expect(page.locator(".status-a")).to_contain_text("done", timeout=45_000)
    assert not folder.exists()
    nfe = page.locator(".w-nfe input").first                                    # typed-in value out of range
    nfe.fill("500")
    nfe.press("Enter")
    expect(page.locator(".hint-nfe")).to_contain_text("nfe: must be an integer in [1, 200], got 500")
    box = page.locator(".w-particles input").first                              # an empty box
    box.fill("")
    box.press("Enter")
    expect(page.locator(".hint-particles")).to_contain_text("particles: enter an integer in [1, 10000]")
    expect(page.locator("body")).not_to_contain_text("Traceback")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gmm2d_session_finishes_while_another_session_builds_its_model(browser, monkeypatch):
    from .test_fixes import _SlowBuild, close_and_release
    from widgets.app import DASHBOARDS, create_app

    before = set(DASHBOARDS)
    build = _SlowBuild(60.0).install(monkeypatch)          # an artificially slow vorticity generator build
    port = _port()
    server = pn.serve({"app": lambda: create_app()}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}"])
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        url = f"http://127.0.0.1:{port}/app"
        slow, fast = ctx.new_page(), ctx.new_page()
        for p in (slow, fast):
            p.set_default_timeout(30_000)
        slow.goto(url + "?data=vorticity&data.grid=64&particles=4&nfe=4")
        expect(slow.locator(".status-a")).to_contain_text("building the model", timeout=30_000)
        t0 = time.monotonic()
        fast.goto(url + "?data=gmm2d&solver=heun&nfe=10&particles=500&seed=9")
        expect(fast.locator(".status-a")).to_contain_text("done", timeout=30_000)
        wall = time.monotonic() - t0
        assert build.active == 1                                               # the other model still building
        expect(slow.locator(".status-a")).to_contain_text("building the model")
        print(f"gmm2d page load to done while another session builds: {wall:.2f} s")
        ARTIFACTS.mkdir(exist_ok=True)
        fast.screenshot(path=str(ARTIFACTS / "dashboard-1280x800.png"))
    finally:
        ctx.close()
        close_and_release([d for d in list(DASHBOARDS) if d not in before], build)
        server.stop()

"""Drive the served dashboard in Debian's headless chromium (Playwright): change solver and NFE, wait for the
plot to update, check the displayed error and NFE, save a screenshot under artifacts/."""
from __future__ import annotations

import re

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect


def _status(page, side="a") -> str:
    return page.locator(f".status-{side} p").inner_text()


def _wait_done(page, side="a", contains=()):
    loc = page.locator(f".status-{side}")
    for text in contains:
        expect(loc).to_contain_text(text, timeout=45_000)
    expect(loc).to_contain_text("done", timeout=45_000)
    return _status(page, side)


def _error(status: str) -> float:
    return float(re.search(r"error ([0-9.e+-]+)", status).group(1))


def _points_version(page) -> int:
    """How many times the particle source changed in the browser (a hook installed by _hook)."""
    return page.evaluate("() => window.__wb_updates || 0")


def _hook(page):
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    page.wait_for_function("""() => [...Bokeh.documents[0]._all_models.values()]
        .some(m => m.type === 'ColumnDataSource' && m.name === 'points_a')""")
    page.evaluate("""() => { window.__wb_updates = 0;
        const s = [...Bokeh.documents[0]._all_models.values()].find(m => m.type === 'ColumnDataSource' && m.name === 'points_a');
        s.properties.data.change.connect(() => window.__wb_updates++); }""")


def test_change_solver_and_nfe_updates_plot_error_and_nfe(page, dashboard_server):
    page.goto(dashboard_server + "?solver=heun&nfe=20&particles=2000")
    page.wait_for_selector("select.bk-input")
    _hook(page)
    s1 = _wait_done(page, contains=("heun", "NFE 20/20"))
    e1 = _error(s1)
    before = _points_version(page)
    page.locator(".w-solver select").select_option("euler")
    nfe = page.locator(".w-nfe input").first
    nfe.fill("10")
    nfe.press("Enter")
    s2 = _wait_done(page, contains=("euler", "NFE 10/10"))
    e2 = _error(s2)
    assert _points_version(page) > before          # the particle plot was redrawn
    assert e2 > 3 * e1                              # first order at half the NFE: clearly worse
    assert "solver=euler" in page.url and "nfe=10" in page.url   # state in the URL
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-browser.png"), full_page=True)


def test_bad_url_and_bad_combination_are_readable(page, dashboard_server):
    page.goto(dashboard_server + "?solver=nope&nfe=999&eps=__import__('os')&particles=500")
    alert = page.locator(".error-msg")
    expect(alert).to_contain_text("unknown name 'nope'")
    expect(alert).to_contain_text("nfe: must be an integer in [1, 200]")
    _wait_done(page, contains=("heun",))            # the defaults still run
    page.locator(".w-interpolant select").select_option("mirror")
    page.locator(".w-solver select").select_option("dpmpp_2m")
    expect(alert).to_contain_text("log-SNR")
    expect(page.locator("body")).not_to_contain_text("Traceback")


def test_side_by_side(page, dashboard_server):
    page.goto(dashboard_server + "?solver=euler&nfe=12&compare=1&solver_b=rk4&nfe_b=12&particles=500")
    sa = _wait_done(page, "a", contains=("euler", "NFE 12/12"))
    sb = _wait_done(page, "b", contains=("rk4", "NFE 12/12"))
    assert _error(sb) < _error(sa)


def test_first_run_reaches_the_page_even_when_it_ends_before_the_page_loads(page, dashboard_server):
    """The first run (NFE 4, 300 particles) often finishes before the browser has loaded the page: its final
    particles, exact-target image and error-vs-NFE point must still be there once the status says done."""
    page.goto(dashboard_server + "?solver=euler&nfe=4&particles=300&seed=5")
    _wait_done(page, contains=("euler", "NFE 4/4"))
    page.wait_for_function("""() => { const ms = [...Bokeh.documents[0]._all_models.values()];
        const h = ms.find(m => m.name === 'hist_error'), p = ms.find(m => m.name === 'points_a');
        return h.data.nfe.length === 1 && h.data.nfe[0] === 4 && p.data.x.length === 300; }""", timeout=10_000)
    r_mean = page.evaluate("""() => { const p = [...Bokeh.documents[0]._all_models.values()].find(m => m.name === 'points_a');
        let r = 0; for (let i = 0; i < p.data.x.length; i++) r += Math.hypot(p.data.x[i], p.data.y[i]);
        return r / p.data.x.length; }""")
    assert r_mean > 2.0       # the final state (gmm2d modes on a circle of radius 3), not the start (mean radius 1.25)


def test_back_and_forward_move_between_configurations(page, dashboard_server):
    """The browser's back and forward buttons restore the configuration each address names (controls and run),
    and navigating adds no history entries (the forward entries survive going back)."""
    page.goto(dashboard_server + "?solver=heun&nfe=8&particles=200")
    _wait_done(page, contains=("heun", "NFE 8/8"))
    page.locator(".w-solver select").select_option("euler")
    page.wait_for_function("() => location.search.includes('solver=euler')")
    _wait_done(page, contains=("euler",))
    entries = page.evaluate("history.length")
    page.go_back()
    expect(page.locator(".w-solver select")).to_have_value("heun")
    _wait_done(page, contains=("heun", "NFE 8/8"))
    assert "solver=heun" in page.url and page.evaluate("history.length") == entries
    page.go_forward()
    expect(page.locator(".w-solver select")).to_have_value("euler")
    _wait_done(page, contains=("euler", "NFE 8/8"))
    assert "solver=euler" in page.url and page.evaluate("history.length") == entries

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

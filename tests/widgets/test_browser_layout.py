"""Layout and theme in Debian's headless chromium (Playwright): at 1280 × 800 compare mode shows both panels whole
and the Run/Export buttons above the fold with no horizontal scrolling; ``?theme=dark`` darkens the plots too."""
from __future__ import annotations

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect

W, H = 1280, 800


@pytest.fixture
def small_page(browser):
    context = browser.new_context(viewport={"width": W, "height": H})
    pg = context.new_page()
    pg.set_default_timeout(45_000)
    yield pg
    context.close()


def _inside(box, w=W, h=H) -> bool:
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= w + 0.5 and \
        box["y"] + box["height"] <= h + 0.5


def test_compare_mode_fits_1280x800(small_page, dashboard_server):
    page = small_page
    page.goto(dashboard_server + "?compare=1&solver=euler&solver_b=heun&nfe=8&nfe_b=8&particles=300")
    expect(page.locator(".status-b")).to_contain_text("done")
    b = page.locator(".panel-b").bounding_box()
    a = page.locator(".panel-a").bounding_box()
    assert _inside(b), f"panel B {b} is not inside the {W}x{H} viewport"
    assert _inside(a), f"panel A {a} is not inside the {W}x{H} viewport"
    assert a["x"] + a["width"] <= b["x"] + 0.5                      # side by side, not overlapping
    for sel in (".w-run", ".w-stop", ".w-png", ".w-json"):            # above the fold
        box = page.locator(sel).bounding_box()
        assert _inside(box), f"{sel} at {box} is below the fold or off screen"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= W   # no horizontal scrolling
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-compare-1280x800.png"))


def test_dark_theme_reaches_the_plots(small_page, dashboard_server):
    page = small_page
    page.goto(dashboard_server + "?theme=dark&solver=euler&nfe=6&particles=200")
    expect(page.locator(".status-a")).to_contain_text("done")
    colors = page.evaluate("""() => [...Bokeh.documents[0]._all_models.values()]
        .filter(m => m.type === 'Figure').map(m => [m.background_fill_color, m.border_fill_color])""")
    assert len(colors) >= 5                                          # particles, fields, spectrum, error plots

    def dark(c: str) -> bool:
        c = c.lstrip("#")
        r, g, bl = (int(c[i:i + 2], 16) for i in (0, 2, 4))
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl < 80

    assert all(dark(bg) and dark(border) for bg, border in colors), colors
    assert "theme=dark" in page.url                                  # kept in the shareable URL
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-dark.png"))

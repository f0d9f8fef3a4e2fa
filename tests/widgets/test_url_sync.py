"""The address follows the validated state through ``pn.state.location.sync`` (allow-list, the state's bounds),
and an address changed from outside (``location.search`` set) goes through the same bounds: accepted values move the controls,
refused ones are reported as escaped text and the address shows the state again. A standalone Location
stands in for the page's."""
from __future__ import annotations

import html
from urllib.parse import parse_qsl

import pytest

pn = pytest.importorskip("panel")

from panel.io.location import Location  # noqa: E402

from widgets.app import Dashboard  # noqa: E402


def _query(loc) -> dict:
    return dict(parse_qsl(loc.search.lstrip("?")))


@pytest.fixture
def dash():
    d = Dashboard({"solver": "<img src=x>", "nfe": "999", "x": "1", "data.cache_dir": "/tmp/wb-evil", "data": "gmm_nd",
                   "data.dim": "3", "particles": "50"}, periodic=False, autostart=False, debounce=0.0)
    loc = Location(search="?solver=%3Cimg%3E&nfe=999&x=1&data.cache_dir=/tmp/wb-evil")
    d._sync_location(loc)
    yield d, loc
    for run in d.runs.values():
        if run is not None:
            run.cancel()
            run.join(30)
    d.close()


def test_address_shows_the_validated_state_only(dash):
    d, loc = dash
    q = _query(loc)
    assert q["solver"] == "heun" and q["nfe"] == "20" and q["data"] == "gmm_nd" and q["data.dim"] == "3"
    assert "x" not in q and "data.cache_dir" not in q
    assert any("unknown name '<img src=x>'" in m for m in d.url_messages)
    assert "&lt;img" in d.alert.object and "<img" not in d.alert.object        # escaped text


def test_address_follows_the_runs_and_the_chosen_entry(dash):
    d, loc = dash
    d.w["solver"].value = "euler"
    d.param_widgets["data"]["dim"].value = 4
    d.tick()
    assert _query(loc)["solver"] == "euler" and _query(loc)["data.dim"] == "4"
    d.w["data"].value = "gaussian"                   # another entry: its parameters, not the old ones
    d.tick()
    q = _query(loc)
    assert q["data"] == "gaussian" and q["data.dim"] == "2" and "data.n_modes" not in q


def test_an_address_change_goes_through_the_bounds(dash):
    d, loc = dash
    loc.search = "?solver=rk4&nfe=12&data=gaussian&data.dim=5"
    assert d.w["solver"].value == "rk4" and d.w["nfe"].value == 12 and d.w["data"].value == "gaussian"
    assert d.param_widgets["data"]["dim"].value == 5 and d._pending is not None and d.url_messages == []
    d.tick()
    assert (d.config.solver, d.config.nfe, d.config.data_params) == ("rk4", 12, {"dim": 5})
    loc.search = "?solver=rk4&nfe=500&data=gaussian&data.dim=700&data.cache_dir=/x"
    text = html.unescape(d.alert.object)
    assert "nfe: must be an integer in [1, 200], got 500" in text and "data.dim" in text and "data.cache_dir" in text
    assert d.state.nfe == 12 and d.w["nfe"].value == 12 and d.state.data_params.dim == 5   # refused, not clamped
    q = _query(loc)
    assert q["nfe"] == "12" and q["data.dim"] == "5" and "data.cache_dir" not in q      # the address shows the state

"""The notebook front is the served Panel app (not a second UI): same Dashboard and controls, resources inline,
an ipywidget through jupyter_bokeh; a control change reruns, and bad settings are messages."""
from __future__ import annotations

import html
import json
import re

import pytest
from bokeh.document.events import ModelChangedEvent

pn = pytest.importorskip("panel")

from widgets import jupyter_dashboard  # noqa: E402
from widgets.app import Dashboard  # noqa: E402
from widgets.state import FAMILIES  # noqa: E402


def _status(d) -> str:
    return html.unescape(d.dashboard.status["a"].object)


def test_one_line_dashboard_is_the_panel_app_and_reruns_on_change():
    d = jupyter_dashboard(solver="euler", nfe=6, particles=200)
    assert isinstance(d.dashboard, Dashboard) and d.layout is d.dashboard.layout
    assert pn.config.inline                                        # offline: no CDN
    assert d.wait(60)
    assert "NFE 6/6" in _status(d) and "done" in _status(d)
    assert d.dashboard.export_png().getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    e1 = float(re.search(r"error ([0-9.e+-]+)", _status(d)).group(1))
    for fam in FAMILIES:
        assert list(d.dashboard.w[fam].options) == FAMILIES[fam].names()
    d.dashboard.w["solver"].value = "rk4"
    d.dashboard.w["nfe"].value = 24
    assert d.wait(60)
    assert "rk4" in _status(d) and "NFE 24/24" in _status(d)
    e2 = float(re.search(r"error ([0-9.e+-]+)", _status(d)).group(1))
    assert e2 < e1 / 10
    d.dashboard.close()


def test_renders_as_an_ipywidget():
    pytest.importorskip("jupyter_bokeh")
    from jupyter_bokeh import BokehModel

    d = jupyter_dashboard(solver="euler", nfe=4, particles=50)
    assert isinstance(d.ipywidget(), BokehModel)
    d.wait(60)
    d.dashboard.close()


def test_bad_settings_are_messages():
    d = jupyter_dashboard(interpolant="mirror", solver="dpmpp_2m", nfe=999, bogus=1)
    assert d.wait(60)
    text = html.unescape(d.dashboard.alert.object)
    assert "log-SNR" in text and "nfe" in text and "bogus" in text and "Traceback" not in text
    d.dashboard.close()


def test_ipywidget_receives_the_frames():
    """Each tick's changes (held into one batch) reach the notebook's widget: the widget's document has no server
    session, where Panel's ``hold`` dropped them (the notebook front showed no particles and no status)."""
    pytest.importorskip("jupyter_bokeh")
    from bokeh.document.events import ColumnDataChangedEvent, ModelChangedEvent

    d = jupyter_dashboard(solver="euler", nfe=8, particles=50)
    w = d.ipywidget()
    events = []
    w._document.on_change(lambda e: events.append(e))
    assert d.wait(60)
    assert any(isinstance(e, ColumnDataChangedEvent) and e.model.name == "points_a" for e in events)
    assert any(isinstance(e, ModelChangedEvent) and e.attr == "text" and "done" in str(e.new) for e in events)
    d.dashboard.close()


def test_ipywidget_sends_one_patch_per_event_loop_turn():
    """A tick changes several models; the notebook widget sends them as one PATCH-DOC (3 JSON parts, then a
    header and a binary payload per buffer) after the tick, in order, with the particle arrays as binary buffers,
    and the page's own changes are not echoed."""
    pytest.importorskip("jupyter_bokeh")
    from widgets.ipywidget import BatchedBokehModel

    d = jupyter_dashboard(solver="euler", nfe=8, particles=50)
    w = d.ipywidget()
    assert isinstance(w, BatchedBokehModel)
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))
    assert d.wait(60)
    carried = w.flush()
    assert carried >= 3 and w.pending == 0 and w.flush() == 0
    header, meta, content = (json.loads(c["payload"]) for c, _ in sent[:3])
    assert header["msgtype"] == "PATCH-DOC" and header["num_buffers"] == len(sent[3:]) // 2 >= 2
    events = content["events"]
    assert len(events) == carried
    assert all(b is None for _, b in sent[:3]) and all(isinstance(b[0], bytes) for _, b in sent[4::2])
    points = d.dashboard.point_src["a"]
    assert any(e.get("kind") == "ColumnDataChanged" and e["model"]["id"] == points.id for e in events)
    # a change made by the page itself is not sent back
    w._document_patched(ModelChangedEvent(w._document, points, "tags", [1], setter=w))
    assert w.pending == 0
    d.dashboard.close()


def test_notebook_updates_reuse_the_stylesheet_models(monkeypatch):
    """Once the notebook front has run, further runs' status-text updates build no new stylesheet models: a new
    set reached the page as a changed ``stylesheets`` list, and each made it restyle and lay out the whole
    dashboard again (Panel reuses a document's stylesheet models only when that document is its current one, which
    a kernel's periodic callback does not set; without that, 3 new models per run here)."""
    pytest.importorskip("jupyter_bokeh")
    from bokeh.models import ImportedStyleSheet

    d = jupyter_dashboard(solver="euler", nfe=8, particles=50)
    d.ipywidget()
    d.dashboard.request_run(0)
    assert d.wait(60)
    built = []
    init = ImportedStyleSheet.__init__
    monkeypatch.setattr(ImportedStyleSheet, "__init__", lambda self, *a, **k: (built.append(k), init(self, *a, **k))[1])
    texts = []
    d.dashboard.status["a"].param.watch(lambda e: texts.append(e.new), "object")
    for _ in range(2):
        d.dashboard.request_run(0)
        assert d.wait(60)
    assert len(texts) >= 4 and built == [], (len(texts), built)
    d.dashboard.close()


def test_notebook_layout_contains_its_layout_and_paint():
    """The notebook front's root carries CSS containment, so a redraw does not lay out JupyterLab's whole page."""
    from widgets.app import NOTEBOOK_CONTAINMENT

    d = jupyter_dashboard(solver="euler", nfe=8, particles=50)
    assert NOTEBOOK_CONTAINMENT in d.layout.stylesheets and "contain: content" in NOTEBOOK_CONTAINMENT
    d.dashboard.close()

"""The ipywidgets front: same controls from the registries, a control change reruns, bad input is a message."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("ipywidgets")

from widgets import jupyter_dashboard  # noqa: E402
from widgets.state import FAMILIES  # noqa: E402


def test_one_line_dashboard_runs_and_reruns_on_change():
    d = jupyter_dashboard(solver="euler", nfe=6, particles=200)
    assert d.wait(60)
    assert "NFE 6/6" in d.status.value and "done" in d.status.value
    assert d.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    e1 = float(re.search(r"error ([0-9.e+-]+)", d.status.value).group(1))
    for fam in FAMILIES:
        assert list(d.controls[fam].options) == FAMILIES[fam].names()
    d.controls["solver"].value = "rk4"
    d.controls["nfe"].value = 24
    assert d.wait(60)
    assert "rk4" in d.status.value and "NFE 24/24" in d.status.value
    e2 = float(re.search(r"error ([0-9.e+-]+)", d.status.value).group(1))
    assert e2 < e1 / 10


def test_bad_settings_are_messages():
    d = jupyter_dashboard(interpolant="mirror", solver="dpmpp_2m", nfe=999, bogus=1)
    assert d.wait(60)
    text = d.alert.value
    assert "log-SNR" in text and "nfe" in text and "bogus" in text and "Traceback" not in text

"""Unit tests of the dashboard without a server: it builds for every registered name, a control change
triggers a run, cancellation works, and the numbers shown are the run's (error falls with NFE)."""
from __future__ import annotations

import html
import json
import re
import time

import pytest

pn = pytest.importorskip("panel")

from widgets.app import Dashboard  # noqa: E402
from widgets.live import LiveRun, histogram_spectrum, radial_spectrum  # noqa: E402
from widgets.state import FAMILIES, DashboardConfig, build_experiment, param_specs  # noqa: E402


def _wait_done(d: Dashboard, side: str = "a", timeout: float = 60.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d.tick()
        run = d.runs.get(side)
        if run is not None and run.finished and d._recorded[side] and d._seen[side] == run.latest()[0]:
            return d.status[side].object
        if run is None and d._pending is None:
            return d.status[side].object
        time.sleep(0.02)
    raise AssertionError(f"run did not finish: {d.status[side].object}")


def _nfe(status: str):
    m = re.search(r"NFE (\d+)/(\d+)", status)
    return int(m.group(1)), int(m.group(2))


def _error(status: str) -> float:
    return float(re.search(r"error ([0-9.e+-]+)", status).group(1))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_builds_for_every_registered_name(family):
    for name in FAMILIES[family].names():
        d = Dashboard({family: name}, periodic=False, autostart=False)
        assert d.w[family].value == name
        assert list(d.param_widgets[family]) == [s.name for s in param_specs(family, name)]
        cfg = d.read_config()
        assert getattr(cfg, family) == name
        d.close()


def test_control_change_triggers_run_and_error_falls_with_nfe():
    d = Dashboard({"solver": "heun", "nfe": "8", "particles": "400"}, periodic=False, debounce=0.0)
    s1 = _wait_done(d)
    assert "heun" in s1 and _nfe(s1) == (8, 8)
    e1 = _error(s1)
    first = d.runs["a"]
    d.w["nfe"].value = 31                     # odd budget: heun spends 2 per step -> 30 used
    assert d._pending is not None             # the change requested a run
    s2 = _wait_done(d)
    assert d.runs["a"] is not first
    assert _nfe(s2) == (30, 31)
    e2 = _error(s2)
    assert e2 < e1 / 4                        # second order: ~ (8/30)^2 smaller
    d.w["solver"].value = "euler"             # rebuilds the solver's parameter controls, runs again
    s3 = _wait_done(d)
    assert "euler" in s3 and _nfe(s3) == (31, 31)
    assert len(d.history) == 3 and [h["nfe"] for h in d.history] == [8, 30, 31]
    d.close()


def test_control_change_cancels_running_sample():
    d = Dashboard({"solver": "rk4", "nfe": "200", "particles": "2000"}, periodic=False, debounce=0.0)
    d.tick()
    slow = d.runs["a"]
    assert slow is not None
    while slow.latest()[1]["state"] == "starting":
        time.sleep(0.01)
    d.w["solver"].value = "euler"
    assert slow.cancelled
    assert slow.join(10)
    assert slow.latest()[1]["state"] == "cancelled"
    assert slow.latest()[1]["step"] < 50
    s = _wait_done(d)
    assert "euler" in s
    d.close()


def test_live_run_cancel_and_join():
    exp, msg = build_experiment(DashboardConfig(solver="rk4", nfe=200, particles=2000))
    assert msg is None
    run = LiveRun(exp).start()
    run.cancel()
    assert run.join(10)
    assert run.latest()[1]["state"] == "cancelled"


def test_bad_combination_is_a_message_not_a_traceback():
    d = Dashboard({"interpolant": "mirror", "solver": "dpmpp_2m"}, periodic=False, debounce=0.0)
    _wait_done(d)
    assert d.alert.visible and "log-SNR" in d.alert.object and "Traceback" not in d.alert.object
    assert d.runs["a"].latest()[1]["state"] == "failed" and "failed" in d.status["a"].object
    d.w["solver"].value = "heun"            # fixing it clears the message and runs
    s = _wait_done(d)
    assert not d.alert.visible and "done" in s
    d.close()


def test_url_garbage_is_reported_and_defaults_run():
    d = Dashboard({"solver": "nope", "nfe": "100000", "x": "__import__('os')", "particles": "300"},
                  periodic=False, debounce=0.0)
    text = html.unescape(d.alert.object)
    assert d.alert.visible and "unknown name 'nope'" in text and "nfe" in text
    s = _wait_done(d)
    assert "heun" in s and "done" in s
    d.close()


def test_side_by_side_same_noise():
    q = {"solver": "euler", "nfe": "16", "compare": "1", "solver_b": "euler", "nfe_b": "16", "particles": "300"}
    d = Dashboard(q, periodic=False, debounce=0.0)
    _wait_done(d, "a")
    _wait_done(d, "b")
    fa, fb = d.runs["a"].latest()[1], d.runs["b"].latest()[1]
    assert (fa["xy"] == fb["xy"]).all()            # same start states, same solver -> identical
    d.w["solver_b"].value = "heun"
    _wait_done(d, "a")
    sb = _wait_done(d, "b")
    assert "heun" in sb and _error(sb) < fa["error"]
    d.close()


def test_exports():
    d = Dashboard({"solver": "euler", "nfe": "4", "particles": "200"}, periodic=False, debounce=0.0)
    _wait_done(d)
    cfg = json.loads(d.export_json().getvalue())
    assert cfg["config"]["solver"] == "euler" and cfg["results"]["a"]["nfe"] == 4
    png = d.export_png().getvalue()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    d.close()


def test_spectrum_of_density_sees_sharper_modes():
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    wide = rng.normal(size=(4000, 2)).astype(np.float32)
    sharp = (rng.normal(size=(4000, 2)) * 0.1 + rng.choice([-2, 2], size=(4000, 1))).astype(np.float32)
    kw, ew = histogram_spectrum(wide, box=4.0)
    ks, es = histogram_spectrum(sharp, box=4.0)
    hi = kw >= 8
    assert es[hi].sum() > 10 * ew[hi].sum()
    # Parseval: shells sum to half the mean square (mean removed)
    f = torch.randn(32, 32, dtype=torch.float64)
    k, e = radial_spectrum(f)
    assert abs(e.sum() - 0.5 * float(((f - f.mean()) ** 2).mean())) < 1e-10

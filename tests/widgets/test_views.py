"""Dashboard views without a server: error-vs-NFE plots per metric and per data set, path segments streamed
incrementally equal to the full set, frames held back until the browser acknowledges the previous one, and the
theme setting."""
from __future__ import annotations

import time

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from widgets.app import Dashboard, _density_image, _nan_separated  # noqa: E402
from widgets.state import config_to_query, parse_query  # noqa: E402


def _finish(d: Dashboard, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d.tick()
        run = d.runs["a"]
        if run is not None and run.finished and d._recorded["a"] and d._seen["a"] == run.latest()[0]:
            return
        time.sleep(0.02)
    raise AssertionError("run did not finish")


def _set(d: Dashboard, key: str, value) -> None:
    """Change a control without its watcher (no debounce), rebuilding a family's parameter controls."""
    d._building = True
    d.w[key].value = value
    if key == "data":
        d._build_params("data", {})
    d._building = False
    d.start_runs()
    _finish(d)


def test_error_plots_are_per_metric_and_per_data_set():
    d = Dashboard({"solver": "euler", "nfe": "4", "particles": "100"}, periodic=False, debounce=0.0)
    _finish(d)
    _set(d, "nfe", 8)
    frames = [d.history[0], d.history[1]]
    src = d.hist_src
    # one axis per metric: each source holds that metric's numbers of this data set's runs, nothing else
    assert src["error"].data["value"] == [f["error"] for f in frames]
    assert src["sw2"].data["value"] == [f["sw2"] for f in frames]
    assert src["error"].data["nfe"] == [4, 8] and src["spectral_error"].data["value"] == []
    assert d.runs["a"].latest()[1]["error"] == frames[1]["error"]        # the run's own number
    assert all("gmm2d" in f.title.text for f in d.metric_fig.values())
    _set(d, "data", "gaussian")                                        # another data set: its runs only
    assert src["error"].data["nfe"] == [8] and "gaussian" in d.err_fig.title.text
    assert src["error"].data["value"] == [d.history[-1]["error"]]
    _set(d, "data", "gmm2d")                                           # back: the earlier runs again
    assert src["error"].data["nfe"] == [4, 8, 8]
    assert len(set(src["error"].data["series"])) == 1                  # one series: A euler/uniform/linear
    d.close()


def test_paths_are_one_nan_separated_polyline():
    rng = np.random.default_rng(1)
    paths = rng.normal(size=(7, 3, 2)).astype(np.float32)             # (T, P, 2)
    line = _nan_separated(paths)
    assert len(line["x"]) == 3 * 8 and line["x"].dtype == np.float32
    for p in range(3):                                                  # path p: its T points, then one break
        assert np.array_equal(line["x"][p * 8:p * 8 + 7], paths[:, p, 0])
        assert np.array_equal(line["y"][p * 8:p * 8 + 7], paths[:, p, 1])
        assert np.isnan(line["x"][p * 8 + 7]) and np.isnan(line["y"][p * 8 + 7])


def test_target_density_image_puts_the_mass_where_the_samples_are():
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal(size=(500, 2)) * 0.1 + [2.0, -1.0], [[np.nan, 0.0]]])
    d = _density_image(xy, 4.0, pixels=64)
    img = d["image"][0].view(np.uint8).reshape(64, 64, 4)
    assert d["x"] == [-4.0] and d["y"] == [-4.0] and d["dw"] == [8.0] and d["dh"] == [8.0]
    r, c = np.unravel_index(np.argmax(img[..., 3]), (64, 64))        # rows are y (image_rgba's convention)
    assert abs(-4 + (c + 0.5) / 8 - 2.0) < 0.3 and abs(-4 + (r + 0.5) / 8 + 1.0) < 0.3
    assert img[..., 3].max() <= round(255 * 0.6) and img[0, 0, 3] == 0  # capped alpha, empty far away


class _FakeRun:
    def __init__(self):
        self.version, self.frame = 0, {"state": "running", "xy": np.zeros((4, 2), np.float32),
                                       "paths": np.zeros((1, 4, 2), np.float32),
                                       "spectrum": (np.arange(1, 3.0), np.ones(2)), "nfe": 0, "step": 0}

    finished = False

    def latest(self):
        return self.version, self.frame

    def cancel(self):
        pass

    def new_frame(self):
        self.version += 1
        self.frame = dict(self.frame, step=self.version, xy=np.full((4, 2), self.version, np.float32))


def test_next_frame_waits_for_the_browser_to_paint_the_previous_one():
    d = Dashboard({"particles": "10"}, periodic=False, autostart=False)
    d._backpressure = True
    run = d.runs["a"] = _FakeRun()
    from widgets.app import MAX_IN_FLIGHT

    assert MAX_IN_FLIGHT == 2
    run.new_frame()
    d.tick()
    run.new_frame()
    d.tick()
    assert d._seen["a"] == 2 and d._in_flight["a"] == 2
    run.new_frame()
    run.new_frame()
    d.tick()
    assert d._seen["a"] == 2                                            # two in flight: not pushed
    d._on_ack("tags", [0, 0], [1, 0])                                   # one painted: the newest frame goes at once
    assert d._seen["a"] == 4 and float(d.point_src["a"].data["x"][0]) == 4.0 and d._in_flight["a"] == 2
    run.new_frame()
    d._pushed_at["a"] -= 10                                             # no acknowledgement for too long
    d.tick()
    assert d._seen["a"] == 5
    d.runs["a"] = None
    d.close()


def test_theme_setting():
    cfg, msgs = parse_query({"theme": "dark"})
    assert cfg.theme == "dark" and not msgs and config_to_query(cfg)["theme"] == "dark"
    assert "theme" not in config_to_query(parse_query({})[0])
    cfg, msgs = parse_query({"theme": "<b>x</b>"})
    assert cfg.theme == "default" and any("theme" in m and "default, dark" in m for m in msgs), msgs
    d = Dashboard({"theme": "dark"}, periodic=False, autostart=False)
    assert d.theme == "dark" and d.fig["a"].background_fill_color != "#ffffff"
    assert d.read_config().theme == "dark"
    d.close()

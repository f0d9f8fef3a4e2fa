"""Dashboard fixes of issue 17 without a server: every solver runs to done, refused control values get a message
next to their control, a model is built once per key at a time, one session's slow model build never holds up
another session's run, and an idle dashboard stops its periodic callback."""
from __future__ import annotations

import html
import threading
import time

import pytest

pn = pytest.importorskip("panel")

from workbench.errors import WorkbenchError  # noqa: E402
from workbench.solvers import SOLVERS  # noqa: E402
from widgets import app  # noqa: E402
from widgets.app import Dashboard  # noqa: E402
from widgets.live import LiveRun  # noqa: E402
from widgets.state import DashboardConfig  # noqa: E402


@pytest.mark.parametrize("name", SOLVERS.names())
def test_every_registered_solver_runs_to_done(name):
    adaptive = SOLVERS.cls(name).adaptive
    cfg = DashboardConfig(solver=name, nfe=120 if adaptive else 12, particles=64,
                          eps=0.5 if "eps" in SOLVERS.parameters(name) else 0.0)
    run = LiveRun.from_config(cfg).start()
    assert run.join(60)
    frame = run.latest()[1]
    assert frame["state"] == "done", frame.get("message")
    assert 0 < frame["nfe"] <= cfg.nfe


def _hint(d: Dashboard, key: str) -> str:
    return html.unescape(d.hints[key].object) if d.hints[key].visible else ""


@pytest.mark.parametrize("key, value, text", [
    ("nfe", 500, "[1, 200]"),
    ("particles", 0, "[1, 10000]"),
    ("particles", None, "enter an integer"),     # an empty box
    ("t_start", 1.0, "below t_end"),
    ("seed", -3, "seed"),
])
def test_refused_control_value_is_shown_next_to_the_control(key, value, text):
    d = Dashboard({"solver": "euler", "nfe": "4", "particles": "50"}, periodic=False, debounce=0.0)
    d.w[key].value = value
    d.tick()
    assert text in _hint(d, key), _hint(d, key)
    assert d.runs["a"] is None and d.alert.visible                # nothing ran
    assert all(not _hint(d, k) for k in d.hints if k != key)
    d.close()


def test_refused_data_parameter_is_shown_next_to_it():
    d = Dashboard({"data": "gmm_nd", "particles": "50"}, periodic=False, debounce=0.0, autostart=False)
    d.param_widgets["data"]["dim"].value = 100_000
    d.tick()
    assert "256" in _hint(d, "data.dim") and d.runs["a"] is None
    d.param_widgets["data"]["dim"].value = 3               # fixing it clears the message and runs
    d.tick()
    assert not _hint(d, "data.dim") and d.runs["a"] is not None
    d.runs["a"].join(30)
    d.close()


class _SlowBuild:
    """Stand-in for the vorticity generator's training: counts trainings and overlapping builds. A build lasts
    until :meth:`release` (or ``seconds``); every call ends in an error, so nothing real is ever trained."""

    def __init__(self, seconds: float):
        self.seconds, self.trained, self.active, self.max_active = seconds, set(), 0, 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def release(self) -> None:
        self.done.set()

    def install(self, monkeypatch):
        import torch

        from workbench.fields.problem import VorticityProblem

        build = self

        def generator(problem):
            key = problem.grid
            with build.lock:
                fresh = key not in build.trained
                if fresh:
                    build.active += 1
                    build.max_active = max(build.max_active, build.active)
            if fresh:
                build.done.wait(build.seconds)
                with build.lock:
                    build.trained.add(key)
                    build.active -= 1
            raise WorkbenchError("stand-in generator (test)")

        monkeypatch.setattr(VorticityProblem, "generator", generator)
        monkeypatch.setattr(VorticityProblem, "snapshots", lambda self: torch.zeros(8, self.grid, self.grid))
        return self


def close_and_release(dashboards, build: _SlowBuild) -> None:
    """Close the sessions (their waiting jobs give up), then end the stand-in build; wait for their threads."""
    for d in dashboards:
        d.close()
    build.release()
    for d in dashboards:
        for run in d.runs.values():
            if run is not None:
                run.join(10)
    time.sleep(0.2)  # the session executors' jobs see the closed flag and end


def test_one_model_build_per_key_at_a_time(monkeypatch):
    build = _SlowBuild(0.5).install(monkeypatch)
    run = LiveRun.from_config(DashboardConfig(data="vorticity", data_params={"grid": 16}, interpolant="linear",
                                              particles=4, nfe=4)).start()
    assert run.join(30)
    assert run.latest()[1]["state"] == "failed" and "stand-in" in run.latest()[1]["message"]
    assert build.max_active == 1 and build.trained == {16}   # the target job and the stream: trained once


def test_a_slow_model_build_never_blocks_another_session(monkeypatch):
    build = _SlowBuild(30.0).install(monkeypatch)
    slow = Dashboard({"data": "vorticity", "data.grid": "32", "particles": "4", "nfe": "4"}, periodic=False,
                     debounce=0.0)
    fast = Dashboard({"data": "gmm2d", "solver": "heun", "nfe": "8", "particles": "200", "seed": "5"},
                     periodic=False, debounce=0.0)
    slow.tick()
    while slow.runs["a"].latest()[1]["state"] == "starting":
        time.sleep(0.01)
    fast.tick()
    deadline = time.monotonic() + 30
    while not fast.runs["a"].finished and time.monotonic() < deadline:
        fast.tick()
        time.sleep(0.02)
    assert fast.runs["a"].latest()[1]["state"] == "done"
    assert not slow.runs["a"].finished and build.active >= 1   # the other session is still building its model
    close_and_release([slow, fast], build)


def test_idle_dashboard_stops_its_periodic_callback(monkeypatch):
    class FakeCallback:
        def __init__(self):
            self.running, self.starts = True, 1

        def start(self):
            self.running, self.starts = True, self.starts + 1

        def stop(self):
            self.running = False

        def set_period(self, period_ms):
            self.period = period_ms

    fake = FakeCallback()
    monkeypatch.setattr(app.Ticker, "create", staticmethod(lambda fn, period: fake))
    d = Dashboard({"solver": "euler", "nfe": "4", "particles": "50"}, periodic=True, debounce=0.0)
    assert d._callback is fake and fake.running
    for _ in range(3000):
        d.tick()
        if not fake.running:
            break
        time.sleep(0.01)
    assert not fake.running and "done" in d.status["a"].object    # stopped once the run was drawn
    d.w["nfe"].value = 6                                         # a control change wakes it up again
    assert fake.running and fake.starts == 2
    d.close()


def test_field_frames_show_images_field_spectrum_title_and_a_sensible_range():
    import numpy as np

    from widgets.app import spectrum_range

    d = Dashboard({"particles": "50"}, periodic=False, autostart=False)
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(2, 16, 16)).astype(np.float32)
    k = np.arange(1, 9, dtype=float)
    e_ref = 10.0 ** (-2.5 * np.arange(8))                     # falls to 1e-17.5: must not set the axis
    frame = {"state": "running", "is_field": True, "xy": np.zeros((4, 2), np.float32),
             "paths": np.zeros((1, 4, 2), np.float32), "spectrum": (k, e_ref), "box": 3.0,
             "images": {"start": imgs, "mid": None, "final": imgs}, "target_images": imgs * 2,
             "target_xy": None, "target_spectrum": (k, e_ref)}
    d.draw("a", None, frame)
    assert d.img_pane["a"].visible and not d.pane["a"].visible
    assert "fields" in d.spec_fig.title.text
    labels = d.img_src["a"].data["label"]
    assert len(labels) == 6 and {lb.split(",")[0] for lb in labels} == {"start", "final", "reference"}
    lo, hi = spectrum_range(e_ref)
    assert (d.spec_fig.y_range.start, d.spec_fig.y_range.end) == (lo, hi)
    assert lo == e_ref.max() * 1e-8 / 2 and hi == 3 * e_ref.max()
    d.close()


def test_spectral_error_closed_forms():
    import numpy as np

    from widgets.live import spectral_error

    k = np.arange(1, 6, dtype=float)
    e = np.array([1.0, 0.5, 0.25, 1e-3, 1e-20])
    assert spectral_error((k, e), (k, e)) == 0.0
    assert abs(spectral_error((k, 2 * e), (k, e)) - 1.0) < 1e-12        # twice the energy in every shell
    half = e.copy()
    half[0] *= 1.5                                                   # one of the 4 resolved shells off by 50 %
    assert abs(spectral_error((k, half), (k, e)) - (0.25 / 4) ** 0.5) < 1e-12


def test_changing_the_data_set_clears_the_old_plots():
    d = Dashboard({"solver": "euler", "nfe": "4", "particles": "50"}, periodic=False, debounce=0.0)
    d.tick()
    d.runs["a"].join(30)
    d.tick()
    assert len(d.point_src["a"].data["x"]) == 50 and len(d.target_src.data["x"]) > 0
    d._building = True                      # change the control without its watcher, then start by hand
    d.w["data"].value = "gaussian"
    d._build_params("data", {})
    d._building = False
    d.start_runs()
    assert len(d.point_src["a"].data["x"]) == 0 and len(d.target_src.data["x"]) == 0
    assert len(d.spec_src["target"].data["k"]) == 0
    d.runs["a"].join(30)
    d.close()


def test_served_ticker_changes_its_period_by_replacing_the_document_callback():
    class FakeDoc:
        def __init__(self):
            self.live = []

        def add_periodic_callback(self, fn, period):
            self.live.append((fn, period))
            return self.live[-1]

        def remove_periodic_callback(self, handle):
            self.live.remove(handle)

    doc, fn = FakeDoc(), (lambda: None)
    t = app.Ticker(fn, 25, doc=doc)
    assert t.running and doc.live == [(fn, 25)]
    t.set_period(200)                                            # quiet: one slower callback, not two
    assert doc.live == [(fn, 200)] and t.period == 200
    t.set_period(200)
    assert doc.live == [(fn, 200)]
    t.stop()
    t.stop()                                                     # twice is harmless
    assert not t.running and doc.live == []
    t.set_period(25)                                             # stopped: remembered, not started
    assert doc.live == [] and t.period == 25
    t.start()
    assert doc.live == [(fn, 25)]

"""The JupyterLab front: the dashboard's controls as ipywidgets over the same state, runs and rendering.

One line in a notebook cell::

    from widgets import jupyter_dashboard; jupyter_dashboard(solver="heun", nfe=20)

Controls come from the registries (:func:`widgets.state.param_specs`), runs are the same cancellable
:class:`~widgets.live.LiveRun` threads, and a small pump thread redraws a PNG (matplotlib, :mod:`widgets.render`)
at most :data:`FPS` times a second while the sampler streams. Changing any control cancels the running sample.
"""
from __future__ import annotations

import html
import threading
import time
from dataclasses import fields
from typing import Any, Dict, Optional

import ipywidgets as W

from widgets.live import LiveRun, format_status, launch_runs
from widgets.render import render_png
from widgets.state import (EPS_RANGE, FAMILIES, NFE_RANGE, PARTICLES_RANGE, SEED_RANGE, DashboardConfig,
                           config_to_query, convert_param, param_specs, parse_query)

#: redraws per second of the live image (matplotlib is the limit here).
FPS = 4.0
DEBOUNCE_S = 0.2


def _param_widget(spec, value):
    desc = spec.name
    if spec.kind == "bool":
        return W.Checkbox(value=bool(value), description=desc)
    if spec.kind == "int":
        return W.IntText(value=int(value), description=desc)
    if spec.kind == "float":
        return W.FloatText(value=float(value), description=desc)
    return W.Text(value="" if value is None else str(value), description=desc)


class JupyterDashboard:
    """The ipywidgets dashboard; ``.widget`` is the ``VBox`` (the object also displays itself).

    Args:
        **config: fields of :class:`~widgets.state.DashboardConfig` (validated like URL parameters).
    """

    def __init__(self, **config: Any):
        known = {f.name for f in fields(DashboardConfig)}
        unknown = sorted(set(config) - known)
        base = DashboardConfig()
        query = {k: v for k, v in config_to_query(base).items()}
        msgs = [f"{k}: unknown setting; valid settings are: {', '.join(sorted(known))}" for k in unknown]
        for k, v in config.items():
            if k in known and not k.endswith("_params"):
                query[k] = str(int(v)) if isinstance(v, bool) else str(v)
            elif k.endswith("_params") and isinstance(v, dict):
                fam = k[: -len("_params")]
                query.update({f"{fam}.{pk}": str(pv) for pk, pv in v.items()})
        cfg, more = parse_query(query)
        self.messages = msgs + more
        self.runs: Dict[str, Optional[LiveRun]] = {"a": None, "b": None}
        self.run_messages: Dict[str, Optional[str]] = {"a": None, "b": None}
        self._lock = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self._pump: Optional[threading.Thread] = None
        self._building = True
        self._make(cfg)
        self._building = False
        self.config = cfg
        self._show_messages()
        self.start_runs()

    # -- controls ------------------------------------------------------------------------------------------
    def _make(self, cfg: DashboardConfig) -> None:
        c = self.controls = {
            "data": W.Dropdown(options=FAMILIES["data"].names(), value=cfg.data, description="data"),
            "interpolant": W.Dropdown(options=FAMILIES["interpolant"].names(), value=cfg.interpolant,
                                      description="interpolant"),
            "schedule": W.Dropdown(options=FAMILIES["schedule"].names(), value=cfg.schedule, description="schedule"),
            "solver": W.Dropdown(options=FAMILIES["solver"].names(), value=cfg.solver, description="solver"),
            "nfe": W.IntSlider(value=cfg.nfe, min=NFE_RANGE[0], max=NFE_RANGE[1], description="NFE",
                               continuous_update=False),
            "eps": W.FloatSlider(value=min(cfg.eps, 5.0), min=EPS_RANGE[0], max=5.0, step=0.05, description="ε (SDE)",
                                 continuous_update=False),
            "seed": W.BoundedIntText(value=cfg.seed, min=SEED_RANGE[0], max=SEED_RANGE[1], description="seed"),
            "particles": W.BoundedIntText(value=cfg.particles, min=PARTICLES_RANGE[0], max=PARTICLES_RANGE[1],
                                          description="particles"),
            "compare": W.Checkbox(value=cfg.compare, description="compare with B (same noise)"),
            "solver_b": W.Dropdown(options=FAMILIES["solver"].names(), value=cfg.solver_b, description="solver B"),
            "schedule_b": W.Dropdown(options=FAMILIES["schedule"].names(), value=cfg.schedule_b,
                                     description="schedule B"),
            "nfe_b": W.IntSlider(value=cfg.nfe_b, min=NFE_RANGE[0], max=NFE_RANGE[1], description="NFE B",
                                 continuous_update=False),
        }
        self.param_boxes = {fam: W.VBox() for fam in FAMILIES}
        self.param_widgets: Dict[str, Dict[str, Any]] = {}
        for fam in FAMILIES:
            self._build_params(fam, getattr(cfg, f"{fam}_params"))
        for w in c.values():
            w.observe(self._on_change, names="value")
        run, stop = W.Button(description="Run"), W.Button(description="Stop")
        run.on_click(lambda _: self.start_runs())
        stop.on_click(lambda _: self.cancel())
        self.status = W.HTML()
        self.alert = W.HTML()
        self.image = W.Image(format="png")
        left = W.VBox([c["data"], self.param_boxes["data"], c["interpolant"], self.param_boxes["interpolant"],
                       c["schedule"], self.param_boxes["schedule"], c["solver"], self.param_boxes["solver"], c["nfe"],
                       c["eps"], c["seed"], c["particles"], c["compare"], c["solver_b"], c["schedule_b"], c["nfe_b"],
                       W.HBox([run, stop])])
        self.widget = W.HBox([left, W.VBox([self.alert, self.status, self.image])])

    def _build_params(self, fam: str, values: Dict[str, Any]) -> None:
        ws = {}
        for spec in param_specs(fam, self.controls[fam].value):
            w = _param_widget(spec, values.get(spec.name, spec.default))
            w.observe(self._on_change, names="value")
            ws[spec.name] = w
        self.param_widgets[fam] = ws
        self.param_boxes[fam].children = list(ws.values())

    def read_config(self) -> DashboardConfig:
        """The configuration the controls show (bad parameter values raise :class:`ConfigError`)."""
        params = {}
        for fam in FAMILIES:
            specs = {s.name: s for s in param_specs(fam, self.controls[fam].value)}
            params[f"{fam}_params"] = {
                k: v for k, v in ((k, convert_param(specs[k], w.value, f"{fam}.{k}"))
                                  for k, w in self.param_widgets[fam].items() if k in specs) if v != specs[k].default}
        c = self.controls
        return DashboardConfig(data=c["data"].value, interpolant=c["interpolant"].value, schedule=c["schedule"].value,
                               solver=c["solver"].value, nfe=c["nfe"].value, eps=c["eps"].value, seed=c["seed"].value,
                               particles=c["particles"].value, compare=c["compare"].value,
                               solver_b=c["solver_b"].value, schedule_b=c["schedule_b"].value, nfe_b=c["nfe_b"].value,
                               **params)

    def _on_change(self, change) -> None:
        if self._building:
            return
        for fam in FAMILIES:
            if change["owner"] is self.controls[fam]:
                self._building = True
                try:
                    self._build_params(fam, {})
                finally:
                    self._building = False
        self.messages = []
        self.cancel()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(DEBOUNCE_S, self.start_runs)
        self._timer.daemon = True
        self._timer.start()

    # -- runs ----------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel the running samples."""
        for r in self.runs.values():
            if r is not None:
                r.cancel()

    def start_runs(self) -> None:
        """Start a run per side for the current controls (messages for bad combinations)."""
        with self._lock:
            self.cancel()
            cfg, self.runs, self.run_messages = launch_runs(self.read_config)
            self._show_messages()
            if cfg is None:
                return
            self.config = cfg
            if self._pump is None or not self._pump.is_alive():
                self._pump = threading.Thread(target=self._pump_loop, daemon=True, name="workbench-jupyter-pump")
                self._pump.start()

    def _show_messages(self) -> None:
        msgs = list(self.messages) + [m for m in self.run_messages.values() if m]
        self.alert.value = "".join(f"<div style='color:#a00'>⚠ {html.escape(m)}</div>" for m in msgs)

    def _pump_loop(self) -> None:
        seen: Dict[str, int] = {}
        idle = 0
        while idle < 3:
            time.sleep(1.0 / FPS)
            runs = {s: r for s, r in self.runs.items() if r is not None}
            latest = {s: r.latest() for s, r in runs.items()}
            if all(seen.get(s) == v for s, (v, _) in latest.items()):
                idle += 1 if all(r.finished for r in runs.values()) else 0
                continue
            idle = 0
            seen = {s: v for s, (v, _) in latest.items()}
            frames = {s: f for s, (_, f) in latest.items()}
            self.draw(frames)

    def draw(self, frames: Dict[str, Dict[str, Any]]) -> None:
        """Render ``frames`` into the image and the status lines."""
        lines = []
        for s, f in frames.items():
            c = self.config.panel(s)
            lines.append(html.escape(format_status(f, s.upper(), c.solver, c.schedule).replace("*", "").replace("`", "")))
            if f.get("state") == "failed" and f.get("message"):
                self.run_messages[s] = f["message"]
                self._show_messages()
        self.status.value = "<br>".join(lines)
        if frames:
            self.image.value = render_png(self.config, frames, dpi=80)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the current runs end and their last frame is drawn (tests, scripts)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self._timer is not None and self._timer.is_alive():
                time.sleep(0.05)
                continue
            runs = [r for r in self.runs.values() if r is not None]
            if all(r.finished for r in runs) and (self._pump is None or not self._pump.is_alive()):
                return True
            time.sleep(0.05)
        return False

    def _ipython_display_(self):  # pragma: no cover - notebook only
        from IPython.display import display

        display(self.widget)


def dashboard(**config: Any) -> JupyterDashboard:
    """Build and return the JupyterLab dashboard (display it by leaving it as a cell's last expression)."""
    return JupyterDashboard(**config)

"""The Panel dashboard: controls built from the registries, live particle/path, spectrum and error-vs-NFE views.

Serve it with ``workbench serve`` or ``panel serve widgets/app.py``; in Python, ``create_app()`` returns the
layout; in a notebook, :func:`notebook_app` (resources inline, no CDN). One :class:`Dashboard` per browser
session (Panel runs this module once per session), holding its own runs, periodic callback, worker threads
(:class:`~widgets.live.SessionExecutor`) and history, so two tabs never see or wait for each other's runs.
Sampling runs in :class:`~widgets.live.LiveRun` threads; a 50 ms periodic callback copies the newest frame into
Bokeh ``ColumnDataSource`` s (direct CDS updates: about twice the redraw rate of a HoloViews ``Pipe`` on 2 cores).
The callback runs only while something is pending or running (an idle page or notebook costs no CPU) and is
stopped when the session is destroyed.

Every text that can carry user input (URL messages, run errors, status lines) is shown HTML-escaped in an
HTML pane, never rendered as Markdown or HTML. A rejected control value is reported next to that control and
no run starts.
"""
from __future__ import annotations

import html
import io
import json
import math
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, List, Optional
import weakref
from urllib.parse import urlencode

import numpy as np
import panel as pn
import param
from panel.io.document import hold
from panel.io.state import set_curdoc
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from widgets.live import LiveRun, SessionExecutor, format_status, launch_runs
from widgets.params import URL_KEYS, DashboardForm, DashboardState, entry_url_keys, first_error
from widgets.state import FAMILIES, DashboardConfig, config_to_query, parse_query, solver_traits

COLORS = {"a": "#d62728", "b": "#1f77b4"}
#: ms between redraw checks while something runs. Frames are also pushed as soon as the browser reports it has
#: painted the previous one (see ACK_JS), so this mostly bounds the latency of the first frame and of timeouts.
PERIOD_MS = 25
#: the periodic callback's period while the runs publish nothing new (building a model, waiting for a shared
#: reference) for :data:`QUIET_AFTER_S`: 20 sessions ticking at 25 ms kept the server's event loop busy enough to
#: starve the reference computations of the GIL (a 20-session load test took 230 s instead of 30 s).
WAIT_PERIOD_MS = 200
QUIET_AFTER_S = 0.5
#: a pushed particle frame is "in flight" until the browser acknowledges that it painted it; the next frame of that
#: side waits for the acknowledgement (latest-wins: frames produced meanwhile are skipped), or at most this long.
ACK_TIMEOUT_S = 0.5
#: particle frames a side may have in flight (pushed, not yet acknowledged as painted): 2 overlaps the round trip
#: of one acknowledgement with the transfer and paint of the next frame.
MAX_IN_FLIGHT = 2
#: Runs in the browser on every change of a particle source: after the next paint (requestAnimationFrame, then a
#: task) it bumps ``ack.tags[i]``, which Bokeh syncs back to the server (:meth:`Dashboard._on_ack`).
ACK_JS = """
const n = (cb_obj._wb_n || 0) + 1; cb_obj._wb_n = n;
requestAnimationFrame(() => setTimeout(() => { const t = ack.tags.slice(); t[i] = n; ack.tags = t; }, 0));
"""
#: Back/forward navigation (installed on the served page by :func:`enable_history_navigation`): on ``popstate``
#: the new address is given to Panel's Location model silently (its view would otherwise push it as a new history
#: entry, erasing the forward entries) and reported to the server as a client address change, where it goes
#: through the same checks as any address (:meth:`Dashboard._url_changed`).
NAV_JS = """
if (window.__wb_nav) { return; }
window.__wb_nav = true;
window.addEventListener("popstate", () => {
  const search = window.location.search;
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    for (const m of doc._all_models.values()) {
      if (!String(m.type).endsWith("Location") || !m.properties.search || m.search === search) { continue; }
      const old = m.search;
      m.setv({search}, {silent: true});
      m._push_changes([[m.properties.search, old, search]], true);
    }
  }
});
"""
#: seconds a control must be quiet before a new run starts (the running one is cancelled at once).
DEBOUNCE_S = 0.2
#: seconds between spectrum/status updates while a run streams (particles and paths go every frame).
SLOW_PERIOD_S = 0.25


_UNSET = object()


@contextmanager
def _hold(doc: Any):
    """Hold ``doc``'s change events and send them as one batch at the end (one message per tick).

    In a server session, Panel's :func:`~panel.io.document.hold`. Elsewhere (the notebook front: a jupyter_bokeh
    widget's document, which has no session), Bokeh's own ``Document.hold``: Panel's drops the held model changes
    of a document that never "connected" to a session (Panel 1.9), so the notebook showed no frames at all.

    There, ``doc`` is also made Panel's current document for the duration: Panel keeps one stylesheet model per
    document and reuses it only when it knows the document. Without it, every status-text update sent new
    stylesheet models, and each made the page restyle and lay out the whole dashboard again (in JupyterLab's large
    page that cost about 0.25 s per frame: the notebook front painted 3-4 frames/s)."""
    if doc is None or doc.session_context is not None:
        with hold(doc):
            yield
        return
    if doc.callbacks.hold_value is not None:  # already held by an outer caller: it dispatches
        yield
        return
    with set_curdoc(doc):
        doc.hold("combine")
        try:
            yield
        finally:
            doc.unhold()


class Ticker:
    """A session's periodic callback that can change its period from inside its own call.

    Served (a session document): the document's own periodic callback, replaced by remove + add when the period
    changes — Panel's ``PeriodicCallback`` restarts itself through next-tick callbacks when its period is set
    from inside a callback, which was measured to stall a 20-session server. Elsewhere (a notebook kernel, no
    session): Panel's ``pn.state.add_periodic_callback`` at a fixed period (:meth:`set_period` does nothing).
    """

    def __init__(self, fn: Callable[[], None], period_ms: int, doc: Any = None, panel_cb: Any = None):
        self.fn, self.period, self.doc, self._panel = fn, int(period_ms), doc, panel_cb
        self._handle: Any = None
        self.start()

    @classmethod
    def create(cls, fn: Callable[[], None], period_ms: int) -> "Ticker":
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            return cls(fn, period_ms, doc=doc)
        cb = pn.state.add_periodic_callback(fn, period=period_ms)
        cb.log = False  # Panel logs every call otherwise (a stack walk per tick)
        return cls(fn, period_ms, panel_cb=cb)

    @property
    def running(self) -> bool:
        return bool(self._panel.running) if self._panel is not None else self._handle is not None

    def start(self) -> None:
        if self._panel is not None:
            if not self._panel.running:
                self._panel.start()
        elif self._handle is None:
            self._handle = self.doc.add_periodic_callback(self.fn, self.period)

    def stop(self) -> None:
        if self._panel is not None:
            self._panel.stop()
        elif self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                self.doc.remove_periodic_callback(handle)
            except ValueError:  # already removed with the session
                pass

    def set_period(self, period_ms: int) -> None:
        if self._panel is not None or int(period_ms) == self.period:
            return
        self.period = int(period_ms)
        if self._handle is not None:
            self.stop()
            self.start()


#: heights of the particle/field views and of the spectrum/error plots (widths follow the window).
FIG_HEIGHT = 370
SMALL_HEIGHT = 290
SIDEBAR_MAX = 290
#: metric key → (title, y label) of the error-vs-NFE plots: one axis per metric, rows of the current data set.
METRICS = {
    "error": ("L2 error vs exact flow", "mean L2 error vs exact flow (ODE)"),
    "sw2": ("SW2 to exact samples", "sliced W2 to exact target samples"),
    "spectral_error": ("spectral error", "relative spectral error (fields)"),
}
#: colours of the series (solver/schedule/interpolant/side) in the error plots.
SERIES_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f")


def _page_theme() -> str:
    """Panel's page theme of this session (it reads ``?theme=`` itself): ``"dark"`` or ``"default"``."""
    try:
        return "dark" if pn.config.theme == "dark" else "default"
    except Exception:
        return "default"


def dataset_key(cfg: DashboardConfig) -> str:
    """What the error-vs-NFE plots are kept apart by: the data set and its parameters."""
    return json.dumps([cfg.data, cfg.data_params], sort_keys=True, default=str)


def apply_dark(fig) -> None:
    """Bokeh's ``dark_minimal`` theme applied to ``fig`` and every model under it (axes, grids, legend, title),
    as Panel does for its own Bokeh panes (a themed value never overrides one set explicitly)."""
    from bokeh.themes import built_in_themes

    theme = built_in_themes["dark_minimal"]
    for model in fig.references():
        theme.apply_to_model(model)


def spectrum_range(e: np.ndarray, decades: float = 8.0) -> "tuple[float, float]":
    """A log y-range for a spectrum: from ``max E · 10^-decades`` (or the smallest positive value, if larger)
    to ``3 max E`` -- a tail falling to round-off (1e-19) does not squash the axis."""
    pos = np.asarray(e, dtype=float)
    pos = pos[np.isfinite(pos) & (pos > 0)]
    if pos.size == 0:
        return 1e-8, 1.0
    top = float(pos.max())
    return max(float(pos.min()), top * 10.0 ** -decades) / 2, 3 * top


def _image_tiles(images: Dict[str, Any], target: Optional[np.ndarray]) -> Dict[str, list]:
    """Image-glyph columns: one tile per (sample row, column start/mid/final/reference), unit-spaced."""
    cols = [("start", images.get("start")), ("mid-run", images.get("mid")), ("final", images.get("final")),
            ("reference", target)]
    out: Dict[str, list] = {"image": [], "x": [], "y": [], "dw": [], "dh": [], "label": []}
    for c, (label, imgs) in enumerate(cols):
        if imgs is None:
            continue
        for r, img in enumerate(np.asarray(imgs)[:2]):
            out["image"].append(np.asarray(img, dtype=np.float32))
            out["x"].append(c * 1.05)
            out["y"].append(-r * 1.05)
            out["dw"].append(1.0)
            out["dh"].append(1.0)
            out["label"].append(f"{label}, sample {r}")
    return out


def _EMPTY_PATHS() -> Dict[str, np.ndarray]:
    return {k: np.zeros(0, dtype=np.float32) for k in ("x", "y")}


def _nan_separated(paths: np.ndarray) -> Dict[str, np.ndarray]:
    """``(T, P, 2)`` paths as one polyline with NaN breaks: path p is points ``p·(T+1) … p·(T+1)+T-1``, then a NaN.

    One line glyph is one canvas stroke per frame; a segment glyph strokes every segment (48 paths × 200 steps
    painted at 11 frames/s where the line paints at 27, measured in headless chromium)."""
    T, P, _ = paths.shape
    out = np.full((P, T + 1, 2), np.nan, dtype=np.float32)
    out[:, :T] = paths.transpose(1, 0, 2)
    flat = out.reshape(-1, 2)
    return {"x": flat[:, 0].copy(), "y": flat[:, 1].copy()}


#: pixels per side of the exact-target density image.
DENSITY_PIXELS = 128
_EMPTY_DENSITY = {"image": [], "x": [], "y": [], "dw": [], "dh": []}


def _density_image(xy: np.ndarray, box: float, pixels: int = DENSITY_PIXELS) -> Dict[str, list]:
    r"""The exact target samples ``(N, 2)`` as one grey RGBA image over :math:`[-b, b]^2`: a 2-D histogram smoothed
    by a Gaussian of one pixel, alpha :math:`= 0.6\,\sqrt{c/c_{99\%}}` (clipped to 0.6).

    One image is one ``drawImage`` per frame; 2 000 target markers repaint with every particle frame (the whole
    canvas is redrawn) and cost as much as the particles themselves."""
    from scipy.ndimage import gaussian_filter

    xy = xy[np.isfinite(xy).all(axis=1)]
    h, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=pixels, range=[[-box, box], [-box, box]])  # rows = y
    h = gaussian_filter(h, 1.0)
    top = float(np.quantile(h[h > 0], 0.99)) if (h > 0).any() else 1.0
    alpha = np.clip(0.6 * np.sqrt(h / top), 0.0, 0.6)
    rgba = np.empty((pixels, pixels, 4), dtype=np.uint8)
    rgba[..., :3] = 0xAA
    rgba[..., 3] = np.round(255 * alpha).astype(np.uint8)
    return {"image": [rgba.view(np.uint32).reshape(pixels, pixels)], "x": [-box], "y": [-box],
            "dw": [2 * box], "dh": [2 * box]}


#: Panel >= 1.8 calls a widget's caption ``label`` (``name`` is deprecated); older versions use ``name``.
_LABEL = "label" if "label" in pn.widgets.Select.param else "name"


#: every Dashboard of this process (weak): lets tests check that destroyed sessions stop their callbacks.
DASHBOARDS: "weakref.WeakSet[Dashboard]" = weakref.WeakSet()


def _lbl(text: str) -> Dict[str, str]:
    return {_LABEL: text}


def _color(cls: type, value: str) -> Dict[str, str]:
    """A button's colour: ``color`` where Panel has it (``button_type`` is deprecated there), else ``button_type``."""
    return {"color" if "color" in cls.param else "button_type": value}


def escaped(text: str, tag: str = "p", style: str = "") -> str:
    """``text`` as the HTML of one element with the text escaped (user input is never markup)."""
    st = f' style="{style}"' if style else ""
    return f"<{tag}{st}>{html.escape(str(text))}</{tag}>"


_ALERT_STYLE = ("margin:0;padding:6px 10px;border-radius:4px;background:#f8d7da;color:#721c24;"
                "border:1px solid #f5c6cb;white-space:pre-wrap")
_HINT_STYLE = "margin:0 0 4px 0;color:#b00020;font-size:12px;white-space:pre-wrap"


#: the top-level controls (parameters of the form, labelled in :class:`~widgets.params.DashboardState`).
CONTROLS = ("data", "interpolant", "schedule", "solver", "nfe", "eps", "seed", "particles", "t_start", "t_end",
            "compare", "solver_b", "schedule_b", "nfe_b")
#: widget kinds that differ from Panel's default for a parameter (NFE: a slider with a typed-in box).
WIDGETS = {"nfe": pn.widgets.EditableIntSlider, "nfe_b": pn.widgets.EditableIntSlider,
           "eps": pn.widgets.FloatSlider}


def control(owner, pname: str, **kw: Any):
    """The widget of parameter ``pname`` of ``owner`` (a :mod:`widgets.params` object), linked to it with
    ``Widget.from_param``: selectors become dropdowns, booleans checkboxes, NFE an editable slider, ε a slider
    that reports on release (``value_throttled``), other numbers typed-in boxes, text (and JSON) text boxes.
    Typed-in boxes get no client-side bounds (the caps are soft bounds): a value out of range reaches the
    server, stays as typed, and is refused with a message next to the control instead of being clamped."""
    p = owner.param[pname]
    kw.setdefault("sizing_mode", "stretch_width")
    cls = WIDGETS.get(pname) if isinstance(owner, DashboardState) else None
    if cls is pn.widgets.FloatSlider:
        kw["throttled"] = True
    elif cls is None:
        if isinstance(p, param.Boolean):
            cls = pn.widgets.Checkbox
        elif isinstance(p, param.Selector):
            cls = pn.widgets.Select
        elif isinstance(p, param.Number):
            cls = pn.widgets.IntInput if isinstance(p, param.Integer) else pn.widgets.FloatInput
            kw.update(start=None, end=None)
        else:
            cls = pn.widgets.TextInput
            spec = getattr(owner, "specs", {}).get(pname)
            if spec is not None and spec.kind == "json":
                kw["placeholder"] = "e.g. [0, 0.25, 0.5, 1]"
    return cls.from_param(p, **kw)


class Dashboard:
    """One session's dashboard.

    Args:
        query: URL query parameters (validated by :func:`~widgets.state.parse_query`); default: the session's.
        periodic: start the periodic redraw callback (False in unit tests, which call :meth:`tick`).
        autostart: start a run for the initial configuration.
        debounce: seconds of quiet before a changed configuration runs.
    """

    def __init__(self, query: Optional[Dict[str, Any]] = None, periodic: bool = True, autostart: bool = True,
                 debounce: float = DEBOUNCE_S):
        cfg, self.url_messages = parse_query(query)
        self.debounce = debounce
        self.executor = SessionExecutor()
        self._periodic = periodic
        self.control_errors: Dict[str, str] = {}
        self.runs: Dict[str, Optional[LiveRun]] = {"a": None, "b": None}
        self.run_messages: Dict[str, Optional[str]] = {"a": None, "b": None}
        self._seen: Dict[str, int] = {"a": -1, "b": -1}
        #: the runs' frame versions at the last tick, and when one last changed (see WAIT_PERIOD_MS)
        self._observed: Dict[str, Any] = {}
        self._active_at = time.monotonic()
        self._slow_at: Dict[str, float] = {}
        self._last_state: Dict[str, Any] = {}
        self._recorded: Dict[str, bool] = {"a": True, "b": True}
        self._pending: Optional[float] = None
        self._building = True
        self._writing = False
        self._location = None
        self._synced_entries: Dict[str, Any] = {}
        self.history: List[Dict[str, Any]] = []
        self.redraws = 0
        #: backpressure (a browser acknowledges painted frames) only with a live page; unit tests draw every tick
        self._backpressure = periodic
        self._in_flight: Dict[str, int] = {"a": 0, "b": 0}
        self._pushed_at: Dict[str, float] = {"a": 0.0, "b": 0.0}
        self.acks = 0
        self._series_colors: Dict[str, str] = {}
        self.theme = cfg.theme if cfg.theme != "default" else _page_theme()
        self._make_controls(cfg)
        self._make_views()
        self.layout = self._make_layout()
        self._building = False
        self.config = cfg
        self._callback = None
        self.closed = False
        DASHBOARDS.add(self)
        if periodic:
            try:
                pn.state.on_session_destroyed(self.close)
                # a URL set before the page has loaded is lost: sync it (the validated one) once it has
                pn.state.onload(self._sync_location)
                pn.state.onload(self._resend_views)
            except Exception:  # not in a server session
                pass
        self._refresh_alert()
        if autostart:
            self.request_run(0.0)

    # ---------------------------------------------------------------------------------------------- controls
    def _make_controls(self, cfg: DashboardConfig) -> None:
        """The controls, generated from the param objects of :mod:`widgets.params`: the form
        (:class:`~widgets.params.DashboardForm`) holds what the controls show (each control is linked to its
        parameter with ``Widget.from_param``); :attr:`state` (:class:`~widgets.params.DashboardState`, hard bounds)
        holds the last configuration that passed the checks and ran."""
        self.form = DashboardForm.from_config(cfg)
        self.state = DashboardState.from_config(cfg)
        f = self.form
        self.w = {key: control(f, key, css_classes=[f"w-{key.replace('_', '-')}"]) for key in CONTROLS}
        #: the message of a rejected value, shown right under its control (escaped text).
        self.hints: Dict[str, Any] = {k: pn.pane.HTML("", visible=False, css_classes=[f"hint-{k.replace('_', '-')}"],
                                                      margin=(0, 10)) for k in self.w}
        self.param_boxes = {fam: pn.Column(margin=(0, 0, 0, 15)) for fam in FAMILIES}
        self.param_widgets: Dict[str, Dict[str, Any]] = {fam: {} for fam in FAMILIES}
        for fam in FAMILIES:
            self._build_params(fam, {})
        self.traits = pn.pane.HTML(escaped(solver_traits(cfg.solver, cfg.solver_params)), css_classes=["solver-traits"],
                                   margin=(0, 10))
        self.b_box = pn.Column(self.w["solver_b"], self.w["schedule_b"], self.w["nfe_b"], self.hints["nfe_b"],
                               visible=f.param.compare)
        self.run_button = pn.widgets.Button(**_lbl("Run"), **_color(pn.widgets.Button, "primary"),
                                            css_classes=["w-run"], width=90)
        self.stop_button = pn.widgets.Button(**_lbl("Stop"), **_color(pn.widgets.Button, "warning"),
                                             css_classes=["w-stop"], width=90)
        self.run_button.on_click(lambda e: self.request_run(0.0))
        self.stop_button.on_click(lambda e: self.cancel())
        self.png_download = pn.widgets.FileDownload(callback=self.export_png, filename="workbench.png",
                                                    label="Export PNG", embed=False,
                                                    **_color(pn.widgets.FileDownload, "light"), css_classes=["w-png"])
        self.json_download = pn.widgets.FileDownload(callback=self.export_json, filename="workbench-config.json",
                                                     label="Export config JSON", embed=False,
                                                     **_color(pn.widgets.FileDownload, "light"), css_classes=["w-json"])
        self.share = pn.pane.HTML("", css_classes=["share-link"])
        # one watcher on the form for every control (a change cancels the running sample and schedules a run);
        # a new registry entry gets a new sub-object (DashboardForm's param.depends) and so new controls
        f.param.watch(self._on_control, list(CONTROLS))
        f.param.watch(self._on_entry, [f"{fam}_params" for fam in FAMILIES])
        f.param.watch(self._show_traits, ["solver", "solver_params"])
        self._update_enabled()
        f.param.watch(lambda *_: self._update_enabled(), ["solver"])

    def _build_params(self, fam: str, values: Dict[str, Any]) -> None:
        """The controls of family ``fam``'s sub-object (its parameters from the entry's signature), each with
        its hint pane; ``values`` (DashboardConfig-style) are set first."""
        entry = self.form.entry(fam)
        if values:
            entry.set_values(values)
        widgets = {}
        objects = []
        for pname in entry.names():
            key = f"{fam}.{pname}"
            pw = control(entry, pname, css_classes=[f"p-{fam}-{pname}"])
            widgets[pname] = pw
            self.hints[key] = pn.pane.HTML("", visible=False, css_classes=[f"hint-{fam}-{pname}"], margin=(0, 10))
            objects += [pw, self.hints[key]]
        # the parameters of the entry: one watcher on its sub-object
        entry.param.watch(self._on_control, entry.names()) if entry.names() else None
        if fam == "solver" and entry.names():
            entry.param.watch(self._show_traits, entry.names())
        self.param_widgets[fam] = widgets
        self.param_boxes[fam].objects = objects

    def _on_entry(self, event) -> None:
        """Another registry entry was chosen: controls for its new sub-object."""
        if not self._building:
            self._build_params(event.name[: -len("_params")], {})

    def _show_traits(self, *_: Any) -> None:
        params, _errors = self.form.entry("solver").check()
        self.traits.object = escaped(solver_traits(self.form.solver, params))

    def _update_enabled(self) -> None:
        from workbench.solvers import SOLVERS

        solver = self.form.solver
        takes_eps = "eps" in SOLVERS.parameters(solver)
        self.w["eps"].disabled = not takes_eps
        setattr(self.w["eps"], _LABEL, self.form.param.eps.label if takes_eps else  # the label says why it is off
                f"ε: not used by {solver}")

    def check_controls(self) -> "tuple[Optional[DashboardConfig], Dict[str, str]]":
        """The configuration the controls show, or ``(None, {control: message})`` for every refused value
        (nothing is clamped: NFE 500, particles 0 or an empty box are refused with the allowed range); see
        :meth:`widgets.params.DashboardState.check`."""
        return self.form.check(theme=self.theme)

    def read_config(self) -> DashboardConfig:
        """The configuration the controls show; a refused value raises :class:`ConfigError` (the first one)."""
        cfg, errors = self.check_controls()
        if cfg is None:
            raise first_error(errors)
        return cfg

    def _show_hints(self, errors: Dict[str, str]) -> None:
        self.control_errors = dict(errors)
        for key, pane in self.hints.items():
            msg = errors.get(key)
            pane.object = escaped(f"⚠ {msg}", style=_HINT_STYLE) if msg else ""
            pane.visible = bool(msg)

    def _on_control(self, *events) -> None:
        """Any control changed (the form's or a sub-object's parameters): cancel and schedule a run."""
        if self._building:
            return
        self.url_messages = []
        self.cancel()
        self.request_run(self.debounce)

    # ---------------------------------------------------------------------------------------------- views
    def _particle_figure(self, side: str):
        fig = figure(height=FIG_HEIGHT, sizing_mode="stretch_width", match_aspect=True,
                     tools="pan,wheel_zoom,box_zoom,reset,save",
                     title=f"{side.upper()}: particles and paths", x_range=(-4, 4), y_range=(-4, 4),
                     x_axis_label="x[0] (first coordinate)", y_axis_label="x[1] (second coordinate)")
        fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=self.target_src,
                       legend_label="exact target (density)")
        fig.line("x", "y", source=self.path_src[side], color=COLORS[side], alpha=0.35, line_width=1)
        pts = fig.scatter("x", "y", source=self.point_src[side], size=2.5, color=COLORS[side], alpha=0.6,
                          legend_label="particles")
        fig.add_tools(HoverTool(renderers=[pts], tooltips=[("x[0]", "@x{0.000}"), ("x[1]", "@y{0.000}")]))
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        fig.toolbar.logo = None
        return fig

    def _image_figure(self, side: str):
        """Sample images for field problems: rows = the first samples, columns = start, mid-run, current
        (final when done) and exact/reference samples; hover gives the value."""
        fig = figure(height=FIG_HEIGHT, sizing_mode="stretch_width", match_aspect=True, tools="pan,wheel_zoom,reset,save",
                     title=f"{side.upper()}: sample fields (start · mid-run · final · reference)",
                     x_axis_label="column: start, mid-run, final, reference", y_axis_label="sample")
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.img_src[side],
                  color_mapper=self.img_mapper)
        fig.add_tools(HoverTool(tooltips=[("panel", "@label"), ("value", "@image{0.000}")]))
        fig.xaxis.major_label_text_font_size = "0pt"
        fig.yaxis.major_label_text_font_size = "0pt"
        fig.toolbar.logo = None
        return fig

    def _make_views(self) -> None:
        from bokeh.models import LinearColorMapper

        self.img_mapper = LinearColorMapper(palette="Viridis256", low=-3, high=3)
        self.img_src = {s: ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": [], "label": []})
                        for s in "ab"}
        self.img_fig = {s: self._image_figure(s) for s in "ab"}
        empty_pts = {"x": np.zeros(0), "y": np.zeros(0)}
        #: the exact target samples as one density image (:func:`_density_image`)
        self.target_src = ColumnDataSource(dict(_EMPTY_DENSITY))
        self.point_src = {s: ColumnDataSource(dict(empty_pts), name=f"points_{s}") for s in "ab"}
        #: paths as one NaN-separated polyline per side (:func:`_nan_separated`), replaced by each frame
        self.path_src = {s: ColumnDataSource(_EMPTY_PATHS()) for s in "ab"}
        from bokeh.models import CustomJS

        self.ack_src = ColumnDataSource({"n": []}, name="wb_ack", tags=[0, 0])
        for i, s in enumerate("ab"):
            self.point_src[s].js_on_change("data", CustomJS(args={"ack": self.ack_src, "i": i}, code=ACK_JS))
        self.ack_src.on_change("tags", self._on_ack)
        self.spec_src = {s: ColumnDataSource({"k": [], "E": []}) for s in ("a", "b", "target")}
        #: one source per metric of the error-vs-NFE plots (rows of the current data set only; see _show_history)
        self.hist_src = {m: ColumnDataSource({"nfe": [], "value": [], "label": [], "color": [], "series": []},
                                             name=f"hist_{m}") for m in METRICS}
        self.fig = {s: self._particle_figure(s) for s in "ab"}
        from bokeh.models import Range1d

        sf = figure(height=SMALL_HEIGHT, sizing_mode="stretch_width", x_axis_type="log", y_axis_type="log",
                    tools="pan,wheel_zoom,reset,save", title="spectrum of the particle density",
                    x_axis_label="k", y_axis_label="E(k)", y_range=Range1d(1e-8, 1.0))
        sf.line("k", "E", source=self.spec_src["target"], color="#777777", line_dash="dashed", legend_label="exact")
        for s in "ab":
            sf.line("k", "E", source=self.spec_src[s], color=COLORS[s], line_width=2, legend_label=s.upper())
        sf.legend.location = "bottom_left"
        sf.toolbar.logo = None
        self.spec_fig = sf
        self.metric_fig = {}
        for m, (title, ylabel) in METRICS.items():
            ef = figure(height=SMALL_HEIGHT, sizing_mode="stretch_width", x_axis_type="log", y_axis_type="log",
                        tools="pan,wheel_zoom,reset,save", title=title, x_axis_label="NFE used", y_axis_label=ylabel,
                        name=f"metric_{m}")
            ef.line("nfe", "value", source=self.hist_src[m], color="#999999", alpha=0.0)  # keeps the axes alive
            ef.scatter("nfe", "value", source=self.hist_src[m], color="color", size=8, alpha=0.85,
                       legend_field="series")
            ef.add_tools(HoverTool(tooltips=[("run", "@label"), ("NFE", "@nfe"), (ylabel, "@value{0.000e}")]))
            ef.legend.location = "bottom_left"
            ef.legend.label_text_font_size = "7pt"
            ef.toolbar.logo = None
            self.metric_fig[m] = ef
        self.err_fig = self.metric_fig["error"]
        self.status = {s: pn.pane.HTML("", css_classes=[f"status-{s}"], margin=(0, 10)) for s in "ab"}
        self.alert = pn.pane.HTML("", visible=False, css_classes=["error-msg"], sizing_mode="stretch_width")
        #: every Bokeh pane: responsive, and in the dark theme Bokeh's dark_minimal (Panel applies a pane's theme to
        #: its figure when it renders it, over the figure's own themed values)
        self._bk = {"sizing_mode": "stretch_width", **({"theme": "dark_minimal"} if self.theme == "dark" else {})}
        self.pane = {s: pn.pane.Bokeh(self.fig[s], **self._bk) for s in "ab"}
        self.img_pane = {s: pn.pane.Bokeh(self.img_fig[s], visible=False, **self._bk) for s in "ab"}
        # a Bokeh pane's own `visible` does not hide its figure: each sits in a Column that is shown or hidden
        self._pane_box = {s: pn.Column(self.pane[s], sizing_mode="stretch_width", margin=0) for s in "ab"}
        self._img_box = {s: pn.Column(self.img_pane[s], visible=False, sizing_mode="stretch_width", margin=0)
                         for s in "ab"}
        self.metric_pane = {m: pn.Column(pn.pane.Bokeh(f, **self._bk), sizing_mode="stretch_width",
                                         margin=0, visible=m != "spectral_error") for m, f in self.metric_fig.items()}
        if self.theme == "dark":
            for f in [*self.fig.values(), *self.img_fig.values(), self.spec_fig, *self.metric_fig.values()]:
                apply_dark(f)

    def _make_layout(self):
        """Responsive: a header (title, Run/Stop, exports, link) over a sidebar of controls and the views; nothing
        has a fixed width, so compare mode fits 1280 × 800 with both panels and the buttons visible."""
        w = self.w
        header = pn.Row(
            pn.pane.HTML("<b style='font-size:18px'>Interpolant Workbench</b>", margin=(12, 10, 5, 10)),
            self.run_button, self.stop_button, self.png_download, self.json_download, self.share,
            sizing_mode="stretch_width", css_classes=["wb-header"],
        )
        side = pn.Column(
            w["data"], self.param_boxes["data"], w["interpolant"], self.param_boxes["interpolant"],
            w["schedule"], self.param_boxes["schedule"], w["solver"], self.traits, self.param_boxes["solver"],
            w["nfe"], self.hints["nfe"], w["eps"], self.hints["eps"], w["seed"], self.hints["seed"],
            w["particles"], self.hints["particles"], pn.Row(w["t_start"], w["t_end"], sizing_mode="stretch_width"),
            self.hints["t_start"], self.hints["t_end"], w["compare"], self.b_box,
            sizing_mode="stretch_width", min_width=220, max_width=SIDEBAR_MAX, css_classes=["wb-sidebar"],
        )
        self.a_column = pn.Column(self.status["a"], self._pane_box["a"], self._img_box["a"],
                                  sizing_mode="stretch_width", min_width=300, css_classes=["panel-a"])
        self.b_column = pn.Column(self.status["b"], self._pane_box["b"], self._img_box["b"],
                                  visible=bool(w["compare"].value), sizing_mode="stretch_width", min_width=300,
                                  css_classes=["panel-b"])
        main = pn.Column(
            self.alert,
            pn.Row(self.a_column, self.b_column, sizing_mode="stretch_width"),
            pn.Row(pn.Column(pn.pane.Bokeh(self.spec_fig, **self._bk), sizing_mode="stretch_width",
                             margin=0), *self.metric_pane.values(), sizing_mode="stretch_width"),
            sizing_mode="stretch_width", min_width=620,
        )
        return pn.Column(header, pn.Row(side, main, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    # ---------------------------------------------------------------------------------------------- running
    def request_run(self, delay: float = 0.0) -> None:
        """Start a run for the current controls after ``delay`` seconds of quiet (checked by :meth:`tick`)."""
        self._pending = time.monotonic() + delay
        self._ensure_callback()

    def _ensure_callback(self) -> None:
        """Run the periodic callback (only while something is pending or running; see :meth:`tick`)."""
        if not self._periodic or self.closed:
            return
        if self._callback is None:
            try:
                self._callback = Ticker.create(self.tick, PERIOD_MS)
            except Exception:  # no document (plain Python): tests call tick() themselves
                self._callback = None
        else:
            self._callback.set_period(PERIOD_MS)
            if not self._callback.running:
                self._callback.start()
        self._active_at = time.monotonic()

    @property
    def idle(self) -> bool:
        """Nothing pending, every run finished and its last frame drawn (the periodic callback may rest)."""
        if self._pending is not None:
            return False
        for s, run in self.runs.items():
            if run is not None and (not run.finished or self._seen[s] != run.latest()[0] or not self._recorded[s]):
                return False
        return True

    def cancel(self) -> None:
        """Cancel every running sample of this session (returns at once)."""
        for run in self.runs.values():
            if run is not None:
                run.cancel()

    def start_runs(self) -> None:
        """Validate the controls and start one run per side (a refused control value gets its message next to
        the control and no run starts; bad combinations get one readable line)."""
        self.cancel()
        cfg, errors = self.check_controls()
        self._show_hints(errors)
        if cfg is None:
            self.runs = {"a": None, "b": None}
            self.run_messages = {"a": "not run: a control value was refused (see the message next to it)",
                                 "b": None}
            self._refresh_alert()
            return
        cfg, self.runs, self.run_messages = launch_runs(lambda: cfg, self.executor)
        if cfg is not None:
            self.config = cfg
            self._writing = True  # the state (and through it the address) follows what runs
            try:
                self.state.set_config(cfg)
                self._resync_entries()
            finally:
                self._writing = False
            self._sync_url(cfg)
            self.b_column.visible = cfg.compare
            for s, run in self.runs.items():
                if run is not None:
                    self._recorded[s] = False
                    self._seen[s] = -1
            if cfg.data != getattr(self, "_shown_data", cfg.data) or cfg.data_params != getattr(
                    self, "_shown_data_params", cfg.data_params):  # another data set: no stale plots
                self._clear_views()
            if dataset_key(cfg) != getattr(self, "_hist_dataset", None):  # error plots: this data set's runs only
                self._show_history(dataset_key(cfg), cfg.data)
            self._shown_data, self._shown_data_params = cfg.data, dict(cfg.data_params)
        self._refresh_alert()

    def _sync_url(self, cfg: DashboardConfig) -> None:
        """The share link of ``cfg`` (escaped; the address itself follows :attr:`state`, see
        :meth:`_sync_location`)."""
        query = urlencode(config_to_query(cfg))
        self.share.object = f'<a href="?{html.escape(query, quote=True)}">link to this configuration</a>'

    def _clear_views(self) -> None:
        """Empty the particle, path, image, spectrum and exact-target sources (the target is drawn again by the
        next frame that carries it)."""
        for s in "ab":
            self.point_src[s].data = {"x": np.zeros(0), "y": np.zeros(0)}
            self.path_src[s].data = _EMPTY_PATHS()
            self.img_src[s].data = {k: [] for k in self.img_src[s].data}
        for src in self.spec_src.values():
            src.data = {"k": [], "E": []}
        self.target_src.data = dict(_EMPTY_DENSITY)
        self._target_shown = _UNSET

    def _resend_views(self) -> None:
        """Once the page has loaded: send the plots' sources again. Changes to plain Bokeh sources made before the
        page loaded never reach it, and the first run often finishes before (checked in chromium: the particles
        stayed at the start state and the error-vs-NFE plots empty although the status said done). Emptied first,
        so that setting the same values again is a change; the next tick redraws the newest frames."""
        if self.closed:
            return
        self._clear_views()
        self._seen = {s: -1 for s in "ab"}
        for src in self.hist_src.values():
            src.data = {k: [] for k in src.data}
        if getattr(self, "_hist_dataset", None) is not None:
            self._show_history(self._hist_dataset, self.config.data)
        self._ensure_callback()

    def _sync_location(self, loc=None) -> None:
        """Once the page has loaded: the address shows the validated configuration (keys outside the allow-list
        and refused values are dropped), then follows :attr:`state` through ``pn.state.location.sync`` with the
        allow-list :data:`~widgets.params.URL_KEYS` (and ``family.parameter`` for the sub-objects). A later
        address change from outside goes through the state's bounds and selectors (:meth:`_url_changed`)."""
        if loc is None:
            doc = pn.state.curdoc
            if doc is None or doc.session_context is None:  # a notebook or plain Python: no address to sync
                return
            loc = pn.state.location
        if loc is None or self.closed:
            return
        self._location = loc
        self._writing = True
        try:
            with _hold(pn.state.curdoc):  # the address's several writes reach the page as one (one history entry)
                loc.search = "?" + urlencode(config_to_query(self.config))
                loc.sync(self.state, URL_KEYS)
                self._resync_entries()
        finally:
            self._writing = False
        loc.param.watch(self._url_changed, "search")

    def _resync_entries(self, address: Optional[Dict[str, str]] = None) -> None:
        """The address carries the parameters of the state's current sub-objects (a replaced one is unsynced).
        Runs once the state has been written as a whole (then the address agrees with its top-level values);
        after an address change, ``address`` (its query) gives a new sub-object its values."""
        loc = self._location
        if loc is None:
            return
        for fam in FAMILIES:
            entry, old = self.state.entry(fam), self._synced_entries.get(fam)
            if entry is old:
                continue
            if old is not None and old.names():
                loc.unsync(old)
            self._synced_entries[fam] = entry
            if entry.names():
                keys = entry_url_keys(entry)
                loc.sync(entry, keys)
                given = {q: address[q] for q in keys.values() if address and q in address}
                if given:
                    loc.update_query(**given)  # read through the sub-object's bounds (refused: kept as is)

    def _url_changed(self, event) -> None:
        """The address changed from outside (back/forward in the browser, reported by :data:`NAV_JS`, or code
        setting ``location.search``):
        ``pn.state.location`` has set the state through its bounds and selectors (a refused value changes
        nothing); refused values are reported (:func:`~widgets.state.parse_query`'s messages, escaped) and the
        address shows the state again; accepted ones move the controls and run. Our own writes are skipped."""
        from urllib.parse import parse_qsl

        if self._writing or self.closed:
            return
        address = dict(parse_qsl(str(event.new or "").lstrip("?"), keep_blank_values=True))
        self._writing = True
        try:
            self._resync_entries(address)
        finally:
            self._writing = False
        _, self.url_messages = parse_query(address, base=self.config)
        self._refresh_alert()
        cfg, _errors = self.state.check(theme=self.theme)
        cfg = cfg or self.config
        if self.url_messages:
            self._writing = True
            try:
                self._location.search = "?" + urlencode(config_to_query(cfg))
            finally:
                self._writing = False
        if cfg == self.config:
            return
        self._building = True
        try:
            self.form.set_config(cfg)
            for fam in FAMILIES:
                self._build_params(fam, {})
        finally:
            self._building = False
        self._update_enabled()
        self._show_traits()
        self.request_run(self.debounce)

    def _refresh_alert(self) -> None:
        msgs = list(self.url_messages) + [m for m in self.run_messages.values() if m]
        self.alert.object = escaped("\n".join(f"⚠ {m}" for m in msgs), tag="div", style=_ALERT_STYLE) if msgs else ""
        self.alert.visible = bool(msgs)

    def tick(self) -> None:
        """The periodic callback: start a pending run, copy the newest frames into the plots, and rest (stop
        the callback) once everything is idle."""
        now = time.monotonic()
        with _hold(self.ack_src.document):  # one websocket message per tick, not one per changed property
            if self._pending is not None and now >= self._pending:
                self._pending = None
                self.start_runs()
            for s in "ab":
                self._draw_latest(s)
        versions = {s: (id(r), r.latest()[0]) for s, r in self.runs.items() if r is not None}
        if self._pending is not None or versions != self._observed:
            self._observed, self._active_at = versions, now
        cb = self._callback
        if cb is None:
            return
        if self.idle and cb.running:
            cb.stop()
            return
        cb.set_period(PERIOD_MS if now - self._active_at < QUIET_AFTER_S else WAIT_PERIOD_MS)

    def _draw_latest(self, s: str) -> None:
        """Draw side ``s``'s newest frame unless it is already shown or the previous one is still in flight (not
        yet painted by the browser: :data:`MAX_IN_FLIGHT` of them, the last pushed less than :data:`ACK_TIMEOUT_S`
        ago)."""
        run = self.runs.get(s)
        if run is None or self.closed:
            return
        version, frame = run.latest()
        if version == self._seen[s]:
            return
        if self._in_flight[s] >= MAX_IN_FLIGHT:
            if time.monotonic() - self._pushed_at[s] < ACK_TIMEOUT_S:
                return
            self._in_flight[s] = 0  # an acknowledgement was lost (or the page is gone): push anyway
        self._seen[s] = version
        self.draw(s, run, frame)

    def _on_ack(self, attr: str, old: Any, new: Any) -> None:
        """The browser painted a particle frame (``ack.tags[i]`` changed): push that side's newest frame now."""
        self.acks += 1
        old = list(old or [])
        with _hold(self.ack_src.document):
            for i, s in enumerate("ab"):
                if i < len(new) and (i >= len(old) or new[i] != old[i]):
                    painted = int(new[i]) - (int(old[i]) if i < len(old) else 0)
                    self._in_flight[s] = max(0, self._in_flight[s] - max(painted, 1))
                    self._draw_latest(s)

    def draw(self, side: str, run: LiveRun, frame: Dict[str, Any]) -> None:
        """Push one frame of ``side`` into its sources (runs on the server's event loop; cheap).

        Browser cost is what limits the redraw rate, so each frame sends as few, as large binary buffers as
        possible: the particles (2 float32 arrays), the paths as one NaN-separated line (2 arrays, not one
        array per path), and, at most 4 times a second while running, the spectrum and the status text
        (a text change re-lays out the page)."""
        now = time.monotonic()
        state = frame.get("state")
        final = state in ("done", "failed", "cancelled", "scoring")
        slow_due = final or now - self._slow_at.get(side, 0.0) >= SLOW_PERIOD_S or state != self._last_state.get(side)
        xy = frame.get("xy")
        if xy is not None:
            self.point_src[side].data = {"x": np.ascontiguousarray(xy[:, 0]), "y": np.ascontiguousarray(xy[:, 1])}
            self.path_src[side].data = _nan_separated(frame["paths"])
            if self._backpressure:
                self._in_flight[side] += 1
                self._pushed_at[side] = now
            if slow_due:
                k, e = frame["spectrum"]
                self.spec_src[side].data = {"k": k, "E": e}
            self.redraws += 1
        if frame.get("is_field") is not None and self.img_pane[side].visible != bool(frame["is_field"]):
            f = bool(frame["is_field"])
            self.img_pane[side].visible = self._img_box[side].visible = f
            self.pane[side].visible = self._pane_box[side].visible = not f
            self.metric_pane["spectral_error"].visible = f
            self.spec_fig.title.text = ("energy spectrum of the fields" if frame["is_field"] else
                                        "spectrum of the particle density")
        if frame.get("images") is not None and (slow_due or final):
            self.img_src[side].data = _image_tiles(frame["images"], frame.get("target_images"))
        if "target_xy" in frame and frame["target_xy"] is not getattr(self, "_target_shown", _UNSET):
            self._target_shown = frame["target_xy"]
            t, box = frame["target_xy"], frame.get("box", 4.0)
            self.target_src.data = _density_image(t, box) if t is not None and len(t) else dict(_EMPTY_DENSITY)
            if frame.get("target_spectrum") is not None:
                k, e = frame["target_spectrum"]
                self.spec_src["target"].data = {"k": k, "E": e}
                self.spec_fig.y_range.start, self.spec_fig.y_range.end = spectrum_range(e)
            ti = frame.get("target_images")
            if ti is not None and np.isfinite(ti).all() and ti.size:
                lim = float(np.quantile(np.abs(ti), 0.995)) or 1.0
                self.img_mapper.low, self.img_mapper.high = -lim, lim
            for f in self.fig.values():
                f.x_range.start, f.x_range.end, f.y_range.start, f.y_range.end = -box, box, -box, box
        cfg = self.config.panel(side)
        if slow_due:
            self._slow_at[side] = now
            self._last_state[side] = state
            self.status[side].object = escaped(format_status(frame, side.upper(), cfg.solver, cfg.schedule))
        if frame.get("state") in ("failed", "cancelled"):
            self._recorded[side] = True
            if frame.get("message"):
                self.run_messages[side] = frame["message"]
                self._refresh_alert()
        if frame.get("state") == "done" and not self._recorded[side]:
            self._recorded[side] = True
            self.record(side, frame, cfg)

    def record(self, side: str, frame: Dict[str, Any], cfg: DashboardConfig) -> None:
        """Add a finished run to the history: one point per metric it has (error vs the exact flow, SW2, spectral
        error), each on its own axis, labelled by its series (side, solver, schedule, interpolant) and kept
        with its data set (the plots show only the current data set's runs)."""
        series = f"{side.upper()} {cfg.solver}/{cfg.schedule}/{cfg.interpolant}"
        color = self._series_colors.setdefault(series, SERIES_COLORS[len(self._series_colors) % len(SERIES_COLORS)])
        row = {"nfe": frame["nfe"], "side": side, "series": series, "color": color, "dataset": dataset_key(cfg),
               "data": cfg.data, "label": f"{series} · {cfg.data}"}
        for m in METRICS:
            v = frame.get(m)
            row[m] = float(v) if v is not None and math.isfinite(v) and v > 0 else None
        if all(row[m] is None for m in METRICS):
            return
        row["value"], row["metric"] = ((row["error"], "error") if row["error"] is not None else (row["sw2"], "SW2"))
        self.history.append(row)
        self._show_history(row["dataset"], cfg.data)

    def _show_history(self, dataset: str, data: str) -> None:
        """Fill the error-vs-NFE plots with the history of data set ``dataset`` only."""
        self._hist_dataset = dataset
        rows = [r for r in self.history if r["dataset"] == dataset][-500:]
        for m, (title, _) in METRICS.items():
            keep = [r for r in rows if r[m] is not None]
            self.hist_src[m].data = {"nfe": [r["nfe"] for r in keep], "value": [r[m] for r in keep],
                                     "label": [r["label"] for r in keep], "color": [r["color"] for r in keep],
                                     "series": [r["series"] for r in keep]}
            self.metric_fig[m].title.text = f"{title} · {data}"

    def close(self, *_: Any) -> None:
        """Stop the periodic callback and cancel runs (called when the session is destroyed)."""
        self.closed = True
        self.cancel()
        self.executor.close()
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:
                pass
            self._callback = None

    # ---------------------------------------------------------------------------------------------- export
    def export_json(self) -> io.BytesIO:
        """The configuration (and the last results) as JSON."""
        out = {"config": json.loads(self.config.to_json()), "query": config_to_query(self.config), "results": {}}
        for s, run in self.runs.items():
            if run is not None:
                f = run.latest()[1]
                out["results"][s] = {k: f.get(k) for k in ("state", "nfe", "nfe_budget", "step", "error", "sw2", "wall")}
        return io.BytesIO(json.dumps(out, indent=2, default=str).encode())

    def export_png(self) -> io.BytesIO:
        """The current figure (particles, paths, spectrum) rendered with matplotlib as PNG."""
        from widgets.render import render_png

        frames = {s: run.latest()[1] for s, run in self.runs.items() if run is not None}
        return io.BytesIO(render_png(self.config, frames))


def create_app(query: Optional[Dict[str, Any]] = None, **kwargs: Any):
    """Build the dashboard for the current session; returns the servable layout (``.dashboard`` is attached)."""
    if query is None:
        try:
            query = dict(pn.state.session_args or {})
        except Exception:
            query = {}
    dash = Dashboard(query, **kwargs)
    layout = dash.layout
    layout.dashboard = dash  # type: ignore[attr-defined]
    return layout


#: the notebook front's root stylesheet (see :func:`notebook_app`)
NOTEBOOK_CONTAINMENT = ":host { contain: content; }"


def notebook_app(**query: Any):
    """The same Panel dashboard for a notebook cell, with Bokeh/Panel resources inline (works offline, no CDN);
    ``query`` takes URL-style settings (``notebook_app(solver="rk4", nfe="12")``), validated the same way."""
    pn.extension(inline=True)
    pn.config.inline = True
    layout = create_app({k: str(v) for k, v in query.items()})
    # CSS containment: a redraw's layout and paint stay inside the dashboard instead of invalidating the
    # notebook's whole page (JupyterLab's DOM is large; 7.4-7.6 -> 9.1-9.5 painted frames/s, benchmarks/results)
    layout.stylesheets = list(layout.stylesheets) + [NOTEBOOK_CONTAINMENT]
    return layout


def dark_bokeh_theme():
    """Panel's own dark Bokeh theme (dark_minimal with Panel's dark plot colours), else Bokeh's dark_minimal."""
    try:
        from panel.theme.base import DarkTheme

        return DarkTheme.param.bokeh_theme.default
    except Exception:  # pragma: no cover - other Panel versions
        from bokeh.themes import built_in_themes

        return built_in_themes["dark_minimal"]


def enable_history_navigation(doc=None) -> None:
    """Let the browser's back and forward buttons move the served dashboard between the addresses it showed
    (:data:`NAV_JS`, run once the document is ready; Panel 1.9.4's Location does not report them)."""
    from bokeh.models import CustomJS

    doc = doc or pn.state.curdoc
    if doc is not None:
        doc.js_on_event("document_ready", CustomJS(code=NAV_JS))


def apply_document_theme(layout, doc=None) -> None:
    """Give the session's document the dark Bokeh theme when the dashboard is dark. Panel sets the document's
    theme when it renders a servable and that resets every model's themed values, so this runs after
    ``.servable()`` (before the document is sent to the browser)."""
    doc = doc or pn.state.curdoc
    if doc is not None and getattr(layout, "dashboard", None) is not None and layout.dashboard.theme == "dark":
        doc.theme = dark_bokeh_theme()


if __name__.startswith("bokeh"):  # `panel serve widgets/app.py`
    pn.extension(notifications=False)
    _app = create_app()
    _app.servable(title="Interpolant Workbench")
    apply_document_theme(_app)
    enable_history_navigation()

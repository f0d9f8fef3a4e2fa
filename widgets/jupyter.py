"""The JupyterLab front: the same Panel app as ``panel serve`` (:class:`widgets.app.Dashboard`), in a notebook cell.

One line in a notebook cell::

    from widgets import jupyter_dashboard; jupyter_dashboard(solver="heun", nfe=20)

It is not a second UI: the controls, views, checks and messages are the served dashboard's, rendered with
Bokeh/Panel resources inline (offline, no CDN) and, when ``jupyter_bokeh`` is installed, as an ipywidget
(:mod:`widgets.ipywidget`: one Bokeh patch per kernel event-loop turn), else as Panel's own notebook output.
Settings are validated like URL parameters (:func:`widgets.state.parse_query`); an unknown setting is a message,
never an error. Runs are the same cancellable :class:`~widgets.live.LiveRun` threads, drawn by the dashboard's
periodic callback on the kernel's event loop.
"""
from __future__ import annotations

import time
from dataclasses import fields
from typing import Any, Dict, List, Tuple

from widgets.state import DashboardConfig

__all__ = ["NotebookDashboard", "JupyterDashboard", "dashboard", "settings_query"]


def settings_query(config: Dict[str, Any]) -> Tuple[Dict[str, str], List[str]]:
    """Keyword settings (fields of :class:`~widgets.state.DashboardConfig`; ``*_params`` as dicts) as URL-style
    query strings, plus a message per unknown setting."""
    known = {f.name for f in fields(DashboardConfig)}
    msgs = [f"{k}: unknown setting; valid settings are: {', '.join(sorted(known))}"
            for k in sorted(set(config) - known)]
    query: Dict[str, str] = {}
    for k, v in config.items():
        if k not in known:
            continue
        if k.endswith("_params"):
            if isinstance(v, dict):
                fam = k[: -len("_params")]
                query.update({f"{fam}.{pk}": str(pv) for pk, pv in v.items()})
            else:
                msgs.append(f"{k}: expected a dict of parameters, got {type(v).__name__}")
        else:
            query[k] = str(int(v)) if isinstance(v, bool) else str(v)
    return query, msgs


class NotebookDashboard:
    """The Panel dashboard in a notebook; displays itself (leave it as a cell's last expression).

    Attributes:
        layout: the Panel layout (what ``panel serve`` shows).
        dashboard: its :class:`widgets.app.Dashboard` (controls ``.w``, status panes, runs, exports).

    Args:
        **config: fields of :class:`~widgets.state.DashboardConfig` (validated like URL parameters).
    """

    def __init__(self, **config: Any):
        from widgets.app import notebook_app

        query, msgs = settings_query(config)
        self.layout = notebook_app(**query)
        self.dashboard = self.layout.dashboard
        if msgs:
            self.dashboard.url_messages = msgs + list(self.dashboard.url_messages)
            self.dashboard._refresh_alert()

    def ipywidget(self):
        """The layout as an ipywidget (:func:`widgets.ipywidget.ipywidget`: jupyter_bokeh's widget, one patch
        message per event-loop turn; needs ``jupyter_bokeh``)."""
        from widgets.ipywidget import ipywidget

        return ipywidget(self.layout)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the current runs end and their last frame is drawn (tests, scripts). Blocking the kernel
        also blocks its periodic callback, so this draws the frames itself (:meth:`Dashboard.tick`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.dashboard.tick()
            if self.dashboard.idle:
                return True
            time.sleep(0.02)
        return False

    def _ipython_display_(self):  # pragma: no cover - notebook only
        from IPython.display import display

        try:
            import jupyter_bokeh  # noqa: F401
        except ImportError:
            display(self.layout)
        else:
            display(self.ipywidget())


#: the earlier name of the notebook front.
JupyterDashboard = NotebookDashboard


def dashboard(**config: Any) -> NotebookDashboard:
    """The Panel dashboard for a notebook cell (see :class:`NotebookDashboard`)."""
    return NotebookDashboard(**config)

"""Static rendering of the dashboard's current state (the 'Export PNG' button and the Jupyter front's live image).

Matplotlib's object API with the Agg canvas is used (no pyplot state), so several sessions can render at once.
"""
from __future__ import annotations

import io
from typing import Any, Dict, Optional

from widgets.state import DashboardConfig

COLORS = {"a": "#d62728", "b": "#1f77b4"}


def render_png(cfg: DashboardConfig, frames: Dict[str, Dict[str, Any]], dpi: int = 90,
               width: Optional[float] = None) -> bytes:
    """PNG bytes: one particle/path panel per side (``frames["a"]``, ``frames["b"]``) and the spectrum.

    Args:
        cfg: the configuration (titles).
        frames: side → frame dict of :class:`~widgets.live.LiveRun` (missing keys are skipped).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from widgets.live import format_status

    sides = [s for s in ("a", "b") if s in frames] or ["a"]
    n = len(sides) + 1
    fig = Figure(figsize=(width or 4.2 * n, 4.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n)
    for ax, s in zip(axes, sides):
        f = frames.get(s, {})
        c = cfg.panel(s)
        box = f.get("box", 4.0)
        t = f.get("target_xy")
        if t is not None:
            ax.scatter(t[:, 0], t[:, 1], s=2, color="#bbbbbb", alpha=0.5, label="exact target")
        paths = f.get("paths")
        if paths is not None:
            ax.plot(paths[:, :, 0], paths[:, :, 1], color=COLORS[s], alpha=0.35, lw=0.7)
        xy = f.get("xy")
        if xy is not None:
            ax.scatter(xy[:, 0], xy[:, 1], s=2, color=COLORS[s], alpha=0.6, label="particles")
        ax.set_xlim(-box, box)
        ax.set_ylim(-box, box)
        ax.set_aspect("equal")
        ax.set_title(format_status(f, s.upper(), c.solver, c.schedule).replace("*", "").replace("`", "")[:90],
                     fontsize=6.5)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=6)
    ax = axes[-1]
    for s in sides:
        spec = frames.get(s, {}).get("spectrum")
        if spec is not None:
            ax.loglog(spec[0], spec[1], color=COLORS[s], lw=2, label=s.upper())
    ts = next((frames[s].get("target_spectrum") for s in sides if s in frames and frames[s].get("target_spectrum")
               is not None), None)
    if ts is not None:
        ax.loglog(ts[0], ts[1], "--", color="#777777", label="exact")
    ax.set_title(f"density spectrum · {cfg.data} · {cfg.interpolant}", fontsize=8)
    ax.set_xlabel("k")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()

"""The dashboard as an ipywidget that sends each event-loop turn's document changes as **one** Bokeh patch.

jupyter_bokeh's :class:`~jupyter_bokeh.BokehModel` turns every document change into its own ``PATCH-DOC``
message, sent as 3 + 2·(number of binary buffers) comm messages (header, metadata, content, then a header and a
payload per buffer). One redraw tick of the dashboard changes several models (two column data sources with two
float32 buffers each, the acknowledgement source, now and then the spectrum and the status), so a tick cost about
twenty comm messages, each signed and relayed by the kernel and the Jupyter server and parsed and applied by the
page on its own. :class:`BatchedBokehModel` collects the changes instead and sends them as one ``PATCH-DOC`` (one
header, metadata and content, then the buffers) on the kernel's next event-loop turn, in the order they happened.
"""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, List

from bokeh.document import Document
from bokeh.protocol import Protocol
from jupyter_bokeh import BokehModel
from panel.io.state import set_curdoc

__all__ = ["BatchedBokehModel", "ipywidget"]


class BatchedBokehModel(BokehModel):
    """A jupyter_bokeh widget whose document changes are sent as one patch per event-loop turn.

    A change schedules :meth:`flush` on the kernel's event loop (thread-safe: a change made off the loop thread
    is queued the same way); :meth:`flush` sends everything pending, oldest first. Changes made by the page
    itself (``setter`` is this widget) are not echoed back, as in the base class."""

    def __init__(self, model: Any, **kwargs: Any):
        self._pending: List[Any] = []
        self._lock = threading.Lock()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # built outside a running loop (a script): the loop the kernel would run
            self._loop = asyncio.get_event_loop_policy().get_event_loop()
        super().__init__(model, **kwargs)

    def _document_patched(self, event: Any) -> None:
        if event.setter is self:
            return
        with self._lock:
            first = not self._pending
            self._pending.append(event)
        if first:
            self._loop.call_soon_threadsafe(self.flush)

    @property
    def pending(self) -> int:
        """Changes waiting for :meth:`flush`."""
        return len(self._pending)

    def flush(self) -> int:
        """Send the pending changes as one ``PATCH-DOC`` message; returns how many changes it carried."""
        with self._lock:
            events, self._pending = self._pending, []
        if not events:
            return 0
        msg = Protocol().create("PATCH-DOC", events)
        for part in (msg.header_json, msg.metadata_json, msg.content_json):
            self.send({"msg": "patch", "payload": part})
        for buf in msg.buffers:
            self.send({"msg": "patch", "payload": json.dumps(buf.ref)})
            self.send({"msg": "patch"}, [buf.to_bytes()])
        return len(events)


def ipywidget(layout: Any) -> BatchedBokehModel:
    """``layout`` (a Panel object) rendered into a new document as a :class:`BatchedBokehModel` — what
    ``pn.ipywidget`` does, including a fresh root when the widget is shown again after all its views closed."""
    doc = Document()
    with set_curdoc(doc):  # Panel caches the stylesheet models of a document it knows (see widgets.app._hold)
        model = layout.get_root(doc=doc)
    widget = BatchedBokehModel(model, combine_events=False)
    if hasattr(widget, "_view_count"):
        widget._view_count = 0
        current = [model]

        def view_count_changed(change: Any) -> None:
            if change["old"] > 0 and change["new"] == 0 and current:
                try:
                    layout._cleanup(current[0])
                except Exception:  # the root is already gone with its document
                    pass
                current.clear()
            elif change["old"] == 0 and change["new"] > 0 and not current:
                root = layout.get_root(doc=widget._document)
                widget.update_from_model(root)
                current.append(root)

        widget.observe(view_count_changed, "_view_count")
    return widget

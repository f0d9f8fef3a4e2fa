"""The workbench dashboard: one Panel app (:mod:`widgets.app`), served or shown in a notebook (:mod:`widgets.jupyter`).

>>> from widgets import jupyter_dashboard; jupyter_dashboard()   # doctest: +SKIP  (one line in a notebook)

Its controls are generated from param objects (:mod:`widgets.params`) over the validated configuration and URL
state (:mod:`widgets.state`); runs are :mod:`widgets.live` threads.
"""
from .state import DashboardConfig, build_experiment, config_to_query, parse_query

__all__ = ["DashboardConfig", "build_experiment", "config_to_query", "parse_query", "create_app",
           "jupyter_dashboard"]


def create_app(*args, **kwargs):
    """The Panel dashboard layout (see :func:`widgets.app.create_app`)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)


def jupyter_dashboard(**config):
    """The Panel dashboard in a notebook cell (see :func:`widgets.jupyter.dashboard`)."""
    from .jupyter import dashboard

    return dashboard(**config)

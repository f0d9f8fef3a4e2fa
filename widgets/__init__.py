"""Front ends of the workbench: the Panel dashboard (:mod:`widgets.app`) and the JupyterLab one (:mod:`widgets.jupyter`).

>>> from widgets import jupyter_dashboard; jupyter_dashboard()   # doctest: +SKIP  (one line in a notebook)

Both share the validated configuration and URL state (:mod:`widgets.state`) and the live runs (:mod:`widgets.live`).
"""
from .state import DashboardConfig, build_experiment, config_to_query, parse_query

__all__ = ["DashboardConfig", "build_experiment", "config_to_query", "parse_query", "create_app",
           "jupyter_dashboard"]


def create_app(*args, **kwargs):
    """The Panel dashboard layout (see :func:`widgets.app.create_app`)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)


def jupyter_dashboard(**config):
    """The ipywidgets dashboard (see :func:`widgets.jupyter.dashboard`)."""
    from .jupyter import dashboard

    return dashboard(**config)

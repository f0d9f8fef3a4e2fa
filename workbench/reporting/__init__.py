"""Notebooks as reproducible reports: typed parameters, papermill runs, Dask sweeps, recorded results.

>>> from workbench.reporting import notebook_parameters, run_report, run_sweep, record  # doctest: +SKIP
>>> run_report("notebooks/02_solver_shootout.ipynb", {"nfe_list": [4, 8]})            # doctest: +SKIP

In a notebook, ``record(error=...)`` in the last cell stores the scalars a report or a sweep collects.
"""
from .params import Parameter, describe_parameters, notebook_parameters, parameters_cell, validate_parameters
from .record import METADATA_KEY, read_results, record
from .report import ReportResult, export_html, package_versions, run_report
from .sweep import SweepResult, expand_grid, format_summary, load_grid, run_sweep, summary_rows

__all__ = [
    "Parameter", "notebook_parameters", "parameters_cell", "validate_parameters", "describe_parameters",
    "record", "read_results", "METADATA_KEY",
    "ReportResult", "run_report", "export_html", "package_versions",
    "SweepResult", "run_sweep", "load_grid", "expand_grid", "format_summary", "summary_rows",
]

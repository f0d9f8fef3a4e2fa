"""Errors the workbench raises for bad input.

Every error names the offending parameter and, where there is a finite set of
valid choices, lists them, so a user never has to read a torch traceback.
"""
from __future__ import annotations

from typing import Iterable


class WorkbenchError(ValueError):
    """Base class of every error raised for bad input or a failed run."""


class ConfigError(WorkbenchError):
    """A configuration field has an invalid value.

    Args:
        field: name of the parameter (as the user wrote it).
        message: what is wrong and what is allowed.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class UnknownNameError(ConfigError):
    """A registry lookup with a name that is not registered."""

    def __init__(self, field: str, name: object, valid: Iterable[str]):
        self.valid = sorted(valid)
        super().__init__(field, f"unknown name {name!r}; valid names are: {', '.join(self.valid)}")


class NonFiniteError(WorkbenchError, FloatingPointError):
    """A NaN or Inf appeared in a trajectory or a loss."""


class BudgetExceededError(WorkbenchError):
    """An adaptive solver would need more function evaluations than its budget."""


class ClusterLostError(WorkbenchError):
    """A sweep's Dask cluster lost its scheduler or its last worker and none came back within the timeout."""


class NonFiniteWarning(RuntimeWarning):
    """A NaN/Inf appeared and was recovered from (e.g. an adaptive step rejected and retried smaller)."""

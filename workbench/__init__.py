"""Interpolant Workbench: stochastic interpolants, schedules, NFE-audited samplers and exact ground truth."""
from . import interpolants, schedules, solvers, models, metrics, data, problems  # noqa: F401
from .errors import BudgetExceededError, ConfigError, NonFiniteError, UnknownNameError, WorkbenchError
from .models import Field, GaussianMixture
from .experiment import Experiment, ExperimentResult

__version__ = "0.1.0"

__all__ = [
    "interpolants", "schedules", "solvers", "models", "metrics", "data", "problems",
    "Field", "GaussianMixture", "Experiment", "ExperimentResult",
    "WorkbenchError", "ConfigError", "UnknownNameError", "NonFiniteError", "BudgetExceededError",
]

"""Interpolant Workbench: stochastic interpolants, schedules, NFE-audited samplers and exact ground truth."""
from . import interpolants, schedules, solvers, models, metrics, data, problems  # noqa: F401
# problems registered by their own families (kept out of problems.py, which they import: no import circle)
from .training import toy_problem as _toy_problem  # noqa: F401,E402  ("toy2d": a trained 2-D flow)
from .fields import problem as _fields_problem  # noqa: F401,E402  ("vorticity": Kolmogorov-flow snapshots)
from .errors import BudgetExceededError, ConfigError, NonFiniteError, UnknownNameError, WorkbenchError
from .models import Field, GaussianMixture
from .experiment import Experiment, ExperimentResult

__version__ = "0.1.0"

__all__ = [
    "interpolants", "schedules", "solvers", "models", "metrics", "data", "problems",
    "Field", "GaussianMixture", "Experiment", "ExperimentResult",
    "WorkbenchError", "ConfigError", "UnknownNameError", "NonFiniteError", "BudgetExceededError",
]

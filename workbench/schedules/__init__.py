"""Time schedules: grids of ``steps + 1`` points with exact endpoints, and their registry."""
from .base import SCHEDULES, Schedule
from . import grids, explicit  # noqa: F401  (register the schedules)
from .explicit import ExplicitGrid
from .grids import EDM, LogitNormal, TimeShift, Uniform, UniformLogSNR
from .learned import GridFit, fit_grid

get = SCHEDULES.get
names = SCHEDULES.names

__all__ = ["SCHEDULES", "Schedule", "get", "names", "Uniform", "UniformLogSNR", "EDM", "TimeShift", "LogitNormal",
           "ExplicitGrid", "GridFit", "fit_grid"]

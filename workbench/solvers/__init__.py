"""Samplers at a fixed NFE budget, and their registry.

>>> from workbench import solvers
>>> solvers.get("heun").steps_for_nfe(20)
10
"""
from .base import SOLVERS, FixedStepSolver, LinearSolver, SampleResult, SamplingRun, Solver, Step, check_nfe
from .plan import Plan, PlanBuilder, Program, compile_plan, execute
# importing a module registers its solvers
from .dpm_solver import DPMSolver2, DPMSolver3, DPMSolverPP, DPMSolverPP2M, DPMSolverPP3M, DPMSolverSinglestep
from .unipc import UniPC
from .deis import DEIS
from .predictor_corrector import PredictorCorrector
from .time_shift import ShiftedField, TimeShifted
from .dpm_solver_v3 import EMS, DPMSolverV3, compute_ems
from .log_snr import LogSNRSolver, LogSNRTable
from .dopri5 import Dopri5
from .runge_kutta import RK4, SSPRK3, Euler, ExplicitRK, Heun, Heun3, Kutta3, Midpoint
from .nonstationary import NonStationary, NSCoefficients, linearize
from .sde import EulerMaruyama
from . import bdia  # noqa: F401  (samplers room: exactly invertible BDIA-DDIM)
from . import mrs  # noqa: F401  (samplers room: MRS mean-reverting ODE/SDE solvers)
from . import dc_solver  # noqa: F401  (DC-Solver: UniPC with fitted compensation ratios, a plan)

get = SOLVERS.get
names = SOLVERS.names

__all__ = [
    "SOLVERS", "Solver", "FixedStepSolver", "LinearSolver", "Plan", "PlanBuilder", "Program", "compile_plan", "execute", "SampleResult", "SamplingRun", "Step", "check_nfe", "get", "names",
    "Euler", "Heun", "Midpoint", "Heun3", "Kutta3", "SSPRK3", "RK4", "ExplicitRK", "Dopri5", "EulerMaruyama",
    "LogSNRSolver", "LogSNRTable", "DPMSolverPP", "DPMSolverPP2M", "DPMSolverPP3M", "DPMSolverSinglestep",
    "DPMSolver2", "DPMSolver3", "UniPC", "DEIS",
    "PredictorCorrector", "TimeShifted", "ShiftedField", "DPMSolverV3", "EMS", "compute_ems",
    "NonStationary", "NSCoefficients", "linearize",
]

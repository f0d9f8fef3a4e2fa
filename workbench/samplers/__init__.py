"""Samplers beyond the probability-flow ODE (issue 15): exact inversion, PFGM++, Feynman–Kac SMC, gradients
through a sampler, mean-reverting diffusion, Denoising MCMC.

ODE/SDE step rules that fit :class:`~workbench.solvers.FixedStepSolver` are registered in ``workbench.solvers``
(``bdia``, ``mrs``); the entry points that are not a single solver run live here.
"""
from .inversion import Inversion, invert, regenerate

__all__ = ["Inversion", "invert", "regenerate"]

"""Samplers beyond the probability-flow ODE (issue 15): exact inversion, PFGM++, Feynman–Kac SMC, gradients
through a sampler, mean-reverting diffusion, Denoising MCMC.

ODE/SDE step rules that fit :class:`~workbench.solvers.FixedStepSolver` are registered in ``workbench.solvers``
(``bdia``, ``ddim``, ``mrs``); the sampling systems that are more than one solver run are registered here
(:data:`SAMPLERS`).
"""
from .registry import SAMPLERS
from .inversion import Inversion, invert, regenerate
from . import pfgmpp  # noqa: F401  (registers "pfgmpp")
from .pfgmpp import PFGMPP
from . import feynman_kac  # noqa: F401  (registers "fk_anneal", "fk_product", "fk_reward")
from .adjoint import Grad, GradResult, sample, sample_with_grad
from .mean_reverting import MeanRevertingTask
from .steplog import AdaptiveLog, adaptive_log
from .denoising_mcmc import ChainState, DenoisingMCMC
from .feynman_kac import Annealed, Product, RewardTilted, SMCResult, product_of_mixtures, smc

get = SAMPLERS.get
names = SAMPLERS.names

__all__ = ["SAMPLERS", "get", "names", "Inversion", "invert", "regenerate", "PFGMPP",
           "Annealed", "Product", "RewardTilted", "SMCResult", "product_of_mixtures", "smc",
           "Grad", "GradResult", "sample", "sample_with_grad", "AdaptiveLog", "adaptive_log", "MeanRevertingTask",
           "ChainState", "DenoisingMCMC"]

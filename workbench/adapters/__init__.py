"""Bring your own model: adapters from diffusers, σ-denoisers (k-diffusion / EDM) and flow_matching / torchdiffeq
velocity models to the workbench's model contract, so every solver, schedule, fit and metric runs on them.

>>> from workbench.adapters import from_diffusers            # doctest: +SKIP
>>> model = from_diffusers(unet, scheduler)                    # doctest: +SKIP
>>> Experiment(model=model, x_start=noise, solver="dpmpp_2m", nfe=10).run()   # doctest: +SKIP
"""
from .base import AdaptedModel, ModelProblem, check_output
from .denoiser import edm_sigma_grid, from_denoiser
from .diffusers import (PREDICTION_TYPES, equivalent_solver, from_diffusers, interpolant_from_scheduler,
                        load_diffusers, scheduler_grid)
from .loading import from_predictor, load_model
from .flow_matching import from_flow_matching, from_velocity, interpolant_from_path_scheduler

__all__ = ["AdaptedModel", "ModelProblem", "check_output", "from_diffusers", "from_denoiser", "from_flow_matching",
           "from_velocity", "interpolant_from_scheduler", "interpolant_from_path_scheduler", "scheduler_grid",
           "equivalent_solver", "edm_sigma_grid", "load_diffusers", "load_model", "from_predictor", "PREDICTION_TYPES"]

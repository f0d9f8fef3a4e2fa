"""Learned models on 2-D vorticity fields: FNO surrogate, interpolant refiner, unconditional generator, rollouts.

Data generators live in :mod:`workbench.data.grf` and :mod:`workbench.data.navier_stokes`, spectra in
:mod:`workbench.metrics.spectra`, the FNO in :mod:`workbench.models.fno`.
"""
from .refiner import InterpolantDenoiser, OneStepSurrogate, Refiner, VorticityGenerator, count_parameters
from .rollout import rollout, rollout_error, rollout_scores
from .training import Normalizer, TrainLog, history_windows, one_step_pairs, push_forward, sample_tau, train_loop
from .surrogates import SURROGATES, FieldSurrogate

__all__ = [
    "InterpolantDenoiser", "OneStepSurrogate", "Refiner", "VorticityGenerator", "count_parameters",
    "rollout", "rollout_error", "rollout_scores", "Normalizer", "TrainLog", "one_step_pairs", "sample_tau", "train_loop",
    "history_windows", "push_forward", "SURROGATES", "FieldSurrogate",
]

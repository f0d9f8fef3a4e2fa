"""Metrics: distances between sample sets, likelihoods, straightness (and, in later modules, spectra)."""
from .distances import energy_distance, mmd, sliced_wasserstein
from .likelihood import LikelihoodResult, log_likelihood
from .straightness import StraightnessResult, curvature, length_ratio, straightness

__all__ = ["sliced_wasserstein", "mmd", "energy_distance", "log_likelihood", "LikelihoodResult",
           "straightness", "StraightnessResult", "curvature", "length_ratio"]
from . import spectra, rollout  # noqa: F401,E402  (energy spectra of 2-D fields; rollout scores)

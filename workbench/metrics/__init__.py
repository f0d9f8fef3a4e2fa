"""Metrics: distances between sample sets (and, in later modules, likelihoods and spectra)."""
from .distances import sliced_wasserstein

__all__ = ["sliced_wasserstein"]

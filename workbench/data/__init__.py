"""Data: generated or shipped sets (no download at run time)."""
from .gmm import gaussian, gmm2d_ring, gmm_random

__all__ = ["gaussian", "gmm2d_ring", "gmm_random"]

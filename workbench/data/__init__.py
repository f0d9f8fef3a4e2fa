"""Data: generated or shipped sets (no download at run time)."""
from .gmm import gaussian, gmm2d_ring, gmm_random
from . import toy2d, digits  # noqa: F401
from .datasets import DATASETS, Dataset, get_dataset

__all__ = ["gaussian", "gmm2d_ring", "gmm_random", "toy2d", "digits", "DATASETS", "Dataset", "get_dataset"]
from . import grf, navier_stokes, spectral1d, burgers, kuramoto_sivashinsky  # noqa: F401,E402  (GRFs, pseudo-spectral NS, 1-D Burgers and KS)

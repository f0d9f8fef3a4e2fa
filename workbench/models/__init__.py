"""Models: the exact Gaussian-mixture ground truth and the model → field wrapper."""
from .field import DATA_SCORE, Field, Prediction
from .gmm import GaussianMixture

__all__ = ["DATA_SCORE", "Field", "Prediction", "GaussianMixture"]

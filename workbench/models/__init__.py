"""Models: the exact Gaussian-mixture ground truth and the model → field wrapper."""
from .field import DATA_SCORE, Field, Prediction, RunField, check_output
from .gmm import GaussianMixture
from .embeddings import FourierFeatures, SinusoidalEmbedding
from .mlp import MLP
from .unet import UNet
from .predictor import ARCHITECTURES, Predictor, build_network
from . import io  # noqa: F401

__all__ = ["DATA_SCORE", "Field", "Prediction", "GaussianMixture",
           "FourierFeatures", "SinusoidalEmbedding", "MLP", "UNet", "ARCHITECTURES", "Predictor", "build_network", "io"]

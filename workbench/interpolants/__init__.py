"""Stochastic interpolants :math:`x_t = \\alpha(t)x_0 + \\beta(t)x_1 + \\gamma(t)z` and their registry.

>>> from workbench import interpolants
>>> I = interpolants.get("vp", beta_max=20.0)
>>> interpolants.names()  # doctest: +ELLIPSIS
['linear', 'mirror', ...]
"""
from .base import PREDICTIONS, Coefficients, Interpolant, canonical_prediction
from .registry import INTERPOLANTS
from . import kinetic_optimal  # noqa: F401  (kinetic-optimal Gaussian path)
from . import mean_reverting  # noqa: F401  (samplers room: IR-SDE deviation path)
from . import linear, trig, diffusion, stochastic, discrete, cosine, edm  # noqa: F401  (register the families)
from .linear import Linear
from .trig import Trigonometric
from .diffusion import VE, VP, SubVP
from .stochastic import Mirror, OneSided, SchrodingerBridge
from .discrete import DiscreteVP
from .cosine import CosineVP
from .edm import EDMVE
from .custom import Custom

get = INTERPOLANTS.get
names = INTERPOLANTS.names

__all__ = [
    "PREDICTIONS", "Coefficients", "Interpolant", "canonical_prediction", "INTERPOLANTS", "get", "names",
    "Linear", "Trigonometric", "VP", "VE", "SubVP", "SchrodingerBridge", "OneSided", "Mirror",
    "DiscreteVP", "CosineVP", "EDMVE", "Custom",
]

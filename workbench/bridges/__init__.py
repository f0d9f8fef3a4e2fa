"""Schrödinger bridges: closed-form Gaussian, Light SB (Gaussian-mixture potential), multi-marginal chains.

>>> from workbench import bridges
>>> bridges.names()
['gaussian', 'light', 'multi_marginal_gaussian', 'multi_marginal_light']
"""
from ..registry import Registry
from .gaussian import GaussianBridge, entropic_cross_covariance
from .light import LightSB, LightSBLog
from .multi_marginal import GaussianMultiMarginalBridge, LightMultiMarginalBridge, brownian_bridge_fill

BRIDGES: Registry = Registry("bridge")
BRIDGES.register("gaussian")(GaussianBridge)
BRIDGES.register("light", "light_sb")(LightSB)
BRIDGES.register("multi_marginal_gaussian")(GaussianMultiMarginalBridge)
BRIDGES.register("multi_marginal_light")(LightMultiMarginalBridge)
get = BRIDGES.get
names = BRIDGES.names

__all__ = ["BRIDGES", "get", "names", "GaussianBridge", "entropic_cross_covariance", "LightSB", "LightSBLog",
           "GaussianMultiMarginalBridge", "LightMultiMarginalBridge", "brownian_bridge_fill"]

"""The interpolant registry: ``INTERPOLANTS.get("vp", beta_max=20.0)``."""
from ..registry import Registry
from .base import Interpolant

INTERPOLANTS: Registry[Interpolant] = Registry("interpolant")
register = INTERPOLANTS.register

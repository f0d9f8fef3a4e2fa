"""The registry of sampling systems that are not a single ODE/SDE step rule (those live in ``workbench.solvers``)."""
from ..registry import Registry

SAMPLERS: Registry = Registry("sampler")
register = SAMPLERS.register

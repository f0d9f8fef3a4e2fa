r"""Mean-reverting restoration on exact ground truth: a Gaussian-mixture "clean" law, a mean state μ (the degraded
observation), and the IR-SDE deviation interpolant ``mean_reverting``.

States of the workbench's solvers are deviations :math:`y = x - \mu`; :class:`MeanRevertingTask` converts, gives the
exact deviation field (the mixture shifted by −μ), the exact start states :math:`x_{t_0} = \mu + a_0(x_1-\mu) + \sigma_0\xi`
and the exact PF-ODE map, so MRS (``workbench.solvers.mrs``) and every other solver can be scored against it.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import ConfigError
from ..interpolants import INTERPOLANTS
from ..interpolants.base import Interpolant
from ..models.field import Field
from ..models.gmm import GaussianMixture
from ..problems import GMMProblem
from .registry import register


@register("mean_reverting", "mr")
class MeanRevertingTask:
    """A clean law ``gmm`` restored from the mean state ``mu`` ``(d,)`` along a mean-reverting diffusion.

    Args:
        gmm: the clean-data mixture.
        mu: the mean state μ ``(d,)``.
        interpolant: a ``mean_reverting`` interpolant (default parameters if None).
    """

    def __init__(self, gmm: GaussianMixture, mu: torch.Tensor, interpolant: Optional[Interpolant] = None):
        mu = torch.as_tensor(mu, dtype=torch.float64)
        if mu.shape != (gmm.dim,):
            raise ConfigError("mu", f"must have shape ({gmm.dim},), got {tuple(mu.shape)}")
        self.gmm, self.mu = gmm, mu
        self.interpolant = INTERPOLANTS.get("mean_reverting") if interpolant is None else interpolant
        shifted = GaussianMixture(gmm.means - mu, gmm.covs, gmm.weights)
        self.problem = GMMProblem(shifted)

    def to_deviation(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`y = x - \\mu`."""
        return x - self.mu.to(x)

    def from_deviation(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`x = y + \\mu`."""
        return y + self.mu.to(y)

    def field(self, device="cpu", dtype=torch.float64) -> Field:
        """The exact deviation field (data/score of the shifted mixture) for any solver."""
        return self.problem.field(self.interpolant, device, dtype)

    def sample_start(self, n: int, t_start: float = 0.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Exact degraded states :math:`x_{t_0} = \\mu + a_0(x_1 - \\mu) + \\sigma_0\\xi` ``(n, d)`` (not deviations)."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        return self.from_deviation(self.problem.sample_start(self.interpolant, t_start, n, g))

    def reference(self, x: torch.Tensor, t_start: float, t_end: float) -> torch.Tensor:
        """The exact PF-ODE map of states ``x`` (not deviations)."""
        return self.from_deviation(self.problem.reference(self.interpolant, self.to_deviation(x), t_start, t_end))

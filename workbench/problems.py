r"""Problems: what an :class:`~workbench.experiment.Experiment` samples and how it is scored.

A problem provides a model for a given interpolant, start states at ``t_start``, exact target samples
at ``t_end`` when known, and the exact probability-flow map of a start state when known. The exact
Gaussian-mixture problems give all three; other families (trained models, fields) register in the same registry
from their own modules, imported where the package is assembled (``workbench/__init__.py``), so this module imports
none of them.

A problem is an immutable configuration (:class:`~workbench.config.Config`): its parameters are its constructor's
arguments; what it builds from them (a mixture, a trained model) is derived state, cached privately.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import Optional, Tuple

import torch

from .config import Config
from .data.gmm import gaussian, gmm2d_ring, gmm_random
from .errors import ConfigError
from .interpolants.base import Interpolant
from .models.field import DATA_SCORE, Field
from .models.gmm import GaussianMixture
from .registry import Registry


class Problem(Config):
    """Base class of sampling problems."""

    name: str = "problem"
    #: True when ``reference`` returns the exact PF-ODE map.
    exact: bool = False

    @property
    @abstractmethod
    def shape(self) -> Tuple[int, ...]:
        """Shape of one sample."""

    @abstractmethod
    def field(self, interpolant: Interpolant, device: torch.device, dtype: torch.dtype) -> Field:
        """The model as a :class:`Field` for ``interpolant``."""

    @abstractmethod
    def sample_start(self, interpolant: Interpolant, t_start: float, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` start states at ``t_start`` (float64, CPU)."""

    def check(self, interpolant: Interpolant, t_start: float, t_end: float) -> None:
        """Refuse an interpolant or interval this problem cannot serve, cheaply (no model is built or trained).
        Raises :class:`~workbench.errors.ConfigError`; the default accepts everything."""

    def sample_target(self, interpolant: Interpolant, t_end: float, n: int, generator: torch.Generator) -> Optional[torch.Tensor]:
        """Exact samples of the law at ``t_end`` (None when unknown)."""
        return None

    def reference(self, interpolant: Interpolant, x: torch.Tensor, t_start: float, t_end: float,
                  tol: Optional[float] = None) -> Optional[torch.Tensor]:
        """Exact PF-ODE map of ``x`` from ``t_start`` to ``t_end`` (None when unknown); ``tol``: the tolerance of
        a numerical reference (the problem's own default when None)."""
        return None


PROBLEMS: Registry[Problem] = Registry("data")
register = PROBLEMS.register


class GMMProblem(Problem):
    """A Gaussian mixture with exact fields; the reference is the closed-form map (one component) or
    Dormand–Prince at ``rtol = atol = 1e-10`` in float64 (several components)."""

    exact = True
    reference_tol: float = 1e-10

    def __init__(self, gmm: GaussianMixture):
        self.gmm = gmm

    @property
    def shape(self):
        return (self.gmm.dim,)

    def field(self, interpolant, device, dtype):
        g = self.gmm.to(device, dtype)
        return Field(g.as_model(interpolant), interpolant, DATA_SCORE)

    def sample_start(self, interpolant, t_start, n, generator):
        return self.gmm.sample_marginal(interpolant, t_start, n, generator)

    def sample_target(self, interpolant, t_end, n, generator):
        return self.gmm.sample_marginal(interpolant, t_end, n, generator)

    def reference(self, interpolant, x, t_start, t_end, tol=None):
        x = x.to(torch.float64)
        if self.gmm.n_components == 1:
            return self.gmm.flow_map(x, t_start, t_end, interpolant)
        from .solvers import SOLVERS

        tol = self.reference_tol if tol is None else float(tol)
        solver = SOLVERS.get("dopri5", rtol=tol, atol=tol)
        field = Field(self.gmm.as_model(interpolant), interpolant, DATA_SCORE)
        return solver.sample(field, x, nfe=200_000, t_start=t_start, t_end=t_end).x


@register("gmm2d", "gmm")
class GMM2D(GMMProblem):
    """8 anisotropic modes on a ring of radius 3 with weights ∝ 1..8 (the default problem)."""

    def __init__(self, n_modes: int = 8, radius: float = 3.0):
        self.n_modes, self.radius = _integer("n_modes", n_modes), _number("radius", radius)
        super().__init__(gmm2d_ring(self.n_modes, self.radius))


@register("gmm_nd", "gmm64")
class GMMND(GMMProblem):
    """A seeded random mixture in ``dim`` dimensions (default 64-D, 8 modes)."""

    def __init__(self, dim: int = 64, n_modes: int = 8, seed: int = 0):
        self.dim, self.n_modes, self.seed = _integer("dim", dim), _integer("n_modes", n_modes), _integer("seed", seed)
        _bounded("dim", self.dim, MAX_DIM, "full covariance matrices")
        _bounded("n_modes", self.n_modes, 1024, "one covariance matrix each")
        super().__init__(gmm_random(self.dim, self.n_modes, self.seed))


@register("gaussian")
class Gaussian(GMMProblem):
    """One anisotropic Gaussian: the PF-ODE map is closed-form."""

    def __init__(self, dim: int = 2, seed: int = 0):
        self.dim, self.seed = _integer("dim", dim), _integer("seed", seed)
        _bounded("dim", self.dim, MAX_DIM, "a full covariance matrix")
        super().__init__(gaussian(self.dim, self.seed))


def custom_gmm(gmm: GaussianMixture) -> GMMProblem:
    """Wrap a user-built :class:`GaussianMixture` as a problem (pass it as ``Experiment(data=...)``)."""
    if not isinstance(gmm, GaussianMixture):
        raise ConfigError("data", f"expected a GaussianMixture, got {type(gmm).__name__}")
    return CustomGMM(gmm)


class CustomGMM(GMMProblem):
    """A user-built mixture (not registered: it has no name-and-numbers description)."""

    name = "custom_gmm"


#: Largest dimension of the built-in Gaussian problems (they hold full dim × dim covariance matrices).
MAX_DIM = 1024


def _bounded(field: str, value: int, maximum: int, why: str) -> None:
    if value > maximum:
        raise ConfigError(field, f"must be <= {maximum} ({why}), got {value}")


def _integer(field: str, value: object) -> int:
    """An integer parameter (integral floats and numeric strings accepted) or a ConfigError naming it."""
    v = _number(field, value)
    if not v.is_integer():
        raise ConfigError(field, f"must be an integer, got {value!r}")
    return int(v)


def _number(field: str, value: object) -> float:
    """A finite number parameter or a ConfigError naming it."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not math.isfinite(v):
        raise ConfigError(field, f"must be a finite number, got {value!r}")
    return v

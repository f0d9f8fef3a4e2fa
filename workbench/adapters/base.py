r"""The adapted-model contract and the problem that lets :class:`~workbench.experiment.Experiment` sample it.

An :class:`AdaptedModel` is a foreign network wrapped into our contract ``model(x, t) -> prediction`` (t ∈ [0, 1],
0 = noise, 1 = data, shape ``(B,)``), together with the interpolant it was trained with and the kind of quantity it
predicts in our terms (``noise`` = ε, ``x1`` = the data denoiser / x0 / "sample", ``velocity`` = dx/dt).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch

from ..errors import ConfigError
from ..interpolants.base import Interpolant, canonical_prediction
from ..models.field import Field
from ..problems import Problem


def check_output(out: Any, x: torch.Tensor, who: str) -> torch.Tensor:
    """The tensor a foreign model returned (``.sample`` of a diffusers output, the first entry of a tuple), checked
    to have the state's shape."""
    if hasattr(out, "sample") and not isinstance(out, torch.Tensor):
        out = out.sample
    elif isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ConfigError("model", f"{who} returned {type(out).__name__}, not a tensor")
    if out.shape != x.shape:
        raise ConfigError("model", f"{who} returned shape {tuple(out.shape)} for a state of shape {tuple(x.shape)}; "
                                   "the output must have the input's shape (e.g. out_channels == in_channels, "
                                   "no learned variance channels)")
    return out


class AdaptedModel:
    """A foreign model in our contract.

    Args:
        fn: ``fn(x, t) -> prediction`` with our time ``t`` of shape ``(B,)``.
        interpolant: the interpolant the model was trained with.
        prediction: the kind ``fn`` returns (our names, see :data:`~workbench.interpolants.PREDICTIONS`).
        t_max: the largest time at which the model may be evaluated (its smallest trained noise level); beyond it
            only the data end t = 1 itself is reached, by the model's own data prediction.
        sample_shape: the shape of one sample when known (for start states drawn by the workbench).
        source: a short description (shown in configs and reports).
    """

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], interpolant: Interpolant,
                 prediction: str, t_max: float = 1.0, sample_shape: Optional[Tuple[int, ...]] = None,
                 source: str = "model"):
        self.fn, self.interpolant = fn, interpolant
        self.prediction = canonical_prediction(prediction)
        self.t_max, self.sample_shape, self.source = float(t_max), sample_shape, source

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.fn(x, t)

    def field(self) -> Field:
        """A fresh :class:`Field` of this model (every run counts its own evaluations)."""
        return Field(self.fn, self.interpolant, self.prediction)

    def describe(self) -> Dict[str, Any]:
        """What the adapter is (JSON-able)."""
        return {"source": self.source, "interpolant": repr(self.interpolant), "prediction": self.prediction,
                "t_max": self.t_max}

    def __repr__(self) -> str:
        return f"AdaptedModel({self.source}, {self.interpolant!r}, prediction={self.prediction!r})"


class ModelProblem(Problem):
    r"""A user's model (an :class:`AdaptedModel`) as a problem: no exact answer, so the reference of a start state is
    the model's own probability-flow ODE solved by Dormand–Prince at ``rtol = atol = tol`` (1e-7) in float64.

    Where the model cannot be evaluated at ``t_end`` (σ = 0 for an ε- or x0-model, t > ``t_max``), the reference
    integrates to ``t_max`` and takes the last piece to ``t_end`` with the model's own data prediction at ``t_max``
    (the exact step of the frozen denoiser, as every diffusion sampler does at its last step).

    Args:
        model: the adapted model.
        x_start: the user's start states (optional; gives the sample shape). Drawn start states (e.g. fit pilots) are
            Gaussian noise scaled like the marginal of N(0, I) data at ``t_start``.
    """

    exact = False
    reference_tol = 1e-7
    _opaque_fields = ("model", "x_start")

    def __init__(self, model: AdaptedModel, x_start: Optional[torch.Tensor] = None):
        if not isinstance(model, AdaptedModel):
            raise ConfigError("model", f"expected a model from workbench.adapters (from_diffusers, from_denoiser, "
                                       f"from_flow_matching, from_velocity), got {type(model).__name__}")
        if x_start is not None and model.sample_shape is not None and tuple(x_start.shape[1:]) != tuple(model.sample_shape):
            raise ConfigError("x_start", f"has states of shape {tuple(x_start.shape[1:])}; the model's samples have "
                                         f"shape {tuple(model.sample_shape)}")
        self.model = model
        self.x_start = x_start
        self.name = "model"

    @property
    def shape(self):
        if self.model.sample_shape is not None:
            return tuple(self.model.sample_shape)
        if self.x_start is not None:
            return tuple(self.x_start.shape[1:])
        if self.model.sample_shape is None:
            raise ConfigError("x_start", "the model's sample shape is unknown; pass x_start (the start states)")
        return tuple(self.model.sample_shape)

    def check(self, interpolant, t_start, t_end):
        if interpolant != self.model.interpolant:
            raise ConfigError("interpolant", f"the model was trained with {self.model.interpolant!r}; "
                                             f"it cannot be sampled on {interpolant!r}")

    def field(self, interpolant, device, dtype):
        self.check(interpolant, 0.0, 1.0)
        return self.model.field()

    def sample_start(self, interpolant, t_start, n, generator):
        """Fresh Gaussian start states (the user's own are used by the experiment itself: this draws pilots)."""
        c = interpolant.coefficients(float(t_start))
        scale = (c.sigma ** 2 + c.signal ** 2) ** 0.5  # N(0, I)-like data: the marginal's scale
        return scale * torch.randn((n, *self.shape), generator=generator, dtype=torch.float64)

    def reference(self, interpolant, x, t_start, t_end, tol=None):
        from ..solvers import SOLVERS

        dtype = _model_dtype(self.model)
        # a float32 network cannot be solved to 1e-7: the tolerance is floored at 8 ulp of its dtype
        tol = max(self.reference_tol if tol is None else float(tol), 8 * torch.finfo(dtype).eps)
        field = self.model.field()
        x = x.to(dtype)
        stop = min(float(t_end), self.model.t_max)
        if interpolant.conversion_singularity(self.model.prediction, "velocity", stop) is not None:
            raise ConfigError("t_end", f"the model's velocity is undefined at t={stop:g}; choose t_end < {stop:g}")
        if stop > t_start:
            x = SOLVERS.get("dopri5", rtol=tol, atol=tol).sample(field, x, nfe=200_000, t_start=t_start, t_end=stop).x
        if float(t_end) > stop:
            pred = field.predict(x, stop)
            c = interpolant.coefficients(float(t_end))
            # the exact step of the frozen data prediction D: x' = (σ'/σ) x + (a' − σ' a/σ) D
            c0 = interpolant.coefficients(stop)
            r = c.sigma / c0.sigma
            x = r * x + (c.signal - r * c0.signal) * pred.data
        return x.to(torch.float64)


def _model_dtype(model: AdaptedModel) -> torch.dtype:
    net = getattr(model, "network", None)
    if isinstance(net, torch.nn.Module):
        for p in net.parameters():
            return p.dtype
    return torch.float64

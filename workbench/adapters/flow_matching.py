r"""Velocity models: flow_matching's ``model(x=..., t=...)`` with its path's scheduler, and ``model(t, x)``
(torchdiffeq / torchcfm order). flow_matching's time is ours (t = 0 noise, t = 1 data) and its path
:math:`x_t = \alpha_t x_1 + \sigma_t x_0` is our :math:`\beta = \alpha_t`, :math:`\alpha = \sigma_t`:

- ``CondOTScheduler`` (:math:`\alpha_t = t`) → ``linear``; ``CosineScheduler`` (:math:`\alpha_t = \sin\tfrac{\pi t}2`) → ``trig``;
  ``VPScheduler(beta_min, beta_max)`` → ``vp`` with the same β range;
- any other scheduler → :class:`~workbench.interpolants.Custom` built from its own ``(alpha_t, sigma_t, d_alpha_t,
  d_sigma_t)``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch

from ..errors import ConfigError
from ..interpolants import INTERPOLANTS
from ..interpolants.base import Interpolant
from ..interpolants.custom import Custom
from .base import AdaptedModel, check_output


def interpolant_from_path_scheduler(scheduler: Any) -> Interpolant:
    """Our interpolant for a flow_matching path scheduler (None → CondOT = ``linear``)."""
    if scheduler is None:
        return INTERPOLANTS.get("linear")
    if isinstance(scheduler, Interpolant):
        return scheduler
    name = type(scheduler).__name__
    if name == "CondOTScheduler":
        return INTERPOLANTS.get("linear")
    if name == "CosineScheduler":
        return INTERPOLANTS.get("trig")
    if name == "VPScheduler":
        return INTERPOLANTS.get("vp", beta_min=float(scheduler.beta_min), beta_max=float(scheduler.beta_max))
    if not callable(scheduler):
        raise ConfigError("scheduler", f"expected a flow_matching path scheduler or an interpolant, got {name}")

    def part(attr):
        return lambda t: getattr(scheduler(t), attr).to(torch.float64)

    return Custom(part("sigma_t"), part("alpha_t"), d_alpha_fn=part("d_sigma_t"), d_beta_fn=part("d_alpha_t"))


def from_flow_matching(model: Callable[..., torch.Tensor], scheduler: Any = None, time_first: bool = False,
                       scalar_time: bool = True, sample_shape: Optional[Tuple[int, ...]] = None) -> AdaptedModel:
    """Adapt a velocity model.

    Args:
        model: called as ``model(x=x, t=t)`` (flow_matching's ``ModelWrapper``), or ``model(t, x)`` with
            ``time_first=True`` (torchdiffeq / torchcfm).
        scheduler: the path's scheduler (``CondOTScheduler``, ``VPScheduler``, ``CosineScheduler``, any other
            flow_matching path scheduler) or one of our interpolants; None = CondOT.
        scalar_time: pass t as a 0-dim tensor, as flow_matching's ODESolver and torchdiffeq do (False: shape ``(B,)``).
    """
    if not callable(model):
        raise ConfigError("model", f"must be callable, got {type(model).__name__}")
    I = interpolant_from_path_scheduler(scheduler)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t[0] if scalar_time else t
        out = model(tt, x) if time_first else model(x=x, t=tt)
        return check_output(out, x, "the velocity model")

    order = "model(t, x)" if time_first else "model(x=, t=)"
    return AdaptedModel(fn, I, "velocity", sample_shape=sample_shape, source=f"velocity {order} on {I!r}")


def from_velocity(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  interpolant: Union[str, Interpolant] = "linear", time_first: bool = True,
                  scalar_time: bool = True, sample_shape: Optional[Tuple[int, ...]] = None) -> AdaptedModel:
    """A velocity ``model(t, x)`` (torchdiffeq / torchcfm order by default) on one of our interpolants."""
    I = INTERPOLANTS.get(interpolant) if isinstance(interpolant, str) else interpolant
    return from_flow_matching(model, I, time_first=time_first, scalar_time=scalar_time, sample_shape=sample_shape)

r"""A trained network made into every prediction kind through the interpolant's conversions.

A network trained to predict one quantity (velocity :math:`b`, score :math:`s`, data denoiser :math:`E[x_1|x_t]`,
noise :math:`E[\xi|x_t]`, :math:`\eta_0 = E[x_0|x_t]` or :math:`\eta_z = E[z|x_t]`) determines all the others through
the pair (data, score) — the algebra lives once, in :meth:`Interpolant.convert`; this module only wires it:

.. math:: x = aD - \sigma^2 s,\qquad b = \dot a D - \sigma\dot\sigma\, s,\qquad \eta_\xi = -\sigma s,\quad
          \eta_0 = -\alpha s,\quad \eta_z = -\gamma s.

``Predictor.field()`` gives the sampler-ready :class:`~workbench.models.field.Field` (NFE-audited, lazy conversions).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..interpolants import INTERPOLANTS, Interpolant, canonical_prediction
from ..registry import Registry
from .field import Field
from .mlp import MLP
from .unet import UNet

#: Network architectures by name (the ``architecture`` field of a saved model's config).
ARCHITECTURES: "Registry[nn.Module]" = Registry("architecture")
ARCHITECTURES.register("mlp")(MLP)
ARCHITECTURES.register("unet")(UNet)


def build_network(architecture: str, **config: Any) -> nn.Module:
    """Build a registered network (``mlp`` or ``unet``) from its config."""
    return ARCHITECTURES.get(architecture, **config)


def resolve_interpolant(interpolant: Union[str, Interpolant, Dict[str, Any]]) -> Interpolant:
    """An :class:`Interpolant` from an instance, a registry name, or ``{"name": ..., "params": {...}}``."""
    if isinstance(interpolant, Interpolant):
        return interpolant
    if isinstance(interpolant, str):
        return INTERPOLANTS.get(interpolant)
    if isinstance(interpolant, dict) and "name" in interpolant:
        return INTERPOLANTS.get(interpolant["name"], **dict(interpolant.get("params", {})))
    raise ConfigError("interpolant", f"expected a name, an Interpolant or {{'name', 'params'}}, got {interpolant!r}")


def interpolant_config(interpolant: Interpolant) -> Dict[str, Any]:
    """``{"name": ..., "params": {...}}`` of an interpolant (JSON-ready)."""
    return {"name": interpolant.name, "params": {k: v for k, v in interpolant.params().items()}}


class Predictor(nn.Module):
    """A network plus the interpolant and prediction kind it is trained for.

    Args:
        network: ``network(x, t) -> Tensor`` with ``t`` of shape ``(B,)``.
        interpolant: an :class:`Interpolant`, a registry name or ``{"name", "params"}``.
        prediction: what the network outputs: ``velocity``, ``score``, ``x1`` (data), ``noise``, ``x0`` or ``z``.
        architecture: the registry name of ``network`` (needed to save/load; inferred for MLP/UNet).
    """

    def __init__(self, network: nn.Module, interpolant: Union[str, Interpolant, Dict[str, Any]],
                 prediction: str = "velocity", architecture: Optional[str] = None):
        super().__init__()
        self.network = network
        self.interpolant = resolve_interpolant(interpolant)
        self.prediction = canonical_prediction(prediction)
        if self.prediction == "x0" and not self.interpolant.gaussian_base:
            raise ConfigError("prediction", f"'x0' is not defined for the {self.interpolant.name!r} interpolant")
        if self.prediction == "z" and not _has_gamma(self.interpolant):
            raise ConfigError("prediction", f"'z' (the latent denoiser eta_z) needs an interpolant with gamma > 0; "
                                            f"{self.interpolant.name!r} has none — use 'noise' instead")
        if architecture is None:
            architecture = next((n for n in ARCHITECTURES.names() if type(network) is ARCHITECTURES.cls(n)), None)
        self.architecture = architecture

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The raw network output (of kind :attr:`prediction`)."""
        return self.network(x, t)

    def predict(self, x: torch.Tensor, t: Union[torch.Tensor, float], kind: str = "velocity") -> torch.Tensor:
        """The network's prediction at ``(x, t)`` converted to ``kind`` (``t``: float or ``(B,)``)."""
        kind = canonical_prediction(kind, "kind")
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            t = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        raw = self.network(x, t)
        return self.interpolant.convert(raw, x, t, self.prediction, kind)

    def velocity(self, x, t):
        """:math:`b(t, x)`."""
        return self.predict(x, t, "velocity")

    def score(self, x, t):
        """:math:`\\nabla\\log\\rho_t(x)`."""
        return self.predict(x, t, "score")

    def data(self, x, t):
        """:math:`E[x_1|x_t = x]`."""
        return self.predict(x, t, "x1")

    def noise(self, x, t):
        """:math:`E[\\xi|x_t = x]`."""
        return self.predict(x, t, "noise")

    def as_model(self, kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A plain ``model(x, t)`` returning ``kind`` (for code that expects, e.g., a velocity network)."""
        kind = canonical_prediction(kind, "kind")
        return lambda x, t: self.predict(x, t, kind)

    def field(self) -> Field:
        """The NFE-audited :class:`Field` over the raw network (conversions happen lazily, once per call)."""
        return Field(self.network, self.interpolant, self.prediction)

    def config(self) -> Dict[str, Any]:
        """The JSON config saved next to the weights."""
        arch_cfg = getattr(self.network, "config", None)
        if self.architecture is None or arch_cfg is None:
            raise ConfigError("architecture", f"cannot describe a {type(self.network).__name__}; register it in "
                                              f"ARCHITECTURES and give it a .config dict")
        return {"interpolant": interpolant_config(self.interpolant), "prediction": self.prediction,
                "architecture": {"name": self.architecture, "config": dict(arch_cfg)}}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Predictor":
        """A fresh (untrained) predictor from :meth:`config` output."""
        arch = config["architecture"]
        net = build_network(arch["name"], **arch.get("config", {}))
        return cls(net, config["interpolant"], config["prediction"], arch["name"])


def _has_gamma(interpolant: Interpolant) -> bool:
    t = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    return bool((interpolant.gamma(t) > 0).all())


__all__ = ["ARCHITECTURES", "Predictor", "build_network", "resolve_interpolant", "interpolant_config"]

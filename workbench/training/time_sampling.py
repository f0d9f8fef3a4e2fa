r"""Distributions of the training time ``t`` on (0, 1).

* ``uniform``: :math:`t \sim U(0, 1)`.
* ``logit_normal`` (Esser et al. 2024, SD3): :math:`t = \mathrm{sigmoid}(m + s\,n)`, :math:`n \sim N(0,1)`;
  density :math:`p(t) = \frac{1}{s\sqrt{2\pi}}\frac{1}{t(1-t)}\exp\!\big(-\frac{(\mathrm{logit}\,t - m)^2}{2s^2}\big)`.
* ``u_shaped`` (Lee, Lin & Fanti 2024, "Improving the Training of Rectified Flows"): more weight near both ends,
  :math:`p(t) \propto \cosh\big(a(t - \tfrac12)\big)`, sampled exactly by the inverse CDF
  :math:`t = \tfrac12 + \mathrm{asinh}\big((2u-1)\sinh(a/2)\big)/a`.

Every sampler returns float64 times clipped to ``[t_min, 1 - t_min]`` (so score/noise targets stay finite).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Optional

import torch

from ..errors import ConfigError
from ..interpolants.base import check_positive
from ..registry import Registry

TIME_SAMPLERS: "Registry[TimeSampler]" = Registry("time_sampling")


class TimeSampler(ABC):
    """A law of training times on (0, 1)."""

    name: str = "time_sampler"

    def __init__(self, t_min: float = 1e-3):
        if not 0.0 <= float(t_min) < 0.5:
            raise ConfigError("t_min", f"must be in [0, 0.5), got {t_min}")
        self.t_min = float(t_min)

    @abstractmethod
    def _draw(self, n: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        """``n`` raw draws (float64) in [0, 1]."""

    @abstractmethod
    def density(self, t: torch.Tensor) -> torch.Tensor:
        """The probability density at ``t`` (before clipping)."""

    def sample(self, n: int, generator: Optional[torch.Generator] = None, device=None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``n`` times of shape ``(n,)`` in ``[t_min, 1 - t_min]``."""
        t = self._draw(int(n), generator).clamp(self.t_min, 1.0 - self.t_min)
        return t.to(device=device, dtype=dtype)

    def params(self):
        return dict(getattr(self, "_params", {}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


@TIME_SAMPLERS.register("uniform")
class UniformTime(TimeSampler):
    """:math:`t \\sim U(0, 1)`."""

    def __init__(self, t_min: float = 1e-3):
        super().__init__(t_min)
        self._params = {"t_min": self.t_min}

    def _draw(self, n, generator):
        return torch.rand(n, generator=generator, dtype=torch.float64)

    def density(self, t):
        return torch.ones_like(t)


@TIME_SAMPLERS.register("logit_normal", "lognorm")
class LogitNormalTime(TimeSampler):
    """:math:`t = \\mathrm{sigmoid}(m + s n)` with location ``mean`` and scale ``std``."""

    def __init__(self, mean: float = 0.0, std: float = 1.0, t_min: float = 1e-3):
        super().__init__(t_min)
        self.mean, self.std = float(mean), check_positive("std", std)
        self._params = {"mean": self.mean, "std": self.std, "t_min": self.t_min}

    def _draw(self, n, generator):
        return torch.sigmoid(self.mean + self.std * torch.randn(n, generator=generator, dtype=torch.float64))

    def density(self, t):
        t = t.to(torch.float64)
        lg = torch.log(t) - torch.log1p(-t)
        return torch.exp(-0.5 * ((lg - self.mean) / self.std) ** 2) / (self.std * math.sqrt(2 * math.pi) * t * (1 - t))


@TIME_SAMPLERS.register("u_shaped", "ushaped", "u")
class UShapedTime(TimeSampler):
    """:math:`p(t) \\propto \\cosh(a(t - 1/2))` (``a = 4`` as in Lee et al. 2024)."""

    def __init__(self, a: float = 4.0, t_min: float = 1e-3):
        super().__init__(t_min)
        self.a = check_positive("a", a)
        self._params = {"a": self.a, "t_min": self.t_min}

    def _draw(self, n, generator):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return 0.5 + torch.asinh((2 * u - 1) * math.sinh(self.a / 2)) / self.a

    def density(self, t):
        return self.a * torch.cosh(self.a * (t.to(torch.float64) - 0.5)) / (2 * math.sinh(self.a / 2))


def get_time_sampler(name, **params) -> TimeSampler:
    """A time sampler by name (``uniform``, ``logit_normal``, ``u_shaped``) or an instance passed through."""
    if isinstance(name, TimeSampler):
        return name
    return TIME_SAMPLERS.get(name, **params)


__all__ = ["TIME_SAMPLERS", "TimeSampler", "UniformTime", "LogitNormalTime", "UShapedTime", "get_time_sampler"]

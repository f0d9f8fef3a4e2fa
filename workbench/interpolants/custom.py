r"""An interpolant from user callables :math:`\alpha(t), \beta(t)` (and optionally :math:`\gamma(t)`):
:math:`x_t = \alpha(t)x_0 + \beta(t)x_1 + \gamma(t)z`, t = 0 the noise end, t = 1 the data end.

Derivatives not given are taken by autograd (the callables must then be written in torch ops); the log-SNR inverse
is the base class's bisection and raises outside the range. Not registered: it is built from Python functions,
not from a name and numbers (its value is the functions themselves, compared by identity).

>>> import torch
>>> from workbench.interpolants import Custom
>>> I = Custom(alpha_fn=lambda t: 1 - t, beta_fn=lambda t: t)   # the linear path
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import ConfigError
from .base import Interpolant

Fn = Callable[[torch.Tensor], torch.Tensor]


def _autograd_derivative(fn: Fn, t: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode(False), torch.enable_grad():
        tt = t.detach().clone().requires_grad_(True)
        y = fn(tt)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            return torch.zeros_like(t) if isinstance(y, torch.Tensor) or isinstance(y, (int, float)) else y
        (g,) = torch.autograd.grad(y.sum(), tt)
    return g.detach()


class Custom(Interpolant):
    r"""A user-defined interpolant.

    Args:
        alpha_fn, beta_fn: :math:`\alpha(t)` (coefficient of the Gaussian base) and :math:`\beta(t)` (of the data),
            float64 tensor → tensor.
        gamma_fn: :math:`\gamma(t)` of a latent term (None: no latent).
        d_alpha_fn, d_beta_fn, d_gamma_fn: their derivatives (None: autograd).
        monotone_snr: whether :math:`\beta/\sqrt{\alpha^2+\gamma^2}` increases in t (log-SNR solvers need it).
    """

    name = "custom"

    def __init__(self, alpha_fn: Fn, beta_fn: Fn, gamma_fn: Optional[Fn] = None, d_alpha_fn: Optional[Fn] = None,
                 d_beta_fn: Optional[Fn] = None, d_gamma_fn: Optional[Fn] = None, monotone_snr: bool = True):
        for field, fn in (("alpha_fn", alpha_fn), ("beta_fn", beta_fn), ("gamma_fn", gamma_fn),
                          ("d_alpha_fn", d_alpha_fn), ("d_beta_fn", d_beta_fn), ("d_gamma_fn", d_gamma_fn)):
            if fn is not None and not callable(fn):
                raise ConfigError(field, f"must be a callable t -> tensor, got {type(fn).__name__}")
        probe = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
        for field, fn in (("alpha_fn", alpha_fn), ("beta_fn", beta_fn)):
            try:
                v = fn(probe)
            except Exception as exc:  # noqa: BLE001 - any failure of a user function is a config error
                raise ConfigError(field, f"calling it on a float64 tensor of times failed: {exc}") from exc
            if not isinstance(v, torch.Tensor) or v.shape != probe.shape:
                raise ConfigError(field, "must map a tensor of times to a tensor of the same shape (use torch ops)")
        self.alpha_fn, self.beta_fn, self.gamma_fn = alpha_fn, beta_fn, gamma_fn
        self.d_alpha_fn, self.d_beta_fn, self.d_gamma_fn = d_alpha_fn, d_beta_fn, d_gamma_fn
        self.monotone_snr = bool(monotone_snr)

    def alpha(self, t):
        return self.alpha_fn(t)

    def beta(self, t):
        return self.beta_fn(t)

    def d_alpha(self, t):
        return self.d_alpha_fn(t) if self.d_alpha_fn is not None else _autograd_derivative(self.alpha_fn, t)

    def d_beta(self, t):
        return self.d_beta_fn(t) if self.d_beta_fn is not None else _autograd_derivative(self.beta_fn, t)

    def gamma(self, t):
        return self.gamma_fn(t) if self.gamma_fn is not None else torch.zeros_like(t)

    def d_gamma(self, t):
        if self.gamma_fn is None:
            return torch.zeros_like(t)
        return self.d_gamma_fn(t) if self.d_gamma_fn is not None else _autograd_derivative(self.gamma_fn, t)

r"""Kinetic-optimal Gaussian path (Shaul, Chen, Nickel, Le & Lipman 2023, "On Kinetic Optimal Probability Paths
for Generative Models").

The Gaussian path :math:`x_t = a(t)x_1 + \sigma(t)x_0` (here ``beta = a``, ``alpha = σ``) has kinetic energy

.. math:: \mathcal K[a,\sigma] = \int_0^1 \dot a^2 m_2 + \dot\sigma^2 d - \frac{(\dot a\sigma - a\dot\sigma)^2}{\sigma^2}\,M(a/\sigma)\,dt,

where the data enter only through the one-dimensional posterior-error curve :math:`M(r)` (equivalently the
data-separation function :math:`\lambda(r) = 1 - M(r)/m_2`; see :mod:`workbench.metrics.kinetic`). This module
parameterises the path by a sine series with the linear path's endpoints,

.. math:: a(t) = t\,e^{P(t)},\quad \sigma(t) = (1 - t)\,e^{Q(t)},\qquad
    P(t) = \sum_{k=1}^K p_k\sin(k\pi t),\quad Q(t) = \sum_{k=1}^K q_k\sin(k\pi t),

so :math:`(a,\sigma) = (0,1)` at t = 0 and :math:`(1,0)` at t = 1 exactly, both stay positive in between for any
coefficients (all zero = cond-OT), :math:`\log(a/\sigma) = \log\frac{t}{1-t} + P - Q`, and
:meth:`KineticOptimal.fit` minimises the discretised :math:`\mathcal K` over :math:`(p, q)` for a given data
curve. Starting the minimisation at the linear path makes the fitted energy ≤ the linear one by construction; the
Monte-Carlo check in the tests measures both with the exact mixture field, independently of the fit.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..errors import ConfigError
from .base import Interpolant
from .registry import register


def _coefficients(values: Sequence[float], field: str) -> tuple:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a sequence of numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(field, f"must be finite numbers, got {values!r}")
    return out


@register("kinetic_optimal", "ko")
class KineticOptimal(Interpolant):
    r"""Sine-series Gaussian path :math:`\alpha = \sigma(t),\ \beta = a(t)` (see the module docstring).

    Args:
        signal_modes: :math:`p_1..p_K`, the sine coefficients of :math:`P` in :math:`a(t) = t e^{P(t)}`.
        noise_modes: :math:`q_1..q_K`, of :math:`Q` in :math:`\sigma(t) = (1 - t)e^{Q(t)}` (same length).
    """

    def __init__(self, signal_modes: Sequence[float] = (), noise_modes: Sequence[float] = ()):
        p = _coefficients(signal_modes, "signal_modes")
        q = _coefficients(noise_modes, "noise_modes")
        if len(p) != len(q):
            raise ConfigError("noise_modes", f"must have as many entries as signal_modes ({len(p)}), got {len(q)}")
        self.signal_modes, self.noise_modes = p, q
        self._p = torch.tensor(p, dtype=torch.float64)
        self._q = torch.tensor(q, dtype=torch.float64)
        grid = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)[1:-1]
        snr = self.beta(grid) / self.alpha(grid)
        self.monotone_snr = bool((snr[1:] > snr[:-1]).all())

    # sine series and its derivative ------------------------------------------------------------------------
    @staticmethod
    def _series(t: torch.Tensor, c: torch.Tensor, derivative: bool) -> torch.Tensor:
        if c.numel() == 0:
            return torch.zeros_like(t)
        k = torch.arange(1, c.numel() + 1, dtype=t.dtype, device=t.device) * math.pi
        c = c.to(t)
        arg = t[..., None] * k
        return ((c * k) * torch.cos(arg)).sum(-1) if derivative else (c * torch.sin(arg)).sum(-1)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return (1.0 - t) * torch.exp(self._series(t, self._q, False))

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return t * torch.exp(self._series(t, self._p, False))

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._series(t, self._q, False)) * (-1.0 + (1.0 - t) * self._series(t, self._q, True))

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._series(t, self._p, False)) * (1.0 + t * self._series(t, self._p, True))

    # fitting ---------------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, separation: Callable[[torch.Tensor], torch.Tensor], m2: float, dim: int, n_modes: int = 4,
            n_points: int = 500, max_iter: int = 60) -> "KineticOptimal":
        r"""Minimise the discretised :math:`\mathcal K[a,\sigma]` (midpoint rule on ``n_points`` times) over the
        sine coefficients with L-BFGS, starting from the linear path.

        Args:
            separation: :math:`r \mapsto M(r)` (differentiable in r), e.g. a
                :class:`workbench.metrics.kinetic.DataSeparation`.
            m2: :math:`E\|x_1\|^2`; dim: d.
            n_modes: K, number of sine modes per coefficient.
        """
        if not isinstance(n_modes, int) or n_modes < 1:
            raise ConfigError("n_modes", f"must be an integer >= 1, got {n_modes!r}")
        t = (torch.arange(n_points, dtype=torch.float64) + 0.5) / n_points
        k = torch.arange(1, n_modes + 1, dtype=torch.float64) * math.pi
        sin, cos = torch.sin(t[:, None] * k), torch.cos(t[:, None] * k) * k
        theta = torch.zeros(2 * n_modes, dtype=torch.float64, requires_grad=True)

        def energy(th: torch.Tensor) -> torch.Tensor:
            p, q = th[:n_modes], th[n_modes:]
            ep, eq = torch.exp(sin @ p), torch.exp(sin @ q)
            a, da = t * ep, ep * (1.0 + t * (cos @ p))
            s, ds = (1.0 - t) * eq, eq * (-1.0 + (1.0 - t) * (cos @ q))
            cross = da * s - a * ds
            return (da ** 2 * m2 + ds ** 2 * dim - cross ** 2 / s ** 2 * separation(a / s)).mean()

        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-10, tolerance_change=1e-13)

        def closure():
            opt.zero_grad()
            e = energy(theta)
            e.backward()
            return e

        start = float(energy(theta.detach()))
        opt.step(closure)
        th = theta.detach()
        if not float(energy(th)) <= start:  # never return a path worse than cond-OT
            th = torch.zeros_like(th)
        return cls(th[:n_modes].tolist(), th[n_modes:].tolist())

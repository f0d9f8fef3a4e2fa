r"""DC-Solver: UniPC with dynamic compensation (Zhao et al. 2024, "Improving Predictor-Corrector Diffusion Sampler
via Dynamic Compensation").

At step :math:`i \to i+1` UniPC evaluates :math:`D_{i+1} = D(\tilde x_{i+1}, t_{i+1})` at the predicted state and
uses it in UniC. DC-Solver replaces it by the Lagrange interpolant of the recent data predictions at a compensated
time :math:`\tau_i = \rho_i t_{i+1}`:

.. math::
    \hat D_{i+1} = \sum_{j} \ell_j(\tau_i) D_{t_j},\qquad \ell_j(\tau) = \prod_{m\ne j}\frac{\tau - t_m}{t_j - t_m},

over the nodes :math:`t_{i+1}, t_i, \dots` (up to ``lagrange_points``), and :math:`\hat D_{i+1}` is used by the
corrector and kept in the history for the next predictor. :math:`\rho_i = 1` gives UniPC exactly (the Lagrange
basis at a node is 0 or 1). One ratio per corrected step (``nfe - 1``); the last step has no corrector.

This is its own small loop (data prediction, grids with finite log-SNR at both ends) reusing
:func:`~.unipc.unipc_coefficients`; it is not compiled into a Plan (the compensation is non-linear in the grid).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import torch

from ..errors import ConfigError
from .log_snr import LogSNRTable, step_points
from .unipc import unipc_coefficients


def lagrange_weights(nodes: Sequence[float], tau: torch.Tensor) -> list:
    r""":math:`\ell_j(\tau) = \prod_{m\ne j}(\tau - t_m)/(t_j - t_m)` (differentiable in ``tau``)."""
    out = []
    for j, tj in enumerate(nodes):
        w = torch.ones((), dtype=tau.dtype)
        for m, tm in enumerate(nodes):
            if m != j:
                w = w * (tau - tm) / (tj - tm)
        out.append(w)
    return out


@dataclass(frozen=True)
class DCSolver:
    """UniPC (data prediction, ``bh2``) whose corrector input is compensated by per-step ratios ``ratios``.

    Args:
        ratios: :math:`\\rho_1..\\rho_{n-1}` (``nfe - 1`` numbers); empty means all 1 (plain UniPC).
        order: UniPC's global order with the corrector (2–4).
        variant: ``"bh1"`` or ``"bh2"``.
        lagrange_points: nodes of the compensation interpolant (2–4; the paper's K = 2 is 3 points).
    """

    ratios: Tuple[float, ...] = ()
    order: int = 3
    variant: str = "bh2"
    lagrange_points: int = 3

    def __post_init__(self):
        if self.order not in (2, 3, 4):
            raise ConfigError("order", f"got {self.order!r}; allowed values are: 2, 3, 4")
        if self.variant not in ("bh1", "bh2"):
            raise ConfigError("variant", f"got {self.variant!r}; allowed values are: bh1, bh2")
        if self.lagrange_points not in (2, 3, 4):
            raise ConfigError("lagrange_points", f"got {self.lagrange_points!r}; allowed values are: 2, 3, 4")
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))

    def sample(self, model, x: torch.Tensor, grid: Sequence[float], ratios=None) -> torch.Tensor:
        """End state from ``x`` on ``grid`` (``nfe = len(grid) - 1`` model calls through ``model.evaluate``, a
        :class:`~workbench.fitting.PilotModel`); ``ratios`` (a tensor, for fitting) overrides ``self.ratios``."""
        ts = [float(t) for t in grid]
        n = len(ts) - 1
        tab = LogSNRTable.build(model.field.interpolant, ts)
        if not all(tab.finite(i) for i in range(n + 1)):
            raise ConfigError("grid", "DC-Solver needs finite log-SNR at every grid point (start/end inside the "
                                      "interval, e.g. t_start=1e-3 and t_end=1-1e-3)")
        if ratios is None:
            ratios = torch.tensor(self.ratios or [1.0] * (n - 1), dtype=torch.float64)
        if ratios.shape != (n - 1,):
            raise ConfigError("ratios", f"need {n - 1} ratios for {n} steps, got {tuple(ratios.shape)}")
        p = self.order - 1
        points = step_points(tab, p, False, "unipc", False)
        tt = lambda t: torch.tensor(t, dtype=x.dtype)
        hist = [model.evaluate(x, tt(ts[0]), "data")]
        for i in range(n):
            k = points[i]
            cx, terms, _ = unipc_coefficients(tab, i, k, "data", self.variant, False)
            xp = cx * x + sum(c * hist[i - g] for g, c in terms)
            if i == n - 1:
                return xp
            m_new = model.evaluate(xp, tt(ts[i + 1]), "data")
            q = min(self.lagrange_points, i + 2)
            nodes = [ts[i + 1 - j] for j in range(q)]
            vals = [m_new] + [hist[i - j] for j in range(q - 1)]
            tau = ratios[i].to(x.dtype) * ts[i + 1]
            m_c = sum(w * v for w, v in zip(lagrange_weights(nodes, tau), vals))
            cxc, cterms, c_new = unipc_coefficients(tab, i, k, "data", self.variant, True)
            x = cxc * x + sum(c * hist[i - g] for g, c in cterms) + c_new * m_c
            hist.append(m_c)
        return x

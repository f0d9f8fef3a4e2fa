r"""DC-Solver: UniPC with dynamic compensation (Zhao et al. 2024, "Improving Predictor-Corrector Diffusion Sampler
via Dynamic Compensation"), registered as ``dc_solver`` and run as a :class:`~workbench.solvers.plan.Plan`.

At step :math:`i \to i+1` UniPC evaluates :math:`D_{i+1} = D(\tilde x_{i+1}, t_{i+1})` at the predicted state and
uses it in UniC. DC-Solver replaces it by the Lagrange interpolant of the recent data predictions at a compensated
time :math:`\tau_i = \rho_i t_{i+1}`:

.. math::
    \hat D_{i+1} = \sum_{j} \ell_j(\tau_i) \hat D_{i+1-j},\qquad \ell_j(\tau) = \prod_{m\ne j}\frac{\tau - t_m}{t_j - t_m},

over the nodes :math:`t_{i+1}, t_i, \dots` (up to ``lagrange_points``; :math:`\hat D_{i+1-0}` is the fresh output,
the others the kept history), and :math:`\hat D_{i+1}` is used by the corrector and kept in the history for the
next predictor. :math:`\rho_i = 1` gives UniPC exactly (the Lagrange basis at a node is 0 or 1). One ratio per
corrected step (``nfe - 1``); the last step has no corrector.

For given ratios and grid the weights :math:`\ell_j(\tau_i)` are numbers, so every compensated output is a fixed
linear combination of raw data outputs and the whole run is linear: :meth:`DCSolver.build_plan` writes it as a plan
(the corrected state :math:`x^c_{i+1} = \tilde x_{i+1} + \sum_g (c^C_g - c^P_g)\hat D_{i-g} + c_{new}\hat D_{i+1}`
folded into the next predictor, as UniPC's), run by the one executor. :meth:`DCSolver.compensated` is the same
run as a readable, differentiable loop in the ratios (what :func:`~workbench.fitting.dc_solver.fit_dc_ratios`
optimises). Compensation needs finite log-SNR at every grid point; with all ratios 1 any grid runs (UniPC's plan).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch

from ..errors import ConfigError
from .base import OrderCheck, register
from .log_snr import LogSNRSolver, LogSNRTable, check_order, step_points
from .plan import PlanBuilder
from .unipc import UniPC, unipc_coefficients


def lagrange_weights(nodes: Sequence[float], tau):
    r""":math:`\ell_j(\tau) = \prod_{m\ne j}(\tau - t_m)/(t_j - t_m)` (differentiable in a tensor ``tau``; python
    floats for a float ``tau``)."""
    out = []
    for j, tj in enumerate(nodes):
        w = torch.ones((), dtype=tau.dtype) if isinstance(tau, torch.Tensor) else 1.0
        for m, tm in enumerate(nodes):
            if m != j:
                w = w * (tau - tm) / (tj - tm)
        out.append(w)
    return out


@register("dc_solver", "dcsolver")
class DCSolver(LogSNRSolver):
    """UniPC (data prediction) whose corrector input is compensated by per-step ratios ``ratios``; 1 NFE/step.

    Args:
        ratios: :math:`\\rho_1..\\rho_{n-1}` (``nfe - 1`` numbers, e.g. from ``fit_dc_ratios``); empty means all 1
            (plain UniPC, the default).
        order: UniPC's global order with the corrector (2–4).
        variant: ``"bh1"`` or ``"bh2"``.
        lagrange_points: nodes of the compensation interpolant (2–4; the paper's K = 2 is 3 points).
    """

    # default ratios 1 = UniPC-3; fitted ratios are checked in tests/fitting/test_dc_solver.py
    order_checks = (OrderCheck(),)

    evals_per_step = 1

    def __init__(self, ratios: Sequence[float] = (), order: int = 3, variant: str = "bh2", lagrange_points: int = 3):
        if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__iter__"):
            raise ConfigError("ratios", f"must be a sequence of numbers (one per corrected step), got {ratios!r}")
        try:
            self.ratios = tuple(float(r) for r in ratios)
        except (TypeError, ValueError):
            raise ConfigError("ratios", f"must be numbers, got {ratios!r}") from None
        if not all(r == r and abs(r) != float("inf") for r in self.ratios):
            raise ConfigError("ratios", f"must be finite, got {ratios!r}")
        self.order = check_order(order, (2, 3, 4))
        if variant not in ("bh1", "bh2"):
            raise ConfigError("variant", f"got {variant!r}; allowed values are: bh1, bh2")
        self.variant = variant
        self.lagrange_points = check_order(lagrange_points, (2, 3, 4), "lagrange_points")

    def _ratios(self, n: int):
        if self.ratios and len(self.ratios) != n - 1:
            raise ConfigError("ratios", f"need {n - 1} ratios for {n} steps (nfe={n}), got {len(self.ratios)}")
        return self.ratios or (1.0,) * (n - 1)

    @staticmethod
    def _check_finite(tab: LogSNRTable) -> None:
        if not all(tab.finite(i) for i in range(len(tab.t))):
            raise ConfigError("t_start/t_end", "DC-Solver's compensation needs finite log-SNR at every grid point "
                                               "(start/end inside the interval, e.g. t_start=1e-3 and t_end=1-1e-3); "
                                               "with ratios all 1 (UniPC) any grid runs")

    def build_plan(self, interpolant, grid):
        n = len(grid) - 1
        ratios = self._ratios(n)
        tab = LogSNRTable.build(interpolant, grid)
        if not all(tab.finite(i) for i in range(n + 1)):
            if all(r == 1.0 for r in ratios):  # no compensation: exactly UniPC (which handles λ = ±∞)
                return UniPC(order=self.order, variant=self.variant).build_plan(interpolant, grid)
            self._check_finite(tab)
        points = step_points(tab, self.order - 1, False, "unipc", False)
        b = PlanBuilder(tab.t, repr(self))
        hist = [{b.evaluate(tab.t[0]): 1.0}]  # compensated data predictions over raw outputs
        extra: Dict[int, float] = {}  # x^c_i - y_i over raw outputs

        def add(acc: Dict[int, float], comb: Dict[int, float], c: float) -> None:
            for o, w in comb.items():
                acc[o] = acc.get(o, 0.0) + c * w

        for i in range(n):
            k = points[i]
            cx, pterms, _ = unipc_coefficients(tab, i, k, "data", self.variant, False)
            out: Dict[int, float] = {}
            add(out, extra, cx)
            for g, c in pterms:
                add(out, hist[i - g], c)
            b.advance([("x", i, cx)] + [("x1", o, c) for o, c in sorted(out.items())], step=i, order=k + 1)
            if i == n - 1:
                break
            new = b.evaluate(tab.t[i + 1])
            q = min(self.lagrange_points, i + 2)
            nodes = [tab.t[i + 1 - j] for j in range(q)]
            vals = [{new: 1.0}] + [hist[i - j] for j in range(q - 1)]
            m_c: Dict[int, float] = {}
            for w, v in zip(lagrange_weights(nodes, ratios[i] * tab.t[i + 1]), vals):
                add(m_c, v, w)
            cxc, cterms, c_new = unipc_coefficients(tab, i, k, "data", self.variant, True)
            extra = {}
            for g, c in cterms:
                add(extra, hist[i - g], c)
            for g, c in pterms:
                add(extra, hist[i - g], -c)
            add(extra, m_c, c_new)
            hist.append(m_c)
        return b.build()

    def compensated(self, model, x: torch.Tensor, grid: Sequence[float], ratios=None) -> torch.Tensor:
        """The same run as a readable loop, differentiable in ``ratios`` (a tensor; ``None``: ``self.ratios``):
        end state from ``x`` on ``grid`` with ``len(grid) - 1`` calls of ``model.evaluate`` (a
        :class:`~workbench.fitting.PilotModel`)."""
        ts = [float(t) for t in grid]
        n = len(ts) - 1
        tab = LogSNRTable.build(model.field.interpolant, ts)
        self._check_finite(tab)
        if ratios is None:
            ratios = torch.tensor(self._ratios(n), dtype=torch.float64)
        if ratios.shape != (n - 1,):
            raise ConfigError("ratios", f"need {n - 1} ratios for {n} steps, got {tuple(ratios.shape)}")
        points = step_points(tab, self.order - 1, False, "unipc", False)
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

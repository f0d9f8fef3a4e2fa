r"""MRS: semi-analytic ODE and SDE solvers for (mean-reverting) diffusions, orders 1–2, data or noise prediction.

Li, Sun, Wang, Wang, Zhou, Ma (2024), "MRS: A Fast Sampler for Mean Reverting Diffusion based on ODE and SDE Solvers".
On the deviation :math:`y = x - \mu` of a mean-reverting diffusion (:mod:`workbench.interpolants.mean_reverting`,
or any interpolant with a Gaussian part, μ = 0) the PF-ODE and reverse SDE are linear in y plus a model term, and
the linear part is integrated exactly in the log-SNR :math:`\lambda = \log(a/\sigma)`. With
:math:`h = \lambda_s - \lambda_t`, the model's data prediction :math:`D` or noise prediction :math:`\varepsilon`:

.. math::
    \text{ODE, data: } & y_s = \tfrac{\sigma_s}{\sigma_t} y_t + a_s(1 - e^{-h})\,\tilde D,\\
    \text{ODE, noise: } & y_s = \tfrac{a_s}{a_t} y_t - \sigma_s(e^{h} - 1)\,\tilde\varepsilon,\\
    \text{SDE, data: } & y_s = \tfrac{\sigma_s}{\sigma_t}e^{-h} y_t + a_s(1 - e^{-2h})\,\tilde D + \sigma_s\sqrt{1 - e^{-2h}}\,\xi,\\
    \text{SDE, noise: } & y_s = \tfrac{a_s}{a_t} y_t - 2\sigma_s(e^{h} - 1)\,\tilde\varepsilon + \sigma_s\sqrt{e^{2h} - 1}\,\xi,

where order 1 uses the current output (:math:`\tilde m = m_t`) and order 2 the multistep extrapolation
:math:`\tilde m = m_t + \tfrac{1}{2r}(m_t - m_{t'})`, :math:`r = h'/h` from the previous step (ODE; the SDE forms use
the "midpoint" weights :math:`\tfrac{1}{2r}` on the data side and :math:`\tfrac1r` on the noise side, as in SDE-DPM-Solver++(2M)).
The first step is order 1. One model call per step. ``mrs`` (ODE) has order = ``order`` where λ is finite at both
ends of the interval (a step from a = 0 or into σ = 0 is the exact limit h → ∞ of the first-order step, so on
linear [0, 1] order 2 drops to ≈ 1.5); ``mrs_sde`` (SDE, multistep ``history`` 1 or 2) has strong order 1.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import Exempt, FixedStepSolver, OrderCheck, register

KINDS = ("data", "noise")


class _MRSBase(FixedStepSolver):
    """Shared step of :class:`MRS` (ODE) and :class:`MRSSDE` (SDE); ``_k`` is the multistep order, ``_sde`` the kind."""

    evals_per_step = 1
    needs_gaussian = True
    _k: int = 2
    _sde: bool = False

    @staticmethod
    def _check(order, prediction, name: str = "order"):
        if isinstance(order, bool) or order not in (1, 2):
            raise ConfigError(name, f"must be 1 or 2, got {order!r}")
        if prediction not in KINDS:
            raise ConfigError("prediction", f"got {prediction!r}; allowed values are: {', '.join(KINDS)}")
        return int(order), prediction

    def step(self, field, x, t, t_next, index, state, generator):
        I = field.interpolant
        c, cn = I.coefficients(float(t)), I.coefficients(float(t_next))
        a_t, s_t, a_s, s_s = c.signal, c.sigma, cn.signal, cn.sigma
        if s_t <= 0.0 or a_s <= 0.0 or (a_t <= 0.0 and self.prediction == "noise"):
            raise ConfigError("t_start/t_end", f"an MRS step needs σ > 0 at its start and a > 0 at its end (and a > 0 at "
                                               f"its start for noise prediction); got a={a_t:.3g}, σ={s_t:.3g} at t={t:.6g}, "
                                               f"a={a_s:.3g} at t={t_next:.6g}")
        if s_s <= 0.0 and self.prediction == "noise":
            raise ConfigError("t_end", f"a noise-prediction MRS step cannot reach σ = 0 (t={t_next:.6g}); use "
                                       f"prediction='data' or stop earlier (e.g. t_end=0.99)")
        # h = λ_s − λ_t may be +∞ (from a = 0 or to σ = 0): the data-prediction step then is its exact limit
        # (first order there: the nominal order needs λ finite at both ends, e.g. [0.01, 0.99])
        lam_t = math.log(a_t / s_t) if a_t > 0.0 else -math.inf
        lam_s = math.log(a_s / s_s) if s_s > 0.0 else math.inf
        h = lam_s - lam_t
        pred = field.predict(x, t)
        m = pred.data if self.prediction == "data" else pred.noise
        order = 1
        prev = state.get("mrs_prev")
        if self._k == 2 and prev is not None and math.isfinite(h) and math.isfinite(prev[1]):
            m_prev, h_prev = prev
            r = h_prev / h
            w = (0.5 / r) if (self.prediction == "data" or not self._sde) else (1.0 / r)
            m_tilde, order = m + w * (m - m_prev), 2
        else:
            m_tilde = m
        state["mrs_prev"] = (m, h)
        if not self._sde:
            if self.prediction == "data":
                out = (s_s / s_t) * x + a_s * (-math.expm1(-h)) * m_tilde
            else:
                out = (a_s / a_t) * x - s_s * math.expm1(h) * m_tilde
            return out, pred, order
        if "noise" in state:
            xi = state["noise"](index, x)
        else:
            xi = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.prediction == "data":
            e2 = -math.expm1(-2.0 * h)
            out = (s_s / s_t) * math.exp(-h) * x + a_s * e2 * m_tilde + s_s * math.sqrt(e2) * xi
        else:
            out = (a_s / a_t) * x - 2.0 * s_s * math.expm1(h) * m + s_s * math.sqrt(math.expm1(2.0 * h)) * xi
            if order == 2:  # SDE-DPM-Solver(2M, midpoint): − σ (e^h − 1) (ε0 − ε1)/r
                out = out - s_s * math.expm1(h) * (m_tilde - m)
        return out, pred, 1


@register("mrs", "mean_reverting_sampler")
class MRS(_MRSBase):
    """MRS probability-flow ODE solver (see the module docstring).

    Args:
        order: 1 or 2 (the convergence order, on intervals where λ is finite at both ends).
        prediction: ``"data"`` (the paper's recommended, stable at few steps) or ``"noise"``.
    """

    # order 2 needs λ finite at both ends (vp [0, 0.99]); on linear [0, 1] it is ≈ 1.5 (module docstring)
    order_checks = (OrderCheck({"order": 1}), OrderCheck(paths=("vp",)),
                    OrderCheck({"order": 2, "prediction": "noise"}, paths=("vp",)),
                    OrderCheck({"order": 1, "prediction": "noise"}, paths=("vp",)))

    def __init__(self, order: int = 2, prediction: str = "data"):
        self.order, self.prediction = self._check(order, prediction)
        self._k = self.order


@register("mrs_sde")
class MRSSDE(_MRSBase):
    """MRS reverse-SDE solver (see the module docstring); strong order 1 whatever the multistep order.

    Args:
        history: 1 (first-order) or 2 (two-step multistep data/noise extrapolation, SDE-DPM-Solver(++)-2M style).
        prediction: ``"data"`` or ``"noise"``.

    A per-run ``state["noise"]`` callable ``(index, x) -> ξ`` replaces the generator's draws (common random numbers
    for strong-convergence checks).
    """

    order = 1
    stochastic = True
    _sde = True
    order_checks = Exempt("stochastic: strong order 1 on a shared Brownian path",
                          "tests/samplers/test_mean_reverting.py::test_mrs_sde_strong_order_one")

    def __init__(self, history: int = 2, prediction: str = "data"):
        self.history, self.prediction = self._check(history, prediction, "history")
        self._k = self.history

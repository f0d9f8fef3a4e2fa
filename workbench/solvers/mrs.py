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
The first step is order 1. One model call per step. ``mrs_sde`` (SDE, multistep ``history`` 1 or 2) has strong
order 1.

Grids reaching a = 0 or σ = 0 (λ = ∓∞, linear/mean-reverting [0, 1]). In the λ-form above a step into σ = 0 is only
the limit h → ∞ of the first-order step, and on a grid uniform in t the last steps stay O(1) in λ however many steps
are taken (λ_{N−k} − λ_{N−k−1} ≈ log((k+1)/k) on linear): the 2-step λ-extrapolation never becomes accurate there, and
the measured order of ``mrs`` order 2 on linear [0, 1] is 1.42–1.72 (32–512 steps; 1.97–2.02 on [0, 0.99], where λ is
finite) — an end-step effect, not a wrong coefficient (it equals DPM-Solver++(2M) with ``variable="log_snr"`` to the
last digit). The ODE solver's ``variable="auto"`` (default) therefore takes the steps of such grids in the variables
that stay smooth at those ends (:func:`workbench.solvers.log_snr.variable_step`: Adams steps on the data prediction in
u = a/σ on the noise half, on the noise prediction in ρ = σ/a on the data half; the two predictions then coincide),
which restores order 2 on linear [0, 1] (measured 1.97–2.00); on grids with finite λ the published λ-form is used
unchanged. ``variable="log_snr"`` keeps the λ-form everywhere (order ≈ 1.5 on such grids, as measured above).
On ``mean_reverting`` [0, 1] with a uniform t grid no solver keeps its order (σ ∝ √(1−t) at the data end: RK4 measures
2.4–3.7): use the ``logsnr`` schedule on [T0, T1], where ``mrs`` order 2 measures 2.0–2.2.
"""
from __future__ import annotations

import math

import torch

from .. import validation
from ..errors import ConfigError
from ..models.field import Prediction
from .base import Exempt, FixedStepSolver, OrderCheck, Step, register
from .log_snr import LogSNRTable, check_variable, split_form, step_region, usable_points, variable_step

KINDS = ("data", "noise")


def model_output(pred: Prediction, kind: str, x: torch.Tensor, a: float, sigma: float) -> torch.Tensor:
    r"""The data (``D``) or noise (``ε̂``) prediction with scalar fast paths:
    :math:`D = x/a - (\sigma/a)\hat\varepsilon`, :math:`\hat\varepsilon = x/\sigma - (a/\sigma) D` (two fused ops);
    anything else goes through the interpolant's conversions. The result is cached on ``pred``."""
    want = "x1" if kind == "data" else "noise"
    if pred.kind == want:
        return pred.value  # type: ignore[return-value]
    cache = pred._cache  # noqa: SLF001  (the Prediction's own conversion cache)
    if want in cache:
        return cache[want]
    if kind == "data" and pred.kind == "noise" and a > 0:
        out = torch.add(x * (1.0 / a), pred.value, alpha=-sigma / a)  # type: ignore[arg-type]
    elif kind == "noise" and pred.kind == "x1" and sigma > 0:
        out = torch.add(x * (1.0 / sigma), pred.value, alpha=-a / sigma)  # type: ignore[arg-type]
    else:
        out = pred.as_kind(want)
    cache[want] = out
    return out


class _MRSBase(FixedStepSolver):
    """Shared step of :class:`MRS` (ODE) and :class:`MRSSDE` (SDE); ``_k`` is the multistep order, ``_sde`` the kind."""

    evals_per_step = 1
    needs_gaussian = True
    _k: int = 2
    _sde: bool = False

    @staticmethod
    def _check(order, prediction, name: str = "order"):
        order = validation.one_of(name, order, (1, 2))
        if prediction not in KINDS:
            raise ConfigError("prediction", f"got {prediction!r}; allowed values are: {', '.join(KINDS)}")
        return int(order), prediction

    variable = "log_snr"

    def iterate(self, field, x, grid, generator=None):
        ts = grid.tolist()
        state = {"n_steps": len(ts) - 1, "grid": ts}
        for i in range(len(ts) - 1):
            x, pred, order = self.step(field, x, ts[i], ts[i + 1], i, state, generator)
            yield Step(i, ts[i], ts[i + 1], x, field.nfe, pred, True, order)

    def _split_step(self, field, x, index, state, tab):
        """A step of a grid reaching λ = ±∞ in u = a/σ or ρ = σ/a (module docstring; ``variable="auto"``)."""
        region = step_region(tab, index)
        pred = field.predict(x, tab.t[index])
        kind = "data" if region == "data" else "noise"
        history = state.setdefault("mrs_points", {})
        history[index] = (pred, x, tab.a[index], tab.sigma[index])
        k = min(self._k, usable_points(tab, index, region))
        cx, terms = variable_step(tab, index, list(range(k)), region)
        out = x * cx
        for lag, c, _ in terms:
            p, xp, ap, sp = history[index - lag]
            out = out.add_(model_output(p, kind, xp, ap, sp), alpha=c)
        for j in [j for j in history if j < index - 1]:
            del history[j]
        return out, pred, k

    def step(self, field, x, t, t_next, index, state, generator):
        I = field.interpolant
        if self.variable == "auto" and not self._sde and "grid" in state:
            tab = state.get("mrs_table")
            if tab is None:
                tab = state["mrs_table"] = LogSNRTable.build(I, state["grid"])
            if split_form(tab):
                return self._split_step(field, x, index, state, tab)
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
        order: 1 or 2 (the global convergence order; on grids reaching a = 0 or σ = 0 with ``variable="auto"``).
        prediction: ``"data"`` (the paper's recommended, stable at few steps) or ``"noise"`` (on grids reaching
            λ = ±∞ with ``variable="auto"`` both use the u/ρ forms and coincide).
        variable: ``"auto"`` (u/ρ forms on grids reaching λ = ±∞, nominal order) or ``"log_snr"`` (the published
            λ-form everywhere; order ≈ 1.5 on such grids).
    """

    # order 2 on linear [0, 1] with variable="auto" (u/ρ forms at λ = ∓∞); the λ-form ("log_snr") is ≈ 1.5 there
    order_checks = (OrderCheck({"order": 1}), OrderCheck(), OrderCheck({"order": 2, "prediction": "noise"}),
                    OrderCheck({"order": 1, "prediction": "noise"}, paths=("vp",)))

    def __init__(self, order: int = 2, prediction: str = "data", variable: str = "auto"):
        self.order, self.prediction = self._check(order, prediction)
        self.variable = check_variable(variable)
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

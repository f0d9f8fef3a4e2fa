r"""Shared machinery of the log-SNR (exponential-integrator) samplers: DPM-Solver(++), UniPC, DEIS, DPM-Solver-v3.

With :math:`x_t = a(t)x_1 + \sigma(t)\xi` and :math:`\lambda = \log(a/\sigma)` (increasing in t), the
probability-flow ODE has two exact variation-of-constants forms (Lu et al. 2022, eqs. 3.4 / Lu et al. 2022b, eq. 8):

.. math::
    x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\lambda_s}^{\lambda_t} e^{\lambda} D(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(data prediction } D = E[x_1|x]\text{)},

.. math::
    x_t = \frac{a_t}{a_s}x_s - a_t\int_{\lambda_s}^{\lambda_t} e^{-\lambda} \hat\varepsilon(x_\lambda,\lambda)\,d\lambda
    \qquad\text{(noise prediction } \hat\varepsilon = E[\xi|x]\text{)}.

Every fixed-step sampler here is *linear* in the state and in the stored model outputs, so it is written once as a
:class:`~workbench.solvers.plan.Plan` (python-float coefficients computed from the grid's :class:`LogSNRTable`) and run
by the one executor of :mod:`~workbench.solvers.plan`, which folds the D ↔ ε̂ conversion into the coefficients.
Multistep samplers give their per-step recurrence (:class:`LogSNRSolver.recurrence`); UniPC's corrector is folded
into the next predictor (:func:`fold_correctors`).

Endpoints: on a grid reaching :math:`a = 0` or :math:`\sigma = 0` (λ = ∓∞, the ends of linear/trig paths) the
samplers switch (``variable="auto"``) to Adams steps in :math:`u = a/\sigma` on the noise half and
:math:`\rho = \sigma/a` on the data half (:func:`variable_step`), where D and ε̂ are smooth, with a Newton–Cotes
restart of multistep methods out of :math:`a = 0` (:func:`restart_terms`): the global order stays nominal.
``variable="log_snr"`` keeps the published λ-form, whose steps touching λ = ±∞ are first order (DDIM), as in diffusers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from ..interpolants.base import Interpolant
from .base import LinearSolver
from .plan import Plan, PlanBuilder

#: Kinds of model output a log-SNR sampler extrapolates.
KINDS = ("data", "noise")

# Gauss–Legendre nodes on [0, 1] for the exponential-integrator weights (exact to ~1e-16 for h ≲ 30).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(40)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def check_choice(value: object, allowed: Sequence[object], field: str) -> object:
    """``value`` if it is one of ``allowed`` (no bool for integers), else a :class:`ConfigError` naming ``field``."""
    if isinstance(value, bool) or value not in allowed or type(value) is not type(allowed[0]):
        raise ConfigError(field, f"got {value!r}; allowed values are: {', '.join(map(str, allowed))}")
    return value


def check_kind(kind: str, field: str = "predict") -> str:
    """The extrapolated quantity: ``"data"`` (DPM-Solver++ style) or ``"noise"`` (DPM-Solver/DEIS style)."""
    return check_choice(kind, KINDS, field)  # type: ignore[return-value]


def check_order(order: object, allowed: Sequence[int], field: str = "order") -> int:
    """An integer order from ``allowed``."""
    return check_choice(order, tuple(allowed), field)  # type: ignore[return-value]


@dataclass(frozen=True)
class LogSNRTable:
    """The grid in log-SNR coordinates (python floats; ``lam`` may hold ±inf at the ends).

    Attributes:
        t: grid times. lam: :math:`\\lambda(t_i)`. a: signal :math:`a(t_i)`. sigma: :math:`\\sigma(t_i)`.
    """

    t: List[float]
    lam: List[float]
    a: List[float]
    sigma: List[float]
    #: q of the data-half variable :math:`\rho^q` (:func:`rho_power`): 2 where σ vanishes like a square root.
    rho_q: int = 1

    @staticmethod
    def build(interpolant: Interpolant, ts: Sequence[float]) -> "LogSNRTable":
        """Evaluate the coefficients on the grid once (float64)."""
        a, s, lam = [], [], []
        for t in ts:
            c = interpolant.coefficients(float(t))
            ai, si = float(c.signal), float(c.sigma)
            if ai < 0 or si < 0 or (ai == 0 and si == 0):
                raise ConfigError("interpolant", f"signal/noise coefficients are degenerate at t={t:.6g}")
            a.append(ai)
            s.append(si)
            lam.append(math.inf if si == 0 else (-math.inf if ai == 0 else math.log(ai) - math.log(si)))
        for i in range(len(lam) - 1):
            if not lam[i + 1] > lam[i]:
                raise ConfigError("grid", f"log-SNR must increase along the grid; λ({ts[i]:.6g})={lam[i]:.6g} "
                                          f">= λ({ts[i + 1]:.6g})={lam[i + 1]:.6g}")
        return LogSNRTable(list(map(float, ts)), lam, a, s, rho_power(list(map(float, ts)), a, s) if s[-1] == 0.0 else 1)

    def finite(self, i: int) -> bool:
        """True when λ at grid point ``i`` is finite."""
        return math.isfinite(self.lam[i])


def rho_power(t: Sequence[float], a: Sequence[float], sigma: Sequence[float]) -> int:
    r"""The power q ∈ {1, 2} of the data-half variable :math:`v = \rho^q` on a grid ending at :math:`\sigma = 0`:
    q = 2 where, at the scale of the grid's own last steps, σ vanishes like a square root and the grid is not refined
    towards that end, i.e. three or more steps, each of the last two ≥ ¾ of the one before (``uniform``), and

    .. math:: p = \frac{\log(\rho_{N-1}/\rho_{N-2})}{\log\big((t_N-t_{N-1})/(t_N-t_{N-2})\big)} < 0.7
       \qquad(\rho \sim (t_N - t)^p;\ p = ½ \text{ for Brownian-bridge latents } \gamma=\sqrt{a t(1-t)},\ ``sb``);

    else q = 1. Both are exact forms: on the data half :math:`y = x/a = x_1 + \rho\xi` and
    :math:`dy/d\rho = \hat\varepsilon = -\rho\,s(y, \rho^2)` (Tweedie; s the score of the data smoothed with variance
    ρ²), so :math:`\hat\varepsilon` is smooth in ρ and :math:`\hat\varepsilon/\rho` in :math:`\rho^2`. With p = ½ a
    grid uniform in t has a last step of length :math:`\sqrt h` in ρ, which caps a k-point method at global order
    (k+1)/2, but of length O(h) in :math:`\rho^2` (order k). Where the grid does not yet resolve the square-root zone
    (``vp`` to t = 1 below a few hundred steps: p ≈ 0.9) or refines that end itself (EDM, log-SNR grids), ρ is kept:
    the bounded :math:`\hat\varepsilon` extrapolates better at few steps than the score (measured on gmm2d: those
    grids at NFE 6–40 are up to 3× worse in :math:`\rho^2`)."""
    n = len(t) - 1
    if n < 3 or any(t[k] - t[k - 1] < 0.75 * (t[k - 1] - t[k - 2]) for k in (n, n - 1)):
        return 1
    if not (a[n - 1] > 0.0 and a[n - 2] > 0.0 and sigma[n - 1] > 0.0):
        return 1
    p = math.log(sigma[n - 1] * a[n - 2] / (a[n - 1] * sigma[n - 2])) / math.log((t[n] - t[n - 1]) / (t[n] - t[n - 2]))
    return 2 if p < 0.7 else 1


def ddim_coefficients(tab: LogSNRTable, i: int, j: int) -> Tuple[float, float]:
    r"""First-order (DDIM) step ``i → j`` in data form: :math:`x_j = c_x x_i + c_D D_i`,
    :math:`c_x = \sigma_j/\sigma_i`, :math:`c_D = a_j - c_x a_i = a_j(1 - e^{-h})` (finite at both ends)."""
    cx = tab.sigma[j] / tab.sigma[i]
    return cx, tab.a[j] - cx * tab.a[i]


def lagrange_basis(v, nodes: Sequence[float], j: int):
    r""":math:`\ell_j(v) = \prod_{k \ne j} (v - v_k)/(v_j - v_k)` at the points ``v`` (a numpy array or a tensor)."""
    out = v * 0 + 1
    for k, vk in enumerate(nodes):
        if k != j:
            out = out * (v - vk) / (nodes[j] - vk)
    return out


def exp_integrator_weights(h: float, nodes: Sequence[float], kind: str) -> List[float]:
    r"""Weights :math:`w_j` of :math:`\int_0^h K(u)\,P(u)\,du = \sum_j w_j m_j` where :math:`P` is the Lagrange
    polynomial through ``(nodes[j], m_j)`` (offsets in λ from the step start) and the kernel is
    :math:`K(u) = e^{-(h-u)}` for data prediction, :math:`e^{h-u}` for noise prediction (see module docstring,
    after pulling out :math:`a_t` resp. :math:`\sigma_t`). Evaluated by 40-point Gauss–Legendre quadrature."""
    u = h * _GL_X
    kern = np.exp(-(h - u)) if kind == "data" else np.exp(h - u)
    return [float(h * np.sum(_GL_W * kern * lagrange_basis(u, nodes, j))) for j in range(len(nodes))]


#: A step of a multistep recurrence: ``(order, c_x, [(lag, c, kind)])`` meaning
#: :math:`x_{i+1} = c_x x_i + \sum c\, m^{kind}_{i-lag}` (``lag = -1``: the output at the new point, for correctors).
LinearStep = Tuple[int, float, List[Tuple[int, float, str]]]


def split_form(tab: LogSNRTable) -> bool:
    """True when the grid reaches :math:`a = 0` or :math:`\\sigma = 0` (λ = ∓∞), where the log-SNR samplers switch to
    the variables that stay smooth at those ends (see :func:`variable_step`)."""
    return not (tab.finite(0) and tab.finite(len(tab.t) - 1))


def step_region(tab: LogSNRTable, i: int) -> str:
    r"""The form of step ``i → i+1`` on a grid reaching λ = ±∞: ``"data"`` (data prediction in :math:`u = a/\sigma`)
    on the noise half (and always out of :math:`a = 0`), ``"noise"`` (noise prediction in :math:`\rho = \sigma/a`)
    on the data half (and always into :math:`\sigma = 0`)."""
    if tab.a[i] == 0.0:
        return "data"
    if tab.sigma[i + 1] == 0.0:
        return "noise"
    return "data" if tab.lam[i] + tab.lam[i + 1] < 0.0 else "noise"


def region_variable(tab: LogSNRTable, i: int, region: str) -> float:
    r""":math:`u_i = a_i/\sigma_i` (data region) or :math:`v_i = \rho_i^q`, :math:`\rho_i = \sigma_i/a_i` (noise region,
    q = ``tab.rho_q``, :func:`rho_power`); ``inf`` where undefined."""
    num, den = (tab.a[i], tab.sigma[i]) if region == "data" else (tab.sigma[i], tab.a[i])
    if den == 0.0:
        return math.inf
    return num / den if region == "data" or tab.rho_q == 1 else (num / den) ** tab.rho_q


def region_jacobian(tab: LogSNRTable, v: float, region: str) -> float:
    r""":math:`d\rho/dv = 1/(q\,v^{1-1/q})` at :math:`v = \rho^q` in the noise region with q = 2 (the integrand
    :math:`\hat\varepsilon\,d\rho/dv = \hat\varepsilon/(2\rho)` is what is smooth in v); 1 otherwise (also
    where v = 0: only UniPC's corrector at the final point, σ = 0, has that node, and no later step folds
    it in, see :func:`fold_correctors`)."""
    if region == "data" or tab.rho_q == 1 or v == 0.0:
        return 1.0
    return 1.0 / (tab.rho_q * v ** (1.0 - 1.0 / tab.rho_q))


def region_log_snr(tab: LogSNRTable, v: float, region: str) -> float:
    """λ at the region variable ``v`` (:func:`region_variable`)."""
    return math.log(v) if region == "data" else -math.log(v) / tab.rho_q


def polynomial_weights(v0: float, v1: float, nodes: Sequence[float]) -> List[float]:
    r""":math:`w_j = \int_{v_0}^{v_1} \ell_j(v)\,dv` for the Lagrange basis :math:`\ell_j` through ``nodes`` (40-point
    Gauss–Legendre: exact to rounding for these low-degree polynomials)."""
    v = v0 + (v1 - v0) * _GL_X
    return [float((v1 - v0) * np.sum(_GL_W * lagrange_basis(v, nodes, j))) for j in range(len(nodes))]


def variable_step(tab: LogSNRTable, i: int, lags: Sequence[int], region: str) -> Tuple[float, List[Tuple[int, float, str]]]:
    r"""Adams-type exponential-integrator step ``i → i+1`` in the variable that is smooth at the nearby end.

    With :math:`u = a/\sigma = e^{\lambda}` and :math:`\rho = \sigma/a = e^{-\lambda}` the two exact forms of the
    probability-flow ODE (module docstring) become plain quadratures,

    .. math::
        x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i}x_i + \sigma_{i+1}\int_{u_i}^{u_{i+1}} D\,du,\qquad
        x_{i+1} = \frac{a_{i+1}}{a_i}x_i + a_{i+1}\int_{\rho_i}^{\rho_{i+1}} \hat\varepsilon\,d\rho ,

    and :math:`D` is analytic in :math:`u` at :math:`u = 0` (:math:`a = 0`) while :math:`\hat\varepsilon` is analytic in
    :math:`\rho` at :math:`\rho = 0` (:math:`\sigma = 0`): for :math:`y = x/a = x_1 + \rho\,\xi` the data enter only
    through Gaussian smoothing of width :math:`\rho`. A polynomial through the outputs at ``i - lag`` in that variable
    (``lag = -1``: the new point, an Adams–Moulton corrector) integrated exactly has local error :math:`O(h^{k+1})`
    with ``k`` points, so the global order survives the ends, where λ-polynomials (whose first and last steps are O(1)
    in λ however fine a uniform grid is) cap it at 2. In the interior the forms agree to the method's order.
    Where σ vanishes like a square root (``sb``) the data-half variable is :math:`v = \rho^2` and the polynomial is
    through :math:`\hat\varepsilon\,d\rho/dv = \hat\varepsilon/(2\rho)` (:func:`rho_power`, :func:`region_jacobian`).

    Returns ``(c_x, [(lag, c, kind)])`` with ``kind`` ``"x1"`` (data region) or ``"noise"``.
    """
    nodes = [region_variable(tab, i - g, region) for g in lags]
    v0, v1 = region_variable(tab, i, region), region_variable(tab, i + 1, region)
    if region == "data":
        cx, scale, kind = tab.sigma[i + 1] / tab.sigma[i], tab.sigma[i + 1], "x1"
    else:
        cx, scale, kind = tab.a[i + 1] / tab.a[i], tab.a[i + 1], "noise"
    w = polynomial_weights(v0, v1, nodes)
    return cx, [(g, scale * wg * region_jacobian(tab, vg, region), kind) for g, wg, vg in zip(lags, w, nodes)]


def usable_points(tab: LogSNRTable, i: int, region: str) -> int:
    """How many consecutive grid points ending at ``i`` have a finite variable for ``region``."""
    n = 0
    while i - n >= 0 and math.isfinite(region_variable(tab, i - n, region)):
        n += 1
    return n


def recurrence_plan(tab: LogSNRTable, steps: Sequence[LinearStep], label: str) -> Plan:
    """A multistep recurrence (one evaluation per step, at the step's start) as a :class:`Plan`."""
    b = PlanBuilder(tab.t, label)
    for i, (order, cx, terms) in enumerate(steps):
        k = b.evaluate(tab.t[i])
        b.advance([("x", k, cx)] + [(KIND_NAMES.get(kind, kind), k - lag, c) for lag, c, kind in terms],
                  step=i, order=order)
    return b.build()


#: The prediction names (as a Field spells them) of the extrapolated kinds.
KIND_NAMES = {"data": "x1", "noise": "noise"}


#: How a log-SNR sampler treats grids reaching a = 0 or σ = 0: ``"auto"`` switches to the u/ρ forms there
#: (:func:`variable_step`; nominal order), ``"log_snr"`` keeps the published λ-polynomials with first-order steps at
#: the infinite ends (as diffusers does; order capped at 2 on such grids).
VARIABLES = ("auto", "log_snr")


def check_variable(variable: str) -> str:
    """Validate the ``variable`` parameter of the log-SNR samplers."""
    return check_choice(variable, VARIABLES, "variable")  # type: ignore[return-value]


class LogSNRSolver(LinearSolver):
    """Base of the log-SNR samplers: a plan built from the grid's :class:`LogSNRTable`.

    Subclasses implement :meth:`recurrence` (one evaluation per step) or override :meth:`build_plan`.
    """

    needs_gaussian = True
    variable = "auto"

    def split(self, tab: LogSNRTable) -> bool:
        """True when this run uses the u/ρ forms (``variable="auto"`` on a grid reaching λ = ±∞)."""
        return self.variable == "auto" and split_form(tab)

    def recurrence(self, tab: LogSNRTable) -> List[LinearStep]:
        """The per-step linear update (override in multistep samplers)."""
        raise NotImplementedError

    def build_plan(self, interpolant, grid):
        tab = LogSNRTable.build(interpolant, grid)
        return recurrence_plan(tab, self.recurrence(tab), repr(self))


def final_cap(k: int, i: int, n: int, lower_order_final: bool, final_policy: str) -> int:
    """The ``lower_order_final`` policy at step ``i`` of ``n``: ``"dpm"`` uses order ≤ 1 on the last and ≤ 2 on the
    second-to-last step when the run has fewer than 15 steps (DPM-Solver++); ``"unipc"`` caps the order by the
    number of steps left (UniPC)."""
    if not lower_order_final:
        return k
    if final_policy == "unipc":
        return min(k, n - i)
    return k if n >= 15 else (1 if i == n - 1 else (min(k, 2) if i == n - 2 else k))


def multistep_orders(tab: LogSNRTable, order: int, lower_order_final: bool, final_policy: str = "dpm") -> List[int]:
    """The order used at each step of a multistep method (as in DPM-Solver++ / diffusers): warm-up with lower orders
    while history is short; history points at λ = −∞ are not usable; a step into λ = +∞ or out of λ = −∞ has
    order 1; then :func:`final_cap`."""
    n, orders, usable = len(tab.t) - 1, [], 0  # usable: consecutive finite-λ history points ending at the current one
    for i in range(n):
        usable = usable + 1 if tab.finite(i) else 0
        k = min(order, max(usable, 1)) if tab.finite(i) and tab.finite(i + 1) else 1
        orders.append(final_cap(k, i, n, lower_order_final, final_policy))
    return orders


def step_points(tab: LogSNRTable, points: int, lower_order_final: bool, final_policy: str = "dpm",
                split: Optional[bool] = None) -> List[int]:
    """Points of history used at each step of a multistep method (its order without a corrector): on grids with
    finite λ at both ends :func:`multistep_orders`; on grids reaching λ = ±∞ (:func:`split_form`) up to ``points``
    consecutive points whose variable (:func:`step_region`) is finite, then :func:`final_cap`."""
    if not (split_form(tab) if split is None else split):
        return multistep_orders(tab, points, lower_order_final, final_policy)
    n = len(tab.t) - 1
    return [1 if tab.a[i] == 0.0 and tab.sigma[i + 1] == 0.0 else
            max(final_cap(min(points, usable_points(tab, i, step_region(tab, i))), i, n, lower_order_final,
                          final_policy), 1) for i in range(n)]


def split_step(tab: LogSNRTable, i: int, points: int) -> Tuple[float, List[Tuple[int, float, str]]]:
    """The ``points``-point Adams step ``i → i+1`` of a split-form grid (DDIM for a single step from a = 0 to σ = 0)."""
    if tab.a[i] == 0.0 and tab.sigma[i + 1] == 0.0:
        cx, cd = ddim_coefficients(tab, i, i + 1)
        return cx, [(0, cd, "x1")]
    return variable_step(tab, i, list(range(points)), step_region(tab, i))


def restart_terms(tab: LogSNRTable, r: int) -> Optional[List[Tuple[int, float, str]]]:
    r"""The start out of :math:`a = 0` re-integrated once ``r + 1`` outputs exist: the state at grid point ``r``
    from the start state directly,

    .. math:: x_r = rac{\sigma_r}{\sigma_0}x_0 + \sigma_r\int_{u_0}^{u_r} P(u)\,du ,

    with :math:`P` the polynomial through :math:`D_0 \dots D_r` (Newton–Cotes on the evaluated points; local error
    :math:`O(h^{r+2})`). Multistep methods must start this accurately to keep their order, and a one-point first
    step out of :math:`a = 0` is only :math:`O(h^2)` (:math:`D` is linear in :math:`u` there). As terms of a
    replacing corrector for step ``r - 1`` (lags relative to it: the new point ``r`` is lag ``-1``, the start state is
    lag ``r - 1`` of kind ``"x"``), or None when the grid does not start at :math:`a = 0` or leaves the data region.
    """
    if r < 1 or tab.a[0] != 0.0 or any(step_region(tab, i) != "data" for i in range(r)) or tab.sigma[r] == 0.0:
        return None
    i = r - 1
    nodes = [region_variable(tab, k, "data") for k in range(r + 1)]
    w = polynomial_weights(nodes[0], nodes[r], nodes)
    terms = [(i, tab.sigma[r] / tab.sigma[0], "x")]
    return terms + [(i - k, tab.sigma[r] * wk, "x1") for k, wk in enumerate(w)]


def fold_correctors(preds: Sequence[Tuple[int, float, List[Tuple[int, float, str]]]],
                    corrs: Sequence[Optional[Tuple[Optional[float], List[Tuple[int, float, str]]]]]) -> List[LinearStep]:
    r"""Predictors ``(points, c_x, [(lag, c, kind)])`` and free correctors ``(c_x, [(lag, c, kind)])`` (``lag = -1``:
    the output at the predicted point, i.e. the next step's evaluation) as one recurrence on the evaluated states.

    Corrector and predictor of a step start from the same (corrected) state with the same :math:`c_x`, so
    :math:`x^c_i = 	ilde x_i + \sum_g (c^C_g - c^P_g) m_{i-1-g}` and
    :math:`	ilde x_{i+1} = c_x x^c_i + \sum_g c_g m_{i-g}` is linear in :math:`	ilde x_i` and the outputs: the
    corrected state is never formed (UniPC, Zhao et al. 2023; the warm-up of the split-form multistep samplers).
    A corrector with ``c_x = None`` *replaces* the state (its terms may include earlier states, kind ``"x"``):
    :func:`restart_terms`.
    """
    steps: List[LinearStep] = []
    for i, (k, cx, terms) in enumerate(preds):
        coef: dict = {}
        for g, c, kind in terms:
            coef[(g, kind)] = coef.get((g, kind), 0.0) + c
        own = cx
        if i > 0 and corrs[i - 1] is not None:
            cx_c, c_terms = corrs[i - 1]  # type: ignore[misc]
            if cx_c is None:  # the corrected state replaces the evaluated one
                own = 0.0
                extra = list(c_terms)
            else:
                _, cx_p, p_terms = preds[i - 1]
                if cx_c != cx_p:
                    raise ValueError("corrector and predictor must share the start point")
                extra = list(c_terms) + [(g, -c, kind) for g, c, kind in p_terms]
            for g, c, kind in extra:
                coef[(g + 1, kind)] = coef.get((g + 1, kind), 0.0) + cx * c
        steps.append((k + (1 if corrs[i] is not None else 0), own,
                      [(g, c, kind) for (g, kind), c in sorted(coef.items())]))
    return steps

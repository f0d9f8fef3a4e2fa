r"""The stochastic interpolant :math:`x_t = \alpha(t) x_0 + \beta(t) x_1 + \gamma(t) z`.

Time convention (used everywhere in the workbench): ``t = 0`` is the base (noise) end and
``t = 1`` the data end, as in flow_matching and Albergo, Boffi & Vanden-Eijnden (2023),
"Stochastic Interpolants: A Unifying Framework for Flows and Diffusions".

With a Gaussian base :math:`x_0 \sim N(0, I)` independent of :math:`z \sim N(0, I)`, the
two Gaussian terms merge, and every interpolant is a "diffusion" in disguise:

.. math::
    x_t \overset{d}{=} a(t)\, x_1 + \sigma(t)\, \xi,\qquad a = \beta,\quad
    \sigma = \sqrt{\alpha^2 + \gamma^2},\quad \xi \sim N(0, I).

For the mirror interpolant the base *is* the data (:math:`x_0 = x_1`), so :math:`a = \alpha+\beta`
and :math:`\sigma = \gamma`. All conversions between the quantities a model may predict go
through the pair (data denoiser :math:`D = E[x_1|x_t]`, score :math:`s = \nabla\log\rho_t`):

.. math::
    x = aD - \sigma^2 s, \qquad b = \dot a D - \sigma\dot\sigma\, s,\qquad
    E[\xi|x] = -\sigma s,\quad E[x_0|x] = -\alpha s,\quad E[z|x] = -\gamma s,

where :math:`b = E[\dot\alpha x_0 + \dot\beta x_1 + \dot\gamma z \mid x_t]` is the velocity.
Using the product :math:`\sigma\dot\sigma = \alpha\dot\alpha + \gamma\dot\gamma` (closed form,
finite even where :math:`\dot\gamma` is not) keeps the velocity finite on all of [0, 1].
"""
from __future__ import annotations

import math
import threading
import weakref
from abc import abstractmethod
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import torch

from ..config import Config
from ..errors import ConfigError
from ..utils import expand_like

TimeLike = Union[torch.Tensor, float]

#: Quantities a model may predict; ``"x1"`` is the data denoiser (diffusers' "sample"/x0-prediction),
#: ``"noise"`` is E[ξ|x] (diffusers' "epsilon"), ``"x0"`` and ``"z"`` are the base and latent denoisers.
PREDICTIONS: Tuple[str, ...] = ("velocity", "score", "x1", "noise", "x0", "z")
PREDICTION_ALIASES: Dict[str, str] = {"data": "x1", "eps": "noise", "epsilon": "noise", "v": "velocity"}


def canonical_prediction(kind: str, field: str = "prediction") -> str:
    """Normalise a prediction name (accepting aliases) or raise a clear error."""
    key = PREDICTION_ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if key not in PREDICTIONS:
        allowed = ", ".join(PREDICTIONS) + " (aliases: " + ", ".join(PREDICTION_ALIASES) + ")"
        raise ConfigError(field, f"got {kind!r}; allowed values are: {allowed}")
    return key


@dataclass(frozen=True)
class Coefficients:
    r"""Interpolant coefficients at a time (python floats or tensors, all broadcastable).

    Attributes:
        alpha, beta, gamma: :math:`\alpha(t), \beta(t), \gamma(t)`.
        d_alpha, d_beta: their time derivatives.
        gamma_dgamma: :math:`\gamma\dot\gamma` in closed form (finite where :math:`\dot\gamma` is not).
        signal, d_signal: :math:`a(t)` and :math:`\dot a(t)` of the merged form :math:`x_t = a x_1 + \sigma\xi`.
        sigma, sigma_dsigma: :math:`\sigma(t)` and :math:`\sigma\dot\sigma`.
    """

    alpha: TimeLike
    beta: TimeLike
    gamma: TimeLike
    d_alpha: TimeLike
    d_beta: TimeLike
    gamma_dgamma: TimeLike
    signal: TimeLike
    d_signal: TimeLike
    sigma: TimeLike
    sigma_dsigma: TimeLike


class Interpolant(Config):
    r"""Base class: subclasses give :math:`\alpha, \beta, \dot\alpha, \dot\beta` (and optionally
    :math:`\gamma, \gamma\dot\gamma`) as functions of a float64 tensor ``t``.

    An interpolant is an immutable value (:class:`~workbench.config.Config`): its parameters are its constructor's
    arguments, equal parameters mean an equal (and equally hashed) interpolant, and ``replace(...)`` makes a new one.
    Python-float coefficients are cached per *value* (shared by equal interpolants, holding no reference to them).

    Attributes:
        gaussian_base: True when :math:`x_0 \sim N(0, I)`; False for the mirror interpolant (base = data).
        name: the registry name (set by the registry).
    """

    gaussian_base: bool = True
    monotone_snr: bool = True
    name: str = "interpolant"

    # ---- the family: override these -------------------------------------------------------
    @abstractmethod
    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\alpha(t)`, the coefficient of the base sample x0."""

    @abstractmethod
    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\beta(t)`, the coefficient of the data sample x1."""

    @abstractmethod
    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\dot\\alpha(t)`."""

    @abstractmethod
    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\dot\\beta(t)`."""

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\gamma(t)`, the coefficient of the latent z (0 unless overridden)."""
        return torch.zeros_like(t)

    def d_gamma(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\dot\\gamma(t)` (may be infinite at the ends for :math:`\\gamma=\\sqrt{a t(1-t)}`)."""
        return torch.zeros_like(t)

    def gamma_dgamma(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\gamma\\dot\\gamma` in closed form."""
        return self.gamma(t) * self.d_gamma(t)

    def _after_freeze(self) -> None:
        # a value-keyed cache shared by equal interpolants; a private one when the value is an identity
        self._float_cache = _FloatCache() if self.__dict__["_config_by_identity"] else _float_cache_for(self.config_key())

    # ---- derived quantities -----------------------------------------------------------------
    def coefficients(self, t: TimeLike) -> Coefficients:
        """All coefficients at ``t`` (tensor of any shape, or a float → cached python floats).

        Tensor ``t`` is evaluated in float64 and the result cast back to ``t``'s dtype, so
        coefficients are exact to float64 even for float32 states.
        """
        if not isinstance(t, torch.Tensor):
            if type(t) is not float:
                t = float(t)
            c = self._float_cache.get(t)
            return c if c is not None else self._coefficients_at(t)
        tt = t.to(torch.float64)
        c = self._tensor_coefficients(tt)
        if t.dtype != torch.float64 and t.is_floating_point():
            c = Coefficients(*(v.to(t.dtype) for v in c.__dict__.values()))
        return c

    def _tensor_coefficients(self, t: torch.Tensor) -> Coefficients:
        al, be, ga = self.alpha(t), self.beta(t), self.gamma(t)
        dal, dbe, gdg = self.d_alpha(t), self.d_beta(t), self.gamma_dgamma(t)
        if self.gaussian_base:
            signal, d_signal = be, dbe
            sigma = torch.sqrt(al * al + ga * ga)
            sds = al * dal + gdg
        else:
            signal, d_signal = al + be, dal + dbe
            sigma, sds = ga, gdg
        return Coefficients(al, be, ga, dal, dbe, gdg, signal, d_signal, sigma, sds)

    def _coefficients_at(self, t: float) -> Coefficients:
        """Python-float coefficients at the scalar ``t`` (cached per value of the interpolant)."""
        cache = self._float_cache
        c = cache.get(t)
        if c is None:
            t = float(t)
            c = self._tensor_coefficients(torch.tensor(t, dtype=torch.float64))
            c = Coefficients(*(float(v) for v in c.__dict__.values()))
            if len(cache) >= _FLOAT_CACHE_SIZE:
                cache.clear()  # bounded; a concurrent reader just recomputes
            cache[t] = c
        return c

    def log_snr(self, t: TimeLike) -> TimeLike:
        r""":math:`\lambda(t) = \log(a(t)/\sigma(t))`, increasing from the base to the data end."""
        c = self.coefficients(t)
        if isinstance(t, torch.Tensor):
            return torch.log(c.signal) - torch.log(c.sigma)
        return _safe_log(c.signal) - _safe_log(c.sigma)

    def log_snr_range(self, lo: float = 0.0, hi: float = 1.0) -> Tuple[float, float]:
        r""":math:`(\lambda(lo), \lambda(hi))`, the log-SNR values the interpolant takes on ``[lo, hi]``
        (``±inf`` where the signal or the noise vanishes)."""
        return float(self.log_snr(float(lo))), float(self.log_snr(float(hi)))

    def t_from_log_snr(self, lam: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        r"""Invert :math:`\lambda(t)` on ``[lo, hi]``: closed form where the family has one
        (:meth:`_t_from_log_snr_closed`), else bisection in float64 (60 halvings ≈ 1e-18).

        Raises:
            ConfigError: some ``lam`` lies outside :math:`[\lambda(lo), \lambda(hi)]` (beyond round-off); the
                message names the value and the range. Nothing is clamped silently.
        """
        lam = torch.as_tensor(lam, dtype=torch.float64)
        self._check_log_snr_range(lam, lo, hi)
        closed = self._t_from_log_snr_closed(lam)
        if closed is not None:
            return closed.clamp(lo, hi)
        return self._t_from_log_snr_bisect(lam, lo, hi)

    def _check_log_snr_range(self, lam: torch.Tensor, lo: float, hi: float) -> None:
        if lam.numel() == 0:
            return
        l_lo, l_hi = self.log_snr_range(lo, hi)
        if bool(torch.isnan(lam).any()):
            raise ConfigError("log_snr", f"got NaN; the {self.name!r} interpolant's log-SNR range on t ∈ [{lo:g}, {hi:g}] "
                                         f"is [{l_lo!r}, {l_hi!r}]")
        tol = 1e-9
        vmin, vmax = float(lam.min()), float(lam.max())
        for v in (vmin, vmax):
            below = v < l_lo - tol * (1.0 + abs(l_lo)) if math.isfinite(l_lo) else False
            above = v > l_hi + tol * (1.0 + abs(l_hi)) if math.isfinite(l_hi) else False
            if below or above:
                raise ConfigError(
                    "log_snr",
                    f"{v!r} is outside the log-SNR range [{l_lo!r}, {l_hi!r}] of {self!r} on t ∈ [{lo:g}, {hi:g}]; "
                    "use an interpolant whose range covers it (e.g. one built from the model's own noise schedule) "
                    "or a start time inside the range",
                )

    def _t_from_log_snr_closed(self, lam: torch.Tensor) -> Optional[torch.Tensor]:
        """Closed-form inverse of the log-SNR (None: use bisection)."""
        return None

    def _t_from_log_snr_bisect(self, lam: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        lam = lam.to(torch.float64)
        a = torch.full_like(lam, lo)
        b = torch.full_like(lam, hi)
        for _ in range(60):
            m = 0.5 * (a + b)
            up = self.log_snr(m) < lam
            a = torch.where(up, m, a)
            b = torch.where(up, b, m)
        return 0.5 * (a + b)

    # ---- sampling the path (training) -------------------------------------------------------
    def interpolate(
        self, x0: torch.Tensor, x1: torch.Tensor, t: TimeLike, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        r""":math:`x_t = \alpha(t) x_0 + \beta(t) x_1 + \gamma(t) z` (z only used when :math:`\gamma\neq0`).

        Args:
            x0, x1: base and data samples of shape ``(B, ...)``.
            t: a float, a 0-dim tensor or a ``(B,)`` tensor.
            z: latent noise ``(B, ...)``; required when the interpolant has a :math:`\gamma` term.
        """
        c = self.coefficients(t)
        al, be, ga = (expand_like(v, x0) for v in (c.alpha, c.beta, c.gamma))
        xt = al * x0 + be * x1
        if z is not None:
            xt = xt + ga * z
        return xt

    def time_derivative(
        self, x0: torch.Tensor, x1: torch.Tensor, t: TimeLike, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        r""":math:`\partial_t x_t = \dot\alpha x_0 + \dot\beta x_1 + \dot\gamma z` — the velocity regression target.

        Use ``t`` in the open interval (0, 1) when :math:`\gamma` has a square-root profile.
        """
        tt = t if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=torch.float64)
        t64 = tt.to(torch.float64)
        dal, dbe = self.d_alpha(t64).to(x0.dtype), self.d_beta(t64).to(x0.dtype)
        out = expand_like(dal, x0) * x0 + expand_like(dbe, x0) * x1
        if z is not None:
            out = out + expand_like(self.d_gamma(t64).to(x0.dtype), x0) * z
        return out

    # ---- conversions between predictions ----------------------------------------------------
    def to_data_and_score(
        self, value: torch.Tensor, x: torch.Tensor, t: TimeLike, source: str
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""Convert a prediction of kind ``source`` at ``(x, t)`` to the pair (D, s).

        .. math::
            \text{velocity: } \begin{pmatrix}\dot a & -\sigma\dot\sigma\\ a & -\sigma^2\end{pmatrix}
            \begin{pmatrix}D\\ s\end{pmatrix} = \begin{pmatrix}b\\ x\end{pmatrix};\quad
            \text{score: } D = (x + \sigma^2 s)/a;\quad \text{x1: } s = -(x - aD)/\sigma^2;\quad
            \text{noise: } s = -\eta_\xi/\sigma;\quad \text{x0: } s = -\eta_0/\alpha;\quad \text{z: } s = -\eta_z/\gamma.
        """
        source = canonical_prediction(source, "source")
        c = self.coefficients(t)
        a, da, sig, sds = (expand_like(v, x) for v in (c.signal, c.d_signal, c.sigma, c.sigma_dsigma))
        if source == "velocity":
            det = a * sds - da * sig * sig
            data = (sds * x - sig * sig * value) / det
            score = (da * x - a * value) / det
            return data, score
        if source == "x1":
            return value, -(x - a * value) / (sig * sig)
        if source == "score":
            score = value
        elif source == "noise":
            score = -value / sig
        elif source == "x0":
            self._require_gaussian_base("x0")
            score = -value / expand_like(c.alpha, x)
        else:  # z
            score = -value / expand_like(c.gamma, x)
        return (x + sig * sig * score) / a, score

    def conversion_singularity(self, source: str, target: str, t: float) -> Optional[str]:
        """Why converting ``source`` → ``target`` at the scalar time ``t`` is undefined, or None when it is fine.

        A data (x1) prediction carries no score where σ = 0, a noise/score prediction carries no data estimate
        where a = 0, and the velocity ↔ (D, s) map is singular where :math:`a\,\sigma\dot\sigma = \dot a\sigma^2`.
        Samplers call this with python-float times (no host sync) to fail with a clear message instead of NaN.
        """
        source, target = canonical_prediction(source, "source"), canonical_prediction(target, "target")
        if source == target:
            return None
        c = self._coefficients_at(float(t))
        need_d = target == "x1" or (target == "velocity" and c.d_signal != 0.0)
        # b = ȧD − σσ̇ s: where σ = 0 the score is infinite and σσ̇ s is a 0·∞ form, so s is needed there too
        need_s = target in ("score", "noise", "x0", "z") or (
            target == "velocity" and (c.sigma_dsigma != 0.0 or c.sigma == 0.0))
        if source == "velocity":
            bad = c.signal * c.sigma_dsigma - c.d_signal * c.sigma ** 2 == 0.0
            return f"a velocity prediction determines neither data nor score at t={t:g}" if bad else None
        zero_for_s = {"x1": c.sigma, "noise": c.sigma, "x0": c.alpha, "z": c.gamma}.get(source)
        if need_s and zero_for_s is not None and zero_for_s == 0.0:
            return f"a {source!r} prediction determines no score/velocity at t={t:g}, where its coefficient is 0"
        if need_d and source != "x1" and c.signal == 0.0:
            return f"a {source!r} prediction determines no data estimate at t={t:g}, where the signal a(t) = 0"
        if need_d and source in ("x0", "z") and zero_for_s == 0.0:
            return f"a {source!r} prediction determines nothing at t={t:g}, where its coefficient is 0"
        return None

    def from_data_and_score(
        self, data: torch.Tensor, score: torch.Tensor, t: TimeLike, target: str
    ) -> torch.Tensor:
        r"""Build the prediction of kind ``target`` from (D, s): :math:`b = \dot a D - \sigma\dot\sigma s`,
        :math:`\eta_\xi = -\sigma s`, :math:`\eta_0 = -\alpha s`, :math:`\eta_z = -\gamma s`."""
        target = canonical_prediction(target, "target")
        if target == "x1":
            return data
        if target == "score":
            return score
        c = self.coefficients(t)
        if target == "velocity":
            return expand_like(c.d_signal, data) * data - expand_like(c.sigma_dsigma, data) * score
        if target == "noise":
            return -expand_like(c.sigma, data) * score
        if target == "x0":
            self._require_gaussian_base("x0")
            return -expand_like(c.alpha, data) * score
        return -expand_like(c.gamma, data) * score

    def convert(self, value: torch.Tensor, x: torch.Tensor, t: TimeLike, source: str, target: str) -> torch.Tensor:
        """Convert a prediction of kind ``source`` to kind ``target`` (see :data:`PREDICTIONS`)."""
        source, target = canonical_prediction(source, "source"), canonical_prediction(target, "target")
        if source == target:
            return value
        data, score = self.to_data_and_score(value, x, t, source)
        return self.from_data_and_score(data, score, t, target)

    # named one-way conversions (flow_matching style) ----------------------------------------
    def velocity_to_score(self, v: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Score from velocity (see :meth:`to_data_and_score`)."""
        return self.convert(v, x, t, "velocity", "score")

    def score_to_velocity(self, s: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Velocity from score: :math:`b = (\\dot a/a)(x + \\sigma^2 s) - \\sigma\\dot\\sigma s`."""
        return self.convert(s, x, t, "score", "velocity")

    def noise_to_velocity(self, eps: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Velocity from the noise denoiser E[ξ|x]."""
        return self.convert(eps, x, t, "noise", "velocity")

    def velocity_to_noise(self, v: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Noise denoiser E[ξ|x] from velocity."""
        return self.convert(v, x, t, "velocity", "noise")

    def data_to_velocity(self, d: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Velocity from the data denoiser E[x1|x]."""
        return self.convert(d, x, t, "x1", "velocity")

    def velocity_to_data(self, v: torch.Tensor, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Data denoiser E[x1|x] from velocity."""
        return self.convert(v, x, t, "velocity", "x1")

    def _require_gaussian_base(self, what: str) -> None:
        if not self.gaussian_base:
            raise ConfigError("prediction", f"{what!r} is not defined for the {self.name!r} interpolant (its base is the data)")

    # ---- base distribution --------------------------------------------------------------------
    def sample_base(self, shape, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
        """Draw :math:`x_0 \\sim N(0, I)` (only for interpolants with a Gaussian base)."""
        self._require_gaussian_base("sample_base")
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def _safe_log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


_FLOAT_CACHE_SIZE = 65536


class TabulatedInterpolant(Interpolant):
    """An interpolant whose :meth:`_tensor_coefficients` computes all coefficients at once (tables, splines, closed
    forms sharing intermediate values): α, β and their derivatives are read off it."""

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self._tensor_coefficients(t).alpha

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self._tensor_coefficients(t).beta

    def d_alpha(self, t: torch.Tensor) -> torch.Tensor:
        return self._tensor_coefficients(t).d_alpha

    def d_beta(self, t: torch.Tensor) -> torch.Tensor:
        return self._tensor_coefficients(t).d_beta


class _FloatCache(dict):
    """t → python-float :class:`Coefficients` for one interpolant *value* (weak-referenceable dict)."""

    __slots__ = ("__weakref__",)


#: one float cache per interpolant value, alive while some equal interpolant is; keyed on the value
#: ``(type, params)``, so it holds no reference to any interpolant and equal interpolants share it.
_FLOAT_CACHES: "weakref.WeakValueDictionary[tuple, _FloatCache]" = weakref.WeakValueDictionary()
_FLOAT_CACHES_LOCK = threading.Lock()


def _float_cache_for(key: tuple) -> _FloatCache:
    try:
        hash(key)
    except TypeError:  # a parameter without value semantics: a private cache for this instance
        return _FloatCache()
    with _FLOAT_CACHES_LOCK:
        cache = _FLOAT_CACHES.get(key)
        if cache is None:
            cache = _FloatCache()
            _FLOAT_CACHES[key] = cache
        return cache


def check_positive(field: str, value: float, strict: bool = True) -> float:
    """Validate a numeric parameter: finite and > 0 (or ≥ 0 with ``strict=False``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ConfigError(field, f"must be {'> 0' if strict else '>= 0'} and finite, got {value!r}")
    return v

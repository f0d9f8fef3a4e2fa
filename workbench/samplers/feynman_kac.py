r"""Feynman–Kac correctors: SMC over SDE particles for annealed, product and reward-tilted targets.

Skreta, Akhound-Sadegh, Ohanesian, Bondesan, Aspuru-Guzik, Doucet, Brekelmans, Tong, Neklyudov (2025),
"Feynman-Kac Correctors in Diffusion: Annealing, Guidance, and Product of Experts".

Particles follow :math:`dX = u(t, X)\,dt + \sqrt{2\varepsilon}\,dW` and carry log-weights with
:math:`d\log w = g(t, X)\,dt`. For a target path :math:`q_t \propto e^{\phi_t}` the weighted particles have the
(unnormalised) law :math:`e^{\phi_t}` exactly when

.. math:: g = \partial_t\phi + \nabla\!\cdot u + u\cdot\nabla\phi - \varepsilon\big(\Delta\phi + \|\nabla\phi\|^2\big)

(Fokker–Planck of the SDE plus the Feynman–Kac reweighting). With the model's PF velocity ``b`` and score ``s``
(:math:`\partial_t\log\rho_t = -\nabla\cdot b - b\cdot s`) the drifts below cancel every divergence and Laplacian,
leaving weights computable from model outputs alone:

* annealing :math:`\phi = \beta\log\rho_t`: :math:`u = \beta(b + \varepsilon s)`, :math:`g = \beta(\beta-1)\,b\cdot s`;
* product :math:`\phi = \log\rho^1_t + \log\rho^2_t`: :math:`u = b^1 + b^2 + \varepsilon(s^1 + s^2)`, :math:`g = b^1\cdot s^2 + b^2\cdot s^1`;
* reward tilting :math:`\phi = \log\rho_t + \lambda_t r`: :math:`u = b + \varepsilon(s + \lambda_t\nabla r)`, :math:`g = \dot\lambda_t r + \lambda_t\, b\cdot\nabla r`.

The particles start from the exact :math:`q_{t_0}` (the base end, where :math:`\rho_{t_0} = N(0, \sigma_0^2 I)`), are
stepped by Euler–Maruyama with left-point weights, and are resampled (systematic) whenever the effective sample size
falls below ``ess_threshold · n``. The normaliser :math:`Z_1 = \int e^{\phi_1}` is estimated as
:math:`Z_{t_0}\prod_{\text{stages}} \tfrac1n\sum_i w_i`.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field as dc_field
from typing import Callable, List, Optional, Tuple

import torch

from .. import validation
from ..errors import ConfigError
from ..models.field import Field
from ..models.gmm import GaussianMixture
from ..schedules.base import SCHEDULES
from ..solvers.sde import check_eps
from .counting import clear_stale_budget
from .registry import register


# ---- closed-form ground truth -------------------------------------------------------------------------
def product_of_mixtures(g1: GaussianMixture, g2: GaussianMixture) -> Tuple[GaussianMixture, float]:
    r"""The normalised product :math:`p^1p^2/Z` of two Gaussian mixtures and :math:`\log Z`:

    .. math:: \textstyle p^1p^2 = \sum_{ij} w_i v_j\, N(\mu_i;\nu_j, \Sigma_i + S_j)\, N(x; m_{ij}, C_{ij}),\quad
              C_{ij} = (\Sigma_i^{-1} + S_j^{-1})^{-1},\ m_{ij} = C_{ij}(\Sigma_i^{-1}\mu_i + S_j^{-1}\nu_j).
    """
    if g1.dim != g2.dim:
        raise ConfigError("gmm", f"dimensions differ: {g1.dim} and {g2.dim}")
    A, B = g1.covs, g2.covs
    means, covs, logw = [], [], []
    for i in range(g1.n_components):
        for j in range(g2.n_components):
            Ai, Bj = torch.linalg.inv(A[i]), torch.linalg.inv(B[j])
            C = torch.linalg.inv(Ai + Bj)
            C = 0.5 * (C + C.T)
            means.append(C @ (Ai @ g1.means[i] + Bj @ g2.means[j]))
            covs.append(C)
            S = A[i] + B[j]
            logw.append(g1.log_weights[i] + g2.log_weights[j]
                        + torch.distributions.MultivariateNormal(g2.means[j], S).log_prob(g1.means[i]))
    lw = torch.stack(logw)
    log_z = torch.logsumexp(lw, 0)
    return GaussianMixture(torch.stack(means), torch.stack(covs), torch.exp(lw - log_z)), float(log_z)


def gaussian_power(mean: torch.Tensor, cov: torch.Tensor, beta: float) -> Tuple[torch.Tensor, torch.Tensor, float]:
    r""":math:`N(\mu,\Sigma)^\beta/Z = N(\mu, \Sigma/\beta)`, :math:`\log Z = \tfrac{1-\beta}{2}\log|2\pi\Sigma| - \tfrac d2\log\beta`."""
    d = mean.shape[0]
    logdet = torch.logdet(2 * math.pi * cov)
    return mean, cov / beta, float(0.5 * (1 - beta) * logdet - 0.5 * d * math.log(beta))


# ---- targets ------------------------------------------------------------------------------------------------
class FKTarget(ABC):
    """A Feynman–Kac target path :math:`q_t \\propto e^{\\phi_t}` over one or more model fields."""

    fields: Tuple[Field, ...]

    @property
    def interpolant(self):
        return self.fields[0].interpolant

    @abstractmethod
    def start(self, n: int, shape: Tuple[int, ...], t0: float, generator: torch.Generator, dtype, device) -> torch.Tensor:
        """``n`` exact samples of :math:`q_{t_0}`."""

    @abstractmethod
    def log_z_start(self, dim: int, t0: float) -> float:
        """:math:`\\log\\int e^{\\phi_{t_0}}`."""

    @abstractmethod
    def drift_and_rate(self, x: torch.Tensor, t: float, eps: float, t0: float, t1: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """The drift ``u`` ``(B, ...)`` and the log-weight rate ``g`` ``(B,)`` at ``(x, t)``."""

    def _sigma0(self, t0: float) -> float:
        c = self.interpolant.coefficients(float(t0))
        if not self.interpolant.gaussian_base or abs(c.signal) > 1e-8:
            raise ConfigError("t_start", f"Feynman–Kac SMC starts from the exact base law, which needs a(t_start) = 0 "
                                         f"(a Gaussian base end); {self.interpolant.name!r} has a({t0:g}) = {c.signal:.3g}")
        return float(c.sigma)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


@register("fk_anneal", "anneal")
class Annealed(FKTarget):
    r"""Annealing :math:`q_t \propto \rho_t^\beta`: :math:`u = \beta(b + \varepsilon s)`, :math:`g = \beta(\beta-1)\,b\cdot s`."""

    def __init__(self, field: Field, beta: float = 2.0):
        if not (isinstance(beta, (int, float)) and beta > 0 and math.isfinite(beta)):
            raise ConfigError("beta", f"must be a finite number > 0, got {beta!r}")
        self.fields, self.beta = (field,), float(beta)

    def start(self, n, shape, t0, generator, dtype, device):
        s0 = self._sigma0(t0) / math.sqrt(self.beta)
        return s0 * torch.randn((n, *shape), generator=generator, dtype=dtype).to(device)

    def log_z_start(self, dim, t0):
        s0 = self._sigma0(t0)
        return 0.5 * (1 - self.beta) * dim * math.log(2 * math.pi * s0 ** 2) - 0.5 * dim * math.log(self.beta)

    def drift_and_rate(self, x, t, eps, t0, t1):
        p = self.fields[0].predict(x, t)
        b, s = p.velocity, p.score
        return self.beta * (b + eps * s), self.beta * (self.beta - 1.0) * _dot(b, s)


@register("fk_product", "product")
class Product(FKTarget):
    r"""Product of experts :math:`q_t \propto \rho^1_t\rho^2_t`: :math:`u = b^1+b^2+\varepsilon(s^1+s^2)`, :math:`g = b^1\cdot s^2 + b^2\cdot s^1`."""

    def __init__(self, field1: Field, field2: Field):
        if field1.interpolant is not field2.interpolant and repr(field1.interpolant) != repr(field2.interpolant):
            raise ConfigError("field2", "both experts must use the same interpolant")
        self.fields = (field1, field2)

    def start(self, n, shape, t0, generator, dtype, device):
        return self._sigma0(t0) / math.sqrt(2.0) * torch.randn((n, *shape), generator=generator, dtype=dtype).to(device)

    def log_z_start(self, dim, t0):
        return -0.5 * dim * math.log(4 * math.pi * self._sigma0(t0) ** 2)

    def drift_and_rate(self, x, t, eps, t0, t1):
        p1, p2 = self.fields[0].predict(x, t), self.fields[1].predict(x, t)
        b1, s1, b2, s2 = p1.velocity, p1.score, p2.velocity, p2.score
        return b1 + b2 + eps * (s1 + s2), _dot(b1, s2) + _dot(b2, s1)


@register("fk_reward", "reward")
class RewardTilted(FKTarget):
    r"""Reward tilting :math:`q_t \propto \rho_t e^{\lambda_t r}`, :math:`\lambda_t = (t-t_0)/(t_1-t_0)`:
    :math:`u = b + \varepsilon(s + \lambda_t\nabla r)`, :math:`g = \dot\lambda_t r + \lambda_t b\cdot\nabla r`.

    Args:
        field: the model.
        reward: ``r(x) -> (B,)``, differentiable in ``x`` (its gradient is taken by autograd).
    """

    def __init__(self, field: Field, reward: Callable[[torch.Tensor], torch.Tensor]):
        if not callable(reward):
            raise ConfigError("reward", f"must be callable r(x) -> (B,), got {type(reward).__name__}")
        self.fields, self.reward = (field,), reward

    def start(self, n, shape, t0, generator, dtype, device):
        return self._sigma0(t0) * torch.randn((n, *shape), generator=generator, dtype=dtype).to(device)

    def log_z_start(self, dim, t0):
        self._sigma0(t0)
        return 0.0

    def reward_and_grad(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            r = self.reward(xr)
            if r.shape != (x.shape[0],):
                raise ConfigError("reward", f"must return shape ({x.shape[0]},), got {tuple(r.shape)}")
            (grad,) = torch.autograd.grad(r.sum(), xr)
        return r.detach(), grad

    def drift_and_rate(self, x, t, eps, t0, t1):
        p = self.fields[0].predict(x, t)
        b, s = p.velocity, p.score
        lam, dlam = (t - t0) / (t1 - t0), 1.0 / (t1 - t0)
        r, gr = self.reward_and_grad(x)
        return b + eps * (s + lam * gr), dlam * r + lam * _dot(b, gr)


# ---- the particle system ----------------------------------------------------------------------------------
@dataclass
class SMCResult:
    """Outcome of :func:`smc` for ``R`` independent particle systems of ``n`` particles.

    Attributes:
        x: ``(R, n, ...)`` final particles.
        log_weights: ``(R, n)`` final log-weights (self-normalise them for expectations).
        log_normalizer: ``(R,)`` estimates of :math:`\\log\\int e^{\\phi_{t_1}}`.
        ess: ``(steps + 1, R)`` effective sample size before each resampling decision.
        resampled: number of resampling events per system ``(R,)``.
        nfe: model calls per system (each counts one batched call per field and step).
        times: the grid.
    """

    x: torch.Tensor
    log_weights: torch.Tensor
    log_normalizer: torch.Tensor
    ess: torch.Tensor
    resampled: torch.Tensor
    nfe: int
    times: torch.Tensor
    info: dict = dc_field(default_factory=dict)

    def weights(self) -> torch.Tensor:
        """Self-normalised weights ``(R, n)``."""
        return torch.softmax(self.log_weights, dim=1)

    def mean(self) -> torch.Tensor:
        """Weighted mean per system ``(R, ...)``."""
        w = self.weights()
        return torch.einsum("rn,rn...->r...", w, self.x)

    def covariance(self) -> torch.Tensor:
        """Weighted covariance per system ``(R, d, d)`` (flat states)."""
        w = self.weights()
        xf = self.x.flatten(2)
        m = torch.einsum("rn,rnd->rd", w, xf)
        c = xf - m[:, None]
        return torch.einsum("rn,rnd,rne->rde", w, c, c)


def ess(log_w: torch.Tensor) -> torch.Tensor:
    """Effective sample size :math:`(\\sum w)^2/\\sum w^2` per row."""
    return torch.exp(2 * torch.logsumexp(log_w, 1) - torch.logsumexp(2 * log_w, 1))


def systematic_resample(log_w: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Systematic resampling indices ``(R, n)``: one uniform offset per row, positions ``(u + i)/n``."""
    R, n = log_w.shape
    w = torch.softmax(log_w, 1)
    cdf = torch.cumsum(w, 1)
    cdf[:, -1] = 1.0
    u = torch.rand(R, 1, generator=generator, dtype=w.dtype).to(w.device)
    pos = (u + torch.arange(n, dtype=w.dtype, device=w.device)[None]) / n
    return torch.searchsorted(cdf, pos).clamp_(max=n - 1)


def smc(target: FKTarget, n_particles: int, steps: int, eps: float = 1.0, shape: Optional[Tuple[int, ...]] = None,
        schedule: str = "uniform", t_start: float = 0.0, t_end: float = 1.0, ess_threshold: float = 0.5,
        replicas: int = 1, generator: Optional[torch.Generator] = None, dtype=torch.float64, device="cpu",
        weighted: bool = True, progress: bool = False) -> SMCResult:
    r"""Run ``replicas`` independent Feynman–Kac particle systems of ``n_particles`` each over ``steps`` SDE steps.

    Args:
        target: an :class:`Annealed`, :class:`Product` or :class:`RewardTilted` target.
        eps: diffusion coefficient ε > 0 of the particle SDE.
        shape: one state's shape (default: the first field's data dimension if it is a Gaussian mixture, else required).
        ess_threshold: resample a system when its ESS < ``ess_threshold · n``; 0 never resamples.
        weighted: False runs the same SDE and ignores the weights (the uncorrected sampler, for comparison).
    """
    for name, v, lo in (("n_particles", n_particles, 1), ("steps", steps, 1), ("replicas", replicas, 1)):
        validation.integer(name, v, lo)
    eps = float(check_eps(eps))
    if not 0.0 <= ess_threshold <= 1.0:
        raise ConfigError("ess_threshold", f"must be in [0, 1], got {ess_threshold!r}")
    if shape is None:
        raise ConfigError("shape", "give the shape of one state, e.g. shape=(2,)")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    sched = SCHEDULES.get(schedule) if isinstance(schedule, str) else schedule
    grid = sched.grid(steps, target.interpolant, t_start, t_end)
    ts = grid.tolist()
    R, n = replicas, n_particles
    for f in target.fields:
        clear_stale_budget(f)  # the run counts its own calls (nfe below)
    x = target.start(R * n, tuple(shape), t_start, g, dtype, device)
    logw = torch.zeros(R, n, dtype=dtype, device=device)
    log_z = torch.full((R,), target.log_z_start(int(math.prod(shape)), t_start), dtype=dtype, device=device)
    ess_hist: List[torch.Tensor] = []
    n_res = torch.zeros(R, dtype=torch.long)
    nfe = 0
    it = range(len(ts) - 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="fk-smc", leave=False)
    for k in it:
        t, tn = ts[k], ts[k + 1]
        h = tn - t
        u, rate = target.drift_and_rate(x, t, eps, t_start, t_end)
        nfe += len(target.fields)
        noise = torch.randn(x.shape, generator=g, dtype=dtype).to(device)
        x = x + h * u + math.sqrt(2.0 * eps * h) * noise
        if weighted:
            logw = logw + h * rate.reshape(R, n)
        e = ess(logw)
        ess_hist.append(e)
        if weighted and ess_threshold > 0 and k < len(ts) - 2:
            low = e < ess_threshold * n
            if bool(low.any()):
                rows = low.nonzero().flatten()
                log_z[rows] += torch.logsumexp(logw[rows], 1) - math.log(n)
                idx = systematic_resample(logw[rows], g)
                xv = x.reshape(R, n, *x.shape[1:])
                xv[rows] = torch.gather(xv[rows], 1, idx.reshape(*idx.shape, *([1] * (x.dim() - 1))).expand(-1, -1, *x.shape[1:]))
                x = xv.reshape(R * n, *x.shape[1:])
                logw[rows] = 0.0
                n_res[rows.cpu()] += 1
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(logw).all()):
        raise ConfigError("eps", "the particle system overflowed (NaN/Inf); use more steps or a smaller eps")
    log_z = log_z + torch.logsumexp(logw, 1) - math.log(n)
    return SMCResult(x.reshape(R, n, *shape), logw, log_z, torch.stack(ess_hist), n_res, nfe, grid)

r"""Kinetic energy of an interpolant's marginal velocity and the data-separation (posterior-error) curve.

For any Gaussian-base interpolant :math:`x_t = a(t)x_1 + \sigma(t)\xi` the kinetic energy of the exact marginal
velocity :math:`b_t = E[\dot a x_1 + \dot\sigma\xi \mid x_t]` is

.. math:: \mathcal K = \int_0^1 E\,\|b_t(x_t)\|^2\,dt.

:func:`kinetic_energy` estimates it by Monte Carlo with the exact Gaussian-mixture field (``t ~ U(0,1)``, exact
``x_t``) and returns the standard error. Writing the conditional velocity :math:`u = \dot a x_1 + \dot\sigma\xi`, the
identity :math:`E\|b\|^2 = E\|u\|^2 - E\|u - b\|^2` and :math:`u - b = \sigma\dot r\,(x_1 - E[x_1|x_t])` with
:math:`r = a/\sigma` give the one-dimensional form used by Shaul et al. (2023), "On Kinetic Optimal Probability
Paths for Generative Models":

.. math:: \mathcal K = \int_0^1 \dot a^2 m_2 + \dot\sigma^2 d - \sigma^2\dot r^2\, M(r)\,dt,\qquad
    M(r) = E\,\|x_1 - E[x_1 \mid r x_1 + \xi]\|^2,\quad m_2 = E\|x_1\|^2,

so the data enters only through the scalar curve :math:`M(r)` (the posterior mean-square error at signal-to-noise
ratio :math:`r`). :func:`data_separation` returns it together with its normalised form
:math:`\lambda(r) = 1 - M(r)/m_2` (our normalisation of the paper's data-separation function: 0 where the noise
hides the data, → 1 where the points are separated). When :math:`\lambda \equiv 1` and :math:`m_2 = d` the
minimiser is the straight line :math:`a = t,\ \sigma = 1-t` — the cond-OT (linear) path.
For one Gaussian :math:`N(\mu, U\mathrm{diag}(\lambda)U^\top)`, :math:`M(r) = \sum_i \lambda_i/(1 + r^2\lambda_i)` and the
linear path has :math:`\mathcal K = m_2 + d - \tfrac{\pi}{2}\sum_i\sqrt{\lambda_i}` (:func:`gaussian_linear_kinetic_energy`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .. import validation
from ..errors import ConfigError
from ..interpolants.base import Interpolant
from ..interpolants.linear import Linear
from ..models.gmm import GaussianMixture


@dataclass(frozen=True)
class KineticEnergy:
    """A Monte-Carlo kinetic-energy estimate.

    Attributes:
        value: the estimate of :math:`\\int_0^1 E\\|b_t(x_t)\\|^2 dt`.
        stderr: its standard error.
        samples: the per-sample integrands :math:`\\|b_t(x_t)\\|^2` (t ~ U(0,1)); pair two runs with the same seed
            for a common-random-numbers difference (:func:`kinetic_energy_difference`).
    """

    value: float
    stderr: float
    samples: torch.Tensor


def _check_n(n: int, field: str = "n_samples") -> int:
    return validation.integer(field, n, 2)


def _require_gaussian_base(interpolant: Interpolant) -> None:
    if not interpolant.gaussian_base:
        raise ConfigError("interpolant", f"the kinetic energy needs a Gaussian base; {interpolant.name!r} has none")


def second_moment(gmm: GaussianMixture) -> float:
    r""":math:`m_2 = E\|x_1\|^2 = \sum_k w_k(\|\mu_k\|^2 + \mathrm{tr}\Sigma_k)`."""
    return float((gmm.weights * ((gmm.means ** 2).sum(1) + gmm.eigvals.sum(1))).sum())


def kinetic_energy(gmm: GaussianMixture, interpolant: Interpolant, n_samples: int = 4096,
                   generator: Optional[torch.Generator] = None, t_max: float = 1.0) -> KineticEnergy:
    r"""Monte-Carlo :math:`\int_0^{t_{max}} E\|b_t(x_t)\|^2 dt` with the exact mixture velocity (float64).

    Args:
        gmm: the data law (a finite point set is a mixture with tiny covariances).
        interpolant: any Gaussian-base interpolant.
        n_samples: number of (t, x_1, ξ) draws; the same ``generator`` seed gives the same draws for every
            interpolant (common random numbers).
        t_max: upper end of the time integral (``t ~ U(0, t_max)``).
    """
    _check_n(n_samples)
    _require_gaussian_base(interpolant)
    if not 0.0 < float(t_max) <= 1.0:
        raise ConfigError("t_max", f"must be in (0, 1], got {t_max!r}")
    t = torch.rand(n_samples, dtype=torch.float64, generator=generator) * float(t_max)
    x1 = gmm.sample(n_samples, generator=generator)
    xi = torch.randn(n_samples, gmm.dim, dtype=torch.float64, generator=generator)
    xt = interpolant.interpolate(xi, x1, t)
    v = gmm.velocity(xt, t, interpolant)
    g = (v * v).sum(1) * float(t_max)
    return KineticEnergy(float(g.mean()), float(g.std() / math.sqrt(n_samples)), g)


def kinetic_energy_difference(a: KineticEnergy, b: KineticEnergy) -> Tuple[float, float]:
    """``(K_a − K_b, its standard error)`` from two estimates made with the same draws (same seed, same n)."""
    if a.samples.shape != b.samples.shape:
        raise ConfigError("samples", "pair two estimates made with the same n_samples and seed")
    diff = a.samples - b.samples
    return float(diff.mean()), float(diff.std() / math.sqrt(diff.numel()))


@dataclass(frozen=True)
class DataSeparation:
    r"""The posterior mean-square error curve :math:`M(r)` on a grid of signal-to-noise ratios.

    Attributes:
        r: increasing grid of :math:`r = a/\sigma` ``(R,)``.
        mmse: :math:`M(r)` ``(R,)``; ``stderr`` its Monte-Carlo standard error (0 when closed form).
        m2: :math:`E\|x_1\|^2`; ``dim``: d.
    """

    r: torch.Tensor
    mmse: torch.Tensor
    stderr: torch.Tensor
    m2: float
    dim: int

    @property
    def separation(self) -> torch.Tensor:
        r""":math:`\lambda(r) = 1 - M(r)/m_2` (0: data hidden by noise, 1: points separated)."""
        return 1.0 - self.mmse / self.m2

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        r""":math:`M(r)` at any ``r ≥ 0``: :math:`\log M` linear in :math:`\log r` between grid points, :math:`M(r_0)` below the
        grid, and the Gaussian tail :math:`M(r_R)(r_R/r)^2` above it (differentiable in r)."""
        lr = torch.log(self.r.to(r))
        m = torch.log(self.mmse.to(r).clamp_min(1e-300))
        x = torch.log(r.clamp_min(1e-300))
        idx = torch.searchsorted(lr, x.detach().contiguous()).clamp(1, lr.numel() - 1)
        x0, x1 = lr[idx - 1], lr[idx]
        w = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
        inside = m[idx - 1] * (1 - w) + m[idx] * w
        tail = m[-1] + 2.0 * (lr[-1] - x)
        return torch.exp(torch.where(x > lr[-1], tail, inside))


def default_snr_grid(n: int = 97) -> torch.Tensor:
    """Log-spaced signal-to-noise grid from 1e-3 to 1e3."""
    return torch.logspace(-3.0, 3.0, n, dtype=torch.float64)


def data_separation(gmm: GaussianMixture, r: Optional[torch.Tensor] = None, n_samples: int = 4096,
                    generator: Optional[torch.Generator] = None) -> DataSeparation:
    r""":math:`M(r) = E\|x_1 - E[x_1 | r x_1 + \xi]\|^2` by Monte Carlo with the exact posterior mean (common draws
    for all r, so the curve is smooth); closed form :math:`\sum_i\lambda_i/(1+r^2\lambda_i)` for one Gaussian.

    The posterior mean at SNR r is the linear path's denoiser at :math:`t = r/(1+r)` applied to
    :math:`x_t = (1-t)(r x_1 + \xi)`.
    """
    r = default_snr_grid() if r is None else torch.as_tensor(r, dtype=torch.float64)
    if r.dim() != 1 or r.numel() < 2 or not bool((r > 0).all()) or not bool((r[1:] > r[:-1]).all()):
        raise ConfigError("r", "must be an increasing 1-D grid of positive signal-to-noise ratios")
    m2 = second_moment(gmm)
    if gmm.n_components == 1:
        lam = gmm.eigvals[0]
        mm = (lam[None, :] / (1.0 + r[:, None] ** 2 * lam[None, :])).sum(1)
        return DataSeparation(r, mm, torch.zeros_like(mm), m2, gmm.dim)
    _check_n(n_samples)
    x1 = gmm.sample(n_samples, generator=generator)
    xi = torch.randn(n_samples, gmm.dim, dtype=torch.float64, generator=generator)
    lin = Linear()
    mm, se = [], []
    for ri in r.tolist():
        t = ri / (1.0 + ri)
        xt = (1.0 - t) * (ri * x1 + xi)
        d, _ = gmm.data_and_score(xt, t, lin)
        e = ((x1 - d) ** 2).sum(1)
        mm.append(float(e.mean()))
        se.append(float(e.std() / math.sqrt(n_samples)))
    return DataSeparation(r, torch.tensor(mm, dtype=torch.float64), torch.tensor(se, dtype=torch.float64), m2, gmm.dim)


def kinetic_energy_quadrature(interpolant: Interpolant, separation: DataSeparation, n_points: int = 4000,
                              t_max: float = 1.0) -> float:
    r"""The one-dimensional form :math:`\int_0^{t_{max}} \dot a^2 m_2 + \dot\sigma^2 d - (\dot a\sigma - a\dot\sigma)^2
    M(a/\sigma)/\sigma^2\,dt` by the midpoint rule (``σ·σ̇`` from the interpolant's closed form)."""
    _require_gaussian_base(interpolant)
    t = (torch.arange(n_points, dtype=torch.float64) + 0.5) / n_points * float(t_max)
    c = interpolant.coefficients(t)
    return float(path_integrand(c.signal, c.d_signal, c.sigma, c.sigma_dsigma / c.sigma, separation).mean()) * float(t_max)


def path_integrand(a: torch.Tensor, da: torch.Tensor, sigma: torch.Tensor, dsigma: torch.Tensor,
                   separation: DataSeparation) -> torch.Tensor:
    r""":math:`E\|b_t\|^2 = \dot a^2 m_2 + \dot\sigma^2 d - (\dot a\sigma - a\dot\sigma)^2 M(a/\sigma)/\sigma^2` (differentiable)."""
    cross = da * sigma - a * dsigma
    return da ** 2 * separation.m2 + dsigma ** 2 * separation.dim - cross ** 2 / sigma ** 2 * separation(a / sigma)


def gaussian_linear_kinetic_energy(gmm: GaussianMixture) -> float:
    r"""Closed form for one Gaussian on the linear path: :math:`m_2 + d - \tfrac{\pi}{2}\sum_i\sqrt{\lambda_i}`
    (from :math:`\int_0^1 \lambda/((1-t)^2 + \lambda t^2)\,dt = \tfrac{\pi}{2}\sqrt\lambda`)."""
    if gmm.n_components != 1:
        raise ConfigError("gmm", "the closed form is for a single Gaussian")
    return second_moment(gmm) + gmm.dim - 0.5 * math.pi * float(gmm.eigvals[0].sqrt().sum())

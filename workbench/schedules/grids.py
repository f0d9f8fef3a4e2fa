r"""The registered time schedules."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..interpolants.base import check_positive
from .base import Schedule, finite, register, warped_grid


@register("uniform", "linear")
class Uniform(Schedule):
    r""":math:`t_i = t_{start} + (t_{end} - t_{start})\, i/N`."""

    def _grid(self, steps, interpolant, t_start, t_end):
        return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


@register("logsnr", "uniform_logsnr", "log_snr")
class UniformLogSNR(Schedule):
    r"""Uniform in :math:`\lambda = \log(a/\sigma)` (DPM-Solver's recommended grid).

    Args:
        lambda_min, lambda_max: clamp for ends where λ is infinite (e.g. λ(0) = −∞ for the linear interpolant).
    """

    needs_log_snr = True

    def __init__(self, lambda_min: float = -8.0, lambda_max: float = 8.0):
        self.lambda_min, self.lambda_max = finite(lambda_min, "lambda_min"), finite(lambda_max, "lambda_max")
        if self.lambda_min >= self.lambda_max:
            raise ConfigError("lambda_max", f"must be > lambda_min, got {lambda_min}, {lambda_max}")

    def _grid(self, steps, interpolant, t_start, t_end):
        return warped_grid(
            interpolant.log_snr(t_start), interpolant.log_snr(t_end), steps,
            lambda lam: interpolant.t_from_log_snr(lam, t_start, t_end), self.lambda_min, self.lambda_max,
        )


@register("edm", "karras")
class EDM(Schedule):
    r"""Karras et al. (2022) ρ-schedule in the noise-to-signal ratio :math:`\sigma/a = e^{-\lambda}`:

    .. math:: \sigma_i = \big(\sigma_{max}^{1/\rho} + \tfrac{i}{N}(\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho})\big)^\rho

    :math:`\sigma_{max}, \sigma_{min}` default to the interpolant's values at ``t_start``/``t_end``, clamped to
    ``[sigma_floor, sigma_ceiling]`` (the ends themselves stay exact).
    """

    needs_log_snr = True

    def __init__(self, rho: float = 7.0, sigma_ceiling: float = 80.0, sigma_floor: float = 0.002):
        self.rho = check_positive("rho", rho)
        self.sigma_ceiling = check_positive("sigma_ceiling", sigma_ceiling)
        self.sigma_floor = check_positive("sigma_floor", sigma_floor)
        if self.sigma_floor >= self.sigma_ceiling:
            raise ConfigError("sigma_ceiling", f"must be > sigma_floor, got {sigma_floor}, {sigma_ceiling}")

    def _grid(self, steps, interpolant, t_start, t_end):
        r = self.rho
        # warp u = sigma^(1/rho) with sigma = exp(-lambda): u decreases as t increases, so use -u.
        def u_of(t):
            lam = interpolant.log_snr(t)
            return -math.exp(-lam / r) if lam > -math.inf else -math.inf

        def inverse(negu):
            lam = -r * torch.log(-negu)
            return interpolant.t_from_log_snr(lam, t_start, t_end)

        lo = -self.sigma_ceiling ** (1.0 / r)
        hi = -self.sigma_floor ** (1.0 / r)
        return warped_grid(u_of(t_start), u_of(t_end), steps, inverse, lo, hi)


@register("shift", "time_shift")
class TimeShift(Schedule):
    r"""Uniform grid with the SD3 / flow-matching time shift applied to the noise level :math:`s = 1 - t`:

    .. math:: s' = \frac{k s}{1 + (k - 1) s},\qquad t' = 1 - s'

    ``shift = 1`` is the identity; ``shift > 1`` spends more steps near the noise end.
    """

    def __init__(self, shift: float = 3.0):
        self.shift = check_positive("shift", shift)

    def _grid(self, steps, interpolant, t_start, t_end):
        k = self.shift

        def unshift(s: float) -> float:  # inverse of s -> k s / (1 + (k - 1) s)
            return s / (k - (k - 1.0) * s)

        # uniform in the unshifted noise level between the (unshifted) ends, then shifted once
        u = torch.linspace(unshift(1.0 - t_start), unshift(1.0 - t_end), steps + 1, dtype=torch.float64)
        return 1.0 - k * u / (1.0 + (k - 1.0) * u)


@register("logit_normal", "lognorm", "u_shaped")
class LogitNormal(Schedule):
    r"""Grid at quantiles of a logit-normal law (SD3's training density) mapped onto ``[t_start, t_end]``:

    .. math:: t_i = t_{start} + (t_{end}-t_{start})\,\mathrm{sigmoid}(m + s\,\Phi^{-1}(i/N))

    Steps concentrate where the density is high (the middle for ``scale < 1.8``); ``scale`` larger than
    about 1.8 makes the law U-shaped, concentrating steps at both ends.
    """

    def __init__(self, mean: float = 0.0, scale: float = 1.0):
        self.mean = finite(mean, "mean")
        self.scale = check_positive("scale", scale)

    def _grid(self, steps, interpolant, t_start, t_end):
        q = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)[1:-1]
        inner = torch.sigmoid(self.mean + self.scale * math.sqrt(2.0) * torch.erfinv(2.0 * q - 1.0))
        u = torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)])
        return t_start + (t_end - t_start) * u

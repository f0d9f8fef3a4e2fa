r"""σ-denoisers ``D(x, σ)`` (the k-diffusion / EDM contract: :math:`D(x;\sigma) \approx E[x_1 \mid x_1 + \sigma\xi = x]`)
on the :class:`~workbench.interpolants.EDMVE` path :math:`\sigma(t) = \sigma_{max}(1-t)`.

With ``raw=True`` the callable is EDM's raw network :math:`F_\theta(c_{in}x, c_{noise})` and the preconditioning of EDM
Table 1 is applied: :math:`D = c_{skip}x + c_{out}F_\theta`.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from ..errors import ConfigError
from ..interpolants.edm import EDMVE
from ..utils import expand_like
from .base import AdaptedModel, check_output


def from_denoiser(denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sigma_min: float = 0.002,
                  sigma_max: float = 80.0, sigma_data: float = 0.5, rho: float = 7.0, raw: bool = False,
                  sample_shape: Optional[Tuple[int, ...]] = None) -> AdaptedModel:
    """Adapt ``denoiser(x, sigma)`` (``sigma`` of shape ``(B,)``) trained on ``[sigma_min, sigma_max]``.

    The adapted model predicts our ``x1``; it may be evaluated up to ``t_max = 1 − sigma_min/sigma_max`` (its smallest
    trained σ); EDM's last step to σ = 0 is the data prediction there (:func:`edm_sigma_grid`).
    """
    if not callable(denoiser):
        raise ConfigError("denoiser", f"must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    I = EDMVE(sigma_min, sigma_max, sigma_data, rho)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = I.sigma(t.to(torch.float64)).to(x.dtype)
        if raw:
            c_skip, c_out, c_in, c_noise = I.preconditioning(sigma)
            out = check_output(denoiser(expand_like(c_in, x) * x, c_noise), x, "the network")
            return expand_like(c_skip, x) * x + expand_like(c_out, x) * out
        return check_output(denoiser(x, sigma), x, "the denoiser")

    return AdaptedModel(fn, I, "x1", t_max=float(I.t_of_sigma(I.sigma_min)), sample_shape=sample_shape,
                        source="sigma-denoiser D(x, sigma)" + (" (EDM-preconditioned network)" if raw else ""))


def edm_sigma_grid(interpolant: EDMVE, steps: int) -> torch.Tensor:
    """EDM's σ-grid (Karras et al. Eq. 5, ``steps`` σ's down to σ_min, then σ = 0) in our time: ``steps + 1`` points."""
    return interpolant.t_of_sigma(interpolant.karras_sigmas(steps))

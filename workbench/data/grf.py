r"""Gaussian random fields on the periodic square :math:`[0, L)^2` with a prescribed spectrum.

A real field is built by colouring white noise in Fourier space,

.. math::
    f = \mathcal F^{-1}\big[\sqrt{P(|k|)}\;\mathcal F[w]\big],\qquad w_{ij} \sim N(0, 1)\ \text{i.i.d.},

so every Fourier mode is an independent complex Gaussian with variance :math:`\propto P(|k|)` and Hermitian
symmetry holds exactly. In 2-D a shell of radius :math:`k` holds :math:`\approx 2\pi k` modes, so the radially
summed spectrum is :math:`E(k) \approx 2\pi k\, P(k)`. The two spectra offered are

* ``"power"``: :math:`E(s) \propto s^{-p}` exactly in expectation for every integer shell :math:`s \ge 1`
  (:math:`s = \lfloor |k|L/2\pi + \frac12\rfloor`, the shells of :mod:`workbench.metrics.spectra`): a mode of
  shell s has variance :math:`\propto s^{-p}/n_s` with :math:`n_s \approx 2\pi s` the number of modes in the shell;
* ``"matern"``: :math:`P(k) \propto (\kappa^2 + k^2)^{-(\nu + 1)}` with :math:`\kappa = \sqrt{2\nu}/\ell`
  (the Matérn covariance of smoothness ν and length scale ℓ in d = 2; as in the FNO paper's GRF).

The mean (k = 0 mode) is zero and the field is rescaled so that its *expected* pointwise standard deviation is
``std`` (each sample's own variance fluctuates around it).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch

from ..errors import ConfigError
from ..utils import resolve_device, resolve_dtype

#: Spectrum families accepted by :func:`gaussian_random_field`.
GRF_KINDS = ("power", "matern")


def wavenumbers(n: int, length: float = 2 * math.pi, device: Union[str, torch.device] = "cpu",
                dtype: torch.dtype = torch.float64, rfft: bool = False):
    r"""Angular wavenumbers :math:`(k_y, k_x)` of an ``n × n`` grid on :math:`[0, L)^2`, broadcastable to
    ``(n, n)`` (or ``(n, n//2 + 1)`` with ``rfft=True``). Axis −2 is y, axis −1 is x."""
    scale = 2 * math.pi / length
    ky = torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype)[:, None] * scale
    kx_1d = torch.fft.rfftfreq(n, d=1.0 / n, device=device, dtype=dtype) if rfft else \
        torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=dtype)
    return ky, kx_1d[None, :] * scale


def grf_power(kmag: torch.Tensor, kind: str = "power", slope: float = 3.0, nu: float = 2.0,
              length_scale: float = 0.3, length: float = 2 * math.pi) -> torch.Tensor:
    r"""Per-mode variance :math:`P(|k|)` (unnormalised, zero at :math:`k = 0`) of the chosen spectrum family.

    ``kmag`` must be the full ``(n, n)`` grid of wavenumber magnitudes in integer units :math:`|k|L/2\pi`
    (shell counts are taken from it); ``length`` converts them to angular wavenumbers for the Matérn law.
    """
    if kind == "power":
        shell = torch.floor(kmag + 0.5).long()
        counts = torch.bincount(shell.reshape(-1)).to(kmag.dtype)
        s = shell.to(kmag.dtype)
        p = torch.where(shell > 0, s.clamp_min(1.0) ** (-slope) / counts[shell], torch.zeros_like(kmag))
    elif kind == "matern":
        kappa2 = 2.0 * nu / length_scale ** 2
        p = (kappa2 + (kmag * (2 * math.pi / length)) ** 2) ** (-(nu + 1.0))
        p = torch.where(kmag > 0, p, torch.zeros_like(p))
    else:
        raise ConfigError("kind", f"got {kind!r}; allowed values are: {', '.join(GRF_KINDS)}")
    return p


def gaussian_random_field(batch: int, n: int, kind: str = "power", slope: float = 3.0, nu: float = 2.0,
                          length_scale: float = 0.3, std: float = 1.0, length: float = 2 * math.pi,
                          generator: Optional[torch.Generator] = None, device: Union[str, torch.device] = "cpu",
                          dtype: Union[str, torch.dtype] = "float64") -> torch.Tensor:
    r"""Sample ``batch`` real Gaussian random fields on an ``n × n`` periodic grid.

    .. math::
        \hat f(k) = \sqrt{P(|k|)}\,\hat w(k),\qquad
        E(k) = \tfrac12\sum_{|k'| \in \text{shell } k} |\hat f(k')|^2 \propto k^{-p}\ (\text{``power''}).

    Args:
        batch: number of fields.
        n: grid points per side (≥ 4).
        kind: ``"power"`` (:math:`E(k) \propto k^{-p}`) or ``"matern"``.
        slope: the exponent p of the power law.
        nu, length_scale: Matérn smoothness ν and length scale ℓ (in units of ``length``).
        std: expected pointwise standard deviation of the field.
        length: side of the periodic square (default :math:`2\pi`, integer wavenumbers).
        generator: torch RNG for reproducibility (sampled on the CPU, then moved to ``device``).
        device, dtype: where and in which precision to return the fields.

    Returns:
        Tensor of shape ``(batch, n, n)``, zero mean.
    """
    if int(batch) < 1:
        raise ConfigError("batch", f"must be >= 1, got {batch}")
    if int(n) < 4:
        raise ConfigError("n", f"must be >= 4, got {n}")
    if kind not in GRF_KINDS:
        raise ConfigError("kind", f"got {kind!r}; allowed values are: {', '.join(GRF_KINDS)}")
    for name, val in (("std", std), ("length", length), ("nu", nu), ("length_scale", length_scale)):
        if not (math.isfinite(float(val)) and float(val) > 0):
            raise ConfigError(name, f"must be a finite number > 0, got {val!r}")
    if not math.isfinite(float(slope)):
        raise ConfigError("slope", f"must be finite, got {slope!r}")
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    n = int(n)
    ky, kx = wavenumbers(n, 2 * math.pi, dtype=torch.float64)  # integer units
    kmag = torch.sqrt(ky ** 2 + kx ** 2)
    p = grf_power(kmag, kind, float(slope), float(nu), float(length_scale), float(length))
    # white noise w has E|ŵ(k)|² = n² per mode (unnormalised FFT); Var f = Σ_k P(k) / n² ... normalise to std².
    p = p * (float(std) ** 2 / p.sum())
    w = torch.randn(int(batch), n, n, generator=generator, dtype=torch.float64)
    f = torch.fft.ifft2(torch.fft.fft2(w) * torch.sqrt(p) * n).real
    return f.to(device=dev, dtype=dt)

r"""A loss on Fourier coefficients weighted by wavenumber band (the fine-tuning loss of the Spectral-Refiner).

For a prediction error :math:`e = \hat u - u` on an :math:`n \times n` periodic grid, with the normalised transform
:math:`\hat e(k) = \mathrm{fft2}(e)(k)/n^2` over *all* modes and the integer shell :math:`s(k) = \lfloor|k| + 1/2\rfloor`,

.. math::
    L_w(\hat u, u) = \frac1B\sum_b \sum_k w_{\mathrm{band}(s(k))}\,|\hat e_b(k)|^2,\qquad
    \mathrm{band}(s) = \text{low } (s < s_1),\ \text{mid } (s_1 \le s < s_2),\ \text{high } (s \ge s_2),

with band edges ``bands = (s_1, s_2)`` (PDEBench's (4, 12) by default, the edges of
:func:`workbench.metrics.rollout.band_errors`; the corner modes beyond :math:`n/2` count as high). By Parseval,
:math:`\sum_k|\hat e(k)|^2 = \frac1{n^2}\sum_x e(x)^2`, so flat weights :math:`w = (1, 1, 1)` give exactly the
mean-squared error. ``weights="balanced"`` sets :math:`w_b = 1/\overline{\sum_{k\in b}|\hat u(k)|^2}` from the
targets at :meth:`SpectralLoss.balanced` (each band's error relative to its own power; the mean is over the data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Tuple

import torch

from ..errors import ConfigError
from ..metrics.rollout import PDEBENCH_BANDS


def band_index(n: int, bands: Sequence[int] = PDEBENCH_BANDS, device=None) -> torch.Tensor:
    """Band (0 low, 1 mid, 2 high) of every mode of an ``n × n`` ``fft2`` layout, ``(n, n)`` int64."""
    lo, hi = (int(b) for b in bands)
    if not 0 < lo < hi:
        raise ConfigError("bands", f"need 0 < low edge < high edge, got {tuple(bands)}")
    f = torch.fft.fftfreq(int(n), d=1.0 / int(n), device=device, dtype=torch.float64)
    shell = torch.floor(torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2) + 0.5)
    return (shell >= lo).long() + (shell >= hi).long()


def band_power(x: torch.Tensor, bands: Sequence[int] = PDEBENCH_BANDS) -> torch.Tensor:
    r"""Mean over the batch of :math:`\sum_{k\in b}|\hat x(k)|^2` per band, ``(3,)`` for fields ``(..., n, n)``."""
    n = x.shape[-1]
    p = torch.fft.fft2(x).abs().pow(2).flatten(0, -3) / float(n) ** 4
    idx = band_index(n, bands, x.device)
    return torch.stack([p[:, idx == b].sum(-1).mean() for b in range(3)])


@dataclass(frozen=True)
class SpectralLoss:
    """Band-weighted squared error of the Fourier coefficients (module docstring). Frozen; callable.

    Args:
        bands: shell edges ``(s_1, s_2)`` of the low/mid/high bands.
        weights: ``(w_low, w_mid, w_high)``, each ≥ 0 and not all 0.
    """

    bands: Tuple[int, int] = PDEBENCH_BANDS
    weights: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    _w: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        b = tuple(int(v) for v in self.bands)
        if len(b) != 2 or not 0 < b[0] < b[1]:
            raise ConfigError("bands", f"need two shell edges 0 < s_1 < s_2, got {self.bands!r}")
        w = tuple(float(v) for v in self.weights)
        if len(w) != 3 or any(not (v >= 0) or v != v or v == float("inf") for v in w) or sum(w) == 0:
            raise ConfigError("weights", f"need three finite weights >= 0 (low, mid, high), not all 0; got {self.weights!r}")
        object.__setattr__(self, "bands", b)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "_w", torch.tensor(w, dtype=torch.float64))

    @staticmethod
    def balanced(targets: torch.Tensor, bands: Sequence[int] = PDEBENCH_BANDS) -> "SpectralLoss":
        """Weights :math:`1/P_b` (the targets' mean power per band), normalised to sum to 3."""
        p = band_power(targets.to(torch.float64), bands)
        if bool((p <= 0).any()):
            raise ConfigError("targets", f"a band has no power ({p.tolist()}); balanced weights are undefined")
        w = 1.0 / p
        w = 3.0 * w / w.sum()
        return SpectralLoss(tuple(bands), tuple(float(v) for v in w))

    def mode_weights(self, n: int, device=None, dtype=torch.float64) -> torch.Tensor:
        """The weight of every mode, ``(n, n)`` in ``fft2`` layout."""
        return self._w.to(device=device, dtype=dtype)[band_index(n, self.bands, device)]

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss for fields ``(..., n, n)`` (all leading axes are averaged)."""
        if pred.shape != target.shape or pred.dim() < 2 or pred.shape[-1] != pred.shape[-2]:
            raise ConfigError("pred", f"needs square fields of the target's shape {tuple(target.shape)}, got {tuple(pred.shape)}")
        n = pred.shape[-1]
        e = torch.fft.fft2(pred - target) / float(n * n)
        power = e.real ** 2 + e.imag ** 2
        return (power * self.mode_weights(n, pred.device, power.dtype)).sum((-1, -2)).mean()


__all__ = ["band_index", "band_power", "SpectralLoss"]

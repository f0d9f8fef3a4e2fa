r"""Spectral-Refiner (Cao et al., "Spectral-Refiner: Accurate Fine-Tuning of Spatiotemporal Fourier Neural Operator
for Turbulent Flows"): a trained FNO whose **last layers only** are fine-tuned with a loss on Fourier coefficients.

Stage 1 (or an existing operator, :meth:`SpectralRefiner.from_operator`): the FNO surrogate trained with the MSE.
Stage 2 (:meth:`SpectralRefiner.fine_tune`): the lifting and the first ``layers − trainable_layers`` Fourier layers
are frozen; the last ``trainable_layers`` Fourier layers (spectral weights and local path) and the projection head
minimise the band-weighted spectral loss :class:`~workbench.fields.spectral_loss.SpectralLoss` of the increment

.. math:: L = \frac1B\sum_b\sum_k w_{\mathrm{band}(k)}\,\big|\widehat{(g_\theta - r)}_b(k)\big|^2,

with ``band_weights`` either given ``(w_low, w_mid, w_high)`` or ``"balanced"`` (:math:`w_b \propto 1/P_b`, the
inverse mean power of the target increments in band b: every band's error counts relative to its own size, so the
small-amplitude high wavenumbers — which the MSE ignores and which drive FNO rollouts unstable — are fitted too).
The normalisation :math:`s_u, s_r` of the operator is kept (the frozen layers depend on it).
"""
from __future__ import annotations

import copy
from typing import Iterable, List, Optional, Sequence, Union

import torch
from torch import nn

from ... import validation
from ...errors import ConfigError
from ...metrics.rollout import PDEBENCH_BANDS
from ..spectral_loss import SpectralLoss
from ..training import TrainLog, history_windows
from .base import SURROGATES
from .fno import FNOSurrogate


@SURROGATES.register("spectral_refiner", "spectral-refiner")
class SpectralRefiner(FNOSurrogate):
    """Args: the :class:`FNOSurrogate` sizes, ``bands`` (shell edges), ``band_weights`` (3 weights or
    ``"balanced"``), ``trainable_layers`` (Fourier layers fine-tuned, ≥ 0; the projection head always is) and
    ``pretrain_iterations`` (MSE iterations :meth:`fit` runs first when the operator is untrained)."""

    def __init__(self, history: int = 1, width: int = 16, modes: int = 8, layers: int = 4, local_kernel: int = 1,
                 bands: Sequence[int] = PDEBENCH_BANDS, band_weights: Union[str, Sequence[float]] = "balanced",
                 trainable_layers: int = 1, pretrain_iterations: int = 500):
        super().__init__(history, width, modes, layers, local_kernel)
        if isinstance(band_weights, str):
            validation.choice("band_weights", band_weights, ["balanced"])
        else:
            SpectralLoss(tuple(bands), tuple(band_weights))  # validates
        self.bands = tuple(int(b) for b in bands)
        self.band_weights = band_weights if isinstance(band_weights, str) else tuple(float(w) for w in band_weights)
        self.trainable_layers = validation.integer("trainable_layers", trainable_layers, 0, int(layers))
        self.pretrain_iterations = validation.integer("pretrain_iterations", pretrain_iterations, 0, 10_000_000)
        self.spectral_loss: Optional[SpectralLoss] = None
        self.pretrained = False
        self._fine_tuning = False

    @classmethod
    def from_operator(cls, operator: FNOSurrogate, **kwargs) -> "SpectralRefiner":
        """A Spectral-Refiner starting from a copy of a trained :class:`FNOSurrogate` (weights and normalisers)."""
        if not isinstance(operator, FNOSurrogate):
            raise ConfigError("operator", f"needs a trained FNOSurrogate, got {type(operator).__name__}")
        p = operator.net._params
        if p["in_channels"] != operator.history:
            raise ConfigError("operator", "the operator's FNO does not take its history as input channels")
        new = cls(history=operator.history, width=p["width"], modes=p["modes"], layers=p["layers"],
                  local_kernel=p["local_kernel"], **kwargs)
        new.load_state_dict(operator.state_dict())
        new.to(next(operator.parameters()).device, next(operator.parameters()).dtype)
        new.u_norm, new.r_norm = copy.copy(operator.u_norm), copy.copy(operator.r_norm)
        new.pretrained = True
        return new

    def fine_tuned_modules(self) -> List[nn.Module]:
        """The last ``trainable_layers`` Fourier layers (spectral + local) and the projection head."""
        n = len(self.net.spectral)
        mods: List[nn.Module] = []
        for i in range(n - self.trainable_layers, n):
            mods += [self.net.spectral[i], self.net.local[i]]
        return mods + [self.net.proj]

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        if not self._fine_tuning:
            return list(self.parameters())
        return [p for m in self.fine_tuned_modules() for p in m.parameters()]

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self._fine_tuning and self.spectral_loss is not None:
            return self.spectral_loss(pred, target)
        return super().loss(pred, target)

    def fine_tune(self, traj: torch.Tensor, iterations: int = 300, batch_size: int = 16, lr: float = 5e-4,
                  seed: int = 0, progress: bool = True, input_noise: float = 0.0, unroll: int = 1) -> TrainLog:
        """Stage 2 only: freeze all but :meth:`fine_tuned_modules`, minimise the spectral loss (normalisers kept)."""
        if not self.pretrained:
            raise ConfigError("fine_tune", "the operator is untrained: call fit() (MSE pre-training first) or "
                              "build it with SpectralRefiner.from_operator(trained_fno)")
        if isinstance(self.band_weights, str):
            w = history_windows(traj.to(torch.float64), 1, 1)
            self.spectral_loss = SpectralLoss.balanced((w[:, 1] - w[:, 0]) / self.r_norm.std, self.bands)
        else:
            self.spectral_loss = SpectralLoss(self.bands, self.band_weights)
        keep = {id(p) for m in self.fine_tuned_modules() for p in m.parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        self._fine_tuning = True
        try:
            return super().fit(traj, iterations, batch_size, lr, seed + 1, progress, input_noise, unroll,
                               refit_normalizers=False, desc="spectral fine-tune")
        finally:
            self._fine_tuning = False
            for p in self.parameters():
                p.requires_grad_(True)

    def fit(self, traj: torch.Tensor, iterations: int = 300, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
            progress: bool = True, input_noise: float = 0.0, unroll: int = 1, refit_normalizers: bool = True,
            desc: Optional[str] = None) -> TrainLog:
        """Stage 1 (``pretrain_iterations`` of MSE at ``lr``, unless already trained) then :meth:`fine_tune` for
        ``iterations`` at ``lr / 4``; the returned log is the fine-tuning's."""
        if not self.pretrained:
            if self.pretrain_iterations < 1:
                raise ConfigError("pretrain_iterations", "the operator is untrained and pretrain_iterations is 0")
            super().fit(traj, self.pretrain_iterations, batch_size, lr, seed, progress, input_noise, unroll,
                        refit_normalizers, desc="fno pre-training")
            self.pretrained = True
        return self.fine_tune(traj, iterations, batch_size, lr / 4, seed, progress, input_noise, unroll)

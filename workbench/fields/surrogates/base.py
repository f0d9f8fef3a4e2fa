r"""The contract of a one-step field surrogate and its training (one-step or push-forward unrolled).

A surrogate maps the last ``history`` frames to the next one, in residual form on normalised fields:

.. math:: u_{n+1} = u_n + s_r\,g_\theta\big(u_{n-K+1}/s_u, \dots, u_n/s_u\big),

with :math:`s_u` the std of the fields and :math:`s_r` the std of one-step increments (fitted on the training
pairs). Training minimises :meth:`FieldSurrogate.loss` (MSE by default) of the normalised increment; with
``unroll = k > 1`` the last step starts from the model's own ``k − 1``-step prediction made without gradient
(:func:`~workbench.fields.training.push_forward`) and is scored against the true frame ``k`` steps ahead.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from ... import validation
from ...errors import ConfigError
from ...registry import Registry
from ..training import Normalizer, TrainLog, history_windows, one_step_pairs, push_forward, train_loop

#: Registry of one-step field surrogates (``SURROGATES.get("fno", width=16)``); one class per file.
SURROGATES: Registry = Registry("surrogate")


class FieldSurrogate(nn.Module):
    """Base class: subclasses implement :meth:`increment` (and may override :meth:`loss`, :meth:`trainable_parameters`).

    Args:
        history: number of input frames ``K`` (oldest first).
    """

    name = "surrogate"
    stochastic = False

    def __init__(self, history: int = 1):
        super().__init__()
        self.history = validation.integer("history", history, 1, 64)
        self.u_norm, self.r_norm = Normalizer(), Normalizer()

    # --- the model ------------------------------------------------------------------------------------------
    def increment(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised increment ``(B, N, N)`` from the normalised history ``z`` ``(B, K, N, N)``."""
        raise NotImplementedError

    def _as_history(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() == 3 and self.history == 1:
            return frames[:, None]
        if frames.dim() != 4 or frames.shape[1] != self.history:
            raise ConfigError("frames", f"{self.name} needs (B, {self.history}, N, N)"
                              + (" or (B, N, N)" if self.history == 1 else "") + f", got {tuple(frames.shape)}")
        return frames

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Next frame ``(B, N, N)`` from the history ``(B, K, N, N)`` (or ``(B, N, N)`` when K = 1), physical units."""
        h = self._as_history(frames)
        return h[:, -1] + self.r_norm.decode(self.increment(self.u_norm.encode(h)))

    @torch.no_grad()
    def rollout(self, frames: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive rollout from a history ``(B, K, N, N)``: ``(B, steps + 1, N, N)``, frame 0 = the last given."""
        h = self._as_history(frames)
        n = validation.integer("steps", steps, 1, 1_000_000)
        out = [h[:, -1]]
        for _ in range(n):
            nxt = self(h)
            out.append(nxt)
            h = torch.cat([h[:, 1:], nxt[:, None]], 1)
        return torch.stack(out, 1)

    # --- training -------------------------------------------------------------------------------------------
    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of normalised increments ``(B, N, N)`` (MSE)."""
        return ((pred - target) ** 2).mean()

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters :meth:`fit` trains (all by default)."""
        return [p for p in self.parameters() if p.requires_grad]

    def fit_normalizers(self, traj: torch.Tensor) -> None:
        r""":math:`s_u` = std of the frames, :math:`s_r` = std of the one-step increments (means 0)."""
        pairs = one_step_pairs(traj)
        a, b = pairs["inputs"], pairs["targets"]
        self.u_norm, self.r_norm = Normalizer(0.0, float(a.std())), Normalizer(0.0, float((b - a).std()))

    def fit(self, traj: torch.Tensor, iterations: int = 500, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
            progress: bool = True, input_noise: float = 0.0, unroll: int = 1, refit_normalizers: bool = True,
            desc: Optional[str] = None) -> TrainLog:
        r"""Train on every window of ``traj`` ``(B, T, N, N)`` (physical units).

        Args:
            unroll: k ≥ 1; k > 1 is push-forward training (k − 1 steps without gradient, the loss on the k-th).
            input_noise: η ≥ 0; the input history is perturbed by :math:`\eta s_u\zeta` and the target increment is
                measured from the perturbed last frame.
            refit_normalizers: False keeps :math:`s_u, s_r` (fine-tuning a trained model).
        """
        k = validation.integer("unroll", unroll, 1, 1000)
        eta = validation.number("input_noise", input_noise, minimum=0.0)
        dev = next(self.parameters()).device
        dt = next(self.parameters()).dtype
        traj = traj.to(dev, dt)
        if refit_normalizers:
            self.fit_normalizers(traj)
        win = history_windows(traj, self.history, k)
        kk = self.history

        def loss_fn(idx, g):
            w = win[idx]
            h = w[:, :kk]
            if eta > 0:
                h = h + eta * self.u_norm.std * torch.randn(h.shape, generator=g, dtype=dt).to(dev)
            if k > 1:
                h = push_forward(self, h, k - 1)
            target = (w[:, -1] - h[:, -1]) / self.r_norm.std
            return self.loss(self.increment(self.u_norm.encode(h)), target)

        params = list(self.trainable_parameters())
        return train_loop(self, loss_fn, win.shape[0], iterations, batch_size, lr, seed=seed, progress=progress,
                          desc=desc or self.name, parameters=params)

    def extra_repr(self) -> str:
        return f"history={self.history}"


__all__ = ["SURROGATES", "FieldSurrogate"]

r"""A compact training loop for models on 2-D fields (one-step surrogates and interpolant denoisers).

Kept local to :mod:`workbench.fields` on purpose (no dependency on the generic trainer). Two objectives:

* **one-step regression** (the plain FNO surrogate): :math:`\min \mathbb E\,\|f_\theta(u_t) - u_{t+\Delta t}\|^2`
  in normalised units;
* **interpolant velocity matching** (refiner / unconditional generator) on the linear interpolant
  :math:`x_\tau = (1-\tau)\xi + \tau x_1`: :math:`\min \mathbb E\,\|\hat v_\theta(x_\tau, \tau\,|\,c) - (x_1 - \xi)\|^2`,
  with τ drawn half uniformly and half uniformly in log-SNR :math:`\lambda = \log(\tau/(1-\tau)) \in
  [\lambda_{min}, \lambda_{max}]`. As in PDE-Refiner, the log-SNR draws put weight on small noise levels, where
  the low-amplitude high-wavenumber content is decided (velocity error = data error / (1 − τ)).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Union

import torch
from torch import nn

from ..errors import ConfigError, NonFiniteError


@dataclass
class Normalizer:
    """Affine normalisation :math:`(u - \\mu)/s` of a field (scalars; the mean of vorticity on the torus is 0)."""

    mean: float = 0.0
    std: float = 1.0

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """Physical → normalised."""
        return (u - self.mean) / self.std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised → physical."""
        return z * self.std + self.mean

    @staticmethod
    def fit(u: torch.Tensor) -> "Normalizer":
        """Mean and std of all entries of ``u``."""
        return Normalizer(float(u.mean()), float(u.std()))


@dataclass
class TrainLog:
    """Loss history of a training run (one entry per ``log_every`` iterations) and the wall time."""

    iterations: List[int] = field(default_factory=list)
    loss: List[float] = field(default_factory=list)
    seconds: float = 0.0


def sample_tau(n: int, generator: torch.Generator, lambda_min: float = -5.0, lambda_max: float = 9.0,
               log_snr_fraction: float = 0.5) -> torch.Tensor:
    """Training times τ ∈ (0, 1): a ``log_snr_fraction`` share uniform in log-SNR of the linear interpolant, rest uniform."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    lam = lambda_min + (lambda_max - lambda_min) * torch.rand(n, generator=generator, dtype=torch.float64)
    use_lam = torch.rand(n, generator=generator) < log_snr_fraction
    return torch.where(use_lam, torch.sigmoid(lam), u.clamp(1e-4, 1 - 1e-4))


def train_loop(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
               n_data: int, iterations: int = 1000, batch_size: int = 32, lr: float = 2e-3,
               weight_decay: float = 1e-5, seed: int = 0, device: Union[str, torch.device] = "cpu",
               progress: bool = True, desc: str = "train", log_every: int = 50,
               parameters: Optional[Iterable[nn.Parameter]] = None) -> TrainLog:
    """AdamW with a 5 % linear warm-up and cosine decay over ``iterations`` minibatches; ``loss_fn(indices, generator)`` returns the loss.

    ``parameters``: the parameters to train (default all of ``model``'s; fine-tuning passes a subset).

    Raises:
        NonFiniteError: the loss became NaN/Inf (names the iteration).
    """
    if int(iterations) < 1 or int(batch_size) < 1:
        raise ConfigError("iterations", f"iterations and batch_size must be >= 1, got {iterations}, {batch_size}")
    params = list(model.parameters() if parameters is None else parameters)
    if not params:
        raise ConfigError("parameters", "nothing to train: the parameter list is empty")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = max(1, int(iterations) // 20)
    total = int(iterations)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    g = torch.Generator().manual_seed(int(seed))
    log = TrainLog()
    it = range(int(iterations))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        it = bar = tqdm(it, desc=desc, leave=False)
    start = time.perf_counter()
    running = 0.0
    model.train()
    for i in it:
        idx = torch.randint(0, n_data, (int(batch_size),), generator=g)
        loss = loss_fn(idx, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running += float(loss.detach())
        if (i + 1) % log_every == 0 or i + 1 == int(iterations):
            k = (i % log_every) + 1
            avg = running / k
            if not math.isfinite(avg):
                raise NonFiniteError(f"loss: NaN/Inf at iteration {i + 1} of {desc}; try a smaller lr")
            log.iterations.append(i + 1)
            log.loss.append(avg)
            running = 0.0
            if bar is not None:
                bar.set_postfix(loss=f"{avg:.4g}")
    model.eval()
    log.seconds = time.perf_counter() - start
    return log


def one_step_pairs(traj: torch.Tensor, stride: int = 1) -> Dict[str, torch.Tensor]:
    """All consecutive pairs ``(u_t, u_{t+stride})`` of trajectories ``(B, T, N, N)`` → ``{"inputs", "targets"}``."""
    if traj.dim() != 4 or traj.shape[1] <= stride:
        raise ConfigError("traj", f"need (B, T, N, N) with T > {stride}, got {tuple(traj.shape)}")
    a = traj[:, :-stride].reshape(-1, *traj.shape[-2:])
    b = traj[:, stride:].reshape(-1, *traj.shape[-2:])
    return {"inputs": a, "targets": b}


def history_windows(traj: torch.Tensor, history: int = 1, unroll: int = 1) -> torch.Tensor:
    r"""All windows of ``history + unroll`` consecutive frames of trajectories ``(B, T, N, N)`` → ``(M, history + unroll, N, N)``.

    A window holds the model's input history (the first ``history`` frames) and the ``unroll`` frames that follow;
    ``history = unroll = 1`` gives the pairs of :func:`one_step_pairs`.
    """
    from .. import validation

    k = validation.integer("history", history, 1, 10_000)
    u = validation.integer("unroll", unroll, 1, 10_000)
    if traj.dim() != 4 or traj.shape[1] < k + u:
        raise ConfigError("traj", f"need (B, T, N, N) with T >= history + unroll = {k + u}, got {tuple(traj.shape)}")
    w = traj.unfold(1, k + u, 1)  # (B, T - k - u + 1, N, N, k + u)
    return w.movedim(-1, 2).reshape(-1, k + u, *traj.shape[-2:]).contiguous()


def push_forward(step: Callable[[torch.Tensor], torch.Tensor], history: torch.Tensor, steps: int) -> torch.Tensor:
    r"""The push-forward trick (Brandstetter et al. 2022, "Message Passing Neural PDE Solvers"): ``steps`` model steps
    from a true history ``(B, K, N, N)`` *without gradient*; returns the history ``(B, K, N, N)`` the last, trained
    step starts from. The loss of an ``unroll = k`` run is then :math:`\|F_\theta(\mathrm{sg}[F_\theta^{k-1}(u_t)]) -
    u_{t+k}\|^2` (sg = stop-gradient): the model learns to correct the distribution shift of its own outputs
    while backpropagating through one step only. ``step`` maps a history to the next frame ``(B, N, N)``.
    """
    h = history
    with torch.no_grad():
        for _ in range(int(steps)):
            h = torch.cat([h[:, 1:], step(h)[:, None]], 1)
    return h.detach()

r"""Autoregressive rollouts of one-step models and their scores against the solver.

.. math:: \hat u_{n+1} = F(\hat u_n),\qquad \mathrm{err}_n = \frac{\|\hat u_n - u_n\|_2}{\|u_n\|_2}\ \text{(batch mean)}.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

from ..errors import ConfigError
from ..metrics.rollout import nrmse
from ..metrics.spectra import energy_spectrum, log_spectral_error, tail_ratio, tail_window


@torch.no_grad()
def rollout(step: Callable[[torch.Tensor], torch.Tensor], u0: torch.Tensor, steps: int,
            progress: bool = False, desc: str = "rollout") -> torch.Tensor:
    """Apply ``step`` ``steps`` times from ``u0`` ``(B, N, N)``; returns ``(B, steps + 1, N, N)`` (CPU-agnostic)."""
    if int(steps) < 1:
        raise ConfigError("steps", f"must be >= 1, got {steps}")
    out = [u0]
    it = range(int(steps))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, leave=False)
    u = u0
    for _ in it:
        u = step(u)
        out.append(u)
    return torch.stack(out, 1)


def rollout_error(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per rollout step ``(T,)`` of ``pred`` vs ``ref``, both ``(B, T, N, N)`` (batch mean).

    This is :func:`workbench.metrics.rollout.nrmse` (PDEBench's nRMSE); the name is kept for the pipeline.
    """
    return nrmse(pred, ref)


def rollout_scores(pred: torch.Tensor, ref: torch.Tensor, window: int = 10) -> Dict[str, object]:
    """Rollout error curve, and spectra, tail ratio and log-spectral error over the last ``window`` frames.

    The spectra are enstrophy spectra (``kind="scalar"`` of vorticity), ensemble-averaged over batch and window;
    the tail ratio is over :func:`~workbench.metrics.spectra.tail_window` and the log-spectral error over shells
    1 … the window's top, as in the ``fields spectra`` pipeline.
    """
    err = rollout_error(pred, ref)
    w = min(int(window), pred.shape[1])
    sp = energy_spectrum(pred[:, -w:]).mean()
    sr = energy_spectrum(ref[:, -w:]).mean()
    kc, km = tail_window(pred.shape[-1])
    return {
        "error": err,
        "spectrum": sp.energy,
        "reference_spectrum": sr.energy,
        "k": sp.k,
        "tail_ratio": tail_ratio(sp, sr, k_cut=kc, k_max=km),
        "tail_range": [kc, km],
        "log_spectral_error": log_spectral_error(sp, sr, k_min=1, k_max=int(km)),
    }

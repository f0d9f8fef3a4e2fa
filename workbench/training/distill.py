r"""One-step distillation of a (reflowed) flow into a one-step student (Liu et al. 2023, "InstaFlow"; Zhu et al. 2024,
"SlimFlow"), with the pseudo-Huber loss of Lee, Lin & Fanti 2024, "Improving the Training of Rectified Flows".

Given teacher couplings :math:`(x_0, x_1 = \Phi^{teacher}_{0\to1}(x_0))` (e.g. from
:func:`workbench.training.reflow.generate_pairs`), the student is a velocity model :math:`v_\theta(x, t)` whose one Euler
step over [0, 1] is the generator, :math:`\hat x_1 = x_0 + v_\theta(x_0, 0)`, trained on

.. math:: \mathcal L = E\,d(\hat x_1, x_1),\qquad d_{\ell_2} = \|\hat x_1 - x_1\|^2,\quad
    d_{\text{pH}} = \sqrt{\|\hat x_1 - x_1\|^2 + c^2} - c,\ c = 0.00054\sqrt{D}\ \text{(their default)}.

Sampling the student with any one-step solver (``euler`` at NFE 1) on a ``Field(student, linear, "velocity")``
reproduces :math:`\hat x_1`; a smaller student network is the SlimFlow variant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from tqdm.auto import tqdm

from .. import validation
from ..errors import ConfigError

LOSSES = ("l2", "pseudo_huber")


def pseudo_huber(pred: torch.Tensor, target: torch.Tensor, c: Optional[float] = None) -> torch.Tensor:
    r""":math:`E[\sqrt{\|p - y\|^2 + c^2} - c]` over the batch (norm over all non-batch dims); ``c`` defaults to
    :math:`0.00054\sqrt D`."""
    d2 = ((pred - target) ** 2).flatten(1).sum(1)
    c = 0.00054 * math.sqrt(pred[0].numel()) if c is None else float(c)
    if not c > 0:
        raise ConfigError("huber_c", f"must be > 0, got {c!r}")
    return (torch.sqrt(d2 + c * c) - c).mean()


@dataclass(frozen=True)
class DistillConfig:
    """Distillation hyper-parameters.

    Attributes:
        steps, batch_size, lr: Adam optimisation.
        loss: ``l2`` or ``pseudo_huber``; huber_c: the pseudo-Huber c (None: 0.00054·√D).
        seed: seed of the batch draws.  progress: tqdm bar.
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    loss: str = "pseudo_huber"
    huber_c: Optional[float] = None
    seed: int = 0
    progress: bool = False

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            validation.integer(name, getattr(self, name), 1)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("lr", f"must be > 0, got {self.lr!r}")
        if self.loss not in LOSSES:
            raise ConfigError("loss", f"got {self.loss!r}; allowed values are: {', '.join(LOSSES)}")


@dataclass
class DistillResult:
    """The trained student (in place) and the loss history."""

    student: torch.nn.Module
    losses: List[float] = field(default_factory=list)


def one_step(student: torch.nn.Module, x0: torch.Tensor) -> torch.Tensor:
    """The student's generator: one Euler step :math:`x_0 + v_\\theta(x_0, 0)`."""
    return x0 + student(x0, torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device))


def distill(student: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor,
            config: Optional[DistillConfig] = None) -> DistillResult:
    """Fit ``student(x, t) -> velocity`` so that one Euler step maps each ``x0`` to its teacher image ``x1``."""
    cfg = config or DistillConfig()
    if x0.shape != x1.shape:
        raise ConfigError("pairs", f"x0 and x1 must have equal shapes, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    param = next(student.parameters())
    x0, x1 = x0.to(param), x1.to(param)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    out = DistillResult(student)
    for _ in tqdm(range(cfg.steps), disable=not cfg.progress, desc="distill"):
        idx = torch.randint(0, x0.shape[0], (cfg.batch_size,), generator=g)
        pred = one_step(student, x0[idx])
        loss = (pseudo_huber(pred, x1[idx], cfg.huber_c) if cfg.loss == "pseudo_huber"
                else ((pred - x1[idx]) ** 2).flatten(1).sum(1).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.losses.append(float(loss.detach()))
    return out

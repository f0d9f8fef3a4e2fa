r"""Reflow (Liu, Gong & Liu 2023, "Flow Straight and Fast"): straighten a trained flow by retraining on its own
ODE couplings.

1. Draw :math:`x_0 \sim N(0, I)` and integrate the trained probability-flow ODE to :math:`x_1 = \Phi_{0\to1}(x_0)`.
2. Retrain (initialised from the current model) on the *deterministic* pairs :math:`(x_0, x_1)` with the same
   interpolant loss. The marginal at t = 1 is preserved while the transport cost and the straightness
   :math:`S = \int_0^1 E\,|(X_1 - X_0) - \dot X_t|^2\,dt` decrease.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..errors import ConfigError
from ..models.predictor import Predictor
from .trainer import TrainConfig, Trainer


@torch.no_grad()
def generate_pairs(predictor: Predictor, n: int, solver: str = "rk4", nfe: int = 48,
                   generator: Optional[torch.Generator] = None, batch_size: int = 4096,
                   device: Union[str, torch.device] = "cpu") -> Tuple[torch.Tensor, torch.Tensor]:
    """``n`` couplings ``(x0, x1)``: Gaussian ``x0`` and its image under the model's ODE (``solver`` at ``nfe``)."""
    from .. import solvers

    if not predictor.interpolant.gaussian_base:
        raise ConfigError("interpolant", f"reflow needs a Gaussian base; {predictor.interpolant.name!r} has none")
    shape = tuple(predictor.network.shape)
    param = next(predictor.network.parameters())
    x0 = torch.randn((int(n), *shape), generator=generator, dtype=torch.float64)
    sol = solvers.get(solver)
    field = predictor.field()
    out = []
    for i in range(0, int(n), batch_size):
        xb = x0[i:i + batch_size].to(device=device, dtype=param.dtype)
        out.append(sol.sample(field, xb, nfe).x.to("cpu", torch.float64))
    return x0, torch.cat(out)


class PairedData:
    """Fixed couplings as a data source: ``sample(n, generator) -> (x0, x1)`` draws pairs with replacement."""

    def __init__(self, x0: torch.Tensor, x1: torch.Tensor):
        if x0.shape != x1.shape:
            raise ConfigError("pairs", f"x0 and x1 must have equal shapes, got {tuple(x0.shape)} and {tuple(x1.shape)}")
        self.x0, self.x1 = x0, x1

    def sample(self, n: int, generator: Optional[torch.Generator] = None):
        idx = torch.randint(0, self.x0.shape[0], (int(n),), generator=generator)
        return self.x0[idx], self.x1[idx]


@dataclass
class ReflowResult:
    """Outcome of :func:`reflow`.

    Attributes:
        predictor: the rectified model (EMA weights).
        trainer: its trainer (history, checkpoints).
        straightness_before, straightness_after: :func:`~workbench.metrics.straightness.straightness` of the
            old and new model from the same noise (normalised value in ``info``).
        pairs: the couplings used.
    """

    predictor: Predictor
    trainer: Trainer
    straightness_before: float
    straightness_after: float
    info: Dict[str, Any]
    pairs: Tuple[torch.Tensor, torch.Tensor]


def reflow(predictor: Predictor, config: Union[TrainConfig, Dict[str, Any]], n_pairs: int = 10000,
           solver: str = "rk4", nfe: int = 48, seed: int = 0, eval_samples: int = 2000, eval_nfe: int = 64) -> ReflowResult:
    """One reflow round: generate couplings, retrain from the current weights, and measure straightness.

    Args:
        predictor: the trained model (any prediction kind; the copy keeps that kind).
        config: training config for the new round (its ``coupling`` is ignored: pairs are fixed).
        n_pairs: number of ODE couplings.
        solver, nfe: how to integrate the couplings.
        seed: seed of the couplings and of the evaluation noise.
        eval_samples, eval_nfe: straightness is measured on this many fresh noise samples with RK4 at ``eval_nfe``.
    """
    from ..metrics.straightness import straightness

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    cfg = replace(cfg, coupling="independent", coupling_params={})
    x0, x1 = generate_pairs(predictor, n_pairs, solver, nfe, torch.Generator().manual_seed(seed), device=cfg.device)
    new = Predictor(copy.deepcopy(predictor.network).requires_grad_(True), predictor.interpolant, predictor.prediction, predictor.architecture)
    trainer = Trainer(new, PairedData(x0, x1), cfg).train()
    rectified = trainer.ema_predictor()
    shape = tuple(predictor.network.shape)
    ev = torch.randn((eval_samples, *shape), generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    dt = next(predictor.network.parameters()).dtype
    with torch.no_grad():
        before = straightness(predictor.field(), ev.to(dt), nfe=eval_nfe)
        after = straightness(rectified.field(), ev.to(dt), nfe=eval_nfe)
    info = {"normalized_before": before.normalized, "normalized_after": after.normalized, "n_pairs": n_pairs,
            "pair_solver": solver, "pair_nfe": nfe}
    return ReflowResult(rectified, trainer, before.value, after.value, info, (x0, x1))


__all__ = ["generate_pairs", "PairedData", "reflow", "ReflowResult"]

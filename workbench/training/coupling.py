r"""Couplings of a base batch :math:`x_0` with a data batch :math:`x_1` before the loss.

``independent``: the product coupling (plain flow matching). ``ot``: minibatch optimal transport (Tong et al. 2024,
OT-CFM; Pooladian et al. 2023): re-pair the batch by the permutation :math:`\pi` minimising
:math:`\sum_i |x_0^{\pi(i)} - x_1^i|^2` — exact assignment (Hungarian, ``method="exact"``), exact EMD with POT
(``method="emd"``), or entropic OT with POT (``method="sinkhorn"``, ``reg`` > 0; pairs drawn from the plan).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import Registry

COUPLINGS: "Registry[Coupling]" = Registry("coupling")


class Coupling:
    """Re-pair ``(x0, x1)``; returns tensors of the same shapes."""

    name = "coupling"

    def __call__(self, x0: torch.Tensor, x1: torch.Tensor, generator: Optional[torch.Generator] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        return x0, x1

    def params(self):
        return dict(getattr(self, "_params", {}))


@COUPLINGS.register("independent", "none", "product")
class Independent(Coupling):
    """The product coupling (no re-pairing)."""


def _cost(x0: torch.Tensor, x1: torch.Tensor) -> np.ndarray:
    a = x0.reshape(x0.shape[0], -1).detach().to("cpu", torch.float64)
    b = x1.reshape(x1.shape[0], -1).detach().to("cpu", torch.float64)
    return torch.cdist(a, b).pow(2).numpy()


@COUPLINGS.register("ot", "minibatch_ot", "ot_cfm")
class MinibatchOT(Coupling):
    """Minibatch optimal-transport pairing.

    Args:
        method: ``exact`` (scipy's Hungarian assignment), ``emd`` (POT exact) or ``sinkhorn`` (POT entropic).
        reg: entropic regularisation for ``sinkhorn`` (relative to the mean cost).
    """

    METHODS = ("exact", "emd", "sinkhorn")

    def __init__(self, method: str = "exact", reg: float = 0.05):
        if method not in self.METHODS:
            raise ConfigError("method", f"got {method!r}; allowed values are: {', '.join(self.METHODS)}")
        self.method, self.reg = method, float(reg)
        if method == "sinkhorn" and self.reg <= 0:
            raise ConfigError("reg", f"sinkhorn needs reg > 0, got {reg}")
        self._params = {"method": method, "reg": self.reg}

    def permutation(self, x0: torch.Tensor, x1: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Index ``p`` such that ``x0[p]`` is paired with ``x1``."""
        if x0.shape[0] != x1.shape[0]:
            raise ConfigError("batch", f"OT coupling needs equal batch sizes, got {x0.shape[0]} and {x1.shape[0]}")
        C = _cost(x0, x1)
        n = C.shape[0]
        if self.method == "exact":
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(C)   # rows index x0, cols index x1
            p = np.empty(n, dtype=np.int64)
            p[cols] = rows
            return torch.as_tensor(p)
        import ot

        w = np.full(n, 1.0 / n)
        if self.method == "emd":
            plan = ot.emd(w, w, C)
        else:
            plan = ot.sinkhorn(w, w, C / max(C.mean(), 1e-12), self.reg, method="sinkhorn_log", numItermax=5000)
        plan_t = torch.as_tensor(plan, dtype=torch.float64).T.clamp_min(0)   # rows: x1, columns: x0
        if self.method == "emd":
            return plan_t.argmax(dim=1)
        return torch.multinomial(plan_t / plan_t.sum(1, keepdim=True), 1, generator=generator).squeeze(1)

    def __call__(self, x0, x1, generator=None):
        p = self.permutation(x0, x1, generator).to(x0.device)
        return x0[p], x1


def get_coupling(name, **params) -> Coupling:
    """A coupling by name (``independent``, ``ot``) or an instance passed through."""
    if isinstance(name, Coupling):
        return name
    return COUPLINGS.get(name, **params)


__all__ = ["COUPLINGS", "Coupling", "Independent", "MinibatchOT", "get_coupling"]

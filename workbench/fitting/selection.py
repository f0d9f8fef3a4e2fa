r"""The one keep-if-better rule and the search bookkeeping every fit shares (best so far, held-out checkpoints,
early stopping, budgets, progress bar)."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import numpy as np
import torch

from .. import validation
from ..errors import ConfigError


def keep_if_better(init_loss: float, loss: float, init_holdout: float = math.nan, holdout: float = math.nan) -> bool:
    r"""Keep a fit only if it beats its start on the fitting part *and* does not lose on the held-out part:

    .. math::
        L_{fit} < L^{0}_{fit}\quad\text{and}\quad\big(\text{no held-out part}\ \text{or}\ L_{held} \le L^{0}_{held}\big).

    A non-finite fitted loss is never kept. ``init_holdout``/``holdout`` are ``nan`` when there is no held-out part.
    """
    if not math.isfinite(loss) or not loss < init_loss:
        return False
    if math.isnan(init_holdout) and math.isnan(holdout):
        return True
    return math.isfinite(holdout) and holdout <= init_holdout


class StopSearch(Exception):
    """Raised by :meth:`Search.record` to end the optimiser (its ``reason`` says why)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _copy(theta: Any) -> Any:
    return theta.detach().clone() if isinstance(theta, torch.Tensor) else np.array(theta, dtype=float, copy=True)


class Search:
    """Bookkeeping of one optimiser run over parameters ``theta`` (tensor or numpy vector).

    :meth:`record` is called with every evaluated point and its fitting loss. It keeps the best point on the
    fitting part; every ``check_every`` records it evaluates ``held(theta)`` (when given) and keeps the best
    held-out checkpoint; it raises :class:`StopSearch` when ``max_evals`` records are reached, when ``max_seconds``
    have passed, or when the held-out loss has not improved for ``patience`` records (early stopping).

    Args:
        theta0: the start (loss ``loss0`` on the fitting part).
        held: ``theta -> held-out loss`` or ``None`` (no held-out checks; no early stopping).
        select: ``"fit"`` returns the best point on the fitting part, ``"holdout"`` the best held-out checkpoint
            (the fit's best point is checkpointed too).
        progress: a tqdm bar labelled ``desc`` with ``total`` = ``max_evals``.
    """

    def __init__(self, theta0: Any, loss0: float, held: Optional[Callable[[Any], float]] = None,
                 select: str = "fit", check_every: int = 25, patience: Optional[int] = None,
                 max_evals: Optional[int] = None, max_seconds: Optional[float] = None,
                 progress: bool = False, desc: str = "fit"):
        if select not in ("fit", "holdout"):
            raise ConfigError("select", f"must be 'fit' or 'holdout', got {select!r}")
        validation.integer("check_every", check_every, 1)
        if patience is not None:
            validation.integer("patience", patience, 1, hint=" or None")
        if max_seconds is not None:
            validation.number("max_seconds", max_seconds, above=0.0, hint=" or None")
        if select == "holdout" and held is None:
            raise ConfigError("select", "'holdout' needs a held-out part: set holdout > 0")
        self.held, self.select, self.check_every, self.patience = held, select, check_every, patience
        self.max_evals, self.max_seconds = max_evals, max_seconds
        self.evals, self.stopped = 0, "converged"
        self.best_loss, self.best = loss0, _copy(theta0)
        self.best_held, self.best_held_theta, self._last_gain = math.inf, _copy(theta0), 0
        if held is not None:
            self.best_held = held(theta0)
        self._tic = time.perf_counter()
        self._bar = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=max_evals, desc=desc, leave=False)

    def record(self, theta: Any, loss: float) -> None:
        """Note one evaluation (see class docstring); may raise :class:`StopSearch`."""
        self.evals += 1
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss, self.best = loss, _copy(theta)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{self.best_loss:.3e}")
        if self.held is not None and self.evals % self.check_every == 0:
            self.checkpoint(theta)
            if self.patience is not None and self.evals - self._last_gain >= self.patience:
                raise StopSearch("early stop")
        if self.max_evals is not None and self.evals >= self.max_evals:
            raise StopSearch("budget")
        if self.max_seconds is not None and time.perf_counter() - self._tic > self.max_seconds:
            raise StopSearch("time")

    def checkpoint(self, theta: Any) -> None:
        """Evaluate ``theta`` on the held-out part and keep it if it is the best there so far."""
        h = self.held(theta)  # type: ignore[misc]
        if h < self.best_held:
            self.best_held, self.best_held_theta, self._last_gain = h, _copy(theta), self.evals

    def close(self) -> Any:
        """End the search (close the bar) and return the selected point."""
        if self._bar is not None:
            self._bar.close()
        if self.select == "holdout":
            self.checkpoint(self.best)
            return self.best_held_theta
        return self.best

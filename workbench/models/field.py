r"""The one model contract: ``model(x, t) -> prediction`` with ``t`` of shape ``(B,)``.

:class:`Field` wraps a model, the interpolant it was trained for and the kind of quantity it predicts,
counts every model call (the NFE audit) and enforces an optional budget. A :class:`Prediction` converts
lazily to any other kind (velocity, score, data denoiser, noise, ...) through the interpolant's algebra,
so one model call serves every sampler.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple, Union

import torch

from ..errors import BudgetExceededError, ConfigError
from ..interpolants.base import Interpolant, canonical_prediction

#: A model returning the exact pair (E[x1|x], score) instead of one prediction (the Gaussian-mixture ground truth).
DATA_SCORE = "data_score"

ModelOutput = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]


class Prediction:
    """One model evaluation at ``(x, t)`` and its lazily computed conversions."""

    __slots__ = ("x", "t", "kind", "value", "interpolant", "_cache", "_ds")

    def __init__(self, x: torch.Tensor, t: float, kind: str, value: ModelOutput, interpolant: Interpolant):
        self.x, self.t, self.kind, self.value, self.interpolant = x, t, kind, value, interpolant
        self._cache: Dict[str, torch.Tensor] = {}
        self._ds: Optional[Tuple[torch.Tensor, torch.Tensor]] = value if kind == DATA_SCORE else None  # type: ignore[assignment]

    def data_and_score(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The pair (E[x1|x_t], ∇log ρ_t)."""
        if self._ds is None:
            self._ds = self.interpolant.to_data_and_score(self.value, self.x, self.t, self.kind)  # type: ignore[arg-type]
        return self._ds

    def as_kind(self, kind: str) -> torch.Tensor:
        """This prediction converted to ``kind`` (one of the interpolant's PREDICTIONS)."""
        kind = canonical_prediction(kind, "kind")
        if kind == self.kind:
            return self.value  # type: ignore[return-value]
        if kind not in self._cache:
            if self.kind != DATA_SCORE:
                why = self.interpolant.conversion_singularity(self.kind, kind, self.t)
                if why is not None:
                    raise ConfigError(
                        "t_start/t_end",
                        f"{why} ({self.interpolant.name!r} interpolant). Integrate over a shorter interval "
                        f"(e.g. t_end=0.999), use a solver that needs only the model's own prediction, or a model "
                        f"predicting a different quantity",
                    )
            d, s = self.data_and_score()
            self._cache[kind] = self.interpolant.from_data_and_score(d, s, self.t, kind)
        return self._cache[kind]

    @property
    def velocity(self) -> torch.Tensor:
        """:math:`b(t, x)`."""
        return self.as_kind("velocity")

    @property
    def score(self) -> torch.Tensor:
        """:math:`\\nabla \\log \\rho_t(x)`."""
        return self.as_kind("score")

    @property
    def data(self) -> torch.Tensor:
        """:math:`E[x_1 | x_t = x]` (the x0-prediction of diffusion codebases)."""
        return self.as_kind("x1")

    @property
    def noise(self) -> torch.Tensor:
        """:math:`E[\\xi | x_t = x]` (the epsilon-prediction of diffusion codebases)."""
        return self.as_kind("noise")


class Field:
    """A model made into a sampler-ready field with an NFE counter.

    Args:
        model: ``model(x, t) -> Tensor`` (or ``(data, score)`` when ``prediction == "data_score"``), ``t`` of shape ``(B,)``.
        interpolant: the interpolant the model's prediction refers to.
        prediction: what the model predicts: ``velocity``, ``score``, ``x1``, ``noise``, ``x0``, ``z`` or ``data_score``.

    Attributes:
        nfe: model calls made since the last :meth:`reset`.
        budget: when set, a call beyond it raises :class:`BudgetExceededError` instead of running.
    """

    def __init__(self, model: Callable[[torch.Tensor, torch.Tensor], ModelOutput], interpolant: Interpolant,
                 prediction: str = "velocity"):
        if not callable(model):
            raise ConfigError("model", f"must be callable as model(x, t), got {type(model).__name__}")
        self.model = model
        self.interpolant = interpolant
        self.prediction = prediction if prediction == DATA_SCORE else canonical_prediction(prediction)
        self.nfe = 0
        self.budget: Optional[int] = None

    def reset(self, budget: Optional[int] = None) -> None:
        """Zero the counter and set a new budget (``None``: unlimited)."""
        self.nfe = 0
        self.budget = budget

    def predict(self, x: torch.Tensor, t: float, t_batch: Optional[torch.Tensor] = None) -> Prediction:
        """Call the model once at ``(x, t)`` (a python float time) and count it.

        ``t_batch``: optionally the model's time argument already built (``t`` as a ``(B,)`` tensor of ``x``'s
        dtype and device; a solver may build all of a run's in one op). The model gets a tensor of its own either way.
        """
        if self.budget is not None and self.nfe >= self.budget:
            raise BudgetExceededError(f"nfe: budget of {self.budget} function evaluations exhausted")
        self.nfe += 1
        tt = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device) if t_batch is None else t_batch
        try:
            out = self.model(x, tt)
        except RuntimeError as exc:  # translate torch's device/shape complaints into one readable line
            msg = str(exc)
            if "device" in msg:
                raise ConfigError("device", f"the state x is on {x.device} but the model expects another device "
                                            f"({msg.splitlines()[0]}); move both to the same device") from exc
            if "shape" in msg or "size" in msg:
                raise ConfigError("x", f"the model cannot take a state of shape {tuple(x.shape)} "
                                       f"({msg.splitlines()[0]})") from exc
            raise
        return Prediction(x, t, self.prediction, out, self.interpolant)

    def velocity(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """One model call, returned as velocity."""
        return self.predict(x, t).velocity


def as_field(model: object) -> Field:
    """A :class:`Field` as is, or the field of an object offering ``.field()`` (a Predictor, a trained model)."""
    if isinstance(model, Field):
        return model
    if hasattr(model, "field"):
        return model.field()  # type: ignore[attr-defined,no-any-return]
    raise ConfigError("field", f"expected a Field or a Predictor, got {type(model).__name__}")

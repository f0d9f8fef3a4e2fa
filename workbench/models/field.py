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
    """A model made into a sampler-ready field.

    Args:
        model: ``model(x, t) -> Tensor`` (or ``(data, score)`` when ``prediction == "data_score"``), ``t`` of shape ``(B,)``.
        interpolant: the interpolant the model's prediction refers to.
        prediction: what the model predicts: ``velocity``, ``score``, ``x1``, ``noise``, ``x0``, ``z`` or ``data_score``.

    Attributes:
        nfe: model calls made through this field since it was built or :meth:`reset` (a statistic only: a
            sampling run counts and budgets its own calls through a :class:`RunField` view and never resets this).
    """

    def __init__(self, model: Callable[[torch.Tensor, torch.Tensor], ModelOutput], interpolant: Interpolant,
                 prediction: str = "velocity"):
        if not callable(model):
            raise ConfigError("model", f"must be callable as model(x, t), got {type(model).__name__}")
        self.model = model
        self.interpolant = interpolant
        self.prediction = prediction if prediction == DATA_SCORE else canonical_prediction(prediction)
        self.nfe = 0

    def reset(self) -> None:
        """Zero the call statistic :attr:`nfe`."""
        self.nfe = 0

    def predict(self, x: torch.Tensor, t: float, t_batch: Optional[torch.Tensor] = None) -> Prediction:
        """Call the model once at ``(x, t)`` (a python float time) and count it in :attr:`nfe`.

        ``t_batch``: optionally the model's time argument already built (``t`` as a ``(B,)`` tensor of ``x``'s
        dtype and device; a solver may build all of a run's in one op). The model gets a tensor of its own either way.
        """
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


def check_output(value: ModelOutput, x: torch.Tensor, kind: str) -> None:
    """Raise :class:`ConfigError` unless a model output has the state's shape, dtype and device.

    A wrong-shape output would otherwise broadcast into a finite, wrong answer (e.g. ``v[:, :1]`` against a
    ``(B, 2)`` state), and a float32 output would silently downcast a float64 run.
    """
    parts = value if kind == DATA_SCORE else (value,)
    if kind == DATA_SCORE and not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError("model", f"a 'data_score' model must return a pair (data, score), got {type(value).__name__}")
    for v in parts:  # type: ignore[union-attr]
        if not isinstance(v, torch.Tensor):
            raise ConfigError("model", f"must return a tensor of the state's shape {tuple(x.shape)}, got "
                                       f"{type(v).__name__}")
        if v.shape != x.shape:
            raise ConfigError("model", f"returned shape {tuple(v.shape)} for a state of shape {tuple(x.shape)}; "
                                       f"a model must return a tensor of the state's shape")
        if v.dtype != x.dtype or v.device != x.device:
            raise ConfigError("model", f"returned {v.dtype} on {v.device} for a {x.dtype} state on {x.device}; "
                                       f"a model must return the state's dtype and device")


class RunField(Field):
    """One sampling run's view of a :class:`Field`: it counts this run's model calls, enforces the run's budget and
    checks the first output against the state (shape, dtype, device).

    The user's field is never reset by a run, so interleaved runs on one model each keep their own count.

    Args:
        inner: the field the calls go to (its own statistic :attr:`Field.nfe` goes up too).
        budget: the most calls this run may make (``None``: unlimited).
    """

    def __init__(self, inner: Field, budget: Optional[int] = None):  # noqa: D107  (no Field.__init__: a view)
        self.inner, self.budget, self.nfe = inner, budget, 0
        self.model, self.interpolant, self.prediction = inner.model, inner.interpolant, inner.prediction
        self._plain = type(inner).predict is Field.predict
        self._checked = False

    def reset(self) -> None:  # pragma: no cover - a run's count is its own
        raise TypeError("a run's field view is not reset; start a new run instead")

    def predict(self, x: torch.Tensor, t: float, t_batch: Optional[torch.Tensor] = None) -> Prediction:
        """Count one call against this run's budget and forward it (``t_batch`` as in :meth:`Field.predict`)."""
        if self.budget is not None and self.nfe >= self.budget:
            raise BudgetExceededError(f"nfe: budget of {self.budget} function evaluations exhausted at t={t:.6g} "
                                      f"(the run had not reached its end time); raise nfe or, for an adaptive "
                                      f"solver, loosen rtol/atol")
        self.nfe += 1
        pred = self.inner.predict(x, t, t_batch) if self._plain else self.inner.predict(x, t)
        if not self._checked:
            check_output(pred.value, x, pred.kind)
            self._checked = True
        return pred


def as_field(model: object) -> Field:
    """A :class:`Field` as is, or the field of an object offering ``.field()`` (a Predictor, a trained model)."""
    if isinstance(model, Field):
        return model
    if hasattr(model, "field"):
        return model.field()  # type: ignore[attr-defined,no-any-return]
    raise ConfigError("field", f"expected a Field or a Predictor, got {type(model).__name__}")

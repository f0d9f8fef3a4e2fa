"""One result type for every fit (:class:`FitResult`), with the grid and non-stationary views."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Dict, Tuple, TypeVar

from ..errors import ConfigError

R = TypeVar("R", bound="FitResult")


@dataclass
class FitResult:
    """Outcome of a fit to a pilot run.

    Attributes:
        what: what was fitted (``"grid"``, ``"nonstationary"``).
        params / init_params: the fitted and the starting numbers (JSON-able dicts; ``params`` is the start when
            the fit was not kept).
        loss / init_loss: mean L2 to the reference on the fitting part of the pilot.
        holdout_loss / init_holdout_loss: the same on the held-out part (``nan`` when there is none).
        improved: the keep-if-better rule's verdict (:func:`~workbench.fitting.keep_if_better`).
        iterations: objective evaluations of the optimiser.
        pilot_nfe: batched model calls of the whole fit (reference + every run; backward passes not counted).
        reference_nfe: the part of ``pilot_nfe`` spent on the reference (0 for an exact reference).
        seconds: wall time.
        n_parameters: fitted numbers; n_fit / n_held: pilot states in each part.
        stopped: why the optimiser stopped (``"converged"``, ``"budget"``, ``"early stop"``, ``"time"``, ...).
    """

    what: str
    params: Dict[str, Any]
    init_params: Dict[str, Any]
    loss: float
    init_loss: float
    holdout_loss: float
    init_holdout_loss: float
    improved: bool
    iterations: int
    pilot_nfe: int
    reference_nfe: int = 0
    seconds: float = 0.0
    n_parameters: int = 0
    n_fit: int = 0
    n_held: int = 0
    stopped: str = ""

    #: names of ``params`` entries also written at the top level of the JSON (read-only views)
    _views: ClassVar[Tuple[str, ...]] = ()

    def to_json(self) -> str:
        """All fields as JSON (:meth:`from_json` reads it back)."""
        d = asdict(self)
        for name in self._views:
            d[name] = getattr(self, name)
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls: type, text: str) -> "FitResult":
        """Inverse of :meth:`to_json`.

        Raises:
            ConfigError: not JSON, or unknown / missing fields (named).
        """
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError("fit", f"is not valid JSON ({exc})") from None
        if not isinstance(d, dict):
            raise ConfigError("fit", f"must be a JSON object, got {type(d).__name__}")
        for name in cls._views:
            d.pop(name, None)
        names = {f.name for f in fields(cls)}
        if set(d) - names:
            raise ConfigError("fit", f"unknown field(s) {sorted(set(d) - names)}; allowed: {sorted(names)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError("fit", f"missing field(s): {exc}") from None


@dataclass
class GridFit(FitResult):
    """A fitted time grid (``params = {"times": [...]}``); from :func:`~workbench.fitting.fit_grid`."""

    _views: ClassVar[Tuple[str, ...]] = ("times", "init_times")

    @property
    def times(self):
        """The fitted grid (``steps + 1`` points, endpoints exact)."""
        return self.params["times"]

    @property
    def init_times(self):
        """The starting grid."""
        return self.init_params["times"]

    @property
    def evals(self) -> int:
        """Optimiser evaluations (sampling runs on the fitting part)."""
        return self.iterations

    @property
    def schedule(self):
        """The fitted grid as a schedule (``Experiment(schedule="explicit", schedule_params={"times": ...})``)."""
        from ..schedules.explicit import ExplicitGrid

        return ExplicitGrid(self.times)


@dataclass
class NSFit(FitResult):
    """Fitted non-stationary coefficients (``params``: the :class:`~workbench.solvers.NSCoefficients` fields);
    from :func:`~workbench.fitting.fit_nonstationary`."""

    _views: ClassVar[Tuple[str, ...]] = ()

    @property
    def coefficients(self) -> Dict[str, Any]:
        """The fitted coefficients (the start's when the fit was not kept)."""
        return self.params

    @property
    def init_coefficients(self) -> Dict[str, Any]:
        """The starting coefficients."""
        return self.init_params

    @property
    def solver(self):
        """The fitted solver (``SOLVERS.get("nonstationary", coefficients=...)``)."""
        from ..solvers import SOLVERS

        return SOLVERS.get("nonstationary", coefficients=self.coefficients)

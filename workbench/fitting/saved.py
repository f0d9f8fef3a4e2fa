"""Saved fits: a JSON file holding the fits applied to an experiment, in order, and their reload.

``save_fits(path, fits)`` writes ``{"workbench_fits": 1, "fits": [FitResult JSON, ...]}`` atomically;
``load_fits(path)`` reads it back (each entry rebuilt as its own type: ``grid`` → :class:`GridFit`,
``nonstationary`` → :class:`NSFit`, ``usf`` → :class:`~workbench.fitting.usf.USFFit`, else :class:`FitResult`);
``apply_fit(experiment, fit)`` is the experiment that runs it (an explicit grid, the fitted non-stationary
coefficients, or the searched solver's exact non-stationary form).
"""
from __future__ import annotations

import json
from typing import List, Sequence

from ..errors import ConfigError
from .result import FitResult, GridFit, NSFit

FORMAT = 1


def _types():
    from .usf import USFFit

    return {"grid": GridFit, "nonstationary": NSFit, "usf": USFFit}


def save_fits(path: str, fits: Sequence[FitResult]) -> None:
    """Write ``fits`` (in the order they were applied) to ``path`` as JSON (temp file + rename)."""
    from ..files import atomic_write_text

    atomic_write_text(path, json.dumps({"workbench_fits": FORMAT, "fits": [json.loads(f.to_json()) for f in fits]},
                                       indent=1))


def load_fits(path: str) -> List[FitResult]:
    """The fits saved in ``path`` by :func:`save_fits`.

    Raises:
        ConfigError: (field ``--load-fit``) a missing or unreadable file, not a saved-fits file, a corrupt entry.
    """
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("--load-fit", f"cannot read {path!r} ({exc.strerror or exc})") from None
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise ConfigError("--load-fit", f"{path!r} is not JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("workbench_fits") != FORMAT or not isinstance(d.get("fits"), list):
        raise ConfigError("--load-fit", f"{path!r} is not a saved-fits file (written by `workbench run --save-fit`)")
    out = []
    types = _types()
    for i, item in enumerate(d["fits"]):
        if not isinstance(item, dict):
            raise ConfigError("--load-fit", f"{path!r}: fit {i} is not a JSON object")
        cls = types.get(item.get("what"), FitResult)
        try:
            out.append(cls.from_json(json.dumps(item)))
        except ConfigError as exc:
            raise ConfigError("--load-fit", f"{path!r}: fit {i}: {exc}") from None
    return out


def apply_fit(exp, fit: FitResult):
    """The experiment ``exp`` running ``fit`` (a copy; the NFE and interval must be the fit's).

    Raises:
        ConfigError: (``--load-fit``) a fit of an unknown kind, or for another NFE / interval than ``exp``.
    """
    from dataclasses import replace

    if fit.what == "grid":
        times = list(fit.params["times"])
        steps = exp._solver.steps_for_nfe(exp.nfe)  # noqa: SLF001
        if len(times) - 1 != steps or abs(times[0] - exp.t_start) > 1e-12 or abs(times[-1] - exp.t_end) > 1e-12:
            raise ConfigError("--load-fit", f"the saved grid has {len(times) - 1} steps on [{times[0]}, {times[-1]}]; "
                                            f"this run has {steps} steps of {exp.solver!r} on [{exp.t_start}, "
                                            f"{exp.t_end}] (set --nfe/--t-start/--t-end/--solver as when it was fitted)")
        return replace(exp, schedule="explicit", schedule_params={"times": times})
    if fit.what == "nonstationary":
        coeffs = dict(fit.params)
    elif fit.what == "usf":
        field_ = exp._problem.field(exp._interpolant, exp._device, exp._dtype)  # noqa: SLF001
        from dataclasses import asdict

        coeffs = asdict(fit.coefficients(field_))
    else:
        raise ConfigError("--load-fit", f"cannot apply a fit of kind {fit.what!r}; allowed: grid, nonstationary, usf")
    n = len(coeffs["times"])
    if n != exp.nfe or abs(coeffs["t_start"] - exp.t_start) > 1e-12 or abs(coeffs["t_end"] - exp.t_end) > 1e-12:
        raise ConfigError("--load-fit", f"the saved solver makes {n} model calls on [{coeffs['t_start']}, "
                                        f"{coeffs['t_end']}]; this run has --nfe {exp.nfe} on [{exp.t_start}, "
                                        f"{exp.t_end}] (set them as when it was fitted)")
    return replace(exp, solver="nonstationary", solver_params={"coefficients": coeffs})

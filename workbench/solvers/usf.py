r"""A per-step exponential-integrator sampler: the solver space of USF / S³ (Liu et al. 2024, "A Unified Sampling
Framework for Solver Searching of Diffusion Probabilistic Models"), as one :class:`~workbench.solvers.plan.Plan`.

At step :math:`i \to i+1` (one model evaluation per step, at the step's start) the sampler makes its own choices:

* ``kinds[i]`` — the prediction the step extrapolates, ``"data"`` (:math:`D = E[x_1|x]`) or ``"noise"``
  (:math:`\hat\varepsilon`), i.e. which exact variation-of-constants form (log_snr.py) it discretises;
* ``orders[i]`` — the number :math:`p_i` of history points of the UniP-:math:`p_i` predictor (1–3; capped by the
  finite-λ points available), the Taylor order of the step;
* ``correctors[i]`` — apply UniC-:math:`p_i` with the output at the predicted point (free: it is the next step's
  evaluation; never on the last step, which no evaluation follows);
* ``variants[i]`` — the derivative estimator :math:`B(h)` scaling the finite-difference terms,
  ``"bh1"`` (:math:`B = h`) or ``"bh2"`` (:math:`B = e^h - 1`), as in UniPC (Zhao et al. 2023, eqs. 8–10);

and the time points are the grid. With :math:`h = \lambda_{i+1}-\lambda_i`, data form (noise form: :math:`a\leftrightarrow\sigma`, :math:`h\to -h`):

.. math::
    \tilde x_{i+1} = \frac{\sigma_{i+1}}{\sigma_i}x_i - a_{i+1}(e^{-h}-1) D_i - a_{i+1}B(h)\sum_{k=1}^{p_i-1}\rho_k\,
    \frac{D_{i-k} - D_i}{r_k},

(:func:`~workbench.solvers.unipc.unipc_coefficients`), the corrector replacing :math:`x_{i+1}` by the UniC form with
:math:`D_{i+1}` evaluated at :math:`\tilde x_{i+1}`, folded into the next predictor (:func:`~.log_snr.fold_correctors`).
Every choice is linear in states and outputs, so the whole run is one plan on the one executor; outputs read as
another kind than the model's are converted by the compiled program. A step touching λ = ±∞ (an end with a = 0 or
σ = 0) is DDIM (first order, no corrector). All ``data``/``p``/corrector/``bh2`` is UniPC(history=p) exactly.

The class is not registered (its numbers are per-step and come from a search, :mod:`workbench.fitting.usf`); run it
directly or as its exact non-stationary form (``linearize``).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ..errors import ConfigError
from .log_snr import (KIND_NAMES, KINDS, LogSNRSolver, LogSNRTable, ddim_coefficients, fold_correctors,
                      recurrence_plan)
from .unipc import unipc_coefficients

VARIANTS = ("bh1", "bh2")
ORDERS = (1, 2, 3)


def _tuple(name: str, values: Sequence, allowed: Sequence) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(name, f"must be a sequence (one entry per step), got {values!r}")
    out = tuple(values)
    for v in out:
        if isinstance(v, bool) and bool not in [type(a) for a in allowed]:
            raise ConfigError(name, f"got {v!r}; allowed values are: {', '.join(map(str, allowed))}")
        if v not in allowed:
            raise ConfigError(name, f"got {v!r}; allowed values are: {', '.join(map(str, allowed))}")
    return out


class USFSolver(LogSNRSolver):
    """Per-step choices of prediction kind, predictor order, corrector and B(h) (module docstring); 1 NFE/step.

    Args:
        kinds: ``"data"``/``"noise"`` per step.
        orders: predictor points per step (1–3).
        correctors: UniC on/off per step (the last entry must be False or is ignored: no evaluation follows).
        variants: ``"bh1"``/``"bh2"`` per step.

    All four have one entry per step (an empty tuple: that choice at its default — data, 2, on, bh2 — for every step).
    """

    name = "usf"
    evals_per_step = 1
    needs_gaussian = True
    variable = "log_snr"

    def __init__(self, kinds: Sequence[str] = (), orders: Sequence[int] = (), correctors: Sequence[bool] = (),
                 variants: Sequence[str] = ()):
        self.kinds = _tuple("kinds", kinds, KINDS)
        self.orders = _tuple("orders", orders, ORDERS)
        self.correctors = tuple(bool(c) for c in _tuple("correctors", correctors, (True, False)))
        self.variants = _tuple("variants", variants, VARIANTS)
        lens = {len(v) for v in (self.kinds, self.orders, self.correctors, self.variants) if len(v)}
        if len(lens) > 1:
            raise ConfigError("kinds", f"kinds, orders, correctors and variants need one entry per step each; got "
                                       f"lengths {len(self.kinds)}, {len(self.orders)}, {len(self.correctors)}, "
                                       f"{len(self.variants)}")
        self.order = 1 + (max(self.orders) if self.orders else 2)

    def choices(self, steps: int) -> Tuple[List[str], List[int], List[bool], List[str]]:
        """The four per-step lists for a run of ``steps`` steps (defaults filled in).

        Raises:
            ConfigError: a choice has another number of entries than the grid has steps (named ``grid``).
        """
        out = []
        for name, vals, default in (("kinds", self.kinds, "data"), ("orders", self.orders, 2),
                                    ("correctors", self.correctors, True), ("variants", self.variants, "bh2")):
            if vals and len(vals) != steps:
                raise ConfigError("grid", f"the solver has {len(vals)} per-step {name} but the grid has {steps} "
                                          f"steps; use nfe={len(vals)}")
            out.append(list(vals) if vals else [default] * steps)
        return out[0], out[1], out[2], out[3]

    def recurrence(self, tab: LogSNRTable):
        n = len(tab.t) - 1
        kinds, orders, corr, variants = self.choices(n)
        preds, corrs = [], []
        usable = 0
        for i in range(n):
            usable = usable + 1 if tab.finite(i) else 0
            if not (tab.finite(i) and tab.finite(i + 1)):
                cx, cd = ddim_coefficients(tab, i, i + 1)
                preds.append((1, cx, [(0, cd, "x1")]))
                corrs.append(None)
                continue
            k = min(orders[i], usable)
            kind, name = kinds[i], KIND_NAMES[kinds[i]]
            cx, terms, _ = unipc_coefficients(tab, i, k, kind, variants[i], False)
            preds.append((k, cx, [(g, c, name) for g, c in terms]))
            if corr[i] and i < n - 1:
                cxc, cterms, c_new = unipc_coefficients(tab, i, k, kind, variants[i], True)
                corrs.append((cxc, [(-1, c_new, name)] + [(g, c, name) for g, c in cterms]))
            else:
                corrs.append(None)
        return fold_correctors(preds, corrs)

    def build_plan(self, interpolant, grid):
        tab = LogSNRTable.build(interpolant, grid)
        return recurrence_plan(tab, self.recurrence(tab), repr(self))

    def describe(self, steps: Optional[int] = None) -> str:
        """One token per step, e.g. ``D2c/bh2``: kind (D/N), predictor points, ``c`` with a corrector, B(h)."""
        n = steps if steps is not None else max(len(self.kinds), len(self.orders), len(self.correctors),
                                                len(self.variants), 1)
        kinds, orders, corr, variants = self.choices(n)
        return " ".join(f"{'D' if k == 'data' else 'N'}{p}{'c' if c and i < n - 1 else ''}/{v}"
                        for i, (k, p, c, v) in enumerate(zip(kinds, orders, corr, variants)))

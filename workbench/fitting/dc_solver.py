r"""Fit DC-Solver's compensation ratios (Zhao et al. 2024) to a pilot: objective and parameterisation.

Parameters :math:`\rho_1..\rho_{n-1}` (start 1 = UniPC); objective the pilot's mean L2 to the reference,
:math:`L(\rho) = \tfrac1M\sum_m \lVert \Phi_\rho(x_m) - x^{ref}_m\rVert`, minimised by Adam (autograd through the
sampler); kept only by :func:`~.selection.keep_if_better` on the held-out part. :func:`ratio_regression` is the
cascade polynomial: per NFE the ratios as a polynomial in the normalised step :math:`u = i/(n-2)`, its coefficients
a polynomial in the NFE, fitted by least squares to several fits; it predicts the ratios for an unseen NFE.
"""
from __future__ import annotations

import time
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..solvers.dc_solver import DCSolver
from .pilot import Pilot, mean_l2
from .result import FitResult
from .selection import keep_if_better


def fit_dc_ratios(field, pilot: Pilot, grid: Sequence[float], solver: DCSolver = DCSolver(), iterations: int = 60,
                  lr: float = 0.02) -> FitResult:
    """Fit the ratios on ``pilot`` for ``grid``; returns a :class:`FitResult` with ``params["ratios"]``."""
    t0 = time.time()
    pm = pilot.model(field)
    n = len(grid) - 1
    rho = torch.ones(n - 1, dtype=torch.float64, requires_grad=True)
    xf, rf = pilot.fit
    xh, rh = pilot.held

    def loss(x, ref, r):
        return mean_l2(solver.compensated(pm, x, grid, r), ref)

    with torch.no_grad():
        init = float(loss(xf, rf, rho))
        init_h = float(loss(xh, rh, rho)) if xh is not None else float("nan")
    opt = torch.optim.Adam([rho], lr=lr)
    best, best_r = init, rho.detach().clone()
    for _ in range(iterations):
        opt.zero_grad()
        val = loss(xf, rf, rho)
        val.backward()
        if float(val.detach()) < best:
            best, best_r = float(val.detach()), rho.detach().clone()
        opt.step()
    with torch.no_grad():
        fin = float(loss(xf, rf, best_r))
        hold = float(loss(xh, rh, best_r)) if xh is not None else float("nan")
    ok = keep_if_better(init, fin, init_h, hold)
    ratios = best_r.tolist() if ok else [1.0] * (n - 1)
    return FitResult("dc_solver", {"ratios": ratios, "grid": list(map(float, grid))},
                     {"ratios": [1.0] * (n - 1), "grid": list(map(float, grid))}, fin, init, hold, init_h, ok,
                     iterations, pm.calls, pilot.reference_nfe, time.time() - t0, n - 1, pilot.n_fit, pilot.n_held)


def ratio_regression(fits: Dict[int, Sequence[float]], deg_step: int = 2, deg_nfe: int = 1):
    r"""Cascade polynomial :math:`\rho(u, n) = \sum_a \big(\sum_b c_{ab} n^b\big) u^a` fitted by least squares to
    ``{nfe: ratios}``; returns ``predict(nfe) -> list of nfe - 1 ratios``."""
    rows, ys = [], []
    for n, r in fits.items():
        for i, v in enumerate(r):
            u = i / max(len(r) - 1, 1)
            rows.append([u ** a * n ** b for a in range(deg_step + 1) for b in range(deg_nfe + 1)])
            ys.append(v)
    c, *_ = np.linalg.lstsq(np.array(rows), np.array(ys), rcond=None)

    def predict(n: int) -> List[float]:
        m = n - 1
        return [float(sum(cc * (i / max(m - 1, 1)) ** a * n ** b for cc, (a, b) in
                          zip(c, [(a, b) for a in range(deg_step + 1) for b in range(deg_nfe + 1)])))
                for i in range(m)]

    return predict

r"""HiPPO-LegT: the translated-Legendre memory of a signal's recent history (Gu et al. 2020; Voelker et al. 2019).

The history of a signal :math:`u` over the sliding window :math:`[t-\theta, t]` is represented by its Legendre
coefficients in the delay fraction :math:`r = (t - s)/\theta \in [0, 1]` (``r = 0`` is "now"):

.. math::
    c_i(t) = (2i+1)\int_0^1 u(t - \theta r)\,P_i(2r - 1)\,dr,\qquad
    u(t - \theta r) \approx \sum_{i<N} c_i(t)\,P_i(2r - 1),

exact when :math:`u` restricted to the window is a polynomial of degree :math:`< N`. Differentiating under the
integral, integrating by parts (:math:`P_i(1) = 1`, :math:`P_i(-1) = (-1)^i`,
:math:`P_i' = \sum_{j<i,\ i-j\ \text{odd}} (2j+1)P_j`) and replacing :math:`u(t-\theta)` by the reconstruction
:math:`\sum_j c_j` gives the linear ODE

.. math::
    \dot c = A c + B u,\qquad A_{ij} = \frac{2i+1}{\theta}\begin{cases}-1 & j \ge i\\ (-1)^{i-j+1} & j < i\end{cases},
    \qquad B_i = \frac{2i+1}{\theta}(-1)^i,

exact for polynomial signals of degree :math:`< N` (:func:`legt_matrices`). Sampled histories (frames at
spacing :math:`h`) are encoded by a discretisation of this ODE (:func:`legt_discretize`): ``"zoh"`` (input held
constant over a step, exact matrix exponential), ``"foh"`` (input linear between samples, exact matrix exponential
of the augmented system — exact for piecewise-linear histories) or ``"bilinear"`` (Tustin, as in the TSM and FiLM
code). :class:`LegTEncoder` turns ``K`` frames into ``N`` coefficients by that recurrence, started from the
coefficients of a constant past (:math:`c = u_0 e_0`), as one precomputed ``(N, K)`` matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import torch

from .. import validation
from ..errors import ConfigError

#: Discretisations of the LegT ODE accepted by :func:`legt_discretize`.
DISCRETIZATIONS = ("foh", "zoh", "bilinear")


def legt_matrices(order: int, theta: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""The LegT transition :math:`A` ``(N, N)`` and input :math:`B` ``(N,)`` (float64) for window length θ."""
    n = validation.integer("order", order, 1, 256)
    th = validation.number("theta", theta, above=0.0)
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    sign = torch.where(j >= i, -torch.ones(n, n, dtype=torch.float64), (-1.0) ** (i - j + 1))
    a = (2 * i + 1) / th * sign
    b = (2 * torch.arange(n, dtype=torch.float64) + 1) / th * (-1.0) ** torch.arange(n, dtype=torch.float64)
    return a, b


def shifted_legendre(order: int, r: torch.Tensor) -> torch.Tensor:
    r""":math:`P_i(2r - 1)` for :math:`i < N` at points ``r`` ``(M,)`` → ``(M, N)`` (three-term recurrence, float64)."""
    n = validation.integer("order", order, 1, 256)
    x = 2 * torch.as_tensor(r, dtype=torch.float64) - 1
    out = [torch.ones_like(x)]
    if n > 1:
        out.append(x)
    for k in range(1, n - 1):
        out.append(((2 * k + 1) * x * out[k] - k * out[k - 1]) / (k + 1))
    return torch.stack(out, -1)


def legt_project(u, order: int, theta: float = 1.0, t: float = 0.0, points: int = 64) -> torch.Tensor:
    r"""The exact coefficients :math:`c_i(t) = (2i+1)\int_0^1 u(t-\theta r)P_i(2r-1)dr` of a callable history
    ``u(s)`` (vectorised over a float64 tensor of times), by ``points``-point Gauss–Legendre quadrature (exact for
    polynomial ``u`` of degree < 2·points − order)."""
    n = validation.integer("order", order, 1, 256)
    m = validation.integer("points", points, 1, 4096)
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(m)
    r = torch.as_tensor((x + 1) / 2, dtype=torch.float64)
    w = torch.as_tensor(w / 2, dtype=torch.float64)
    vals = torch.as_tensor(u(t - float(theta) * r), dtype=torch.float64)
    p = shifted_legendre(n, r)
    return (2 * torch.arange(n, dtype=torch.float64) + 1) * ((w * vals) @ p)


def legt_reconstruct(c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i c_i P_i(2r - 1)`: coefficients ``(..., N)`` at delay fractions ``r`` ``(M,)`` → ``(..., M)``."""
    p = shifted_legendre(c.shape[-1], r).to(c.dtype)
    return c @ p.T


def legt_discretize(order: int, h: float, theta: float = 1.0, method: str = "foh") -> Dict[str, torch.Tensor]:
    r"""One step of length ``h`` of :math:`\dot c = Ac + Bu`: ``c_{k+1} = Ad c_k + B0 u_k + B1 u_{k+1}`` (float64).

    * ``"zoh"``: :math:`A_d = e^{Ah}`, :math:`B_0 = A^{-1}(A_d - I)B`, :math:`B_1 = 0` (u constant over the step);
    * ``"foh"``: from :math:`\exp\big(h\begin{psmallmatrix}A & B & 0\\ 0 & 0 & 1\\ 0 & 0 & 0\end{psmallmatrix}\big)`
      with blocks :math:`E_{cc}, E_{cu}, E_{cs}`: :math:`A_d = E_{cc}`, :math:`B_1 = E_{cs}/h`,
      :math:`B_0 = E_{cu} - E_{cs}/h` (u linear over the step: exact for piecewise-linear input);
    * ``"bilinear"``: :math:`A_d = (I - \tfrac h2A)^{-1}(I + \tfrac h2A)`, :math:`B_0 = B_1 = \tfrac h2(I - \tfrac h2A)^{-1}B`.
    """
    method = validation.choice("method", method, DISCRETIZATIONS)
    hh = validation.number("h", h, above=0.0)
    a, b = legt_matrices(order, theta)
    n = a.shape[0]
    eye = torch.eye(n, dtype=torch.float64)
    if method == "bilinear":
        inv = torch.linalg.inv(eye - 0.5 * hh * a)
        bd = 0.5 * hh * inv @ b
        return {"Ad": inv @ (eye + 0.5 * hh * a), "B0": bd, "B1": bd.clone()}
    m = torch.zeros(n + 2, n + 2, dtype=torch.float64)
    m[:n, :n] = a
    m[:n, n] = b
    m[n, n + 1] = 1.0
    e = torch.linalg.matrix_exp(m * hh)
    ecc, ecu, ecs = e[:n, :n], e[:n, n], e[:n, n + 1]
    if method == "zoh":
        return {"Ad": ecc, "B0": ecu, "B1": torch.zeros_like(ecu)}
    return {"Ad": ecc, "B0": ecu - ecs / hh, "B1": ecs / hh}


@dataclass(frozen=True)
class LegTEncoder:
    r"""``frames`` samples of a history at unit spacing → ``order`` LegT coefficients over the window
    :math:`\theta = \texttt{frames} - 1` (the whole history), by the recurrence of :func:`legt_discretize`
    started from a constant past, :math:`c_0 = u_0 e_0`.

    The recurrence is linear in the samples, so it is precomputed as ``matrix`` ``(order, frames)``:
    ``encode(x)`` = ``matrix @ x`` along the time axis. Frozen (a configuration value).
    """

    order: int = 4
    frames: int = 4
    method: str = "foh"
    _matrix: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        k = validation.integer("frames", self.frames, 2, 256)
        n = validation.integer("order", self.order, 1, 256)
        if n > k:
            raise ConfigError("order", f"must be <= frames={k} (more coefficients than samples), got {n}")
        validation.choice("method", self.method, DISCRETIZATIONS)
        d = legt_discretize(n, 1.0, theta=float(k - 1), method=self.method)
        # run the recurrence on the K unit vectors of the samples at once: state (N, K)
        c = torch.zeros(n, k, dtype=torch.float64)
        c[0, 0] = 1.0
        eye = torch.eye(k, dtype=torch.float64)
        for s in range(k - 1):
            c = d["Ad"] @ c + d["B0"][:, None] * eye[s][None] + d["B1"][:, None] * eye[s + 1][None]
        object.__setattr__(self, "_matrix", c)

    @property
    def matrix(self) -> torch.Tensor:
        """The ``(order, frames)`` float64 map from samples (oldest first) to coefficients."""
        return self._matrix.clone()

    def recurrence(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """The same coefficients by the explicit step-by-step recurrence (a readable reference for :meth:`encode`)."""
        x = x.movedim(dim, -1)
        if x.shape[-1] != self.frames:
            raise ConfigError("x", f"needs {self.frames} frames along dim {dim}, got {x.shape[-1]}")
        d = {k: v.to(x.dtype).to(x.device) for k, v in
             legt_discretize(self.order, 1.0, float(self.frames - 1), self.method).items()}
        c = torch.zeros(*x.shape[:-1], self.order, dtype=x.dtype, device=x.device)
        c[..., 0] = x[..., 0]
        for s in range(self.frames - 1):
            c = c @ d["Ad"].T + x[..., s, None] * d["B0"] + x[..., s + 1, None] * d["B1"]
        return c.movedim(-1, dim)

    def encode(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Coefficients of the history along ``dim`` (oldest frame first): that axis becomes ``order`` long."""
        if x.shape[dim] != self.frames:
            raise ConfigError("x", f"needs {self.frames} frames along dim {dim}, got {x.shape[dim]}")
        m = self._matrix.to(dtype=x.dtype, device=x.device)
        return torch.tensordot(x.movedim(dim, -1), m, dims=([-1], [1])).movedim(-1, dim)


__all__ = ["DISCRETIZATIONS", "legt_matrices", "shifted_legendre", "legt_project", "legt_reconstruct",
           "legt_discretize", "LegTEncoder"]

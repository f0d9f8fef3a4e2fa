"""Readable per-method loops (k-diffusion style), the references the one plan executor is checked against.

Each takes ``(field, x, grid)`` (a python list of times) and returns the final state; they call the model through
``field.predict`` and convert with the interpolant's own algebra, with no plan, fold or buffer.
"""
import math

import torch


def naive_plan(plan, field, x):
    """Interpret a Plan literally: every output read as its kind with Prediction.as_kind (at the nominal time)."""
    states, preds = [x], []
    I = field.interpolant
    for j in range(plan.n):
        preds.append(field.predict(states[-1], plan.model_times[j]))

        def read(k, kind):
            p = preds[k]
            if plan.model_times[k] == plan.times[k]:
                return p.as_kind(kind)
            d, s = p.data_and_score()  # a time-shifted read: (D, s) at the model's time, taken as the nominal time's
            return I.from_data_and_score(d, s, plan.times[k], kind)

        states.append(sum(c * (states[k] if kind == "x" else read(k, kind)) for kind, k, c in plan.rows[j]))
    return states[-1]


def runge_kutta(tableau, field, x, grid):
    """x_{n+1} = x_n + h Σ w_i k_i with k_i = b(t + c_i h, x + h Σ_j a_ij k_j)."""
    c, a, w = tableau
    for t, t1 in zip(grid[:-1], grid[1:]):
        h, ks = t1 - t, []
        for i in range(len(c)):
            xi = x + h * sum((aij * kj for aij, kj in zip(a[i], ks)), torch.zeros_like(x))
            ks.append(field.predict(xi, t + c[i] * h).velocity)
        x = x + h * sum(wi * ki for wi, ki in zip(w, ks))
    return x


def _lam(I, t):
    co = I.coefficients(float(t))
    return float(co.signal), float(co.sigma)


def dpmpp_2m(field, x, grid):
    """DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2), finite λ on the whole grid, first step DDIM."""
    I, old_d, h_old = field.interpolant, None, None
    for t, t1 in zip(grid[:-1], grid[1:]):
        (a0, s0), (a1, s1) = _lam(I, t), _lam(I, t1)
        h = math.log(a1 / s1) - math.log(a0 / s0)
        d = field.predict(x, t).data
        dd = d if old_d is None else (1 + h_old / (2 * h) * 0 + 1 / (2 * h_old / h)) * d - 1 / (2 * h_old / h) * old_d
        x = (s1 / s0) * x - a1 * math.expm1(-h) * dd
        old_d, h_old = d, h
    return x


def ddim(field, x, grid):
    """DDIM: x_{i+1} = (σ_{i+1}/σ_i) x_i + (a_{i+1} − σ_{i+1} a_i/σ_i) D_i."""
    I = field.interpolant
    for t, t1 in zip(grid[:-1], grid[1:]):
        (a0, s0), (a1, s1) = _lam(I, t), _lam(I, t1)
        x = (s1 / s0) * x + (a1 - s1 * a0 / s0) * field.predict(x, t).data
    return x


def adams_u_rho(field, x, grid, points):
    """Split-form multistep (no warm-up corrector): Adams–Bashforth with ``points`` points on dz/du = D (z = x/σ,
    u = a/σ) on the noise half and on dy/dρ = ε̂ (y = x/a, ρ = σ/a) on the data half."""
    I, hist = field.interpolant, []
    for i, (t, t1) in enumerate(zip(grid[:-1], grid[1:])):
        (a0, s0), (a1, s1) = _lam(I, t), _lam(I, t1)
        p = field.predict(x, t)
        lam0 = -math.inf if a0 == 0 else (math.inf if s0 == 0 else math.log(a0 / s0))
        lam1 = math.inf if s1 == 0 else math.log(a1 / s1)
        data = a0 == 0 or (s1 != 0 and lam0 + lam1 < 0)
        hist.append((t, p))
        nodes = []
        for tk, pk in reversed(hist[-points:]):
            ak, sk = _lam(I, tk)
            v = (ak / sk) if data else (math.inf if ak == 0 else sk / ak)
            if not math.isfinite(v):
                break
            nodes.append((v, pk.data if data else pk.noise))
        v0, v1 = (a0 / s0, math.inf if s1 == 0 else a1 / s1) if data else (s0 / a0, s1 / a1)
        xs, ws = torch.tensor([-0.7745966692414834, 0.0, 0.7745966692414834], dtype=torch.float64), [5 / 9, 8 / 9, 5 / 9]
        integral = 0
        for q, wq in zip(((v1 - v0) * (xs + 1) / 2 + v0).tolist(), ws):
            for j, (vj, mj) in enumerate(nodes):
                lj = math.prod((q - vk) / (vj - vk) for k, (vk, _) in enumerate(nodes) if k != j)
                integral = integral + (v1 - v0) / 2 * wq * lj * mj
        x = (s1 / s0) * x + s1 * integral if data else (a1 / a0) * x + a1 * integral
    return x


def nonstationary(c, field, x):
    """y_{j+1} = a_{j+1} x0 + Σ_k b_{j+1,k} K(y_k, τ_k)."""
    ks, y = [], x
    for j in range(c.n):
        ks.append(field.predict(y, c.times[j]).as_kind(c.kind))
        y = c.a[j] * x + sum(bk * k for bk, k in zip(c.b[j], ks))
    return y

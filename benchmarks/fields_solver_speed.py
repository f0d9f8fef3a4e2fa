"""Pseudo-spectral solver throughput: batched inverse FFTs with precomputed derivative tensors vs term by term.

Run (≈ 1–2 min on one CPU thread):

    .venv/bin/python benchmarks/fields_solver_speed.py [--repeats 5] [--threads 1]

Writes benchmarks/results/fields/solver_speed.md. Both variants run in the same process, interleaved, on the same
states; the machine may be shared, so compare the ratio column only. jax-cfd is compared when it is importable
(it is a benchmark-only dependency and is not installed by default); otherwise the table says so.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from workbench.data.burgers import Burgers1D  # noqa: E402
from workbench.data.grf import gaussian_random_field  # noqa: E402
from workbench.data.kuramoto_sivashinsky import KuramotoSivashinsky1D  # noqa: E402
from workbench.data.navier_stokes import NavierStokes2D  # noqa: E402


class TermByTerm(NavierStokes2D):
    """The pre-batching nonlinear term: u, v, ω_x, ω_y by four separate inverse FFTs."""

    def nonlinear(self, w_hat):
        u, v = self.velocity(w_hat)
        wx = torch.fft.irfft2(1j * self.kx * w_hat, s=(self.n, self.n))
        wy = torch.fft.irfft2(1j * self.ky * w_hat, s=(self.n, self.n))
        return -torch.fft.rfft2(u * wx + v * wy) * self.mask + self.forcing_hat


def _rate(solver, w_hat, steps: int) -> float:
    state = {}
    t0 = time.perf_counter()
    for _ in range(steps):
        w_hat = solver.step(w_hat, state)
    return steps * w_hat.shape[0] / (time.perf_counter() - t0)  # field-steps per second


def equal_accuracy(n: int = 64, t_end: float = 1.0) -> str:
    """IF-RK4 vs CN/AB2 at equal accuracy: error at t_end against an IF-RK4 dt = 1/1600 reference, and the
    right-hand sides each needs (RK4: 4 per step, CN/AB2: 1)."""
    w0 = gaussian_random_field(2, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0))
    kw = dict(n=n, nu=2e-3, drag=0.1, forcing_amplitude=1.0)
    ref_ns = NavierStokes2D(dt=1 / 1600, **kw)
    ref = ref_ns.simulate(w0, 1600, record_every=1600)[:, -1]
    rows = ["| integrator | dt | right-hand sides | rel. L2 error at t = 1 | wall s |", "|---|---|---|---|---|"]
    for integ, dts in (("rk4", (0.02, 0.01, 0.005)), ("cnab2", (0.005, 0.0025, 0.00125, 0.000625))):
        for dt in dts:
            ns = NavierStokes2D(dt=dt, integrator=integ, max_cfl=10.0, **kw)
            steps = int(round(t_end / dt))
            t0 = time.perf_counter()
            try:
                w = ns.simulate(w0, steps, record_every=steps)[:, -1]
                err = f"{float((w - ref).norm() / ref.norm()):.2e}"
            except Exception as exc:  # blow-up is a result here
                err = f"failed ({type(exc).__name__})"
            rows.append(f"| {integ} | {dt:g} | {steps * (4 if integ == 'rk4' else 1)} | {err} "
                        f"| {time.perf_counter() - t0:.2f} |")
            print(rows[-1], flush=True)
    return "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join("benchmarks", "results", "fields", "solver_speed.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import jax_cfd  # noqa: F401
        jax_note = "jax-cfd is importable but not wired into this script yet."
    except ImportError:
        jax_note = "jax-cfd is not installed here, so no side-by-side jax-cfd column (benchmark-only dependency)."
    rows = ["| grid | batch | dtype | term-by-term field-steps/s | batched field-steps/s | ratio batched/old |",
            "|---|---|---|---|---|---|"]
    for n in (64, 128):
        for batch in (1, 8):
            for dtype in ("float32", "float64"):
                kw = dict(n=n, nu=2e-3, drag=0.1, forcing_amplitude=1.0, dt=0.01, dtype=dtype)
                new, old = NavierStokes2D(**kw), TermByTerm(**kw)
                w0 = gaussian_random_field(batch, n, "matern", std=3.0, generator=torch.Generator().manual_seed(0),
                                           dtype=dtype)
                wh = new.to_hat(w0)
                steps = max(5, int(400 * (64 / n) ** 2 / batch))
                _rate(new, wh, 3), _rate(old, wh, 3)  # warm-up
                r_new, r_old = [], []
                for _ in range(args.repeats):  # interleaved
                    r_old.append(_rate(old, wh, steps))
                    r_new.append(_rate(new, wh, steps))
                a, b = statistics.median(r_old), statistics.median(r_new)
                rows.append(f"| {n}² | {batch} | {dtype} | {a:.0f} | {b:.0f} | {b / a:.2f} |")
                print(rows[-1], flush=True)
    one_d = ["| equation | n | batch | integrator | field-steps/s |", "|---|---|---|---|---|"]
    for cls, integ in ((Burgers1D, "rk4"), (KuramotoSivashinsky1D, "etdrk4")):
        for batch in (1, 32):
            s = cls(n=256, dt=1e-3 if cls is Burgers1D else 0.05, integrator=integ)
            u0 = 0.5 * torch.sin(s.x * (2 * torch.pi / s.length))[None].repeat(batch, 1)
            v = s.to_hat(u0)
            t0 = time.perf_counter()
            for _ in range(500):
                v = s.step(v)
            one_d.append(f"| {s.name} | 256 | {batch} | {integ} | {500 * batch / (time.perf_counter() - t0):.0f} |")
            print(one_d[-1], flush=True)
    acc = equal_accuracy()
    text = (f"# Pseudo-spectral solver throughput (torch threads={args.threads}, median of {args.repeats} interleaved "
            "repeats)\n\nNavier–Stokes IF-RK4 step, batched inverse FFTs with the precomputed derivative tensor vs "
            "the term-by-term form:\n\n" + "\n".join(rows) + "\n\n" + jax_note + "\n\n1-D solvers:\n\n"
            + "\n".join(one_d) + "\n\nIF-RK4 vs CN/AB2 at equal accuracy (64², ν = 2e-3, drag 0.1, Kolmogorov "
            "forcing, batch 2, error at t = 1 against IF-RK4 dt = 1/1600):\n\n" + acc)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

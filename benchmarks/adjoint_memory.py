"""Memory of gradients through a sampler vs the number of steps: backprop, checkpointing, adjoint — ours and
torchdiffeq's ``odeint`` / ``odeint_adjoint`` side by side in one run.

Memory is the peak of the bytes held by autograd for the backward pass (every tensor saved for backward is counted
from when it is saved until it is freed, through ``torch.autograd.graph.saved_tensors_hooks``), which is the part
that grows with the steps; it is exact and device-independent (no allocator noise). Model: a 3-layer tanh MLP
velocity field (width 128) on a (256, 16) float32 state, fixed-step RK4 on t ∈ [0, 1], gradient of a quadratic loss
with respect to the start state and all model parameters.
(Our checkpointing keeps the step inputs as plain tensors, not autograd-saved ones: add ``steps × state`` bytes,
0.016 MiB per step here, to its column.)

    .venv/bin/python benchmarks/adjoint_memory.py     # writes benchmarks/results/adjoint_memory.{csv,md}
"""
from __future__ import annotations

import argparse
import csv
import os
import time

import torch
import torch.nn as nn

from workbench import interpolants
from workbench.models.field import Field
from workbench.samplers.adjoint import sample_with_grad

OUT = os.path.join(os.path.dirname(__file__), "results")


class Live:
    """Peak bytes of autograd-saved tensors alive at once."""

    def __init__(self):
        self.live = self.peak = 0

    def pack(self, t):
        return _Held(t, self)

    @staticmethod
    def unpack(h):
        return h.t


class _Held:
    def __init__(self, t, meter):
        self.t, self.meter, self.n = t, meter, t.element_size() * t.numel()
        meter.live += self.n
        meter.peak = max(meter.peak, meter.live)

    def __del__(self):
        self.meter.live -= self.n


class MLP(nn.Module):
    def __init__(self, d=16, width=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d + 1, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, d))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).to(x)], 1))


def measure(fn):
    meter = Live()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        fn()
    return meter.peak, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="10,20,40,80")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = MLP()
    params = list(model.parameters())
    I = interpolants.get("linear")
    field = Field(model, I, "velocity")
    x0 = torch.randn(256, 16)
    loss = lambda x: (x ** 2).sum()  # noqa: E731
    rows = []
    try:
        from torchdiffeq import odeint, odeint_adjoint
    except ImportError:  # pragma: no cover
        odeint = odeint_adjoint = None

    class F(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, t, x):
            return self.m(x, t.expand(x.shape[0]))

    func = F()
    for steps in [int(s) for s in args.steps.split(",")]:
        cases = {}
        for method in ("backprop", "checkpoint", "adjoint"):
            cases[f"ours {method}"] = lambda m=method: sample_with_grad("rk4", field, x0, 4 * steps, loss, params, method=m)
        if odeint is not None:
            ts = torch.tensor([0.0, 1.0])

            def td(adj):
                x = x0.clone().requires_grad_(True)
                f = odeint_adjoint if adj else odeint
                kw = dict(adjoint_params=params) if adj else {}
                out = f(func, x, ts, method="rk4", options={"step_size": 1.0 / steps}, **kw)[-1]
                torch.autograd.grad(loss(out), [x, *params])

            cases["torchdiffeq odeint"] = lambda: td(False)
            cases["torchdiffeq odeint_adjoint"] = lambda: td(True)
        for name, fn in cases.items():
            fn()  # warm-up
            peak, wall = measure(fn)
            rows.append({"steps": steps, "method": name, "saved_MiB": peak / 2 ** 20, "wall_s": wall})
            print(f"steps {steps:3d}  {name:28s} peak saved {peak / 2 ** 20:8.3f} MiB  {wall * 1e3:8.1f} ms")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "adjoint_memory.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    steps_list = list(dict.fromkeys(r["steps"] for r in rows))
    get = {(r["steps"], r["method"]): r for r in rows}
    lines = ["| method | " + " | ".join(f"{s} steps: MiB / ms" for s in steps_list) + " |",
             "|---|" + "---|" * len(steps_list)]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{get[(s, m)]['saved_MiB']:.3f} / {get[(s, m)]['wall_s'] * 1e3:.0f}"
                                            for s in steps_list) + " |")
    with open(os.path.join(OUT, "adjoint_memory.md"), "w") as fh:
        fh.write("Peak autograd-saved memory and wall time of ∂L/∂(x0, θ) through fixed-step RK4 "
                 "(benchmarks/adjoint_memory.py; MLP 16→128→128→16, state 256×16 float32). Checkpointing keeps the "
                 "step inputs as plain tensors (add 0.016 MiB per step to its column).\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Better than the model's own sampler: diffusers' schedulers vs our solvers on the same adapted network.

A randomly initialised ``diffusers.UNet2DModel`` (8×8×3, one block; no weights downloaded) on diffusers' linear DDPM
table (T = 1000), adapted with ``from_diffusers(..., interpolation="cubic")`` (identical at the training timesteps,
smooth in between). The reference is the model's own probability-flow ODE, Dormand–Prince at rtol = atol = 1e-7
(float64), from k = 999 (t = 0) to the smallest trained noise level and the exact last step to σ = 0. Errors are the
mean L2 distance to the reference over 8 start states, relative to the mean reference norm.

Run: ``.venv/bin/python benchmarks/adapters_diffusers.py`` (diffusers' schedulers in float32 as they are used; ours in float64) (≈ 2 min on one CPU thread) → ``benchmarks/results/adapters_diffusers.md``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from workbench import solvers
from workbench.adapters import ModelProblem, from_diffusers, scheduler_grid

NFES = (5, 8, 10, 20)


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                block_out_channels=(8,), down_block_types=("DownBlock2D",),
                                up_block_types=("UpBlock2D",), norm_num_groups=4, add_attention=False).double().eval()
    net.requires_grad_(False)
    model = from_diffusers(net, diffusers.DDPMScheduler(), interpolation="cubic")
    x0 = torch.randn(8, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    ref = ModelProblem(model).reference(model.interpolant, x0, 0.0, 1.0)
    ref_s = time.perf_counter() - t0
    scale = float(ref.flatten(1).norm(dim=1).mean())

    def err(x):
        return float((x - ref).flatten(1).norm(dim=1).mean()) / scale

    peers = {
        "diffusers DDIM (trailing)": lambda: diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing"),
        "diffusers Euler": lambda: diffusers.EulerDiscreteScheduler(),
        "diffusers DPM-Solver++ 2M": lambda: diffusers.DPMSolverMultistepScheduler(),
        "diffusers UniPC (bh2, 2)": lambda: diffusers.UniPCMultistepScheduler(),
    }
    rows = []
    for label, make in peers.items():
        r = {"solver": label}
        for n in NFES:
            sch = make()
            sch.set_timesteps(n)
            x = x0.to(torch.float32)  # our state at t = 0 (k = 999); Euler's state is the VE variable x / a
            if isinstance(sch, diffusers.EulerDiscreteScheduler):
                x = x * math.sqrt(float(sch.sigmas[0]) ** 2 + 1)
            net32 = net.float()
            for k in sch.timesteps:
                x = sch.step(net32(sch.scale_model_input(x, k), k).sample, k, x).prev_sample
            r[n] = err(x.to(torch.float64))
            net.double()
        rows.append(r)
    # Our grids cover the trained range [k = 999, k = 0] (t ∈ [0, t_max]) and end with the step to σ = 0 taken from the
    # data prediction at k = 0, as diffusers' and the reference's last step (beyond k = 0 the network is extrapolated).
    from workbench import schedules

    ours = [("dpmpp_2m", "logsnr"), ("dpmpp_3m", "logsnr"), ("unipc", "logsnr"), ("dpmpp_3m", "edm"), ("unipc", "edm"),
            ("dpmpp_3m", "uniform"), ("unipc", "uniform")]
    for name, sched in ours:
        r = {"solver": f"ours {name} ({sched})"}
        for n in NFES:
            inner = schedules.get(sched).grid(n - 1, model.interpolant, 0.0, model.t_max)
            grid = torch.cat([inner, torch.ones(1, dtype=torch.float64)])
            r[n] = err(solvers.get(name, variable="log_snr").sample(model.field(), x0, n, grid=grid).x)
        rows.append(r)
    # our solvers on diffusers' own DPM-Solver++ grid (linspace timesteps)
    for name in ("dpmpp_3m", "unipc"):
        r = {"solver": f"ours {name} (diffusers' grid)"}
        for n in NFES:
            sch = diffusers.DPMSolverMultistepScheduler()
            sch.set_timesteps(n)
            r[n] = err(solvers.get(name, variable="log_snr").sample(model.field(), x0, n, grid=scheduler_grid(sch)).x)
        rows.append(r)
    target = next(r for r in rows if r["solver"] == "diffusers DPM-Solver++ 2M")[20]
    lines = ["# Diffusers' schedulers vs ours on the same adapted UNet", "",
             f"Relative error to the model's own dopri5 solution (1e-7, {ref_s:.0f} s), 8 start states; "
             "random-init UNet2DModel 8×8×3 on the linear DDPM table (T = 1000).", "",
             "| solver | " + " | ".join(f"NFE {n}" for n in NFES) + " |",
             "|---|" + "---|" * len(NFES)]
    for r in rows:
        lines.append(f"| {r['solver']} | " + " | ".join(f"{r[n]:.2e}" for n in NFES) + " |")
    best = min(((n, r["solver"]) for r in rows if r["solver"].startswith("ours") for n in NFES if r[n] <= target),
               default=None)
    lines += ["", f"diffusers DPM-Solver++ 2M at NFE 20: {target:.2e}. " + (
        f"Smallest NFE at which one of ours matches it: {best[0]} ({best[1]})." if best else
        "None of ours matches it at NFE ≤ 20."), "",
        "A trained network (digits) with fitted grid / fitted non-stationary rows: the section below "
        "(`benchmarks/adapters_digits.py`)."]
    out = Path(__file__).parent / "results" / "adapters_diffusers.md"
    old = out.read_text() if out.is_file() else ""
    keep = old[old.index("\n## Digits-trained UNet"):] if "\n## Digits-trained UNet" in old else ""  # its own script
    out.write_text("\n".join(lines) + "\n" + keep)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""``workbench fields``: Navier–Stokes data, energy spectra and the solver vs FNO vs refiner comparison.

Sub-commands:

* ``workbench fields spectra --out spectra.png [--quick]``: generate Kolmogorov-flow data (cached in ``data/cache``),
  train the FNO surrogate, the interpolant refiner and the unconditional generator, roll out, and write the
  spectrum comparison PNG plus CSV/Markdown tables next to it.
* ``workbench fields simulate --out traj.npz``: simulate and cache Kolmogorov or decaying-turbulence trajectories
  (``.h5``: the PDEBench HDF5 layout);
* ``workbench fields simulate1d --equation ks --out ks.h5``: 1-D Burgers or Kuramoto–Sivashinsky trajectories (HDF5).
"""
from __future__ import annotations

import os

#: ``SpectraConfig.refiner_solver``'s default, repeated here so building the CLI does not import torch
#: (tests/fields/test_reporting.py checks the two agree).
REFINER_SOLVER_DEFAULT = "euler"


def register(sub) -> None:
    p = sub.add_parser("fields", help="Navier-Stokes data, energy spectra, FNO vs interpolant refiner")
    fsub = p.add_subparsers(dest="fields_command", metavar="ACTION")
    fsub.required = True

    s = fsub.add_parser("spectra", help="solver vs FNO vs refiner: spectrum comparison PNG (+ CSV/MD tables)")
    s.add_argument("--out", default="spectra.png", help="PNG path; tables go to the same directory")
    s.add_argument("--quick", action="store_true",
                   help="smoke test of barely trained models on a 16² grid (~1 min; outputs are labelled "
                        "SMOKE TEST, not a result) instead of the ~15 min default")
    s.add_argument("--no-generator", action="store_true", help="skip the unconditional generator grid")
    s.add_argument("--rollout-steps", type=int, default=None)
    s.add_argument("--fno-iterations", type=int, default=None)
    s.add_argument("--refiner-iterations", type=int, default=None)
    s.add_argument("--generator-iterations", type=int, default=None)
    s.add_argument("--refiner-solver", default=None,
                   help=f"solver for each refiner step (default {REFINER_SOLVER_DEFAULT})")
    s.add_argument("--refiner-nfe", type=int, default=None)
    s.add_argument("--sim-grid", type=int, default=None,
                   help="simulation grid of the data (default 64; 128 is resolved to 0.1 %% up to shell 15)")
    s.add_argument("--cache-dir", default=os.path.join("data", "cache"))
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small FFTs are fastest single-threaded on a shared CPU)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_spectra)

    m = fsub.add_parser("simulate", help="simulate and cache Navier-Stokes trajectories (.npz)")
    m.add_argument("--flow", choices=["kolmogorov", "decaying"], default="kolmogorov")
    m.add_argument("--out", default=None, help=".npz or .h5 (PDEBench layout) path (default data/cache/ns_<hash>.npz)")
    m.add_argument("--n-traj", type=int, default=16)
    m.add_argument("--grid", type=int, default=64)
    m.add_argument("--frames", type=int, default=100)
    m.add_argument("--frame-dt", type=float, default=0.2)
    m.add_argument("--nu", type=float, default=None)
    m.add_argument("--dt", type=float, default=None,
                   help="time step (default: the flow's config, kolmogorov 0.01, decaying 0.0025)")
    m.add_argument("--integrator", choices=["rk4", "cnab2"], default="rk4")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="cpu")
    m.add_argument("--threads", type=int, default=1)
    m.set_defaults(func=run_simulate)

    o = fsub.add_parser("simulate1d", help="simulate 1-D Burgers or Kuramoto-Sivashinsky trajectories (.h5)")
    o.add_argument("--equation", choices=["burgers", "ks"], default="ks")
    o.add_argument("--out", required=True, help="HDF5 path (PDEBench layout [batch, time, x])")
    o.add_argument("--n-traj", type=int, default=8)
    o.add_argument("--grid", type=int, default=None, help="points (default: burgers 256, ks 128)")
    o.add_argument("--length", type=float, default=None, help="domain length (default: burgers 2π, ks 32π)")
    o.add_argument("--nu", type=float, default=None, help="viscosity (burgers, default 0.01) or 4th-order "
                   "coefficient (ks, default 1)")
    o.add_argument("--dt", type=float, default=None, help="time step (default: burgers 1e-3, ks 0.05)")
    o.add_argument("--frames", type=int, default=100)
    o.add_argument("--frame-dt", type=float, default=None, help="time between frames (default: burgers 0.01, ks 0.5)")
    o.add_argument("--warmup", type=float, default=None, help="discarded spin-up (default: burgers 0, ks 50)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--device", default="cpu")
    o.add_argument("--threads", type=int, default=1)
    o.set_defaults(func=run_simulate1d)


def check_writable(field: str, path: str) -> None:
    from ..files import check_writable as check

    check(field, path)


def _threads(n: int) -> None:
    import torch

    from ..errors import ConfigError

    if n < 1:
        raise ConfigError("threads", f"must be >= 1, got {n}")
    torch.set_num_threads(n)


def run_spectra(args) -> int:
    from ..fields.pipeline import SpectraConfig, run_spectra_comparison, summary_markdown, write_outputs
    from ..utils import resolve_device

    _threads(args.threads)
    dev = resolve_device(args.device)
    cfg = SpectraConfig.quick() if args.quick else SpectraConfig()
    cfg.cache_dir, cfg.seed = args.cache_dir, args.seed
    for name in ("rollout_steps", "fno_iterations", "refiner_iterations", "generator_iterations", "refiner_solver",
                 "refiner_nfe", "sim_grid"):
        v = getattr(args, name)
        if v is not None:
            setattr(cfg, name, v)
    check_writable("--out", args.out)
    if cfg.refiner_solver is not None:  # checked now, not after training
        from ..solvers import SOLVERS, check_nfe

        solver = SOLVERS.canonical(cfg.refiner_solver)
        cls = SOLVERS.cls(solver)
        if cfg.refiner_nfe is not None:
            check_nfe(cfg.refiner_nfe, 1 if cls.adaptive else cls.evals_per_step, solver)
    res = run_spectra_comparison(cfg, device=str(dev), progress=True, with_generator=not args.no_generator)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    paths = write_outputs(res, out_dir, os.path.basename(args.out))
    print(summary_markdown(res))
    for k, p in paths.items():
        print(f"wrote {k}: {p}")
    return 0


def run_simulate(args) -> int:
    from ..data.navier_stokes import decaying_config, kolmogorov_config, load_or_generate

    _threads(args.threads)
    make = kolmogorov_config if args.flow == "kolmogorov" else decaying_config
    kw = dict(n_traj=args.n_traj, n=args.grid, frames=args.frames, frame_dt=args.frame_dt,
              integrator=args.integrator, seed=args.seed)
    if args.nu is not None:
        kw["nu"] = args.nu
    if args.dt is not None:
        kw["dt"] = args.dt
    cfg = make(**kw)
    if args.out:
        check_writable("--out", args.out)
    out = load_or_generate(cfg, args.out, device=args.device, progress=True)
    w = out["vorticity"]
    print(f"vorticity {tuple(w.shape)}, times {float(out['times'][0]):g}..{float(out['times'][-1]):g}, "
          f"rms {float(w.pow(2).mean().sqrt()):.4g}")
    return 0


#: defaults of ``fields simulate1d`` per equation
SIMULATE1D_DEFAULTS = {
    "burgers": {"grid": 256, "length": 2 * 3.141592653589793, "nu": 0.01, "dt": 1e-3, "frame_dt": 0.01, "warmup": 0.0},
    "ks": {"grid": 128, "length": 32 * 3.141592653589793, "nu": 1.0, "dt": 0.05, "frame_dt": 0.5, "warmup": 50.0},
}


def run_simulate1d(args) -> int:
    import torch

    from ..data.burgers import Burgers1D
    from ..data.hdf5 import export_hdf5
    from ..data.kuramoto_sivashinsky import KuramotoSivashinsky1D
    from ..data.spectral1d import random_sines, trajectories_1d

    _threads(args.threads)
    p = dict(SIMULATE1D_DEFAULTS[args.equation])
    for k in p:
        v = getattr(args, k)
        if v is not None:
            p[k] = v
    cls = Burgers1D if args.equation == "burgers" else KuramotoSivashinsky1D
    solver = cls(n=p["grid"], length=p["length"], nu=p["nu"], dt=p["dt"], device=args.device)
    u0 = random_sines(solver.x, solver.length, args.n_traj, generator=torch.Generator().manual_seed(args.seed))
    out = trajectories_1d(solver, u0, args.frames, p["frame_dt"], p["warmup"], progress=True)
    params = {**solver.params(), "frame_dt": p["frame_dt"], "warmup": p["warmup"], "seed": args.seed,
              "initial": "random_sines(modes=10, max_wavenumber=3, amplitude=0.5)"}
    export_hdf5(args.out, out["u"], out["times"], {"x": solver.x.cpu()}, params)
    u = out["u"]
    print(f"{args.equation}: u {tuple(u.shape)}, times {float(out['times'][0]):g}..{float(out['times'][-1]):g}, "
          f"rms {float(u.pow(2).mean().sqrt()):.4g}; wrote {args.out}")
    return 0

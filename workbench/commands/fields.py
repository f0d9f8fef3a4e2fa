"""``workbench fields``: Navier–Stokes data, energy spectra and the solver vs FNO vs refiner comparison.

Sub-commands:

* ``workbench fields spectra --out spectra.png [--quick]``: generate Kolmogorov-flow data (cached in ``data/cache``),
  train the FNO surrogate, the interpolant refiner and the unconditional generator, roll out, and write the
  spectrum comparison PNG plus CSV/Markdown tables next to it.
* ``workbench fields simulate --out traj.npz``: simulate and cache Kolmogorov or decaying-turbulence trajectories.
"""
from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("fields", help="Navier-Stokes data, energy spectra, FNO vs interpolant refiner")
    fsub = p.add_subparsers(dest="fields_command", metavar="ACTION")
    fsub.required = True

    s = fsub.add_parser("spectra", help="solver vs FNO vs refiner: spectrum comparison PNG (+ CSV/MD tables)")
    s.add_argument("--out", default="spectra.png", help="PNG path; tables go to the same directory")
    s.add_argument("--quick", action="store_true", help="smoke-test sizes (~1 min) instead of the ~15 min default")
    s.add_argument("--no-generator", action="store_true", help="skip the unconditional generator grid")
    s.add_argument("--rollout-steps", type=int, default=None)
    s.add_argument("--fno-iterations", type=int, default=None)
    s.add_argument("--refiner-iterations", type=int, default=None)
    s.add_argument("--generator-iterations", type=int, default=None)
    s.add_argument("--refiner-solver", default=None, help="solver for each refiner step (default heun)")
    s.add_argument("--refiner-nfe", type=int, default=None)
    s.add_argument("--cache-dir", default=os.path.join("data", "cache"))
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small FFTs are fastest single-threaded on a shared CPU)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_spectra)

    m = fsub.add_parser("simulate", help="simulate and cache Navier-Stokes trajectories (.npz)")
    m.add_argument("--flow", choices=["kolmogorov", "decaying"], default="kolmogorov")
    m.add_argument("--out", default=None, help=".npz path (default data/cache/ns_<hash>.npz)")
    m.add_argument("--n-traj", type=int, default=16)
    m.add_argument("--grid", type=int, default=64)
    m.add_argument("--frames", type=int, default=100)
    m.add_argument("--frame-dt", type=float, default=0.2)
    m.add_argument("--nu", type=float, default=None)
    m.add_argument("--dt", type=float, default=0.01)
    m.add_argument("--integrator", choices=["rk4", "cnab2"], default="rk4")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="cpu")
    m.add_argument("--threads", type=int, default=1)
    m.set_defaults(func=run_simulate)


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
                 "refiner_nfe"):
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
    kw = dict(n_traj=args.n_traj, n=args.grid, frames=args.frames, frame_dt=args.frame_dt, dt=args.dt,
              integrator=args.integrator, seed=args.seed)
    if args.nu is not None:
        kw["nu"] = args.nu
    cfg = make(**kw)
    if args.out:
        check_writable("--out", args.out)
    out = load_or_generate(cfg, args.out, device=args.device, progress=True)
    w = out["vorticity"]
    print(f"vorticity {tuple(w.shape)}, times {float(out['times'][0]):g}..{float(out['times'][-1]):g}, "
          f"rms {float(w.pow(2).mean().sqrt()):.4g}")
    return 0

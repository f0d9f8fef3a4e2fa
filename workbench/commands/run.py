"""``workbench run``: one experiment on an embedded default, error vs the exact solution, a PNG of trajectories;
or, with ``--model DIR``, on a user's model folder (diffusers pipeline / UNet folder, or a workbench model), error vs
the model's own accurate ODE solution (Dormand–Prince) and, for an image model, a PNG grid of samples."""
from __future__ import annotations

import argparse
import json

import torch

from ..interpolants import INTERPOLANTS
from ..problems import PROBLEMS
from ..schedules import SCHEDULES
from ..solvers import SOLVERS
from ..errors import ConfigError
from ..files import atomic_path, atomic_write_text


def parse_kv(items, field: str) -> dict:
    """``["a=1", "name=x"]`` → ``{"a": 1, "name": "x"}`` (values parsed as JSON when possible)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(field, f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def add_experiment_arguments(p: argparse.ArgumentParser) -> None:
    """Flags for every field of :class:`~workbench.experiment.Experiment` (shared by other commands)."""
    p.add_argument("--interpolant", default=None, help="interpolant name (see below; default linear; a --model "
                                                       "brings its own)")
    p.add_argument("--interpolant-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--schedule", default=None, help="time schedule name (default uniform; logsnr with --model)")
    p.add_argument("--schedule-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--solver", default=None, help="solver name (default heun; dpmpp_2m with --model)")
    p.add_argument("--solver-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--nfe", type=int, default=20, help="budget of model evaluations (default 20)")
    p.add_argument("--eps", type=float, default=0.0, help="diffusion coefficient for SDE solvers (default 0)")
    p.add_argument("--data", default=None, help="problem / data set name (default gmm2d; not with --model)")
    p.add_argument("--data-param", action="append", metavar="KEY=VALUE", default=[])
    p.add_argument("--n-samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--t-start", type=float, default=0.0)
    p.add_argument("--t-end", type=float, default=1.0)


#: defaults of the flags left unset, without and with ``--model``
DEFAULTS = {"interpolant": "linear", "schedule": "uniform", "solver": "heun", "data": "gmm2d"}
MODEL_DEFAULTS = {"schedule": "logsnr", "solver": "dpmpp_2m"}


def load_model_from_args(args):
    """The :class:`~workbench.adapters.AdaptedModel` of ``--model`` (None without it), its network in ``--dtype``."""
    path = getattr(args, "model", None)
    if not path:
        return None
    from ..adapters.loading import load_model
    from ..utils import resolve_dtype

    for flag in ("interpolant", "data"):
        if getattr(args, flag, None) is not None:
            raise ConfigError(f"--{flag}", f"--model brings its own {'interpolant' if flag == 'interpolant' else 'data'}; "
                                           f"drop --{flag} {getattr(args, flag)}")
    return load_model(path, interpolation=getattr(args, "model_interpolation", "cubic"),
                      dtype=resolve_dtype(args.dtype))


def experiment_from_args(args, model=None):
    """Build the :class:`Experiment` the flags describe (on ``model``, an adapted model, when given)."""
    from ..experiment import Experiment

    pick = lambda name: getattr(args, name) or (model is not None and MODEL_DEFAULTS.get(name)) or DEFAULTS[name]  # noqa: E731
    common = dict(
        schedule=pick("schedule"), schedule_params=parse_kv(args.schedule_param, "schedule_params"),
        solver=pick("solver"), solver_params=parse_kv(args.solver_param, "solver_params"),
        nfe=args.nfe, eps=args.eps, n_samples=args.n_samples, seed=args.seed, device=args.device, dtype=args.dtype,
        t_start=args.t_start, t_end=args.t_end,
    )
    if model is not None:
        return Experiment(model=model, keep_trajectory=False, **common)
    return Experiment(
        interpolant=pick("interpolant"), interpolant_params=parse_kv(args.interpolant_param, "interpolant_params"),
        data=pick("data"), data_params=parse_kv(args.data_param, "data_params"), **common)


def registered_names() -> str:
    """The registered names of every family, for ``--help``."""
    return (
        f"interpolants:\n{INTERPOLANTS.describe()}\nschedules:\n{SCHEDULES.describe()}\n"
        f"solvers:\n{SOLVERS.describe()}\ndata:\n{PROBLEMS.describe()}"
    )


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="sample a problem with one interpolant/schedule/solver/NFE and score it against the exact flow",
        description="Sample with one configuration and report the error against the exact solution.",
        epilog=registered_names(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_experiment_arguments(p)
    p.add_argument("--model", default=None, metavar="DIR",
                   help="sample a model folder instead of --data: a diffusers pipeline (model_index.json, unet/, "
                        "scheduler/), a diffusers UNet folder (config.json + scheduler_config.json) or a workbench "
                        "model (model.safetensors + model.json); the error is measured against the model's own "
                        "Dormand-Prince solution (rtol=atol=1e-7, floored at 8 ulp of the network's dtype)")
    p.add_argument("--model-interpolation", default="cubic", choices=["cubic", "linear"],
                   help="a diffusers table between its training timesteps (default cubic: a smooth ODE; linear: "
                        "diffusers' own fractional-timestep rule)")
    p.add_argument("--out", default="outputs/run.png", help="PNG of trajectories (default outputs/run.png)")
    p.add_argument("--samples", default="outputs/samples.png",
                   help="PNG grid of the samples of an image model (default outputs/samples.png)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary as JSON here")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--fit-schedule", type=int, default=0, metavar="N_PILOT",
                   help="first fit the time grid to the model by a pilot run on N_PILOT separate start states, "
                        "starting from --schedule (workbench.schedules.fit_grid); 0 = off")
    p.add_argument("--fit-solver", type=int, default=0, metavar="N_PILOT",
                   help="then fit a non-stationary solver with the same NFE to the model by a pilot run on N_PILOT "
                        "separate start states, starting from --solver on the (fitted) grid "
                        "(workbench.solvers.learned.fit_nonstationary); 0 = off")
    p.add_argument("--search-solver", type=int, default=0, metavar="N_PILOT",
                   help="search a per-step solver (time points, data/noise prediction, order, corrector, B(h)) with "
                        "the same NFE by a pilot run on N_PILOT separate start states (USF / S3, "
                        "workbench.fitting.usf); the run uses its exact non-stationary form; 0 = off")
    p.add_argument("--search-param", action="append", metavar="KEY=VALUE", default=[],
                   help="a parameter of the search (population, generations, children, survivors, subset, schedules, "
                        "refine_evals, seed, max_seconds)")
    p.add_argument("--save-fit", default=None, metavar="FILE",
                   help="write the fits applied to this run (loaded and new, in order) as JSON to FILE")
    p.add_argument("--load-fit", default=None, metavar="FILE",
                   help="apply the fits saved by --save-fit in FILE (same --nfe/--t-start/--t-end) before fitting")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..files import check_writable

    from ..plotting import is_image_batch, plot_image_grid

    model = load_model_from_args(args)
    exp = experiment_from_args(args, model)
    images = len(exp._problem.shape) == 3 and exp._problem.shape[0] in (1, 3)
    if images and args.samples:
        check_writable("--samples", args.samples)
    elif args.out:
        check_writable("--out", args.out)
    if args.json_out:
        check_writable("--json", args.json_out)
    if args.save_fit:
        check_writable("--save-fit", args.save_fit)
    fits = []
    if args.load_fit:
        from ..fitting.saved import apply_fit, load_fits

        for fit in load_fits(args.load_fit):
            exp = apply_fit(exp, fit)
            fits.append(fit)
            print(f"loaded {fit.what} fit from {args.load_fit}: pilot L2 {fit.init_loss:.4g} -> {fit.loss:.4g}")
    if args.fit_schedule:
        exp, fit = exp.fit_schedule(n_pilot=args.fit_schedule, progress=args.progress)
        fits.append(fit)
        print(f"fitted grid ({fit.evals} pilot runs, {fit.pilot_nfe} pilot NFE, {fit.seconds:.1f} s): pilot L2 "
              f"{fit.init_loss:.4g} -> {fit.loss:.4g}, held-out {fit.init_holdout_loss:.4g} -> {fit.holdout_loss:.4g}"
              f"{'' if fit.improved else ' (no gain: starting grid kept)'}")
        print("times: " + ", ".join(f"{t:.6g}" for t in fit.times))
    if args.search_solver:
        exp, sfit = exp.search_solver(n_pilot=args.search_solver, progress=args.progress,
                                         **parse_kv(args.search_param, "search_params"))
        fits.append(sfit)
        print(f"searched solver ({sfit.iterations} candidates, {sfit.pilot_nfe} pilot NFE, {sfit.seconds:.1f} s): "
              f"pilot L2 {sfit.init_loss:.4g} ({sfit.params['plain']}) -> {sfit.loss:.4g}, held-out "
              f"{sfit.init_holdout_loss:.4g} -> {sfit.holdout_loss:.4g}"
              f"{'' if sfit.improved else ' (no gain: best plain solver kept)'}")
        print("steps: " + sfit.params["describe"])
    if args.fit_solver:
        exp, nsfit = exp.fit_solver(n_pilot=args.fit_solver, progress=args.progress)
        fits.append(nsfit)
        print(f"fitted non-stationary solver ({nsfit.iterations} iterations, {nsfit.pilot_nfe} pilot NFE, "
              f"{nsfit.seconds:.1f} s): pilot L2 {nsfit.init_loss:.4g} -> {nsfit.loss:.4g}, held-out "
              f"{nsfit.init_holdout_loss:.4g} -> {nsfit.holdout_loss:.4g}"
              f"{'' if nsfit.improved else ' (no gain: starting solver kept)'}")
    if args.save_fit:
        from ..fitting.saved import save_fits

        save_fits(args.save_fit, fits)
        print(f"fits: {args.save_fit} ({len(fits)})")
    result = exp.run(progress=args.progress)
    s = result.summary()
    print(f"interpolant={s['interpolant']} schedule={s['schedule']} solver={s['solver']} "
          f"nfe={s['nfe']}/{s['nfe_budget']} steps={s['steps']} data={exp.config()['data']}")
    if model is not None:
        print(f"model: {model.source}, samples of shape {tuple(result.samples.shape[1:])}")
    if result.error is not None and model is not None:
        from ..adapters.base import ModelProblem, _model_dtype

        tol = max(ModelProblem.reference_tol, 8 * torch.finfo(_model_dtype(model)).eps)
        scale = float(result.reference.flatten(1).norm(dim=1).mean())
        print(f"mean L2 error vs the model's own dopri5 solution (rtol=atol={tol:.2g}): {result.error:.6g} "
              f"(relative {result.error / max(scale, 1e-300):.3g}, max {result.max_error:.3g})")
    elif result.error is not None:
        print(f"mean L2 error vs exact PF-ODE map: {result.error:.6g} (max {result.max_error:.3g})")
    if result.sliced_w2 is not None:
        print(f"sliced W2 vs exact samples: {result.sliced_w2:.4g}")
    print(f"sampling wall time: {result.wall_time * 1e3:.1f} ms")
    if images and is_image_batch(result.samples):
        if args.samples:
            err = f", mean L2 error {result.error:.3g}" if result.error is not None else ""
            with atomic_path(args.samples) as tmp:
                plot_image_grid(result.samples, str(tmp), title=f"{s['solver']} · {s['schedule']} · NFE {result.nfe}{err}")
            print(f"samples: {args.samples}")
    elif args.out:
        with atomic_path(args.out) as tmp:
            result.plot(str(tmp))
        print(f"figure: {args.out}")
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps({"config": result.config, "summary": s}, indent=2, default=str))
    return 0

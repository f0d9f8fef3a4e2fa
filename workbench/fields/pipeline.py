r"""The end-to-end "solver vs FNO vs refiner" experiment behind ``workbench fields spectra`` and the benchmark.

1. Kolmogorov-flow trajectories from :mod:`workbench.data.navier_stokes` (simulated at ``sim_grid``, cached under
   ``data/cache/``, spectrally truncated to the learning ``grid``);
2. a plain FNO one-step surrogate and a PDE-Refiner-style conditional generator trained on the same pairs;
3. 50+-step rollouts from held-out initial states; relative L2 error per step, enstrophy spectra over the last
   frames, tail ratio and log-spectral error against the solver;
4. optionally an unconditional vorticity generator scored by spectral error for interpolant × solver × NFE.
"""
from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List

import torch

from ..data.navier_stokes import kolmogorov_config, load_or_generate
from ..errors import ConfigError
from ..metrics.rollout import PDEBENCH_BANDS, rollout_report
from ..metrics.spectra import energy_spectrum, log_spectral_error, tail_ratio, tail_window
from .refiner import OneStepSurrogate, Refiner, VorticityGenerator, count_parameters
from .rollout import rollout, rollout_error


def downsample(w: torch.Tensor, grid: int) -> torch.Tensor:
    """Spectral truncation of periodic fields ``(..., n, n)`` to ``(..., grid, grid)`` (keeps :math:`|k_x|,|k_y| < grid/2`)."""
    n = w.shape[-1]
    if grid == n:
        return w
    if grid > n or grid % 2:
        raise ConfigError("grid", f"must be even and <= the simulation grid {n}, got {grid}")
    wh = torch.fft.rfft2(w)
    h = grid // 2
    out = torch.zeros(*w.shape[:-2], grid, h + 1, dtype=wh.dtype)
    out[..., :h, :h] = wh[..., :h, :h]
    out[..., grid - h + 1:, :h] = wh[..., n - h + 1:, :h]
    return torch.fft.irfft2(out, s=(grid, grid)) * (grid * grid) / (n * n)


@dataclass
class SpectraConfig:
    """Sizes of the comparison (defaults: the ≤ 15 min CPU run; :meth:`quick` for a 1–2 min smoke run)."""

    grid: int = 32
    sim_grid: int = 64
    train_traj: int = 24
    train_frames: int = 41
    test_traj: int = 8
    rollout_steps: int = 60
    frame_dt: float = 0.2
    warmup: float = 10.0
    width: int = 24
    modes: int = 10
    layers: int = 4
    batch_size: int = 16
    fno_iterations: int = 800
    refiner_iterations: int = 1500
    generator_iterations: int = 600
    lr: float = 2e-3
    input_noise: float = 0.05
    refiner_solver: str = "euler"
    refiner_nfe: int = 16
    refiner_schedule: str = "logsnr"
    spectrum_window: int = 10
    gen_interpolants: List[str] = field(default_factory=lambda: ["linear", "vp", "trig"])
    gen_solvers: List[str] = field(default_factory=lambda: ["euler", "heun"])
    gen_nfes: List[int] = field(default_factory=lambda: [4, 8, 16])
    gen_samples: int = 64
    seed: int = 0
    cache_dir: str = os.path.join("data", "cache")
    smoke_test: bool = False
    chaos_perturbation: float = 1e-6

    @staticmethod
    def quick() -> "SpectraConfig":
        """A smoke-test size (tiny training, short rollout): ``smoke_test=True`` labels every output as such."""
        return SpectraConfig(smoke_test=True, grid=16, sim_grid=32, warmup=2.0, train_traj=4, train_frames=12, test_traj=2, rollout_steps=8, width=12, modes=6, layers=2,
                             batch_size=8, fno_iterations=30, refiner_iterations=30, generator_iterations=20,
                             refiner_nfe=4, spectrum_window=4, gen_interpolants=["linear", "vp"], gen_solvers=["euler"],
                             gen_nfes=[4], gen_samples=8)


#: The label every output of a ``smoke_test`` run carries (log, figure, summary).
SMOKE_TEST_LABEL = "SMOKE TEST (--quick): tiny grid, models barely trained; checks the pipeline runs, not a result"


def smoke_test_label(cfg: Dict[str, object]) -> str:
    """The smoke-test banner with the run's sizes, or ``""`` for a real run (``cfg`` = ``asdict(SpectraConfig)``)."""
    if not cfg.get("smoke_test"):
        return ""
    return (f"{SMOKE_TEST_LABEL} ({cfg['grid']}² grid, {cfg['fno_iterations']}/{cfg['refiner_iterations']} "
            f"FNO/refiner iterations, {cfg['rollout_steps']}-step rollout)")


def error_steps(n_steps: int) -> List[int]:
    """The rollout steps reported in the log and the summary: 1, ``min(10, T)`` and the final step T, distinct."""
    t = int(n_steps)
    if t < 1:
        raise ConfigError("rollout_steps", f"must be >= 1, got {n_steps}")
    return sorted({1, min(10, t), t})


def perturbed_solver_run(data_cfg, w0: torch.Tensor, steps: int, relative: float) -> torch.Tensor:
    r"""The solver's own rollout from a perturbed start: :math:`\omega_0 + \epsilon\,\mathrm{rms}(\omega_0)\,\xi`,
    ξ white noise (seeded), at the simulation grid, ``steps`` frames of ``data_cfg.frame_dt``: its error against the
    unperturbed data is the chaos (predictability) limit of any surrogate."""
    from ..data.navier_stokes import NavierStokes2D

    if not relative > 0:
        raise ConfigError("chaos_perturbation", f"must be > 0, got {relative}")
    ns = NavierStokes2D(n=data_cfg.n, nu=data_cfg.nu, drag=data_cfg.drag, forcing_amplitude=data_cfg.forcing_amplitude,
                        forcing_wavenumber=data_cfg.forcing_wavenumber, dt=data_cfg.dt, integrator=data_cfg.integrator,
                        dtype=data_cfg.dtype)
    w0 = w0.to(ns.dtype)
    xi = torch.randn(w0.shape, generator=torch.Generator().manual_seed(12345), dtype=ns.dtype)
    w0 = w0 + relative * w0.pow(2).mean((-1, -2), keepdim=True).sqrt() * xi
    r = data_cfg.steps_per_frame()
    return ns.simulate(w0, int(steps) * r, record_every=r).cpu()


def metric_bands(grid: int):
    """PDEBench's fRMSE band edges (4, 12) where the grid has shells beyond 12, else (N/8, 3N/8)."""
    n = int(grid)
    return PDEBENCH_BANDS if n // 2 > PDEBENCH_BANDS[1] else (max(1, n // 8), 3 * n // 8)


def run_spectra_comparison(cfg: SpectraConfig, device: str = "cpu", progress: bool = True,
                           with_generator: bool = True, log=print) -> Dict[str, object]:
    """Run the whole comparison; returns a dict of tensors and numbers (see :func:`write_outputs`)."""
    t_start = time.perf_counter()
    if cfg.smoke_test:
        log(smoke_test_label(asdict(cfg)))
    torch.manual_seed(cfg.seed)
    common = dict(n=cfg.sim_grid, frame_dt=cfg.frame_dt, warmup=cfg.warmup, dtype="float64")
    train_cfg = kolmogorov_config(n_traj=cfg.train_traj, frames=cfg.train_frames, seed=cfg.seed, **common)
    test_cfg = kolmogorov_config(n_traj=cfg.test_traj, frames=cfg.rollout_steps + 1, seed=cfg.seed + 1000, **common)
    from ..data.navier_stokes import cache_path

    t0 = time.perf_counter()
    train = load_or_generate(train_cfg, cache_path(train_cfg, cfg.cache_dir), progress=progress)["vorticity"]
    test = load_or_generate(test_cfg, cache_path(test_cfg, cfg.cache_dir), progress=progress)["vorticity"]
    t_data = time.perf_counter() - t0
    train = downsample(train, cfg.grid).float()
    chaos = downsample(perturbed_solver_run(test_cfg, test[:, 0], cfg.rollout_steps, cfg.chaos_perturbation),
                       cfg.grid).float()
    test = downsample(test, cfg.grid).float()
    log(f"data: train {tuple(train.shape)}, test {tuple(test.shape)} ({t_data:.1f}s)")

    fno_kw = dict(width=cfg.width, modes=cfg.modes, layers=cfg.layers)
    fno = OneStepSurrogate(**fno_kw).to(device)
    flog = fno.fit(train.to(device), cfg.fno_iterations, cfg.batch_size, cfg.lr, cfg.seed, progress, cfg.input_noise)
    log(f"fno: {count_parameters(fno)} params, final loss {flog.loss[-1]:.4g} ({flog.seconds:.0f}s)")
    ref = Refiner(**fno_kw).to(device)
    rlog = ref.fit(train.to(device), cfg.refiner_iterations, cfg.batch_size, cfg.lr, cfg.seed, progress, cfg.input_noise)
    log(f"refiner: {count_parameters(ref)} params, final loss {rlog.loss[-1]:.4g} ({rlog.seconds:.0f}s)")

    u0 = test[:, 0].to(device)
    g = torch.Generator().manual_seed(cfg.seed + 7)
    t0 = time.perf_counter()
    with torch.no_grad():
        fno.eval()
        pred_fno = rollout(fno, u0, cfg.rollout_steps, progress, "fno rollout").cpu()
    t_fno = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred_ref = rollout(lambda u: ref(u, cfg.refiner_solver, cfg.refiner_nfe, cfg.refiner_schedule, generator=g),
                       u0, cfg.rollout_steps, progress, "refiner rollout").cpu()
    t_ref = time.perf_counter() - t0
    truth = test

    w = min(cfg.spectrum_window, cfg.rollout_steps)
    n = cfg.grid
    kc, km = tail_window(n)
    spec = {name: energy_spectrum(x[:, -w:]).mean() for name, x in
            (("solver", truth), ("fno", pred_fno), ("refiner", pred_ref))}
    spec0 = {name: energy_spectrum(x[:, 1:2]).mean() for name, x in
             (("solver", truth), ("fno", pred_fno), ("refiner", pred_ref))}
    res: Dict[str, object] = {
        "config": asdict(cfg), "k": spec["solver"].k, "spectra": {k: v.energy for k, v in spec.items()},
        "error": {"fno": rollout_error(pred_fno, truth), "refiner": rollout_error(pred_ref, truth)},
        "persistence_error": rollout_error(truth[:, :1].expand_as(truth), truth),
        "chaos_error": rollout_error(chaos, truth),
        "rollout_metrics": {k: rollout_report(x.double(), truth.double(), dt=cfg.frame_dt, bands=metric_bands(n))
                            for k, x in (("fno", pred_fno), ("refiner", pred_ref))},
        "tail_ratio": {k: tail_ratio(spec[k], spec["solver"], k_cut=kc, k_max=km) for k in ("fno", "refiner")},
        "tail_ratio_step1": {k: tail_ratio(spec0[k], spec0["solver"], k_cut=kc, k_max=km) for k in ("fno", "refiner")},
        "log_spectral_error": {k: log_spectral_error(spec[k], spec["solver"], k_min=1, k_max=int(km))
                               for k in ("fno", "refiner")},
        "tail_range": [kc, km],
        "tail_curve": {k: [tail_ratio(energy_spectrum(x[:, i]).mean(), energy_spectrum(truth[:, i]).mean(),
                                      k_cut=kc, k_max=km)
                           for i in range(1, cfg.rollout_steps + 1)]
                       for k, x in (("fno", pred_fno), ("refiner", pred_ref))},
        "timing": {"data_s": t_data, "fno_train_s": flog.seconds, "refiner_train_s": rlog.seconds,
                   "fno_rollout_s": t_fno, "refiner_rollout_s": t_ref},
        "losses": {"fno": flog.loss, "refiner": rlog.loss},
    }
    err = res["error"]
    for name in ("fno", "refiner"):
        e = err[name]  # type: ignore[index]
        at = ", ".join(f"step {i} {float(e[i]):.3f}" for i in error_steps(len(e) - 1))
        log(f"{name}: rollout rel. L2 error {at}; tail ratio {res['tail_ratio'][name]:.3f}; "  # type: ignore[index]
            f"log-spectral error {res['log_spectral_error'][name]:.3f}")  # type: ignore[index]

    if with_generator:
        snaps = train[:, train.shape[1] // 2:].reshape(-1, n, n)
        gen = VorticityGenerator(**fno_kw).to(device)
        glog = gen.fit(snaps.to(device), cfg.generator_iterations, cfg.batch_size, cfg.lr, cfg.seed, progress)
        log(f"generator: final loss {glog.loss[-1]:.4g} ({glog.seconds:.0f}s)")
        ref_snaps = truth.reshape(-1, n, n)
        rows = []
        for interp in cfg.gen_interpolants:
            for solver in cfg.gen_solvers:
                for nfe in cfg.gen_nfes:
                    gg = torch.Generator().manual_seed(cfg.seed + 11)
                    out = gen.sample(cfg.gen_samples, n, interp, solver, nfe, "logsnr", generator=gg, device=device)
                    x = out["vorticity"].cpu()
                    rows.append({"interpolant": interp, "solver": solver, "nfe": nfe,
                                 "nfe_used": out["result"].nfe,
                                 "log_spectral_error": log_spectral_error(x, ref_snaps, k_min=1, k_max=int(km)),
                                 "tail_ratio": tail_ratio(x, ref_snaps, k_cut=kc, k_max=km)})
        res["generator"] = rows
        res["timing"]["generator_train_s"] = glog.seconds  # type: ignore[index]
        for r in rows:
            log(f"generator {r['interpolant']:>6} {r['solver']:>5} nfe={r['nfe']:>2}: "
                f"log-spectral error {r['log_spectral_error']:.3f}, tail ratio {r['tail_ratio']:.3f}")
    res["timing"]["total_s"] = time.perf_counter() - t_start  # type: ignore[index]
    return res


def plot_comparison(res: Dict[str, object], path: str) -> str:
    """Write the spectrum comparison (solver vs FNO vs refiner), the rollout error curves and, when present,
    the generator's spectral error vs NFE as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_gen = "generator" in res
    fig, axs = plt.subplots(2, 2, figsize=(11, 8.4))
    axes = axs.ravel()
    k = res["k"].numpy()  # type: ignore[union-attr]
    sl = slice(1, int(res["config"]["grid"]) // 2)  # type: ignore[index]
    colors = {"solver": "k", "fno": "tab:red", "refiner": "tab:blue"}
    for name, e in res["spectra"].items():  # type: ignore[union-attr]
        axes[0].loglog(k[sl], e.numpy()[sl], color=colors[name], lw=2 if name == "solver" else 1.5,
                       label={"solver": "solver (pseudo-spectral)", "fno": "FNO one-step",
                              "refiner": "interpolant refiner"}[name])
    kc, km = res["tail_range"]  # type: ignore[misc]
    axes[0].axvspan(kc, km, color="0.9", zorder=0, label="tail range")
    axes[0].set_xlabel("wavenumber k")
    axes[0].set_ylabel("enstrophy spectrum Z(k)")
    nsteps = len(res["error"]["fno"]) - 1  # type: ignore[index]
    w = int(res["config"]["spectrum_window"])  # type: ignore[index]
    axes[0].set_title(f"spectra, last {w} frames of a {nsteps}-step rollout")
    axes[0].legend(fontsize=8)
    for name in ("fno", "refiner"):
        e = res["error"][name].numpy()  # type: ignore[index]
        axes[1].plot(range(len(e)), e, color=colors[name], label=name)
    if "persistence_error" in res:
        pe = res["persistence_error"].numpy()  # type: ignore[union-attr]
        axes[1].plot(range(len(pe)), pe, color="0.5", ls="--", label="persistence (u_0 kept)")
    if "chaos_error" in res:
        ce = res["chaos_error"].numpy()  # type: ignore[union-attr]
        eps = res["config"].get("chaos_perturbation", 0)  # type: ignore[union-attr]
        axes[1].plot(range(len(ce)), ce, color="k", ls="-.", lw=1, label=f"solver from a {eps:g}-perturbed start")
    axes[1].axhline(2 ** 0.5, color="k", ls=":", lw=1, label="√2 (decorrelated)")
    axes[1].set_xlabel("rollout step")
    axes[1].set_ylabel("relative L2 error")
    axes[1].set_title("rollout error vs solver")
    axes[1].legend(fontsize=8)
    for name in ("fno", "refiner"):
        tc = res["tail_curve"][name]  # type: ignore[index]
        axes[2].semilogy(range(1, len(tc) + 1), tc, color=colors[name], label=name)
    axes[2].axhline(1.0, color="k", lw=1)
    axes[2].set_xlabel("rollout step")
    axes[2].set_ylabel("tail ratio (model / solver)")
    axes[2].set_title(f"high-k tail ({kc:g} <= k <= {km:g}) along the rollout")
    axes[2].legend(fontsize=8)
    if not has_gen:
        axes[3].axis("off")
    if has_gen:
        rows = res["generator"]  # type: ignore[index]
        for interp in sorted({r["interpolant"] for r in rows}):
            for solver in sorted({r["solver"] for r in rows}):
                sel = [r for r in rows if r["interpolant"] == interp and r["solver"] == solver]
                axes[3].plot([r["nfe"] for r in sel], [r["log_spectral_error"] for r in sel], marker="o",
                             label=f"{interp} / {solver}")
        axes[3].set_xscale("log", base=2)
        axes[3].set_xlabel("NFE")
        axes[3].set_ylabel("mean |log Z_gen/Z_solver|")
        one_nfe = len({r["nfe"] for r in rows}) == 1
        axes[3].set_title("unconditional generator: spectral error vs solver data"
                          + ("\n(one NFE only: no trend)" if one_nfe else ""), fontsize=10 if one_nfe else None)
        axes[3].legend(fontsize=7)
    banner = smoke_test_label(res["config"])  # type: ignore[arg-type]
    if banner:
        fig.suptitle(banner, color="tab:red", fontsize=9, fontweight="bold")
        for ax in axes:
            ax.text(0.5, 0.5, "SMOKE TEST", transform=ax.transAxes, ha="center", va="center", fontsize=26,
                    color="tab:red", alpha=0.15, rotation=20)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(res: Dict[str, object], out_dir: str, png_name: str = "spectra.png") -> Dict[str, str]:
    """PNG + CSV tables (spectra, rollout errors, generator grid) + a JSON summary into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"png": plot_comparison(res, os.path.join(out_dir, png_name))}
    k = res["k"]
    p = os.path.join(out_dir, "spectra.csv")
    with open(p, "w", newline="") as f:
        wr = csv.writer(f)
        names = list(res["spectra"])  # type: ignore[arg-type]
        wr.writerow(["k"] + names)
        for i in range(len(k)):  # type: ignore[arg-type]
            wr.writerow([f"{float(k[i]):g}"] + [f"{float(res['spectra'][nm][i]):.6e}" for nm in names])  # type: ignore[index]
    paths["spectra_csv"] = p
    p = os.path.join(out_dir, "rollout_error.csv")
    with open(p, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["step", "error_fno", "error_refiner", "tail_ratio_fno", "tail_ratio_refiner"])
        ef, er = res["error"]["fno"], res["error"]["refiner"]  # type: ignore[index]
        tf, tr = res["tail_curve"]["fno"], res["tail_curve"]["refiner"]  # type: ignore[index]
        for i in range(len(ef)):
            tails = [f"{tf[i - 1]:.4f}", f"{tr[i - 1]:.4f}"] if i > 0 else ["", ""]
            wr.writerow([i, f"{float(ef[i]):.5f}", f"{float(er[i]):.5f}", *tails])
    paths["rollout_csv"] = p
    if "generator" in res:
        p = os.path.join(out_dir, "generator.csv")
        with open(p, "w", newline="") as f:
            rows = res["generator"]  # type: ignore[assignment]
            wr = csv.DictWriter(f, fieldnames=list(rows[0]))
            wr.writeheader()
            for r in rows:
                wr.writerow({kk: (f"{v:.4f}" if isinstance(v, float) else v) for kk, v in r.items()})
        paths["generator_csv"] = p
    p = os.path.join(out_dir, "summary.md")
    with open(p, "w") as f:
        f.write(summary_markdown(res))
    paths["summary"] = p
    return paths


def _fmt(v: float) -> str:
    return f"{v:.3f}" if v == 0 or abs(v) >= 1e-3 else f"{v:.1e}"


def summary_markdown(res: Dict[str, object]) -> str:
    """The headline numbers as a Markdown table (rollout errors, tail ratios, spectral errors, timings)."""
    err = res["error"]  # type: ignore[assignment]
    kc, km = res["tail_range"]  # type: ignore[misc]
    steps = error_steps(len(err["fno"]) - 1)  # type: ignore[index]
    head = " | ".join(f"rel. L2 err step {i}" for i in steps)
    lines = [f"| model | {head} | tail ratio (final window) | tail ratio (step 1) | log-spectral err |",
             "|---|" + "---|" * (len(steps) + 3)]
    rows = [(nm, err[nm]) for nm in ("fno", "refiner")]  # type: ignore[index]
    if "persistence_error" in res:
        rows.append(("persistence (u_0 kept)", res["persistence_error"]))
    if "chaos_error" in res:
        rows.append((f"solver, {res['config'].get('chaos_perturbation', 0):g}-perturbed start", res["chaos_error"]))  # type: ignore[union-attr]
    for nm, e in rows:
        vals = " | ".join(_fmt(float(e[i])) for i in steps)
        if nm in res["tail_ratio"]:  # type: ignore[operator]
            rest = (f"{res['tail_ratio'][nm]:.3f} | {res['tail_ratio_step1'][nm]:.3f} "  # type: ignore[index]
                    f"| {res['log_spectral_error'][nm]:.3f}")  # type: ignore[index]
        else:
            rest = "– | – | –"
        lines.append(f"| {nm} | {vals} | {rest} |")
    banner = smoke_test_label(res["config"])  # type: ignore[arg-type]
    out = (f"**{banner}**\n\n" if banner else "") + "\n".join(lines) + "\n\n"
    out += (f"Rollout of {len(err['fno']) - 1} steps; tail ratio = sum of the enstrophy spectrum over "  # type: ignore[index]
            f"{kc:g} <= k <= {km:g}, model / solver (1 = tail kept, < 1 = tail lost); a decorrelated prediction "
            "of equal variance has rel. L2 error √2.\n\n")
    if "generator" in res:
        out += "| interpolant | solver | NFE | log-spectral err | tail ratio |\n|---|---|---|---|---|\n"
        for r in res["generator"]:  # type: ignore[union-attr]
            out += (f"| {r['interpolant']} | {r['solver']} | {r['nfe']} | {r['log_spectral_error']:.3f} "
                    f"| {r['tail_ratio']:.3f} |\n")
        out += "\n"
    if "rollout_metrics" in res:
        rm = res["rollout_metrics"]  # type: ignore[assignment]
        lo, hi = metric_bands(int(res["config"]["grid"]))  # type: ignore[index]
        out += (f"| model | corr. time ρ ≥ 0.8 | ρ ≥ 0.95 | fRMSE low (s < {lo}) | mid ({lo} ≤ s < {hi}) "
                f"| high (s ≥ {hi}) | enstrophy drift (final step) |\n|---|---|---|---|---|---|---|\n")
        for nm, r in rm.items():  # type: ignore[union-attr]
            ct = r["correlation_time"]

            def _ct(th):
                c = ct[th]
                return ("≥ " if c["censored"] else "") + f"{c['time']:.2f}"

            be = r["band_errors"]
            out += (f"| {nm} | {_ct(0.8)} | {_ct(0.95)} | {float(be['low'][1:].mean()):.4g} "
                    f"| {float(be['mid'][1:].mean()):.4g} | {float(be['high'][1:].mean()):.4g} "
                    f"| {float(r['invariant_drift'][-1]):+.3f} |\n")
        out += ("\nCorrelation time: simulated time (frame_dt units) for which the batch-mean Pearson correlation "
                "with the solver stays at or above the threshold (≥: never fell below within the rollout). fRMSE: "
                "PDEBench-style per-shell RMS error amplitude averaged over the band's shells and the rollout "
                "steps. Enstrophy drift: model / solver − 1.\n\n")
    t = res["timing"]  # type: ignore[assignment]
    out += "Timing (s, one run): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()) + "\n"  # type: ignore[union-attr]
    return out


__all__ = ["perturbed_solver_run", "metric_bands", "SMOKE_TEST_LABEL", "smoke_test_label", "error_steps", "summary_markdown", "SpectraConfig", "run_spectra_comparison", "plot_comparison", "write_outputs", "downsample"]

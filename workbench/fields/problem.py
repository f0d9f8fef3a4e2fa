r"""The ``vorticity`` problem for :class:`~workbench.experiment.Experiment`: unconditional generation of Kolmogorov-flow
vorticity snapshots with any Gaussian-base interpolant × solver × NFE, scored by spectra against solver data.

Importing this module registers the problem (``PROBLEMS.get("vorticity", grid=32, ...)``). The generator is trained
on first use (about a minute at the defaults on one CPU thread), kept in memory per parameter set and saved to
``data/cache/vorticity_gen_<hash>.pt`` (git-ignored) so later processes load it.

Units: the Field works in *normalised* vorticity (divide by the data std ``problem.scale``); use
:meth:`VorticityProblem.decode` for physical units. Helpers for dashboards:

* :func:`solver_vorticity` — a batch of solver vorticity fields ``(B, N, N)`` (physical units, cached);
* spectra of any batch: :func:`workbench.metrics.spectra.energy_spectrum` (``.mean()`` for the ensemble mean),
  :func:`~workbench.metrics.spectra.log_spectral_error`, :func:`~workbench.metrics.spectra.tail_ratio`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Dict, Optional, Tuple

import torch

from ..data.navier_stokes import cache_path, kolmogorov_config, load_or_generate
from ..errors import ConfigError
from ..files import atomic_path
from ..interpolants import INTERPOLANTS
from ..interpolants.base import Interpolant
from ..models.field import Field
from ..problems import PROBLEMS, Problem
from .pipeline import downsample
from .refiner import VorticityGenerator

_MODELS: Dict[str, VorticityGenerator] = {}


def solver_vorticity(n: int = 64, grid: int = 32, seed: int = 0, n_traj: int = 8, frames: int = 40,
                     sim_grid: int = 64, warmup: float = 10.0, cache_dir: str = os.path.join("data", "cache"),
                     progress: bool = False) -> torch.Tensor:
    """``n`` solver vorticity snapshots ``(n, grid, grid)`` (float32, physical units) from cached Kolmogorov-flow
    trajectories (simulated at ``sim_grid``², spectrally truncated to ``grid``; every frame after the warm-up)."""
    cfg = kolmogorov_config(n_traj=int(n_traj), frames=int(frames), seed=int(seed), n=int(sim_grid), warmup=warmup)
    w = load_or_generate(cfg, cache_path(cfg, cache_dir), progress=progress)["vorticity"]
    w = downsample(w, int(grid)).reshape(-1, int(grid), int(grid)).float()
    if int(n) > w.shape[0]:
        raise ConfigError("n", f"only {w.shape[0]} snapshots in the cache (n_traj × frames); ask for fewer")
    idx = torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(int(seed)))[: int(n)]
    return w[idx]


@PROBLEMS.register("vorticity", "kolmogorov_vorticity")
class VorticityProblem(Problem):
    """Kolmogorov-flow vorticity snapshots on a ``grid × grid`` torus; the model is a trained interpolant generator.

    Args:
        grid: learning grid (16, 32 or 64).
        sim_grid, warmup: simulation grid and discarded spin-up time of the solver data.
        iterations: training iterations of the generator.
        width, modes, layers: FNO size.
        seed: data and training seed.
        cache_dir: where trajectories and the trained generator are cached.
    """

    exact = False

    def __init__(self, grid: int = 32, iterations: int = 600, width: int = 24, modes: int = 10, layers: int = 4,
                 seed: int = 0, sim_grid: int = 64, warmup: float = 10.0, cache_dir: str = os.path.join("data", "cache")):
        if int(grid) not in (16, 32, 64):
            raise ConfigError("grid", f"got {grid!r}; allowed values are: 16, 32, 64")
        if int(sim_grid) < int(grid):
            raise ConfigError("sim_grid", f"must be >= grid={grid}, got {sim_grid!r}")
        self.sim_grid, self.warmup = int(sim_grid), float(warmup)
        self.grid, self.iterations, self.seed, self.cache_dir = int(grid), int(iterations), int(seed), cache_dir
        self.width, self.modes, self.layers = int(width), int(modes), int(layers)
        self.fno = dict(width=self.width, modes=self.modes, layers=self.layers)
        self._snapshots: Optional[torch.Tensor] = None

    @property
    def shape(self) -> Tuple[int, ...]:
        return (self.grid, self.grid)

    def snapshots(self) -> torch.Tensor:
        """The solver snapshots used for training and as the target law (physical units)."""
        if self._snapshots is None:
            self._snapshots = solver_vorticity(256, self.grid, self.seed, sim_grid=self.sim_grid, warmup=self.warmup,
                                               cache_dir=self.cache_dir)
        return self._snapshots

    def generator(self) -> VorticityGenerator:
        """The trained generator (trained, loaded from the cache, or reused from memory)."""
        spec = {k: v for k, v in self.params().items() if k != "cache_dir"}  # where the cache lives is not its key
        key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        if key in _MODELS:
            return _MODELS[key]
        gen = VorticityGenerator(**self.fno)
        path = os.path.join(self.cache_dir, f"vorticity_gen_{key}.pt")
        state = None
        if os.path.exists(path):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                bad = [k for k, v in state["model"].items() if torch.is_tensor(v) and not torch.isfinite(v).all()]
                if bad or not (math.isfinite(float(state["std"])) and float(state["std"]) > 0):
                    raise ValueError(f"non-finite weights {bad[:3]} or std {state['std']!r}")
                gen.load_state_dict(state["model"])  # shapes checked here (a wrong shape raises)
                gen.norm.std = float(state["std"])
            except Exception as exc:  # noqa: BLE001 - a corrupt cache entry is rebuilt, never used
                import warnings

                warnings.warn(f"the cached generator {path} is unusable ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); retraining it",
                              RuntimeWarning, stacklevel=2)
                gen, state = VorticityGenerator(**self.fno), None
        if state is None:
            gen.fit(self.snapshots(), self.iterations, 16, 2e-3, self.seed, progress=True)
            os.makedirs(self.cache_dir, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save({"model": gen.state_dict(), "std": gen.norm.std}, str(tmp))
        gen.eval()
        for p in gen.parameters():
            p.requires_grad_(False)
        _MODELS[key] = gen
        return gen

    @property
    def scale(self) -> float:
        """Data std: physical vorticity = normalised × scale."""
        return float(self.generator().norm.std)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised samples → physical vorticity."""
        return x * self.scale

    def check(self, interpolant: Interpolant, t_start: float, t_end: float) -> None:
        if not interpolant.gaussian_base:  # refuse before the generator is trained, not after
            ok = [n for n in INTERPOLANTS.names() if INTERPOLANTS.cls(n).gaussian_base]
            raise ConfigError("interpolant", f"{interpolant.name!r} has no Gaussian base; the field generator needs "
                              f"one of: {', '.join(ok)}")

    def field(self, interpolant: Interpolant, device: torch.device, dtype: torch.dtype) -> Field:
        self.check(interpolant, 0.0, 1.0)
        gen = self.generator().to(device=device, dtype=dtype)
        return gen.field(interpolant)

    def sample_start(self, interpolant, t_start, n, generator):
        xi = torch.randn(int(n), self.grid, self.grid, generator=generator, dtype=torch.float64)
        if t_start <= 0.0:
            c = interpolant.coefficients(0.0)
            if float(c.signal) == 0.0:
                return xi * float(c.sigma)
        c = interpolant.coefficients(float(t_start))
        x1 = self._normalised_targets(int(n), generator)
        return float(c.signal) * x1 + float(c.sigma) * xi

    def sample_target(self, interpolant, t_end, n, generator):
        if t_end < 1.0:
            return None
        snaps = self.snapshots()
        return (snaps / self.scale).to(torch.float64)

    def _normalised_targets(self, n: int, generator: torch.Generator) -> torch.Tensor:
        snaps = self.snapshots()
        idx = torch.randint(0, snaps.shape[0], (n,), generator=generator)
        return (snaps[idx] / self.scale).to(torch.float64)

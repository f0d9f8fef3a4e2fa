r"""The live half of the dashboard, free of any UI toolkit: a cancellable background sampling run that publishes
display-ready frames, exact references shared (read-only) between sessions, and the spectrum of the view.

A :class:`LiveRun` iterates :meth:`Experiment.stream() <workbench.experiment.Experiment.stream>` in a daemon
thread. After every accepted step it converts the state into a *frame* (first two coordinates of the particles,
the paths of the first few particles, the spectrum) and stores it in a one-slot, latest-wins mailbox. A UI's
periodic callback calls :meth:`LiveRun.latest` and redraws only when the version changed, so the server's event
loop never waits for the sampler, and a sampler faster than the redraw rate is decimated in time (the paths
still hold every step).

Scoring: the full ``ExperimentResult`` compares all particles with a ``rtol = 1e-10`` reference, which costs tens
of seconds for 2 000 particles. The dashboard instead stops the stream after the last step and computes

.. math:: \mathrm{error} = \frac1m\sum_{i<m} \lVert \hat x^{(i)}_1 - \Phi_{t_0\to t_1}(x^{(i)}_0)\rVert_2

on the first ``m = 128`` particles, where :math:`\Phi` is the problem's exact probability-flow map
(:meth:`Problem.reference`, at ``rtol = atol = 1e-9``), plus the sliced Wasserstein-2 distance of all particles
to exact target samples. References depend only on (data, interpolant, seed, particles, interval), not on the
solver, so they are computed once per process and shared read-only between sessions; nothing else is shared.

Isolation: each session owns a :class:`SessionExecutor` (its own worker threads), so one session's slow job (a
vorticity generator being trained for its target samples) never queues another session's run; the executor is shut
down, its queued jobs cancelled, when the session closes. A model is built once per key at a time:
:func:`build_lock` (one lock per data set and its parameters) is held while a run builds its field and while a
target job samples, so two jobs needing the same untrained model train it once; sessions with other data sets
never wait on it.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from workbench.errors import ConfigError, WorkbenchError
from workbench.interpolants import INTERPOLANTS
from workbench.metrics.distances import sliced_wasserstein
from workbench.problems import PROBLEMS
from workbench.solvers import SOLVERS

#: particles whose error vs the exact flow is measured; paths drawn; tolerance of the dashboard's reference.
REFERENCE_PARTICLES = 128
PATHS = 48
REFERENCE_TOL = 1e-9
TARGET_SAMPLES = 2000
HIST_BINS = 64
#: seconds between spectra of the live state (the views show them at most 4 times a second; the last step's is
#: always computed): a 2 000-particle histogram + FFT per step was a third of the sampler's per-step cost.
SPECTRUM_PERIOD_S = 0.2


# ---------------------------------------------------------------------------------------------------------------
# spectra
def radial_spectrum(fields: torch.Tensor) -> Tuple[np.ndarray, np.ndarray]:
    r"""Mean radially (shell-) summed energy spectrum of square 2-D fields ``(..., N, N)``.

    .. math:: E(s) = \tfrac12 \sum_{k:\,\lfloor |k| + 1/2\rfloor = s} |\hat u(k)|^2,\qquad \hat u = \mathrm{fft2}(u)/N^2

    Uses :func:`workbench.metrics.spectra.energy_spectrum` when available (same definition), else a small local
    version. Returns shells ``k = 1..K-1`` (the mean, ``k = 0``, is dropped) and ``E(k)``.
    """
    x = fields.detach().to(torch.float64).cpu()
    try:
        from workbench.metrics.spectra import energy_spectrum

        spec = energy_spectrum(x, "scalar")
        k = (spec.k / spec.k[1]).numpy() if spec.k.numel() > 1 else spec.k.numpy()
        e = spec.energy.reshape(-1, spec.energy.shape[-1]).mean(0).numpy()
    except ImportError:  # pragma: no cover - the metrics module is optional here
        n = x.shape[-1]
        fh = torch.fft.fft2(x) / (n * n)
        power = (fh.abs() ** 2).reshape(-1, n, n).mean(0)
        f = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
        shell = torch.floor(torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2) + 0.5).long()
        e = 0.5 * torch.zeros(int(shell.max()) + 1, dtype=torch.float64).index_add_(0, shell.flatten(), power.flatten())
        k, e = np.arange(e.numel(), dtype=float), e.numpy()
    return k[1:], e[1:]


def histogram_spectrum(xy: np.ndarray, box: float, bins: int = HIST_BINS) -> Tuple[np.ndarray, np.ndarray]:
    """Spectrum of the particle density of 2-D points: a ``bins × bins`` histogram on ``[-box, box]²``,
    normalised to a probability density, passed to :func:`radial_spectrum`. Sharp modes put energy in high k."""
    h, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[-box, box], [-box, box]], density=True)
    return radial_spectrum(torch.from_numpy(np.nan_to_num(h)))


def frame_spectrum(x: torch.Tensor, box: float) -> Tuple[np.ndarray, np.ndarray]:
    """The spectrum shown for a state ``x``: of the fields themselves when samples are square 2-D fields
    ``(B, [C,] N, N)`` (digits, vorticity), else of the density histogram of the first two coordinates."""
    if is_field(x):
        return radial_spectrum(x[:256])
    return histogram_spectrum(to_xy(x), box)


def is_field(x: torch.Tensor) -> bool:
    """True when samples are square 2-D fields ``(B, [C,] N, N)`` (shown as images, spectra of the fields)."""
    return x.dim() >= 3 and x.shape[-1] == x.shape[-2] and x.shape[-1] >= 4


#: sample images shown per field view (the first IMAGES particles).
IMAGES = 2


def field_images(x: torch.Tensor, n: int = IMAGES) -> np.ndarray:
    """The first ``n`` samples of a field batch as float32 images ``(n, N, N)`` (first channel)."""
    f = x.detach()[:n].to(torch.float32).cpu()
    while f.dim() > 3:
        f = f[:, 0]
    return f.numpy()


def spectral_error(spec: Tuple[np.ndarray, np.ndarray], ref: Tuple[np.ndarray, np.ndarray],
                   floor: float = 1e-10) -> Optional[float]:
    r"""Relative L2 error of a spectrum per shell, averaged over the shells the reference resolves:

    .. math:: e = \Big(\frac1{|S|}\sum_{k\in S}\Big(\frac{E(k) - E_\mathrm{ref}(k)}{E_\mathrm{ref}(k)}\Big)^2\Big)^{1/2},
              \quad S = \{k : E_\mathrm{ref}(k) > \mathrm{floor}\cdot\max E_\mathrm{ref}\}.
    """
    k, e = spec
    kr, er = ref
    m = min(len(e), len(er))
    if m == 0:
        return None
    e, er = np.asarray(e[:m], dtype=float), np.asarray(er[:m], dtype=float)
    keep = er > floor * er.max()
    if not keep.any():
        return None
    return float(np.sqrt(np.mean(((e[keep] - er[keep]) / er[keep]) ** 2)))


def to_xy(x: torch.Tensor) -> np.ndarray:
    """First two coordinates of each sample as float32 numpy ``(B, 2)`` (1-D data gets a zero second axis)."""
    flat = x.detach().reshape(x.shape[0], -1)
    if flat.shape[1] == 1:
        flat = torch.cat([flat, torch.zeros_like(flat)], 1)
    return flat[:, :2].to(torch.float32).cpu().numpy()


# ---------------------------------------------------------------------------------------------------------------
# shared, read-only references (keyed by everything they depend on), computed on the asking session's executor
_CACHE: "OrderedDict[str, Future]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 32
_BUILD_LOCKS: Dict[str, threading.Lock] = {}
_BUILD_LOCKS_LOCK = threading.Lock()
#: build-lock acquisitions that had to wait (tests read it: a second build of one model waited for the first).
BUILD_WAITS: Dict[str, int] = {}


def _key(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def build_lock(cfg: Dict[str, Any]) -> threading.Lock:
    """The lock of the model of ``cfg``'s data set and data parameters (one per key, for the process)."""
    key = _key(cfg["data"], cfg["data_params"])
    with _BUILD_LOCKS_LOCK:
        return _BUILD_LOCKS.setdefault(key, threading.Lock())


class _Held:
    """``with _Held(lock, key):`` — acquire, counting in :data:`BUILD_WAITS` when another holder made us wait."""

    def __init__(self, lock: threading.Lock, key: str):
        self.lock, self.key = lock, key

    def __enter__(self):
        if not self.lock.acquire(blocking=False):
            BUILD_WAITS[self.key] = BUILD_WAITS.get(self.key, 0) + 1
            self.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.lock.release()


def holding_build_lock(cfg: Dict[str, Any]) -> _Held:
    """Context manager holding :func:`build_lock` of ``cfg``."""
    return _Held(build_lock(cfg), _key(cfg["data"], cfg["data_params"]))


class SessionExecutor:
    """One session's worker threads for its reference and target jobs (``workers`` at a time).

    :meth:`close` (on session destroy) cancels the queued jobs; a running job finishes, but nobody waits for it.
    """

    def __init__(self, workers: int = 2, name: str = "workbench-session"):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self.closed = False

    def submit(self, fn, *args: Any) -> Future:
        if self.closed:
            fut: Future = Future()
            fut.set_exception(WorkbenchError("the session was closed"))
            return fut
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


#: used when a run has no session (scripts, unit tests).
_DEFAULT_EXECUTOR = SessionExecutor(workers=2, name="workbench-default")


def _shared(key: str, fn, executor: Optional[SessionExecutor] = None) -> Future:
    """The future of ``fn()`` for ``key``: computed once per process (bounded LRU) on the asking session's
    ``executor`` and shared read-only by every session (a cancelled or failed one is recomputed)."""
    with _CACHE_LOCK:
        fut = _CACHE.get(key)
        if fut is not None and not fut.cancelled() and not (fut.done() and fut.exception() is not None):
            _CACHE.move_to_end(key)
            return fut
        fut = (executor or _DEFAULT_EXECUTOR).submit(fn)
        _CACHE[key] = fut
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return fut


def clear_cache() -> None:
    """Forget every shared reference (tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _problem_and_interpolant(cfg: Dict[str, Any]):
    return PROBLEMS.get(cfg["data"], **cfg["data_params"]), INTERPOLANTS.get(cfg["interpolant"], **cfg["interpolant_params"])


def target_future(cfg: Dict[str, Any], executor: Optional[SessionExecutor] = None) -> Future:
    """Exact target samples (or None), the half-width ``box`` of the view, their first two coordinates
    (``xy``, at most 1 000) and their spectrum, shared as one dict (sampling may build the model: under
    :func:`build_lock`)."""

    def compute():
        problem, interp = _problem_and_interpolant(cfg)
        g = torch.Generator().manual_seed(int(cfg["seed"]) + 1_000_003)
        with holding_build_lock(cfg):
            if executor is not None and executor.closed:  # the session left while this job waited
                raise WorkbenchError("the session was closed")
            target = problem.sample_target(interp, cfg["t_end"], TARGET_SAMPLES, g)
        out = {"target": target, "box": 4.0, "xy": None, "spectrum": None, "images": None}
        if target is not None:
            xy = to_xy(target)
            out["box"] = max(float(np.quantile(np.abs(xy), 0.999)) * 1.15, 1e-3)
            out["xy"] = xy[:1000]
            out["spectrum"] = frame_spectrum(target, out["box"])
            out["images"] = field_images(target) if is_field(target) else None
        return out

    return _shared(_key("target", cfg["data"], cfg["data_params"], cfg["interpolant"], cfg["interpolant_params"],
                        cfg["seed"], cfg["t_end"]), compute, executor)


def reference_future(cfg: Dict[str, Any], start: torch.Tensor, executor: Optional[SessionExecutor] = None
                     ) -> Future:
    """The exact PF-ODE map of the first :data:`REFERENCE_PARTICLES` start states (or None), shared."""
    x = start[:REFERENCE_PARTICLES].detach().to(torch.float64).cpu().clone()

    def compute():
        problem, interp = _problem_and_interpolant(cfg)
        return problem.reference(interp, x, cfg["t_start"], cfg["t_end"], tol=REFERENCE_TOL)

    return _shared(_key("reference", cfg["data"], cfg["data_params"], cfg["interpolant"], cfg["interpolant_params"],
                        cfg["seed"], cfg["n_samples"], cfg["t_start"], cfg["t_end"], REFERENCE_PARTICLES), compute, executor)


# ---------------------------------------------------------------------------------------------------------------
class LiveRun:
    """One cancellable sampling run in a background thread, publishing frames.

    Args:
        exp: a validated :class:`~workbench.experiment.Experiment`.
        label: shown in messages (``"A"``/``"B"``).
        paths: number of particles whose paths are kept.
        score: compute the error vs the exact flow and SW2 at the end.

    A frame (``latest()[1]``) is a dict with ``state`` (``running``/``scoring``/``done``/``cancelled``/
    ``failed``), ``step``, ``steps_total`` (None for adaptive solvers), ``t``, ``nfe``, ``nfe_budget``, ``xy``
    ``(B, 2)``, ``paths`` ``(steps+1, P, 2)``, ``spectrum`` ``(k, E)``, ``box``, ``error``, ``sw2``, ``message``,
    ``wall`` and ``steps_per_s``.
    """

    def __init__(self, exp, label: str = "A", paths: int = PATHS, score: bool = True, solver: Optional[str] = None,
                 nfe: Optional[int] = None, executor: Optional[SessionExecutor] = None):
        self.executor = executor
        self._factory = exp if callable(exp) and not hasattr(exp, "stream") else None
        self.exp = None if self._factory is not None else exp
        self.label, self.n_paths, self.score = label, paths, score
        self.solver = solver if self.exp is None else self.exp.solver
        self.config: Dict[str, Any] = {} if self.exp is None else self.exp.config()
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._version = 0
        budget = nfe if self.exp is None else self.exp.nfe
        self._frame: Dict[str, Any] = {"state": "starting", "step": 0, "nfe": 0, "nfe_budget": budget,
                                       "message": None, "error": None, "sw2": None}
        self._thread: Optional[threading.Thread] = None
        self._run = None

    @classmethod
    def from_config(cls, cfg, which: str = "a", **kwargs: Any) -> "LiveRun":
        """A run whose :class:`Experiment` is built *in the worker thread* (building one may load or train a
        model), so the UI thread never waits; a bad configuration ends the run as ``failed`` with the
        readable message of :func:`~widgets.state.build_experiment`."""
        from widgets.state import WorkbenchError, build_experiment

        def factory():
            exp, msg = build_experiment(cfg, which)
            if msg is not None:
                raise WorkbenchError(msg)
            return exp

        c = cfg.panel(which)
        return cls(factory, label=which.upper(), solver=c.solver, nfe=c.nfe, **kwargs)

    # -- control -----------------------------------------------------------------------------------------------
    def start(self) -> "LiveRun":
        """Start the sampling thread (returns self)."""
        self._thread = threading.Thread(target=self._work, name=f"workbench-live-{self.label}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop at the next step (the thread ends soon after; never blocks the caller)."""
        self._cancel.set()
        run = self._run
        if run is not None:
            run.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def finished(self) -> bool:
        return self.latest()[1]["state"] in ("done", "cancelled", "failed")

    def latest(self) -> Tuple[int, Dict[str, Any]]:
        """``(version, frame)`` of the newest frame (cheap; call from the UI thread)."""
        with self._lock:
            return self._version, self._frame

    def _publish(self, **frame: Any) -> None:
        with self._lock:
            new = dict(self._frame)
            new.update(frame)
            self._frame = new
            self._version += 1

    # -- the thread --------------------------------------------------------------------------------------------
    def _work(self) -> None:
        t0 = time.perf_counter()
        try:
            if self.exp is None:
                try:
                    self.exp = self._factory()
                except WorkbenchError as exc:  # already one readable line naming the side
                    self._publish(state="failed", message=str(exc))
                    return
                self.config = self.exp.config()
                self._publish(nfe_budget=self.exp.nfe)
            cfg = self.config
            tgt = target_future(cfg, self.executor)
            self._publish(state="building")
            with holding_build_lock(cfg):  # builds (maybe trains) the model once per key at a time
                if self._cancel.is_set():
                    self._publish(state="cancelled")
                    return
                run = self.exp.stream()
            self._run = run
            if self._cancel.is_set():
                run.cancel()
            start = run.start
            ref = (reference_future(cfg, start, self.executor)
                   if (self.score and not SOLVERS.cls(self.solver).stochastic) else None)
            while not tgt.done():
                if self._cancel.wait(0.05):
                    self._publish(state="cancelled")
                    return
            if tgt.cancelled():  # queued on a session that closed: compute it here
                tgt = target_future(cfg, self.executor)
            tinfo = tgt.result()
            box = tinfo["box"]
            t_end = float(run.grid[-1])
            adaptive = SOLVERS.cls(self.solver).adaptive
            total = None if adaptive else len(run.grid) - 1
            p = min(self.n_paths, start.shape[0])
            paths = [to_xy(start[:p])]
            xy = to_xy(start)
            fields = is_field(start)
            images = {"start": field_images(start), "mid": None, "final": None} if fields else None
            self._publish(state="running", step=0, steps_total=total, t=float(run.grid[0]), xy=xy,
                          paths=np.stack(paths), spectrum=frame_spectrum(start, box), box=box, rejected=0,
                          target_xy=tinfo["xy"], target_spectrum=tinfo["spectrum"], is_field=fields,
                          images=images, target_images=tinfo.get("images"))
            t_mid = 0.5 * (float(run.grid[0]) + t_end)
            x_final, nfe, steps, rejected = start, 0, 0, 0
            spec_at, spec_of = time.perf_counter(), 0
            for step in run:
                if self._cancel.is_set():
                    break
                if not step.accepted:
                    rejected += 1
                    continue
                steps += 1
                nfe = step.nfe
                x_final = step.x
                xy = to_xy(step.x)
                paths.append(xy[:p])
                elapsed = time.perf_counter() - t0
                extra = {}
                if fields:  # start, the first state past mid-run, the current one
                    images = dict(images, final=field_images(step.x))
                    if images["mid"] is None and step.t_next >= t_mid:
                        images["mid"] = images["final"]
                    extra["images"] = images
                last = step.t_next >= t_end - 1e-12
                now = time.perf_counter()
                if last or now - spec_at >= SPECTRUM_PERIOD_S:
                    extra["spectrum"] = frame_spectrum(step.x, box)
                    spec_at, spec_of = now, steps
                self._publish(step=steps, t=step.t_next, nfe=nfe, xy=xy, paths=np.stack(paths), rejected=rejected,
                              wall=elapsed, steps_per_s=steps / max(elapsed, 1e-9), **extra)
                if last:
                    break  # the last step: stop here, the run's own full-size scoring is not needed
            if self._cancel.is_set():
                self._publish(state="cancelled", message=None)
                return
            wall = time.perf_counter() - t0
            if not bool(torch.isfinite(x_final).all()):
                self._publish(state="failed", wall=wall, message=(
                    f"{self.label}: NaN/Inf appeared in the trajectory of solver {self.solver!r}; "
                    "try more NFE, a different schedule, or a smaller eps"))
                return
            if spec_of != steps:  # the loop ended without a flagged last step: the final state's spectrum
                self._publish(spectrum=frame_spectrum(x_final, box))
            self._publish(state="scoring", wall=wall)
            sw2 = None
            target = tinfo["target"]
            if self.score and target is not None:
                g = torch.Generator().manual_seed(int(cfg["seed"]) + 3_000_017)
                sw2 = float(sliced_wasserstein(x_final.detach().cpu(), target, n_projections=128, generator=g))
            error = None
            if ref is not None:
                while not ref.done():
                    if self._cancel.wait(0.05):
                        self._publish(state="cancelled")
                        return
                if ref.cancelled():
                    ref = reference_future(cfg, start, self.executor)
                reference = ref.result()
                if reference is not None:
                    m = reference.shape[0]
                    d = (x_final[:m].detach().to(torch.float64).cpu() - reference).reshape(m, -1).norm(dim=1)
                    error = float(d.mean())
            spec_err = None
            if fields and tinfo["spectrum"] is not None:
                spec_err = spectral_error(frame_spectrum(x_final, box), tinfo["spectrum"])
            self._publish(state="done", error=error, sw2=sw2, nfe=nfe, wall=wall, spectral_error=spec_err)
        except Exception as exc:  # shown as one line in the page, never as a traceback
            self._publish(state="failed", message=f"{self.label}: {type(exc).__name__}: {exc}")


def launch_runs(read_config: Callable[[], Any], executor: Optional[SessionExecutor] = None
                ) -> Tuple[Any, Dict[str, Optional["LiveRun"]], Dict[str, Optional[str]]]:
    """Read the controls and start one :class:`LiveRun` per side (both front ends share this).

    Returns ``(config or None, runs, messages)``; a :class:`ConfigError` from the controls becomes side a's
    readable message and no run starts.
    """
    runs: Dict[str, Optional[LiveRun]] = {"a": None, "b": None}
    messages: Dict[str, Optional[str]] = {"a": None, "b": None}
    try:
        cfg = read_config()
    except ConfigError as exc:
        messages["a"] = str(exc)
        return None, runs, messages
    for side in (["a", "b"] if cfg.compare else ["a"]):  # the Experiment is built in the run's thread
        runs[side] = LiveRun.from_config(cfg, side, executor=executor).start()
    return cfg, runs, messages


_STATE_TEXT = {"starting": "starting (building the experiment)", "building": "building the model (may train)",
               "scoring": "scoring"}


def format_status(frame: Dict[str, Any], label: str, solver: str, schedule: str) -> str:
    """The one-line plain-text status of a panel (``NFE used/budget`` and ``error`` are parsed by the tests).
    Plain text: the UIs show it escaped, never as Markdown/HTML."""
    state = frame.get("state", "")
    total = frame.get("steps_total")
    steps = f"{frame.get('step', 0)}/{total}" if total is not None else f"{frame.get('step', 0)}"
    parts = [f"{label} {solver} · {schedule}", f"NFE {frame.get('nfe', 0)}/{frame.get('nfe_budget', 0)}",
             f"steps {steps}", f"t={frame.get('t', 0.0):.3f}"]
    if frame.get("error") is not None:
        parts.append(f"error {frame['error']:.3e}")
    if frame.get("sw2") is not None:
        parts.append(f"SW2 {frame['sw2']:.3e}")
    if frame.get("spectral_error") is not None:
        parts.append(f"spectral error {frame['spectral_error']:.3e}")
    if frame.get("rejected"):
        parts.append(f"rejected {frame['rejected']}")
    if frame.get("wall") is not None:
        parts.append(f"{frame['wall']:.2f} s")
    parts.append(_STATE_TEXT.get(state, state))
    return " · ".join(parts)


def finite_or_none(v: Optional[float]) -> Optional[float]:
    return v if v is not None and math.isfinite(v) else None

r"""Is a Navier–Stokes data set resolved? Energy per shell against a run on a finer grid, same physics.

Both runs start from the same state: a Matérn GRF warmed up on the *fine* grid (``factor · n``) for ``warmup``, then
spectrally truncated to ``n``. The coarse (``n``) and fine runs then integrate ``t_run`` with the same ν, drag,
forcing and dt, and the kinetic-energy spectra (:func:`~workbench.metrics.spectra.energy_spectrum`,
``kind="vorticity"``) of every recorded frame after ``t_skip`` are averaged over frames and trajectories:

.. math:: r(s) = \bar E_n(s) / \bar E_{\text{fine}}(s),\qquad 1 \le s \le s_{top}.

A data set is called resolved up to :math:`s_{top}` (the top of the evaluation window, e.g.
:func:`~workbench.metrics.spectra.tail_window`'s 15 on a 32² learning grid) when :math:`|r(s) - 1| \le 0.05`
there. Over a short run the two trajectories stay close, so r measures the truncation error of the coarse grid,
not sampling noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

from ..errors import ConfigError
from ..metrics.spectra import energy_spectrum
from .grf import gaussian_random_field
from .navier_stokes import NavierStokes2D, NSDataConfig


@dataclass(frozen=True)
class ResolutionCheck:
    """Result of :func:`resolution_check`: shells ``k`` (1..s_top), the ratio per shell and its worst deviation."""

    k: torch.Tensor
    ratio: torch.Tensor
    n: int
    fine_n: int
    max_deviation: float
    worst_shell: int

    def resolved(self, tolerance: float = 0.05) -> bool:
        """``True`` when every shell up to the top is within ``tolerance`` of the fine run."""
        return self.max_deviation <= float(tolerance)


def _pad(w: torch.Tensor, n_out: int) -> torch.Tensor:
    """Spectral zero-padding / truncation of periodic fields ``(B, n, n)`` to ``(B, n_out, n_out)``."""
    n = w.shape[-1]
    wh = torch.fft.rfft2(w)
    h = min(n, n_out) // 2
    out = torch.zeros(*w.shape[:-2], n_out, n_out // 2 + 1, dtype=wh.dtype, device=w.device)
    out[..., :h, :h] = wh[..., :h, :h]
    out[..., n_out - h + 1:, :h] = wh[..., n - h + 1:, :h]
    return torch.fft.irfft2(out, s=(n_out, n_out)) * (n_out * n_out) / (n * n)


def resolution_check(cfg: NSDataConfig, s_top: int, t_run: float = 2.0, t_skip: float = 0.0, factor: int = 2,
                     n_traj: int = 2, record_dt: Optional[float] = None, fine_dt: Optional[float] = None,
                     device: Union[str, torch.device] = "cpu") -> ResolutionCheck:
    """Compare the energy per shell of ``cfg``'s grid with a ``factor``× finer run (see the module docstring).

    Args:
        cfg: the data configuration (its n, ν, drag, forcing, dt, integrator, warm-up, initial GRF and seed).
        s_top: top shell of the evaluation window (≤ n/3, the coarse grid's dealiasing limit).
        t_run: simulated time of the compared runs; ``t_skip``: initial part left out of the average.
        factor: fine grid = ``factor · n`` (≥ 2).
        n_traj: trajectories averaged (not ``cfg.n_traj``, to keep the check short).
        record_dt: time between averaged frames (default ``cfg.frame_dt``).
        fine_dt: time step of the fine run (default ``cfg.dt``; a divisor of it, when the finer grid needs a
            smaller step for its CFL limit — IF-RK4's time error is then far below the comparison's 5 %).
    """
    n, fine = int(cfg.n), int(factor) * int(cfg.n)
    if int(factor) < 2:
        raise ConfigError("factor", f"must be >= 2, got {factor}")
    if not 1 <= int(s_top) <= n // 3:
        raise ConfigError("s_top", f"must be in [1, {n // 3}] (the {n}² grid's 2/3-dealiased range), got {s_top}")
    if not 0 <= t_skip < t_run:
        raise ConfigError("t_skip", f"must be in [0, t_run={t_run}), got {t_skip}")
    rdt = float(record_dt if record_dt is not None else cfg.frame_dt)
    every = int(round(rdt / cfg.dt))
    steps = int(round(t_run / cfg.dt))
    if every < 1 or steps < every:
        raise ConfigError("record_dt", f"need dt <= record_dt <= t_run, got {rdt} (dt={cfg.dt}, t_run={t_run})")
    kw = dict(nu=cfg.nu, drag=cfg.drag, forcing_amplitude=cfg.forcing_amplitude,
              forcing_wavenumber=cfg.forcing_wavenumber, dt=cfg.dt, integrator=cfg.integrator, device=device,
              dtype=cfg.dtype)
    fdt = float(fine_dt if fine_dt is not None else cfg.dt)
    sub = int(round(cfg.dt / fdt))
    if sub < 1 or abs(sub * fdt - cfg.dt) > 1e-12 * cfg.dt:
        raise ConfigError("fine_dt", f"must divide dt={cfg.dt}, got {fine_dt}")
    coarse_ns = NavierStokes2D(n=n, **kw)
    fine_ns = NavierStokes2D(n=fine, **{**kw, "dt": fdt})
    g = torch.Generator().manual_seed(int(cfg.seed))
    w0 = gaussian_random_field(int(n_traj), fine, "matern", nu=cfg.init_nu, length_scale=cfg.init_length_scale,
                               std=cfg.init_std, generator=g, device=device, dtype=cfg.dtype)
    warm = int(round(cfg.warmup / fdt))
    if warm > 0:
        w0 = fine_ns.simulate(w0, warm, record_every=warm)[:, -1]
    w0c = coarse_ns.to_grid(coarse_ns.to_hat(_pad(w0, n)))  # the coarse grid's dealiased start
    w0f = _pad(w0c, fine)  # the fine run starts from exactly the coarse start
    skip = int(round(t_skip / (every * cfg.dt)))
    tc = coarse_ns.simulate(w0c, steps, record_every=every)[:, 1 + skip:]
    tf = fine_ns.simulate(w0f, steps * sub, record_every=every * sub)[:, 1 + skip:]
    ec = energy_spectrum(tc, "vorticity").mean().energy
    ef = energy_spectrum(tf, "vorticity").mean().energy
    sl = slice(1, int(s_top) + 1)
    ratio = ec[sl] / ef[sl]
    dev = (ratio - 1).abs()
    worst = int(dev.argmax())
    return ResolutionCheck(torch.arange(1, int(s_top) + 1), ratio.cpu(), n, fine, float(dev[worst]), worst + 1)


__all__ = ["ResolutionCheck", "resolution_check"]

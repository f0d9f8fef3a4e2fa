r"""Radially averaged (shell-summed) energy spectra of 2-D periodic fields, spectral errors and the high-k tail.

With the normalised transform :math:`\hat f(k) = N^{-2}\sum_x f(x)e^{-ik\cdot x}` (``torch.fft.rfft2(f)/N²``)
Parseval reads :math:`\langle f^2\rangle = \sum_k |\hat f(k)|^2`, with :math:`\langle\cdot\rangle` the grid mean.
Modes are binned into integer shells :math:`s(k) = \lfloor |k|L/2\pi + \tfrac12\rfloor` and

.. math::
    E(s) = \tfrac12 \sum_{k:\ s(k) = s} |\hat u(k)|^2,\qquad \sum_s E(s) = \tfrac12\langle |u|^2\rangle,

for every kind of input:

* ``"scalar"``: ``u`` is the field itself (for vorticity this is the enstrophy spectrum :math:`Z(k)`);
* ``"velocity"``: ``u = (u, v)`` given as ``(..., 2, N, N)``; kinetic energy spectrum;
* ``"vorticity"``: ``u`` is recovered from :math:`\omega` via :math:`|\hat u|^2 = |\hat\omega|^2/|k|^2`
  (Biot–Savart); the *kinetic energy* spectrum computed from a vorticity field (Nyquist modes, whose
  derivative is undefined, carry no velocity, as in :func:`velocity_from_vorticity`).

All functions are batched over leading dimensions and device-agnostic; the shell matrix is cached per
``(N, L, device, dtype)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import torch

from ..errors import ConfigError

#: Input kinds accepted by :func:`energy_spectrum`.
SPECTRUM_KINDS = ("scalar", "velocity", "vorticity")


@dataclass
class Spectrum:
    """A shell spectrum.

    Attributes:
        k: shell wavenumbers ``(K,)`` (0, 1, …, in units of :math:`2\\pi/L`).
        energy: ``(..., K)`` energy per shell; sums to ½⟨|u|²⟩.
        counts: number of Fourier modes in each shell ``(K,)`` (full-plane count).
        grid: the grid size N the spectrum was computed on.
    """

    k: torch.Tensor
    energy: torch.Tensor
    counts: torch.Tensor
    grid: int = 0

    def mean(self) -> "Spectrum":
        """The ensemble mean over every leading dimension."""
        return Spectrum(self.k, self.energy.reshape(-1, self.energy.shape[-1]).mean(0), self.counts, self.grid)


@lru_cache(maxsize=32)
def _shells(n: int, length: float, device: torch.device, dtype: torch.dtype):
    scale = 2 * math.pi / length
    ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)[None, :]
    kmag = torch.sqrt(ky ** 2 + kx ** 2)  # in integer units
    shell = torch.floor(kmag + 0.5).long().reshape(-1)
    n_shell = int(shell.max()) + 1
    # rfft stores kx >= 0 only: columns 1..ceil(n/2)-1 stand for two modes (±kx), kx = 0 and the Nyquist column for one.
    weight = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    weight = weight[None, :].expand(n, -1).reshape(-1)
    onehot = torch.zeros(shell.numel(), n_shell, dtype=torch.float64)
    onehot[torch.arange(shell.numel()), shell] = weight
    counts = onehot.sum(0)
    # Nyquist modes (|k_x| or |k_y| = N/2) have no well-defined derivative: they carry no velocity.
    nyq = (ky.abs() == n / 2) | (kx == n / 2) if n % 2 == 0 else torch.zeros_like(kmag, dtype=torch.bool)
    inv_k2 = torch.where((kmag > 0) & ~nyq, 1.0 / (kmag * scale).clamp_min(1e-30) ** 2, torch.zeros_like(kmag)).reshape(-1)
    k = torch.arange(n_shell, dtype=torch.float64) * scale
    return (onehot.to(device=device, dtype=dtype), inv_k2.to(device=device, dtype=dtype),
            k.to(device=device, dtype=dtype), counts.to(device=device, dtype=dtype))


def energy_spectrum(x: torch.Tensor, kind: str = "scalar", length: float = 2 * math.pi) -> Spectrum:
    r"""Shell-summed energy spectrum of periodic fields.

    .. math:: E(s) = \tfrac12 \sum_{s(k) = s} |\hat u(k)|^2,\quad \hat u = \mathrm{rfft2}(u)/N^2.

    Args:
        x: ``(..., N, N)`` for ``"scalar"``/``"vorticity"``, ``(..., 2, N, N)`` for ``"velocity"``.
        kind: ``"scalar"``, ``"velocity"`` or ``"vorticity"`` (kinetic energy from vorticity).
        length: side of the periodic square (default 2π).

    Returns:
        :class:`Spectrum` with ``energy`` of shape ``(..., K)`` (leading dims of ``x``; for velocity the
        component axis is summed).
    """
    if kind not in SPECTRUM_KINDS:
        raise ConfigError("kind", f"got {kind!r}; allowed values are: {', '.join(SPECTRUM_KINDS)}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ConfigError("x", f"must be a tensor of shape (..., N, N), got {tuple(getattr(x, 'shape', ()))}")
    if kind == "velocity" and (x.dim() < 3 or x.shape[-3] != 2):
        raise ConfigError("x", f"kind='velocity' needs shape (..., 2, N, N), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    n = x.shape[-1]
    onehot, inv_k2, k, counts = _shells(n, float(length), x.device, x.dtype)
    fh = torch.fft.rfft2(x) / (n * n)
    power = (fh.real ** 2 + fh.imag ** 2).reshape(*x.shape[:-2], -1)
    if kind == "velocity":
        power = power.sum(-2)
    elif kind == "vorticity":
        power = power * inv_k2
    return Spectrum(k, 0.5 * power @ onehot, counts, n)


def mean_spectrum(x: torch.Tensor, kind: str = "scalar", length: float = 2 * math.pi) -> Spectrum:
    """Ensemble-mean spectrum over all leading dimensions of ``x`` (see :func:`energy_spectrum`)."""
    return energy_spectrum(x, kind, length).mean()


def _as_mean_energy(a, kind: str, length: float) -> torch.Tensor:
    if isinstance(a, Spectrum):
        e = a.energy
        return e.reshape(-1, e.shape[-1]).mean(0)
    return mean_spectrum(a, kind, length).energy


def spectral_error(a, b, kind: str = "scalar", length: float = 2 * math.pi, eps: float = 1e-30) -> torch.Tensor:
    r"""Relative error per shell between the mean spectra of two ensembles (``b`` is the reference).

    .. math:: \mathrm{err}(s) = \frac{|\bar E_a(s) - \bar E_b(s)|}{\bar E_b(s)}

    Args:
        a, b: field ensembles ``(..., N, N)`` (any leading dims, need not match) or :class:`Spectrum` objects.
        kind, length: as in :func:`energy_spectrum`.

    Returns:
        ``(K,)`` tensor (shells where the reference is zero give 0 if both vanish).
    """
    ea, eb = _as_mean_energy(a, kind, length), _as_mean_energy(b, kind, length)
    if ea.shape != eb.shape:
        raise ConfigError("b", f"spectra have different shell counts ({ea.shape[-1]} vs {eb.shape[-1]}); use the same grid")
    return (ea - eb).abs() / eb.clamp_min(eps)


def log_spectral_error(a, b, kind: str = "scalar", length: float = 2 * math.pi, k_min: int = 1,
                       k_max: Optional[int] = None) -> float:
    r"""One-number summary: mean over shells :math:`k_{min} \le s \le k_{max}` of :math:`|\log(\bar E_a/\bar E_b)|`.

    ``k_max`` defaults to the largest shell fully inside the grid (:math:`N/2`); with a 2/3-dealiased solver
    use :math:`N/3`.
    """
    ea, eb = _as_mean_energy(a, kind, length), _as_mean_energy(b, kind, length)
    n_sh = ea.shape[-1]
    hi = min(n_sh - 1, k_max if k_max is not None else n_sh - 1)
    sl = slice(int(k_min), int(hi) + 1)
    tiny = torch.finfo(ea.dtype).tiny
    return float((torch.log(ea[sl].clamp_min(tiny)) - torch.log(eb[sl].clamp_min(tiny))).abs().mean())


def paired_spectral_error(a: torch.Tensor, b: torch.Tensor, length: float = 2 * math.pi) -> torch.Tensor:
    r"""Per-shell relative L2 error of paired fields (``a[i]`` is a prediction of ``b[i]``), averaged over the batch.

    .. math:: \mathrm{err}(s) = \Big(\frac{\sum_{s(k)=s}|\hat a(k) - \hat b(k)|^2}{\sum_{s(k)=s}|\hat b(k)|^2}\Big)^{1/2}
    """
    if a.shape != b.shape:
        raise ConfigError("a", f"paired fields need equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    num = energy_spectrum(a - b, "scalar", length).energy
    den = energy_spectrum(b, "scalar", length).energy
    return torch.sqrt(num / den.clamp_min(1e-30)).reshape(-1, num.shape[-1]).mean(0)


def tail_window(grid: int) -> Tuple[float, float]:
    r"""The high-wavenumber window every tail ratio of the workbench uses: :math:`N/4 \le s \le N/2 - 1`.

    The upper half of the shells an ``N × N`` grid resolves below its Nyquist shell (``8 ≤ s ≤ 15`` on 32²). The
    learning grids hold spectral truncations of finer, 2/3-dealiased solver runs, so their modes are filled up to
    :math:`N/2`. :func:`tail_ratio` (by default), :func:`workbench.fields.rollout.rollout_scores` and the
    ``fields spectra`` pipeline all take the window from here.
    """
    n = int(grid)
    if n < 8:
        raise ConfigError("grid", f"must be >= 8 for a tail window, got {grid}")
    return n / 4.0, n / 2.0 - 1.0


def tail_ratio(a, b, k_cut: Optional[float] = None, k_max: Optional[float] = None, kind: str = "scalar",
               length: float = 2 * math.pi) -> float:
    r"""High-wavenumber tail ratio :math:`\sum_{k_c \le s \le k_{max}} \bar E_a(s) / \sum_{k_c \le s \le k_{max}} \bar E_b(s)`.

    1 means the tail of ``a`` carries the reference's energy, < 1 a lost (damped) tail, > 1 excess noise.
    ``k_cut`` and ``k_max`` default to :func:`tail_window` of the grid (:math:`N/4` and :math:`N/2 - 1`).
    """
    ea, eb = _as_mean_energy(a, kind, length), _as_mean_energy(b, kind, length)
    if k_cut is None or k_max is None:
        dc, dm = tail_window(_grid_size(a, b))
    kc = float(k_cut) if k_cut is not None else dc
    km = float(k_max) if k_max is not None else dm
    s = torch.arange(ea.shape[-1], device=ea.device, dtype=ea.dtype)
    m = (s >= kc) & (s <= km)
    if not bool(m.any()):
        raise ConfigError("k_cut", f"no shell in [{kc}, {km}]")
    return float(ea[m].sum() / eb[m].sum().clamp_min(1e-300))


def _grid_size(a, b) -> int:
    for v in (a, b):
        if isinstance(v, torch.Tensor):
            return int(v.shape[-1])
        if isinstance(v, Spectrum) and v.grid:
            return int(v.grid)
    raise ConfigError("k_cut", "give k_cut and k_max explicitly for spectra without a grid size")


def fit_slope(spec: Spectrum, k_min: float, k_max: float) -> float:
    r"""Least-squares slope of :math:`\log \bar E` vs :math:`\log k` over shells in ``[k_min, k_max]`` (E ∝ k^slope)."""
    e = spec.energy.reshape(-1, spec.energy.shape[-1]).mean(0).to(torch.float64)
    k = spec.k.to(torch.float64)
    m = (k >= k_min) & (k <= k_max) & (e > 0)
    if int(m.sum()) < 2:
        raise ConfigError("k_min", f"need at least two shells with energy in [{k_min}, {k_max}]")
    lk, le = torch.log(k[m]), torch.log(e[m])
    a = torch.stack([lk, torch.ones_like(lk)], 1)
    sol = torch.linalg.lstsq(a, le[:, None]).solution
    return float(sol[0, 0])


def velocity_from_vorticity(w: torch.Tensor, length: float = 2 * math.pi) -> torch.Tensor:
    r"""Velocity ``(..., 2, N, N)`` of a periodic vorticity field: :math:`\hat\psi = \hat\omega/|k|^2`,
    :math:`u = \partial_y\psi,\ v = -\partial_x\psi` (zero-mean velocity; Nyquist modes dropped)."""
    n = w.shape[-1]
    scale = 2 * math.pi / length
    dt = w.dtype
    ky = torch.fft.fftfreq(n, d=1.0 / n, device=w.device, dtype=dt)[:, None] * scale
    kx = torch.fft.rfftfreq(n, d=1.0 / n, device=w.device, dtype=dt)[None, :] * scale
    k2 = kx ** 2 + ky ** 2
    k2[0, 0] = 1.0
    keep = torch.ones_like(k2)
    keep[0, 0] = 0.0
    if n % 2 == 0:
        keep[n // 2, :] = 0.0
        keep[:, -1] = 0.0
    psi = torch.fft.rfft2(w) * (keep / k2)
    u = torch.fft.irfft2(1j * ky * psi, s=(n, n))
    v = torch.fft.irfft2(-1j * kx * psi, s=(n, n))
    return torch.stack([u, v], -3)


def spectrum_table(k: torch.Tensor, **spectra: torch.Tensor) -> str:
    """A small CSV text (``k,name1,name2,...``) of mean spectra, for reports."""
    names = list(spectra)
    lines = ["k," + ",".join(names)]
    for i in range(k.shape[0]):
        lines.append(f"{float(k[i]):g}," + ",".join(f"{float(spectra[nm][i]):.6e}" for nm in names))
    return "\n".join(lines) + "\n"


def shells_for(n: int, length: float = 2 * math.pi) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shell wavenumbers and mode counts of an ``n × n`` grid."""
    _, _, k, counts = _shells(int(n), float(length), torch.device("cpu"), torch.float64)
    return k, counts

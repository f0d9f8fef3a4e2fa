r"""Scores of autoregressive rollouts against a reference, as the neural-PDE literature reports them.

Fields are ``(B, T, *space)`` with one or two periodic space dimensions (``(B, T, n)`` or ``(B, T, n, n)``);
ensembles carry a leading member axis, ``(M, B, T, *space)``. Every curve is per time step ``(T,)``, averaged over
the batch. With :math:`e = \hat u - u` (prediction minus reference) and sums over space:

* :func:`nrmse` (PDEBench's nRMSE): :math:`\|e\|_2/\|u\|_2` per sample and step, batch mean;
* :func:`correlation` (Pearson over space, PDE-Refiner): :math:`\rho = \langle\hat u'u'\rangle /
  \sqrt{\langle\hat u'^2\rangle\langle u'^2\rangle}` with :math:`'` = minus the spatial mean;
  :func:`correlation_time`: time for which the batch-mean correlation stays at or above a threshold (0.8 and 0.95);
* :func:`band_errors` (PDEBench's fRMSE): the error spectrum per integer shell,
  :math:`F(s) = \sqrt{\overline{\sum_{s(k)=s}|\hat e(k)|^2}}` (batch mean under the root, :math:`\hat e` the
  normalised transform ``fft/n^d``), averaged over the shells of the low :math:`[0, 4)`, mid :math:`[4, 12)` and
  high :math:`[12, s_{max}]` bands (PDEBench's ``iLow = 4, iHigh = 12``). Unlike PDEBench's 2-D loop, which adds
  only the :math:`k_x, k_y \ge 0` quadrant, every mode is counted, and no :math:`L` factor is applied;
* :func:`invariant_drift`: :math:`Q(\hat u)/Q(u) - 1` per step for a quadratic invariant :math:`Q`
  (:func:`energy_2d`, :func:`enstrophy_2d` of vorticity, or :func:`mean_square`);
* :func:`crps` (continuous ranked probability score, per point, space and batch mean):
  :math:`\mathrm{CRPS} = \mathbb E|X - y| - \tfrac12\mathbb E|X - X'|` with the members as the sample of X; the
  ``fair`` estimator divides the pair sum by :math:`M(M-1)` (unbiased for the underlying distribution), else by
  :math:`M^2`. :func:`gaussian_crps` is the closed form :math:`\sigma[z(2\Phi(z) - 1) + 2\varphi(z) - 1/\sqrt\pi]`,
  :math:`z = (y - \mu)/\sigma`;
* :func:`spread_skill`: spread :math:`\sqrt{\overline{s^2}}` (unbiased member variance), skill = RMSE of the
  ensemble mean, and the ratio :math:`\sqrt{(M+1)/M}\,\mathrm{spread}/\mathrm{skill}` (1 for a calibrated
  ensemble whatever M; Fortin et al. 2014).

:func:`rollout_report` gathers them. References worth plotting next to any nRMSE curve: persistence
(``nrmse(ref[:, :1].expand_as(ref), ref)``) and √2, the nRMSE of an independent field of the same variance.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from ..errors import ConfigError

#: PDEBench's band edges (shells): low ``[0, 4)``, mid ``[4, 12)``, high ``[12, s_max]``.
PDEBENCH_BANDS = (4, 12)


def _check_pair(pred: torch.Tensor, ref: torch.Tensor, name: str = "pred") -> int:
    if not isinstance(pred, torch.Tensor) or not isinstance(ref, torch.Tensor):
        raise ConfigError(name, "pred and ref must be tensors")
    if pred.shape != ref.shape:
        raise ConfigError(name, f"shape {tuple(pred.shape)} differs from the reference {tuple(ref.shape)}")
    d = ref.dim() - 2
    if d not in (1, 2):
        raise ConfigError(name, f"fields must be (B, T, n) or (B, T, n, n), got {tuple(ref.shape)}")
    return d


def _flat(x: torch.Tensor, d: int) -> torch.Tensor:
    return x.flatten(-d) if d > 1 else x


def nrmse(pred: torch.Tensor, ref: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    r"""Normalised RMSE :math:`\|\hat u - u\|_2/\|u\|_2` per step: ``(T,)`` batch mean, or ``(B, T)``."""
    d = _check_pair(pred, ref)
    num = _flat(pred - ref, d).norm(dim=-1)
    den = _flat(ref, d).norm(dim=-1)
    if bool((den == 0).any()):
        raise ConfigError("ref", "a reference field is identically zero: nRMSE is undefined")
    out = num / den
    return out if per_sample else out.mean(0)


def correlation(pred: torch.Tensor, ref: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    r"""Pearson correlation over space per step: ``(T,)`` batch mean, or ``(B, T)``."""
    d = _check_pair(pred, ref)
    a, b = _flat(pred, d), _flat(ref, d)
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    den = a.norm(dim=-1) * b.norm(dim=-1)
    if bool((den == 0).any()):
        raise ConfigError("pred", "a constant field has no correlation (zero variance over space)")
    out = (a * b).sum(-1) / den
    return out if per_sample else out.mean(0)


def correlation_time(pred: torch.Tensor, ref: torch.Tensor, thresholds: Sequence[float] = (0.8, 0.95),
                     dt: float = 1.0, start: int = 1) -> Dict[float, Dict[str, float]]:
    r"""Time for which the batch-mean correlation stays :math:`\ge` each threshold.

    Counts the consecutive steps from ``start`` (1: step 0 is the shared initial state) whose correlation is at
    or above the threshold, times ``dt``. Returns ``{threshold: {"time": t, "steps": k, "censored": 0/1}}``;
    ``censored = 1`` when the correlation never fell below within the horizon (``time`` is then a lower bound).
    """
    rho = correlation(pred, ref)
    if not 0 <= int(start) < rho.shape[0]:
        raise ConfigError("start", f"must be in [0, {rho.shape[0] - 1}], got {start}")
    out: Dict[float, Dict[str, float]] = {}
    tail = rho[int(start):]
    for thr in thresholds:
        if not -1.0 <= float(thr) <= 1.0:
            raise ConfigError("thresholds", f"correlation thresholds lie in [-1, 1], got {thr}")
        above = (tail >= float(thr)).to(torch.int64)
        k = int(torch.cumprod(above, 0).sum())
        out[float(thr)] = {"time": k * float(dt), "steps": float(k), "censored": float(k == tail.shape[0])}
    return out


def _shell_index(shape: Tuple[int, ...], device: torch.device) -> Tuple[torch.Tensor, int]:
    """Integer shell of every FFT mode (full ``fftn`` layout) and the number of shells up to n/2."""
    n = shape[0]
    freqs = [torch.fft.fftfreq(m, d=1.0 / m, device=device, dtype=torch.float64) for m in shape]
    grids = torch.meshgrid(*freqs, indexing="ij")
    kmag = torch.sqrt(sum(g ** 2 for g in grids))
    return torch.floor(kmag + 0.5).long(), n // 2 + 1


def error_spectrum(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    r"""Per-shell RMS error amplitude :math:`F(s) = \sqrt{\overline{\sum_{s(k)=s}|\hat e(k)|^2}}`, ``(T, S)``.

    :math:`\hat e` = ``fftn(pred - ref) / n^d`` over the space axes; shells :math:`s = \lfloor |k| + 1/2\rfloor`
    (integer wavenumbers) for :math:`s \le n/2` (the corners of a 2-D grid beyond n/2 are left out).
    """
    d = _check_pair(pred, ref)
    space = tuple(ref.shape[2:])
    if len(set(space)) != 1:
        raise ConfigError("pred", f"space axes must be square, got {space}")
    e = torch.fft.fftn(pred - ref, dim=tuple(range(-d, 0))) / (space[0] ** d)
    power = (e.real ** 2 + e.imag ** 2).flatten(2)  # (B, T, modes)
    shell, n_sh = _shell_index(space, ref.device)
    shell = shell.reshape(-1)
    keep = shell < n_sh
    onehot = torch.zeros(shell.numel(), n_sh, dtype=power.dtype, device=ref.device)
    onehot[torch.arange(shell.numel(), device=ref.device)[keep], shell[keep]] = 1.0
    return torch.sqrt((power @ onehot).mean(0))


def band_errors(pred: torch.Tensor, ref: torch.Tensor, bands: Sequence[int] = PDEBENCH_BANDS) -> Dict[str, torch.Tensor]:
    """PDEBench-style fRMSE per step in the low/mid/high bands: ``{"low", "mid", "high"}`` each ``(T,)``.

    Each value is the mean of :func:`error_spectrum` over the band's shells (edges ``bands = (i_low, i_high)``).
    """
    lo, hi = (int(b) for b in bands)
    f = error_spectrum(pred, ref)
    s_max = f.shape[-1] - 1
    if not 0 < lo < hi <= s_max:
        raise ConfigError("bands", f"need 0 < i_low < i_high <= {s_max} (the grid's top shell), got {tuple(bands)}")
    return {"low": f[:, :lo].mean(-1), "mid": f[:, lo:hi].mean(-1), "high": f[:, hi:].mean(-1)}


def mean_square(u: torch.Tensor, d: int) -> torch.Tensor:
    r""":math:`\tfrac12\langle u^2\rangle` over the last ``d`` axes (energy of a velocity component, enstrophy of ω)."""
    return 0.5 * _flat(u, d).pow(2).mean(-1)


def enstrophy_2d(w: torch.Tensor) -> torch.Tensor:
    r"""Enstrophy :math:`\tfrac12\langle\omega^2\rangle` of 2-D vorticity ``(..., n, n)``."""
    return mean_square(w, 2)


def energy_2d(w: torch.Tensor, length: float = 2 * math.pi) -> torch.Tensor:
    r"""Kinetic energy :math:`\tfrac12\langle|u|^2\rangle` of 2-D vorticity ``(..., n, n)`` (Biot–Savart)."""
    from .spectra import velocity_from_vorticity

    return 0.5 * velocity_from_vorticity(w, length).pow(2).sum(-3).mean((-1, -2))


def invariant_drift(pred: torch.Tensor, ref: torch.Tensor,
                    quantity: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
    r"""Relative drift :math:`\overline{Q(\hat u_t)}/\overline{Q(u_t)} - 1` per step ``(T,)`` (batch means).

    ``quantity`` maps fields ``(B, T, *space)`` to ``(B, T)``; default :func:`mean_square` (enstrophy for
    vorticity). Positive: the model holds more of Q than the reference (noise, blow-up), negative: it damps.
    """
    d = _check_pair(pred, ref)
    q = quantity if quantity is not None else (lambda u: mean_square(u, d))
    qp, qr = q(pred).mean(0), q(ref).mean(0)
    if bool((qr == 0).any()):
        raise ConfigError("ref", "the reference invariant is zero at some step: the relative drift is undefined")
    return qp / qr - 1.0


def gaussian_crps(mu: torch.Tensor, sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Closed-form CRPS of :math:`N(\mu, \sigma^2)` at ``y``: :math:`\sigma[z(2\Phi(z) - 1) + 2\varphi(z) - 1/\sqrt\pi]`."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    if bool((sigma <= 0).any()):
        raise ConfigError("sigma", "must be > 0")
    z = (torch.as_tensor(y, dtype=torch.float64) - torch.as_tensor(mu, dtype=torch.float64)) / sigma
    phi = torch.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return sigma * (z * (2 * cdf - 1) + 2 * phi - 1 / math.sqrt(math.pi))


def crps_pointwise(members: torch.Tensor, y: torch.Tensor, fair: bool = True) -> torch.Tensor:
    r"""Ensemble CRPS at every point: members ``(M, ...)``, truth ``(...)`` → ``(...)``.

    :math:`\frac1M\sum_i|x_i - y| - \frac{1}{2M(M-1)}\sum_{i,j}|x_i - x_j|` (``fair``) or with :math:`M^2`.
    The pair sum is :math:`2\sum_i (2i - M + 1)x_{(i)}` over the sorted members (O(M log M)).
    """
    if members.shape[1:] != y.shape:
        raise ConfigError("members", f"must be (M, *truth.shape) = (M, {tuple(y.shape)}), got {tuple(members.shape)}")
    m = members.shape[0]
    if fair and m < 2:
        raise ConfigError("members", "the fair CRPS needs at least 2 members (use fair=False for one)")
    skill = (members - y).abs().mean(0)
    xs = members.sort(0).values
    w = (2 * torch.arange(m, device=members.device, dtype=members.dtype) - m + 1).reshape(-1, *([1] * y.dim()))
    pair_sum = 2 * (w * xs).sum(0)
    return skill - pair_sum / (2 * (m * (m - 1) if fair else m * m))


def crps(members: torch.Tensor, ref: torch.Tensor, fair: bool = True) -> torch.Tensor:
    """Ensemble CRPS per step ``(T,)``: members ``(M, B, T, *space)``, reference ``(B, T, *space)``."""
    d = _check_pair(members[0], ref, "members")
    return _flat(crps_pointwise(members, ref, fair), d).mean(-1).mean(0)


def spread_skill(members: torch.Tensor, ref: torch.Tensor) -> Dict[str, torch.Tensor]:
    r"""Spread, skill and their corrected ratio per step (each ``(T,)``); see the module docstring."""
    d = _check_pair(members[0], ref, "members")
    m = members.shape[0]
    if m < 2:
        raise ConfigError("members", "spread needs at least 2 members")
    var = _flat(members.var(0, unbiased=True), d).mean(-1).mean(0)
    mse = _flat((members.mean(0) - ref) ** 2, d).mean(-1).mean(0)
    spread, skill = var.sqrt(), mse.sqrt()
    return {"spread": spread, "skill": skill, "ratio": math.sqrt((m + 1) / m) * spread / skill}


def rollout_report(pred: torch.Tensor, ref: torch.Tensor, dt: float = 1.0, members: Optional[torch.Tensor] = None,
                   thresholds: Sequence[float] = (0.8, 0.95), bands: Sequence[int] = PDEBENCH_BANDS,
                   quantity: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Dict[str, object]:
    """Every score of this module for one rollout (``members``: optional ensemble for CRPS and spread–skill)."""
    out: Dict[str, object] = {
        "nrmse": nrmse(pred, ref),
        "persistence_nrmse": nrmse(ref[:, :1].expand_as(ref), ref),
        "correlation": correlation(pred, ref),
        "correlation_time": correlation_time(pred, ref, thresholds, dt),
        "band_errors": band_errors(pred, ref, bands),
        "invariant_drift": invariant_drift(pred, ref, quantity),
    }
    if members is not None:
        out["crps"] = crps(members, ref)
        out["spread_skill"] = spread_skill(members, ref)
    return out


__all__ = ["PDEBENCH_BANDS", "nrmse", "correlation", "correlation_time", "error_spectrum", "band_errors",
           "mean_square", "enstrophy_2d", "energy_2d", "invariant_drift", "gaussian_crps", "crps_pointwise",
           "crps", "spread_skill", "rollout_report"]

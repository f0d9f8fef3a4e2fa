r"""Learned models on vorticity fields: a one-step FNO surrogate, a PDE-Refiner-style conditional generator and an
unconditional vorticity generator, the last two sampled with the core interpolant × solver × NFE stack.

**Surrogate** (plain FNO, MSE): :math:`u_{t+\Delta t} \approx u_t + s_r\,f_\theta(u_t/s_u)`.

**Refiner / generator** (Lippe et al. 2023, "PDE-Refiner", recast as a stochastic interpolant): a network
:math:`\hat v_\theta(x, \tau\,|\,c)` is trained on the linear interpolant :math:`x_\tau = (1-\tau)\xi + \tau x_1`
(:math:`x_1` = the normalised increment :math:`(u_{t+\Delta t} - u_t)/s_r` with condition :math:`c = u_t/s_u`, or a
normalised snapshot for the unconditional model). Its data prediction :math:`D = x + (1-\tau)\hat v` serves *every*
interpolant with a Gaussian base by matching the signal-to-noise ratio: for :math:`x' = a'x_1 + \sigma'\xi`,

.. math::
    \tau = \frac{a'}{a' + \sigma'},\qquad x = \frac{x'}{a' + \sigma'},\qquad D'(x', t') = D(x, \tau),

so ``Field(model_for(I'), I', "velocity")`` runs with any solver of :mod:`workbench.solvers` at any NFE budget.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..interpolants import INTERPOLANTS, Interpolant
from ..models.field import Field
from ..models.fno import FNO2d
from ..schedules.base import Schedule
from ..solvers import SOLVERS, Solver
from ..utils import expand_like
from .training import Normalizer, TrainLog, one_step_pairs, sample_tau, train_loop


class OneStepSurrogate(nn.Module):
    """A plain FNO one-step map ``u_t → u_{t+Δt}`` in physical units (residual form, normalised inside).

    Args:
        net: an :class:`FNO2d` with one input and one output channel (built with ``fno_kwargs`` if None).
    """

    def __init__(self, net: Optional[nn.Module] = None, **fno_kwargs):
        super().__init__()
        self.net = net if net is not None else FNO2d(1, 1, **fno_kwargs)
        self.u_norm, self.r_norm = Normalizer(), Normalizer()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` → ``(B, N, N)``: one surrogate step."""
        z = self.net(self.u_norm.encode(u)[:, None])[:, 0]
        return u + self.r_norm.decode(z)

    def fit(self, traj: torch.Tensor, iterations: int = 1000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
            progress: bool = True, input_noise: float = 0.0) -> TrainLog:
        r"""Train on all consecutive pairs of ``traj`` ``(B, T, N, N)`` with the MSE of the normalised increment.

        ``input_noise`` = η > 0 perturbs the (normalised) input, :math:`\tilde u_t = u_t + \eta s_u\zeta`, and the
        target increment is taken from the perturbed input (:math:`u_{t+\Delta t} - \tilde u_t`), so the model learns
        to remove perturbations of its own input (the usual stabiliser of autoregressive rollouts).
        """
        pairs = one_step_pairs(traj)
        dev = next(self.parameters()).device
        dt = next(self.parameters()).dtype
        a, b = pairs["inputs"].to(dev, dt), pairs["targets"].to(dev, dt)
        self.u_norm, self.r_norm = Normalizer(0.0, float(a.std())), Normalizer(0.0, float((b - a).std()))
        xa, xr = self.u_norm.encode(a), (b - a) / self.r_norm.std
        shift = self.u_norm.std / self.r_norm.std

        def loss_fn(idx, g):
            inp, tgt = xa[idx], xr[idx]
            if input_noise > 0:
                zeta = input_noise * torch.randn(inp.shape, generator=g, dtype=dt).to(dev)
                inp, tgt = inp + zeta, tgt - shift * zeta
            return ((self.net(inp[:, None])[:, 0] - tgt) ** 2).mean()

        return train_loop(self.net, loss_fn, a.shape[0], iterations, batch_size, lr, seed=seed, progress=progress,
                          desc="fno surrogate")


def _log_snr_feature(tau: torch.Tensor) -> torch.Tensor:
    t = tau.to(torch.float64).clamp(1e-12, 1 - 1e-12)
    return ((torch.log(t) - torch.log1p(-t)).clamp(-12.0, 12.0) / 12.0).to(tau.dtype)


class InterpolantDenoiser(nn.Module):
    r"""Velocity network of the linear interpolant, optionally conditioned on a field (concatenated as a channel).

    Args:
        conditional: True for the refiner (input channels = state + condition).
        net: a time-embedded :class:`FNO2d` (built from ``fno_kwargs`` when None).
    """

    def __init__(self, conditional: bool = True, net: Optional[nn.Module] = None, **fno_kwargs):
        super().__init__()
        self.conditional = conditional
        kw = dict(local_kernel=3, time_embedding=True)
        kw.update(fno_kwargs)
        self.net = net if net is not None else FNO2d(2 if conditional else 1, 1, **kw)

    def velocity(self, x: torch.Tensor, tau: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        r""":math:`\hat v_\theta(x, \tau | c)` for ``x`` ``(B, N, N)``, ``tau`` ``(B,)``."""
        inp = x[:, None] if cond is None else torch.stack([x, cond], 1)
        return self.net(inp, _log_snr_feature(tau))[:, 0]

    def data(self, x: torch.Tensor, tau: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        r""":math:`D = x + (1 - \tau)\hat v` (linear-interpolant coordinates)."""
        return x + expand_like(1.0 - tau, x) * self.velocity(x, tau, cond)

    def model_for(self, interpolant: Interpolant, cond: Optional[torch.Tensor] = None):
        r"""A model ``m(x, t) -> b'(x, t)`` (velocity of ``interpolant``; use ``prediction="velocity"``).

        With :math:`\tau = a'/(a'+\sigma')`, :math:`x = x'/(a'+\sigma')`, :math:`D = x + (1-\tau)\hat v` and the
        noise estimate :math:`\hat\xi = x - \tau\hat v` (both finite on all of [0, 1]),
        :math:`b' = \dot a' D + \dot\sigma'\hat\xi`, with :math:`\dot\sigma' = \sigma\dot\sigma/\sigma` (and
        :math:`\dot\alpha` where :math:`\sigma' = 0`, or 0 where that is infinite, as for VP at t = 1), so the
        velocity stays finite at both ends.
        ``x`` may be ``(B, N, N)`` or ``(B, 1, N, N)``; ``cond`` is the (normalised) conditioning field ``(B, N, N)``.
        """
        if not interpolant.gaussian_base:
            ok = [n for n in INTERPOLANTS.names() if INTERPOLANTS.cls(n).gaussian_base]
            raise ConfigError("interpolant", f"{interpolant.name!r} has no Gaussian base; the field generator needs "
                              f"one of: {', '.join(ok)}")
        if self.conditional and cond is None:
            raise ConfigError("cond", "the refiner needs the conditioning field u_t")

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            squeeze = x.dim() == 4
            xx = x[:, 0] if squeeze else x
            c = interpolant.coefficients(t.to(torch.float64))
            a, s = c.signal, c.sigma
            tot = a + s
            tau = (a / tot).to(xx.dtype)
            da = torch.where(torch.isfinite(c.d_alpha), c.d_alpha, torch.zeros_like(c.d_alpha))
            ds = torch.where(s > 0, c.sigma_dsigma / s.clamp_min(1e-300), da)
            xl = xx / expand_like(tot.to(xx.dtype), xx)
            v = self.velocity(xl, tau, cond)
            d = xl + expand_like(1.0 - tau, xx) * v
            xi = xl - expand_like(tau, xx) * v
            b = expand_like(c.d_signal.to(xx.dtype), xx) * d + expand_like(ds.to(xx.dtype), xx) * xi
            return b[:, None] if squeeze else b

        return model

    def fit_pairs(self, targets: torch.Tensor, conds: Optional[torch.Tensor], iterations: int = 1000,
                  batch_size: int = 32, lr: float = 2e-3, seed: int = 0, progress: bool = True,
                  desc: str = "refiner", cond_noise: float = 0.0, target_shift: float = 0.0) -> TrainLog:
        r"""Velocity matching on normalised ``targets`` ``(M, N, N)`` (and ``conds``) — see module doc.

        ``cond_noise`` = η perturbs the condition, :math:`\tilde c = c + \eta\zeta`, and shifts the target by
        :math:`-\texttt{target\_shift}\cdot\eta\zeta` (for increments measured from the perturbed state).
        """
        dev = next(self.parameters()).device
        dt = next(self.parameters()).dtype
        x1 = targets.to(dev, dt)
        cc = conds.to(dev, dt) if conds is not None else None

        def loss_fn(idx, g):
            b = x1[idx]
            c = cc[idx] if cc is not None else None
            if c is not None and cond_noise > 0:
                zeta = cond_noise * torch.randn(c.shape, generator=g, dtype=dt).to(dev)
                c, b = c + zeta, b - target_shift * zeta
            tau = sample_tau(idx.shape[0], g).to(dev, dt)
            xi = torch.randn(b.shape, generator=g, dtype=dt).to(dev)
            xt = expand_like(1 - tau, b) * xi + expand_like(tau, b) * b
            v = self.velocity(xt, tau, c)
            return ((v - (b - xi)) ** 2).mean()

        return train_loop(self.net, loss_fn, x1.shape[0], iterations, batch_size, lr, seed=seed, progress=progress,
                          desc=desc)


def _solver(solver: Union[str, Solver]) -> Solver:
    return SOLVERS.get(solver) if isinstance(solver, str) else solver


def _interp(interpolant: Union[str, Interpolant]) -> Interpolant:
    return INTERPOLANTS.get(interpolant) if isinstance(interpolant, str) else interpolant


class Refiner(nn.Module):
    r"""PDE-Refiner-style generative one-step model: samples :math:`u_{t+\Delta t} \sim p(\cdot | u_t)`.

    .. math:: u_{t+\Delta t} = u_t + s_r\, X_1,\qquad X_1 = \text{solver}(\text{Field}(D'(\cdot|u_t/s_u)), \xi, \text{NFE}),\ \xi\sim N(0,I)
    """

    def __init__(self, **fno_kwargs):
        super().__init__()
        self.denoiser = InterpolantDenoiser(conditional=True, **fno_kwargs)
        self.u_norm, self.r_norm = Normalizer(), Normalizer()

    def fit(self, traj: torch.Tensor, iterations: int = 1000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
            progress: bool = True, input_noise: float = 0.0) -> TrainLog:
        """Train on consecutive pairs of ``traj`` ``(B, T, N, N)`` (``input_noise`` as in :meth:`OneStepSurrogate.fit`)."""
        pairs = one_step_pairs(traj)
        a, b = pairs["inputs"], pairs["targets"]
        self.u_norm, self.r_norm = Normalizer(0.0, float(a.std())), Normalizer(0.0, float((b - a).std()))
        return self.denoiser.fit_pairs((b - a) / self.r_norm.std, self.u_norm.encode(a), iterations, batch_size, lr,
                                       seed, progress, desc="refiner", cond_noise=input_noise,
                                       target_shift=self.u_norm.std / self.r_norm.std)

    @torch.no_grad()
    def forward(self, u: torch.Tensor, solver: Union[str, Solver] = "heun", nfe: int = 16,
                schedule: Union[str, Schedule] = "logsnr", interpolant: Union[str, Interpolant] = "linear",
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """One generative step ``(B, N, N)`` → ``(B, N, N)`` with ``nfe`` model calls (audited by the Field)."""
        interp = _interp(interpolant)
        cond = self.u_norm.encode(u)
        field = Field(self.denoiser.model_for(interp, cond), interp, "velocity")
        x0 = torch.randn(u.shape, generator=generator, dtype=u.dtype).to(u.device)
        res = _solver(solver).sample(field, x0, nfe, schedule=schedule, generator=generator)
        return u + self.r_norm.decode(res.x)


class VorticityGenerator(nn.Module):
    """Unconditional generator of vorticity snapshots (sampled with any Gaussian-base interpolant × solver × NFE)."""

    def __init__(self, **fno_kwargs):
        super().__init__()
        self.denoiser = InterpolantDenoiser(conditional=False, **fno_kwargs)
        self.norm = Normalizer()

    def fit(self, snapshots: torch.Tensor, iterations: int = 1000, batch_size: int = 32, lr: float = 2e-3,
            seed: int = 0, progress: bool = True) -> TrainLog:
        """Train on snapshots ``(M, N, N)`` (physical units)."""
        self.norm = Normalizer(0.0, float(snapshots.std()))
        return self.denoiser.fit_pairs(self.norm.encode(snapshots), None, iterations, batch_size, lr, seed, progress,
                                       desc="generator")

    def field(self, interpolant: Union[str, Interpolant] = "linear") -> Field:
        """The model as a :class:`Field` in normalised units (prediction ``"velocity"``)."""
        interp = _interp(interpolant)
        return Field(self.denoiser.model_for(interp), interp, "velocity")

    @torch.no_grad()
    def sample(self, n: int, grid: int, interpolant: Union[str, Interpolant] = "linear",
               solver: Union[str, Solver] = "heun", nfe: int = 16, schedule: Union[str, Schedule] = "logsnr",
               generator: Optional[torch.Generator] = None, device: Union[str, torch.device] = "cpu",
               **sample_kwargs) -> Dict[str, object]:
        """``n`` vorticity snapshots ``(n, grid, grid)`` in physical units, with the sampler's result."""
        f = self.field(interpolant)
        dt = next(self.parameters()).dtype
        x0 = torch.randn(int(n), int(grid), int(grid), generator=generator, dtype=dt).to(device)
        res = _solver(solver).sample(f, x0, nfe, schedule=schedule, generator=generator, **sample_kwargs)
        return {"vorticity": self.norm.decode(res.x), "result": res}


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["OneStepSurrogate", "InterpolantDenoiser", "Refiner", "VorticityGenerator", "count_parameters"]

r"""The training loop: AdamW on an :class:`InterpolantLoss`, EMA weights, gradient clipping, seeded and resumable.

Everything random in a step (data draw, base noise, latent, times, OT sampling) comes from one
``torch.Generator`` seeded with ``config.seed``; its state is part of the checkpoint, so stopping at step k and
resuming gives bit-identical weights to an uninterrupted run. A NaN/Inf loss stops training with a
:class:`~workbench.errors.NonFiniteError` naming the step.

Files (under ``out_dir``): ``model.safetensors`` + ``model.json`` — the EMA network, loadable by
:func:`workbench.models.io.load`; ``trainer_state.safetensors`` + ``trainer_state.json`` — raw weights, EMA,
optimizer moments, RNG state, step and loss history for :meth:`Trainer.resume`.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from safetensors.torch import load_file, save_file

from .. import validation
from ..errors import ConfigError, NonFiniteError
from ..files import atomic_path, atomic_write_text
from ..models import io
from ..models.predictor import Predictor
from ..utils import resolve_device, resolve_dtype
from .coupling import get_coupling
from .losses import InterpolantLoss
from .time_sampling import get_time_sampler

Batch = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]

LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Training hyper-parameters (all JSON-serialisable).

    Attributes:
        steps: optimizer steps in total.
        batch_size: samples per step.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup: linear warm-up steps.
        lr_schedule: ``constant`` or ``cosine`` (decay to 0.1·lr after warm-up).
        ema_decay: EMA decay (0 disables EMA; warm-up ``min(decay, (1+k)/(10+k))``).
        grad_clip: max global gradient norm (0 disables).
        seed: seed of the training generator.
        time_sampling, time_params: the :class:`TimeSampler` name and parameters.
        weighting: loss weighting (``auto``, ``none``, ``sigma2``).
        coupling, coupling_params: ``independent`` or ``ot`` (minibatch OT) and its parameters.
        log_every: steps between loss log entries.
        checkpoint_every: steps between checkpoints (0: only at the end; needs ``out_dir``).
        out_dir: where checkpoints go (None: nothing written).
        device, dtype: where and in what precision to train.
        progress: show a tqdm bar.
        threads: torch intra-op threads while training (None: leave as is). Small networks train far faster
            with 1 thread, especially on a shared CPU; the previous setting is restored afterwards.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: int = 100
    lr_schedule: str = "cosine"
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    time_sampling: str = "uniform"
    time_params: Dict[str, Any] = field(default_factory=dict)
    weighting: str = "auto"
    coupling: str = "independent"
    coupling_params: Dict[str, Any] = field(default_factory=dict)
    log_every: int = 50
    checkpoint_every: int = 0
    out_dir: Optional[str] = None
    device: str = "cpu"
    dtype: str = "float32"
    progress: bool = True
    threads: Optional[int] = None

    def validate(self) -> "TrainConfig":
        """Check every field, raising :class:`ConfigError` naming it."""
        for name in ("steps", "batch_size"):
            validation.integer(name, getattr(self, name), 1)
        for name in ("warmup", "log_every", "checkpoint_every"):
            validation.integer(name, getattr(self, name), 0)
        validation.seed(self.seed)
        validation.number("lr", self.lr, above=0.0)
        validation.number("ema_decay", self.ema_decay, 0.0)
        if not self.ema_decay < 1.0:
            raise ConfigError("ema_decay", f"must be in [0, 1), got {self.ema_decay!r}")
        validation.number("grad_clip", self.grad_clip, 0.0)
        validation.number("weight_decay", self.weight_decay, 0.0)
        if self.threads is not None:
            validation.integer("threads", self.threads, 1, hint=" (or None)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError("lr_schedule", f"got {self.lr_schedule!r}; allowed values are: {', '.join(LR_SCHEDULES)}")
        if self.checkpoint_every and not self.out_dir:
            raise ConfigError("checkpoint_every", "needs out_dir")
        get_time_sampler(self.time_sampling, **self.time_params)
        get_coupling(self.coupling, **self.coupling_params)
        resolve_dtype(self.dtype)
        resolve_device(self.device)
        return self

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        """Build from a dict, rejecting unknown keys with the list of valid ones."""
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ConfigError("train", f"unknown field(s) {', '.join(unknown)}; valid fields are: {', '.join(sorted(valid))}")
        return cls(**d)


def _as_batch(data: Any, n: int, generator: torch.Generator) -> Batch:
    if hasattr(data, "sample"):
        return data.sample(n, generator)
    if callable(data):
        return data(n, generator)
    raise ConfigError("data", f"expected a Dataset (with .sample(n, generator)) or a callable, got {type(data).__name__}")


class Trainer:
    """Train a :class:`Predictor` on a data source.

    Args:
        predictor: network + interpolant + prediction kind (its kind selects the loss).
        data: a :class:`~workbench.data.Dataset`, or a callable ``(n, generator) -> x1`` or ``-> (x0, x1)``
            (paired data, e.g. reflow couplings).
        config: a :class:`TrainConfig` (or a dict of its fields).

    Attributes:
        step: optimizer steps done.
        history: ``[(step, loss), ...]`` every ``log_every`` steps (loss averaged over the interval).
    """

    def __init__(self, predictor: Predictor, data: Any, config: Union[TrainConfig, Dict[str, Any], None] = None):
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config or {}))
        self.config = cfg.validate()
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype)
        self.predictor = predictor.to(device=self.device, dtype=self.dtype)
        self.data = data
        self.loss_fn = InterpolantLoss(predictor.interpolant, predictor.prediction,
                                       get_time_sampler(cfg.time_sampling, **cfg.time_params), cfg.weighting)
        self.coupling = get_coupling(cfg.coupling, **cfg.coupling_params)
        self.optimizer = torch.optim.AdamW(self.predictor.network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.ema = copy.deepcopy(self.predictor.network).requires_grad_(False) if cfg.ema_decay > 0 else None
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.step = 0
        self.history: List[Tuple[int, float]] = []
        self.wall_time = 0.0

    # ---- one step ------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (a pure function of the step, so resumption needs no scheduler state)."""
        cfg = self.config
        if cfg.warmup and step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        if cfg.lr_schedule == "cosine":
            frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
            return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        return cfg.lr

    def _batch(self) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        b = _as_batch(self.data, self.config.batch_size, self.generator)
        x0, x1 = (b if isinstance(b, tuple) else (None, b))
        x1 = x1.to(device=self.device, dtype=self.dtype)
        if x0 is None and self.predictor.interpolant.gaussian_base and self.config.coupling != "independent":
            x0 = torch.randn(x1.shape, generator=self.generator, dtype=self.dtype).to(self.device)
        if x0 is not None:
            x0 = x0.to(device=self.device, dtype=self.dtype)
            x0, x1 = self.coupling(x0, x1, self.generator)
        return x0, x1

    def train_step(self) -> float:
        """One optimizer step; returns the loss.

        Raises:
            NonFiniteError: the loss is NaN/Inf (names the step).
        """
        x0, x1 = self._batch()
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr_at(self.step)
        loss = self.loss_fn(self.predictor.network, x1, self.generator, x0)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteError(f"loss: {value} at step {self.step} (lr={self.lr_at(self.step):.3g}); lower lr, "
                                 "enable grad_clip, or check the data for NaN/Inf")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.predictor.network.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            d = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
            with torch.no_grad():
                for pe, p in zip(self.ema.parameters(), self.predictor.network.parameters()):
                    pe.lerp_(p, 1.0 - d)
                for be, b in zip(self.ema.buffers(), self.predictor.network.buffers()):
                    be.copy_(b)
        self.step += 1
        return value

    def train(self, steps: Optional[int] = None, callback: Optional[Callable[[int, float], None]] = None) -> "Trainer":
        """Run until ``config.steps`` (or ``steps`` more), logging, checkpointing and showing progress."""
        cfg = self.config
        end = cfg.steps if steps is None else min(cfg.steps, self.step + int(steps))
        self.predictor.network.train()
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=end, initial=self.step, desc="train", leave=False, dynamic_ncols=True)
        acc, cnt = 0.0, 0
        start = time.perf_counter()
        old_threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            while self.step < end:
                value = self.train_step()
                acc, cnt = acc + value, cnt + 1
                if callback is not None:
                    callback(self.step, value)
                if cfg.log_every and self.step % cfg.log_every == 0:
                    self.history.append((self.step, acc / cnt))
                    if bar is not None:
                        bar.set_postfix(loss=f"{acc / cnt:.4f}")
                    acc, cnt = 0.0, 0
                if bar is not None:
                    bar.update(1)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step < end:
                    self.save_checkpoint()
            if cfg.log_every and cnt:  # the last, partial interval (a run shorter than log_every has a loss too)
                self.history.append((self.step, acc / cnt))
        finally:
            torch.set_num_threads(old_threads)
            if bar is not None:
                bar.close()
            self.wall_time += time.perf_counter() - start
        self.predictor.network.eval()
        if cfg.out_dir:
            self.save_checkpoint()
        return self

    # ---- results ---------------------------------------------------------------------------------
    def ema_predictor(self) -> Predictor:
        """A :class:`Predictor` over the EMA weights (the raw network when EMA is off)."""
        net = self.ema if self.ema is not None else self.predictor.network
        return Predictor(copy.deepcopy(net).requires_grad_(True).eval(), self.predictor.interpolant, self.predictor.prediction,
                         self.predictor.architecture)

    def summary(self) -> Dict[str, Any]:
        """Training facts saved in the model config's ``extra``."""
        return {"step": self.step, "final_loss": self.history[-1][1] if self.history else None,
                "wall_time_s": round(self.wall_time, 3), "train": asdict(self.config)}

    # ---- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self, out_dir: Optional[str] = None) -> Path:
        """Write the EMA model (``model.*``) and the resumable state (``trainer_state.*``) to ``out_dir``."""
        out = Path(out_dir or self.config.out_dir or ".")
        out.mkdir(parents=True, exist_ok=True)
        ema_sd = (self.ema if self.ema is not None else self.predictor.network).state_dict()
        io.save(self.predictor, out / "model", extra=self.summary(), state_dict=ema_sd)
        tensors: Dict[str, torch.Tensor] = {}
        for k, v in self.predictor.network.state_dict().items():
            tensors[f"model.{k}"] = v
        if self.ema is not None:
            for k, v in self.ema.state_dict().items():
                tensors[f"ema.{k}"] = v
        osd = self.optimizer.state_dict()
        for idx, st in osd["state"].items():
            for k, v in st.items():
                tensors[f"optim.{idx}.{k}"] = v if isinstance(v, torch.Tensor) else torch.tensor(v)
        tensors["rng"] = self.generator.get_state()
        with atomic_path(out / "trainer_state.safetensors") as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        meta = {"step": self.step, "history": self.history, "param_groups": osd["param_groups"],
                "config": asdict(self.config), "model": self.predictor.config(), "wall_time_s": self.wall_time}
        atomic_write_text(out / "trainer_state.json", json.dumps(meta, indent=1))
        return out

    def resume(self, out_dir: Optional[str] = None) -> "Trainer":
        """Restore weights, EMA, optimizer, RNG, step and history from :meth:`save_checkpoint` output.

        Raises:
            ConfigError: missing files, or a checkpoint for a different model config.
        """
        out = Path(out_dir or self.config.out_dir or ".")
        st_path, meta_path = out / "trainer_state.safetensors", out / "trainer_state.json"
        if not st_path.exists() or not meta_path.exists():
            raise ConfigError("resume", f"no trainer state in {out} (expected trainer_state.safetensors/.json)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("resume", f"{meta_path} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or not {"model", "step", "history", "param_groups"} <= set(meta):
            raise ConfigError("resume", f"{meta_path} is not a trainer state (needs model, step, history, param_groups)")
        if meta["model"] != self.predictor.config():
            raise ConfigError("resume", f"the checkpoint in {out} is for model {meta['model']}, not {self.predictor.config()}")
        try:
            t = load_file(str(st_path))
        except Exception as exc:  # noqa: BLE001 - SafetensorError etc.: a truncated or foreign file
            raise ConfigError("resume", f"{st_path} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
        dev = dict(device=self.device)
        self.predictor.network.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        self.predictor.to(**dev)
        if self.ema is not None:
            self.ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
            self.ema.to(**dev)
        state: Dict[int, Dict[str, torch.Tensor]] = {}
        for k, v in t.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v.to(self.device) if v.dim() else v
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        self.generator.set_state(t["rng"])
        self.step = int(meta["step"])
        self.history = [tuple(h) for h in meta["history"]]
        self.wall_time = float(meta.get("wall_time_s", 0.0))
        return self


__all__ = ["TrainConfig", "Trainer", "LR_SCHEDULES"]

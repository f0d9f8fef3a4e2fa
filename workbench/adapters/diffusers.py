r"""diffusers models: ``model(x, timestep)`` with a DDPM scheduler's configuration (diffusers itself is only needed
to build the objects the user passes in; nothing here imports it).

Conventions (diffusers → ours):

- the training table :math:`\bar\alpha_k` → :class:`~workbench.interpolants.DiscreteVP` (the scheduler's own
  ``alphas_cumprod``, so the numbers are identical), time :math:`t = 1 - (k+1)/T`;
- ``prediction_type``: ``epsilon`` → our ``noise`` (E[ξ|x]); ``sample`` → ``x1`` (the data denoiser);
  ``v_prediction`` (:math:`v = a\xi - \sigma x_1`, Salimans & Ho 2022) → ``x1`` by :math:`x_1 = a x - \sigma v`;
- a scheduler's grid (after ``set_timesteps``) → our times by :func:`scheduler_grid`, with σ = 0 at t = 1
  (``final_sigmas_type="zero"``, DDIM's ``set_alpha_to_one=True``);
- the schedulers as our solvers (:func:`equivalent_solver`): DDIM (η = 0) and Euler are both the first-order
  data-prediction exponential integrator on their grid (DDIM in the VE variable
  :math:`\tilde x = x/a` is exactly Euler in :math:`\tilde\sigma = \sigma/a`), DPM-Solver++(2M) and UniPC are ours.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from ..errors import ConfigError
from ..interpolants.discrete import BETA_SCHEDULES, DiscreteVP
from ..models.field import Field
from ..utils import expand_like
from .base import AdaptedModel, check_output

#: diffusers' prediction types → the kind our adapter returns
PREDICTION_TYPES: Dict[str, str] = {"epsilon": "noise", "sample": "x1", "v_prediction": "x1"}
SPACINGS = ("leading", "trailing", "linspace")


def _config(scheduler: Any) -> Dict[str, Any]:
    cfg = getattr(scheduler, "config", scheduler)
    try:
        return dict(cfg)
    except (TypeError, ValueError):
        raise ConfigError("scheduler", f"expected a diffusers scheduler or its config dict, got {type(scheduler).__name__}") from None


def interpolant_from_scheduler(scheduler: Any, interpolation: str = "linear") -> DiscreteVP:
    """The :class:`DiscreteVP` of a diffusers DDPM-family scheduler (or its config dict); ``interpolation`` between
    its timesteps as in :class:`DiscreteVP`."""
    cfg = _config(scheduler)
    if cfg.get("rescale_betas_zero_snr", False):
        raise ConfigError("rescale_betas_zero_snr", "zero-terminal-SNR tables (alphas_cumprod = 0 at the last step) "
                                                    "have no finite noise level there; not supported")
    if cfg.get("timestep_type", "discrete") != "discrete":
        raise ConfigError("timestep_type", f"got {cfg.get('timestep_type')!r}; only 'discrete' timesteps are understood")
    if cfg.get("use_flow_sigmas", False):
        raise ConfigError("use_flow_sigmas", "a flow-matching scheduler: use workbench.adapters.from_flow_matching")
    T = int(cfg.get("num_train_timesteps", 1000))
    table = getattr(scheduler, "alphas_cumprod", None)
    if isinstance(table, torch.Tensor):
        return DiscreteVP(num_train_timesteps=T, alphas_cumprod=table.detach().to(torch.float64).cpu(),
                          interpolation=interpolation)
    if cfg.get("trained_betas") is not None:
        return DiscreteVP(num_train_timesteps=T, betas=list(cfg["trained_betas"]), interpolation=interpolation)
    schedule = cfg.get("beta_schedule", "linear")
    if schedule not in BETA_SCHEDULES:
        raise ConfigError("beta_schedule", f"got {schedule!r}; understood: {', '.join(BETA_SCHEDULES)} (or trained_betas)")
    return DiscreteVP(schedule, T, float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02)),
                      interpolation=interpolation)


class _DiffusersField(Field):
    """A Field passing the exact float64 time to the adapter (a float32 t would shift a timestep near k = 999 by
    ~6e-5, enough to change a UNet's time embedding)."""

    def predict(self, x, t, t_batch=None):  # noqa: D401 - same contract as Field.predict
        return super().predict(x, t, torch.full((x.shape[0],), float(t), dtype=torch.float64, device=x.device))


class DiffusersModel(AdaptedModel):
    """A diffusers ``model(x, timestep)`` in our contract (see :func:`from_diffusers`)."""

    def field(self) -> Field:
        return _DiffusersField(self.fn, self.interpolant, self.prediction)


def from_diffusers(model: Any, scheduler: Any, prediction_type: Optional[str] = None,
                   interpolation: str = "linear") -> DiffusersModel:
    r"""Adapt a diffusers ``UNet2DModel`` (or any ``model(x, timestep)`` returning a tensor or an object with
    ``.sample``) trained with ``scheduler`` (a diffusers scheduler or its config dict).

    Args:
        prediction_type: overrides the scheduler's ``prediction_type`` (``epsilon``, ``v_prediction``, ``sample``).
        interpolation: of the noise level between training timesteps (:class:`DiscreteVP`): ``"linear"`` reproduces
            diffusers exactly (also at fractional timesteps); ``"cubic"`` gives a smooth ODE (cheap accurate
            references, full order for high-order solvers). Both agree at the training timesteps.

    Raises:
        ConfigError: a scheduler field the adapter does not understand (named), a model whose output shape differs
            from its input.
    """
    if not callable(model):
        raise ConfigError("model", f"must be callable as model(x, timestep), got {type(model).__name__}")
    cfg = _config(scheduler)
    I = interpolant_from_scheduler(scheduler, interpolation)
    ptype = prediction_type or cfg.get("prediction_type", "epsilon")
    if ptype not in PREDICTION_TYPES:
        raise ConfigError("prediction_type", f"got {ptype!r}; understood: {', '.join(PREDICTION_TYPES)}")
    net_dtype = _dtype_of(model)

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t64 = t.to(torch.float64)
        k = I.timestep(t64).to(net_dtype or x.dtype)
        out = check_output(model(x, k), x, "the diffusers model")
        if ptype == "v_prediction":
            c = I.coefficients(t64)
            a, s = (expand_like(v.to(x.dtype), x) for v in (c.signal, c.sigma))
            return a * x - s * out
        return out

    shape = None
    mcfg = getattr(model, "config", None)
    if mcfg is not None and getattr(mcfg, "sample_size", None) is not None:
        size = mcfg.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        shape = (int(getattr(mcfg, "in_channels", 3)), *size)
    adapted = DiffusersModel(fn, I, PREDICTION_TYPES[ptype], t_max=I.t_of_timestep(0.0), sample_shape=shape,
                             source=f"diffusers {type(model).__name__} ({ptype})")
    adapted.network, adapted.prediction_type = model, ptype
    return adapted


def _dtype_of(model: Any) -> Optional[torch.dtype]:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.dtype
    return None


def scheduler_grid(scheduler: Any, interpolant: Optional[DiscreteVP] = None) -> torch.Tensor:
    r"""Our time grid of a diffusers scheduler after ``set_timesteps``: :math:`t_i = 1 - (k_i + 1)/T` for its
    timesteps, then its end (t = 1 where the last σ is 0).

    Raises:
        ConfigError: the scheduler's loop is not a grid method (DDIM with a spacing whose steps are not
            ``T // N``), its sigmas are not the table's at its timesteps (e.g. ``use_karras_sigmas``), or
            ``set_timesteps`` was not called.
    """
    I = interpolant or interpolant_from_scheduler(scheduler)
    cfg = _config(scheduler)
    if getattr(scheduler, "num_inference_steps", None) is None:
        raise ConfigError("scheduler", "call scheduler.set_timesteps(n) first")
    ks = scheduler.timesteps.detach().to(torch.float64).cpu()
    T = I.num_train_timesteps
    name = type(scheduler).__name__
    if not hasattr(scheduler, "sigmas"):  # DDIM-style: steps to k - T // N, the last one to the final alpha
        ratio = T // int(scheduler.num_inference_steps)
        prev = ks - ratio
        if len(ks) > 1 and not bool((prev[:-1] == ks[1:]).all()):
            raise ConfigError("timestep_spacing", f"{name} with timestep_spacing={cfg.get('timestep_spacing')!r} and "
                                                  f"{len(ks)} steps steps from k to k − {ratio}, which is not the next "
                                                  "timestep; use 'leading' or 'trailing' with a step count dividing "
                                                  f"{T}")
        if float(prev[-1]) >= 0:
            end = float(I.t_of_timestep(float(prev[-1])))
        else:
            end = 1.0 if cfg.get("set_alpha_to_one", True) else float(I.t_of_timestep(0.0))
        return torch.cat([I.t_of_timestep(ks), torch.tensor([end], dtype=torch.float64)])
    sig = scheduler.sigmas.detach().to(torch.float64).cpu()
    ours = torch.exp(-I.log_snr(I.t_of_timestep(ks)))
    if not torch.allclose(sig[: len(ks)], ours, rtol=2e-6, atol=0):
        bad = [k for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas")
               if cfg.get(k)]
        raise ConfigError(bad[0] if bad else "sigmas", f"{name}'s sigmas are not the training table's at its "
                                                       "timesteps; only the table's own noise levels are reproduced")
    end = 1.0 if float(sig[-1]) == 0.0 else float(I.t_from_log_snr(torch.tensor([-float(torch.log(sig[-1]))]))[0])
    return torch.cat([I.t_of_timestep(ks), torch.tensor([end], dtype=torch.float64)])


def equivalent_solver(scheduler: Any) -> Tuple[str, Dict[str, Any]]:
    """The registered solver (name, parameters) whose update is the scheduler's deterministic ``step``.

    Raises:
        ConfigError: a scheduler or an option without a deterministic equivalent here (named).
    """
    name, params = _equivalent(scheduler)
    from ..solvers import SOLVERS

    accepted = SOLVERS.parameters(name)
    if "variable" in accepted:  # diffusers steps in λ up to σ = 0 (its last step is first order)
        params["variable"] = "log_snr"
    if name == "unipc" and "history" in accepted:  # our ``order`` is the global order; diffusers' is the history
        params["history"] = params.pop("order")
        params["lower_order_final"] = True
    return name, params


def _equivalent(scheduler: Any) -> Tuple[str, Dict[str, Any]]:
    cfg = _config(scheduler)
    name = type(scheduler).__name__
    if cfg.get("thresholding") or cfg.get("clip_sample"):
        field = "thresholding" if cfg.get("thresholding") else "clip_sample"
        raise ConfigError(field, f"{name} {field}=True clips the data prediction, which is not the ODE; set it False")
    if name in ("DDIMScheduler", "EulerDiscreteScheduler"):
        return "dpm_solver_pp", {"order": 1}
    if name == "DPMSolverMultistepScheduler":
        algo = cfg.get("algorithm_type", "dpmsolver++")
        if algo not in ("dpmsolver++", "dpmsolver"):
            raise ConfigError("algorithm_type", f"got {algo!r}; deterministic: dpmsolver++, dpmsolver")
        if cfg.get("solver_type", "midpoint") != "midpoint":
            raise ConfigError("solver_type", f"got {cfg.get('solver_type')!r}; reproduced: 'midpoint'")
        order = int(cfg.get("solver_order", 2))
        predict = "data" if algo == "dpmsolver++" else "noise"
        if order not in (1, 2, 3):
            raise ConfigError("solver_order", f"got {order}; reproduced: 1, 2, 3")
        return {1: ("dpm_solver_pp", {"order": 1, "predict": predict}),
                2: ("dpmpp_2m", {"predict": predict}),
                3: ("dpmpp_3m", {"predict": predict})}[order]
    if name == "UniPCMultistepScheduler":
        return "unipc", {"order": int(cfg.get("solver_order", 2)), "variant": cfg.get("solver_type", "bh2"),
                         "predict": "data" if cfg.get("predict_x0", True) else "noise"}
    raise ConfigError("scheduler", f"{name} has no registered equivalent; understood: DDIMScheduler, "
                                   "EulerDiscreteScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler")


def _read_json(path: "Path", field: str = "model") -> Dict[str, Any]:
    """A JSON object from ``path``; a corrupt or non-object file raises one line naming it."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(field, f"{str(path)!r} is not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(field, f"{str(path)!r} must hold a JSON object, got a {type(data).__name__}")
    return data


def find_diffusers_folder(path: Any) -> Optional[Tuple["Path", Optional["Path"]]]:
    """``(unet_dir, scheduler_config_file or None)`` of a local diffusers folder, or None when ``path`` holds no
    diffusers model: a pipeline (``model_index.json`` and/or ``unet/config.json``, ``scheduler/``) or a bare UNet
    folder (a ``config.json`` with a diffusers ``_class_name``, its ``scheduler_config.json`` beside it).

    Raises:
        ConfigError: a pipeline whose ``model_index.json`` names no ``unet`` or lacks ``unet/config.json``.
    """
    from pathlib import Path

    p = Path(path)
    index = p / "model_index.json"
    if index.is_file() or (p / "unet" / "config.json").is_file():
        if index.is_file():
            idx = _read_json(index)
            if "unet" not in idx:
                comps = ", ".join(k for k in idx if not k.startswith("_")) or "none"
                raise ConfigError("model", f"the pipeline {str(p)!r} has no 'unet' (model_index.json lists: {comps}); "
                                           "only UNet pipelines (DDPMPipeline, DDIMPipeline, ...) are understood")
        if not (p / "unet" / "config.json").is_file():
            raise ConfigError("model", f"the pipeline {str(p)!r} has no unet/config.json")
        sched = p / "scheduler" / "scheduler_config.json"
        return p / "unet", sched if sched.is_file() else None
    cfg = p / "config.json"
    if cfg.is_file() and "_class_name" in _read_json(cfg):
        sched = p / "scheduler_config.json"
        return p, sched if sched.is_file() else None
    return None


def load_diffusers(path: Any, interpolation: str = "linear", dtype: Optional[torch.dtype] = None) -> DiffusersModel:
    """Load a local diffusers folder — a pipeline (``model_index.json``, ``unet/`` + ``scheduler/``) or a UNet folder
    with its ``scheduler_config.json`` beside ``config.json`` — and adapt it (:func:`from_diffusers`). Never
    downloads. ``dtype``: cast the network to it (default: as saved).

    Raises:
        ConfigError: ``path`` is not such a folder, the scheduler config is missing, corrupt or not understood (its
            field named, e.g. ``prediction_type``), the network is not an unconditional ``UNet2DModel``, or
            diffusers is missing. Every message is one line.
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_dir():
        raise ConfigError("model", f"{str(path)!r} is not a folder")
    found = find_diffusers_folder(p)
    if found is None:
        raise ConfigError("model", f"{str(path)!r} is not a diffusers pipeline or UNet folder: expected "
                                   "model_index.json with unet/config.json and scheduler/scheduler_config.json "
                                   "(or config.json and scheduler_config.json side by side)")
    unet_dir, sched_file = found
    if sched_file is None:
        where = "scheduler/scheduler_config.json" if unet_dir != p else "scheduler_config.json beside config.json"
        raise ConfigError("model", f"{str(path)!r} has a UNet but no scheduler config (expected {where}); the "
                                   "scheduler config gives the noise table and prediction_type the model was "
                                   "trained with")
    scfg = _read_json(sched_file, "scheduler")
    ptype = scfg.get("prediction_type", "epsilon")
    if ptype not in PREDICTION_TYPES:
        raise ConfigError("prediction_type", f"{ptype!r} in {sched_file}; understood: {', '.join(PREDICTION_TYPES)}")
    if scfg.get("trained_betas") is None and scfg.get("beta_schedule", "linear") not in BETA_SCHEDULES:
        raise ConfigError("beta_schedule", f"{scfg.get('beta_schedule')!r} in {sched_file}; understood: "
                                           f"{', '.join(BETA_SCHEDULES)} (or trained_betas)")
    ucfg = _read_json(unet_dir / "config.json")
    cls = ucfg.get("_class_name")
    if cls != "UNet2DModel":
        raise ConfigError("model", f"{unet_dir / 'config.json'} describes a {cls!r}; only an unconditional "
                                   "diffusers UNet2DModel is understood")
    try:
        import diffusers
    except ImportError as exc:  # pragma: no cover - diffusers is a test/extra dependency
        raise ConfigError("model", "loading a diffusers folder needs the diffusers package (pip install diffusers)") from exc
    from diffusers.utils import logging as dlog

    verbosity = dlog.get_verbosity()
    dlog.set_verbosity_error()  # no advice about optional speed-ups on a local load
    try:
        kw = {"torch_dtype": dtype} if dtype is not None else {}
        unet = diffusers.UNet2DModel.from_pretrained(str(unet_dir), local_files_only=True, **kw).eval()
    except (OSError, ValueError, RuntimeError, TypeError, EnvironmentError) as exc:
        msg = " ".join(str(exc).split())[:300]
        raise ConfigError("model", f"cannot load the UNet in {str(unet_dir)!r} ({type(exc).__name__}: {msg})") from None
    finally:
        dlog.set_verbosity(verbosity)
    unet.requires_grad_(False)
    # the scheduler's own class when it is a diffusers scheduler (its alphas_cumprod, as its loops use them)
    sched_cls = getattr(diffusers, str(scfg.get("_class_name", "")), None)
    if not (isinstance(sched_cls, type) and hasattr(sched_cls, "from_config") and hasattr(sched_cls, "set_timesteps")):
        sched_cls = diffusers.DDPMScheduler
    try:
        scheduler = sched_cls.from_config({k: v for k, v in scfg.items()})
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        msg = " ".join(str(exc).split())[:300]
        raise ConfigError("scheduler", f"{sched_file} cannot build a {sched_cls.__name__} ({type(exc).__name__}: {msg})") from None
    return from_diffusers(unet, scheduler, interpolation=interpolation)

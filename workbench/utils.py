"""Small tensor helpers shared across the package."""
from __future__ import annotations

from typing import Union

import torch

from .errors import ConfigError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def expand_like(t: Union[torch.Tensor, float], x: torch.Tensor) -> Union[torch.Tensor, float]:
    """Reshape a per-sample ``t`` of shape ``(B,)`` to ``(B, 1, ..., 1)`` so it broadcasts against ``x``.

    Scalars (python floats or 0-dim tensors) are returned unchanged.
    """
    if isinstance(t, torch.Tensor) and t.dim() == 1:
        return t.reshape(-1, *([1] * (x.dim() - 1)))
    return t


def resolve_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``"float32"``/``"float64"`` (or a torch dtype) → torch dtype, with a clear error otherwise."""
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ConfigError("dtype", f"got {dtype!r}; allowed values are: {', '.join(DTYPES)}")


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """Parse a device string, failing clearly when it is malformed or unavailable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError("device", f"got {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'mps' ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"got {device!r} but CUDA is not available on this machine; use 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", f"got {device!r} but MPS is not available on this machine; use 'cpu'")
    return dev

r"""Trajectories in the PDEBench-style HDF5 layout, and a windowed ``Dataset`` that reads only what it serves.

Layout (one file, one parameter set; PDEBench's 1-D files use the same names):

* ``tensor``: ``[batch, time, x]`` or ``[batch, time, x, y]``, chunked one frame of one trajectory per chunk so
  a window read touches only its frames. The workbench's 2-D solvers index ``(..., y, x)``: the Navier–Stokes
  cache back end (:func:`workbench.data.navier_stokes.load_or_generate` with a ``.h5`` path) transposes the last
  two axes on the way in and out, so the file is in PDEBench's order;
* ``t-coordinate`` ``[time]`` (frame times; PDEBench writes ``time + 1`` cell edges: on import a longer
  coordinate is cut to ``time``), ``x-coordinate`` ``[x]`` and, for 2-D, ``y-coordinate`` ``[y]``;
* root attributes: every generating parameter (numbers and strings as attributes, plus the whole set as JSON in
  ``params_json``) and ``layout = "pdebench"``.

:func:`export_hdf5` writes, :func:`import_hdf5` reads the whole file (small sets), :class:`H5Windows` serves
windows ``tensor[b, t : t + length]`` of the trajectories straight from the file (opened lazily in each
``DataLoader`` worker, never loaded whole). Needs ``h5py`` (the ``pde`` extra).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError

#: Dataset names of the layout.
TENSOR, T_COORD, X_COORD, Y_COORD = "tensor", "t-coordinate", "x-coordinate", "y-coordinate"


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ConfigError("format", "HDF5 needs the h5py package: pip install 'interpolant-workbench[pde]'") from None
    return h5py


def _np(a: Union[torch.Tensor, np.ndarray, Sequence[float]]) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def export_hdf5(path: str, fields: Union[torch.Tensor, np.ndarray], times: Union[torch.Tensor, np.ndarray],
                coords: Dict[str, Union[torch.Tensor, np.ndarray]], params: Optional[Dict[str, Any]] = None) -> str:
    """Write ``fields`` ``[B, T, x(, y)]`` with their coordinates and parameters to ``path`` (atomically).

    Args:
        path: the ``.h5``/``.hdf5`` file to write (its directory is created).
        fields: trajectories ``(B, T, n)`` or ``(B, T, n, n)``.
        times: ``(T,)`` frame times.
        coords: ``{"x": (n,)}`` and, for 2-D fields, ``"y"``.
        params: generating parameters (JSON-serialisable).
    """
    h5py = _h5py()
    f = _np(fields)
    if f.ndim not in (3, 4):
        raise ConfigError("fields", f"must be [batch, time, x] or [batch, time, x, y], got shape {f.shape}")
    t = _np(times)
    if t.shape != (f.shape[1],):
        raise ConfigError("times", f"must have shape ({f.shape[1]},) (one time per frame), got {t.shape}")
    need = ["x"] if f.ndim == 3 else ["x", "y"]
    missing = [c for c in need if c not in coords]
    if missing:
        raise ConfigError("coords", f"missing {', '.join(missing)}; {f.ndim - 2}-D fields need {', '.join(need)}")
    for c in need:
        if _np(coords[c]).shape != (f.shape[-1],):
            raise ConfigError("coords", f"{c} must have shape ({f.shape[-1]},), got {_np(coords[c]).shape}")
    params = dict(params or {})
    try:
        pj = json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise ConfigError("params", f"must be JSON-serialisable ({exc})") from None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as h:
        h.create_dataset(TENSOR, data=f, chunks=(1, 1) + f.shape[2:])
        h.create_dataset(T_COORD, data=t)
        h.create_dataset(X_COORD, data=_np(coords["x"]))
        if f.ndim == 4:
            h.create_dataset(Y_COORD, data=_np(coords["y"]))
        h.attrs["layout"] = "pdebench"
        h.attrs["params_json"] = pj
        for k, v in params.items():
            if isinstance(v, (bool, int, float, str)):
                h.attrs[k] = v
    os.replace(tmp, path)
    return path


def read_params(path: str) -> Dict[str, Any]:
    """The generating parameters stored in ``path`` (``{}`` for files written elsewhere without them)."""
    h5py = _h5py()
    with h5py.File(path, "r") as h:
        if "params_json" in h.attrs:
            return json.loads(str(h.attrs["params_json"]))
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in h.attrs.items()}


def import_hdf5(path: str) -> Dict[str, Any]:
    """Read a whole file: ``{"fields": Tensor [B, T, x(, y)], "times": (T,), "x": ..., ["y": ...], "params": {...}}``."""
    h5py = _h5py()
    if not os.path.exists(path):
        raise ConfigError("path", f"no such file: {path}")
    with h5py.File(path, "r") as h:
        if TENSOR not in h:
            raise ConfigError("path", f"{path} has no '{TENSOR}' dataset (found: {', '.join(sorted(h.keys()))})")
        f = torch.from_numpy(h[TENSOR][...])
        out: Dict[str, Any] = {"fields": f}
        if T_COORD in h:
            out["times"] = torch.from_numpy(h[T_COORD][...][: f.shape[1]])
        for name, key in (("x", X_COORD), ("y", Y_COORD)):
            if key in h:
                out[name] = torch.from_numpy(h[key][...])
    out["params"] = read_params(path)
    return out


class H5Windows(torch.utils.data.Dataset):
    """Windows of ``length`` consecutive frames of every trajectory, read from the file on demand.

    Item ``i`` is ``tensor[b, t : t + length]`` as a float tensor ``(length, *space)``, for the ``(b, t)`` pairs
    ``t = 0, stride, 2·stride, …`` with ``t + length <= T``. The file is opened on first access in each process
    (so ``DataLoader`` workers each hold their own handle) and only the window's chunks are read.

    Args:
        path: an HDF5 file in the layout above.
        length: frames per window (≥ 1; 2 gives one-step (input, target) pairs).
        stride: step between window starts (≥ 1).
        trajectories: optional subset of trajectory indices (e.g. a train/test split).
        dtype: ``torch.float32`` (default) or ``torch.float64``.
    """

    def __init__(self, path: str, length: int = 2, stride: int = 1, trajectories: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32):
        h5py = _h5py()
        if not os.path.exists(path):
            raise ConfigError("path", f"no such file: {path}")
        with h5py.File(path, "r") as h:
            if TENSOR not in h:
                raise ConfigError("path", f"{path} has no '{TENSOR}' dataset")
            self.shape = tuple(h[TENSOR].shape)
        b, t = self.shape[:2]
        if int(length) < 1 or int(length) > t:
            raise ConfigError("length", f"must be in [1, {t}] (frames per trajectory), got {length}")
        if int(stride) < 1:
            raise ConfigError("stride", f"must be >= 1, got {stride}")
        traj = list(range(b)) if trajectories is None else [int(i) for i in trajectories]
        bad = [i for i in traj if not 0 <= i < b]
        if bad:
            raise ConfigError("trajectories", f"indices must be in [0, {b - 1}], got {bad[:5]}")
        self.path, self.length, self.stride, self.dtype = path, int(length), int(stride), dtype
        starts = range(0, t - self.length + 1, self.stride)
        self.index = [(i, s) for i in traj for s in starts]
        self._file = None

    def __len__(self) -> int:
        return len(self.index)

    def _dataset(self):
        if self._file is None:
            self._file = _h5py().File(self.path, "r")
        return self._file[TENSOR]

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        b, s = self.index[i]
        return torch.from_numpy(np.ascontiguousarray(self._dataset()[b, s:s + self.length])).to(self.dtype)

    def __getstate__(self):  # a worker gets the path, not the open handle
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def close(self) -> None:
        """Close this process's file handle (reopened on the next access)."""
        if self._file is not None:
            self._file.close()
            self._file = None


__all__ = ["export_hdf5", "import_hdf5", "read_params", "H5Windows", "TENSOR", "T_COORD", "X_COORD", "Y_COORD"]

"""Output files: writability checked before the work, results written atomically.

:func:`check_writable` is called by every command on its output paths *before* it samples, trains or starts a
kernel, so a read-only or impossible path costs a one-line error, not minutes of lost work.
:func:`atomic_write_text` and :func:`atomic_path` write to a temporary file in the destination's folder and
``os.replace`` it over the destination, so an interrupted write never leaves a truncated file behind (a reader sees
the old file or the new one).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from .errors import ConfigError

PathLike = Union[str, os.PathLike]


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable(field: str, path: PathLike, directory: bool = False) -> Path:
    """Raise a :class:`ConfigError` naming ``field`` unless ``path`` can be created or overwritten.

    Args:
        field: the option that named the path (e.g. ``"--out"``).
        path: a file path (or a folder, with ``directory=True``); missing parent folders are fine when they could
            be created (the nearest existing ancestor must be a writable folder).

    Returns:
        The path, as a :class:`~pathlib.Path`.
    """
    p = Path(os.path.abspath(os.fspath(path)))
    if p.exists():
        if directory and not p.is_dir():
            raise ConfigError(field, f"{path} exists and is not a folder")
        if not directory and p.is_dir():
            raise ConfigError(field, f"{path} is a folder, not a file")
    anc = p if (directory and p.exists()) else _existing_ancestor(p.parent)
    if not anc.is_dir():
        raise ConfigError(field, f"cannot write {path}: {anc} is not a folder")
    why = _probe(anc)
    if why is not None:
        raise ConfigError(field, f"cannot write {path}: the folder {anc} is not writable ({why})")
    if p.exists() and not directory and not os.access(p, os.W_OK):
        raise ConfigError(field, f"{path} is not writable")
    return p


def _probe(folder: Path):
    """None when a file can be created in ``folder`` (tried for real: permission bits lie to root), else why not."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".workbench-write-check-", dir=str(folder))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{dest.suffix}", dir=str(dest.parent))
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file + ``os.replace``)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


__all__ = ["check_writable", "atomic_path", "atomic_write_text"]

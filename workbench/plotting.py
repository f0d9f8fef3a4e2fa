"""Matplotlib figures for results (headless-safe: the Agg backend is used when saving)."""
from __future__ import annotations

from typing import Optional

import torch


def plot_trajectories(result, path: Optional[str] = None, max_paths: int = 300):
    """Left: particle paths (first two coordinates) coloured by time. Right: final samples vs exact target.

    Args:
        result: an :class:`~workbench.experiment.ExperimentResult`.
        path: when given, save a PNG there.
        max_paths: paths drawn (the rest are omitted for legibility).
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cfg = result.config
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 5))
    traj = result.trajectory
    if traj is not None:
        tr = traj[:, :max_paths].detach().to(torch.float64).cpu().flatten(2)[..., :2].numpy()
        for i in range(tr.shape[1]):
            ax0.plot(tr[:, i, 0], tr[:, i, 1], lw=0.5, alpha=0.35, color="tab:blue")
        ax0.scatter(tr[0, :, 0], tr[0, :, 1], s=3, color="tab:gray", label=f"t={float(result.times[0]):.2g}")
        ax0.scatter(tr[-1, :, 0], tr[-1, :, 1], s=3, color="tab:red", label=f"t={float(result.times[-1]):.2g}")
        ax0.legend(loc="upper right", fontsize=8)
    ax0.set_title(f"{cfg['interpolant']} · {cfg['solver']} · {cfg['schedule']} · NFE {result.nfe}")
    ax0.set_aspect("equal", "datalim")
    s = result.samples.detach().to(torch.float64).cpu().flatten(1)[:, :2].numpy()
    if result.target is not None:
        t = result.target.flatten(1)[:, :2].numpy()
        ax1.scatter(t[:, 0], t[:, 1], s=2, alpha=0.4, color="tab:gray", label="exact samples")
    ax1.scatter(s[:, 0], s[:, 1], s=2, alpha=0.6, color="tab:red", label="sampler")
    parts = []
    if result.error is not None:
        parts.append(f"mean L2 error vs exact flow {result.error:.3g}")
    if result.sliced_w2 is not None:
        parts.append(f"SW2 {result.sliced_w2:.3g}")
    ax1.set_title("; ".join(parts) or "final samples")
    ax1.legend(loc="upper right", fontsize=8)
    ax1.set_aspect("equal", "datalim")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def log_range(values, decades: float = 8.0) -> "tuple[float, float]":
    """A log-axis range for curves falling over many decades: ``[max(min v, max v · 10^-decades) / 2, 3 max v]``
    over the finite positive values (``(1e-8, 1)`` when there are none).

    A spectrum whose tail drops to round-off (1e-16) then keeps its top ``decades`` decades readable instead of
    squashing them into the upper quarter of the axis.
    """
    import numpy as np

    arrays = values if isinstance(values, (list, tuple)) else [values]
    pos = np.concatenate([np.asarray(torch.as_tensor(v, dtype=torch.float64).cpu()).ravel() for v in arrays]) \
        if arrays else np.zeros(0)
    pos = pos[np.isfinite(pos) & (pos > 0)]
    if pos.size == 0:
        return 1e-8, 1.0
    top = float(pos.max())
    return max(float(pos.min()), top * 10.0 ** -decades) / 2, 3 * top


def compare_points(ax, exact, approx, label: str = "solver", exact_label: str = "exact", size: float = 14.0):
    """Scatter solver end points against the exact ones so that neither hides the other: the solver's points as
    small filled dots underneath, the exact ones as open black rings on top (a point on its exact image shows as a
    dot inside its ring; an error as a dot beside it)."""
    e = torch.as_tensor(exact, dtype=torch.float64).cpu().reshape(len(exact), -1)[:, :2].numpy()
    a = torch.as_tensor(approx, dtype=torch.float64).cpu().reshape(len(approx), -1)[:, :2].numpy()
    ax.scatter(a[:, 0], a[:, 1], s=size / 3, color="tab:red", alpha=0.8, lw=0, zorder=2, label=label)
    ax.scatter(e[:, 0], e[:, 1], s=size, facecolors="none", edgecolors="black", lw=0.5, zorder=3, label=exact_label)
    return ax


def is_image_batch(x: torch.Tensor) -> bool:
    """True for a batch of images ``(N, C, H, W)`` with 1 (grey) or 3 (RGB) channels."""
    return isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1] in (1, 3)


def plot_image_grid(images: torch.Tensor, path: Optional[str] = None, title: str = "", max_images: int = 64,
                    value_range=(-1.0, 1.0)):
    """A square grid of the first ``max_images`` images ``(N, C, H, W)`` (C = 1 grey, C = 3 RGB), pixel values
    mapped from ``value_range`` (diffusers' and our image models' [-1, 1]) to [0, 1] and clamped; saved as PNG
    if ``path``.

    Raises:
        ConfigError: ``images`` is not such a batch.
    """
    import math

    import matplotlib

    from .errors import ConfigError

    if not is_image_batch(images):
        raise ConfigError("images", f"expected a batch (N, C, H, W) with C = 1 or 3, got shape "
                                    f"{tuple(getattr(images, 'shape', ()))}")
    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lo, hi = (float(v) for v in value_range)
    x = images[:max_images].detach().to(torch.float64).cpu()
    x = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    n = x.shape[0]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(0.75 * cols + 0.4, 4.0), 0.75 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            im = x[i]
            if im.shape[0] == 1:
                ax.imshow(im[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(im.permute(1, 2, 0).numpy(), vmin=0, vmax=1, interpolation="nearest")
    if title:
        import textwrap

        fig.suptitle("\n".join(textwrap.wrap(title, 60)), fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig

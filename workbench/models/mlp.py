r"""An MLP velocity / score / denoiser network for low-dimensional data: ``model(x, t)``, ``t`` of shape ``(B,)``.

.. math:: h_0 = W_{in}x + W_e\,\mathrm{emb}(t),\quad h_{l+1} = h_l + W_2\,\mathrm{act}(W_1\,\mathrm{LN}(h_l)) \ (\text{residual}),\quad
          f(x, t) = W_{out}\,\mathrm{act}(h_L)

The time embedding enters the first layer and every block (FiLM-free additive conditioning), which is enough
for 2-D toys and small vectors. Inputs of any event shape are flattened and the output reshaped back.
"""
from __future__ import annotations

from typing import Dict, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from .embeddings import time_embedding

_ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


def make_activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in _ACTIVATIONS:
        raise ConfigError("activation", f"got {name!r}; allowed values are: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class _Block(nn.Module):
    def __init__(self, width: int, emb_dim: int, act: str):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.lin1 = nn.Linear(width, width)
        self.emb = nn.Linear(emb_dim, width)
        self.act = make_activation(act)
        self.lin2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return h + self.lin2(self.act(self.lin1(self.norm(h)) + self.emb(e)))


class MLP(nn.Module):
    """Residual MLP with a time embedding.

    Args:
        shape: event shape of one sample (an int for vectors), e.g. ``2`` or ``(1, 8, 8)``.
        width: hidden width.
        depth: number of residual blocks.
        time_dim: size of the time embedding.
        embedding: ``"sinusoidal"`` or ``"fourier"``.
        activation: ``silu``, ``gelu``, ``relu``, ``tanh`` or ``softplus``.
    """

    def __init__(self, shape: Union[int, Sequence[int]] = 2, width: int = 128, depth: int = 3, time_dim: int = 32,
                 embedding: str = "sinusoidal", activation: str = "silu"):
        super().__init__()
        self.shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if width < 1 or depth < 0:
            raise ConfigError("width", f"width must be >= 1 and depth >= 0, got {width}, {depth}")
        dim = 1
        for s in self.shape:
            dim *= s
        self.config: Dict[str, object] = {"shape": list(self.shape), "width": int(width), "depth": int(depth),
                                          "time_dim": int(time_dim), "embedding": embedding, "activation": activation}
        self.embed = time_embedding(embedding, int(time_dim))
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, width), make_activation(activation))
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList([_Block(width, width, activation) for _ in range(depth)])
        self.out_act = make_activation(activation)
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Prediction of the same shape as ``x`` ``(B, *shape)``; ``t`` is ``(B,)``."""
        if tuple(x.shape[1:]) != self.shape:
            raise ConfigError("x", f"expected shape (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        e = self.time_mlp(self.embed(t.to(x.dtype)).to(x.dtype))
        h = self.inp(x.reshape(x.shape[0], -1)) + e
        for blk in self.blocks:
            h = blk(h, e)
        return self.out(self.out_act(h)).reshape(x.shape)

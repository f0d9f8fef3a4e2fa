r"""TSM-style surrogate (Sun, Yang & Yoo 2023, "A Neural PDE Solver with Temporal Stencil Modeling").

Temporal features: the HiPPO-LegT coefficients :math:`c(x) \in \mathbb R^N` of the normalised history
:math:`z_{n-K+1}(x), \dots, z_n(x)` at every grid point (:class:`~workbench.fields.hippo.LegTEncoder`, window = the
K frames). A network :math:`G_\theta` (an FNO on the channels :math:`[z_n, c]`) outputs a local stencil
:math:`\alpha_s(x)` over the :math:`S\times S` offsets :math:`s` and a source :math:`\beta(x)`; the update is
the stencil applied to the current field,

.. math:: u_{n+1}(x) = u_n(x) + s_r\Big(\sum_{s} \alpha_s(x)\, z_n(x + s) - z_n(x) + \beta(x)\Big),
   \qquad \alpha(x) = \mathrm{softmax}_s\big(a_s(x)\big)\quad(\texttt{stencil\_form="convex"}),

i.e. a learned, spatially varying stencil whose coefficients depend on the history (the role of TSM's learned
interpolation coefficients). With the default ``"convex"`` form the stencil is a convex interpolation of the
neighbours (weights ≥ 0 summing to 1: a semi-Lagrangian transport step), so with :math:`z = u/s_u` and
:math:`r = s_r/s_u`, :math:`u_{n+1} = (1 - r)\,u_n + r\,\hat u_n + s_r\beta` with :math:`\hat u_n` inside the local
range of :math:`u_n`: the transport part obeys a discrete maximum principle (for r ≤ 1) and cannot amplify the field.
``"free"`` takes the network's coefficients as they are, :math:`u_n + s_r(\sum_s a_s z_n(x+s) + \beta)`: quadratic in
the field, and on the Kolmogorov benchmark its rollouts blow up within 10–20 steps (nRMSE 14.7 at step 10, non-finite
by step 15), where the convex form stays below the decorrelated level over 40 steps.
"""
from __future__ import annotations

import torch

from ... import validation
from ...errors import ConfigError
from ...models.fno import FNO2d
from ..hippo import DISCRETIZATIONS, LegTEncoder
from .base import SURROGATES, FieldSurrogate


#: The forms of the learned stencil (module docstring).
STENCIL_FORMS = ("convex", "free")


@SURROGATES.register("tsm")
class TSMSurrogate(FieldSurrogate):
    """Args: ``history`` K ≥ 2 frames, ``order`` N ≤ K LegT coefficients, ``stencil`` S (odd), ``discretization``
    of the LegT ODE (``foh``, ``zoh``, ``bilinear``), FNO ``width``, ``modes``, ``layers``; ``stencil_form``:
    ``"convex"`` (softmax weights minus the identity; stable) or ``"free"`` (raw coefficients), see the module docstring."""

    def __init__(self, history: int = 4, order: int = 4, stencil: int = 3, discretization: str = "foh",
                 width: int = 16, modes: int = 8, layers: int = 4, stencil_form: str = "convex"):
        if isinstance(history, int) and not isinstance(history, bool) and history < 2:
            raise ConfigError("history", f"TSM needs a history of >= 2 frames, got {history}")
        super().__init__(history)
        self.encoder = LegTEncoder(validation.integer("order", order, 1, self.history), self.history,
                                   validation.choice("discretization", discretization, DISCRETIZATIONS))
        s = validation.integer("stencil", stencil, 1, 15)
        if s % 2 == 0:
            raise ConfigError("stencil", f"must be odd, got {s}")
        self.stencil = s
        self.stencil_form = validation.choice("stencil_form", stencil_form, STENCIL_FORMS)
        r = s // 2
        self.offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
        self.net = FNO2d(1 + self.encoder.order, len(self.offsets) + 1, width=width, modes=modes, layers=layers,
                         local_kernel=3)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """``[z_n, c_0, …, c_{N−1}]`` ``(B, 1 + N, N, N)`` from the normalised history ``(B, K, N, N)``."""
        return torch.cat([z[:, -1:], self.encoder.encode(z, dim=1)], 1)

    def increment(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(self.features(z))
        alpha, beta = out[:, :-1], out[:, -1]
        cur = z[:, -1]
        # z(x + s) for every offset s = (dy, dx): roll by -s
        shifted = torch.stack([torch.roll(cur, shifts=(-dy, -dx), dims=(-2, -1)) for dy, dx in self.offsets], 1)
        if self.stencil_form == "convex":
            return (torch.softmax(alpha, 1) * shifted).sum(1) - cur + beta
        return (alpha * shifted).sum(1) + beta

    def extra_repr(self) -> str:
        return (f"history={self.history}, order={self.encoder.order}, stencil={self.stencil}, "
                f"stencil_form={self.stencil_form}")

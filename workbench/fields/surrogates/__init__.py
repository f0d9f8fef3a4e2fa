"""One-step field surrogates behind one contract (:class:`FieldSurrogate`), registered in :data:`SURROGATES`:
``fno``, ``unet``, ``pde_refiner`` (the interpolant refiner), ``spectral_refiner`` and ``tsm``. One class per file."""
from .base import SURROGATES, FieldSurrogate
from .fno import FNOSurrogate
from .pde_refiner import PDERefinerSurrogate
from .spectral_refiner import SpectralRefiner
from .tsm import TSMSurrogate
from .unet import UNetSurrogate

__all__ = ["SURROGATES", "FieldSurrogate", "FNOSurrogate", "UNetSurrogate", "PDERefinerSurrogate",
           "SpectralRefiner", "TSMSurrogate"]

"""fastquant: exact, fast conversion of float arrays (CNN predictions) to 8-bit images.

``import fastquant`` loads NumPy only; the Numba kernels are compiled or loaded from cache the first time an
array large enough to benefit is converted.
"""

from . import reference
from ._api import limits, percentile, to_uint8
from ._io import save

__all__ = ["limits", "percentile", "reference", "save", "to_uint8"]
__version__ = "0.1.0"

"""fastquant: exact, fast conversion of float arrays (CNN predictions) to 8-bit images.

``import fastquant`` loads NumPy only; the Numba kernels are compiled or loaded from cache the first time an
array large enough to benefit is converted, and the PNG compressor, the progress bar and the optional format
packages (tifffile, zarr, h5py) when first used.
"""

from . import reference
from ._api import colorize, labels, limits, percentile, to_uint8, to_uint16
from ._composite import composite
from ._convert import Summary, convert
from ._figures import grid, overlay
from ._io import save
from ._outputs import read_metadata

__all__ = [
    "Summary",
    "colorize",
    "composite",
    "convert",
    "grid",
    "labels",
    "limits",
    "overlay",
    "percentile",
    "read_metadata",
    "reference",
    "save",
    "to_uint8",
    "to_uint16",
]
__version__ = "0.1.0"

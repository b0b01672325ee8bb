"""The one place that sets the JIT policy for every kernel, and the threading-layer policy.

Importing this module imports numba; only the kernels (:mod:`fastquant._kernels`) do, loaded lazily by the passes
for inputs large enough to take the engine. Every kernel is compiled with the same options:

- ``cache=True``: compiled code is reused across processes (no JIT cost after the first run on a machine);
- ``nogil=True``: calls from several Python threads can overlap;
- ``error_model="numpy"``: division follows IEEE (no ZeroDivisionError branch in hot loops);
- no ``fastmath``: the kernels rely on NaN and inf comparing as IEEE says.
"""

from __future__ import annotations

import numba

from . import _threading

_threading.configure()

_POLICY = {"cache": True, "nogil": True, "error_model": "numpy"}


def parallel(fn):
    """Compile `fn` as a parallel (prange) kernel."""
    return numba.njit(parallel=True, **_POLICY)(fn)


def serial(fn):
    """Compile `fn` as a serial kernel (inner loops called from parallel ones, small selections)."""
    return numba.njit(**_POLICY)(fn)


def inline(fn):
    """Compile `fn` for inlining into its callers at Numba IR level (per-element helpers in hot loops)."""
    return numba.njit(inline="always", **_POLICY)(fn)


kernel_lock = _threading.kernel_lock

"""Child process for ``test_thread_count.py``: hashes of every result, under the thread count it was started with.

numba fixes its thread pool size (``NUMBA_NUM_THREADS``) when it starts, so each thread count needs its own
interpreter. This script builds the seeded cases below (all large enough for the Numba path), runs the public API
on each, and prints one JSON line::

    {"threads": <numba.get_num_threads()>, "layer": ..., "fastquant": <file>, "hashes": {case: {op: sha256}},
     "control": sha256}

"control" hashes a plain parallel float32 sum (a numba prange reduction, not fastquant): its rounding depends
on how the work is split between threads, so it shows that the comparison can see a thread-count dependence.

    python thread_count_child.py [CASE ...]     (default: every case)
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

SEED = 20250611
Q = (0, 0.5, 5, 50, 95, 99.5, 100)


def _normal(shape, dtype=np.float32, seed=0):
    return np.random.default_rng([SEED, seed]).standard_normal(shape, dtype=dtype)


def _nan_heavy(shape, axis, seed):
    """70 % NaN, 2 % +-inf; with per-channel axes, the last channel has no finite value at all."""
    rng = np.random.default_rng([SEED, seed])
    x = rng.standard_normal(shape, dtype=np.float32)
    u = rng.random(shape)
    x[u < 0.7] = np.nan
    x[(u >= 0.7) & (u < 0.71)] = np.inf
    x[(u >= 0.71) & (u < 0.72)] = -np.inf
    if axis is not None:
        x[..., -1] = np.where(u[..., -1] < 0.5, np.nan, np.inf)
    return x


# name: (make() -> array, axis for the data-derived limits)
CASES = {
    "global-2d": (lambda: _normal((2048, 2048), seed=1), None),
    "hwc-per-channel": (lambda: _normal((2048, 2048, 3), seed=2), (0, 1)),
    "chw-per-channel": (lambda: _normal((3, 2048, 2048), seed=3), (1, 2)),
    "per-column": (lambda: _normal((2048, 1024), seed=4), 0),
    "float64-global": (lambda: _normal((2048, 2048), np.float64, seed=5), None),
    "float64-hwc": (lambda: _normal((2048, 2048, 3), np.float64, seed=6), (0, 1)),
    "nan-heavy-global": (lambda: _nan_heavy((2048, 2048), None, seed=7), None),
    "nan-heavy-hwc": (lambda: _nan_heavy((2048, 2048, 4), (0, 1), seed=8), (0, 1)),
}

OPS = {
    "fixed": lambda fq, x, axis: fq.to_uint8(x, -1.0, 1.0, nan=7),
    "one-sided": lambda fq, x, axis: fq.to_uint8(x, vmax=1.0, axis=axis, nan=7),
    "approx": lambda fq, x, axis: fq.to_uint8(x, percentiles=(5, 95), axis=axis, nan=7),
    "exact": lambda fq, x, axis: fq.to_uint8(x, percentiles=(5, 95), axis=axis, method="exact", nan=7),
    "percentile": lambda fq, x, axis: fq.percentile(x, Q, axis=axis),
}


def digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def main(names: list[str]) -> int:
    import numba

    import fastquant

    @numba.njit(parallel=True)
    def parallel_sum(a):
        total = np.float32(0)
        for i in numba.prange(a.size):
            total += a[i]
        return total

    control = digest(np.array([parallel_sum(_normal(1 << 22, seed=99))]))
    hashes = {}
    for name in names or list(CASES):
        make, axis = CASES[name]
        x = make()
        hashes[name] = {op: digest(run(fastquant, x, axis)) for op, run in OPS.items()}
    print(
        json.dumps(
            {
                "threads": numba.get_num_threads(),
                "layer": numba.threading_layer(),
                "fastquant": fastquant.__file__,
                "hashes": hashes,
                "control": control,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

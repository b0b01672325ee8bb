"""Timing of the small-group kernels (fastquant._kernels.groups) against a floor kernel and the kernels they replace.

Run: ``python benchmarks/kernel_groups.py [--select] [layout ...]`` (layouts: column, pixel, hwc128, hwc21;
``--select``: only the floor and group_select, alternated, for quick before/after ratios). Standard-normal float32
data (seed 20240601), 2 threads, minimum of alternated runs; ratios are to the floor kernel (one parallel read of
every float32, one byte written per element) measured in the same rounds. Kernels slower than a second get fewer
runs.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np

from fastquant import _kernels as old
from fastquant._kernels import groups as new
from fastquant._levels import scale_terms

LAYOUTS = {  # name: (A, G, B, description)
    "column": (8192, 8192, 1, "per column 8192², axis=0"),
    "pixel": (64, 1 << 20, 1, "per pixel 64×1024², axis=0"),
    "hwc128": (1 << 20, 128, 1, "H×W×C 1024²×128, axis=(0, 1)"),
    "hwc21": (1 << 22, 21, 1, "H×W×C 2048²×21, axis=(0, 1)"),
}
QUANTILES = np.array([0.05, 0.95])
THREADS = 2
RUNS = 5


@numba.njit(parallel=True, cache=True)
def _floor(bits, out):
    for i in numba.prange(bits.size):
        out[i] = np.uint8(bits[i] >> 24)


def floor(x, out):
    _floor(x.view(np.uint32), out)


def measure(candidates, runs=RUNS):
    """Minimum time of each candidate over `runs` alternated rounds (one warm-up call each first)."""
    best = {}
    for name, fn in candidates.items():
        t = time.perf_counter()
        fn()
        best[name] = time.perf_counter() - t
    slow = {name for name, t in best.items() if t > 1.0}
    for r in range(runs):
        for name, fn in candidates.items():
            if name in slow and r >= 2:
                continue
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def layout_candidates(a, g, b):
    rng = np.random.default_rng(20240601)
    x = rng.standard_normal(a * g * b, dtype=np.float32)
    out = np.empty(x.size, dtype=np.uint8)
    lo = np.full(g, -1.6448536, dtype=np.float64)
    hi = np.full(g, 1.6448536, dtype=np.float64)
    factor, lo_scaled, scale = (np.ascontiguousarray(t, dtype=np.float64) for t in scale_terms(lo, hi))
    n = THREADS
    return {
        "floor": lambda: floor(x, out),
        "select new": lambda: new.group_select(x, a, g, b, QUANTILES, n),
        "select old": lambda: old.sorted_select(x, a, g, b, QUANTILES),
        "minmax new": lambda: new.finite_minmax_groups(x, a, g, b, n),
        "minmax old": lambda: old.finite_minmax(x, 0, g, b, n),
        "convert new": lambda: new.convert_rows(x, out, a, g, b, lo, factor, lo_scaled, scale, 0.0, n),
        "convert old": lambda: old.convert_runs(x, out, 0, g, b, lo, factor, lo_scaled, scale, 0.0, n),
    }


def main(names, select_only=False):
    numba.set_num_threads(THREADS)
    print(f"{'layout':32} {'kernel':12} {'ms':>9} {'x floor':>8}")
    for name in names:
        a, g, b, text = LAYOUTS[name]
        candidates = layout_candidates(a, g, b)
        if select_only:
            candidates = {k: candidates[k] for k in ("floor", "select new")}
        best = measure(candidates, runs=RUNS + 1 if select_only else RUNS)
        base = best["floor"]
        for kernel, t in best.items():
            print(f"{text:32} {kernel:12} {t * 1e3:9.1f} {t / base:8.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--select"]
    main(args or list(LAYOUTS), select_only="--select" in sys.argv[1:])

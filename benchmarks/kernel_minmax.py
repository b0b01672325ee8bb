"""Timing of the finite min/max kernels (fastquant._kernels.minmax) against a floor kernel and the kernels they replace.

Run: ``python benchmarks/kernel_minmax.py [layout ...]`` (layouts: see LAYOUTS; one layout per process keeps each
run short). Standard-normal float32 data (seed 20240601), 2 threads, minimum of alternated runs (one warm-up call
each first; kernels slower than a second get fewer runs). Ratios are to the floor kernel: one parallel read of
every float32 and one byte written per element. "minmax new" is the kernel finite_minmax picks for the layout
(named after the slash: runs, lanes or columns), "convert" the existing conversion kernel the library uses for the
layout (after the slash) and "one-sided" the sum of the two (a vmax-only call: min/max pass, conversion pass).
The floor is timed several times among the others; its spread (max / min of its per-round minima) is printed.
"""

from __future__ import annotations

import math
import sys
import time

import numba
import numpy as np

from fastquant import _kernels as old
from fastquant._kernels import groups
from fastquant._kernels import minmax as new
from fastquant._levels import scale_terms

LAYOUTS = {  # name: (A, G, B, description)
    "global": (1, 1, 1 << 26, "global 8192²"),
    "chw21": (1, 21, 1 << 22, "C×H×W 21×2048², axis=(1,2)"),
    "hwc21": (1 << 22, 21, 1, "H×W×C 2048²×21"),
    "hwc128": (1 << 20, 128, 1, "H×W×C 1024²×128"),
    "nchw": (1, 256, 1 << 18, "N×C×H×W 16×16×512²"),
    "column": (8192, 8192, 1, "per column 8192²"),
    "pixel": (64, 1 << 20, 1, "per pixel 64×1024²"),
}
THREADS = 2
RUNS = 7


@numba.njit(parallel=True, cache=True)
def _floor(bits, out, n_parts):
    # Reads every float32 (as its bits) and writes one byte per element: the memory-traffic floor of a conversion.
    # Slices keep the inner index a plain counter (x[offset + i] needs a wraparound check that stops vectorizing).
    n = bits.size
    per = (n + n_parts - 1) // n_parts
    for c in numba.prange(n_parts):
        src = bits[min(n, c * per) : min(n, (c + 1) * per)]
        dest = out[min(n, c * per) : min(n, (c + 1) * per)]
        for i in range(src.size):
            dest[i] = np.uint8(src[i] >> np.uint32(24))


def floor(x, out):
    _floor(x.view(np.uint32), out, THREADS)


def _pick(a, g, b):
    # the kernel finite_minmax picks
    if b >= new._MIN_RUN:
        return "runs"
    return "lanes" if g * b <= new._LANES_MAX_PERIOD else "columns"


def _convert(x, out, a, g, b, n):
    # The conversion kernel the library uses for the layout (fastquant._plan.Layout.lane_count, _passes.ROW_RUNS):
    # lanes for periods up to 64 with runs under 16, rows for other runs under 16, runs otherwise.
    lo = np.full(g, -4.0)
    hi = np.full(g, 1.0)
    factor, lo_scaled, scale = (np.ascontiguousarray(t, dtype=np.float64) for t in scale_terms(lo, hi))
    if g > 1 and g * b <= 64 and b < 16:
        unit = math.lcm(g * b, 32)
        lg = (np.arange(unit * max(1, 512 // unit)) // b) % g
        lane = [np.ascontiguousarray(t[lg]) for t in (lo, factor, lo_scaled, scale)]
        return "lanes", lambda: old.convert_lanes(x, out, *lane, 0.0, n)
    if b < 16:
        return "rows", lambda: groups.convert_rows(x, out, a, g, b, lo, factor, lo_scaled, scale, 0.0, n)
    return "runs", lambda: old.convert_runs(x, out, 0, g, b, lo, factor, lo_scaled, scale, 0.0, n)


def layout_candidates(a, g, b):
    rng = np.random.default_rng(20240601)
    x = rng.standard_normal(a * g * b, dtype=np.float32)
    out = np.empty(x.size, dtype=np.uint8)
    n = THREADS
    shape = _pick(a, g, b)
    if shape == "lanes":
        lanes = new.lane_groups(g, b, x.itemsize)
        minmax = lambda: new.finite_minmax_lanes(x, lanes, g, n)  # noqa: E731
    elif shape == "runs":
        minmax = lambda: new.finite_minmax_runs(x, g, b, n)  # noqa: E731
    else:
        minmax = lambda: new.finite_minmax_columns(x, a, g, b, n)  # noqa: E731
    convert_shape, convert = _convert(x, out, a, g, b, n)
    shape = f"{shape}/{convert_shape}"
    return (
        shape,
        {
            "floor": lambda: floor(x, out),
            "minmax new": minmax,
            "floor ": lambda: floor(x, out),
            "minmax old": lambda: old.finite_minmax(x, 0, g, b, n),
            "minmax groups": lambda: groups.finite_minmax_groups(x, a, g, b, n),
            "floor  ": lambda: floor(x, out),
            "convert": convert,
        },
        x,
    )


def measure(candidates, runs=RUNS, budget=60.0):
    """Minimum time of each candidate over `runs` alternated rounds (one warm-up call each first); the floor's
    per-round times are kept for its spread. Slow kernels (> 1 s) get 3 rounds; stops early past `budget` s."""
    best = {}
    floors = []
    t_start = time.perf_counter()
    for name, fn in candidates.items():
        t = time.perf_counter()
        fn()
        best[name] = time.perf_counter() - t
    slow = {name for name, t in best.items() if t > 1.0}
    for r in range(runs):
        for name, fn in candidates.items():
            if name in slow and r >= 3:
                continue
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            best[name] = min(best[name], dt)
            if name.strip() == "floor":
                floors.append(dt)
        if time.perf_counter() - t_start > budget and r >= 4:
            break
    return best, floors


def main(names):
    numba.set_num_threads(THREADS)
    print(f"{'layout':30} {'kernel':15} {'ms':>9} {'x floor':>8}")
    for name in names:
        a, g, b, text = LAYOUTS[name]
        shape, candidates, x = layout_candidates(a, g, b)
        best, floors = measure(candidates)
        base = min(best[k] for k in best if k.strip() == "floor")
        rows = {"floor": base}
        rows.update({k: t for k, t in best.items() if k.strip() != "floor"})
        rows["one-sided"] = best["minmax new"] + best["convert"]
        for kernel, t in rows.items():
            label = f"{kernel} ({shape})" if kernel == "minmax new" else kernel
            print(f"{text:30} {label:15} {t * 1e3:9.1f} {t / base:8.2f}")
        spread = sorted(floors)
        print(
            f"{text:30} floor spread: min {spread[0] * 1e3:.1f} ms, median {spread[len(spread) // 2] * 1e3:.1f} ms, "
            f"max {spread[-1] * 1e3:.1f} ms over {len(spread)} runs"
        )
        sys.stdout.flush()
        del x, candidates


if __name__ == "__main__":
    main(sys.argv[1:] or list(LAYOUTS))

"""The one array generator behind the fast-vs-reference tests (and usable by benchmarks).

In the spirit of numbagg's and bottleneck's test arrays: every dtype fastquant accepts, in native and swapped
byte order, in every memory layout the fast paths have to normalise, with the contents that break naive
implementations (NaN, +-inf, all-NaN, only NaN and +-inf, constant, outliers, ties, signed zeros, extreme
integers), in shapes from 0-d and empty to N x C x H x W. A full cross product would be thousands of cases, so
layouts and byte orders are dealt round-robin (after a seeded shuffle) over each dtype's (shape, contents)
pairs: every dtype still meets every layout and both byte orders, and every dtype meets every contents kind in
every shape.

Pure NumPy, no pytest: ``from arrays import array_cases`` (with ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

# Small on purpose (< 1k elements; odd sizes, so that no chunk or vector width divides them evenly): the
# reference loops over slices in Python, and the suite runs over a few hundred of these.
SHAPES = {
    "0d": (),
    "empty": (0,),
    "empty2d": (0, 3),
    "one": (1,),
    "1d": (131,),
    "2d": (23, 37),
    "hwc": (13, 19, 3),
    "nchw": (2, 3, 7, 9),
}

LAYOUTS = ("C", "F", "planar", "negative", "strided", "readonly")
"""C order; Fortran order; last axis outermost in memory (a transposed copy viewed back, e.g. C x H x W
memory seen as H x W x C); negative strides on every axis; every other element of a larger buffer whose
gaps hold a poison value; a read-only C array."""


def axes_for(shape: tuple[int, ...]) -> tuple:
    """The `axis` values worth testing for arrays of `shape` (None first).

    Axes leaving hundreds of slices (``()`` on 2-D, ``-1`` on H x W x 3) are left out: the reference and
    the direct NumPy check loop over slices in Python.
    """
    ndim = len(shape)
    if ndim == 0:
        return (None, ())
    if ndim == 1:
        return (None, 0, -1, ())
    if ndim == 2:
        return (None, 0, -1, (0, 1))
    if ndim == 3:
        return (None, (0, 1), (1, 2), (0, -1))
    return (None, (2, 3), (0, 2, 3), (1, 2, 3))


def contents_for(dtype: str) -> tuple[str, ...]:
    """The contents kinds that make sense for `dtype`."""
    if dtype == "bool":
        return ("random", "constant")
    if dtype in INT_DTYPES:
        return ("random", "ties", "constant", "extremes")
    kinds = ("normal", "nan", "inf", "allnan", "nonfinite", "constant", "ties")
    if dtype != "float16":  # 1e30 and 1e+-30 are outside float16's range
        kinds += ("outliers", "logspread")
    return kinds


def make_values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """A C-contiguous native-order array of `dtype`, `shape` with contents `kind`."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        flat = rng.random(n) < 0.4 if kind == "random" else np.ones(n, dtype=bool)
        return flat.reshape(shape)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if kind == "random":
            flat = rng.integers(info.min, info.max, size=n, dtype=dt, endpoint=True)
        elif kind == "ties":
            flat = rng.integers(max(info.min, -3), 4, size=n).astype(dt)
        elif kind == "constant":
            flat = np.full(n, 7, dtype=dt)
        elif kind == "extremes":
            # The ends of the range (where a wrong wider/narrower type wraps around) and, for 64-bit
            # types, integers that float64 cannot hold exactly (2**53 + 1 rounds to 2**53).
            pool = [info.min, info.min + 1, 0, info.max - 1, info.max]
            if dt.itemsize == 8:
                pool += [2**53 - 1, 2**53 + 1, 2**62 + 1]
            flat = np.array(rng.choice(np.array(pool, dtype=object), size=n), dtype=dt)
        else:
            raise ValueError(kind)
        return flat.reshape(shape)
    # Floats. "normal" straddles [0, 1] so the default limits clip on both sides and scale in between.
    flat = rng.uniform(-0.25, 1.25, size=n)
    if kind == "nan":
        flat[rng.random(n) < 0.15] = np.nan
    elif kind == "inf":
        u = rng.random(n)
        flat[u < 0.05] = np.inf
        flat[(u >= 0.05) & (u < 0.1)] = -np.inf
        flat[(u >= 0.1) & (u < 0.13)] = np.nan
    elif kind == "allnan":
        flat[:] = np.nan
    elif kind == "nonfinite":  # no finite value at all, but +-inf that must still map to `nan`
        flat = rng.choice(np.array([np.nan, np.inf, -np.inf]), size=n)
    elif kind == "constant":
        flat[:] = 0.375
    elif kind == "ties":
        flat = rng.choice(np.array([-1.0, -0.0, 0.0, 0.5, 1.0]), size=n)
    elif kind == "outliers":
        u = rng.random(n)
        flat[u < 0.02] = 1e30
        flat[(u >= 0.02) & (u < 0.04)] = -1e30
    elif kind == "logspread":
        flat = rng.choice([-1.0, 1.0], size=n) * 10.0 ** rng.uniform(-30, 30, size=n)
    elif kind != "normal":
        raise ValueError(kind)
    return flat.astype(dt).reshape(shape)


def poison(dtype: np.dtype):
    """A value for the gaps of strided views: reading it by mistake changes every limit and percentile."""
    if dtype.kind == "b":
        return True
    if dtype.kind in "iu":
        return np.iinfo(dtype).max
    return np.finfo(dtype).max


def with_layout(values: np.ndarray, layout: str) -> np.ndarray:
    """`values` (C-contiguous) with the same shape and values but laid out in memory as `layout`."""
    if layout == "C":
        return values
    if layout == "F":
        return values.copy(order="F")  # (np.asfortranarray turns 0-d into 1-d)
    if layout == "planar":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(values, -1, 0)), 0, -1) if values.ndim else values
    if layout == "negative":
        flip = (slice(None, None, -1),) * values.ndim + (Ellipsis,)  # Ellipsis: 0-d stays an array
        return np.ascontiguousarray(values[flip])[flip]
    if layout == "strided":
        buf = np.full(tuple(2 * n + 1 for n in values.shape), poison(values.dtype), dtype=values.dtype)
        view = buf[(slice(1, None, 2),) * values.ndim + (Ellipsis,)]
        view[...] = values
        return view
    if layout == "readonly":
        ro = values.copy()
        ro.setflags(write=False)
        return ro
    raise ValueError(layout)


def array_cases(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(id, array)`` test cases; deterministic for a given `seed`.

    Ids read ``dtype-byteorder-layout-contents-shape``, e.g. ``float32-swapped-negative-nan-hwc``.
    Byte-swapped arrays hold the same values as their native twins (``astype`` to the swapped dtype).
    """
    rng = np.random.default_rng(seed)
    for d_index, dtype in enumerate(DTYPES):
        pairs = [(s, k) for s in SHAPES for k in contents_for(dtype)]
        # Contents do not matter in empty arrays: keep one per empty shape.
        pairs = [(s, k) for s, k in pairs if np.prod(SHAPES[s]) or k == contents_for(dtype)[0]]
        order = rng.permutation(len(pairs))
        for i, p_index in enumerate(order):
            shape_name, kind = pairs[p_index]
            layout = LAYOUTS[(i + d_index) % len(LAYOUTS)]
            swapped = (i // len(LAYOUTS)) % 2 == 1 and np.dtype(dtype).itemsize > 1
            values = make_values(rng, dtype, SHAPES[shape_name], kind)
            if swapped:
                values = values.astype(values.dtype.newbyteorder())
            order_name = "swapped" if swapped else "native"
            yield f"{dtype}-{order_name}-{layout}-{kind}-{shape_name}", with_layout(values, layout)


def cases(seed: int = 0) -> list[tuple[str, np.ndarray, tuple]]:
    """``(id, array, axes)`` for every case of :func:`array_cases`, axes from :func:`axes_for`."""
    return [(cid, arr, axes_for(arr.shape)) for cid, arr in array_cases(seed)]


# Sizes that reach the engine's sampled paths once the tests lower the sampling knobs (``SAMPLED_KNOBS``, through
# ``fastquant._plan.tuning``): groups of about 100 k elements, in the layouts whose kernels differ (runs of planes,
# lanes of a channel pattern, the global case, many small groups), float32 and float64, C and Fortran order.
SAMPLED_SHAPES = {
    "global": ((330, 310), None),
    "planes": ((3, 300, 310), (1, 2)),
    "lanes": ((300, 310, 3), (0, 1)),
    "columns": ((600, 400), 0),
}
SAMPLED_KNOBS = {"sample_stride": 16, "min_sample": 2048, "min_bracket_stride": 4, "approx_sample": 4096,
                 "approx_min_stride": 4}  # fmt: skip


def sampled_cases(seed: int = 0) -> list[tuple[str, np.ndarray, object]]:
    """(id, array, axis) for the sampled paths: normal data with NaN, +-inf and ties, in C and Fortran order."""
    out = []
    for i, (name, (shape, axis)) in enumerate(SAMPLED_SHAPES.items()):
        for dtype in ("float32", "float64"):
            rng = np.random.default_rng([seed, i, np.dtype(dtype).itemsize])
            values = make_values(rng, dtype, shape, "nan")
            values.reshape(-1)[::97] = np.round(values.reshape(-1)[::97])  # ties
            for layout in ("C", "F"):
                out.append((f"{dtype}-{layout}-{name}", with_layout(values, layout), axis))
    return out

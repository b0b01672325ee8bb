"""Issue 6's memory rule for in-memory calls: besides its output, a call allocates at most 64 MiB of scratch.

Measured with tracemalloc, which sees NumPy's allocations (the engine's Python-side buffers, index arrays and
temporaries) but not Numba's runtime allocator; the kernels' scratch is sized by ``Tuning.memory_budget``
elsewhere. `out=` is preallocated, so the output itself is not counted. The inputs are the sources that the kernels
cannot read in place (byte-swapped, Fortran order, a strided view), which the engine streams through a reused
buffer: an input-sized temporary there (an index of every element, a converted copy) is what this catches. A
warm-up call first compiles or loads the kernels, so compilation is not measured.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import fastquant

SCRATCH = 64 << 20  # bytes
SHAPE = (
    4096,
    8192,
)  # 2**25 float32 elements (128 MiB): the approx sample and the bracket apply (2**22 or more per group)


def sources() -> dict[str, np.ndarray]:
    x = np.random.default_rng(6).standard_normal(SHAPE, dtype=np.float32)
    return {
        "byte-swapped": x.astype(">f4"),
        "fortran": np.asfortranarray(x),
        "strided": np.random.default_rng(7).standard_normal((SHAPE[0], 2 * SHAPE[1]), dtype=np.float32)[:, ::2],
    }


MODES = {
    "fixed": dict(vmin=-1.0, vmax=1.0),
    "one-sided": dict(vmax=1.0),
    "approx": dict(percentiles=(5, 95)),
    "exact": dict(percentiles=(5, 95), method="exact"),
}


@pytest.fixture(scope="module")
def inputs():
    return sources()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["byte-swapped", "fortran", "strided"])
def test_scratch_is_at_most_64_mib(inputs, kind, mode):
    x = inputs[kind]
    assert x.nbytes >= 2 * SCRATCH  # an input-sized temporary (even of float32) exceeds the bound
    out = np.empty(x.shape, dtype=np.uint8)
    fastquant.to_uint8(x, out=out, **MODES[mode])  # warm-up: kernels compiled or loaded
    tracemalloc.start()
    try:
        fastquant.to_uint8(x, out=out, **MODES[mode])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= SCRATCH, f"{kind}, {mode}: {peak / (1 << 20):.1f} MiB of scratch"
    assert np.array_equal(out, fastquant.to_uint8(np.ascontiguousarray(x, dtype=np.float32), **MODES[mode]))


@pytest.mark.parametrize("mode", ["fixed", "approx"])
@pytest.mark.parametrize("compat", [None, "matplotlib"])
def test_colorize_scratch_is_at_most_64_mib(inputs, mode, compat):
    """Colours are made in the conversion pass (or, for compat, slab by slab): no input-sized temporary."""
    x = inputs["fortran"]
    out = np.empty(x.shape + (3,), dtype=np.uint8)
    fastquant.colorize(x, "viridis", out=out, compat=compat, **MODES[mode])  # warm-up
    tracemalloc.start()
    try:
        fastquant.colorize(x, "viridis", out=out, compat=compat, **MODES[mode])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= SCRATCH, f"colorize {mode} compat={compat}: {peak / (1 << 20):.1f} MiB of scratch"
    c = np.ascontiguousarray(x)
    assert np.array_equal(out[:64], fastquant.colorize(c, "viridis", compat=compat, **MODES[mode])[:64])

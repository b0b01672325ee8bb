"""What the API accepts, and that it never modifies it.

- the input is never modified: values, bytes of the whole underlying buffer (the gaps of strided views
  included), dtype/byte order, strides and flags, on both paths, for every generator case;
- nested lists, Python and NumPy scalars, read-only arrays, zero-stride (broadcast) and unaligned arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from arrays import array_cases
from support import assert_identical, numpy_percentile

import fastquant
from fastquant import reference

pytestmark = pytest.mark.filterwarnings("error")

CASES = list(array_cases(seed=7))


def _snapshot(x: np.ndarray):
    owner = x
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return (owner.tobytes(), x.dtype, x.strides, x.shape, x.flags.writeable, x.flags.c_contiguous), owner


@pytest.mark.parametrize(("case_id", "x"), CASES, ids=[c[0] for c in CASES])
def test_input_never_modified(case_id, x, path):
    before, owner = _snapshot(x)
    axis = -1 if x.ndim else None
    fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, method="approx")
    fastquant.to_uint8(x, percentiles=(1, 99), method="exact", nan=3)
    fastquant.to_uint8(x, vmin=0.25)
    fastquant.to_uint8(x)
    fastquant.percentile(x, [0, 50, 100], axis=axis)
    fastquant.percentile(x, 50, method="approx")
    after, _ = _snapshot(x)
    assert after[1:] == before[1:], f"{case_id} [{path}]: dtype, strides, shape or flags changed"
    assert after[0] == before[0], f"{case_id} [{path}]: the input's buffer was modified"
    assert _snapshot(x)[1] is owner


def test_nested_lists(impl):
    np.testing.assert_array_equal(impl.to_uint8([[0.0, 0.25], [1.0, 2.0]]), [[0, 64], [255, 255]])
    np.testing.assert_array_equal(
        impl.to_uint8([[0.0, 10.0], [20.0, float("nan")]], percentiles=(0, 100), nan=1), [[0, 128], [255, 1]]
    )
    # a list of Python ints is int64: default limits are int64's range, in float64 2**63 * 255 / 2**64 = 127.5
    np.testing.assert_array_equal(impl.to_uint8([[0, 1], [-(2**63), 2**63 - 1]]), [[128, 128], [0, 255]])
    np.testing.assert_array_equal(impl.to_uint8([True, False]), [255, 0])
    r = impl.percentile([[1.0, 2.0], [3.0, 4.0]], 50, axis=0)
    np.testing.assert_array_equal(r, [2.0, 3.0])
    assert r.dtype == np.float64


def test_scalars(impl):
    for value, expected in [(0.25, 64), (np.float32(0.5), 128), (True, 255), (np.float16(2.0), 255)]:
        r = impl.to_uint8(value)
        assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.uint8
        assert r == expected, value
    assert impl.to_uint8(3.0, vmin=1, vmax=5) == 128  # 2 * 63.75 = 127.5 -> 128
    assert impl.to_uint8(3.0, percentiles=(5, 95)) == 0  # a constant map
    assert impl.to_uint8(float("nan"), nan=17) == 17
    r = impl.percentile(3.5, 50)
    assert r.shape == () and r == 3.5
    np.testing.assert_array_equal(impl.percentile(3.5, [10, 90]), [3.5, 3.5])
    assert np.isnan(impl.percentile(float("inf"), 50))


def test_read_only_input(impl):
    x = np.linspace(-0.5, 1.5, 600).reshape(20, 30).astype(np.float32)
    x.setflags(write=False)
    expected = reference.to_uint8(x.copy(), percentiles=(5, 95), axis=1)
    assert_identical(impl.to_uint8(x, percentiles=(5, 95), axis=1, method="exact"), expected)
    np.testing.assert_array_equal(impl.percentile(x, [5, 95], axis=0), numpy_percentile(x, [5, 95], 0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint16", "int8"])
def test_zero_stride_broadcast_input(impl, dtype):
    row = np.linspace(0, 200, 64).astype(dtype)
    x = np.broadcast_to(row, (50, 64))  # read-only, stride 0 along axis 0
    assert x.strides[0] == 0
    full = np.ascontiguousarray(x)
    for kwargs in ({"percentiles": (5, 95)}, {"percentiles": (5, 95), "axis": 0}, {"vmin": 10}, {}):
        assert_identical(impl.to_uint8(x, method="exact", **kwargs), reference.to_uint8(full, **kwargs), str(kwargs))
    np.testing.assert_array_equal(impl.percentile(x, [1, 50, 99]), numpy_percentile(full, [1, 50, 99]))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "float16"])
def test_unaligned_input(impl, dtype):
    dtype = np.dtype(dtype)
    values = np.random.default_rng(11).uniform(-0.5, 1.5, 999).astype(dtype)
    buf = np.zeros(values.nbytes + 1, dtype=np.uint8)
    buf[1:] = values.view(np.uint8)
    x = np.frombuffer(buf.data, dtype=dtype, count=values.size, offset=1)  # misaligned by one byte
    assert not x.flags.aligned
    np.testing.assert_array_equal(x, values)
    x = x.reshape(27, 37)
    for kwargs in ({"percentiles": (5, 95)}, {"percentiles": (5, 95), "axis": 1}, {"vmax": 0.5}, {}):
        assert_identical(
            impl.to_uint8(x, method="exact", **kwargs),
            reference.to_uint8(x.copy(), **kwargs),
            f"{dtype} {kwargs}",
        )
    np.testing.assert_array_equal(impl.percentile(x, [5, 95], axis=0), numpy_percentile(x.copy(), [5, 95], 0))


def test_array_like_objects(impl):
    class Wrapper:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    a = np.array([0.0, 0.5, 1.0])
    np.testing.assert_array_equal(impl.to_uint8(Wrapper(a)), [0, 128, 255])
    np.testing.assert_array_equal(impl.to_uint8((0.0, 0.5, 1.0)), [0, 128, 255])  # a tuple

"""Argument validation shared by the reference and the fast paths (the house style of messages: "X has Y;
accepted: Z").

Everything here runs before any data is touched, so that both implementations reject exactly the same
inputs with exactly the same messages. NumPy only: importing this must stay cheap.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

METHODS = ("approx", "exact")
ACCEPTED_DTYPES = "bool, signed/unsigned integers of any width, or float16/float32/float64"


def real_array(x) -> np.ndarray:
    """Return `x` as an ndarray of an accepted real dtype (never a copy of an ndarray)."""
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind in "biu" or (kind == "f" and arr.dtype.itemsize <= 8):
        return arr
    raise TypeError(f"x has dtype {arr.dtype}; accepted: {ACCEPTED_DTYPES} (arrays or nested lists)")


def data(x):
    """`x` as an ndarray of an accepted dtype, or, for an array-like that is not one (a zarr array, an h5py
    dataset, a lazy stack of files: ``shape``, a NumPy ``dtype`` and slicing), `x` itself, read in blocks."""
    if isinstance(x, np.ndarray) or not (hasattr(x, "shape") and hasattr(x, "dtype")):
        return real_array(x)
    from ._inputs import as_array_like

    x = as_array_like(x)
    if isinstance(x, np.ndarray):
        return real_array(x)
    dtype = np.dtype(x.dtype)
    if not (dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8)):
        raise TypeError(f"x has dtype {dtype}; accepted: {ACCEPTED_DTYPES}")
    return x


_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2, "mib": 1 << 20}
_SIZE_UNITS.update({"g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4, "tb": 1000**4, "tib": 1 << 40})
MIN_MEMORY = 128 << 20  # the engine's scratch (64 MiB) and samples, plus room for blocks


def check_memory(max_memory, name: str = "max_memory") -> int:
    """A memory size in bytes from an int or a string such as ``"512MiB"``, ``"2GiB"``, ``"1.5GB"``."""
    if isinstance(max_memory, bool):
        raise TypeError(f"{name}={max_memory!r} must be a size in bytes or a string such as '512MiB'")
    if isinstance(max_memory, str):
        text = max_memory.strip().lower().replace(" ", "")
        number = text.rstrip("kmgtib")
        unit = text[len(number) :]
        try:
            value = float(number)
        except ValueError:
            value = None
        if value is None or unit not in _SIZE_UNITS or not math.isfinite(value):
            raise ValueError(f"{name}={max_memory!r} is not a size; accepted: bytes, or e.g. '512MiB', '2GiB'")
        size = int(value * _SIZE_UNITS[unit])
    elif isinstance(max_memory, numbers.Integral):
        size = int(max_memory)
    else:
        raise TypeError(f"{name}={max_memory!r} must be a size in bytes or a string such as '512MiB'")
    if size < MIN_MEMORY:
        raise ValueError(f"{name}={max_memory!r} is below the minimum of {MIN_MEMORY >> 20}MiB")
    return size


def percentile_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype whose exact values percentiles are computed from.

    float16 is widened to float32 and integers/bool to float64: both conversions are exact (up to 2**53
    for 64-bit integers), so nothing wraps around and NumPy's interpolation runs in that dtype.
    """
    if dtype.kind == "f":
        return np.dtype(np.float64) if dtype.itemsize == 8 else np.dtype(np.float32)
    return np.dtype(np.float64)


def check_method(method) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; accepted: 'approx' or 'exact'")
    return method


def _reject_text(value, name: str) -> None:
    """Strings are not numbers here, even when float() or numpy.asarray would parse them."""
    if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind in "USO" and _holds_text(value):
        raise TypeError(f"{name}={value!r} is text; accepted: real numbers")


def _holds_text(value) -> bool:
    return any(isinstance(v, (str, bytes)) for v in np.asarray(value, dtype=object).reshape(-1))


def check_q(q) -> np.ndarray:
    """Percentiles as float64, each in [0, 100]."""
    _reject_text(q, "q")
    try:
        q_arr = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"q={q!r} is not a number or array of numbers in [0, 100]") from exc
    bad = ~((q_arr >= 0) & (q_arr <= 100))  # also catches NaN
    if np.any(bad):
        raise ValueError(f"q={q!r} has values outside [0, 100]: {q_arr[bad].tolist()}")
    return q_arr


def normalize_axis(axis, ndim: int) -> tuple[int, ...]:
    """Axes as sorted non-negative ints; None means every axis. Out of range → ValueError (AxisError)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, bool) or not (isinstance(axis, (numbers.Integral, tuple, list)) or hasattr(axis, "__index__")):
        raise TypeError(f"axis={axis!r} must be None, an int or a tuple of ints")
    return tuple(sorted(normalize_axis_tuple(axis, ndim, argname="axis")))


def limit_axes(axis, shape: tuple[int, ...], vmin, vmax) -> tuple[int, ...]:
    """The axes over which limits are computed: `axis`; or, when it is None and vmin/vmax are arrays, the axes
    along which they do not vary, by NumPy broadcasting against x (so ``to_uint8(x, vmin=lo, vmax=hi)`` takes the
    keepdims limits of :func:`fastquant.limits` as they are)."""
    arrays = [v for v in (vmin, vmax) if v is not None and not isinstance(v, (str, bytes)) and np.ndim(v) > 0]
    if axis is not None or not arrays:
        return normalize_axis(axis, len(shape))
    limit_shapes = [np.shape(v) for v in arrays]
    try:
        limit_shape = np.broadcast_shapes(*limit_shapes)
        fits = np.broadcast_shapes(limit_shape, tuple(shape)) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"vmin/vmax have shapes {limit_shapes}; accepted with axis=None: arrays that broadcast to x's shape "
            f"{tuple(shape)} (or give axis)"
        )
    padded = (1,) * (len(shape) - len(limit_shape)) + tuple(limit_shape)
    return tuple(i for i, n in enumerate(padded) if n == 1)


def _finite_scalar(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0:
        raise TypeError(f"{name}={value!r} must be a real scalar")
    try:
        result = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}={value!r} must be a real scalar") from exc
    if not math.isfinite(result):
        raise ValueError(f"{name}={value!r} must be finite")
    return result


def _limit(value, name: str, shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray | None:
    """A vmin/vmax: None, or float64 of the keepdims `shape` (an array that broadcasts to the keepdims shape or to
    the kept shape), or of shape (1, ..., 1) for a scalar. Elements must be finite, except NaN (checked as pairs by
    the caller)."""
    if value is None:
        return None
    if np.ndim(value) == 0:
        _finite_scalar_or_nan(value, name)
        return np.full((1,) * len(shape), float(value))  # broadcasts to the limits' shape
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} has dtype {arr.dtype}; accepted: real numbers (int or float scalars or arrays)")
    kept = tuple(n for i, n in enumerate(shape) if i not in axes)
    for target in (shape, kept):
        try:
            limit = np.broadcast_to(arr.astype(np.float64), target).reshape(shape)
            break
        except ValueError:
            continue
    else:
        raise ValueError(
            f"{name} has shape {arr.shape}; accepted: a scalar or an array that broadcasts to the limits' shape "
            f"{shape} (keepdims) or {kept} (kept axes of axis={axes})"
        )
    if np.isinf(limit).any():
        raise ValueError(f"{name} has infinite values; accepted: finite limits (NaN only as a vmin/vmax pair)")
    return np.ascontiguousarray(limit)


def _finite_scalar_or_nan(value, name: str) -> None:
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name}={value!r} must be a real scalar")
    try:
        result = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}={value!r} must be a real scalar") from exc
    if math.isinf(result):
        raise ValueError(f"{name}={value!r} must be finite")


def check_limits(vmin, vmax, percentiles, shape: tuple[int, ...] = (), axes: tuple[int, ...] = ()):
    """Validate the limit options for an input of `shape` with limits over `axes`.

    Returns (vmin, vmax, percentiles): vmin and vmax as float64 arrays of the keepdims shape, (1, ..., 1) for a
    scalar (or None), the
    percentiles as a float pair (or None). A NaN limit is accepted only where vmin and vmax are both NaN: the
    limits :func:`fastquant.limits` gives a slice without finite values.
    """
    if percentiles is not None:
        if vmin is not None or vmax is not None:
            raise ValueError("give either vmin/vmax (absolute limits) or percentiles (data-derived limits), not both")
        if isinstance(percentiles, (str, bytes)):
            raise TypeError(f"percentiles={percentiles!r} is text; accepted: a pair (low, high) of numbers")
        try:
            low, high = percentiles
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"percentiles={percentiles!r} must be a pair (low, high) with 0 <= low <= high <= 100"
            ) from exc
        low = _finite_scalar(low, "percentiles[0]")
        high = _finite_scalar(high, "percentiles[1]")
        if not (0 <= low <= high <= 100):
            raise ValueError(f"percentiles={percentiles!r} must satisfy 0 <= low <= high <= 100")
        return None, None, (low, high)
    limits_shape = keepdims_shape(shape, axes)
    lo = _limit(vmin, "vmin", limits_shape, axes)
    hi = _limit(vmax, "vmax", limits_shape, axes)
    nan_lo = np.isnan(lo) if lo is not None else np.zeros((1,) * len(shape), bool)
    nan_hi = np.isnan(hi) if hi is not None else np.zeros((1,) * len(shape), bool)
    if (nan_lo != nan_hi).any() or (lo is None or hi is None) and (nan_lo.any() or nan_hi.any()):
        name, value = ("vmin", vmin) if nan_lo.any() and (hi is None or (nan_lo & ~nan_hi).any()) else ("vmax", vmax)
        raise ValueError(
            f"{name}={value!r} must be finite (NaN is accepted only where vmin and vmax are both NaN: the limits "
            "of a slice without finite values)"
        )
    if lo is not None and hi is not None and (lo > hi).any():
        raise ValueError(f"vmin={vmin!r} is greater than vmax={vmax!r}; need vmin <= vmax")
    return lo, hi, None


def integer(value, name: str, accepted: str = "an int") -> int:
    """`value` as a Python int (any integer type, not bool); TypeError "name=value must be <accepted>" else."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be {accepted}")
    try:
        return operator.index(value)
    except TypeError as exc:
        raise TypeError(f"{name}={value!r} must be {accepted}") from exc


def check_center(center) -> float | None:
    """The centre of symmetric limits: None, or a finite real scalar."""
    return None if center is None else _finite_scalar(center, "center")


STRETCH_NAMES = ("linear", "sqrt", "log", "asinh")


def check_stretch(stretch) -> str | float:
    """A stretch: one of STRETCH_NAMES, or a gamma (a finite real > 0; 1.0 is "linear")."""
    accepted = f"one of {', '.join(map(repr, STRETCH_NAMES))} or a gamma (a positive finite number)"
    if isinstance(stretch, str):
        if stretch not in STRETCH_NAMES:
            raise ValueError(f"stretch={stretch!r} is not known; accepted: {accepted}")
        return stretch
    if isinstance(stretch, (bool, np.bool_)) or np.ndim(stretch) != 0:
        raise TypeError(f"stretch={stretch!r} must be {accepted}")
    try:
        gamma = float(stretch)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"stretch={stretch!r} must be {accepted}") from exc
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"stretch={stretch!r} is not a positive finite gamma; accepted: {accepted}")
    return "linear" if gamma == 1.0 else gamma


def check_nan16(nan) -> int:
    """The 16-bit level given to NaN: an int in 0..65535."""
    value = integer(nan, "nan", "an int in 0..65535")
    if not 0 <= value <= 65535:
        raise ValueError(f"nan={nan!r} is outside 0..65535")
    return value


def check_nan(nan) -> int:
    """The grey level given to NaN: an int in 0..255."""
    value = integer(nan, "nan", "an int in 0..255")
    if not 0 <= value <= 255:
        raise ValueError(f"nan={nan!r} is outside 0..255")
    return value


def check_out(out, shape: tuple[int, ...], accepted: str = "the input's shape", dtype=np.uint8):
    """`out` (None, an array or an array-like that takes ``out[index] = levels``) of `shape` and `dtype`."""
    if out is None:
        return None
    name = np.dtype(dtype).name
    if not isinstance(out, np.ndarray):
        if not (hasattr(out, "shape") and hasattr(out, "dtype") and hasattr(out, "__setitem__")):
            raise TypeError(
                f"out must be a numpy.ndarray of dtype {name} or an array-like that takes out[index] = levels "
                f"(a zarr array, an h5py dataset), got {type(out).__name__}"
            )
        if np.dtype(out.dtype) != dtype:
            raise ValueError(f"out has dtype {out.dtype}; accepted: {name}")
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; accepted: {accepted} {tuple(shape)}")
        return out
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}; accepted: {name}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; accepted: {accepted} {tuple(shape)}")
    if not out.flags.writeable:
        raise ValueError(f"out is read-only; accepted: a writeable {name} array")
    return out


def nominal_limits(dtype: np.dtype) -> tuple[float, float]:
    """Limits used when none are given: floats [0, 1], integers their full range, bool [0, 1]."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


MAX_CLASSES = 65535  # uint16 labels, one value left over for `ignore`


def check_labels(shape: tuple[int, ...], channel_axis, threshold, ignore):
    """(axis, dtype, threshold, ignore) of a labels call: uint8 for up to 255 classes, else uint16."""
    if len(shape) == 0:
        raise ValueError("scores is 0-d; accepted: an array with a class axis")
    try:
        (axis,) = normalize_axis_tuple(channel_axis, len(shape), "channel_axis")
    except TypeError as exc:
        raise TypeError(f"channel_axis={channel_axis!r} must be an int") from exc
    except Exception as exc:  # numpy.exceptions.AxisError
        raise ValueError(f"channel_axis={channel_axis!r} is out of range for {len(shape)}-d scores") from exc
    classes = shape[axis]
    if not 1 <= classes <= MAX_CLASSES:
        raise ValueError(f"scores have {classes} classes along axis {axis}; accepted: 1..{MAX_CLASSES}")
    dtype = np.dtype(np.uint8) if classes <= 255 else np.dtype(np.uint16)
    if threshold is not None:
        threshold = _finite_scalar(threshold, "threshold")
    if ignore is None:
        ignore = int(np.iinfo(dtype).max)
    else:
        ignore = integer(ignore, "ignore")
        if not classes <= ignore <= np.iinfo(dtype).max:
            raise ValueError(
                f"ignore={ignore} could be a class index or does not fit {dtype}; accepted: {classes}.."
                f"{np.iinfo(dtype).max} for {classes} classes"
            )
    return axis, dtype, threshold, ignore

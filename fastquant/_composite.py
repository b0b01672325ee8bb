"""The fast path of :func:`fastquant.composite`: N channels mapped to colours and combined into RGB, in one pass.

Validation and colour parsing live here and are shared with :func:`fastquant.reference.composite`. The limits are
:func:`fastquant.limits`'; the pass itself is :func:`fastquant._kernels.composite.composite_pixels`. A C-contiguous
native array is read in place as the (outer, channels, inner) array around the channel axis; anything else
(float16, bool, byte-swapped, strided, Fortran order) in slabs of whole pixels, each made contiguous (at most
2**20 values), so no temporary grows with the input. Small inputs, and limits finer than per channel, use the
reference's blending rule in NumPy (the latter slab by slab).
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple
from numpy.typing import ArrayLike, NDArray

from . import _colour, _validate

Mode = Literal["sum", "max", "weighted"]
MODES = ("sum", "max", "weighted")
SLAB_VALUES = 1 << 20

COLOUR_NAMES = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "yellow": (255, 255, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
}
COLOUR_CYCLE = ("red", "green", "blue", "cyan", "magenta", "yellow")
"""The default colours of 4 or more channels: channel c gets ``COLOUR_CYCLE[c % 6]``."""


def default_colours(n: int) -> tuple[str, ...]:
    """The default colour names of `n` channels: white; magenta, green; red, green, blue; else the cycle."""
    if n == 1:
        return ("white",)
    if n == 2:
        return ("magenta", "green")
    return tuple(COLOUR_CYCLE[c % len(COLOUR_CYCLE)] for c in range(n))


def check_composite(shape: tuple[int, ...], colors, channel_axis, axis, mode):
    """(channel axis, limit axes, (N, 3) float64 weights ``colour / 255``, mode) of a composite call."""
    if len(shape) == 0:
        raise ValueError("x is 0-d; accepted: an array with a channel axis")
    if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, numbers.Integral):
        raise TypeError(f"channel_axis={channel_axis!r} must be an int")
    try:
        (channel,) = normalize_axis_tuple(int(channel_axis), len(shape), "channel_axis")
    except Exception as exc:  # numpy.exceptions.AxisError
        raise ValueError(f"channel_axis={channel_axis!r} is out of range for {len(shape)}-d x") from exc
    n = shape[channel]
    if n < 1:
        raise ValueError(f"x has no channels along axis {channel}; accepted: 1 or more")
    if axis is None:
        axes = tuple(i for i in range(len(shape)) if i != channel)
    else:
        axes = _validate.normalize_axis(axis, len(shape))
        if channel in axes:
            raise ValueError(
                f"axis={axis!r} includes the channel axis {channel}; accepted: axes other than channel_axis "
                "(limits per channel or finer)"
            )
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a blending mode; accepted: {', '.join(map(repr, MODES))}")
    return channel, axes, colour_weights(colors, n), mode


def colour_weights(colors, n: int) -> np.ndarray:
    """The (n, 3) float64 weights ``colour / 255`` of `colors` (None: the defaults) for `n` channels."""
    if colors is None:
        colors = default_colours(n)
    if isinstance(colors, (str, bytes)):
        raise TypeError(f"colors={colors!r} is a single string; accepted: a sequence of {n} colours")
    if isinstance(colors, np.ndarray):
        if colors.dtype.kind not in "iu":
            raise TypeError(f"colors has dtype {colors.dtype}; accepted: an (N, 3) array of ints 0..255 (uint8)")
        if colors.shape != (n, 3):
            raise ValueError(f"colors has shape {colors.shape}; accepted: ({n}, 3), one RGB colour per channel")
        rows = [tuple(int(v) for v in row) for row in colors]
    else:
        try:
            rows = list(colors)
        except TypeError as exc:
            raise TypeError(f"colors={colors!r} must be None, a sequence of colours or an (N, 3) array") from exc
        if len(rows) != n:
            raise ValueError(f"colors has {len(rows)} colours; accepted: {n}, one per channel")
    return np.array([_colour_triple(c) for c in rows], dtype=np.float64).reshape(n, 3) / 255.0


def _colour_triple(colour) -> tuple[int, int, int]:
    names = ", ".join(COLOUR_NAMES)
    if isinstance(colour, str):
        key = colour.strip().lower()
        if key in COLOUR_NAMES:
            return COLOUR_NAMES[key]
        if len(key) == 7 and key[0] == "#" and all(ch in "0123456789abcdef" for ch in key[1:]):
            return tuple(int(key[i : i + 2], 16) for i in (1, 3, 5))
        raise ValueError(f"colour {colour!r} is unknown; accepted: {names}, '#rrggbb' or an RGB triple of ints 0..255")
    try:
        parts = list(colour)
    except TypeError as exc:
        raise TypeError(f"colour {colour!r} must be a name ({names}) or an RGB triple of ints 0..255") from exc
    if len(parts) != 3 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in parts):
        raise TypeError(f"colour {colour!r} must be a name ({names}) or an RGB triple of ints 0..255")
    if not all(0 <= v <= 255 for v in parts):
        raise ValueError(f"colour {colour!r} is out of range; accepted: RGB components 0..255")
    return tuple(int(v) for v in parts)


def channel_terms(lo: np.ndarray, hi: np.ndarray):
    """Per-channel terms of the value rule: (factor, lo * factor, hi * factor - lo * factor); factor 0.5 where
    hi - lo overflows to inf, else 1."""
    with np.errstate(all="ignore"):
        factor = np.where(np.isinf(hi - lo), 0.5, 1.0)
        return factor, lo * factor, hi * factor - lo * factor


def composite(
    x: ArrayLike,
    colors=None,
    *,
    channel_axis: int = -1,
    vmin: ArrayLike | None = None,
    vmax: ArrayLike | None = None,
    percentiles: tuple[float, float] | None = None,
    axis: int | tuple[int, ...] | None = None,
    method: Literal["approx", "exact"] = "approx",
    mode: Mode = "sum",
) -> NDArray[np.uint8]:
    """Map each channel of `x` to a colour and combine them into one RGB image (a fluorescence composite, the
    colours of class probabilities).

    Each channel is mapped to ``[0, 1]`` with its own limits, multiplied by its colour and combined with the
    others: added and clamped (``"sum"``, napari's additive blending, ImageJ's composite), or their maximum
    (``"max"``), or their average weighted by the values (``"weighted"``: the expected colour of a softmax, as
    datashader's categorical shading). One pass over the input, with no temporary the size of the input.

    Parameters
    ----------
    x : array_like
        bool, integer or float16/32/64 channels, any layout: e.g. C×H×W with ``channel_axis=0``, H×W×C with
        ``channel_axis=-1``, N×C×H×W with ``channel_axis=1``. Never modified.
    colors : sequence or array_like, optional
        One colour per channel: a name (``"red"``, ``"green"``, ``"blue"``, ``"cyan"``, ``"magenta"``,
        ``"yellow"``, ``"white"``, ``"black"``, ``"gray"``/``"grey"`` (128), ``"orange"`` (255, 165, 0),
        ``"purple"`` (128, 0, 128)), ``"#rrggbb"``, or an RGB triple of ints 0..255; or an (N, 3) integer array.
        Default: white for 1 channel; magenta, green for 2; red, green, blue for 3; for 4 or more, channel c
        gets ``("red", "green", "blue", "cyan", "magenta", "yellow")[c % 6]``.
    channel_axis : int
        The channel axis.
    vmin, vmax, percentiles, method
        The limits, as for :func:`to_uint8`, per channel by default: vmin/vmax may be arrays of shape ``(N,)``
        (or keepdims-shaped), `percentiles` are taken per channel.
    axis : int or tuple of int, optional
        The axes over which limits are computed; default every axis but `channel_axis`. It must not include
        `channel_axis` (limits are per channel, or finer: e.g. ``axis=(2, 3)`` for N×C×H×W gives limits per
        image and channel).
    mode : {"sum", "max", "weighted"}
        How the coloured channels combine (see Notes).

    Returns
    -------
    numpy.ndarray
        uint8 RGB of shape ``x.shape`` without the channel axis, plus a trailing axis of 3 (C-contiguous).

    Raises
    ------
    TypeError
        `x` of an unsupported dtype; a non-int `channel_axis`; a colour that is neither a name nor a triple of
        ints, a colour array that is not integer; limits or percentiles that are not numbers.
    ValueError
        0-d `x`; `channel_axis` or `axis` out of range, an `axis` that includes `channel_axis`; an unknown mode
        or colour name; a number of colours other than the number of channels; a colour component outside
        0..255; the limit errors of :func:`to_uint8`.

    Notes
    -----
    Limits: ``lo, hi = limits(x, vmin, vmax, percentiles=percentiles, axis=axis, method=method)`` with `axis`
    every axis but `channel_axis` by default. Per channel value, in float64 (integers and bool as their float64
    values): ``t = 0`` where x is NaN, or the channel's limits are NaN (no finite value), or ``x <= lo``; else
    ``t = 1`` where ``x >= hi``; else ``t = (x - lo) / (hi - lo)``, computed as
    ``(x*0.5 - lo*0.5) / (hi*0.5 - lo*0.5)`` where ``hi - lo`` overflows to inf. Colours are ``w = colour / 255``
    in float64. With sums accumulated channel by channel, c = 0..N-1, in float64, and rint rounding half to
    even, per output component k:

    - ``"sum"``: ``rint(255 * min(1, sum_c t_c * w_ck))``;
    - ``"max"``: ``rint(255 * max_c t_c * w_ck)``;
    - ``"weighted"``: ``rint((255 * sum_c t_c * w_ck) / s)`` with ``s = sum_c t_c``, and 0 where ``s == 0``.

    :func:`fastquant.reference.composite` is the NumPy specification: equal bit for bit where the limits are
    the exact ones (always for ``method="exact"``; for ``"approx"``, except for percentile limits of channels of
    at least 2**22 elements, where :func:`limits` gives its proved estimates).

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> x = np.array([[0.0, 0.5, 1.0, 1.0], [1.0, 0.5, np.nan, 1.0]])  # 2 channels x 4 pixels
    >>> fastquant.composite(x, ["red", "green"], channel_axis=0, vmin=0, vmax=1).tolist()
    [[0, 255, 0], [128, 128, 0], [255, 0, 0], [255, 255, 0]]
    >>> fastquant.composite(x, ["red", "green"], channel_axis=0, vmin=0, vmax=1, mode="weighted").tolist()
    [[0, 255, 0], [128, 128, 0], [255, 0, 0], [128, 128, 0]]
    >>> fastquant.composite(np.zeros((8, 8, 3)), percentiles=(1, 99)).shape  # H x W x C, red, green, blue
    (8, 8, 3)
    """
    from . import reference
    from ._api import limits
    from ._plan import current

    x = _validate.real_array(x)
    channel, axes, weights, mode = check_composite(x.shape, colors, channel_axis, axis, mode)
    lo, hi = limits(x, vmin, vmax, percentiles=percentiles, axis=axes, method=method)
    if x.size < current().numba_min_size:
        return reference.blend(x, lo, hi, weights, channel, mode)
    per_channel = all(n == 1 for i, n in enumerate(lo.shape) if i != channel)
    if not per_channel:
        return _blend_slabs(x, lo, hi, weights, channel, mode)
    return _blend_kernel(x, lo.reshape(-1), hi.reshape(-1), weights, channel, mode)


def _blend_slabs(x: np.ndarray, lo, hi, weights, channel: int, mode: str) -> np.ndarray:
    """The reference's blending rule in NumPy, slab by slab of whole pixels (limits finer than per channel)."""
    from . import reference

    out_shape = x.shape[:channel] + x.shape[channel + 1 :]
    out = np.empty(out_shape + (3,), dtype=np.uint8)
    for index, x_index in _pixel_slabs(out_shape, channel, x.shape[channel]):
        limit_index = tuple(s if n > 1 else slice(None) for s, n in zip(x_index, lo.shape, strict=True))
        out[index] = reference.blend(x[x_index], lo[limit_index], hi[limit_index], weights, channel, mode)
    return out


def _pixel_slabs(out_shape: tuple[int, ...], channel: int, n: int):
    """(output index, input index) of slabs of whole pixels of at most ``SLAB_VALUES`` values."""
    for index in _colour.slabs(out_shape, max(1, SLAB_VALUES // n)):
        full = index + (slice(None),) * (len(out_shape) - len(index))
        yield full, full[:channel] + (slice(None),) + full[channel:]


def _blend_kernel(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, weights, channel: int, mode: str) -> np.ndarray:
    """The blend of per-channel limits (lo, hi: (N,)) by the kernel: in place or slab by slab."""
    from ._kernels import kernel_lock
    from ._kernels.composite import composite_pixels
    from ._passes import n_parts

    n = x.shape[channel]
    factor, lo_scaled, span = channel_terms(lo, hi)
    undefined = np.isnan(lo) | np.isnan(hi)
    # A channel without limits has t = 0 everywhere: with lo = hi = inf every non-NaN value is <= lo.
    lo_test = np.where(undefined, np.inf, lo)
    hi_test = np.where(undefined, np.inf, hi)
    params = np.ascontiguousarray(np.stack([lo_test, hi_test, factor, lo_scaled, span], axis=1))  # (N, 5)
    weights = np.ascontiguousarray(weights)
    mode_code = MODES.index(mode)
    out_shape = x.shape[:channel] + x.shape[channel + 1 :]
    out = np.empty(out_shape + (3,), dtype=np.uint8)

    def run(block: np.ndarray, dest: np.ndarray) -> None:
        outer, inner = math.prod(block.shape[:channel]), math.prod(block.shape[channel + 1 :])
        with kernel_lock():
            composite_pixels(
                block.reshape(-1), outer, n, inner, params, weights, mode_code, dest.reshape(-1), n_parts()
            )

    if _readable_in_place(x):
        run(x, out)
        return out
    native = x.dtype.newbyteorder("=")
    widened = {"f2": np.dtype(np.float32), "b1": np.dtype(np.uint8)}  # kinds the kernel does not read
    kernel_dtype = widened.get(f"{native.kind}{native.itemsize}", native)
    for index, x_index in _pixel_slabs(out_shape, channel, n):
        block = np.ascontiguousarray(x[x_index], dtype=kernel_dtype)
        dest = np.empty(block.shape[:channel] + block.shape[channel + 1 :] + (3,), dtype=np.uint8)
        run(block, dest)
        out[index] = dest
    return out


def _readable_in_place(x: np.ndarray) -> bool:
    return x.flags.c_contiguous and x.dtype.isnative and x.dtype.kind != "b" and x.dtype != np.float16

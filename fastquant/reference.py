"""The executable specification of fastquant, in plain NumPy.

Every fast path in the package is tested against these two functions: exact modes bit for bit, the approximate
modes within their documented bound. They are written to be read, not to be fast. Arguments are validated by
:mod:`fastquant._validate`, shared with the fast paths, so both reject the same inputs with the same messages.

Semantics
---------
percentile(x, q, axis)
    For each slice of ``x`` over ``axis``: ``numpy.percentile(finite, q)`` (method "linear") of the slice's
    finite values, computed in float32 for float16/float32 input and float64 otherwise. A slice without finite
    values gives NaN. A zero result is +0.0 (which of -0.0 and 0.0 a selection picks is otherwise
    arbitrary). Result: float64, shape ``q.shape + kept axes``. ``method`` has a single (exact) answer here.

to_uint8(x, vmin, vmax, percentiles, axis, nan)
    Limits ``lo <= hi`` per slice (see :func:`limits`), then per element, in float64::

        NaN          -> nan
        x <= lo      -> 0
        x >= hi      -> 255          (so +-inf saturate, and lo == hi maps everything to 0 or 255)
        otherwise    -> rint((x - lo) * (255 / (hi - lo)))   (round half to even, in float64)

    Where hi - lo is so small or so large that 255 / (hi - lo) would overflow or underflow float64, x, lo and hi
    are first multiplied by a power of two (exact) that brings hi - lo near 1 (see
    :func:`fastquant._levels.scale_terms`).

    Where data-derived limits are NaN (a slice with no finite value), every element of the slice -> nan; so
    does a slice whose given vmin and vmax are both NaN (the limits :func:`limits` returns for such a slice).

limits(x, vmin, vmax, percentiles, axis, center)
    ``vmin``/``vmax``: scalars, or arrays that broadcast to the limits' keepdims shape (or to the kept axes).
    Given only one, the other is the slice's finite minimum or maximum (matplotlib); if then lo > hi, hi = lo.
    With ``center=c`` the limits become ``c -+ h``, ``h = max(c - lo, hi - c)`` (see
    :func:`fastquant._levels.centred`), so that c maps to the middle level.

to_uint8(..., stretch)
    ``stretch="linear"`` (or gamma 1.0) is the rule above. A non-linear stretch S ("sqrt", "log", "asinh", or a
    gamma: ``t ** gamma``) is defined by its 255 steps: NaN -> nan, ``x <= lo`` -> 0, ``x >= hi`` -> 255, and
    otherwise the number of thresholds ``x_k <= x``, ``x_k = lo + S^-1((k - 0.5) / 255) * (hi - lo)`` for
    k = 1..255, computed once per slice in float64 (:func:`fastquant._levels.thresholds`).

to_uint16(...)
    The same rules with 65535 in place of 255 (levels ``rint((x - lo) * (65535 / (hi - lo)))``, 65535
    thresholds for a non-linear stretch), uint16 output, `nan` in 0..65535.

colorize(x, cmap, vmin, vmax, percentiles, axis, nan, compat)
    ``table[level]``, where ``level`` is :func:`to_uint8`'s level with the same limits and ``table`` the
    colormap's 256 colours as bytes (``rint(float_table * 255)`` for the shipped maps); NaN elements, and every
    element of a slice whose limits are undefined, get the colour `nan`. Output ``x.shape + (C,)``, C = 4 when
    the colormap or `nan` has alpha (the other side is then opaque), else 3. With ``compat="matplotlib"`` the
    index is matplotlib's (:func:`fastquant._levels.matplotlib_index`: ``floor(t * 256)`` in the data's float
    type, clamped, under/over/bad) and the table matplotlib's truncated ``(float_table * 255).astype(uint8)``,
    so the colours equal ``matplotlib.colormaps[name](Normalize(lo, hi)(x), bytes=True)[..., :3]``.

composite(x, colors, channel_axis, vmin, vmax, percentiles, axis, mode)
    Limits per channel (:func:`limits`, `axis` default every axis but `channel_axis`, which it must not include).
    Per value, in float64: ``t = 0`` for NaN, NaN limits or ``x <= lo``; else 1 for ``x >= hi``; else
    ``(x - lo) / (hi - lo)`` (all four terms halved where hi - lo overflows). With ``w_c = colour_c / 255`` and
    float64 sums taken channel by channel (c = 0..N-1), per RGB component k: "sum" ``rint(255 * min(1,
    sum t_c w_ck))``; "max" ``rint(255 * max_c t_c w_ck)``; "weighted" ``rint((255 * sum t_c w_ck) / sum t_c)``,
    0 where ``sum t_c == 0``. uint8 output of x's shape without the channel axis, plus (3,).

overlay(image, labels_or_map, alpha, cmap, palette, ignore, vmin, vmax, percentiles)
    A uint8 image, (H, W) gray repeated to RGB or (H, W, 3). Integer (H, W) labels: ``colour = palette[label]``
    (``"voc"``, ``"glasbey"`` or a (K, 3) uint8 array); a label equal to `ignore` (default 255 for uint8, 65535
    for uint16, none for other dtypes) keeps the image; any other label outside 0..K-1 is an error. A float (H, W)
    map: ``colour = colorize(map, cmap, vmin, vmax, percentiles)``; NaN pixels (and a map without limits) keep the
    image. Per channel, in float64: ``rint((1 - alpha) * image + alpha * colour)`` (round half to even), alpha in
    [0, 1]. Output (H, W, 3) uint8.

grid(x, ncols, padding, pad_value, shared_limits, cmap, vmin, vmax, percentiles, nan)
    The tiles of (C, H, W) or (N, C, H, W), flattened in C order (sample n's channels consecutive), tile t at
    grid row ``t // ncols``, column ``t % ncols`` (default ncols: C for 4-D, ``ceil(sqrt(C))`` for 3-D), with
    `padding` pixels of `pad_value` between tiles and around the border, and in empty slots: shape
    ``(nrows * (H + padding) + padding, ncols * (W + padding) + padding)``. Each tile is ``to_uint8(tile, ...)``
    (``colorize(tile, cmap, ...)`` with a cmap: a trailing (3,) or (4,)) with its own limits, or with
    ``shared_limits`` the limits of the whole input (:func:`limits` with ``axis=None``). Without vmin, vmax and
    percentiles: ``percentiles=(0, 100)`` (the finite minimum and maximum of each tile, or of the input).
"""

from __future__ import annotations

import numpy as np

from . import _colormaps, _validate
from ._levels import centred, matplotlib_index, scale_terms, thresholds


def percentile(x, q, axis=None, *, method: str = "exact") -> np.ndarray:
    """Percentiles of the finite values of `x` (see the module docstring)."""
    x = _validate.real_array(x)
    q = _validate.check_q(q)
    _validate.check_method(method)
    axes = _validate.normalize_axis(axis, x.ndim)
    values = x.astype(_validate.percentile_dtype(x.dtype), copy=False)

    kept_shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    kept_axes = [i for i in range(x.ndim) if i not in axes]
    n_reduced = int(np.prod([x.shape[i] for i in axes]))
    rows = np.transpose(values, kept_axes + list(axes)).reshape(int(np.prod(kept_shape)), n_reduced)

    result = np.empty((rows.shape[0],) + q.shape, dtype=np.float64)
    for i, row in enumerate(rows):
        finite = row[np.isfinite(row)]
        result[i] = np.percentile(finite, q) if finite.size else np.nan
    result += 0.0  # a zero result is +0.0, whichever zero the selection happened to pick
    return np.moveaxis(result, 0, -1).reshape(q.shape + kept_shape)


def limits(x, vmin=None, vmax=None, *, percentiles=None, axis=None, method: str = "approx", center=None):
    """The limits ``(lo, hi)`` that :func:`to_uint8` uses with the same arguments.

    float64 arrays of ``x``'s shape with the `axis` axes reduced to length 1 (keepdims). A slice without finite
    values has NaN limits where they are data-derived. `method` has a single (exact) answer here.
    """
    x = _validate.real_array(x)
    axes = _validate.limit_axes(axis, x.shape, vmin, vmax)
    vmin, vmax, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    _validate.check_method(method)
    return centred(*_limits(x, vmin, vmax, percentiles, axes), _validate.check_center(center))


def _limits(x: np.ndarray, vmin, vmax, percentiles, axes: tuple[int, ...]):
    """limits() for validated arguments: vmin, vmax None or keepdims-shaped float64."""
    shape = _validate.keepdims_shape(x.shape, axes)
    if percentiles is not None:
        lo, hi = percentile(x, percentiles, axis=axes)
    elif vmin is None and vmax is None:
        lo, hi = _validate.nominal_limits(x.dtype)
    else:
        values = x.astype(_validate.percentile_dtype(x.dtype), copy=False)
        finite = np.isfinite(values)
        has_finite = np.any(finite, axis=axes, keepdims=True)
        if vmin is not None:
            lo = vmin
        else:
            lo = np.min(values, axis=axes, keepdims=True, where=finite, initial=np.inf)
            lo = np.where(has_finite, lo, np.nan)
        if vmax is not None:
            hi = vmax
        else:
            hi = np.max(values, axis=axes, keepdims=True, where=finite, initial=-np.inf)
            hi = np.where(has_finite, hi, np.nan)
    lo, hi = _limit_array(lo, shape), _limit_array(hi, shape)
    hi = np.where(lo > hi, lo, hi)  # one data-derived side may cross the given one: hi = lo
    undefined = np.isnan(lo) | np.isnan(hi)  # no finite value to derive a limit from: both limits NaN
    return np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi)


def _limit_array(value, shape: tuple[int, ...]) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    return np.broadcast_to(value, shape) if value.size == 1 else value.reshape(shape)


def to_uint8(
    x,
    vmin=None,
    vmax=None,
    *,
    percentiles=None,
    axis=None,
    method: str = "approx",
    center=None,
    stretch="linear",
    nan: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize `x` to uint8 (see the module docstring). `method` has a single (exact) answer here."""
    return _levels_of(x, vmin, vmax, percentiles, axis, method, center, stretch, _validate.check_nan(nan), out, 255)


def to_uint16(
    x,
    vmin=None,
    vmax=None,
    *,
    percentiles=None,
    axis=None,
    method: str = "approx",
    center=None,
    stretch="linear",
    nan: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize `x` to uint16: to_uint8's rules with 65535 levels (see the module docstring)."""
    return _levels_of(x, vmin, vmax, percentiles, axis, method, center, stretch, _validate.check_nan16(nan), out, 65535)


def _levels_of(x, vmin, vmax, percentiles, axis, method, center, stretch, nan: int, out, top: int):
    x, axes, vmin, vmax, percentiles = _limit_arguments(x, vmin, vmax, percentiles, axis, method)
    center, stretch = _validate.check_center(center), _validate.check_stretch(stretch)
    out = _validate.check_out(out, x.shape, dtype=np.uint8 if top == 255 else np.uint16)
    lo, hi = centred(*_limits(x, vmin, vmax, percentiles, axes), center)
    levels = quantize(x, lo, hi, nan, top, stretch)
    if out is None:
        return levels
    out[...] = levels
    return out


def _limit_arguments(x, vmin, vmax, percentiles, axis, method: str):
    """The validated (x, axes, vmin, vmax, percentiles) of a call that takes limits."""
    x = _validate.real_array(x)
    axes = _validate.limit_axes(axis, x.shape, vmin, vmax)
    vmin, vmax, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    _validate.check_method(method)
    return x, axes, vmin, vmax, percentiles


def quantize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, nan: int, top: int = 255, stretch="linear"):
    """The per-element rule: C-contiguous levels (uint8 for top 255, uint16 for 65535) of `x` for limits
    `lo <= hi` (keepdims-shaped, or broadcastable to x)."""
    values = x.astype(np.float64)
    if stretch == "linear":
        with np.errstate(all="ignore"):
            factor, lo_scaled, scale = scale_terms(lo, hi, top)
            inside = np.rint((values * factor - lo_scaled) * scale)
    else:
        inside = _threshold_counts(values, np.asarray(lo), np.asarray(hi), stretch, top)
    levels = np.where(values <= lo, 0.0, np.where(values >= hi, float(top), inside))
    levels = np.where(np.isnan(values) | np.isnan(lo) | np.isnan(hi), nan, levels)
    return levels.astype(np.uint8 if top == 255 else np.uint16, order="C")


def _threshold_counts(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, stretch, top: int) -> np.ndarray:
    """The number of a slice's thresholds ``<= x``, for each element (slice by slice of the limits' shape)."""
    lo, hi = np.broadcast_arrays(lo, hi)
    steps = thresholds(lo, hi, stretch, top)
    counts = np.empty(values.shape)
    for group in np.ndindex(*lo.shape):
        where = tuple(i if n > 1 else slice(None) for i, n in zip(group, lo.shape, strict=True))
        counts[where] = np.searchsorted(steps[group], values[where], side="right")
    return counts


def colorize(
    x,
    cmap="viridis",
    vmin=None,
    vmax=None,
    *,
    percentiles=None,
    axis=None,
    method: str = "approx",
    center=None,
    stretch="linear",
    nan=(0, 0, 0),
    compat: str | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Colours of `x` through a colormap (see the module docstring). `method` has a single (exact) answer here."""
    x, axes, vmin, vmax, percentiles = _limit_arguments(x, vmin, vmax, percentiles, axis, method)
    center, stretch = _validate.check_center(center), _colormaps.check_stretch_compat(stretch, compat)
    table = _colormaps.lookup_table(_colormaps.colour_table(cmap, compat), _colormaps.check_nan_colour(nan))
    out = _validate.check_out(out, x.shape + (table.shape[1],), "the input's shape plus (3,) or (4,)")

    lo, hi = centred(*_limits(x, vmin, vmax, percentiles, axes), center)
    if compat is None:
        index = quantize(x, lo, hi, 0, 255, stretch).astype(np.int64)
        bad = (np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)) | np.isnan(lo) | np.isnan(hi)
    else:
        index, bad = matplotlib_index(x, lo, hi)
    colours = table[np.where(bad, 256, index)]
    if out is None:
        return colours
    out[...] = colours
    return out


def labels(scores, *, channel_axis: int = 0, threshold=None, ignore=None) -> np.ndarray:
    """The class index of the largest score along `channel_axis` (see :func:`fastquant.labels`).

    Ties go to the lowest index (numpy.argmax); NaN scores never win; a pixel whose scores are all NaN, or whose
    largest score is below `threshold`, gets `ignore`. uint8 for up to 255 classes, else uint16.
    """
    x = _validate.real_array(scores)
    axis, dtype, threshold, ignore = _validate.check_labels(x.shape, channel_axis, threshold, ignore)
    s = np.moveaxis(x, axis, 0)
    if s.dtype.kind == "f":
        best = np.max(np.where(np.isnan(s), -np.inf, s), axis=0)
        bad = np.isnan(s).all(axis=0)
    else:
        best = np.max(s, axis=0)
        bad = np.zeros(best.shape, dtype=bool)
    winner = np.argmax(s == best, axis=0)
    if threshold is not None:
        bad |= best < threshold
    out = winner.astype(dtype)
    out[bad] = ignore
    return out


def composite(
    x, colors=None, *, channel_axis=-1, vmin=None, vmax=None, percentiles=None, axis=None, method="approx", mode="sum"
) -> np.ndarray:
    """N channels mapped to colours and combined into RGB (see the module docstring and
    :func:`fastquant.composite`). `method` has a single (exact) answer here."""
    from ._composite import check_composite

    x = _validate.real_array(x)
    channel, axes, weights, mode = check_composite(x.shape, colors, channel_axis, axis, mode)
    x, axes, vmin, vmax, percentiles = _limit_arguments(x, vmin, vmax, percentiles, axes, method)
    lo, hi = _limits(x, vmin, vmax, percentiles, axes)
    return blend(x, lo, hi, weights, channel, mode)


def blend(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, weights: np.ndarray, channel: int, mode: str) -> np.ndarray:
    """The composite of `x` for limits `lo`, `hi` (float64 of x's ndim, length N along the channel axis, the
    other axes 1 or x's) and colours `weights` ((N, 3) float64, colour / 255), channel by channel."""
    out_shape = x.shape[:channel] + x.shape[channel + 1 :]
    acc = np.zeros(out_shape + (3,))
    total = np.zeros(out_shape)
    for c in range(x.shape[channel]):  # sums in the order c = 0..N-1 (not numpy.sum, which is pairwise)
        v = np.take(x, c, axis=channel).astype(np.float64)
        low, high = np.take(lo, c, axis=channel), np.take(hi, c, axis=channel)
        with np.errstate(all="ignore"):
            f = np.where(np.isinf(high - low), 0.5, 1.0)  # hi - lo overflows: halve everything (exact)
            t = (v * f - low * f) / (high * f - low * f)
        t = np.where(v >= high, 1.0, t)
        t = np.where(v <= low, 0.0, t)
        t = np.where(np.isnan(v) | np.isnan(low) | np.isnan(high), 0.0, t)
        coloured = t[..., None] * weights[c]
        acc = np.maximum(acc, coloured) if mode == "max" else acc + coloured
        total = total + t
    if mode == "sum":
        level = 255.0 * np.minimum(1.0, acc)
    elif mode == "max":
        level = 255.0 * acc
    else:
        with np.errstate(all="ignore"):
            level = np.where(total[..., None] == 0.0, 0.0, (255.0 * acc) / total[..., None])
    return np.rint(np.clip(level, 0.0, 255.0)).astype(np.uint8)


def overlay(
    image,
    labels_or_map,
    *,
    alpha=0.5,
    cmap="viridis",
    palette="voc",
    ignore=None,
    vmin=None,
    vmax=None,
    percentiles=None,
    method: str = "approx",
) -> np.ndarray:
    """A heatmap or labels blended over an 8-bit image (see the module docstring and :func:`fastquant.overlay`)."""
    from . import _figures

    image, values, alpha, ignore = _figures.check_overlay(image, labels_or_map, alpha, ignore, vmin, vmax, percentiles)
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    if values.dtype.kind == "f":
        _figures.check_opaque(cmap)
        rgba = colorize(values, cmap, vmin, vmax, percentiles=percentiles, method=method, nan=(0, 0, 0, 0))
        keep, colours = rgba[..., 3] == 0, rgba[..., :3]  # alpha 0: NaN, or no limits
    else:
        table = _colormaps.palette_table(palette)
        keep = values == ignore if ignore is not None else np.zeros(values.shape, dtype=bool)
        _figures.check_label_range(values, keep, len(table), ignore)
        colours = table[np.where(keep, 0, values)]
    blended = np.rint((1 - alpha) * rgb.astype(np.float64) + alpha * colours.astype(np.float64))
    return np.where(keep[..., None], rgb, blended).astype(np.uint8, order="C")


def grid(x, *, ncols=None, padding=2, pad_value=0, shared_limits=False, cmap=None, **limit_options) -> np.ndarray:
    """Tiles of a C×H×W or N×C×H×W array in one image (see the module docstring and :func:`fastquant.grid`)."""
    from . import _figures

    layout = _figures.check_grid(x, ncols, padding, pad_value, shared_limits, cmap, limit_options)
    x, tiles, ncols, nrows, fill, channels = layout
    options = dict(limit_options)
    vmin, vmax, percentiles = options.pop("vmin", None), options.pop("vmax", None), options.pop("percentiles", None)
    lo, hi, percentiles = _figures.tile_limits(x, vmin, vmax, percentiles, shared_limits)
    if shared_limits:
        lo, hi = (float(v.reshape(-1)[0]) for v in limits(x, vmin, vmax, percentiles=percentiles))
        percentiles = None
    h, w = x.shape[-2:]
    shape = (nrows * (h + padding) + padding, ncols * (w + padding) + padding) + ((channels,) if channels else ())
    out = np.empty(shape, dtype=np.uint8)
    out[...] = fill
    for t, tile in enumerate(x.reshape((tiles, h, w))):
        tile_lo, tile_hi = (v if v is None or np.ndim(v) == 0 else v[t] for v in (lo, hi))
        if cmap is None:
            levels = to_uint8(tile, tile_lo, tile_hi, percentiles=percentiles, **options)
        else:
            levels = colorize(tile, cmap, tile_lo, tile_hi, percentiles=percentiles, **options)
        top, left = padding + (t // ncols) * (h + padding), padding + (t % ncols) * (w + padding)
        out[top : top + h, left : left + w] = levels
    return out

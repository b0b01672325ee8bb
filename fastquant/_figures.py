"""Figures made of converted arrays: :func:`overlay` (a heatmap or labels over the input image) and :func:`grid`
(the channels of a layer, tiled).

Both equal :func:`fastquant.reference.overlay` and :func:`fastquant.reference.grid` bit for bit (for
``method="approx"`` percentile limits of slices of 2**22 elements or more, within :func:`fastquant.to_uint8`'s
bound: the levels they colour are those of the approximate limits). The argument checks here are shared with the
reference, so both reject the same inputs with the same messages.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _colormaps, _validate
from ._api import Method, colorize, limits, to_uint8
from ._plan import current

GRID_OPTIONS = ("vmin", "vmax", "percentiles", "method", "nan")
IMAGE_SHAPES = "(H, W) gray or (H, W, 3) RGB"
TRANSPARENT = (0, 0, 0, 0)  # overlay's NaN colour: alpha 0 marks the pixels that keep the image


# --- overlay ----------------------------------------------------------------------------------------------------


def overlay(
    image: ArrayLike,
    labels_or_map: ArrayLike,
    *,
    alpha: float = 0.5,
    cmap="viridis",
    palette="voc",
    ignore: int | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] | None = None,
    method: Method = "approx",
) -> NDArray[np.uint8]:
    """Blend a heatmap or labels over an 8-bit image: ``rint((1 - alpha) * image + alpha * colour)`` as RGB.

    Parameters
    ----------
    image : array_like
        uint8, ``(H, W)`` gray (promoted to RGB by repeating it in the three channels) or ``(H, W, 3)`` RGB. Other
        dtypes are rejected: convert first with ``fastquant.to_uint8(image, ...)`` (which limits to use is the
        caller's choice).
    labels_or_map : array_like
        ``(H, W)``. Integers are labels: ``colour = palette[label]``. Floats are a map: ``colour =
        fastquant.colorize(map, cmap, vmin, vmax, percentiles=..., method=...)``, and a NaN pixel keeps the image.
    alpha : float
        Weight of the colour, in [0, 1]: 0 gives the (promoted) image, 1 the colours.
    cmap : str, array_like or colormap object
        The map's colormap, as for :func:`fastquant.colorize` (opaque colormaps only).
    palette : {"voc", "glasbey"} or array_like
        The labels' colours: ``"voc"``, ``"glasbey"`` (256 colours each) or a (K, 3) uint8 array, K <= 256.
    ignore : int, optional
        Labels equal to this keep the image. None: the dtype's maximum for uint8 (255) and uint16 (65535) labels,
        as :func:`fastquant.labels` gives them; no label is ignored for other integer dtypes.
    vmin, vmax, percentiles, method
        The map's limits, as for :func:`fastquant.to_uint8` over the whole map (floats only).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, C-contiguous. Per pixel and channel, in float64: ``rint((1 - alpha) * i + alpha * c)``
        (round half to even), ``i`` the image's byte and ``c`` the colour's; ``i`` where the pixel is ignored or NaN.

    Raises
    ------
    TypeError
        An image that is not uint8; labels_or_map that are neither integers nor floats (bool included); an alpha
        or ignore that is not a number; as for :func:`fastquant.colorize`.
    ValueError
        An image of another shape, labels_or_map of another shape than the image's ``(H, W)``, alpha outside
        [0, 1], a label that is not a palette index (named), a colormap with alpha, limits or `ignore` given with
        the other kind of input; as for :func:`fastquant.colorize`.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> image = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    >>> labels = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    >>> fastquant.overlay(image, labels, alpha=0.5).tolist()  # voc: 0 black, 1 (128, 0, 0), 2 (0, 128, 0)
    [[[0, 0, 0], [114, 50, 50]], [[200, 200, 200], [128, 192, 128]]]
    >>> heat = np.array([[0.0, np.nan], [0.5, 1.0]])
    >>> fastquant.overlay(image, heat, alpha=1.0, cmap="gray").tolist()
    [[[0, 0, 0], [100, 100, 100]], [[128, 128, 128], [255, 255, 255]]]
    """
    image, values, alpha, ignore = check_overlay(image, labels_or_map, alpha, ignore, vmin, vmax, percentiles)
    pixels = values.size
    kernel = 3 * pixels >= current().numba_min_size
    table = blend_table(alpha)
    if values.dtype.kind == "f":
        check_opaque(cmap)
        colours = colorize(values, cmap, vmin, vmax, percentiles=percentiles, method=method, nan=TRANSPARENT)
        if not kernel:
            return _blend_numpy(image, colours[..., :3], colours[..., 3] == 0, table)
        from ._kernels.overlay import blend_colours

        out = np.empty(values.shape + (3,), dtype=np.uint8)
        flat_image, channels = _flat_image(image)
        with _kernel_lock():
            blend_colours(flat_image, channels, colours.reshape(-1), table, out.reshape(-1), _n_parts())
        return out
    colours = _palette(palette) if isinstance(palette, str) else _colormaps.palette_table(palette)
    if not kernel:
        keep = _ignored(values, ignore)
        check_label_range(values, keep, len(colours), ignore)
        index = values if ignore is None or 0 <= ignore < len(colours) else np.where(keep, 0, values)
        return _blend_numpy(image, colours[index], keep, table)
    from ._kernels.overlay import blend_labels

    out = np.empty(values.shape + (3,), dtype=np.uint8)
    flat_image, channels = _flat_image(image)
    labels = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("=")).reshape(-1)
    with _kernel_lock():
        bad = blend_labels(
            flat_image, channels, labels, colours, ignore is not None, 0 if ignore is None else ignore, table,
            out.reshape(-1), _n_parts(),
        )  # fmt: skip
    if bad:
        check_label_range(values, _ignored(values, ignore), len(colours), ignore)
    return out


def check_overlay(image, labels_or_map, alpha, ignore, vmin, vmax, percentiles):
    """The validated (image, labels_or_map, alpha, ignore) of an overlay call (ignore: None or an int)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(
            f"image has dtype {image.dtype}; accepted: uint8 {IMAGE_SHAPES} (convert it first: "
            "fastquant.to_uint8(image, ...))"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image has shape {image.shape}; accepted: {IMAGE_SHAPES} uint8")
    values = np.asarray(labels_or_map)
    kind = values.dtype.kind
    if not (kind in "iu" or (kind == "f" and values.dtype.itemsize <= 8)):
        raise TypeError(
            f"labels_or_map has dtype {values.dtype}; accepted: integer labels or a float map (a bool mask: "
            "mask.astype(numpy.uint8))"
        )
    if values.shape != image.shape[:2]:
        raise ValueError(
            f"labels_or_map has shape {values.shape} and image has shape {image.shape}; accepted: labels_or_map of "
            f"the image's (H, W) = {image.shape[:2]}"
        )
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha={alpha!r} must be a real number in [0, 1]")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:  # NaN too
        raise ValueError(f"alpha={alpha!r} is outside [0, 1]")
    if kind == "f":
        if ignore is not None:
            raise ValueError(f"ignore={ignore!r} applies to integer labels; labels_or_map is a {values.dtype} map")
        return image, values, alpha, None
    given = [name for name, v in (("vmin", vmin), ("vmax", vmax), ("percentiles", percentiles)) if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to float maps; labels_or_map holds {values.dtype} labels")
    if ignore is None:
        ignore = {1: 255, 2: 65535}.get(values.dtype.itemsize) if kind == "u" else None
    else:
        ignore = _validate.integer(ignore, "ignore")
    return image, values, alpha, ignore


def check_opaque(cmap) -> None:
    """ValueError for a colormap with alpha: overlay's weight is `alpha`."""
    if _colormaps.colour_table(cmap).shape[1] != 3:
        raise ValueError("cmap has alpha; accepted for overlay: an opaque colormap (the weight is alpha=)")


def check_label_range(labels: np.ndarray, keep: np.ndarray, size: int, ignore) -> None:
    """ValueError naming a label (not kept) that is not an index of a palette of `size` colours: the largest one
    if one is too large, else the smallest (negative) one."""
    if labels.dtype.kind == "u" and np.iinfo(labels.dtype).max < size:
        return
    bad = labels[~keep & ((labels < 0) | (labels >= size))]
    if bad.size:
        worst = int(bad.max()) if bad.max() >= size else int(bad.min())
        also = "" if ignore is None else f" (or ignore={ignore})"
        raise ValueError(
            f"labels_or_map has label {worst}, not an index of the palette's {size} colours; accepted: "
            f"0..{size - 1}{also}"
        )


def _blend_numpy(image: np.ndarray, colours: np.ndarray, keep: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[image byte, colour byte] per channel (a gray image in all three), the image where `keep`."""
    rgb = image[..., None] if image.ndim == 2 else image
    out = np.take(table.reshape(-1), (rgb.astype(np.uint16) << 8) | colours)
    if keep.any():
        np.copyto(out, rgb, where=keep[..., None])
    return out


@functools.cache
def _palette(name: str) -> np.ndarray:
    """A named palette's table (validated by palette_table; cached, read-only)."""
    table = _colormaps.palette_table(name)
    table.flags.writeable = False
    return table


def _ignored(labels: np.ndarray, ignore) -> np.ndarray:
    return labels == ignore if ignore is not None else np.zeros(labels.shape, dtype=bool)


@functools.lru_cache(maxsize=16)
def blend_table(alpha: float) -> np.ndarray:
    """The (256, 256) uint8 table ``rint((1 - alpha) * i + alpha * c)`` of image byte i and colour byte c, in
    float64: the reference's arithmetic, element by element (read-only; cached per alpha)."""
    i = np.arange(256, dtype=np.float64)
    table = np.rint((1 - alpha) * i[:, None] + alpha * i[None, :]).astype(np.uint8)
    table.flags.writeable = False
    return table


def _flat_image(image: np.ndarray) -> tuple[np.ndarray, int]:
    return np.ascontiguousarray(image).reshape(-1), 1 if image.ndim == 2 else 3


def _kernel_lock():
    from ._kernels import kernel_lock

    return kernel_lock()


def _n_parts() -> int:
    from ._passes import n_parts

    return n_parts()


# --- grid -------------------------------------------------------------------------------------------------------


def grid(
    x: ArrayLike,
    *,
    ncols: int | None = None,
    padding: int = 2,
    pad_value: int | tuple[int, ...] = 0,
    shared_limits: bool = False,
    cmap=None,
    **limit_options,
) -> NDArray[np.uint8]:
    """Tile the channels of a C×H×W or N×C×H×W array into one 8-bit image, each tile with its own limits.

    Parameters
    ----------
    x : array_like
        ``(C, H, W)`` (C tiles) or ``(N, C, H, W)`` (N·C tiles, sample n's channels consecutive), of any dtype
        :func:`fastquant.to_uint8` accepts, every side at least 1.
    ncols : int, optional
        Tiles per grid row (row-major). Default: C for N×C×H×W (one sample a row), ``ceil(sqrt(C))`` for C×H×W.
    padding : int
        Pixels between tiles and around the border (>= 0).
    pad_value : int or tuple of int
        The padding's and empty tile slots' value, 0..255. With `cmap` an int ``v`` means ``(v, v, v)``, or give 3
        ints (RGB) or, when the tiles are RGBA, 4; RGBA tiles have opaque padding unless 4 are given.
    shared_limits : bool
        False: limits per tile (``axis=(-2, -1)``). True: one set of limits over the whole input (``axis=None``);
        vmin and vmax must then be scalars. Without vmin, vmax and percentiles the limits are
        ``percentiles=(0, 100)``: the finite minimum and maximum of each tile (of the input, when shared); pass
        ``vmin=0, vmax=1`` for the nominal range of floats.
    cmap : optional
        None: gray output. Otherwise colour every tile with :func:`fastquant.colorize` and this colormap.
    **limit_options
        ``vmin``, ``vmax``, ``percentiles``, ``method``, ``nan``, as for :func:`fastquant.to_uint8` (with `cmap`, as
        for :func:`fastquant.colorize`: ``nan`` is a colour). Per tile, vmin and vmax may be arrays that broadcast to
        the tiles' shape ``(C,)`` or ``(N, C)`` (keepdims ``(..., 1, 1)`` too).

    Returns
    -------
    numpy.ndarray
        uint8 ``(h, w)``, or ``(h, w, 3)`` (``(h, w, 4)`` for a colormap or `nan` with alpha) with `cmap`, where
        ``h = nrows * (H + padding) + padding``, ``w = ncols * (W + padding) + padding`` and ``nrows =
        ceil(tiles / ncols)``. Tile t is at grid row ``t // ncols``, column ``t % ncols``.

    Raises
    ------
    TypeError
        `x` of an unsupported dtype; a non-int `ncols`, `padding` or `pad_value`, a non-bool `shared_limits`; an
        option other than those of `limit_options` (named, with the accepted ones); as for
        :func:`fastquant.to_uint8` or :func:`fastquant.colorize`.
    ValueError
        `x` not 3-D or 4-D or with an empty side, ``ncols < 1``, ``padding < 0``, `pad_value` outside 0..255 or of
        the wrong length, array limits with ``shared_limits=True``; as for :func:`fastquant.to_uint8` or
        :func:`fastquant.colorize`.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> x = np.arange(12.0).reshape(3, 2, 2)  # 3 channels of 2x2: each tile 0 .. 255, its own min .. max
    >>> g = fastquant.grid(x, padding=1)
    >>> g.shape  # 2 rows of 2 tiles: 2 * (2 + 1) + 1
    (7, 7)
    >>> g[1:3, 1:3].tolist(), g[4:6, 4:6].tolist()  # tile 0, and the empty slot 3 (pad_value)
    ([[0, 85], [170, 255]], [[0, 0], [0, 0]])
    >>> fastquant.grid(x, ncols=3, padding=0, shared_limits=True, vmin=0, vmax=11)[0].tolist()
    [0, 23, 93, 116, 185, 209]
    """
    layout = check_grid(x, ncols, padding, pad_value, shared_limits, cmap, limit_options)
    x, tiles, ncols, nrows, fill, channels = layout
    options = dict(limit_options)
    vmin, vmax, percentiles = options.pop("vmin", None), options.pop("vmax", None), options.pop("percentiles", None)
    method = options.get("method", "approx")
    h, w = x.shape[-2:]
    shape = (nrows * (h + padding) + padding, ncols * (w + padding) + padding) + ((channels,) if channels else ())
    out = np.empty(shape, dtype=np.uint8)
    out[...] = fill
    lo, hi, percentiles = tile_limits(x, vmin, vmax, percentiles, shared_limits)
    if shared_limits:
        lo, hi = limits(x, vmin, vmax, percentiles=percentiles, method=method)
        lo, hi, percentiles = float(lo.reshape(-1)[0]), float(hi.reshape(-1)[0]), None
    convert = to_uint8 if cmap is None else functools.partial(colorize, cmap=cmap)
    flat = x if x.ndim == 4 and ncols == x.shape[1] else x.reshape((tiles, h, w))
    full = tiles // ncols
    pieces = ([(0, full, ncols)] if full else []) + ([(full, full + 1, tiles - full * ncols)] if tiles % ncols else [])
    for row0, row1, count in pieces:
        first, last = row0 * ncols, row0 * ncols + (row1 - row0) * count
        if flat.ndim == 4:
            source = flat
        else:
            source = flat[first:last].reshape((row1 - row0, count, h, w))
        dest = _tile_view(out, row0, row1 - row0, count, h, w, padding)
        limit = [_piece(v, first, last, row1 - row0, count) for v in (lo, hi)]
        convert(source, vmin=limit[0], vmax=limit[1], percentiles=percentiles, axis=(2, 3), out=dest, **options)
    return out


def check_grid(x, ncols, padding, pad_value, shared_limits, cmap, options):
    """The validated layout of a grid call: (x, tiles, ncols, nrows, fill, channels); channels 0 for gray, else
    3 or 4, and fill the pad value (an int, or a tuple of `channels` ints)."""
    unknown = [name for name in options if name not in GRID_OPTIONS]
    if unknown:
        raise TypeError(f"grid() got an unknown option {unknown[0]!r}; accepted: {', '.join(GRID_OPTIONS)}")
    x = _validate.real_array(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"x has shape {x.shape}; accepted: (C, H, W) or (N, C, H, W)")
    if 0 in x.shape:
        raise ValueError(f"x has shape {x.shape}, an empty side; accepted: every side at least 1")
    channels_per_sample = x.shape[-3]
    tiles = math.prod(x.shape[:-2])
    if ncols is None:
        ncols = channels_per_sample if x.ndim == 4 else math.isqrt(channels_per_sample - 1) + 1
    else:
        ncols = _validate.integer(ncols, "ncols", "an int >= 1 or None")
        if ncols < 1:
            raise ValueError(f"ncols={ncols} must be at least 1")
    padding = _validate.integer(padding, "padding", "an int >= 0")
    if padding < 0:
        raise ValueError(f"padding={padding} must be at least 0")
    if not isinstance(shared_limits, (bool, np.bool_)):
        raise TypeError(f"shared_limits={shared_limits!r} must be a bool")
    channels = 0
    if cmap is not None:
        nan = _colormaps.check_nan_colour(options.get("nan", (0, 0, 0)))
        channels = _colormaps.lookup_table(_colormaps.colour_table(cmap), nan).shape[1]
    return x, tiles, ncols, -(-tiles // ncols), _fill(pad_value, channels), channels


def _fill(pad_value, channels: int):
    accepted = "an int in 0..255" if not channels else f"an int in 0..255 or {'3 or 4' if channels == 4 else 3} ints"
    if channels and isinstance(pad_value, (tuple, list, np.ndarray)):
        values = tuple(_validate.integer(v, "pad_value component", "an int in 0..255") for v in pad_value)
        if len(values) not in ((3, 4) if channels == 4 else (3,)):
            raise ValueError(f"pad_value={pad_value!r} has {len(values)} components; accepted: {accepted}")
    else:
        value = _validate.integer(pad_value, "pad_value", accepted)
        values = (value,) * 3 if channels else (value,)
    if not all(0 <= v <= 255 for v in values):
        raise ValueError(f"pad_value={pad_value!r} is outside 0..255")
    if not channels:
        return values[0]
    return values + (255,) * (channels - len(values))


def tile_limits(x: np.ndarray, vmin, vmax, percentiles, shared: bool):
    """Validated limits of a grid: (lo, hi, percentiles) with lo and hi None, a float (a scalar given, or shared
    limits) or float64 of one value per tile, shape ``(tiles,)``. Neither limits nor percentiles:
    ``percentiles=(0, 100)``, each tile's (or, shared, the input's) finite minimum and maximum."""
    if vmin is None and vmax is None and percentiles is None:
        percentiles = (0, 100)
    if shared:
        given = [name for name, v in (("vmin", vmin), ("vmax", vmax)) if v is not None and np.ndim(v) != 0]
        if given:
            raise ValueError(f"{given[0]} is an array; accepted with shared_limits=True: scalar vmin and vmax")
        axes = tuple(range(x.ndim))
    else:
        axes = (x.ndim - 2, x.ndim - 1)
    lo, hi, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    return _per_tile(lo, vmin, x.shape[:-2]), _per_tile(hi, vmax, x.shape[:-2]), percentiles


def _per_tile(limit, given, per_tile: tuple[int, ...]):
    if limit is None or np.ndim(given) == 0:
        return None if limit is None else float(limit.reshape(-1)[0])
    return np.broadcast_to(limit.reshape(limit.shape[:-2]), per_tile).reshape(-1)


def _piece(limit, first: int, last: int, rows: int, count: int):
    """The keepdims limits ``(rows, count, 1, 1)`` of tiles [first, last), or a scalar/None as it is."""
    if limit is None or np.ndim(limit) == 0:
        return limit
    return np.ascontiguousarray(limit[first:last]).reshape((rows, count, 1, 1))


def _tile_view(out: np.ndarray, row0: int, rows: int, count: int, h: int, w: int, padding: int) -> np.ndarray:
    """The ``(rows, count, h, w[, C])`` view of `out` at grid rows row0.., columns 0..count-1."""
    s0, s1 = out.strides[:2]
    origin = out[padding + row0 * (h + padding) :, padding:]
    shape = (rows, count, h, w) + out.shape[2:]
    strides = ((h + padding) * s0, (w + padding) * s1, s0, s1) + out.strides[2:]
    return np.lib.stride_tricks.as_strided(origin, shape=shape, strides=strides, writeable=True)

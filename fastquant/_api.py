"""The public functions: validate, plan, then run the NumPy path (small inputs) or the engine.

The semantics are those of :mod:`fastquant.reference` (exact modes bit for bit); see the README's table.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _colormaps, _numpy_path, _validate
from ._levels import Rule, centred
from ._plan import make_plan
from ._source import block_elements, storage_chunks

Method = Literal["approx", "exact"]
Axis = int | tuple[int, ...] | None
DEFAULT_MEMORY = 1 << 30


def to_uint8(
    x: ArrayLike,
    vmin: ArrayLike | None = None,
    vmax: ArrayLike | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
    axis: Axis = None,
    method: Method = "approx",
    center: float | None = None,
    stretch: str | float = "linear",
    nan: int = 0,
    out: NDArray[np.uint8] | None = None,
    max_memory: int | str = DEFAULT_MEMORY,
) -> NDArray[np.uint8]:
    """Quantize a float (or integer/bool) array to uint8 with clipping, scaling and rounding.

    Parameters
    ----------
    x : array_like
        bool, integer or float16/32/64 data of any shape, byte order and strides. Never modified. An array-like
        that is not a NumPy array (a zarr array, an h5py dataset: ``shape``, a NumPy ``dtype`` and slicing) is
        read in blocks, within `max_memory`.
    vmin, vmax : float or array_like, optional
        Absolute limits: scalars, or arrays that broadcast to the limits' shape over `axis` (keepdims, or the
        kept axes alone: shape ``(C,)`` for per-channel limits of H×W×C with ``axis=(0, 1)``). Values ``<= vmin``
        map to 0, values ``>= vmax`` to 255. Giving only one of them takes the other from the data's finite
        minimum or maximum over `axis` (if that leaves ``vmin > vmax``, the upper limit becomes ``vmin``).
        Neither (and no `percentiles`): the dtype's nominal range, ``[0, 1]`` for floats, the full range for
        integers, ``False -> 0, True -> 255`` for bool. NaN is accepted only where vmin and vmax are both NaN (the
        limits :func:`limits` gives a slice without finite values): that slice maps to `nan`.
    percentiles : (float, float), optional
        ``(low, high)`` in percent: limits are these percentiles of the finite values over `axis`.
        Cannot be combined with `vmin`/`vmax`.
    axis : int or tuple of int, optional
        Axes over which limits are computed (None: the whole array). ``axis=(0, 1)`` gives per-channel limits
        for an H×W×C image.
    method : {"approx", "exact"}
        How percentile limits are computed. "exact" equals :func:`fastquant.reference.to_uint8` bit for bit.
        "approx" is within one grey level of it at every pixel, for every input: for slices of at least
        2**22 elements (and at most 64 slices) its limits are the percentiles of a fixed sample of each slice
        (about 2**19 elements at positions set by the shape), and the conversion pass proves that each
        exact limit lies within 0.9 * (hi - lo) / 255 of them; where it cannot, and otherwise, the exact limits are
        used. The result depends only on the values, dtype and shape (not on memory layout, byte order,
        thread count or call history). A non-linear `stretch` always uses the exact limits (no such proof
        exists where its slope is unbounded).
    center : float, optional
        Make the limits symmetric about `center`: ``center -+ h``, with ``h`` the larger distance from `center` to
        the two limits (given or data-derived), so that `center` maps to the middle level (127.5, rounded to
        128). For signed maps (saliency, gradients, logits) with a diverging colormap.
    stretch : {"linear", "sqrt", "log", "asinh"} or float
        How the range maps to levels, with ``t = (x - lo) / (hi - lo)`` clipped to [0, 1]: ``"linear"`` (t, the
        rule below), ``"sqrt"``, ``"log"`` (``log(1000 t + 1) / log(1001)``, astropy's), ``"asinh"``
        (``asinh(10 t) / asinh(10)``, astropy's) or a gamma ``g`` (``t ** g``; 1.0 is linear). A non-linear
        stretch is defined by its 255 steps: the level is the number of thresholds
        ``x_k = lo + S^-1((k - 0.5) / 255) * (hi - lo)``, k = 1..255, at or below x (see
        :mod:`fastquant.reference`).
    nan : int
        Grey level for NaN, and for every element of a slice without finite values when limits are data-derived.
    out : numpy.ndarray or array-like, optional
        uint8 array of ``x``'s shape to write into. It may share memory with `x`. It may be an array-like that
        takes ``out[index] = levels`` (a zarr array), written block by block.
    max_memory : int or str
        Bytes (or a size such as ``"512MiB"``) an array-like input may occupy while it is read in blocks, besides
        the output (default 1 GiB; at least 128 MiB). NumPy arrays are read in place and ignore it.

    Returns
    -------
    numpy.ndarray
        uint8 array of ``x``'s shape (C-contiguous), or `out`.

    Raises
    ------
    TypeError
        `x` of an unsupported dtype (complex, object, strings); limits, percentiles or `nan` that are not numbers.
    ValueError
        percentiles outside [0, 100] or reversed, ``vmin > vmax``, infinite limits, limits that do not
        broadcast, `nan` outside 0..255, an axis out of range, an unknown method, `out` of the wrong dtype or
        shape.

    Notes
    -----
    Per element, with limits ``lo <= hi`` and in float64: NaN -> `nan`; ``x <= lo`` -> 0; else ``x >= hi`` -> 255;
    else ``rint((x - lo) * (255 / (hi - lo)))`` (round half to even). A constant map becomes 0.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> fastquant.to_uint8(np.array([0.0, 0.5, 1.0, np.nan]))
    array([  0, 128, 255,   0], dtype=uint8)
    >>> fastquant.to_uint8(np.array([[1.0, 2.0], [3.0, 5.0]]), vmin=[1.0, 2.0], vmax=[3.0, 5.0], axis=0)
    array([[  0,   0],
           [255, 255]], dtype=uint8)
    """
    rule = Rule(255, _validate.check_stretch(stretch), _validate.check_center(center))
    return _quantized(x, vmin, vmax, percentiles, axis, method, rule, nan, out, max_memory)


def to_uint16(
    x: ArrayLike,
    vmin: ArrayLike | None = None,
    vmax: ArrayLike | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
    axis: Axis = None,
    method: Method = "approx",
    center: float | None = None,
    stretch: str | float = "linear",
    nan: int = 0,
    out: NDArray[np.uint16] | None = None,
    max_memory: int | str = DEFAULT_MEMORY,
) -> NDArray[np.uint16]:
    """Quantize to uint16: :func:`to_uint8`'s rules with 65535 levels, for 16-bit PNG and TIFF.

    Per element, with limits ``lo <= hi`` and in float64: NaN -> `nan`; ``x <= lo`` -> 0; else ``x >= hi`` ->
    65535; else ``rint((x - lo) * (65535 / (hi - lo)))``. A non-linear `stretch` counts 65535 thresholds.

    Parameters
    ----------
    x, vmin, vmax, percentiles, axis, center, stretch, max_memory
        As for :func:`to_uint8`.
    method : {"approx", "exact"}
        Accepted for symmetry with :func:`to_uint8`, but a sample cannot prove limits to 1/65535 of the range:
        percentile limits are always the exact ones (``"approx"`` equals ``"exact"``).
    nan : int
        Level for NaN (and for slices without finite values), 0..65535.
    out : numpy.ndarray or array-like, optional
        uint16 array of ``x``'s shape to write into.

    Returns
    -------
    numpy.ndarray
        uint16 array of ``x``'s shape (C-contiguous), or `out`.

    Raises
    ------
    TypeError, ValueError
        As for :func:`to_uint8` (`nan` outside 0..65535, `out` not uint16).

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> fastquant.to_uint16(np.array([0.0, 0.5, 1.0, np.nan]))
    array([    0, 32768, 65535,     0], dtype=uint16)
    """
    rule = Rule(65535, _validate.check_stretch(stretch), _validate.check_center(center))
    return _quantized(x, vmin, vmax, percentiles, axis, method, rule, nan, out, max_memory)


def _quantized(x, vmin, vmax, percentiles, axis, method, rule: Rule, nan, out, max_memory):
    """to_uint8 / to_uint16: validate, plan, then the NumPy path or the engine."""
    x = _validate.data(x)
    axes = _validate.limit_axes(axis, x.shape, vmin, vmax)
    vmin, vmax, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    _validate.check_method(method)
    nan = _validate.check_nan(nan) if rule.top == 255 else _validate.check_nan16(nan)
    _validate.check_out(out, x.shape, dtype=rule.dtype)
    max_memory = _validate.check_memory(max_memory)
    plan = make_plan(x.shape, axes, _grouped(vmin, vmax, percentiles))
    blockwise = not isinstance(x, np.ndarray) or (out is not None and not isinstance(out, np.ndarray))
    if plan.path == "numpy":  # small: an array-like is read whole
        levels = _numpy_path.to_uint8(np.asarray(x[...]), vmin, vmax, percentiles, axes, nan, None, rule)
        if out is None:
            return levels
        out[...] = levels
        return out
    from . import _engine

    if blockwise:
        return _engine.to_uint8_blocks(
            x, plan, block_elements(x.dtype, max_memory), storage_chunks(x), vmin, vmax, percentiles, method, nan, out,
            None, rule,
        )  # fmt: skip
    return _engine.to_uint8(x, plan, vmin, vmax, percentiles, method, nan, out, None, rule)


def limits(
    x: ArrayLike,
    vmin: ArrayLike | None = None,
    vmax: ArrayLike | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
    axis: Axis = None,
    method: Method = "approx",
    center: float | None = None,
    max_memory: int | str = DEFAULT_MEMORY,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The limits ``(lo, hi)`` that :func:`to_uint8` uses with the same arguments.

    ``to_uint8(x, vmin=lo, vmax=hi)`` then gives the same bytes as ``to_uint8(x, vmin, vmax, percentiles=...,
    axis=axis, method=method)``: reuse limits of training data, of the first volume of a series, or from a file.

    Parameters
    ----------
    x, vmin, vmax, percentiles, axis, method, center, max_memory
        As for :func:`to_uint8`. For ``method="approx"`` the limits are those actually used: the proved
        estimates, or the exact limits where they are not proved or do not apply (a non-linear stretch and
        :func:`to_uint16` use the exact ones: ``method="exact"`` gives those).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float64 arrays of ``x``'s shape with the `axis` axes reduced to length 1 (keepdims), ``lo <= hi``. A slice
        without finite values has NaN limits (where they are data-derived).

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> x = np.arange(12.0).reshape(2, 2, 3)
    >>> lo, hi = fastquant.limits(x, percentiles=(0, 100), axis=(0, 1))
    >>> lo.shape, lo.ravel().tolist(), hi.ravel().tolist()
    ((1, 1, 3), [0.0, 1.0, 2.0], [9.0, 10.0, 11.0])
    """
    x = _validate.data(x)
    axes = _validate.limit_axes(axis, x.shape, vmin, vmax)
    vmin, vmax, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    _validate.check_method(method)
    center = _validate.check_center(center)
    max_memory = _validate.check_memory(max_memory)
    plan = make_plan(x.shape, axes, _grouped(vmin, vmax, percentiles))
    shape = _validate.keepdims_shape(x.shape, axes)
    if plan.path == "numpy":
        lo, hi = centred(*_numpy_path.limits(np.asarray(x[...]), vmin, vmax, percentiles, axes), center)
    else:
        from . import _engine

        lo, hi = _engine.limits(
            x, plan, vmin, vmax, percentiles, method, block_elements(x.dtype, max_memory), storage_chunks(x), center
        )
    return tuple(
        np.broadcast_to(np.reshape(v, shape) if np.size(v) > 1 else v, shape).astype(np.float64) for v in (lo, hi)
    )


def percentile(
    x: ArrayLike, q: ArrayLike, axis: Axis = None, *, method: Method = "exact", max_memory: int | str = DEFAULT_MEMORY
) -> NDArray[np.float64]:
    """Percentiles of the finite values of `x`, over `axis`.

    Parameters
    ----------
    x : array_like
        bool, integer or float16/32/64 data. NaN and ±inf are ignored. float16 is treated as its exact float32
        values, integers and bool as their exact float64 values.
    q : float or array_like of float
        Percentiles in [0, 100].
    axis : int or tuple of int, optional
        Axes to reduce (None: all).
    method : {"exact", "approx"}
        "exact" equals ``numpy.percentile(finite_values, numpy.asarray(q, dtype=float64))`` (method "linear")
        exactly. "approx" is reserved: it currently runs the same exact algorithm (error bound 0, tested).

    Returns
    -------
    numpy.ndarray
        float64, shape ``q.shape + kept axes``; 0-d for a scalar `q` and ``axis=None``. NaN for a slice without
        finite values (no warning).

    Raises
    ------
    TypeError
        `x` of an unsupported dtype; `q` that is not numbers.
    ValueError
        `q` outside [0, 100], an axis out of range, an unknown method.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> fastquant.percentile(np.array([1.0, 2.0, np.nan, 4.0]), [0, 50, 100]).tolist()
    [1.0, 2.0, 4.0]
    """
    x = _validate.data(x)
    q = _validate.check_q(q)
    _validate.check_method(method)
    max_memory = _validate.check_memory(max_memory)
    axes = _validate.normalize_axis(axis, len(x.shape))
    plan = make_plan(x.shape, axes, True)
    if plan.path == "numpy":
        return _numpy_path.percentile(np.asarray(x[...]), q, axes)
    from . import _engine

    kept_shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    found = _engine.percentile(x, plan, q, block_elements(x.dtype, max_memory), storage_chunks(x))
    return found.reshape(q.shape + kept_shape)


def _grouped(vmin, vmax, percentiles) -> bool:
    """Whether limits differ by group: data-derived, or given as arrays that are not uniform."""
    if percentiles is not None or (vmin is None) != (vmax is None):
        return True
    return any(v is not None and v.size > 1 and not (v == v.reshape(-1)[0]).all() for v in (vmin, vmax))


def colorize(
    x: ArrayLike,
    cmap="viridis",
    vmin: ArrayLike | None = None,
    vmax: ArrayLike | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
    axis: Axis = None,
    method: Method = "approx",
    center: float | None = None,
    stretch: str | float = "linear",
    nan=(0, 0, 0),
    compat: Literal["matplotlib"] | None = None,
    out: NDArray[np.uint8] | None = None,
    max_memory: int | str = DEFAULT_MEMORY,
) -> NDArray[np.uint8]:
    """Map a float (or integer/bool) array to RGB or RGBA colours through a colormap.

    The colour of an element is ``table[level]``, where ``level`` is the grey level :func:`to_uint8` gives it
    with the same limits (so ``colorize(x, "gray")`` equals ``to_uint8(x)`` in every channel), and ``table`` the
    colormap's 256 colours rounded to bytes. Made in the same pass as the levels, with no temporary the size
    of the input.

    Parameters
    ----------
    x : array_like
        As for :func:`to_uint8`.
    cmap : str, array_like or colormap object
        A shipped colormap: ``"gray"``, ``"viridis"``, ``"magma"``, ``"inferno"``, ``"plasma"``, ``"cividis"``,
        ``"turbo"``, ``"RdBu"`` (diverging) or ``"voc"`` (the PASCAL VOC label colours); a (256, 3) or (256, 4)
        table, uint8 or floats in [0, 1]; a matplotlib ``Colormap`` with 256 colours, or a ``cmap`` package
        ``Colormap`` (used through their own methods; neither package is imported). An object whose colours are
        all opaque gives RGB.
    vmin, vmax, percentiles, axis, method, center, stretch, max_memory
        The limits and the stretch, as for :func:`to_uint8`: the colour of an element is that of its level.
    nan : tuple of int
        Colour of NaN elements, and of every element of a slice without finite values when limits are
        data-derived: 3 ints (RGB) or 4 (RGBA) in 0..255.
    compat : {None, "matplotlib"}
        ``"matplotlib"``: the same bytes as ``matplotlib.colormaps[cmap](Normalize(lo, hi)(x),
        bytes=True)[..., :3]`` with the limits ``(lo, hi) = limits(x, ...)``: matplotlib's index
        ``floor(t * 256)`` computed in the data's float type, and its truncated colour bytes. It runs matplotlib's
        arithmetic in NumPy, slab by slab (not the fused pass). Linear stretch only (any limits, `center`
        included: matplotlib's ``CenteredNorm`` gives the same limits).
    out : numpy.ndarray or array-like, optional
        uint8 array of shape ``x.shape + (C,)`` to write into.

    Returns
    -------
    numpy.ndarray
        uint8 of shape ``x.shape + (3,)``, or ``x.shape + (4,)`` exactly when `nan` has 4 components or the
        colormap has alpha (the other side is then opaque: alpha 255). Never decided by the data.

    Raises
    ------
    TypeError
        As for :func:`to_uint8`; a `cmap` or `nan` of a type not accepted.
    ValueError
        As for :func:`to_uint8`; an unknown colormap name or `compat`, a table of the wrong shape or range,
        `nan` with other than 3 or 4 components or outside 0..255, `out` of the wrong shape.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> fastquant.colorize(np.array([0.0, 0.5, 1.0, np.nan]), "viridis").tolist()
    [[68, 1, 84], [33, 145, 140], [253, 231, 37], [0, 0, 0]]
    """
    x = _validate.data(x)
    axes = _validate.limit_axes(axis, x.shape, vmin, vmax)
    vmin, vmax, percentiles = _validate.check_limits(vmin, vmax, percentiles, x.shape, axes)
    _validate.check_method(method)
    rule = Rule(255, _colormaps.check_stretch_compat(stretch, compat), _validate.check_center(center))
    table = _colormaps.lookup_table(_colormaps.colour_table(cmap, compat), _colormaps.check_nan_colour(nan))
    shape = tuple(x.shape) + (table.shape[1],)
    _validate.check_out(out, shape, "the input's shape plus (3,) or (4,)")
    max_memory = _validate.check_memory(max_memory)
    from . import _colour

    if compat is not None:
        lo, hi = limits(
            x, vmin, vmax, percentiles=percentiles, axis=axes, method=method, center=rule.center, max_memory=max_memory
        )
        return _colour.colours_matplotlib(x, lo, hi, table, out)
    plan = make_plan(x.shape, axes, _grouped(vmin, vmax, percentiles))
    blockwise = not isinstance(x, np.ndarray) or (out is not None and not isinstance(out, np.ndarray))
    if plan.path == "numpy":
        colours = _colour.colours_numpy(np.asarray(x[...]), vmin, vmax, percentiles, axes, table, rule)
        if out is None:
            return colours
        out[...] = colours
        return out
    from . import _engine

    if blockwise:
        return _engine.to_uint8_blocks(
            x, plan, block_elements(x.dtype, max_memory), storage_chunks(x), vmin, vmax, percentiles, method, 0, out,
            table, rule,
        )  # fmt: skip
    return _engine.to_uint8(x, plan, vmin, vmax, percentiles, method, 0, out, table, rule)


def labels(
    scores: ArrayLike, *, channel_axis: int = 0, threshold: float | None = None, ignore: int | None = None
) -> NDArray[np.unsignedinteger]:
    """The class of the largest score per pixel: a fused argmax over the class axis, in one pass.

    Parameters
    ----------
    scores : array_like
        Class scores (logits, probabilities), bool, integer or float, any layout: e.g. C×H×W with
        ``channel_axis=0``, H×W×C with ``channel_axis=-1``, N×C×H×W with ``channel_axis=1``.
    channel_axis : int
        The class axis (1 to 65535 classes).
    threshold : float, optional
        A pixel whose largest score is below this gets `ignore`.
    ignore : int, optional
        The label of pixels whose scores are all NaN or below `threshold`; default the dtype's maximum (255 or
        65535). It must not be a class index.

    Returns
    -------
    numpy.ndarray
        ``scores``' shape without the class axis; uint8 for up to 255 classes, else uint16. Ties go to the lowest
        class (as ``numpy.argmax``); NaN scores never win.

    Raises
    ------
    TypeError
        Scores of an unsupported dtype; a non-int `channel_axis` or `ignore`; a `threshold` that is not a number.
    ValueError
        0-d scores, an axis out of range, no classes or more than 65535, a non-finite `threshold`, an `ignore` that
        could be a class index or does not fit the dtype.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> scores = np.array([[0.1, np.nan, 0.2], [0.7, np.nan, 0.2], [0.2, np.nan, 0.05]])  # 3 classes x 3 pixels
    >>> fastquant.labels(scores, channel_axis=0).tolist()
    [1, 255, 0]
    >>> fastquant.labels(scores, channel_axis=0, threshold=0.5).tolist()
    [1, 255, 255]
    """
    x = _validate.real_array(scores)
    axis, dtype, threshold, ignore = _validate.check_labels(x.shape, channel_axis, threshold, ignore)
    from . import _segmentation

    return _segmentation.labels(x, axis, dtype, threshold, ignore)

"""``fastquant.save``: quantize with :func:`fastquant.to_uint8`, write an 8-bit image: PNG with fastquant's own
writer (:mod:`fastquant._png`), every other format with Pillow.

Everything that can be checked without touching the destination is checked first (shape, format,
whether the format can hold the image, the conversion options), so that a rejected call never
creates, truncates or partially writes a file.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike

# Options consumed by to_uint8; everything else goes to the image writer. `out` is included so
# that it is never handed to Pillow, which silently ignores options it does not know.
TO_UINT8_OPTIONS = frozenset({"vmin", "vmax", "percentiles", "axis", "method", "center", "stretch", "nan", "out"})
# With `cmap`, the conversion is fastquant.colorize (its `nan` is then a colour) and a 2-D map becomes RGB(A).
COLOUR_OPTIONS = frozenset({"cmap", "compat"})
# The options of fastquant's PNG writer; any other (Pillow's optimize, dpi, pnginfo, ...) is refused, not ignored.
PNG_OPTIONS = frozenset({"format", "compress_level"})
ACCEPTED_PNG_OPTIONS = "format and compress_level (0-9, default 1)"

ACCEPTED_SHAPES = "(H, W) or (H, W, 1) -> 'L', (H, W, 3) -> 'RGB', (H, W, 4) -> 'RGBA'"
_MODE_BY_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}

# Pillow formats known to store all three modes exactly: no trial encode needed (which would import
# Pillow's other plugins).
_HOLDS_ALL_MODES = frozenset({"TIFF"})

# Combinations Pillow writes without an error but not as the image we were given: it silently
# converts the mode, so reading the file back gives other pixels or fewer channels.
_SILENT_CONVERSIONS = {
    ("GIF", "RGB"): "GIF quantizes colour images to a 256-colour palette",
    ("GIF", "RGBA"): "GIF quantizes colour images to a 256-colour palette",
    ("BMP", "RGBA"): "Pillow writes RGBA BMP as 32-bit BI_RGB, whose 4th byte readers ignore",
    ("DIB", "RGBA"): "Pillow writes RGBA DIB as 32-bit BI_RGB, whose 4th byte readers ignore",
    ("PPM", "RGBA"): "PPM has no alpha channel (Pillow drops it)",
    ("SPIDER", "RGB"): "SPIDER holds a single float channel",
    ("SPIDER", "RGBA"): "SPIDER holds a single float channel",
}


def save(path: str | os.PathLike[str] | IO[bytes], x: ArrayLike, **options: Any) -> None:
    """Quantize `x` to 8 bits with :func:`fastquant.to_uint8` and write it as an image.

    PNG is written by fastquant's own writer (:func:`fastquant._png.write_png`: Up-filtered rows,
    ISA-L deflate; on 2048² prediction maps about 10x as fast as Pillow's at ``compress_level=1``,
    with files a few % smaller); every other format by Pillow.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Destination. For a path, the format comes from ``format=`` or else from the extension
        (``.png``, or any format Pillow can write: ``.tif``/``.tiff``, ...). For a file object
        (opened in binary mode, with ``write``; Pillow's formats also need ``seek`` and ``tell``),
        from ``format=`` or else from the extension of its ``name``.
    x : array_like
        The data, of any dtype :func:`fastquant.to_uint8` accepts. Its shape selects the image mode:

        - ``(H, W)`` or ``(H, W, 1)`` → ``"L"`` (grey),
        - ``(H, W, 3)`` → ``"RGB"``,
        - ``(H, W, 4)`` → ``"RGBA"``.

        ``H`` and ``W`` must be at least 1.
    **options
        ``palette`` (and ``ignore``): save labels (:func:`fastquant.labels`) as PNG: uint8 as a palette
        image ('P') with the colours ``"voc"`` or a (K, 3) uint8 array, and index `ignore` transparent (default
        255 for a palette of 256 colours, else none; None: none); uint16 as 16-bit grey.
        ``cmap`` (and ``compat``): colour a 2-D map with :func:`fastquant.colorize` (then ``nan`` is a
        colour, and the image RGB, or RGBA when the colormap or ``nan`` has alpha).
        ``bits``: 8 (default) or 16. ``bits=16`` quantizes with :func:`fastquant.to_uint16` and writes 16-bit
        grey, RGB or RGBA as PNG (fastquant's writer) or TIFF (tifffile, the ``tiff`` extra); it is
        fastquant's option and never passed to Pillow.
        ``vmin``, ``vmax``, ``percentiles``, ``axis``, ``method``, ``center``, ``stretch``, ``nan`` and ``out`` go
        to :func:`fastquant.to_uint8`, with the same meaning: every channel, alpha included,
        follows the same rule, and limits are shared by all channels unless ``axis=(0, 1)`` asks
        for limits per channel. ``format`` names the image format. For PNG, the one other option
        is ``compress_level``: 0-9 as in zlib, default 1 (0 stored, 1-3 ISA-L's levels, or zlib's
        where ``isal`` is not installed, 4-9 zlib's). For the other formats, all other options
        (``compression`` for TIFF, ``quality`` for JPEG, ``dpi``, ...) go to
        :meth:`PIL.Image.Image.save` unchanged. ``method`` is always the conversion method, so
        WebP's own ``method`` option cannot be passed.

    Raises
    ------
    ValueError
        If the shape is not one of the accepted ones or has an empty side; if the format cannot
        be determined (unknown extension, or a file object without ``format=`` or a name); if
        Pillow cannot write the format, or the format cannot hold the image's mode (for example
        RGBA as JPEG, or colour as GIF, which would quantize it to a palette); for a PNG option
        other than ``format`` and ``compress_level`` (Pillow's ``optimize``, ``dpi``,
        ``pnginfo``, ...: named in the message) or a ``compress_level`` outside 0-9; or for any
        invalid conversion option (see :func:`fastquant.to_uint8`).
    TypeError
        If `path` is neither a path nor a binary file object, if ``format`` is not a str, if a
        PNG ``compress_level`` is not an int, or for input :func:`fastquant.to_uint8` rejects
        with TypeError.

    Notes
    -----
    All of the checks above run before the destination is opened, so a rejected call leaves no
    file behind and an existing file untouched. If the writer itself fails later (an I/O error,
    or for Pillow's formats an invalid writer option), a file the call created is removed; a
    file that existed before may have been overwritten. Lossy formats (JPEG, WebP, AVIF)
    compress as they always do; use PNG or TIFF for exact pixels. Saving a PNG loads neither
    Pillow nor, below 2**20 samples (to_uint8's threshold too), numba.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> prob = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    >>> fastquant.save("prob.png", prob)  # doctest: +SKIP
    >>> rgb = np.random.default_rng(0).standard_normal((64, 64, 3))
    >>> fastquant.save("rgb.png", rgb, percentiles=(5, 95), axis=(0, 1))  # doctest: +SKIP
    """
    # Lazy imports: _api imports the package, which imports this module; and PIL.Image costs
    # 20-30 ms that `import fastquant` (and a PNG save) must not pay.
    from ._api import colorize, to_uint8

    if "palette" in options:
        _save_labels(path, x, options)
        return
    bits = _bits(options.pop("bits", 8))
    convert = {key: options.pop(key) for key in (TO_UINT8_OPTIONS | COLOUR_OPTIONS) & options.keys()}
    writer_options = options
    if bits == 16:
        _save_16(path, x, convert, writer_options)
        return

    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    coloured = "cmap" in convert
    if "compat" in convert and not coloured:
        raise ValueError("compat= applies to colour maps only; accepted: together with cmap=")
    if coloured and arr.ndim != 2:
        raise ValueError(f"cmap= needs a 2-D map, got shape {arr.shape}; accepted: (H, W)")
    mode = _mode_for_shape(arr.shape)
    fmt = _resolve_format(path, writer_options.get("format"))
    if fmt == "PNG":
        compress_level = _png_compress_level(writer_options)
    elif not coloured:
        _check_format_holds(fmt, mode, arr.shape)

    levels = colorize(arr, **convert) if coloured else to_uint8(arr, **convert)
    if coloured and fmt != "PNG":  # the colours' mode (RGB or RGBA) is known now, before the file is touched
        _check_format_holds(fmt, _mode_for_shape(levels.shape), levels.shape)
    if levels.ndim == 3 and levels.shape[2] == 1:
        # A view: to_uint8's result is C-contiguous (an `out` that is not gets copied, correctly).
        levels = levels.reshape(levels.shape[:2])
    if fmt == "PNG":
        _save_png(path, levels, compress_level)
        return

    from PIL import Image

    # fromarray infers L/RGB/RGBA from a uint8 (H, W[, C]) array (no mode=: deprecated in Pillow
    # 11.3, kept since 12 only to reinterpret data). It maps an L or RGBA C-contiguous buffer
    # without a copy; RGB is unpacked once, as Pillow stores it with 4 bytes per pixel.
    image = Image.fromarray(levels)
    image.save(path, **writer_options)


def _bits(bits) -> int:
    from ._validate import integer

    value = integer(bits, "bits", "8 or 16")
    if value not in (8, 16):
        raise ValueError(f"bits={bits!r} is not accepted; accepted: 8 or 16")
    return value


def _save_16(path, x, convert: dict[str, Any], writer_options: dict[str, Any]) -> None:
    """save(..., bits=16): to_uint16 levels as a 16-bit PNG (fastquant's writer) or TIFF (tifffile)."""
    from ._api import to_uint16

    if convert.keys() & COLOUR_OPTIONS:
        raise ValueError("bits=16 writes levels, and colormaps are 8-bit; accepted: cmap= with bits=8")
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    _mode_for_shape(arr.shape)
    fmt = _resolve_format(path, writer_options.get("format"))
    if fmt not in ("PNG", "TIFF"):
        raise ValueError(f"bits=16 is written as PNG or TIFF, not {fmt}; accepted: a .png or .tif path")
    if fmt == "PNG":
        compress_level = _png_compress_level(writer_options)
    else:
        unknown = sorted(writer_options.keys() - {"format"})
        if unknown:
            raise ValueError(
                f"option(s) {', '.join(map(repr, unknown))} not supported for 16-bit TIFF (written by tifffile, "
                "uncompressed); accepted: format"
            )
        from ._outputs import _extra

        tifffile = _extra("tifffile", "tiff")
    levels = to_uint16(arr, **convert)
    if levels.ndim == 3 and levels.shape[2] == 1:
        levels = levels.reshape(levels.shape[:2])
    if fmt == "PNG":
        from ._png import write_png16

        _write_file(path, lambda file: write_png16(file, levels, compress_level=compress_level))
        return
    photometric = "minisblack" if levels.ndim == 2 else "rgb"
    extra = {} if levels.ndim == 2 or levels.shape[2] == 3 else {"extrasamples": ["unassalpha"]}
    _write_file(path, lambda file: tifffile.imwrite(file, levels, photometric=photometric, **extra))


def _save_labels(path, x, options: dict[str, Any]) -> None:
    """save(path, labels, palette=..., ignore=255): uint8 labels as a palette PNG ('P', `ignore` transparent),
    uint16 labels as a 16-bit grey PNG."""
    from ._colormaps import palette_table
    from ._png import write_indexed_png, write_png16

    palette, ignore = options.pop("palette"), options.pop("ignore", "default")
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(
            f"palette= saves labels; got dtype {arr.dtype} and shape {arr.shape}; accepted: (H, W) uint8 (a palette "
            "PNG) or uint16 (16-bit grey), as fastquant.labels returns"
        )
    if _resolve_format(path, options.get("format")) != "PNG":
        raise ValueError("palette= is written as PNG only; accepted: a .png path or format='PNG'")
    compress_level = _png_compress_level(options)
    table = palette_table(palette)
    if isinstance(ignore, str) and ignore == "default":  # 255 (labels' default ignore) where the palette has it
        ignore = 255 if len(table) == 256 else None
    if arr.dtype == np.uint16:
        write = lambda file: write_png16(file, arr, compress_level=compress_level)  # noqa: E731
    else:
        if ignore is not None and not (isinstance(ignore, (int, np.integer)) and 0 <= ignore < len(table)):
            raise ValueError(f"ignore={ignore!r} is not a palette index; accepted: None or 0..{len(table) - 1}")
        if int(arr.max()) >= len(table):
            raise ValueError(f"labels go up to {int(arr.max())}, beyond the palette's {len(table)} colours")
        transparent = None if ignore is None else int(ignore)
        write = lambda file: write_indexed_png(  # noqa: E731
            file, arr, table, transparent=transparent, compress_level=compress_level
        )
    _write_file(path, write)


def _write_file(path, write) -> None:
    """write(file) to a path (a file this call creates is removed if writing fails) or a file object."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        write(path)
        return
    created = not os.path.exists(path)
    try:
        with open(path, "wb") as file:
            write(file)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.remove(path)
        raise


def _png_compress_level(options: dict[str, Any]) -> int:
    """The checked ``compress_level`` of a PNG save; ValueError for options the PNG writer lacks."""
    from ._png import check_compress_level

    unknown = sorted(options.keys() - PNG_OPTIONS)
    if unknown:
        raise ValueError(
            f"PNG option(s) {', '.join(map(repr, unknown))} not supported (fastquant writes PNG itself); "
            f"accepted for PNG: {ACCEPTED_PNG_OPTIONS}"
        )
    return check_compress_level(options.get("compress_level", 1))


def _save_png(path, levels: np.ndarray, compress_level: int) -> None:
    """Write `levels` with fastquant's PNG writer; a file this call creates is removed if writing fails."""
    from ._png import write_png

    _write_file(path, lambda file: write_png(file, levels, compress_level=compress_level))


def _mode_for_shape(shape: tuple[int, ...]) -> str:
    mode = None
    if len(shape) == 2:
        mode = "L"
    elif len(shape) == 3:
        mode = _MODE_BY_CHANNELS.get(shape[2])
    if mode is None:
        raise ValueError(f"x has shape {shape}; accepted: {ACCEPTED_SHAPES}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"x has shape {shape}, an empty image; accepted: H >= 1 and W >= 1")
    return mode


def _resolve_format(path, format_option) -> str:
    """The upper-case Pillow format name `path` will be written in; ValueError if there is none.

    PNG, written by fastquant itself, is recognized without loading Pillow."""
    if isinstance(path, (str, bytes, os.PathLike)):
        name = path
    elif hasattr(path, "write"):
        if isinstance(path, io.TextIOBase):
            raise TypeError("path is a text-mode file object; open the file in binary mode ('wb')")
        name = getattr(path, "name", None)
        # os.fdopen gives an int name; it says nothing about the format.
        name = name if isinstance(name, (str, bytes, os.PathLike)) else None
        if format_option is None and name is None:
            raise ValueError(
                "cannot tell the image format of a file object without a name; pass format=, e.g. format='PNG'"
            )
    else:
        raise TypeError(f"path must be a str, os.PathLike or binary file object, got {type(path).__name__}")

    if format_option is not None:
        if not isinstance(format_option, str):
            raise TypeError(f"format={format_option!r} must be a str such as 'PNG' or 'TIFF'")
        fmt = format_option.upper()
        if fmt == "PNG":
            return fmt
        from PIL import Image

        Image.preinit()  # Image.save calls it too whenever format= is given
        if fmt not in Image.SAVE:
            Image.init()
        if fmt not in Image.SAVE:
            if fmt in Image.OPEN:
                raise ValueError(f"format={format_option!r}: Pillow can read {fmt} but not write it")
            raise ValueError(f"format={format_option!r} is not an image format Pillow knows")
        return fmt

    ext = os.path.splitext(os.fsdecode(name))[1].lower()
    if not ext:
        raise ValueError(
            f"cannot tell the image format of {os.fsdecode(name)!r}: it has no extension; "
            "add one (.png, .tif, ...) or pass format="
        )
    if ext == ".png":
        return "PNG"
    fmt = _format_for_extension(ext)
    if fmt is None:
        raise ValueError(
            f"unknown image file extension {ext!r}; use one Pillow knows (.png, .tif, ...) or pass format="
        )
    from PIL import Image

    if fmt not in Image.SAVE:
        raise ValueError(f"extension {ext!r} means {fmt}, which Pillow can read but not write")
    return fmt


def _format_for_extension(ext: str) -> str | None:
    from PIL import Image

    # Import only the plugin the extension needs, as Image.save does (a full Image.init() imports
    # every plugin: tens of ms in a one-shot script). The helper is private: fall back to init().
    import_one = getattr(Image, "_import_plugin_for_extension", None)
    if ext not in Image.EXTENSION and import_one is not None:
        import_one(ext)
    if ext not in Image.EXTENSION:
        Image.init()
    return Image.EXTENSION.get(ext)


def _check_format_holds(fmt: str, mode: str, shape: tuple[int, ...]) -> None:
    """ValueError if `fmt` cannot hold a `mode` image; decided without writing the destination."""
    from PIL import Image

    if fmt in _HOLDS_ALL_MODES:
        return
    reason = _SILENT_CONVERSIONS.get((fmt, mode))
    if reason is None:
        # Pillow has no query for "can format F store mode M"; encoding one pixel in memory asks.
        try:
            Image.new(mode, (1, 1)).save(io.BytesIO(), format=fmt)
        except Exception as exc:  # any failure means the writer rejects this mode
            reason = f"Pillow's {fmt} writer rejects it ({type(exc).__name__}: {exc})"
    if reason is not None:
        raise ValueError(
            f"format {fmt} cannot hold a {mode} image (x of shape {shape}): {reason}; "
            "PNG and TIFF hold L, RGB and RGBA exactly"
        )

"""Arithmetic of the level function that the specification and the fast paths share.

Neither side is the other's library: :mod:`fastquant.reference` and the engine both import these few lines, so
a change here changes both, and ``tests/test_semantics.py`` checks them against hand-derived values.
"""

from __future__ import annotations

import numpy as np

# Below this span, 255 / (hi - lo) would exceed the float64 maximum: the span is then rescaled.
MIN_PLAIN_SPAN = 2.0**-1013
# Rescaled spans are brought near 1 by at most this power of two (2**1000 keeps lo * factor finite).
MAX_RESCALE_EXPONENT = 1000
# A span that overflows to inf (|lo|, |hi| near the float64 maximum) is rescaled by 2**-2.
OVERFLOW_EXPONENT = -2


def plain_span(lo, hi) -> np.ndarray:
    """Whether 255 / (hi - lo) is a normal float64, so the level formula needs no rescaling (factor 1)."""
    with np.errstate(all="ignore"):
        span = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
        return np.isfinite(span) & (span >= MIN_PLAIN_SPAN)


def scale_terms(lo, hi):
    """(factor, lo * factor, 255 / (hi * factor - lo * factor)) for the level formula.

    factor is 1 for every range whose 255 / (hi - lo) is a normal float64 (then this is the plain formula, bit
    for bit); otherwise a power of two that brings hi - lo near 1, so the levels stay fractions of the range.
    A span that overflows float64 (finite limits of opposite signs near the maximum) is quartered; a range that
    is not positive (lo == hi, or undefined) keeps factor 1.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    with np.errstate(all="ignore"):
        span = hi - lo
        plain = np.isfinite(span) & (span >= MIN_PLAIN_SPAN)
        if plain.all():  # every range ordinary: factor 1 (the same values as below, without the rescaling terms)
            # x * 1.0 is x exactly (-0.0 and inf included), so hi * 1.0 - lo * 1.0 is the span itself
            return np.ones_like(span), lo * 1.0, 255.0 / span
        finite_positive = np.isfinite(span) & (span > 0)
        exponent = np.where(finite_positive, np.minimum(-np.frexp(span)[1], MAX_RESCALE_EXPONENT), OVERFLOW_EXPONENT)
        factor = np.where(plain | ~(span > 0), 1.0, np.ldexp(1.0, exponent))
        lo_scaled = lo * factor
        scale = 255.0 / (hi * factor - lo_scaled)
    return factor, lo_scaled, scale


def matplotlib_index(x: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """(index, bad) of matplotlib's ``cmap(Normalize(lo, hi)(x))``, step for step, for limits `lo` and `hi`
    that broadcast against `x` (float64; one value per slice).

    matplotlib >= 3.8 (``Normalize.__call__``, ``Colormap._get_rgba_and_mask``) computes ``t`` in the data's
    float type (float16/32/64 kept; bool and integers of up to 2 bytes as float32, wider ones as float64):
    ``t -= vmin; t /= vmax - vmin`` with float64 limits (the arithmetic in float64, rounded to the data's type),
    or ``t = 0`` everywhere, NaN included, when ``vmin == vmax``. Then ``t *= 256``, with 256 itself moved to
    255; below 0 is "under" (colour 0), 256 and above "over" (255), NaN "bad"; the rest truncates to int.
    Returns int64 indexes in 0..255 (0 where bad) and the bad mask.
    """
    dtype = x.dtype if x.dtype.kind == "f" else np.promote_types(x.dtype, np.float32)
    t = np.array(x, dtype=dtype.newbyteorder("="))  # a copy, as matplotlib's process_value makes
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    with np.errstate(all="ignore"):
        t -= lo
        t /= hi - lo
        t = np.where(lo == hi, t.dtype.type(0), t)
        t *= 256
    t[t == 256] = 255
    bad = np.isnan(t)
    index = np.zeros(t.shape, dtype=np.int64)
    ordinary = (t >= 0) & (t < 256)
    index[ordinary] = t[ordinary].astype(np.int64)
    index[t >= 256] = 255
    return index, bad

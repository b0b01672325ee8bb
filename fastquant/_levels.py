"""Arithmetic of the level function that the specification and the fast paths share.

Neither side is the other's library: :mod:`fastquant.reference` and the engine both import these few lines, so
a change here changes both, and ``tests/test_semantics.py`` checks them against hand-derived values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Below this span, 255 / (hi - lo) would exceed the float64 maximum: the span is then rescaled.
MIN_PLAIN_SPAN = 2.0**-1013
# The same for 65535 / (hi - lo) (16-bit levels): 65535 < 2**9 * 255.
MIN_PLAIN_SPAN_16 = 2.0**-1004
# Rescaled spans are brought near 1 by at most this power of two (2**1000 keeps lo * factor finite).
MAX_RESCALE_EXPONENT = 1000
# A span that overflows to inf (|lo|, |hi| near the float64 maximum) is rescaled by 2**-2.
OVERFLOW_EXPONENT = -2


def _min_plain_span(top: int) -> float:
    return MIN_PLAIN_SPAN if top == 255 else MIN_PLAIN_SPAN_16


def plain_span(lo, hi, top: int = 255) -> np.ndarray:
    """Whether top / (hi - lo) is a normal float64, so the level formula needs no rescaling (factor 1)."""
    with np.errstate(all="ignore"):
        span = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
        return np.isfinite(span) & (span >= _min_plain_span(top))


def scale_terms(lo, hi, top: int = 255):
    """(factor, lo * factor, top / (hi * factor - lo * factor)) for the level formula (`top`: 255 for uint8
    levels, 65535 for uint16).

    factor is 1 for every range whose top / (hi - lo) is a normal float64 (then this is the plain formula, bit
    for bit); otherwise a power of two that brings hi - lo near 1, so the levels stay fractions of the range.
    A span that overflows float64 (finite limits of opposite signs near the maximum) is quartered; a range that
    is not positive (lo == hi, or undefined) keeps factor 1.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    with np.errstate(all="ignore"):
        span = hi - lo
        plain = np.isfinite(span) & (span >= _min_plain_span(top))
        if plain.all():  # every range ordinary: factor 1 (the same values as below, without the rescaling terms)
            # x * 1.0 is x exactly (-0.0 and inf included), so hi * 1.0 - lo * 1.0 is the span itself
            return np.ones_like(span), lo * 1.0, float(top) / span
        finite_positive = np.isfinite(span) & (span > 0)
        exponent = np.where(finite_positive, np.minimum(-np.frexp(span)[1], MAX_RESCALE_EXPONENT), OVERFLOW_EXPONENT)
        factor = np.where(plain | ~(span > 0), 1.0, np.ldexp(1.0, exponent))
        lo_scaled = lo * factor
        scale = float(top) / (hi * factor - lo_scaled)
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


@dataclasses.dataclass(frozen=True)
class Rule:
    """How limits become levels: `top` 255 (uint8) or 65535 (uint16), the `stretch`, and the `center` the limits
    are made symmetric about (None: as they are)."""

    top: int = 255
    stretch: str | float = "linear"
    center: float | None = None

    @property
    def fused(self) -> bool:
        """Whether the fused 8-bit linear kernels (and the approx proof, made for their ±1 level) apply."""
        return self.top == 255 and self.stretch == "linear"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.top == 255 else np.uint16)


DEFAULT_RULE = Rule()  # 8-bit linear levels, limits as they are


# --- centre and stretch -----------------------------------------------------------------------------------------

STRETCHES = ("linear", "sqrt", "log", "asinh")
LOG_A = 1000.0  # astropy's LogStretch default: log(a * t + 1) / log(a + 1)
ASINH_A = 0.1  # astropy's AsinhStretch default: asinh(t / a) / asinh(1 / a)
_FLOAT_MAX = float(np.finfo(np.float64).max)


def centred(lo, hi, center: float | None):
    """Limits symmetric about `center`: ``center -+ h`` with ``h = max(center - lo, hi - center)``, the larger
    distance from the centre to the two limits (NaN limits stay NaN; the result is kept within the float64 range).
    None: the limits unchanged."""
    if center is None:
        return lo, hi
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    with np.errstate(all="ignore"):
        h = np.maximum(center - lo, hi - center)
        return np.maximum(center - h, -_FLOAT_MAX), np.minimum(center + h, _FLOAT_MAX)


def stretch_inverse(stretch: str | float, u: np.ndarray) -> np.ndarray:
    """S^-1(u) for u in [0, 1], float64: the fraction t of the range at which the stretch reaches u."""
    if stretch == "sqrt":  # S(t) = sqrt(t)
        return u * u
    if stretch == "log":  # S(t) = log(a t + 1) / log(a + 1)
        return np.expm1(u * np.log1p(LOG_A)) / LOG_A
    if stretch == "asinh":  # S(t) = asinh(t / a) / asinh(1 / a)
        return ASINH_A * np.sinh(u * np.arcsinh(1.0 / ASINH_A))
    return u ** (1.0 / float(stretch))  # gamma: S(t) = t ** gamma


def thresholds(lo, hi, stretch: str | float, top: int = 255) -> np.ndarray:
    """The `top` level thresholds of a non-linear stretch, float64 of shape ``lo.shape + (top,)``: entry k - 1 is
    ``x_k = lo + S^-1((k - 0.5) / top) * (hi - lo)``, and a value's level is the number of thresholds ``<= x``
    (between the limits). Non-decreasing in k (monotone arithmetic). A span that overflows float64 takes the
    equal form ``lo * (1 - s) + hi * s``."""
    lo = np.asarray(lo, dtype=np.float64)[..., None]
    hi = np.asarray(hi, dtype=np.float64)[..., None]
    s = stretch_inverse(stretch, (np.arange(1, top + 1, dtype=np.float64) - 0.5) / top)
    with np.errstate(all="ignore"):
        span = hi - lo
        return np.where(np.isfinite(span), lo + s * span, lo * (1.0 - s) + hi * s)

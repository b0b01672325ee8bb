"""Make the README gallery: docs/gallery/*.png, from synthetic data that looks like real network outputs.

Run from the repository root: ``python tools/make_gallery.py`` (or ``main(out_dir)`` to write elsewhere). Pure
NumPy and seeded; each picture is made by one line of fastquant code, the line the README shows next to it
(tests/test_gallery.py checks that the committed pictures are what this script makes).

The data: a 256×256 RGB "input" of a few blobby objects of three kinds on a textured background; the network's
4-class softmax scores for it (background + the three kinds, smooth and a little wrong near the boundaries), from
which come the foreground probability and the labels; a signed attribution map for class 1 (positive on class-1
objects, negative on the others, speckled); 16 ReLU feature maps at 1/4 resolution (oriented edges, colour
opponents, blobs at two scales, object parts, texture energy); and a separate 4-channel fluorescence-like image of
cells (actin, cytoplasm, nuclei, foci).

Every float array is rounded to a multiple of 2**-12 before it is converted, so that last-bit differences of
exp/FFT between machines (SIMD code paths) practically never move a grey level: the same NumPy random streams and
PNG compressor (ISA-L, fastquant's default) give the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import fastquant

SIZE = 256
SEED = 20240607
ROOT = Path(__file__).resolve().parent.parent
PICTURES = ("probability.png", "saliency.png", "features.png", "composite.png", "labels.png", "overlay.png")


# --- NumPy helpers ----------------------------------------------------------------------------------------------


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the last two axes (FFT, reflect-padded by 3 sigma so the borders do not wrap)."""
    pad = int(np.ceil(3 * sigma)) + 1
    widths = [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)]
    padded = np.pad(x, widths, mode="reflect")
    h, w = padded.shape[-2:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    transfer = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
    out = np.fft.irfft2(np.fft.rfft2(padded) * transfer, s=(h, w))
    return out[..., pad:-pad, pad:-pad]


def smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Gaussian noise blurred by `sigma`, rescaled to unit standard deviation."""
    n = blur(rng.standard_normal(shape), sigma)
    return n / n.std()


def fractal(rng: np.random.Generator, shape, sigmas=(24, 10, 4, 1.5), decay=0.55) -> np.ndarray:
    """A textured field: smooth noise at several scales, coarse first, unit standard deviation."""
    total = sum(decay**i * smooth_noise(rng, shape, s) for i, s in enumerate(sigmas))
    return total / total.std()


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def softmax(x: np.ndarray, axis: int = 0) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def pool(x: np.ndarray, k: int) -> np.ndarray:
    """k×k average pooling of the last two axes (a strided layer's resolution)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // k, k, w // k, k).mean(axis=(-3, -1))


def quantized(x: np.ndarray) -> np.ndarray:
    """`x` as float32 multiples of 2**-12 (see the module docstring)."""
    return (np.rint(x * 4096) / 4096).astype(np.float32)


def blobs(rng: np.random.Generator, centres, radii, wobble: float = 0.18, size: int = SIZE) -> np.ndarray:
    """Soft masks (n, size, size) of ellipses with wobbly boundaries (a few low angular harmonics)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    masks = []
    for (cy, cx), (ry, rx) in zip(centres, radii, strict=True):
        theta0 = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta0) + dy * np.sin(theta0)
        v = -dx * np.sin(theta0) + dy * np.cos(theta0)
        r = np.hypot(u / rx, v / ry)
        phi = np.arctan2(v, u)
        edge = 1.0
        for k in (2, 3, 5):
            edge = edge + wobble / k * rng.standard_normal() * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        masks.append(sigmoid((edge - r) * 30))
    return np.array(masks)


def gabor(x: np.ndarray, theta: float, wavelength: float, sigma: float) -> np.ndarray:
    """Odd (edge-detecting) Gabor filter response of a 2-D array, by FFT with reflect padding."""
    pad = int(3 * sigma) + 1
    padded = np.pad(x, pad, mode="reflect")
    h, w = padded.shape
    half = int(3 * sigma)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    kernel = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.sin(2 * np.pi * u / wavelength)
    kernel -= kernel.mean()
    full = np.zeros((h, w))
    full[: 2 * half + 1, : 2 * half + 1] = kernel
    full = np.roll(full, (-half, -half), axis=(0, 1))
    out = np.fft.irfft2(np.fft.rfft2(padded) * np.fft.rfft2(full), s=(h, w))
    return out[pad:-pad, pad:-pad]


# --- the synthetic scene and the "network outputs" ----------------------------------------------------------------


def scene(rng: np.random.Generator):
    """(image float RGB in [0, 1], masks (3, H, W) of the three object kinds in [0, 1])."""
    centres = [(70, 64), (60, 180), (150, 120), (196, 52), (200, 200), (128, 222), (120, 30)]
    radii = [(38, 30), (30, 42), (34, 34), (26, 36), (36, 30), (18, 16), (16, 20)]
    kinds = [0, 1, 2, 1, 0, 2, 0]
    shapes = blobs(rng, centres, radii)
    masks = np.zeros((3, SIZE, SIZE))
    for kind, m in zip(kinds, shapes, strict=True):
        masks[kind] = np.maximum(masks[kind], m)
    texture = fractal(rng, (SIZE, SIZE))
    grain = smooth_noise(rng, (SIZE, SIZE), 0.8)
    any_object = masks.max(axis=0)
    shadow = np.roll(blur(any_object, 5), (5, 4), axis=(0, 1))  # light from the top left
    background = np.array([0.60, 0.61, 0.53])[:, None, None] * (1 + 0.15 * texture + 0.04 * grain) * (1 - 0.3 * shadow)
    colours = np.array([[0.56, 0.31, 0.27], [0.30, 0.37, 0.52], [0.86, 0.78, 0.56]])
    image = background
    for kind in range(3):
        height = blur(masks[kind], 7)
        gy, gx = np.gradient(height)
        light = 0.8 + 0.25 * height - 6.0 * (gy + gx) + 0.07 * smooth_noise(rng, (SIZE, SIZE), 1.5)
        obj = colours[kind][:, None, None] * light
        image = image * (1 - masks[kind]) + obj * masks[kind]
    image = blur(image, 0.7)
    return np.clip(image, 0, 1), masks


def network_outputs(rng: np.random.Generator, masks: np.ndarray):
    """(softmax scores (4, H, W): background + three kinds; signed attribution map for kind 1 (H, W))."""
    soft = blur(masks, 4)
    logits = np.empty((4, SIZE, SIZE))
    confidence = 1 + 0.3 * smooth_noise(rng, (SIZE, SIZE), 25)  # some objects are less certain than others
    inside = soft.sum(axis=0)
    logits[0] = 4.5 * (1 - inside) - 1.0
    logits[1:] = (4.5 * soft - 1.0) * confidence
    logits[1:] += 1.6 * inside * smooth_noise(rng, (3, SIZE, SIZE), 9)  # the kinds are confused here and there
    logits += 0.8 * smooth_noise(rng, (4, SIZE, SIZE), 6) + 0.3 * smooth_noise(rng, (4, SIZE, SIZE), 1.5)
    scores = softmax(logits)

    edges = np.hypot(*np.gradient(blur(masks, 2), axis=(1, 2))).sum(axis=0) * 6
    support = blur(masks[0], 4) * (0.5 + edges) - 0.8 * blur(masks[1] + masks[2], 4) * (0.4 + edges)
    near = 0.15 + blur(masks.sum(axis=0), 8)
    speckle = smooth_noise(rng, (SIZE, SIZE), 1.2)
    saliency = support * (1 + 0.6 * speckle) + 0.12 * near * smooth_noise(rng, (SIZE, SIZE), 1.0)
    return scores, saliency


def feature_maps(rng: np.random.Generator, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """16 ReLU feature maps (16, H/4, W/4) of the image."""
    gray = image.mean(axis=0)
    r, g, b = image
    maps = []
    for theta in np.linspace(0, np.pi, 4, endpoint=False):  # oriented edges, two polarities each
        resp = gabor(gray, theta, wavelength=14, sigma=4)
        maps.append(relu(resp))
        if len(maps) in (1, 3):
            maps.append(relu(-resp))
    maps.append(relu(blur(r - g, 2)))  # colour opponents
    maps.append(relu(blur(b - 0.5 * (r + g), 2)))
    maps.append(relu(blur(0.5 * (r + g) - b - 0.1, 2)))
    dog_small = blur(gray, 2) - blur(gray, 5)
    maps.append(relu(dog_small))  # blobs, two scales, on- and off-centre
    maps.append(relu(-dog_small))
    maps.append(relu(blur(gray, 6) - blur(gray, 16)))
    soft = blur(masks, 3)
    maps.append(relu(soft[0] - 0.3) * (1 + 0.5 * smooth_noise(rng, (SIZE, SIZE), 5)))  # object parts
    maps.append(relu(np.hypot(*np.gradient(soft[1])) * 8 - 0.05))
    energy = sum(gabor(gray, t, wavelength=4, sigma=1.5) ** 2 for t in (0, np.pi / 2))
    maps.append(blur(energy, 3))  # texture energy
    maps.append(relu(blur(soft[2] - soft[0], 4)))
    x = np.array(maps[:16])
    x = x / x.reshape(16, -1).max(axis=1)[:, None, None]
    x = relu(x + 0.03 * smooth_noise(rng, x.shape, 1.0))
    return pool(x, 4)


def cells(rng: np.random.Generator) -> np.ndarray:
    """A 4-channel fluorescence-like image (4, H, W): actin, cytoplasm, nuclei, foci (photon counts)."""
    n = 14
    centres = []
    while len(centres) < n:  # cells not too close to each other
        c = rng.uniform(24, SIZE - 24, size=2)
        if all(np.hypot(*(c - d)) > 52 for d in centres):
            centres.append(c)
    body = blobs(rng, centres, [rng.uniform(24, 32, size=2) for _ in range(n)], wobble=0.35)
    nuclei = blobs(rng, [c + rng.normal(0, 3, 2) for c in centres], [rng.uniform(9, 13, size=2) for _ in range(n)])
    cyto = body.max(axis=0)
    nuc = nuclei.max(axis=0)
    rim = np.hypot(*np.gradient(blur(body, 1.5), axis=(1, 2))).max(axis=0)
    fibres = relu(gabor(smooth_noise(rng, (SIZE, SIZE), 2), 0.6, wavelength=12, sigma=4)) * cyto
    spots = (rng.random((SIZE, SIZE)) < 0.004) * cyto * (1 - nuc)
    foci = blur(spots.astype(np.float64), 1.0) * 40
    expression = [rng.uniform(0.4, 1.0) for _ in range(n)]
    level = sum(e * m for e, m in zip(expression, body, strict=True))
    chromatin = 1 + 0.35 * smooth_noise(rng, (SIZE, SIZE), 1.5)
    channels = np.array(
        [
            4 * rim + 0.8 * fibres,
            level * (1 - 0.8 * nuc) * (0.8 + 0.2 * smooth_noise(rng, (SIZE, SIZE), 3)),
            nuc * chromatin,
            foci,
        ]
    )
    counts = rng.poisson(150 * blur(channels, 0.8).clip(0) + 6)
    return counts.astype(np.float64)


# --- the gallery ----------------------------------------------------------------------------------------------------


def main(out_dir: str | Path = ROOT / "docs" / "gallery") -> list[Path]:
    """Write the six pictures into `out_dir` (created if missing); return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rgb, masks = scene(rng)
    scores_f, saliency_f = network_outputs(rng, masks)
    scores = quantized(scores_f)  # 4×H×W softmax scores
    prob = quantized(1 - scores_f[0])  # the foreground probability
    saliency = quantized(saliency_f)
    features = quantized(feature_maps(rng, rgb, masks))
    channels = quantized(cells(rng))
    image = fastquant.to_uint8(quantized(rgb.transpose(1, 2, 0)))  # the input, H×W×3 uint8

    fastquant.save(out / "probability.png", prob, cmap="viridis")
    fastquant.save(out / "saliency.png", saliency, cmap="RdBu", center=0, percentiles=(1, 99))
    fastquant.save(out / "features.png", fastquant.grid(features, ncols=4, pad_value=255, cmap="magma"))
    fastquant.save(out / "composite.png", fastquant.composite(channels, channel_axis=0, percentiles=(1, 99.5)))
    fastquant.save(out / "labels.png", fastquant.labels(scores), palette="voc")
    fastquant.save(out / "overlay.png", fastquant.overlay(image, fastquant.labels(scores), alpha=0.45, ignore=0))
    return [out / name for name in PICTURES]


if __name__ == "__main__":
    for path in main(*sys.argv[1:]):
        print(f"{path}: {path.stat().st_size} bytes")

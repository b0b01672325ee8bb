"""The seed document's recipe as a one-shot script: 512² map, 5/95 percentiles, PNG written.

Usage: ``python benchmarks/scripts/oneshot_seed.py OUTDIR SEED``. Imports NumPy and Pillow only.
"""

import sys

import numpy as np
from PIL import Image


def convert_feature_map_to_image(feature_map):
    low = np.percentile(feature_map, 5)
    high = np.percentile(feature_map, 95)
    unit = (np.clip(feature_map, low, high) - low) / (high - low)
    return Image.fromarray((unit * 255).astype(np.uint8))


if __name__ == "__main__":
    x = np.random.default_rng(int(sys.argv[2])).standard_normal((512, 512), dtype=np.float32)
    convert_feature_map_to_image(x).save(sys.argv[1] + "/seed.png")

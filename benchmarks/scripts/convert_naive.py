"""The naive bulk conversion as a whole script: ``np.load`` a Z×H×W ``.npy``, then per slice seed Example 2 and
Pillow's ``Image.save`` at its default level (``baselines.naive_convert``).

Usage: ``python benchmarks/scripts/convert_naive.py INPUT.npy OUTDIR``. Imports NumPy and Pillow only.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import baselines  # noqa: E402

if __name__ == "__main__":
    baselines.naive_convert(sys.argv[1], sys.argv[2])

"""NumPy's percentiles of a generated prediction volume, the reference of the bulk-conversion memory case.

Usage: ``python benchmarks/scripts/percentile_reference.py SLICES SIDE SEED [Q ...]`` (default Q: 5 95). The
volume is generated again slice by slice (``volumes.prediction_slice``, independently of any file or reader)
into one float32 array, and ``numpy.percentile(finite values, numpy.asarray(Q, float64))`` is printed as JSON
``{"q", "values", "finite", "elements", "seconds"}``, values as exact float64 (JSON's repr round-trips). The
percentile partitions that array in place (``overwrite_input=True``): the process peaks at about the volume's
size (4 GiB for 256 × 2048²), then exits.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import volumes  # noqa: E402

if __name__ == "__main__":
    slices, side, seed = (int(a) for a in sys.argv[1:4])
    q = np.asarray([float(a) for a in sys.argv[4:]] or [5.0, 95.0], dtype=np.float64)
    t0 = time.perf_counter()
    x = np.empty((slices, side, side), np.float32)
    for z in range(slices):
        volumes.prediction_slice(z, side, seed, out=x[z])
    finite = np.isfinite(x)
    count = int(np.count_nonzero(finite))
    values = x.reshape(-1) if count == x.size else x[finite]
    del finite
    result = np.percentile(values, q, overwrite_input=True)
    print(
        json.dumps(
            {
                "q": q.tolist(),
                "values": [float(v) for v in result],
                "finite": count,
                "elements": int(x.size),
                "seconds": time.perf_counter() - t0,
            }
        )
    )

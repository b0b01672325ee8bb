"""The same one-shot job with ``fastquant.save``.

Usage: ``python benchmarks/scripts/oneshot_fastquant.py OUTDIR SEED [--probe]``; with ``--probe`` it
prints, as JSON, which JIT modules the job loaded.
"""

import json
import sys

import numpy as np

import fastquant

if __name__ == "__main__":
    x = np.random.default_rng(int(sys.argv[2])).standard_normal((512, 512), dtype=np.float32)
    fastquant.save(sys.argv[1] + "/fastquant.png", x, percentiles=(5, 95))
    if "--probe" in sys.argv:
        print(json.dumps(sorted(m for m in ("numba", "llvmlite") if m in sys.modules)))

"""pytest-benchmark benchmarks of the performance-target cases (fastquant vs baselines).

Run with ``python -m pytest benchmarks/ --benchmark-only`` (add ``--fq-size 2048
--fq-channels-side 1024`` for a quick look). Each group holds the candidates of one row of the
issue's performance table; compare them with ``--benchmark-group-by=group`` (the default).
The ratios and pass/fail verdicts themselves come from ``python benchmarks/ratios.py``, which
alternates the candidates as the targets prescribe; these benchmarks give pytest-benchmark's
statistics for the same calls.
"""

from __future__ import annotations

import subprocess
import sys

import baselines
import numpy as np
import pytest

VMIN, VMAX = -2.0, 2.0
PCT = (5, 95)
Q = [5, 95]
SLOW = {"rounds": 5, "iterations": 1, "warmup_rounds": 1}  # seed baselines: seconds per call


# --------------------------------------------------------------------------- fixed limits


@pytest.mark.parametrize("impl", ["floor", "fastquant out=", "fastquant allocating"])
def test_fixed_limits(benchmark, impl, big, floor, fastquant_module):
    benchmark.group = "fixed limits (vmin=-2, vmax=2)"
    out = np.empty(big.shape, np.uint8)
    calls = {
        "floor": lambda: floor(big, out),
        "fastquant out=": lambda: fastquant_module.to_uint8(big, VMIN, VMAX, out=out),
        "fastquant allocating": lambda: fastquant_module.to_uint8(big, VMIN, VMAX),
    }
    result = benchmark(calls[impl])
    assert result.shape == big.shape and result.dtype == np.uint8


@pytest.mark.parametrize("impl", ["seed Example 1", "fastquant"])
def test_probability_map(benchmark, impl, big, fastquant_module):
    # Example 1: a map in [0, 1] with the default (nominal) limits.
    benchmark.group = "probability map (Example 1, default limits)"
    unit = np.clip(big * np.float32(0.25) + np.float32(0.5), 0, 1)
    calls = {
        "seed Example 1": lambda: baselines.seed_example1(unit),
        "fastquant": lambda: fastquant_module.to_uint8(unit),
    }
    assert benchmark(calls[impl]).shape == big.shape


# --------------------------------------------------------------------------- percentile limits


@pytest.mark.parametrize("impl", ["floor", "fastquant out=", "fastquant allocating", "seed Example 2"])
def test_percentile_limits_approx(benchmark, impl, big, floor, fastquant_module):
    benchmark.group = "percentile limits (5, 95), approx"
    fq = fastquant_module
    out = np.empty(big.shape, np.uint8)
    if impl == "seed Example 2":
        result = benchmark.pedantic(baselines.seed_example2, args=(big,), **SLOW)
    else:
        calls = {
            "floor": lambda: floor(big, out),
            "fastquant out=": lambda: fq.to_uint8(big, percentiles=PCT, out=out),
            "fastquant allocating": lambda: fq.to_uint8(big, percentiles=PCT),
        }
        result = benchmark(calls[impl])
    assert result.shape == big.shape


@pytest.mark.parametrize("impl", ["floor", "fastquant out=", "fastquant allocating"])
def test_percentile_limits_exact(benchmark, impl, big, floor, fastquant_module):
    benchmark.group = "percentile limits (5, 95), exact"
    fq = fastquant_module
    out = np.empty(big.shape, np.uint8)
    calls = {
        "floor": lambda: floor(big, out),
        "fastquant out=": lambda: fq.to_uint8(big, percentiles=PCT, method="exact", out=out),
        "fastquant allocating": lambda: fq.to_uint8(big, percentiles=PCT, method="exact"),
    }
    assert benchmark(calls[impl]).shape == big.shape


# --------------------------------------------------------------------------- percentile alone


@pytest.mark.parametrize("impl", ["fastquant", "fastpercentile"])
def test_percentile_exact_global(benchmark, impl, big, fastquant_module):
    benchmark.group = 'percentile(x, [5, 95], method="exact"), global'
    calls = {
        "fastquant": lambda: fastquant_module.percentile(big, Q, method="exact"),
        "fastpercentile": lambda: baselines.fastpercentile_percentile(big, Q),
    }
    result = benchmark(calls[impl])
    assert result.shape == (2,)


@pytest.mark.parametrize("impl", ["fastquant", "fastpercentile"])
def test_percentile_exact_per_channel(benchmark, impl, channels, fastquant_module):
    benchmark.group = 'percentile(x, [5, 95], axis=(0, 1), method="exact"), H×W×3'
    calls = {
        "fastquant": lambda: fastquant_module.percentile(channels, Q, axis=(0, 1), method="exact"),
        "fastpercentile": lambda: baselines.fastpercentile_percentile(channels, Q, axis=(0, 1)),
    }
    result = benchmark(calls[impl])
    assert result.shape == (2, 3)


# --------------------------------------------------------------------------- Example 3


@pytest.mark.parametrize("impl", ["fastquant", "seed Example 3"])
def test_example3_per_channel(benchmark, impl, channels, fastquant_module):
    benchmark.group = "per-channel H×W×3 (Example 3), approx"
    if impl == "seed Example 3":
        result = benchmark.pedantic(baselines.seed_example3, args=(channels,), **SLOW)
    else:
        result = benchmark(lambda: fastquant_module.to_uint8(channels, percentiles=PCT, axis=(0, 1)))
    assert result.shape == channels.shape


# --------------------------------------------------------------------------- small sizes

MODES = {
    "to_uint8 default limits": lambda m, x, x3: m.to_uint8(x),
    "to_uint8 vmin/vmax": lambda m, x, x3: m.to_uint8(x, VMIN, VMAX),
    "to_uint8 percentiles approx": lambda m, x, x3: m.to_uint8(x, percentiles=PCT),
    "to_uint8 percentiles exact": lambda m, x, x3: m.to_uint8(x, percentiles=PCT, method="exact"),
    "to_uint8 per-channel H×W×3": lambda m, x, x3: m.to_uint8(x3, percentiles=PCT, axis=(0, 1)),
    "percentile exact": lambda m, x, x3: m.percentile(x, Q, method="exact"),
    "percentile approx": lambda m, x, x3: m.percentile(x, Q, method="approx"),
}


@pytest.mark.parametrize("impl", ["fastquant", "reference"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("side", [64, 512, 2048])
def test_small_sizes(benchmark, side, mode, impl, fastquant_module):
    benchmark.group = f"{side}² {mode}: fastquant vs reference"
    rng = np.random.default_rng(side)
    x = rng.standard_normal((side, side), dtype=np.float32)
    x3 = rng.standard_normal((side, side, 3), dtype=np.float32)
    module = fastquant_module if impl == "fastquant" else fastquant_module.reference
    call = MODES[mode]
    call(module, x, x3)  # warm: kernels loaded, pages touched
    benchmark(call, module, x, x3)


# --------------------------------------------------------------------------- fresh processes

ONESHOT = {
    "seed NumPy+Pillow": """
import sys, numpy as np
from PIL import Image
x = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
lo, hi = np.percentile(x, 5), np.percentile(x, 95)
unit = (np.clip(x, lo, hi) - lo) / (hi - lo)
Image.fromarray((unit * 255).astype(np.uint8)).save(sys.argv[1] + "/seed.png")
""",
    "fastquant.save": """
import sys, numpy as np, fastquant
x = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
fastquant.save(sys.argv[1] + "/fastquant.png", x, percentiles=(5, 95))
""",
}


@pytest.mark.parametrize("impl", list(ONESHOT))
def test_oneshot_script(benchmark, impl, tmp_path):
    benchmark.group = "one-shot script: 512×512, 5/95 percentiles, PNG (fresh process)"
    cmd = [sys.executable, "-c", ONESHOT[impl], str(tmp_path)]
    subprocess.run(cmd, check=True)  # warm the OS file cache and Numba's cache
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"check": True}, rounds=11)


@pytest.mark.parametrize("module", ["numpy", "fastquant"])
def test_import(benchmark, module):
    benchmark.group = "import (fresh process)"
    cmd = [sys.executable, "-c", f"import {module}"]
    subprocess.run(cmd, check=True)
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"check": True}, rounds=11)

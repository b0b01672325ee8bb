"""pytest-benchmark setup for ``python -m pytest benchmarks/ --benchmark-only``.

This directory is outside the project's ``testpaths`` (``tests``), so a plain ``pytest`` never
collects it. Data sizes are options so a quick look does not need 8192² arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # ``import baselines`` whatever pytest's import mode
    sys.path.insert(0, str(HERE))

SEED = 20240601


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastquant benchmarks")
    group.addoption(
        "--fq-size",
        type=int,
        default=8192,
        help="side of the square float32 map for the large cases (default 8192, as the targets)",
    )
    group.addoption(
        "--fq-channels-side",
        type=int,
        default=4096,
        help="side of the H×W×3 map for the per-channel cases (default 4096)",
    )


def standard_normal(shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


@pytest.fixture(scope="session")
def fastquant_module():
    """fastquant, warmed up before any other Numba kernel runs.

    fastquant chooses its threading layer when its kernels are first used; running them before the
    floor kernel keeps that choice in force for the whole session (as in ``ratios.py``).
    """
    import fastquant

    warm = standard_normal((1024, 1024))  # >= NUMBA_MIN_SIZE, so the Numba path is taken
    for method in ("approx", "exact"):
        fastquant.to_uint8(warm, percentiles=(5, 95), method=method)
        fastquant.percentile(warm, [5, 95], method=method)
    fastquant.to_uint8(warm, -2.0, 2.0)
    return fastquant


@pytest.fixture(scope="session")
def big(request) -> np.ndarray:
    side = request.config.getoption("--fq-size")
    return standard_normal((side, side))


@pytest.fixture(scope="session")
def channels(request) -> np.ndarray:
    side = request.config.getoption("--fq-channels-side")
    return standard_normal((side, side, 3), SEED + 1)


@pytest.fixture(scope="session")
def floor(fastquant_module):
    """``floor(x, out)``, compiled (or loaded from cache) after fastquant's own warm-up."""
    import baselines

    probe = np.zeros(16, np.float32)
    baselines.floor(probe, np.empty(16, np.uint8))
    return baselines.floor

"""pytest-benchmark setup for ``python -m pytest benchmarks/ --benchmark-only [--fq-quick]``.

This directory is outside the project's ``testpaths`` (``tests``), so a plain ``pytest`` never collects it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # ``import cases`` whatever pytest's import mode
    sys.path.insert(0, str(HERE))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("fastquant benchmarks").addoption(
        "--fq-quick", action="store_true", help="the reduced sizes of ``ratios.py --quick``"
    )


@pytest.fixture(scope="session")
def warmed() -> None:
    """fastquant's kernels run before the floor's (its threading-layer policy stays in force)."""
    import cases

    cases.warm_up()

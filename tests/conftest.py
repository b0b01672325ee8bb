"""Shared test configuration: hypothesis profile, the opt-in slow marker, and the two dispatch paths.

fastquant converts small inputs with NumPy and large ones with Numba kernels (threshold
``fastquant._plan.Tuning.numba_min_size``, in elements). The test arrays are small, so the fixtures below force each
path explicitly; the equivalence tests run on both.
"""

from __future__ import annotations

import os
import types

import pytest
from hypothesis import settings
from support import PATHS, force_path

import fastquant
import fastquant.reference

settings.register_profile(
    "fastquant",
    derandomize=True,  # the same examples on every run and machine
    deadline=None,  # the first Numba call compiles or loads kernels
    max_examples=100,
    database=None,  # nothing written into the checkout
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("fastquant"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastquant"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow (> 8 GiB)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: needs --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def numba_path(monkeypatch):
    """Force the Numba kernels even for tiny inputs."""
    force_path(monkeypatch, "numba")


@pytest.fixture
def numpy_path(monkeypatch):
    """Force the NumPy path even for large inputs."""
    force_path(monkeypatch, "numpy")


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Run the test once on the NumPy path and once on the Numba path of the fast API."""
    force_path(monkeypatch, request.param)
    return request.param


@pytest.fixture(params=PATHS + ("reference",))
def impl(request, monkeypatch):
    """An object with ``to_uint8`` and ``percentile``: the fast API on either path, or the reference.

    For tests whose expected values are derived by hand: the reference must pass them too.
    """
    if request.param == "reference":
        return fastquant.reference
    force_path(monkeypatch, request.param)
    return types.SimpleNamespace(to_uint8=fastquant.to_uint8, percentile=fastquant.percentile)

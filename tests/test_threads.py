"""Thread and fork safety of the Numba kernels, and the threading-layer policy.

numba starts one threading layer per process, at the first parallel kernel, and an unsafe layer
aborts the whole process instead of raising. So each scenario runs in a fresh interpreter
(``threads_child.py``) and is judged by its exit status and the JSON line it prints:

- several Python threads calling a small parallel kernel and the real API at once must produce the
  same bytes as serial calls;
- after parallel kernels ran, fork-started children (a ``multiprocessing`` fork pool, as PyTorch
  data loaders use) must run them again correctly;
- a threading layer the user configured must be the one numba runs.

Two control runs show that these checks can fail: the workqueue layer without fastquant's lock
aborts under concurrent calls, and GNU OpenMP kills a child forked after a parallel call.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("threads_child.py")
CHILD_TIMEOUT = 600  # seconds; generous for a cold Numba cache, a hang still fails


def tbb_installed() -> bool:
    try:
        importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def run_child(*args: str, env: dict[str, str] | None = None):
    """Run threads_child.py with `args`; return (CompletedProcess, its last JSON line or None)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    clean.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=CHILD_TIMEOUT,
    )
    lines = proc.stdout.strip().splitlines()
    try:
        info = json.loads(lines[-1]) if lines else None
    except ValueError:
        info = None
    return proc, info


def explain(proc) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"


def test_default_policy_is_thread_and_fork_safe():
    proc, info = run_child("--threads", "--fork")
    assert proc.returncode == 0, explain(proc)
    assert info["thread_mismatches"] == 0 and info["pool_results"] == 4
    # Both are thread-safe for fastquant's calls (workqueue through the lock) and fork-safe.
    assert info["layer"] in ("tbb", "workqueue"), info
    if tbb_installed():
        # The pip wheel's libtbb is not on the loader's path: only the policy makes numba use it.
        assert info["layer"] == "tbb", info["describe"]
    assert info["layer"] in info["describe"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fallback differs off Linux")
def test_fallback_without_tbb_is_thread_and_fork_safe():
    proc, info = run_child("--threads", "--fork", "--no-tbb")
    assert proc.returncode == 0, explain(proc)
    assert info["layer"] == "workqueue", info
    assert "serialised by fastquant's lock" in info["describe"]


def test_layer_from_environment_is_respected():
    proc, info = run_child("--threads", env={"NUMBA_THREADING_LAYER": "omp"})
    assert proc.returncode == 0, explain(proc)
    assert info["layer"] == "omp", info
    assert "NUMBA_THREADING_LAYER='omp'" in info["describe"]


def test_layer_set_in_code_is_respected_and_calls_are_serialised():
    # workqueue is the user's choice here: fastquant keeps it and its lock keeps threads safe.
    proc, info = run_child("--threads", "--fork", "--layer-in-code", "workqueue")
    assert proc.returncode == 0, explain(proc)
    assert info["layer"] == "workqueue", info
    assert "numba.config.THREADING_LAYER = 'workqueue'" in info["describe"]


def test_layer_started_before_fastquant_is_kept():
    proc, info = run_child("--threads", "--start-first")
    assert proc.returncode == 0, explain(proc)
    assert "started by earlier parallel numba use" in info["describe"], info


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for launches to overlap")
def test_control_workqueue_without_lock_aborts():
    """Shows that the thread test can fail: the same calls without kernel_lock kill the process."""
    proc, _ = run_child("--threads", "--no-lock", "--layer-in-code", "workqueue")
    assert proc.returncode != 0, explain(proc)
    assert "workqueue" in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GNU OpenMP is Linux's omp")
def test_control_gnu_openmp_kills_forked_child():
    """Shows that the fork test can fail: under GNU OpenMP the forked child dies."""
    proc, info = run_child("--fork", "--layer-in-code", "omp")
    assert proc.returncode == 2, explain(proc)
    assert info["fork_process_exitcode"] != 0


def test_describe_and_lock_in_this_process(monkeypatch):
    import contextlib
    import threading

    import numba
    import numpy as np

    import fastquant
    import fastquant._plan
    from fastquant import _threading

    with fastquant._plan.tuning(numba_min_size=0):
        fastquant.to_uint8(np.linspace(-1, 2, 1000, dtype=np.float32))  # starts the layer if needed
    layer = numba.threading_layer()
    assert f"numba threading layer: {layer} (started)" in _threading.describe()
    lock = _threading.kernel_lock()
    if layer in ("tbb", "omp"):
        assert isinstance(lock, contextlib.nullcontext)
    else:
        got = []
        with lock:  # held here, another thread must wait for it
            other = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.2)))
            other.start()
            other.join()
        assert got == [False]

"""The thread count does not change any result: bytes of to_uint8 and values of percentile, 1 vs 2 vs 4 threads.

numba sizes its thread pool once per process, so each thread count runs in a fresh interpreter
(``thread_count_child.py``) started with ``NUMBA_NUM_THREADS``; 4 threads on a 2-core machine is deliberate
(more parallel parts than cores). The child hashes every result and the parent compares the hashes. The cases,
all seeded and at least 2**20 elements (the Numba path's default threshold), are listed in the child: a global
2-D map, H x W x 3 per channel, C x H x W per channel, per-column limits, float64, and NaN-heavy data (with a
channel that has no finite value). The operations: fixed limits, one-sided limits (vmax=1), percentile limits
with method approx and exact, and percentile (exact). A control (a plain parallel float32 sum in the same
children) shows that a thread-count dependence is detected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from thread_count_child import CASES, OPS

CHILD = Path(__file__).with_name("thread_count_child.py")
CHILD_TIMEOUT = 600  # seconds; generous for a cold Numba cache, a hang still fails
THREAD_COUNTS = (1, 2, 4)


def run_child(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    env["NUMBA_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, str(CHILD)], capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"child with NUMBA_NUM_THREADS={threads}: exit {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    info = json.loads(lines[-1])
    assert info["threads"] == threads, f"NUMBA_NUM_THREADS={threads} ignored: the child ran {info['threads']}"
    return info


@pytest.fixture(scope="module")
def results() -> dict[int, dict]:
    return {threads: run_child(threads) for threads in THREAD_COUNTS}


def test_children_ran_this_fastquant(results):
    import fastquant

    for threads, info in results.items():
        assert Path(info["fastquant"]).resolve() == Path(fastquant.__file__).resolve(), (threads, info["fastquant"])


@pytest.mark.parametrize("case", list(CASES))
def test_results_do_not_depend_on_thread_count(results, case):
    first = THREAD_COUNTS[0]
    differ = []
    for threads in THREAD_COUNTS[1:]:
        for op in OPS:
            if results[threads]["hashes"][case][op] != results[first]["hashes"][case][op]:
                differ.append(f"{op} with {threads} threads")
    assert not differ, f"{case}: differs from {first} thread: {', '.join(differ)}"


def test_control_a_thread_dependent_sum_is_seen(results):
    """Shows that the comparison can fail: a parallel float32 sum rounds differently with 1 and 2 threads."""
    assert results[1]["control"] != results[2]["control"], "the control sum did not depend on the thread count"

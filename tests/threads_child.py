"""Child process for ``test_threads.py``: thread and fork safety under a fresh threading layer.

numba starts its threading layer once per process, and an unsafe layer kills the whole process
(abort) rather than raising, so every scenario runs here, in a new interpreter, and reports through
its exit status and a last line of JSON on stdout::

    python threads_child.py [--threads] [--fork] [--no-lock] [--no-tbb] [--layer-in-code NAME]
                            [--start-first]

--threads         several Python threads call the kernels at once; bytes must equal serial calls
--fork            after parallel kernels ran here, fork-started children run them again
--no-lock         call the test kernel without ``kernel_lock`` (control: must abort on workqueue)
--no-tbb          simulate an environment where TBB is unavailable (fastquant's fallback)
--layer-in-code   set ``numba.config.THREADING_LAYER`` in code before fastquant is used
--start-first     run a plain numba parallel kernel before fastquant (layer started by the user)

Exit status: 0 all checks passed, 1 a result differed, 2 a forked child died, 3 the pool hung.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import threading

import numpy as np

SHAPE = (512, 512)
N_THREADS = 6
CALLS_PER_THREAD = 25
API_CALLS_PER_THREAD = 3
POOL_TIMEOUT = 120  # seconds; a pool whose workers die never returns on its own


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--threads", "--fork", "--no-lock", "--no-tbb", "--start-first"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("--layer-in-code")
    args = parser.parse_args()

    if args.layer_in_code:
        import numba

        numba.config.THREADING_LAYER = args.layer_in_code
    if args.start_first:
        import numba

        @numba.njit(parallel=True)
        def user_kernel(a):
            s = 0.0
            for i in numba.prange(a.size):
                s += a[i]
            return s

        user_kernel(np.ones(100))
    if args.no_tbb:
        import fastquant._threading

        fastquant._threading._make_tbb_loadable = lambda: (None, "simulated by the test")

    import contextlib

    import numba

    import fastquant
    import fastquant._plan
    import fastquant._threading
    from fastquant import _jit

    @_jit.parallel
    def scale_kernel(x, out):
        # Enough work per call (512*512 elements) for concurrent launches to overlap.
        for i in numba.prange(x.size):
            v = x[i] * 64.0 + 128.0
            out[i] = np.uint8(min(max(v, 0.0), 255.0))

    lock = contextlib.nullcontext if args.no_lock else _jit.kernel_lock

    def run_kernel(x):
        out = np.empty(x.size, np.uint8)
        with lock():
            scale_kernel(x, out)
        return out

    # The real API (forced onto the Numba path), unless the control run bypasses the lock.
    use_api = not args.no_lock
    fastquant._plan.tuning(numba_min_size=0).__enter__()  # for the rest of this child process

    def run_api(x):
        return [
            fastquant.to_uint8(x, percentiles=(5, 95)),
            fastquant.to_uint8(x, percentiles=(5, 95), method="exact"),
            fastquant.to_uint8(x, -2.0, 2.0),
            fastquant.percentile(x, (5, 95)),
        ]

    rng = np.random.default_rng(20240607)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    flat = x.reshape(-1)
    expected_kernel = run_kernel(flat)  # serial; this first call starts the threading layer
    by_numpy = np.clip(flat * np.float64(64) + 128, 0, 255).astype(np.uint8)
    if not np.array_equal(expected_kernel, by_numpy):
        return report(args, 1, "serial test kernel disagrees with NumPy")
    expected_api = run_api(x) if use_api else []
    reference = [
        fastquant.reference.to_uint8(x, percentiles=(5, 95)),
        fastquant.reference.to_uint8(x, percentiles=(5, 95), method="exact"),
        fastquant.reference.to_uint8(x, -2.0, 2.0),
        fastquant.reference.percentile(x, (5, 95)),
    ]
    # approx is within one grey level; the exact paths are bit for bit (see test_equivalence).
    if use_api and not (
        np.abs(expected_api[0].astype(int) - reference[0]).max() <= 1 and all_equal(expected_api[1:], reference[1:])
    ):
        return report(args, 1, "serial API results disagree with fastquant.reference")

    def same(results) -> bool:
        kernel_out, api_out = results
        return np.array_equal(kernel_out, expected_kernel) and all_equal(api_out, expected_api)

    details = {}
    if args.threads:
        mismatches = []
        barrier = threading.Barrier(N_THREADS)

        def worker(k):
            barrier.wait()  # start together so that calls overlap
            for i in range(CALLS_PER_THREAD):
                if not np.array_equal(run_kernel(flat), expected_kernel):
                    mismatches.append(("kernel", k, i))
                if use_api and i < API_CALLS_PER_THREAD:
                    got = run_api(x)
                    if not all_equal(got, expected_api):
                        mismatches.append(("api", k, i))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        details["thread_mismatches"] = len(mismatches)
        if mismatches:
            return report(args, 1, f"concurrent results differ from serial: {mismatches[:5]}")

    if args.fork:
        ctx = multiprocessing.get_context("fork")

        def child_check():
            sys.exit(0 if same((run_kernel(flat), run_api(x) if use_api else [])) else 1)

        # A single Process first: a worker that aborts shows up as its exit code at once.
        proc = ctx.Process(target=child_check)
        proc.start()
        proc.join(POOL_TIMEOUT)
        details["fork_process_exitcode"] = proc.exitcode
        if proc.exitcode != 0:
            if proc.exitcode is None:
                proc.kill()
            return report(args, 2, f"forked child exited with {proc.exitcode}", details)
        # Then a fork-started pool, the way PyTorch data loaders use one.
        _POOL_WORK.append(lambda: (run_kernel(flat), run_api(x) if use_api else []))
        pool = ctx.Pool(2)
        try:
            results = pool.map_async(_pool_job, range(4)).get(timeout=POOL_TIMEOUT)
        except multiprocessing.TimeoutError:
            pool.terminate()
            return report(args, 3, "fork pool did not finish", details)
        pool.close()
        pool.join()
        details["pool_results"] = len(results)
        if not all(same(r) for r in results):
            return report(args, 1, "fork pool results differ from the parent's", details)

    return report(args, 0, "ok", details)


_POOL_WORK = []  # set up before the pool forks, so the workers inherit it


def _pool_job(_):
    # Module-level so that the pool pickles it by name.
    return _POOL_WORK[0]()


def all_equal(got, expected) -> bool:
    return len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def report(args, status: int, message: str, details: dict | None = None) -> int:
    import numba

    import fastquant
    import fastquant._threading

    print(
        json.dumps(
            {
                "status": status,
                "message": message,
                "layer": numba.threading_layer(),
                "describe": fastquant._threading.describe(),
                "fastquant": fastquant.__file__,
                "args": vars(args),
                **(details or {}),
            }
        )
    )
    return status


if __name__ == "__main__":
    sys.exit(main())

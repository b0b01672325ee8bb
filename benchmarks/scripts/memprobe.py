"""Extra peak memory of one ``to_uint8(x, percentiles=(5, 95), method=METHOD)`` call, as JSON.

Usage: ``python benchmarks/scripts/memprobe.py METHOD SIDE SEED`` (x is SIDE² standard-normal float32).
After a warm-up call, the resident-set high-water mark is reset (Linux: ``/proc/self/clear_refs``) and
the figure is VmHWM after the call minus VmRSS before it, the output included. Elsewhere a sampling
thread watches the RSS instead.
"""

import gc
import json
import sys
import threading
import time

import numpy as np

import fastquant


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss() -> int:
    try:
        return status("VmRSS")
    except (OSError, KeyError):
        import psutil

        return psutil.Process().memory_info().rss


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return abs(status("VmHWM") - status("VmRSS")) < 8 * 2**20
    except OSError:
        return False


def main(method: str, side: int, seed: int) -> dict:
    x = np.random.default_rng(seed).standard_normal((side, side), dtype=np.float32)

    def call():
        return fastquant.to_uint8(x, percentiles=(5, 95), method=method)

    call()  # warm-up: kernels loaded, thread pool started, arenas settled
    gc.collect()
    if reset_peak():
        how, before = "VmHWM after reset via /proc/self/clear_refs", rss()
        t0 = time.perf_counter()
        y = call()
        elapsed, peak = time.perf_counter() - t0, status("VmHWM")
    else:
        how, before = "sampling thread", rss()
        box, stop = [before], threading.Event()

        def sample():
            while not stop.is_set():
                box[0] = max(box[0], rss())
                time.sleep(0.0005)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        y = call()
        elapsed = time.perf_counter() - t0
        stop.set()
        thread.join()
        peak = max(box[0], rss())
    return {"extra": peak - before, "output": int(y.nbytes), "how": how, "seconds": elapsed}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))

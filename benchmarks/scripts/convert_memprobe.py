"""Peak anonymous memory of one ``fastquant.convert`` job, sampled from outside the job's process, as JSON.

Usage: ``python benchmarks/scripts/convert_memprobe.py CONFIG`` (CONFIG: a JSON object, keys below).

This process (the probe) starts a child (this script with ``--child``) that imports NumPy, numba, zarr, tifffile
and fastquant, collects garbage, reports its ``RssAnon`` (anonymous resident memory: the page cache and the
file-backed pages of a memmap do not count) and waits. The probe then samples the child's anonymous memory in a
thread, about once a millisecond, tells the child to run the job, and stops sampling when the child reports it
done. The figure is ``extra``: the highest value sampled minus the value after the imports (so the kernels loaded
from Numba's cache, the thread pools and the readers' buffers all count).

Samples read ``/proc/PID/statm``, kept open (resident minus shared pages: the counter ``RssAnon`` of
``/proc/PID/status`` shows; reopening ``status`` for each sample took up to 20 ms while the process mapped memory,
a ``pread`` of the open ``statm`` stays under a millisecond). The child runs at nice 10 and the sampling thread at
nice -10 where the system permits it. Even so, on this 2-core VM the sampler's wake-ups are late by up to 10-40 ms
now and then while the job runs (a spinning sampler stalls as long: the stalls are the machine's), so a measured
run whose largest gap between samples exceeds ``max_gap`` (default 10 ms) is repeated, up to ``attempts`` runs
(default 3), and the figure is the largest peak of all the runs made. The child also reports the kernel's own
high-water mark (``VmHWM`` after a reset through ``/proc/self/clear_refs``, minus ``VmRSS`` then): a bound that no
gap can miss, which counts file-backed pages too.

With ``"warmup": true`` the same job first runs once in a child of its own, unsampled (Numba's on-disk cache
filled, the input in the page cache). Mode ``"control"`` allocates ``bytes`` (every page written) and holds them
``hold`` seconds instead of converting: the sampler must see them.

Keys: ``mode`` ("convert" or "control"), ``input``, ``output``, ``options`` (``convert``'s keyword arguments),
``warmup``, ``bytes``, ``hold``, ``attempts``, ``max_gap``. Printed (last line): ``extra``, ``baseline``,
``peak``, ``start`` (RssAnon before the imports), ``hwm_extra``, ``seconds`` (the job), ``limits`` (the
summary's), ``samples``, ``max_gap`` (seconds, of the run kept), ``gaps`` (of every run), ``how``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time

CHILD_NICE = 10  # the job yields the CPU to the sampler at once
SAMPLER_NICE = -10  # where permitted: the sampler also wins over the machine's other processes
PAGE = os.sysconf("SC_PAGE_SIZE")


def status(key: str) -> int:
    """A line of this process's ``/proc/self/status``, in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def statm_anon(fd: int) -> int | None:
    """``RssAnon`` in bytes from an open ``/proc/PID/statm`` (None once the process has exited)."""
    try:
        fields = os.pread(fd, 256, 0).split()
    except ProcessLookupError:
        return None
    return (int(fields[1]) - int(fields[2])) * PAGE if fields else None


def child(config: dict) -> None:
    os.nice(CHILD_NICE)
    start = status("RssAnon")
    import numba  # noqa: F401  (the modules the job uses, imported before the baseline)
    import numpy as np
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    import fastquant

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        rss = status("VmRSS")
    except OSError:
        rss = None
    print(json.dumps({"ready": {"baseline": status("RssAnon"), "start": start}}), flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    if config["mode"] == "control":
        block = np.ones(config["bytes"] // 8)  # float64 ones: every page written
        time.sleep(config.get("hold", 0.05))
        done = {"limits": None, "check": float(block[:: 1 << 16].sum())}
        del block
    else:
        summary = fastquant.convert(config["input"], config["output"], **config["options"])
        done = {"limits": summary.limits, "written": summary.written}
    done["seconds"] = time.perf_counter() - t0
    done["hwm_extra"] = None if rss is None else status("VmHWM") - rss
    print(json.dumps({"done": done}), flush=True)


def measured_run(command: list[str]) -> dict:
    """One sampled run of the child."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())["ready"]
    figures = {"peak": ready["baseline"], "samples": 0, "max_gap": 0.0, "nice": 0}
    stop = threading.Event()

    def sample() -> None:
        try:  # this thread only (Linux: a thread's own nice value); refused without the privilege
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SAMPLER_NICE)
            figures["nice"] = SAMPLER_NICE
        except OSError:
            pass
        fd = os.open(f"/proc/{proc.pid}/statm", os.O_RDONLY)
        last = time.perf_counter()
        while not stop.is_set():
            value = statm_anon(fd)
            now = time.perf_counter()
            if value is None:
                break
            figures["peak"] = max(figures["peak"], value)
            figures["samples"] += 1
            figures["max_gap"] = max(figures["max_gap"], now - last)
            last = now
            time.sleep(0.001)
        os.close(fd)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    time.sleep(0.01)  # the sampler is running before the job starts
    proc.stdin.write("go\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    stop.set()
    thread.join()
    proc.wait()
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"the measured child failed (exit {proc.returncode})")
    return {**ready, **figures, **json.loads(line)["done"]}


def probe(config: dict) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps(config)]
    if config.get("warmup"):
        warm = subprocess.run(command, input="go\n", stdout=subprocess.DEVNULL, text=True)
        if warm.returncode != 0:
            raise RuntimeError(f"the warm-up child failed (exit {warm.returncode})")
    limit, runs = config.get("max_gap", 0.010), []
    while not runs or (runs[-1]["max_gap"] > limit and len(runs) < config.get("attempts", 3)):
        runs.append(measured_run(command))
    kept = runs[-1]
    extra = max(r["peak"] - r["baseline"] for r in runs)
    hwm = [r["hwm_extra"] for r in runs if r["hwm_extra"] is not None]
    gaps = [r["max_gap"] for r in runs]
    return {
        "extra": extra,
        "baseline": kept["baseline"],
        "peak": kept["peak"],
        "start": kept["start"],
        "hwm_extra": max(hwm) if hwm else None,
        "seconds": kept["seconds"],
        "limits": kept["limits"],
        "samples": kept["samples"],
        "max_gap": kept["max_gap"],
        "gaps": gaps,
        "how": f"RssAnon of a nice-{CHILD_NICE} child sampled every ~1 ms by a thread at nice {kept['nice']}, "
        f"largest of {len(runs)} run(s) (largest gap between samples {', '.join(f'{g * 1e3:.1f}' for g in gaps)} "
        f"ms; {kept['samples']} samples); baseline {kept['baseline'] / 2**20:.0f} MiB after imports",
    }


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        print(json.dumps(probe(json.loads(sys.argv[1]))))

"""Child process of ``tests/test_memory.py``: one conversion (or the control's deliberate allocation) whose
anonymous resident memory the parent samples from ``/proc/<pid>/status``.

Protocol (one JSON object per line on stdout):

1. import NumPy, numba and fastquant, then (mode ``convert``) warm-up conversions of a small ``.npy`` of the
   same dtype and number of axes, with the same options and output format, each with
   ``fastquant._plan.tuning(**knobs)`` for knobs in ``warmup_tunings`` (e.g. ``numba_min_size=0``; with and
   without ``band_rows``), so that every kernel the measured run calls is compiled or loaded from the cache, the
   writers are imported and the threading layer is up before the baseline;
2. ``gc.collect()``, then print ``{"ready": {"baseline": RssAnon bytes, "fastquant": path}}`` and wait for a line
   on stdin (the parent's sampler is running);
3. mode ``convert``: ``fastquant.convert(input, output, **options)``; mode ``control``: ``np.ones`` of ``bytes``
   bytes, touched whole, held ``hold`` seconds, then freed;
4. print ``{"done": {...}}`` with the summary's counts, RssAnon at the end, the ``approx`` events of the engine's
   trace, and ``new_kernels``: the Numba dispatchers that gained a signature during the measured run (compiled or
   loaded there: the warm-up missed them).

Usage: ``python memory_child.py '<json config>'`` (keys: mode, input, output, options, warmup_input,
warmup_output, suffix, warmup_tunings, bytes, hold).
"""

from __future__ import annotations

import gc
import json
import sys
import time


def rss_anon() -> int:
    """This process's anonymous resident memory (RssAnon), in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no RssAnon line")


def overloads() -> dict[str, int]:
    """Compiled signatures of every Numba dispatcher alive (kernels loaded from the cache or compiled)."""
    from numba.core.dispatcher import Dispatcher

    found: dict[str, int] = {}
    for obj in gc.get_objects():
        if isinstance(obj, Dispatcher):
            name = f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"
            found[name] = found.get(name, 0) + len(obj.overloads)
    return found


def main() -> int:
    config = json.loads(sys.argv[1])
    import numba  # noqa: F401  (imported before the baseline: it is part of "after imports")
    import numpy as np

    import fastquant
    from fastquant import _plan

    mode = config["mode"]
    if mode == "convert":
        for k, knobs in enumerate(config["warmup_tunings"]):
            with _plan.tuning(**knobs):
                fastquant.convert(config["warmup_input"], f"{config['warmup_output']}-{k}{config['suffix']}",
                                  **config["options"])  # fmt: skip
    before = overloads()
    gc.collect()
    print(json.dumps({"ready": {"baseline": rss_anon(), "fastquant": fastquant.__file__}}), flush=True)
    sys.stdin.readline()

    result: dict = {}
    if mode == "control":
        block = np.ones(config["bytes"] // 8)  # float64: every page written
        time.sleep(config.get("hold", 0.02))
        result["sum"] = float(block[:: 1 << 16].sum())
        del block
    else:
        with _plan.recording() as trace:
            summary = fastquant.convert(config["input"], config["output"], **config["options"])
        result.update(written=summary.written, images=summary.images, bytes_read=summary.bytes_read)
        result["approx"] = [details for event, details in trace if event == "approx"]
        result["paths"] = sorted({str(details.get("path")) for event, details in trace if event == "plan"})
    gc.collect()
    result["end"] = rss_anon()
    after = overloads()
    result["new_kernels"] = sorted(name for name, n in after.items() if n > before.get(name, 0))
    print(json.dumps({"done": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

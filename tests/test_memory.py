"""Issue 7's memory bound: the peak of ``fastquant.convert``'s anonymous resident memory stays under
``max_memory`` for any input size, including a single slice larger than the cap (read and encoded in row bands).

Peak memory is RssAnon (``/proc/PID/status``) above its value after imports: file pages of the input's memory map
do not count. Each case runs in a fresh child (``memory_child.py``) that imports fastquant and numba, runs a
warm-up conversion of a small input of the same kind (so that kernels are compiled or loaded, writers imported and
the threading layer started before the baseline), records its baseline, and converts an input several times larger
than the 128 MiB cap (the minimum ``max_memory``) while this process reads the child's ``/proc/PID/status`` every
~2 ms from a thread. The control shows that the same sampler sees a deliberate short-lived 200 MiB allocation.

Inputs are written slice by slice (and row band by row band) with ``np.lib.format.open_memmap``, so the test process
itself stays small. Each case takes a few seconds (none over ~20 s), so none is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

CHILD = Path(__file__).with_name("memory_child.py")
MiB = 1 << 20
CAP = 128 * MiB  # the minimum --max-memory
CHILD_TIMEOUT = 600  # seconds: a generous bound on a loaded machine; a hang still fails
CHILD_NICE = 10  # the child yields the CPU to the sampler when the cores are busy (2 cores: workers + threads)
SAMPLE_INTERVAL = 0.002  # seconds between two reads of /proc/PID/status (the issue asks for 10 ms or less)

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")


# --- inputs ---------------------------------------------------------------------------------------------------


def write_volume(path: Path, shape: tuple[int, int, int], seed: int) -> Path:
    """A float32 .npy of a smooth field plus noise (prediction-like, seeded), a few NaN; written in row bands."""
    rng = np.random.default_rng(seed)
    count, rows, cols = shape
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    xx = np.linspace(0, 3, cols, dtype=np.float32)[None, :]
    band = 512
    for k in range(count):
        for start in range(0, rows, band):
            stop = min(rows, start + band)
            yy = np.linspace(0, 3, rows, dtype=np.float32)[start:stop, None]
            block = np.sin(yy + xx + np.float32(0.1 * k)) + np.float32(0.3) * rng.standard_normal(
                (stop - start, cols), dtype=np.float32
            )
            block[::97, ::89] = np.nan
            out[k, start:stop] = block
    out.flush()
    del out
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("memory")


@pytest.fixture(scope="module")
def big_volume(scratch):
    """44 x 2048 x 2048 float32: 704 MiB, 5.5 times the cap."""
    path = write_volume(scratch / "big.npy", (44, 2048, 2048), seed=11)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def wide_slice(scratch):
    """One 8192 x 12288 float32 image: 384 MiB, three times the cap, in a single slice."""
    path = write_volume(scratch / "wide.npy", (1, 8192, 12288), seed=12)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def warmup_input(scratch):
    return write_volume(scratch / "warm.npy", (4, 64, 96), seed=13)


# --- the sampler and the child --------------------------------------------------------------------------------


def read_rss_anon(status_path: str) -> int | None:
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None  # exited (a zombie has no RssAnon line)


class Sampler(threading.Thread):
    """Reads a process's RssAnon every SAMPLE_INTERVAL seconds until stopped or the process is gone."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.status_path = f"/proc/{pid}/status"
        self.halt = threading.Event()
        self.peak = 0
        self.times: list[float] = []

    def run(self) -> None:
        while not self.halt.is_set():
            value = read_rss_anon(self.status_path)
            if value is None:
                return
            self.times.append(time.perf_counter())
            self.peak = max(self.peak, value)
            time.sleep(SAMPLE_INTERVAL)

    def gaps(self) -> dict:
        steps = np.diff(self.times) * 1e3 if len(self.times) > 1 else np.zeros(1)
        return {"samples": len(self.times), "median_ms": float(np.median(steps)), "max_ms": float(steps.max())}


def run_child(config: dict, log: Path) -> dict:
    """Run memory_child.py with `config`, sampling its RssAnon from the baseline to its exit."""
    with open(log, "w+", encoding="utf-8") as err, subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=lambda: os.nice(CHILD_NICE),
    ) as proc:  # fmt: skip
        sampler = None
        try:
            line = proc.stdout.readline()
            assert line, f"the child exited before its baseline: {proc.wait(CHILD_TIMEOUT)}\n{log.read_text()[-3000:]}"
            ready = json.loads(line)["ready"]
            sampler = Sampler(proc.pid)
            sampler.start()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            status = proc.wait(CHILD_TIMEOUT)
        finally:
            if sampler is not None:
                sampler.halt.set()
                sampler.join()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert status == 0 and line, f"child exit {status}\nstderr:\n{log.read_text()[-3000:]}"
    done = json.loads(line)["done"]
    assert Path(ready["fastquant"]).resolve().parent == Path(__import__("fastquant").__file__).resolve().parent
    measured = {
        "baseline_mib": ready["baseline"] / MiB,
        "peak_mib": (sampler.peak - ready["baseline"]) / MiB,
        "end_mib": (done["end"] - ready["baseline"]) / MiB,
        **sampler.gaps(),
        "done": done,
    }
    return measured


def convert_config(scratch: Path, name: str, source: Path, output: Path, warmup: Path, **options) -> dict:
    options = {"max_memory": "128MiB", "workers": 2, **options}
    if "percentiles" in options:
        options["percentiles"] = list(options["percentiles"])
    suffix = output.suffix if output.suffix else ""
    return {
        "mode": "convert",
        "input": str(source),
        "output": str(output),
        "options": options,
        "warmup_input": str(warmup),
        "warmup_output": str(scratch / f"warm-{name}"),
        "suffix": suffix,
        # every kernel on a tiny input: the Numba path at any size, approx limits sampled; whole images, then bands;
        # exact limits by the bracket (a sample of 64 suffices for it), as on the large input
        "warmup_tunings": [
            {"numba_min_size": 0, "approx_sample": 64},
            {"numba_min_size": 0, "approx_sample": 64, "band_rows": 16},
            {"numba_min_size": 0, "approx_sample": 64, "min_sample": 64},
        ],
    }


def check_peak(case: str, measured: dict) -> None:
    print(f"\n{case}: {json.dumps(measured)}")
    assert not measured["done"]["new_kernels"], f"{case}: the warm-up missed kernels, measured with the run: {measured}"
    assert measured["samples"] >= 20, measured
    assert measured["peak_mib"] <= CAP / MiB, f"{case}: peak {measured['peak_mib']:.1f} MiB above the cap: {measured}"


# --- the control ----------------------------------------------------------------------------------------------


def test_sampler_sees_a_deliberate_allocation(scratch):
    """200 MiB allocated, held 20 ms and freed: the sampler sees it (so a breach of the cap would be seen)."""
    measured = run_child({"mode": "control", "bytes": 200 * MiB, "hold": 0.02}, scratch / "control.log")
    print(f"\ncontrol: {json.dumps(measured)}")
    assert measured["peak_mib"] >= 195, measured
    assert measured["peak_mib"] > CAP / MiB


# --- the cases ------------------------------------------------------------------------------------------------


def test_exact_volume_limits_to_png(scratch, big_volume, warmup_input):
    out = scratch / "exact-png"
    config = convert_config(scratch, "exact-png", big_volume, out, warmup_input, percentiles=(1, 99),
                            method="exact", limits="volume")  # fmt: skip
    measured = run_child(config, scratch / "exact-png.log")
    assert measured["done"]["written"] == 44 and len(list(out.glob("*.png"))) == 44
    check_peak("exact volume -> PNG", measured)


def test_approx_volume_limits_to_png(scratch, big_volume, warmup_input):
    out = scratch / "approx-png"
    config = convert_config(scratch, "approx-png", big_volume, out, warmup_input, percentiles=(1, 99),
                            method="approx")  # fmt: skip
    measured = run_child(config, scratch / "approx-png.log")
    assert measured["done"]["written"] == 44 and len(list(out.glob("*.png"))) == 44
    assert {"proved": True} in measured["done"]["approx"], "approx limits were not used"
    check_peak("approx volume -> PNG", measured)


def test_exact_volume_limits_to_npy(scratch, big_volume, warmup_input):
    out = scratch / "exact.npy"
    config = convert_config(scratch, "exact-npy", big_volume, out, warmup_input, percentiles=(1, 99),
                            method="exact")  # fmt: skip
    measured = run_child(config, scratch / "exact-npy.log")
    assert measured["done"]["written"] == 44 and out.stat().st_size > 44 * 2048 * 2048
    check_peak("exact volume -> npy", measured)


def test_a_slice_larger_than_the_cap_is_written_in_row_bands(scratch, wide_slice, warmup_input):
    out = scratch / "wide-png"
    config = convert_config(scratch, "wide-png", wide_slice, out, warmup_input, percentiles=(1, 99))
    measured = run_child(config, scratch / "wide-png.log")
    assert measured["done"]["written"] == 1
    import fastquant

    assert fastquant.read_metadata(out / "wide_0000.png")["shape"] == [8192, 12288]
    check_peak("one 384 MiB slice -> PNG (row bands)", measured)

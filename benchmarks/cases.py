"""The one registry of benchmark cases, candidates and targets.

``ratios.py`` times every case's candidates side by side and checks the targets; ``test_bench.py``
runs the same candidates under pytest-benchmark. A case holds its data (``setup``) and candidates,
each a function of that data. A target compares two candidates' figures: ``Target("fixed", "out=",
"floor", "<=", 1.3)`` means fastquant with ``out=`` takes at most 1.3× the floor's time.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import baselines
import numpy as np
import volumes

import fastquant as fq

SEED = 20240601
PCT, Q = (5, 95), [5, 95]
VMIN, VMAX = -2.0, 2.0
MIB = 2**20
SCRIPTS = Path(__file__).resolve().parent / "scripts"


@dataclass(frozen=True)
class Profile:
    name: str
    shrink: int  # plane sides of the large cases are divided by this (1: the targets' sizes)
    rounds: int  # minimum alternated rounds (>= 5)
    budget: float  # seconds of further rounds per case while this lasts
    reference_budget: float  # seconds for one run of fastquant.reference (see timing.once)
    processes: int  # fresh processes per candidate for import and one-shot medians
    small_sizes: tuple[int, ...]
    small_budget: float
    small_cap: int  # elements: a scaled-down layout larger than this is skipped, with a note
    volume_slices: int = 32  # 2048² slices of the bulk-conversion volume (issue 7: 32; quick: fewer, same slices)
    zarr_slices: int = 256  # 2048² float32 slices of the memory case's zarr (256: 4 GiB)
    zarr_cap: int = 512 * MIB  # its max_memory


FULL = Profile("full", 1, 5, 8.0, 20.0, 21, (64, 512, 2048), 5.0, 2**27)
QUICK = Profile("quick", 4, 5, 1.0, 3.0, 7, (64, 512, 2048), 1.0, 13_000_000, 32 // 4, 64, 256 * MIB)


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # what ``ratios.py --only`` selects (or a part of the name)
    title: str
    setup: Callable[[], dict] | None = None  # the data; process cases get the runner's context instead
    candidates: dict[str, Callable] = field(default_factory=dict)  # name -> f(data)
    once: dict[str, tuple[Callable, Callable]] = field(default_factory=dict)  # reference: (full, on data["part"])
    checks: dict[str, Callable[[dict], tuple[bool, str]]] = field(default_factory=dict)
    # "inproc"; "value" (f(data) -> a figure in `unit`, not a time: e.g. bytes written); "process" (f(context)
    # -> command, timed as a whole process); "memory" (f(context) -> command of a probe that prints JSON)
    kind: str = "inproc"
    # "budget"; "rounds" (multi-second baselines: the profile's rounds and no more; for processes, its rounds as
    # fresh processes after one warm-up instead of its process count after two) or "small"
    timing: str = "budget"
    skip: str = ""
    unit: str = ""  # of the figures: "s" (default) or "B" (default of "memory")
    # untimed, before every timed call of an in-process case (f(data)) and every run of a process case (f(ctx)):
    # e.g. reading an input file's pages back into the page cache (this host's memory manager, DAMON pageout,
    # evicts file pages idle for seconds: the call after a 12-s naive loop read the .npy from disk, and the
    # warm-cache comparison became a cold one for fastquant only)
    prepare: Callable[[dict], None] | None = None


@dataclass(frozen=True)
class Target:
    case: str
    candidate: str | tuple[str, ...]  # a tuple with `baseline` a tuple: the worst pair counts
    baseline: str | tuple[str, ...]
    op: str  # "<=", "<" or ">="
    limit: float
    what: str = "ratio"  # "difference" (candidate minus baseline, in the case's unit) or "value" (the candidate's
    # figure itself against `limit`, in the case's unit; `baseline` unused)
    label: str = ""

    def passes(self, value: float) -> bool:
        return {"<=": value <= self.limit, "<": value < self.limit, ">=": value >= self.limit}[self.op]


def standard_normal(shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def warm_up() -> None:
    """Run fastquant's kernels before the floor's, so that its threading-layer policy is in force."""
    x = standard_normal((1024, 1024))
    for kw in MODES.values():
        fq.to_uint8(x, **kw)
    fq.percentile(x, Q, method="approx")
    baselines.floor(x, np.empty(x.shape, np.uint8))


def agree(a, b, tol: int) -> tuple[bool, str]:
    diff = int(np.max(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)), initial=0))
    return diff <= tol, f"max |diff| {diff} (allowed {tol})"


def _floor(d: dict) -> np.ndarray:
    return baselines.floor(d["x"], d["floor out"])


FLOOR = {"floor": _floor, "floor A/A": _floor}  # the floor timed twice: the A/A control of a case's noise


MODES = {
    "fixed": {"vmin": VMIN, "vmax": VMAX},
    "one-sided": {"vmax": 1.0},
    "approx": {"percentiles": PCT},
    "exact": {"percentiles": PCT, "method": "exact"},
}


@dataclass(frozen=True)
class Layout:
    template: str  # name with the plane side as {s}
    shape: Callable[[int], tuple[int, ...]]
    axis: int | tuple[int, ...]
    kept: int  # an axis that is not reduced: the reference's part run takes 1/8 of it
    side: int  # plane side of the target row
    approx: float  # targets vs the floor
    exact: float


LAYOUTS = [
    Layout("C×H×W 21×{s}²", lambda s: (21, s, s), (1, 2), 0, 2048, 3.5, 5),
    Layout("C×H×W 21×{s}²", lambda s: (21, s, s), (1, 2), 0, 1024, 3.5, 5),
    Layout("H×W×C {s}²×21", lambda s: (s, s, 21), (0, 1), 2, 2048, 3.5, 5),
    Layout("N×C×H×W 16×16×{s}²", lambda s: (16, 16, s, s), (2, 3), 0, 512, 4, 6),
    Layout("H×W×C {s}²×128", lambda s: (s, s, 128), (0, 1), 2, 1024, 4, 6),
    Layout("per column {s}²", lambda s: (s, s), 0, 1, 8192, 8, 8),
    Layout("per pixel 64×{s}²", lambda s: (64, s, s), 0, 1, 1024, 25, 25),
]
CORE_MODES = {  # the public modes of the small-size row, as f(module, data)
    "to_uint8 default limits": lambda m, d: m.to_uint8(d["x"]),
    "to_uint8 vmin/vmax": lambda m, d: m.to_uint8(d["x"], VMIN, VMAX),
    "to_uint8 percentiles approx": lambda m, d: m.to_uint8(d["x"], percentiles=PCT),
    "to_uint8 percentiles exact": lambda m, d: m.to_uint8(d["x"], percentiles=PCT, method="exact"),
    "to_uint8 per-channel H×W×3 approx": lambda m, d: m.to_uint8(d["x3"], percentiles=PCT, axis=(0, 1)),
    "percentile exact": lambda m, d: m.percentile(d["x"], Q, method="exact"),
    "percentile approx": lambda m, d: m.percentile(d["x"], Q, method="approx"),
}


@functools.lru_cache(maxsize=1)
def square(side: int) -> dict:
    x = standard_normal((side, side))
    return {"x": x, "out": np.empty(x.shape, np.uint8), "floor out": np.empty(x.shape, np.uint8)}


@functools.lru_cache(maxsize=1)
def channels(side: int) -> dict:
    return {"x3": standard_normal((side, side, 3), SEED + 1)}


def layout_data(shape: tuple[int, ...], kept: int, swapped: bool = False) -> dict:
    x = standard_normal(shape)
    m = max(1, shape[kept] // 8)
    d = {"x": x, "out": np.empty(shape, np.uint8), "floor out": np.empty(shape, np.uint8)}
    d.update(part=np.take(x, np.arange(m), axis=kept), scale=shape[kept] / m)
    if swapped:
        d["swapped"] = x.astype(x.dtype.newbyteorder())
    return d


def small_data(x: Callable[[], np.ndarray], layout, s: int) -> dict:
    d = {"x": x()}
    return d if layout is not None else {**d, "x3": standard_normal((s, s, 3), SEED + s + 1)}


def core_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    n, n3 = 8192 // p.shrink, 4096 // p.shrink
    both = lambda: {**square(n), **channels(n3)}  # noqa: E731
    cases, targets = [], []
    for key, tol, target in (("fixed", 0, 1.3), ("approx", 1, 3), ("exact", 0, 4.5)):
        kw = MODES[key]

        def check(d, kw=kw, tol=tol):
            lo, hi = (VMIN, VMAX) if "vmin" in kw else fq.percentile(d["x"], Q, method="exact")
            return agree(fq.to_uint8(d["x"], **kw)[:256], fq.reference.to_uint8(d["x"][:256], lo, hi), tol)

        title = f"{n}² {'fixed limits (vmin=-2, vmax=2)' if key == 'fixed' else f'percentile limits (5, 95), {key}'}"
        candidates = {
            **FLOOR,
            "out=": lambda d, kw=kw: fq.to_uint8(d["x"], **kw, out=d["out"]),
            "allocating": lambda d, kw=kw: fq.to_uint8(d["x"], **kw),
        }
        cases.append(Case(key, "core", title, lambda: square(n), candidates, checks={"first rows == reference": check}))
        targets.append(Target(key, "out=", "floor", "<=", target))
    seed_calls = {
        "allocating": lambda d: fq.to_uint8(d["x"], percentiles=PCT),
        "seed Example 2": lambda d: baselines.seed_example2(d["x"]),
    }
    cases.append(
        Case(
            "approx vs seed",
            "core",
            f"{n}² percentile limits (5, 95), approx",
            lambda: square(n),
            seed_calls,
            timing="rounds",
        )
    )
    targets.append(Target("approx vs seed", "seed Example 2", "allocating", ">=", 50))

    def numpy_equal(d):
        same = np.array_equal(fq.percentile(d["x"], Q, method="exact"), np.percentile(d["x"], Q))
        same3 = np.array_equal(
            fq.percentile(d["x3"], Q, axis=(0, 1), method="exact"), np.percentile(d["x3"], Q, axis=(0, 1))
        )
        return (
            same and same3,
            f"global {'==' if same else '!='}, per-channel {'==' if same3 else '!='} numpy.percentile",
        )

    alone = {
        "fastquant global": lambda d: fq.percentile(d["x"], Q, method="exact"),
        "fastpercentile global": lambda d: baselines.fastpercentile_percentile(d["x"], Q),
        "fastquant per-channel": lambda d: fq.percentile(d["x3"], Q, axis=(0, 1), method="exact"),
        "fastpercentile per-channel": lambda d: baselines.fastpercentile_percentile(d["x3"], Q, axis=(0, 1)),
    }
    title = f'percentile(x, [5, 95], method="exact") alone, {n}² and {n3}²×3 axis=(0, 1)'
    cases.append(Case("percentile alone", "core", title, both, alone, checks={"same values": numpy_equal}))
    for where in ("global", "per-channel"):
        targets.append(Target("percentile alone", f"fastpercentile {where}", f"fastquant {where}", ">=", 3))
    ex3 = {
        "fastquant": lambda d: fq.to_uint8(d["x3"], percentiles=PCT, axis=(0, 1)),
        "seed Example 3": lambda d: baselines.seed_example3(d["x3"]),
    }
    cases.append(Case("Example 3", "core", f"per-channel {n3}²×3 (Example 3), approx", both, ex3, timing="rounds"))
    targets.append(Target("Example 3", "seed Example 3", "fastquant", ">=", 50))
    return cases, targets


def call(module, layout: Layout, kw: dict, x: np.ndarray, out=None):
    return module.to_uint8(x, **kw, axis=layout.axis, **({} if out is None else {"out": out}))


def samples_for_approx(shape: tuple[int, ...], axis) -> bool:
    """Whether ``to_uint8(x, percentiles=..., axis=axis)`` of this shape takes sampled limits (approx proper),
    rather than the exact ones (too many groups, or groups too small to sample sparsely): set by the shape alone."""
    from fastquant import _approx, _plan

    axes = tuple(range(len(shape))) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    plan = _plan.make_plan(tuple(shape), axes, True)
    return plan.path == "engine" and _approx.sample_stride(plan.geometry.layout) is not None


def layout_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    cases, targets = [], []
    for lay in LAYOUTS:
        s = lay.side // p.shrink
        name = lay.template.format(s=s)
        candidates, once, checks = dict(FLOOR), {}, {}
        for mode, kw in MODES.items():
            candidates[mode] = lambda d, lay=lay, kw=kw: call(fq, lay, kw, d["x"], d["out"])
            full = lambda d, lay=lay, kw=kw: call(fq.reference, lay, kw, d["x"])  # noqa: E731
            once[f"{mode} reference"] = (full, lambda d, lay=lay, kw=kw: call(fq.reference, lay, kw, d["part"]))
            tol = 1 if mode == "approx" else 0
            checks[f"{mode} == reference"] = lambda d, lay=lay, kw=kw, tol=tol: agree(
                call(fq, lay, kw, d["part"]), call(fq.reference, lay, kw, d["part"]), tol
            )
        setup = lambda lay=lay, s=s: layout_data(lay.shape(s), lay.kept)  # noqa: E731
        cases.append(Case(name, "layouts", f"{name} axis={lay.axis}", setup, candidates, once, checks))
        limits = {"approx": lay.approx, "exact": lay.exact, "one-sided": 2.5, "fixed": 1.5}
        labels = dict.fromkeys(MODES, "")
        if not samples_for_approx(lay.shape(s), lay.axis):
            # Issue 6: where approx uses the exact limits, its row's target is the exact column's.
            limits["approx"] = lay.exact
            labels["approx"] = f"approx ≤ {lay.exact:g}× floor (approx takes the exact limits here)"
        targets += [Target(name, mode, "floor", "<=", limits[mode], label=labels[mode]) for mode in MODES]
        refs = tuple(f"{m} reference" for m in MODES)
        targets.append(Target(name, tuple(MODES), refs, "<", 1.0, label="every mode faster than fastquant.reference"))
    # Many percentiles of many groups: more bracket members than one collection holds (collected in batches)
    nchw, many = (16, 16, 512 // p.shrink, 512 // p.shrink), [1, 5, 25, 50, 75, 95, 99]
    name = f"percentiles {many} of N×C×H×W {'×'.join(map(str, nchw))}"
    candidates = {
        "fastquant": lambda d: fq.percentile(d["x"], many, axis=(2, 3), method="exact"),
        "numpy.percentile": lambda d: np.percentile(d["x"], many, axis=(2, 3)),
    }

    def same_as_numpy(d):
        same = np.array_equal(
            fq.percentile(d["x"], many, axis=(2, 3), method="exact"), np.percentile(d["x"], many, axis=(2, 3))
        )
        return same, "== numpy.percentile" if same else "!= numpy.percentile"

    setup = lambda: {"x": standard_normal(nchw)}  # noqa: E731
    title = f'{name}, axis=(2, 3), method="exact"'
    cases.append(
        Case(name, "layouts", title, setup, candidates, checks={"same values": same_as_numpy}, timing="rounds")
    )
    targets.append(Target(name, "fastquant", "numpy.percentile", "<", 1.0))
    for shape, axis in (((8192 // p.shrink,) * 2, None), ((21, 1024 // p.shrink, 1024 // p.shrink), (1, 2))):
        name = f"byte-swapped {'×'.join(map(str, shape))}"
        candidates = {}
        for mode, kw in MODES.items():
            candidates[mode] = lambda d, kw=kw, axis=axis: fq.to_uint8(d["x"], **kw, axis=axis, out=d["out"])
            candidates[f"{mode} >f4"] = lambda d, kw=kw, axis=axis: fq.to_uint8(
                d["swapped"], **kw, axis=axis, out=d["out"]
            )
            targets.append(Target(name, f"{mode} >f4", mode, "<=", 1.3))
        setup = lambda shape=shape: layout_data(shape, 0, swapped=True)  # noqa: E731
        cases.append(Case(name, "byteswap", f"{name} float32 axis={axis}, big- vs little-endian", setup, candidates))
    return cases, targets


def small_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    families = {"2-D {s}² and {s}²×3 (every public mode)": (lambda s: (s, s, 3), None)}
    families.update({lay.template: (lay.shape, lay) for lay in LAYOUTS})
    cases, targets = [], []
    for template, (shape, lay) in families.items():
        if lay is None:
            modes = CORE_MODES
        else:
            modes = {m: lambda mod, d, lay=lay, kw=kw: call(mod, lay, kw, d["x"]) for m, kw in MODES.items()}
        for s in p.small_sizes:
            name = f"small {template.format(s=s)}"
            size = math.prod(shape(s))
            skip = (
                f"skipped: {size / 1e6:.0f} M elements > cap of {p.small_cap / 1e6:.0f} M" if size > p.small_cap else ""
            )
            x = functools.partial(standard_normal, shape(s)[:2] if lay is None else shape(s), SEED + s)
            setup = functools.partial(small_data, x, None if lay is None else 0, s)
            candidates = {}
            for mode, f in modes.items():
                candidates[mode] = lambda d, f=f: f(fq, d)
                candidates[f"{mode} reference"] = lambda d, f=f: f(fq.reference, d)
            control = list(modes.values())[-1]
            candidates["control"] = candidates["control A/A"] = lambda d, f=control: f(fq.reference, d)

            def check(d, modes=modes):
                bad = []
                for mode, f in modes.items():
                    a, b = f(fq, d), f(fq.reference, d)
                    ok = (
                        np.array_equal(a, b)
                        if "approx" not in mode
                        else (mode.startswith("percentile") or agree(a, b, 1)[0])
                    )
                    bad += [] if ok else [mode]
                return not bad, "all modes as the reference" if not bad else f"differ: {', '.join(bad)}"

            title = f"{template.format(s=s)}, fastquant vs reference"
            cases.append(
                Case(name, "small", title, setup, candidates, checks={"== reference": check}, timing="small", skip=skip)
            )
            targets.append(Target(name, tuple(modes), tuple(f"{m} reference" for m in modes), "<=", 1.05))
    return cases, targets


def process_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    py = sys.executable
    imports = {
        "python": lambda c: [py, "-c", "pass"],
        "import numpy": lambda c: [py, "-c", "import numpy"],
        "import fastquant": lambda c: [py, "-c", "import fastquant"],
    }

    def no_jit(c):
        import json
        import subprocess

        out = subprocess.run(
            [py, str(SCRIPTS / "imports.py")], cwd=c["tmp"], env=c["env"], capture_output=True, text=True, check=True
        )
        loaded = json.loads(out.stdout)
        return not {"numba", "llvmlite"} & set(loaded), f"modules loaded: {loaded or 'none'}"

    oneshot = {
        "seed script": lambda c: [py, str(SCRIPTS / "oneshot_seed.py"), c["tmp"], str(SEED)],
        "fastquant.save script": lambda c: [py, str(SCRIPTS / "oneshot_fastquant.py"), c["tmp"], str(SEED)],
    }
    side = 16384 // p.shrink
    memory = {
        m: lambda c, m=m: [py, str(SCRIPTS / "memprobe.py"), m, str(side), str(SEED)] for m in ("approx", "exact")
    }
    cases = [
        Case(
            "import",
            "process",
            "import fastquant (fresh process)",
            candidates=imports,
            checks={"numba not imported": no_jit},
            kind="process",
        ),
        Case(
            "one-shot",
            "process",
            "one-shot script: 512² map, 5/95 percentiles, PNG written",
            candidates=oneshot,
            kind="process",
        ),
        Case(
            "memory",
            "process",
            f"extra peak memory, {side}² float32, percentile limits",
            candidates=memory,
            kind="memory",
        ),
    ]
    targets = [
        Target("import", "import fastquant", "import numpy", "<=", 0.080, "difference"),
        Target("one-shot", "fastquant.save script", "seed script", "<=", 1.25),
        Target("memory", ("approx", "exact"), ("output", "output"), "<=", 64 * MIB, "difference", "≤ output + 64 MiB"),
    ]
    return cases, targets


# --- bulk conversion (issue 7) ----------------------------------------------------------------------------------

SIDE = 2048  # plane side of the bulk-conversion volumes (the quick profile has fewer slices, never smaller ones)
ZARR_CHUNK = 1024  # the memory case's zarr chunks: 1 × 1024 × 1024 (4 MiB)
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def volume_levels(slices: int) -> np.ndarray:
    """The levels fastquant.convert writes with per-slice limits: to_uint8(volume, percentiles, axis=(1, 2))."""
    return fq.to_uint8(np.load(volumes.npy(slices, SIDE, SEED), mmap_mode="r"), percentiles=PCT, axis=(1, 2))


def warm_input(d: dict) -> None:
    """Read the benchmark volume's file through, so that its pages are in the page cache (Case.prepare)."""
    volumes.read_through(d["npy"])


def convert_data(slices: int, levels: bool = False) -> dict:
    d = {"npy": volumes.npy(slices, SIDE, SEED)}
    return {**d, "levels": volume_levels(slices)} if levels else d


def to_png(d: dict, name: str, **kw):
    """fastquant.convert of the benchmark volume to PNG slices (percentiles 5, 95) in the scratch folder `name`."""
    return fq.convert(d["npy"], volumes.output_path(name), percentiles=PCT, overwrite=True, **kw)


def write_slices(levels: np.ndarray, threads: int) -> int:
    """fastquant's PNG writer alone on every slice (default level, each to a discarding sink); bytes encoded."""
    from fastquant._png import write_png

    def one(z: int) -> int:
        sink = baselines.Discard()
        write_png(sink, levels[z])
        return sink.count

    if threads == 1:
        return sum(map(one, range(len(levels))))
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, range(len(levels))))


def pillow_slices(levels: np.ndarray, compress_level: int) -> int:
    """Pillow's PNG writer on every slice, each to a discarding sink; bytes encoded."""
    from PIL import Image

    total = 0
    for z in range(len(levels)):
        sink = baselines.Discard()
        Image.fromarray(levels[z]).save(sink, format="PNG", compress_level=compress_level)
        total += sink.count
    return total


def decodes_to_levels(d: dict) -> tuple[bool, str]:
    """fastquant's PNG slices (of the bytes case) decode, through Pillow and OpenCV, to to_uint8's levels."""
    import cv2
    from PIL import Image

    names = sorted(volumes.output_path("png-bytes").glob("*.png"))
    bad = [
        n.name
        for z, n in enumerate(names)
        if not np.array_equal(np.asarray(Image.open(n)), d["levels"][z])
        or not np.array_equal(cv2.imread(str(n), cv2.IMREAD_UNCHANGED), d["levels"][z])
    ]
    ok = not bad and len(names) == len(d["levels"])
    return ok, f"{len(names)} files, {'all equal' if ok else f'differ: {bad[:3]}'} (Pillow and OpenCV)"


def same_as_raw(d: dict) -> tuple[bool, str]:
    """The TIFF and zarr outputs hold the raw file's levels."""
    import tifffile
    import zarr

    raw = np.fromfile(volumes.output_path("levels.u8"), np.uint8).reshape(d["levels"].shape)
    tiff = tifffile.imread(volumes.output_path("levels.tif"))
    z = zarr.open_array(str(volumes.output_path("levels.zarr")), mode="r")[...]
    same = {n: np.array_equal(a, raw) for n, a in (("TIFF", tiff), ("zarr", z), ("levels", d["levels"]))}
    return all(same.values()), ", ".join(f"{n} {'==' if ok else '!='}" for n, ok in same.items()) + " raw"


def fastquant_command() -> list[str]:
    """The ``fastquant`` console script next to this interpreter (``python -m fastquant._cli`` without one)."""
    script = Path(sys.executable).with_name("fastquant")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fastquant._cli"]


def convert_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    n, py = p.volume_slices, sys.executable
    vol = f"{n}×{SIDE}² float32 .npy"
    setup = functools.partial(convert_data, n)
    with_levels = functools.partial(convert_data, n, True)
    slice_png = lambda d: to_png(d, "png-slice", limits="slice")  # noqa: E731
    peers = {
        "fastquant.convert": slice_png,
        "naive loop": lambda d: baselines.naive_convert(d["npy"], volumes.output_path("png-naive")),
        "tuned peer": lambda d: baselines.peer_convert(d["npy"], volumes.output_path("png-peer"), WORKERS),
    }
    limits = {
        'limits="slice"': slice_png,
        'limits="volume", exact': lambda d: to_png(d, "png-volume", limits="volume", method="exact"),
    }
    sizes = {
        "fastquant": lambda d: sum(os.path.getsize(f) for f in to_png(d, "png-bytes", limits="slice").names),
        "Pillow compress_level=1": lambda d: pillow_slices(d["levels"], 1),
    }
    writer = {
        "write_png 1 thread": lambda d: write_slices(d["levels"], 1),
        "Pillow compress_level=1": lambda d: pillow_slices(d["levels"], 1),
    }
    threads = {
        "write_png 1 thread": lambda d: write_slices(d["levels"], 1),
        "write_png 2 threads": lambda d: write_slices(d["levels"], 2),
    }
    uncompressed = {
        "TIFF": lambda d: fq.convert(
            d["npy"], volumes.output_path("levels.tif"), percentiles=PCT, limits="slice", overwrite=True
        ),
        "zarr": lambda d: fq.convert(
            d["npy"], volumes.output_path("levels.zarr"), percentiles=PCT, limits="slice", overwrite=True
        ),
        "quantize and write raw": lambda d: baselines.raw_convert(d["npy"], volumes.output_path("levels.u8")),
    }

    def npy_path(c) -> str:
        return str(volumes.npy(n, SIDE, SEED))

    command = {
        "fastquant convert": lambda c: [
            *fastquant_command(),
            *("convert", npy_path(c), os.path.join(c["tmp"], "cli")),
            *"--percentiles 5 95 --limits slice --overwrite --quiet".split(),
        ],
        "naive script": lambda c: [py, str(SCRIPTS / "convert_naive.py"), npy_path(c), os.path.join(c["tmp"], "naive")],
    }
    zn, cap = p.zarr_slices, p.zarr_cap
    gib = zn * SIDE * SIDE * 4 / 2**30
    options = {"percentiles": list(PCT), "limits": "volume", "method": "exact", "max_memory": f"{cap // MIB}MiB"}

    def probe(c, **config) -> list[str]:
        return [py, str(SCRIPTS / "convert_memprobe.py"), json.dumps(config)]

    def memory_job(c) -> list[str]:
        store = volumes.zarr_store(zn, SIDE, SEED, ZARR_CHUNK)
        output = os.path.join(c["tmp"], "memory.tif")
        job = {"input": str(store), "output": output, "options": {**options, "overwrite": True}}
        return probe(c, mode="convert", warmup=True, **job)

    def numpy_limits(c) -> tuple[bool, str]:
        got = c["results"]["exact volume limits"]["limits"]
        command = [py, str(SCRIPTS / "percentile_reference.py"), str(zn), str(SIDE), str(SEED), *map(str, PCT)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        ref = json.loads(out.stdout)
        ok = [got["lo"][0], got["hi"][0]] == ref["values"]
        lo, hi = ref["values"]
        return ok, (
            f"fastquant {'==' if ok else '!='} numpy.percentile of the {ref['finite']} finite values "
            f"({lo:.9g}, {hi:.9g}; numpy regenerated the data slice by slice, in {ref['seconds']:.0f} s)"
        )

    def sampler(c) -> tuple[bool, str]:
        """The sampler sees a deliberate allocation; the job's samples came every <= 10 ms, or else the kernel's
        gap-free high-water mark (VmHWM, which counts file pages too: an upper bound) is within the cap."""
        size = 64 * MIB
        command = probe(c, mode="control", bytes=size, hold=0.05)
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        control = json.loads(out.stdout.splitlines()[-1])
        job = c["results"]["exact volume limits"]
        seen, gap, bound = control["extra"] >= 0.95 * size, job["max_gap"], job["hwm_extra"]
        timely = gap <= 0.010
        covered = bound is not None and bound <= cap
        text = f"control: {size // MIB} MiB held 50 ms seen as +{control['extra'] / MIB:.0f} MiB; job: "
        if timely:
            text += f"samples every <= 10 ms (largest gap {gap * 1e3:.1f} ms)"
        else:
            text += f"a gap of {gap * 1e3:.1f} ms between samples (machine busy)"
        if bound is not None:
            text += (
                f"; kernel high-water mark +{bound / MIB:.0f} MiB (VmHWM - VmRSS, file pages included: a bound "
                f"no gap misses){'' if timely else (', within' if covered else ', over') + ' the cap'}"
            )
        return seen and (timely or covered), text

    cases = [
        Case(
            "convert vs peers",
            "convert",
            f'{vol} → PNG slices, percentiles (5, 95), limits="slice", {WORKERS} workers; naive loop: seed Example 2 '
            f"+ Pillow default level; tuned peer: memmap + np.percentile + cv2.imwrite level 1, {WORKERS} threads",
            setup,
            peers,
            timing="rounds",
            prepare=warm_input,
        ),
        Case(
            "convert limits", "convert", f"{vol} → PNG slices, percentiles (5, 95)", setup, limits, prepare=warm_input
        ),
        Case(
            "convert PNG bytes",
            "convert",
            f'{vol} → PNG slices, limits="slice": total bytes of the files vs Pillow on the same levels',
            with_levels,
            sizes,
            checks={"files decode to to_uint8's levels": decodes_to_levels},
            kind="value",
            unit="B",
        ),
        Case(
            "convert PNG writer",
            "convert",
            f"PNG writer alone on the {n} slices' levels (2048², to a discarding sink), default level",
            with_levels,
            writer,
            timing="rounds",
        ),
        Case("convert PNG threads", "convert", f"PNG writer alone on the {n} slices' levels", with_levels, threads),
        Case(
            "convert uncompressed",
            "convert",
            f'{vol} → uncompressed TIFF / zarr, limits="slice", vs to_uint8 per slice + raw bytes to one file',
            with_levels,
            uncompressed,
            checks={"same levels": same_as_raw},
        ),
        Case(
            "convert command",
            "convert",
            f"{vol} → PNG slices, percentiles (5, 95), per slice, as whole processes (median of {p.rounds})",
            candidates=command,
            kind="process",
            timing="rounds",
            prepare=lambda c: volumes.read_through(volumes.npy(n, SIDE, SEED)),
        ),
        Case(
            "convert memory",
            "convert",
            f'{gib:g} GiB zarr ({zn}×{SIDE}² float32, chunks 1×{ZARR_CHUNK}², uncompressed) → TIFF, limits="volume", '
            f'method="exact", max_memory="{cap // MIB}MiB"',
            candidates={"exact volume limits": memory_job},
            checks={"limits == numpy.percentile": numpy_limits, "sampler": sampler},
            kind="memory",
        ),
    ]
    writer_label = "write_png, 1 thread, ≥ 8× the throughput of Pillow compress_level=1"
    threads_label = "2 threads ≥ 1.6× the throughput of 1"
    memory_label = f"peak RssAnon above its value after imports ≤ {cap // MIB} MiB"
    targets = [
        Target("convert vs peers", "naive loop", "fastquant.convert", ">=", 30),
        Target("convert vs peers", "tuned peer", "fastquant.convert", ">=", 6),
        Target("convert limits", 'limits="volume", exact', 'limits="slice"', "<=", 1.3),
        Target("convert PNG bytes", "fastquant", "Pillow compress_level=1", "<=", 1.10),
        Target(*("convert PNG writer", "Pillow compress_level=1", "write_png 1 thread", ">=", 8), label=writer_label),
        Target(*("convert PNG threads", "write_png 1 thread", "write_png 2 threads", ">=", 1.6), label=threads_label),
        Target("convert uncompressed", "TIFF", "quantize and write raw", "<=", 1.5),
        Target("convert uncompressed", "zarr", "quantize and write raw", "<=", 1.5),
        Target("convert command", "naive script", "fastquant convert", ">=", 8),
        Target("convert memory", "exact volume limits", "", "<=", cap, "value", label=memory_label),
    ]
    return cases, targets


@functools.lru_cache(maxsize=1)
def colour_square(side: int) -> dict:
    x = standard_normal((side, side), SEED + 2)
    return {"x": x, "out": np.empty(x.shape, np.uint8), "rgb": np.empty(x.shape + (3,), np.uint8)}


def _matplotlib_viridis(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    import matplotlib
    from matplotlib.colors import Normalize

    return matplotlib.colormaps["viridis"](Normalize(lo, hi)(x), bytes=True)


def colour_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    """Issue 8: colorize against matplotlib, against to_uint8 with the same limits, and against its reference."""
    n = 4096 // p.shrink
    setup = lambda: colour_square(n)  # noqa: E731

    def same_as_matplotlib(d):
        ours = fq.colorize(d["x"][:512], "viridis", VMIN, VMAX, compat="matplotlib")
        same = np.array_equal(ours, _matplotlib_viridis(d["x"][:512], VMIN, VMAX)[..., :3])
        return same, f"compat='matplotlib' {'==' if same else '!='} matplotlib on the first 512 rows"

    fixed = {
        "colorize out=": lambda d: fq.colorize(d["x"], "viridis", VMIN, VMAX, out=d["rgb"]),
        "matplotlib": lambda d: _matplotlib_viridis(d["x"], VMIN, VMAX),
        "colorize compat='matplotlib'": lambda d: fq.colorize(d["x"], "viridis", VMIN, VMAX, compat="matplotlib"),
    }
    title = f"colorize {n}² float32, fixed limits (-2, 2), viridis → RGB; matplotlib: cmap(Normalize(lo, hi)(x))"
    cases = [Case("colorize fixed", "colour", title, setup, fixed, checks={"compat": same_as_matplotlib})]
    targets = [Target("colorize fixed", "matplotlib", "colorize out=", ">=", 12)]

    def same_levels(d):
        levels = fq.to_uint8(d["x"], percentiles=(1, 99))
        table = np.rint(np.load(Path(fq.__file__).parent / "_data" / "colormaps.npz")["viridis"] * 255)
        same = np.array_equal(fq.colorize(d["x"], "viridis", percentiles=(1, 99)), table.astype(np.uint8)[levels])
        return same, f"colours {'==' if same else '!='} viridis[to_uint8 levels]"

    pct = {
        "colorize out=": lambda d: fq.colorize(d["x"], "viridis", percentiles=(1, 99), out=d["rgb"]),
        "to_uint8 out=": lambda d: fq.to_uint8(d["x"], percentiles=(1, 99), out=d["out"]),
    }
    title = f"colorize {n}², percentiles (1, 99), approx, vs to_uint8 with the same options"
    cases.append(Case("colorize percentiles", "colour", title, setup, pct, checks={"levels": same_levels}))
    targets.append(Target("colorize percentiles", "colorize out=", "to_uint8 out=", "<=", 1.6))
    for side in p.small_sizes:
        small = {
            "colorize": lambda d: fq.colorize(d["x"], "viridis", percentiles=(1, 99), method="exact"),
            "reference": lambda d: fq.reference.colorize(d["x"], "viridis", percentiles=(1, 99), method="exact"),
        }

        def equal(d):
            kw = {"percentiles": (1, 99), "method": "exact"}
            same = np.array_equal(fq.colorize(d["x"], "viridis", **kw), fq.reference.colorize(d["x"], "viridis", **kw))
            return same, "== reference" if same else "!= reference"

        name = f"colorize {side}²"
        data = lambda side=side: {"x": standard_normal((side, side), SEED + 3)}  # noqa: E731
        title = f"{name}, percentiles (1, 99) exact"
        cases.append(Case(name, "colour", title, data, small, checks={"==": equal}, timing="small"))
        targets.append(Target(name, "colorize", "reference", "<=", 1.05))

    classes, side = 21, 1024 // p.shrink
    scores_setup = lambda: segmentation_scores(classes, side)  # noqa: E731

    def argmax_equal(d):
        same = np.array_equal(fq.labels(d["scores"]), np.argmax(d["scores"], axis=0))
        return same, "== numpy.argmax(axis=0)" if same else "!= numpy.argmax"

    argmax = {
        "labels": lambda d: fq.labels(d["scores"]),
        "numpy.argmax": lambda d: np.argmax(d["scores"], axis=0),
        "read floor": lambda d: baselines.class_sum(d["scores"], d["sums"]),
    }
    title = f"labels of {classes}×{side}² float32 scores; read floor: a parallel kernel summing the scores per pixel"
    cases.append(Case("labels", "colour", title, scores_setup, argmax, checks={"argmax": argmax_equal}))
    targets += [
        Target("labels", "numpy.argmax", "labels", ">=", 5),
        Target("labels", "labels", "read floor", "<=", 1.5),
    ]
    png = {
        "fastquant.save": lambda d: fq.save(io.BytesIO(), d["labels"], palette="voc", format="PNG"),
        "Pillow": lambda d: baselines.pillow_palette_png(d["labels"], fq._colormaps.voc_palette()),
    }
    title = f"labels → palette PNG, {side}² (21 classes, VOC palette, index 255 transparent), to memory"
    cases.append(Case("labels PNG", "colour", title, scores_setup, png))
    targets.append(Target("labels PNG", "Pillow", "fastquant.save", ">=", 5))
    return cases, targets


def channel_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    """Issue 8: composite against to_uint8 of the same input; composite, overlay, grid and labels against their
    references at the small sizes."""
    n = 2048 // p.shrink
    setup = lambda: {"x": standard_normal((4, n, n), SEED + 5)}  # noqa: E731
    per_channel = {"percentiles": (1, 99), "axis": (1, 2)}
    calls = {
        "composite": lambda d: fq.composite(d["x"], channel_axis=0, percentiles=(1, 99)),
        "to_uint8": lambda d: fq.to_uint8(d["x"], **per_channel),
    }

    def same_limits(d):
        lo, hi = fq.limits(d["x"], **per_channel)
        same = np.array_equal(
            fq.composite(d["x"], channel_axis=0, vmin=lo.ravel(), vmax=hi.ravel()),
            fq.composite(d["x"], channel_axis=0, percentiles=(1, 99)),
        )
        return same, f"composite {'==' if same else '!='} composite with to_uint8's limits"

    title = f"composite of 4×{n}² float32 (C×H×W), per-channel percentiles (1, 99), vs to_uint8 of the same"
    cases = [Case("composite", "channels", title, setup, calls, checks={"limits": same_limits})]
    targets = [Target("composite", "composite", "to_uint8", "<=", 2)]
    for side in p.small_sizes:
        name = f"{side}²"

        def data(side=side):
            rng = np.random.default_rng(SEED + side)
            image = rng.integers(0, 256, (side, side), dtype=np.uint8)
            return {
                "x4": standard_normal((4, side, side), SEED + 6),
                "image": image,
                "labels": rng.integers(0, 21, (side, side), dtype=np.uint8),
                "map": standard_normal((side, side), SEED + 7),
                "tiles": standard_normal((4, side // 2, side // 2), SEED + 8),
                "scores": standard_normal((5, side, side), SEED + 9),
            }

        functions = {
            "composite": lambda m, d: m.composite(d["x4"], channel_axis=0, percentiles=(1, 99), method="exact"),
            "overlay labels": lambda m, d: m.overlay(d["image"], d["labels"], alpha=0.4),
            "overlay map": lambda m, d: m.overlay(d["image"], d["map"], percentiles=(1, 99), method="exact"),
            "grid": lambda m, d: m.grid(d["tiles"], ncols=2, method="exact"),
            "labels": lambda m, d: m.labels(d["scores"]),
            "to_uint16": lambda m, d: m.to_uint16(d["map"], percentiles=(1, 99)),
        }
        for function, call in functions.items():
            pair = {
                "fastquant": lambda d, call=call: call(fq, d),
                "reference": lambda d, call=call: call(fq.reference, d),
            }

            def equal(d, call=call):
                same = np.array_equal(call(fq, d), call(fq.reference, d))
                return same, "== reference" if same else "!= reference"

            row = f"{function} {name}"
            title = f"{function} at {name} vs its fastquant.reference version"
            cases.append(Case(row, "channels", title, data, pair, checks={"==": equal}, timing="small"))
            targets.append(Target(row, "fastquant", "reference", "<=", 1.05))
    return cases, targets


def uint16_cases(p: Profile) -> tuple[list[Case], list[Target]]:
    """Issue 8: to_uint16 against to_uint8 on 8192², fixed and percentile limits."""
    n = 8192 // p.shrink

    def setup():
        d = square(n)
        return {**d, "out16": np.empty(d["x"].shape, np.uint16)}

    def check(d):
        lo, hi = fq.percentile(d["x"], (1, 99), method="exact")
        got = fq.to_uint16(d["x"], percentiles=(1, 99))[:256]
        return agree(got, fq.reference.to_uint16(d["x"][:256], lo, hi), 0)

    fixed = {
        "to_uint16 out=": lambda d: fq.to_uint16(d["x"], VMIN, VMAX, out=d["out16"]),
        "to_uint8 out=": lambda d: fq.to_uint8(d["x"], VMIN, VMAX, out=d["out"]),
    }
    pct = {
        "to_uint16 out=": lambda d: fq.to_uint16(d["x"], percentiles=(1, 99), out=d["out16"]),
        "to_uint8 exact out=": lambda d: fq.to_uint8(d["x"], percentiles=(1, 99), method="exact", out=d["out"]),
    }
    cases = [
        Case("to_uint16 fixed", "uint16", f"to_uint16 {n}² fixed limits (-2, 2) vs to_uint8", setup, fixed),
        Case(
            "to_uint16 percentiles", "uint16", f"to_uint16 {n}² percentiles (1, 99) vs to_uint8 exact", setup, pct,
            checks={"first rows == reference": check},
        ),
    ]  # fmt: skip
    targets = [
        Target("to_uint16 fixed", "to_uint16 out=", "to_uint8 out=", "<=", 1.35),
        Target("to_uint16 percentiles", "to_uint16 out=", "to_uint8 exact out=", "<=", 1.2),
    ]
    return cases, targets


@functools.lru_cache(maxsize=1)
def segmentation_scores(classes: int, side: int) -> dict:
    """Class scores that look like a segmentation network's: smooth blobs per class plus noise."""
    rng = np.random.default_rng(SEED + 4)
    coarse = rng.standard_normal((classes, side // 64 + 1, side // 64 + 1)).astype(np.float32) * 4
    scores = np.repeat(np.repeat(coarse, 64, axis=1), 64, axis=2)[:, :side, :side]
    scores = np.ascontiguousarray(scores + rng.standard_normal((classes, side, side), dtype=np.float32))
    return {"scores": scores, "sums": np.empty((side, side), np.float32), "labels": fq.labels(scores)}


def build(p: Profile) -> tuple[list[Case], list[Target]]:
    """Every case and target for profile `p`, in the order of the table."""
    cases, targets = [], []
    parts = (core_cases, layout_cases, small_cases, process_cases, convert_cases, colour_cases, channel_cases,
             uint16_cases)  # fmt: skip
    for part in parts:
        c, t = part(p)
        cases += c
        targets += t
    return cases, targets


def free() -> None:
    """Drop the cached large arrays (before the memory probe runs)."""
    square.cache_clear()
    channels.cache_clear()
    colour_square.cache_clear()
    segmentation_scores.cache_clear()
    volume_levels.cache_clear()

"""Issue 7's safety requirements of ``fastquant convert``.

The kill and disk-full tests run the installed command (the ``fastquant`` console script) in subprocesses; the
others call its entry point, ``fastquant._cli.main``, in this process (fast), where log records of level WARNING and
above count as stderr lines (a process prints them there).

- Kill: real runs killed with SIGKILL at observed phases (during the limit passes, after the first files, near
  the end) leave nothing incomplete under a final name, and ``--resume`` then gives output byte-identical to an
  uninterrupted run; PNG slices (exact limits: files appear as they complete; approx: at the end) and two
  single-file outputs (TIFF, .npy).
- Disk full (RLIMIT_FSIZE with SIGXFSZ ignored): an error on stderr, exit 1, no partial file, an older output
  untouched.
- Overwrite: existing outputs are never replaced without ``--overwrite`` (bytes and mtime), and are with it.
- Traversal: a ``--name`` template cannot write outside the output directory; nothing is written anywhere.
- Bad inputs (missing, unreadable, truncated, unsupported dtype, pickled objects): one line on stderr naming the
  input, exit 1, no traceback, no output; usage errors exit 2; ``--help`` exits 0.
- Resume refuses when the input's identity (path, size, mtime_ns, shape, dtype) or the options differ.
- The input is never modified (bytes and mtime), including by a killed run.

Randomness is seeded; nothing asserts on time: the kill tests observe the phase (the output directory, the
temporaries' sizes, the input's resident pages in the process's memory map) and kill when it is reached.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TEMP_PREFIX, TEMP_SUFFIX = ".fastquant-", ".tmp"
_SCRIPT = Path(sys.executable).with_name("fastquant")
# the installed console script; `python -m fastquant._cli` where it is missing (run with cwd=tmp, never a checkout)
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "fastquant._cli"]
RUN_TIMEOUT = 300  # seconds; generous on a loaded machine, a hang still fails


# --- helpers --------------------------------------------------------------------------------------------------


def fastquant(*args, cwd, preexec_fn=None) -> subprocess.CompletedProcess:
    """Run the ``fastquant`` command with `args` (strings or paths)."""
    return subprocess.run(
        [*COMMAND, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        preexec_fn=preexec_fn,
    )  # fmt: skip


@dataclasses.dataclass
class Ran:
    returncode: int | None
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, caplog):
    """Run the command's ``main`` in this process (the console script calls it): its exit status and output, the
    log records of level WARNING and above counted as stderr lines (a process prints them there: logging's last
    resort handler)."""
    from fastquant._cli import main

    def run(*args) -> Ran:
        capsys.readouterr()
        caplog.clear()
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse: usage errors, --help
            status = exc.code
        out, err = capsys.readouterr()
        logged = "".join(f"{r.name}: {r.getMessage()}\n" for r in caplog.records if r.levelno >= logging.WARNING)
        return Ran(status, out, logged + err)

    return run


def assert_error(proc, *needles: str) -> str:
    """Exit 1 with exactly one line on stderr, ``fastquant: error: ...`` containing every needle."""
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), f"stderr is not one line:\n{proc.stderr}"
    assert lines[0].startswith("fastquant: error: ") and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def temps(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if is_temp(n)) if directory.is_dir() else []


def finals(directory: Path) -> dict[str, bytes]:
    """The files under final names in `directory` (not the temporaries): name -> bytes."""
    if not directory.is_dir():
        return {}
    return {n: (directory / n).read_bytes() for n in sorted(os.listdir(directory)) if not is_temp(n)}


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (itself included): relative path -> (kind, sha256 of bytes, size, mtime_ns)."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))] if root.exists() or root.is_symlink() else []:
        st = os.lstat(path)
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path), st.st_mtime_ns)
        elif path.is_dir():
            found[rel] = ("dir",)
        else:
            found[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return found


def decodes(path: Path) -> np.ndarray:
    """The PNG's pixels, decoded whole by Pillow (a truncated file raises)."""
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


class Pristine:
    """The bytes, size and mtime of an input, to check that nothing modified it."""

    def __init__(self, path: Path):
        self.path = path
        self.state = self._state()

    def _state(self):
        st = os.stat(self.path)
        return hashlib.sha256(self.path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns

    def check(self) -> None:
        assert self._state() == self.state, f"the input {self.path} was modified"


def field_volume(shape, seed: int) -> np.ndarray:
    """A smooth field plus noise, float32 (prediction-like)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(0, 3, n, dtype=np.float32) for n in shape], indexing="ij")
    return (np.sin(sum(grid)) + 0.3 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)


A = ["--vmin", "-1", "--vmax", "1", "--quiet"]  # two sets of options giving different bytes
B = ["--vmin", "-2", "--vmax", "2", "--quiet"]


@pytest.fixture
def small_input(tmp_path) -> Path:
    path = tmp_path / "v.npy"
    np.save(path, field_volume((3, 40, 30), seed=1))
    return path


def test_the_command_is_this_fastquant(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import fastquant; print(fastquant.__file__)"], cwd=tmp_path, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    import fastquant as here

    assert Path(proc.stdout.strip()).resolve() == Path(here.__file__).resolve()
    assert fastquant("--version", cwd=tmp_path).stdout.strip() == here.__version__


# --- 1. SIGKILL at observed phases, then --resume -------------------------------------------------------------

KILL_SHAPE = (24, 1024, 1024)  # 96 MiB of float32: about 1-2 s of work with 2 workers
KILL_IMAGES = KILL_SHAPE[0]
KILL_SHAPE_BYTES = int(np.prod(KILL_SHAPE)) * 4
BASE = ["--percentiles", "1", "99", "--workers", "2", "--quiet"]
KILL_CONFIGS = {
    # name: (extra options, output name); zlib level 9 makes the write pass last long enough to observe
    "png-exact": (["--method", "exact", "--compress-level", "9"], "slices"),
    "png-approx": (["--method", "approx", "--compress-level", "9"], "slices"),
    "tiff": (["--method", "exact", "--compression", "zlib", "--compress-level", "9"], "stack.tif"),
    "npy": (["--method", "exact"], "levels.npy"),
}
KILL_ATTEMPTS = 3  # a phase can be missed (the run got past it between two looks): try again from scratch


@dataclasses.dataclass
class Seen:
    finals: list[str]  # names without the temporary prefix
    temps: dict[str, int]  # temporary -> size
    input_resident: int  # bytes of the input resident in the process's memory map


def input_resident(pid: int, path: str) -> int:
    """Rss of the mappings of `path` in the process (its pages the process has touched)."""
    total, inside = 0, False
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
            for line in f:
                head = line.split(maxsplit=1)[0] if line.strip() else ""
                if "-" in head and ":" not in head:  # a mapping's header line: "start-end perms offset dev inode path"
                    inside = line.rstrip("\n").endswith(path)
                elif inside and head == "Rss:":
                    total += int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return total


def look(pid: int, out_dir: Path, source: str, resident: bool) -> Seen:
    names, sizes = [], {}
    try:
        entries = list(os.scandir(out_dir))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if is_temp(entry.name):
            try:
                sizes[entry.name] = entry.stat().st_size
            except FileNotFoundError:
                pass
        else:
            names.append(entry.name)
    return Seen(sorted(names), sizes, input_resident(pid, source) if resident else 0)


@pytest.fixture(scope="module")
def kill_input(tmp_path_factory):
    """The volume of the kill tests, and the uninterrupted runs' outputs (computed once per configuration)."""
    root = tmp_path_factory.mktemp("kill")
    path = root / "volume.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=KILL_SHAPE)
    rng = np.random.default_rng(7)
    _, rows, cols = KILL_SHAPE
    yy = np.linspace(0, 3, rows, dtype=np.float32)[:, None]
    xx = np.linspace(0, 3, cols, dtype=np.float32)[None, :]
    for k in range(KILL_SHAPE[0]):
        out[k] = np.sin(yy + xx + np.float32(0.1 * k)) + np.float32(0.3) * rng.standard_normal((rows, cols), np.float32)
    out.flush()
    del out
    references: dict[str, dict[str, bytes]] = {}

    def reference(config: str) -> dict[str, bytes]:
        if config not in references:
            extra, name = KILL_CONFIGS[config]
            where = root / f"reference-{config}"
            where.mkdir()
            proc = fastquant("convert", path, where / name, *BASE, *extra, cwd=root)
            assert proc.returncode == 0, proc.stderr
            target = where / name if name == "slices" else where
            references[config] = finals(target)
            assert not temps(target)
        return references[config]

    yield root, path, Pristine(path), reference
    shutil.rmtree(root, ignore_errors=True)  # about 500 MB


# The phases: what must be seen just before the kill (`want`: the uninterrupted run's files, name -> bytes).


def _limits(seen: Seen, want: dict) -> bool:
    return not seen.finals and not seen.temps and seen.input_resident >= KILL_SHAPE_BYTES // 4


def _first_pngs(seen: Seen, want: dict) -> bool:
    return 1 <= len(seen.finals) <= 6


def _first_approx_pngs(seen: Seen, want: dict) -> bool:  # approx: temporaries, renamed only after the proof
    smallest = min(len(b) for b in want.values())
    complete = [size for size in seen.temps.values() if size >= smallest]
    return not seen.finals and complete and len(seen.temps) <= 6


def _most_pngs(seen: Seen, want: dict) -> bool:
    return 18 <= len(seen.finals) < KILL_IMAGES


def _most_approx_pngs(seen: Seen, want: dict) -> bool:
    smallest = min(len(b) for b in want.values())
    complete = [size for size in seen.temps.values() if size >= smallest]
    return len(seen.finals) + len(complete) >= 18 and len(seen.finals) < KILL_IMAGES


def _single_file_size(want: dict) -> int:
    return max(len(b) for b in want.values())  # the .npy or .tif, not the .npy's sidecar


def _part_of_the_file(seen: Seen, want: dict) -> bool:
    total = _single_file_size(want)
    return not seen.finals and any(total // 8 <= size <= total // 3 for size in seen.temps.values())


def _most_of_the_file(seen: Seen, want: dict) -> bool:
    total = _single_file_size(want)
    return not seen.finals and any(size >= total * 3 // 4 for size in seen.temps.values())


PHASES = {
    ("png-exact", "limits"): _limits,
    ("png-exact", "first files"): _first_pngs,
    ("png-exact", "near the end"): _most_pngs,
    ("png-approx", "limits"): _limits,
    ("png-approx", "first files"): _first_approx_pngs,
    ("png-approx", "near the end"): _most_approx_pngs,
    ("tiff", "limits"): _limits,
    ("tiff", "first files"): _part_of_the_file,
    ("tiff", "near the end"): _most_of_the_file,
    ("npy", "limits"): _limits,
    ("npy", "first files"): _part_of_the_file,
    ("npy", "near the end"): _most_of_the_file,
}


def kill_when(args: list, cwd: Path, out_dir: Path, source: Path, condition, want: dict) -> Seen | None:
    """Start the command, look at `out_dir` about every millisecond, SIGKILL it once `condition` holds.
    Returns what was seen just before the kill, or None when the run ended first."""
    need_resident = condition is _limits
    source_path = os.path.realpath(source)
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=err) as proc,
    ):
        started = time.monotonic()
        try:
            while proc.poll() is None:
                seen = look(proc.pid, out_dir, source_path, need_resident)
                if condition(seen, want):
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    assert proc.returncode == -signal.SIGKILL, proc.returncode
                    return seen
                assert time.monotonic() - started < RUN_TIMEOUT, "the run hangs"
                time.sleep(0.0005)
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        stderr = err.read().decode()
    assert proc.returncode == 0, f"the run failed before the phase: exit {proc.returncode}\n{stderr}"
    return None


@pytest.mark.parametrize("config", ["png-exact", "png-approx", "tiff", "npy"])
@pytest.mark.parametrize("phase", ["limits", "first files", "near the end"])
def test_sigkill_then_resume(kill_input, config, phase):
    root, source, pristine, reference = kill_input
    if config == "tiff":
        pytest.importorskip("tifffile")
    extra, name = KILL_CONFIGS[config]
    want = reference(config)
    png = name == "slices"
    condition = PHASES[config, phase]
    where = root / f"killed-{config}-{phase.replace(' ', '-')}"
    args = ["convert", source, where / name, *BASE, *extra]
    out_dir = where / name if png else where
    for _attempt in range(KILL_ATTEMPTS):
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        seen = kill_when(args, root, out_dir, source, condition, want)
        if seen is not None:
            print(
                f"\n{config}, {phase}: killed at attempt {_attempt + 1}, seen {len(seen.finals)} final names, "
                f"temporaries {sorted(seen.temps.values())}, input resident {seen.input_resident >> 20} MiB"
            )
            break
    else:
        pytest.fail(f"{config}: the phase {phase!r} was never observed in {KILL_ATTEMPTS} runs")

    # killed: whatever has a final name is complete and is the uninterrupted run's file
    left = finals(out_dir)
    for n, data in left.items():
        assert n in want, f"{n} is not an output name"
        if n.endswith(".png"):
            decodes(out_dir / n)
        assert data == want[n], f"{n} under its final name differs from the uninterrupted run's"
    if phase == "limits":
        assert not left, f"files under final names before the write pass: {sorted(left)}"
    if png:
        assert len([n for n in left if n.endswith(".png")]) < KILL_IMAGES, "killed after the last file"
    else:
        assert name not in left, "killed after the output was complete"
    pristine.check()

    # resumed: the whole output is the uninterrupted run's, and no temporary is left
    proc = fastquant(*args, "--resume", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["written"] + summary["skipped"] == KILL_IMAGES
    assert summary["skipped"] == (len(left) if png else 0), (summary, sorted(left))
    assert finals(out_dir) == want
    assert not temps(out_dir)
    pristine.check()
    shutil.rmtree(where)


def test_resume_after_a_kill_between_the_npy_and_its_sidecar(kill_input):
    """The sidecar (``<output>.json``, with the CRC-32 of the data) is renamed into place before the .npy: a SIGKILL
    between the two renames leaves the new sidecar beside no .npy (and the .npy's temporary). The window is too
    short to hit with a real kill, so this test makes that state, then resumes: the issue asks for output
    byte-identical to an uninterrupted run after a kill at any moment. A sidecar beside a complete .npy whose
    bytes it does not describe reads as a different output (resume refuses)."""
    root, source, pristine, reference = kill_input
    want = reference("npy")
    extra, name = KILL_CONFIGS["npy"]
    where = root / "killed-between-renames"
    where.mkdir()
    (where / (name + ".json")).write_bytes(want[name + ".json"])
    (where / f"{TEMP_PREFIX}0123456789abcdef{TEMP_SUFFIX}").write_bytes(want[name][:10])
    proc = fastquant("convert", source, where / name, *BASE, *extra, "--resume", cwd=root)
    pristine.check()
    assert proc.returncode == 0, proc.stderr
    assert finals(where) == want and not temps(where)
    other = bytearray(want[name])
    other[-1] ^= 1
    (where / name).write_bytes(bytes(other))
    proc = fastquant("convert", source, where / name, *BASE, *extra, "--resume", cwd=root)
    assert proc.returncode == 1 and "resume" in proc.stderr
    assert (where / name).read_bytes() == bytes(other)


# --- 2. disk full: RLIMIT_FSIZE, SIGXFSZ ignored --------------------------------------------------------------


def file_size_limit(limit: int):
    """A preexec_fn: files of the child cannot grow past `limit` bytes (writes fail with EFBIG)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


EFBIG = os.strerror(27)  # "File too large"


@pytest.fixture
def full_input(tmp_path) -> Path:
    """8 slices of 256 x 256: the first 4 smooth (small PNGs), the last 4 noise (large PNGs)."""
    x = field_volume((8, 256, 256), seed=3)
    x[:4] = np.linspace(-1, 1, 256, dtype=np.float32)[None, None, :]
    path = tmp_path / "v.npy"
    np.save(path, x)
    return path


def png_limit(reference: dict[str, bytes]) -> int:
    """A file size limit between the small PNGs and the large ones."""
    sizes = sorted(len(b) for b in reference.values())
    assert sizes[3] * 2 < sizes[4], sizes
    return (sizes[3] + sizes[4]) // 2


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_png_leaves_no_partial_file(tmp_path, full_input, cli, workers):
    pristine = Pristine(full_input)
    args = ["convert", full_input, tmp_path / "out", *A, "--workers", workers]
    assert cli("convert", full_input, tmp_path / "ref", *A).returncode == 0
    want = finals(tmp_path / "ref")
    proc = fastquant(*args, cwd=tmp_path, preexec_fn=file_size_limit(png_limit(want)))
    if workers == 1:
        assert_error(proc, EFBIG)
    else:  # the last line: see test_write_errors_with_several_workers_are_one_line
        assert proc.returncode == 1, proc.stderr
        last = proc.stderr.splitlines()[-1]
        assert last.startswith("fastquant: error: ") and EFBIG in last, proc.stderr
    left = finals(tmp_path / "out")
    assert len(left) < len(want), "every file was written despite the limit"
    for n, data in left.items():
        decodes(tmp_path / "out" / n)
        assert data == want[n]
    assert not temps(tmp_path / "out")
    pristine.check()
    # space again: --resume finishes the job
    assert cli(*args, "--resume").returncode == 0
    assert finals(tmp_path / "out") == want and not temps(tmp_path / "out")


# The command, with PNG writes failing as on a full disk: image 0 at once, the others after 0.2 s, so that at the
# first error two encodes are running and one is queued, whatever the machine's speed (under RLIMIT_FSIZE, whether
# one is still queued depends on timing).
FAILING_WRITES = """
import errno, sys, time
import fastquant._outputs
def write(self, index, levels, metadata):
    if index:
        time.sleep(0.2)
    raise OSError(errno.ENOSPC, "No space left on device")
fastquant._outputs._PngSink.write = write
from fastquant._cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_write_errors_with_several_workers_are_one_line(tmp_path):
    source = tmp_path / "v.npy"
    np.save(source, field_volume((4, 40, 30), seed=2))
    proc = subprocess.run(
        [sys.executable, "-c", FAILING_WRITES, "convert", str(source), str(tmp_path / "out"), *A, "--workers", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 1
    assert not temps(tmp_path / "out") and not finals(tmp_path / "out")
    assert_error(proc, "No space left on device")


@pytest.mark.parametrize("output", ["out.npy", "out.tif"])
def test_disk_full_single_file(tmp_path, full_input, cli, output):
    if output.endswith(".tif"):
        pytest.importorskip("tifffile")
    pristine = Pristine(full_input)
    target = tmp_path / "dest" / output
    ref = tmp_path / "ref" / output
    assert cli("convert", full_input, ref, *A).returncode == 0
    limit = file_size_limit(ref.stat().st_size // 2)
    assert_error(fastquant("convert", full_input, target, *A, cwd=tmp_path, preexec_fn=limit), EFBIG)
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    # an older output is left whole when its replacement fails
    assert cli("convert", full_input, target, *B).returncode == 0
    before = tree(tmp_path / "dest")
    assert_error(fastquant("convert", full_input, target, *A, "--overwrite", cwd=tmp_path, preexec_fn=limit), EFBIG)
    assert tree(tmp_path / "dest") == before
    pristine.check()


# --- 3. existing outputs --------------------------------------------------------------------------------------


def test_existing_pngs_are_never_overwritten_without_overwrite(tmp_path, small_input, cli):
    out = tmp_path / "out"
    assert cli("convert", small_input, out, *A).returncode == 0
    before = tree(out)
    assert_error(cli("convert", small_input, out, *B), "exists", "--overwrite")
    assert tree(out) == before
    # with --overwrite: replaced by what a fresh run writes
    assert cli("convert", small_input, tmp_path / "fresh", *B).returncode == 0
    assert cli("convert", small_input, out, *B, "--overwrite").returncode == 0
    assert finals(out) == finals(tmp_path / "fresh")
    after = tree(out)
    assert after.keys() == before.keys()
    assert all(after[n][1] != before[n][1] for n in before if n != "."), "a file was not replaced"
    assert not temps(out)


def test_one_existing_name_stops_the_run_before_anything_is_written(tmp_path, small_input, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "v_0001.png").write_bytes(b"not fastquant's")
    before = tree(out)
    assert_error(cli("convert", small_input, out, *A), "v_0001.png", "exists")
    assert tree(out) == before


@pytest.mark.parametrize("output", ["out.npy", "out.tif", "out.zarr"])
def test_existing_single_file_outputs(tmp_path, small_input, cli, output):
    if output.endswith(".tif"):
        pytest.importorskip("tifffile")
    if output.endswith(".zarr"):
        pytest.importorskip("zarr")
    dest = tmp_path / "dest"
    assert cli("convert", small_input, dest / output, *A).returncode == 0
    before = tree(dest)
    assert_error(cli("convert", small_input, dest / output, *B), "exists", "--overwrite")
    assert tree(dest) == before
    assert cli("convert", small_input, tmp_path / "fresh" / output, *B).returncode == 0
    assert cli("convert", small_input, dest / output, *B, "--overwrite").returncode == 0
    contents = {k: v[:2] for k, v in tree(dest).items()}
    assert contents == {k: v[:2] for k, v in tree(tmp_path / "fresh").items()}
    assert contents != {k: v[:2] for k, v in before.items()}
    assert not temps(dest)


def test_overwrite_replaces_a_symlink_not_its_target(tmp_path, small_input, cli):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.png").write_bytes(b"precious")
    (outside / "target.npy").write_bytes(b"precious too")
    out = tmp_path / "out"
    out.mkdir()
    (out / "v_0000.png").symlink_to(outside / "target.png")
    (tmp_path / "levels.npy").symlink_to(outside / "target.npy")
    kept = tree(outside)
    assert_error(cli("convert", small_input, out, *A), "exists")
    assert_error(cli("convert", small_input, tmp_path / "levels.npy", *A), "exists")
    assert cli("convert", small_input, out, *A, "--overwrite").returncode == 0
    assert cli("convert", small_input, tmp_path / "levels.npy", *A, "--overwrite").returncode == 0
    assert tree(outside) == kept
    assert not (out / "v_0000.png").is_symlink() and decodes(out / "v_0000.png").shape == (40, 30)
    assert not (tmp_path / "levels.npy").is_symlink() and np.load(tmp_path / "levels.npy").shape == (3, 40, 30)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "os.replace"])
def test_moving_into_place_over_an_existing_file(tmp_path, monkeypatch, exchange):
    # The replaced file is swapped out by renameat2's RENAME_EXCHANGE and then unlinked (on ext4 a rename over
    # it writes the new file back and frees the old one under the directory's lock); without it, os.replace.
    from fastquant import _outputs

    if not exchange:
        monkeypatch.setattr(_outputs, "_renameat2", lambda: None)
    elif _outputs._renameat2() is None:
        pytest.skip("no renameat2 here")
    swapped = []
    real = _outputs._exchange
    monkeypatch.setattr(_outputs, "_exchange", lambda temp, final: swapped.append(real(temp, final)) or swapped[-1])
    final, temp = tmp_path / "v_0000.png", tmp_path / ".fastquant-0123456789abcdef.tmp"
    final.write_bytes(b"old")
    temp.write_bytes(b"new")
    _outputs._move_into_place(str(temp), str(final), overwrite=True)
    assert final.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["v_0000.png"]
    if exchange and swapped != [True]:
        pytest.skip("this filesystem has no RENAME_EXCHANGE (os.replace did it)")
    assert swapped == ([True] if exchange else [False])
    # a file that is not there yet is renamed, not exchanged
    temp.write_bytes(b"newer")
    _outputs._move_into_place(str(temp), str(tmp_path / "v_0001.png"), overwrite=True)
    assert (tmp_path / "v_0001.png").read_bytes() == b"newer" and len(swapped) == 1


# --- 4. name templates cannot leave the output directory ------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "../x_{index}.png",
        "/tmp/abs_{index}.png",
        "ABSOLUTE/abs_{index}.png",  # an absolute path inside this test's directory
        "{index}/x.png",
        "..",
        ".",
        "sub/x_{index}.png",
        "{stem}/../../x_{index}.png",
        "{index:/>8}.png",  # a fill character that is a separator
        "x_{index}.png/..",
        "../{stem}",
        ".fastquant-{index}.tmp",  # a temporary's name: removed as a leftover by the next run
    ],
)
def test_name_templates_cannot_write_outside_the_output(tmp_path, small_input, cli, template):
    template = template.replace("ABSOLUTE", str(tmp_path / "elsewhere"))
    out = tmp_path / "parent" / "out"
    out.parent.mkdir()
    before = tree(tmp_path)
    in_tmp = {n for n in os.listdir("/tmp") if n.startswith("abs_")}
    assert_error(cli("convert", small_input, out, *A, "--name", template), "name template")
    assert tree(tmp_path) == before, "something was written"
    assert {n for n in os.listdir("/tmp") if n.startswith("abs_")} == in_tmp


# --- 5. bad inputs and usage errors ---------------------------------------------------------------------------


class _Unpickled:
    """Creates `path` if it is ever unpickled."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _cut(path: Path, source: Path, keep: int) -> Path:
    path.write_bytes(source.read_bytes()[:keep])
    return path


def _drop_read_permission():
    """A preexec_fn that drops the capabilities letting root read any file (None for other users); skips the test
    where they cannot be dropped."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped from the bounding set:
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; exec then leaves them out
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    try:
        subprocess.run(["true"], preexec_fn=drop, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"root cannot drop CAP_DAC_OVERRIDE here ({exc}): every file is readable")
    return drop


def make_bad_input(kind: str, d: Path, marker: Path) -> Path:
    x = field_volume((3, 40, 30), seed=5)
    good = d / "good.npy"
    np.save(good, x)
    if kind == "missing":
        return d / "missing.npy"
    if kind == "unreadable":
        path = d / "locked.npy"
        np.save(path, x)
        path.chmod(0)
        return path
    if kind == "truncated npy data":
        return _cut(d / "cut.npy", good, 128 + x.nbytes // 2)
    if kind == "truncated npy header":
        return _cut(d / "cut.npy", good, 30)
    if kind == "empty file":
        return _cut(d / "empty.npy", good, 0)
    if kind == "not a npy":
        path = d / "junk.npy"
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path
    if kind == "truncated npz":
        np.savez(d / "whole.npz", a=x)
        return _cut(d / "cut.npz", d / "whole.npz", (d / "whole.npz").stat().st_size // 2)
    if kind == "truncated hdf5":
        h5py = pytest.importorskip("h5py")
        with h5py.File(d / "whole.h5", "w") as f:
            f["a"] = x
        return _cut(d / "cut.h5", d / "whole.h5", (d / "whole.h5").stat().st_size // 2)
    if kind == "truncated file in a directory":
        path = d / "slices"
        path.mkdir()
        for i in range(3):
            np.save(path / f"s{i}.npy", x[i])
        _cut(path / "s1.npy", path / "s1.npy", 200)
        return path
    if kind.startswith("truncated tiff"):
        tifffile = pytest.importorskip("tifffile")
        tifffile.imwrite(d / "whole.tif", x, photometric="minisblack",
                         compression="zlib" if "compressed" in kind else None)  # fmt: skip
        return _cut(d / "cut.tif", d / "whole.tif", (d / "whole.tif").stat().st_size // 2)
    if kind == "corrupt zarr chunk":
        zarr = pytest.importorskip("zarr")
        path = d / "v.zarr"
        array = zarr.create_array(store=str(path), shape=x.shape, chunks=(1, 40, 30), dtype="float32",
                                  compressors=zarr.codecs.ZstdCodec(level=3))  # fmt: skip
        array[...] = x
        chunk = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json")[1]
        _cut(chunk, chunk, chunk.stat().st_size // 2)
        return path
    dtypes = {"complex": np.complex64, "string": "U3", "structured": [("a", "f4"), ("b", "i4")],
              "datetime": "M8[s]", "float128": np.longdouble}  # fmt: skip
    if kind in dtypes:
        path = d / f"{kind}.npy"
        np.save(path, np.zeros((3, 4, 4), dtype=dtypes[kind]))
        return path
    if kind in ("pickled npy", "pickled npz"):
        objects = np.full((3, 4, 4), 1.5, dtype=object)
        objects[0, 0, 0] = _Unpickled(marker)
        if kind.endswith("npz"):
            np.savez(d / "pickled.npz", a=objects)
            return d / "pickled.npz"
        np.save(d / "pickled.npy", objects, allow_pickle=True)
        return d / "pickled.npy"
    raise ValueError(kind)


BAD_INPUTS = [
    "missing", "unreadable", "truncated npy data", "truncated npy header", "empty file", "not a npy",
    "truncated npz", "truncated hdf5", "truncated file in a directory", "complex", "string", "structured",
    "datetime", "float128", "pickled npy", "pickled npz",
    "truncated tiff", "truncated tiff compressed", "corrupt zarr chunk",
]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_inputs_are_one_line_errors_before_any_output(tmp_path, cli, kind):
    d = tmp_path / "in"
    d.mkdir()
    marker = tmp_path / "UNPICKLED"
    path = make_bad_input(kind, d, marker)
    kept = tree(d)
    drop = _drop_read_permission() if kind == "unreadable" else None

    def run(*args):  # root reads any file: the unreadable input needs a process without that capability
        return fastquant(*args, cwd=tmp_path, preexec_fn=drop) if drop else cli(*args)

    out = tmp_path / "out"
    assert_error(run("convert", path, out, "--percentiles", "1", "99"), path.name)
    assert not out.exists() or not os.listdir(out), sorted(os.listdir(out))
    assert_error(run("convert", path, tmp_path / "out.npy", "--vmin", "0", "--vmax", "1"), path.name)
    assert not marker.exists(), "a pickled object was loaded"
    assert tree(d) == kept, "the input was modified"
    assert sorted(os.listdir(tmp_path)) == sorted(["in", "out"] if out.exists() else ["in"])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["convert"],
        ["convert", "IN"],
        ["convert", "IN", "OUT", "--bogus"],
        ["convert", "IN", "OUT", "--method", "planet"],
        ["convert", "IN", "OUT", "--workers", "two"],
        ["convert", "IN", "OUT", "--channels", "a,b"],
        ["convert", "IN", "OUT", "--percentiles", "5"],
        ["convert", "IN", "OUT", "--vmin"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(tmp_path, small_input, cli, argv):
    argv = [str(small_input) if a == "IN" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    proc = cli(*argv)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [["--help"], ["convert", "--help"], ["info", "--help"], ["--version"]])
def test_help_exits_0(cli, argv):
    proc = cli(*argv)
    assert proc.returncode in (0, None) and proc.stdout and not proc.stderr, proc


def test_the_installed_command_exit_statuses(tmp_path, small_input):
    """The console script itself: 0 for --help, 2 for a usage error, 1 and one line for a bad input."""
    assert fastquant("convert", "--help", cwd=tmp_path).returncode == 0
    usage = fastquant("convert", small_input, cwd=tmp_path)
    assert usage.returncode == 2 and "usage:" in usage.stderr and "Traceback" not in usage.stderr
    assert_error(fastquant("convert", tmp_path / "nope.npy", tmp_path / "out", cwd=tmp_path), "nope.npy")
    assert sorted(os.listdir(tmp_path)) == ["v.npy"]


# --- 6. resume refuses when anything differs ------------------------------------------------------------------

RESUME = ["--percentiles", "1", "99", "--method", "exact", "--name", "slice_{index:03d}.png", "--quiet"]


def _rewrite(path: Path, array: np.ndarray, like: os.stat_result, pad: int = 0) -> None:
    """Rewrite the .npy at `path` with `array` (its header padded with `pad` more spaces, a multiple of 64) and
    give it the mtime of `like`."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    raw = header.getvalue()
    text = raw[10:-1] + b" " * pad + b"\n"
    with open(path, "wb") as f:
        f.write(raw[:8] + len(text).to_bytes(2, "little") + text)
        f.write(np.ascontiguousarray(array).tobytes())
    os.utime(path, ns=(like.st_atime_ns, like.st_mtime_ns))


@pytest.mark.parametrize(
    "change",
    [
        "mtime", "path", "size", "shape", "dtype",
        "percentiles", "method", "nan", "limits", "compress level", "vmin/vmax",
        "a foreign file", "a truncated file",
    ],
)  # fmt: skip
def test_resume_refuses_when_anything_differs(tmp_path, cli, change):
    x = field_volume((3, 40, 30), seed=8)
    source = tmp_path / "v.npy"
    np.save(source, x)
    out = tmp_path / "out"
    assert cli("convert", source, out, *RESUME).returncode == 0
    st = os.stat(source)
    options = list(RESUME)
    if change == "mtime":
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # `touch`
    elif change == "path":
        source = tmp_path / "w.npy"
        shutil.copy2(tmp_path / "v.npy", source)  # the same bytes and mtime, another path
    elif change == "size":  # the same values, shape, dtype and mtime; a longer header
        _rewrite(source, x, st, pad=64)
        assert os.stat(source).st_size == st.st_size + 64
        np.testing.assert_array_equal(np.load(source), x)
    elif change == "shape":  # the same size and mtime
        _rewrite(source, x.reshape(3, 30, 40), st)
        assert os.stat(source).st_size == st.st_size
    elif change == "dtype":  # the same size and mtime
        _rewrite(source, (x * 100).astype(np.int32), st)
        assert os.stat(source).st_size == st.st_size
    elif change == "percentiles":
        options[1:3] = ["2", "98"]
    elif change == "method":
        options[4] = "approx"
    elif change == "nan":
        options += ["--nan", "255"]
    elif change == "limits":
        options += ["--limits", "slice"]
    elif change == "compress level":
        options += ["--compress-level", "6"]
    elif change == "vmin/vmax":
        options[0:5] = ["--vmin", "-1", "--vmax", "1"]
    elif change == "a foreign file":
        (out / "slice_001.png").write_bytes((out / "slice_001.png").read_bytes()[:8] + b"not a PNG chunk")
    elif change == "a truncated file":
        (out / "slice_002.png").write_bytes((out / "slice_002.png").read_bytes()[:-100])
    before = tree(out)
    kept = Pristine(source)
    assert_error(cli("convert", source, out, *options, "--resume"), "resume")
    assert tree(out) == before
    kept.check()


def test_resume_ignores_options_that_do_not_change_the_bytes(tmp_path, small_input, cli):
    out = tmp_path / "out"
    assert cli("convert", small_input, out, *RESUME).returncode == 0
    before = tree(out)
    proc = cli("convert", small_input, out, *RESUME, "--resume", "--workers", "1", "--max-memory", "300MiB", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["skipped"] == 3
    assert tree(out) == before


@pytest.mark.parametrize("output", ["out.npy", "out.tif"])
def test_resume_refuses_a_touched_input_for_single_file_outputs(tmp_path, small_input, cli, output):
    if output.endswith(".tif"):
        pytest.importorskip("tifffile")
    dest = tmp_path / "dest"
    assert cli("convert", small_input, dest / output, *RESUME).returncode == 0
    proc = cli("convert", small_input, dest / output, *RESUME, "--resume", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["skipped"] == 3, proc.stderr
    before = tree(dest)
    st = os.stat(small_input)
    os.utime(small_input, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert_error(cli("convert", small_input, dest / output, *RESUME, "--resume"), "resume")
    assert tree(dest) == before


# --- 7. the input is never modified ---------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["out", "out.npy", "out.tif", "out.zarr"])
def test_the_input_is_never_modified(tmp_path, small_input, cli, output):
    """Every kind of run leaves the input's bytes and mtime as they were (the kill tests check it after kills)."""
    if output.endswith(".tif"):
        pytest.importorskip("tifffile")
    if output.endswith(".zarr"):
        pytest.importorskip("zarr")
    pristine = Pristine(small_input)
    runs = [
        (0, ["--percentiles", "1", "99"]),
        (0, ["--percentiles", "1", "99", "--method", "exact", "--limits", "slice", "--overwrite"]),
        (1, ["--vmin", "0", "--vmax", "1", "--resume"]),  # refused: other options
        (0, ["--vmin", "0", "--vmax", "1", "--overwrite", "--max-memory", "128MiB", "--workers", "1"]),
    ]
    for status, options in runs:
        assert cli("convert", small_input, tmp_path / output, *options).returncode == status
        pristine.check()

"""Print fastquant's performance table: every target of the registry in ``cases.py``, measured.

Usage::

    python benchmarks/ratios.py                        # the targets' sizes (many minutes)
    python benchmarks/ratios.py --quick                # plane sides / 4, short budgets (development)
    python benchmarks/ratios.py --markdown             # Markdown tables (for benchmarks/RESULTS.md)
    python benchmarks/ratios.py --only layouts,import  # groups (core, layouts, byteswap, small, process, colour,
                                                       # channels, uint16, convert) or parts of case names
    python benchmarks/ratios.py --list                 # the rows, without timing anything

Method (``timing.py``): in-process figures are the minimum over at least five alternated rounds
(A B, B A, ...) on standard-normal float32 with a fixed seed, more while the case's time budget lasts,
after one warm-up call of each candidate, with the garbage collector off; fastquant writes into a
preallocated ``out=`` like the floor kernel (``baselines.floor``: reads every float, writes one byte).
Each floor row shows the floor timed against itself (A/A), the noise of that case. fastquant.reference
is timed once per mode within a budget (``timing.once``). Import and one-shot figures are medians of
alternated fresh processes; memory is the VmHWM probe in ``scripts/memprobe.py``.

The bulk-conversion group (``convert``, issue 7) times ``fastquant.convert`` and its peers as functions on a
prediction-like volume (``volumes.py``) written once per run as a ``.npy`` in a scratch directory, outputs
overwritten in place each round; the PNG byte counts are figures of their own (``kind="value"``); the command line
and the naive script are whole processes (medians of the profile's rounds, after one warm-up: the naive script
takes many seconds); its memory case samples a child's ``RssAnon`` (``scripts/convert_memprobe.py``) and checks
the limits against ``numpy.percentile`` (``scripts/percentile_reference.py``).
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import numpy as np  # noqa: E402
from timing import alternated, once, process_medians  # noqa: E402

import fastquant  # noqa: E402

OPS = {"<=": "≤", "<": "<", ">=": "≥"}


def fmt(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / cases.MIB:.0f} MiB"
    return f"{value * 1e3:.1f} ms" if abs(value) >= 1e-3 else f"{value * 1e6:.0f} µs"


def unit_of(case: cases.Case) -> str:
    return case.unit or ("B" if case.kind == "memory" else "s")


def measure(case: cases.Case, p: cases.Profile, ctx: dict) -> tuple[dict, dict, list, list]:
    """Figures of every candidate of `case`, notes on them, its checks and lines of detail."""
    notes, details = {}, []
    if case.kind == "inproc":
        d = case.setup()
        small = case.timing == "small"
        t = alternated(
            {n: functools.partial(f, d) for n, f in case.candidates.items()},
            p.rounds,
            budget={"budget": p.budget, "rounds": 0.0, "small": p.small_budget}[case.timing],
            min_loop=0.003 if small else 0.0,
            group_of=lambda n: n.removesuffix(" reference").removesuffix(" A/A"),
            prepare=None if case.prepare is None else functools.partial(case.prepare, d),
        )
        for n, (full, part) in case.once.items():
            t[n], notes[n] = once(
                functools.partial(full, d), functools.partial(part, d), d["scale"], p.reference_budget
            )
    elif case.kind == "value":
        d = case.setup()
        t = {n: float(f(d)) for n, f in case.candidates.items()}
    elif case.kind == "process":
        d = ctx
        runs, warmups = (p.rounds, 1) if case.timing == "rounds" else (p.processes, 2)
        t = process_medians(
            {n: f(ctx) for n, f in case.candidates.items()},
            runs,
            cwd=ctx["tmp"],
            env=ctx["env"],
            warmups=warmups,
            prepare=None if case.prepare is None else functools.partial(case.prepare, ctx),
        )
    else:  # memory: one probe process per candidate; its JSON goes to the checks as d["results"]
        d, t = {**ctx, "results": {}}, {}
        for n, f in case.candidates.items():
            proc = subprocess.run(f(ctx), cwd=ctx["tmp"], env=ctx["env"], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the probe of {n!r} failed:\n{proc.stderr.strip()[-2000:]}")
            r = d["results"][n] = json.loads(proc.stdout.splitlines()[-1])
            t[n] = r["extra"]
            if "output" in r:
                t["output"] = r["output"]
            details.append(f"{n}: call {fmt(r['seconds'], 's')}, measured by {r['how']}")
    checks = [(name, *check(d)) for name, check in case.checks.items()]
    unit = unit_of(case)
    details.insert(0, ", ".join(f"{n} {fmt(v, unit)}" + (" (estimated)" if notes.get(n) else "") for n, v in t.items()))
    return t, notes, checks, details


def target_text(target: cases.Target, unit: str = "s") -> str:
    op = OPS[target.op]
    if target.label:
        return target.label
    if target.what == "difference":
        return f"{target.candidate} {op} {target.baseline} + {fmt(target.limit, unit)}"
    if target.what == "value":
        return f"{target.candidate} {op} {fmt(target.limit, unit)}"
    if isinstance(target.candidate, tuple):
        return f"each mode {op} {target.limit:g}× its reference"
    return f"{target.candidate} {op} {target.limit:g}× {target.baseline}"


def evaluate(target: cases.Target, case: cases.Case, t: dict, notes: dict) -> tuple[str, str, bool]:
    """(target text, measured text, passed) of one target from its case's figures."""
    many = isinstance(target.candidate, tuple)
    cands = target.candidate if many else (target.candidate,)
    bases = target.baseline if many else (target.baseline,)
    unit = unit_of(case)
    diff, absolute = target.what == "difference", target.what == "value"
    if absolute:
        bases = ()
        values = [t[c] for c in cands]
    else:
        values = [t[c] - t[b] if diff else t[c] / t[b] for c, b in zip(cands, bases, strict=True)]
    worst = (max if target.op != ">=" else min)(range(len(values)), key=values.__getitem__)
    value = values[worst]
    text = target_text(target, unit)
    if absolute:
        measured = fmt(value, unit)
    else:
        measured = f"{'+' if value >= 0 else ''}{fmt(value, unit)}" if diff else f"{value:.2f}×"
    if many:
        measured += f" (worst: {cands[worst]})"
    if "floor" in bases and "floor A/A" in t:
        measured += f"; floor A/A {t['floor A/A'] / t['floor']:.2f}×"
    if "control" in t:
        measured += f"; reference A/A {t['control A/A'] / t['control']:.2f}×"
    measured += "".join(f"; {notes[n]}" for n in dict.fromkeys(cands + bases) if notes.get(n))
    return text, measured, target.passes(value)


def run(p: cases.Profile, selected: list[cases.Case], targets: list[cases.Target], ctx: dict, log) -> list:
    """Rows (group, case title, target, measured, verdict) and details, case by case."""
    rows, details = [], []
    for case in selected:
        mine = [tg for tg in targets if tg.case == case.name]
        if case.skip:
            rows += [(case.group, case.title, target_text(tg, unit_of(case)), case.skip, "SKIP") for tg in mine]
            continue
        if case.kind in ("process", "memory"):  # other processes measured: this one's cached arrays dropped
            cases.free()
        log(f"measuring: {case.name}")
        t0 = time.perf_counter()
        try:
            t, notes, checks, lines = measure(case, p, ctx)
        except Exception as exc:  # a broken case is reported and never hides the others
            traceback.print_exc()
            error = f"error: {type(exc).__name__}: {exc}"[:200]
            rows += [(case.group, case.title, target_text(tg, unit_of(case)), error, "FAIL") for tg in mine]
            continue
        for tg in mine:
            text, measured, ok = evaluate(tg, case, t, notes)
            rows.append((case.group, case.title, text, measured, "PASS" if ok else "FAIL"))
        rows += [(case.group, case.title, name, text, "PASS" if ok else "FAIL") for name, ok, text in checks]
        details += [f"{case.title}: {line}" for line in lines]
        log(f"  done in {time.perf_counter() - t0:.0f} s")
    return rows, details


def render(rows: list, markdown: bool) -> list[str]:
    out = []
    for group in dict.fromkeys(r[0] for r in rows):
        mine = [r[1:] for r in rows if r[0] == group]
        out += [f"### {group}" if markdown else f"== {group} ==", ""]
        if markdown:
            out += ["| case | target | measured | result |", "|---|---|---|---|"]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in mine]
        else:
            widths = [min(max(len(r[i]) for r in mine), cap) for i, cap in enumerate((44, 40, 60, 4))]
            for r in mine:
                wrapped = [textwrap.wrap(c, w) or [""] for c, w in zip(r, widths, strict=True)]
                for k in range(max(map(len, wrapped))):
                    cells = [
                        (w[k] if k < len(w) else "").ljust(width) for w, width in zip(wrapped, widths, strict=True)
                    ]
                    out.append("  ".join(cells).rstrip())
        out.append("")
    return out


def header(p: cases.Profile) -> list[str]:
    import numba

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), cpu)
    return [
        f"CPU: {cpu}; {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable)",
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}",
        f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
        f"fastquant {fastquant.__version__} from {Path(fastquant.__file__).parent}",
        f"profile {p.name}: min of >= {p.rounds} alternated rounds, budget {p.budget:g} s per case, "
        f"reference budget {p.reference_budget:g} s, process medians of {p.processes}; seed {cases.SEED}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes and budgets (development)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated groups (core, layouts, byteswap, small, process, convert, colour) or parts of case names",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and targets, time nothing")
    args = parser.parse_args(argv)
    p = cases.QUICK if args.quick else cases.FULL
    all_cases, targets = cases.build(p)
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    selected = [c for c in all_cases if not only or any(o == c.group or o in c.name for o in only)]
    if args.list:
        for c in selected:
            print(f"[{c.group}] {c.name}: {', '.join(c.candidates)} {c.skip}")
            print("".join(f"    {target_text(tg, unit_of(c))}\n" for tg in targets if tg.case == c.name), end="")
        return 0

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    started, load = time.perf_counter(), os.getloadavg()
    env = dict(os.environ)  # children import this process's fastquant, from a neutral directory
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(fastquant.__file__).parent.parent), env.get("PYTHONPATH")])
    )
    # Byte-compile fastquant as `pip install` does: a checkout run with PYTHONDONTWRITEBYTECODE (as this project's
    # development machines are) has no .pyc, and each child process would compile the package's source again
    # (about 140 ms of a fresh process here), which no installed copy does.
    compileall.compile_dir(Path(fastquant.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="fastquant-bench-") as tmp:
        log("warming up fastquant, then the floor kernel")
        cases.warm_up()
        rows, details = run(p, selected, targets, {"tmp": tmp, "env": env}, log)
    md = args.markdown
    lines = [("## " if md else "") + f"fastquant performance targets ({p.name} profile)", ""]
    lines += [("- " if md else "") + ln for ln in header(p)]
    lines += [("- " if md else "") + f"load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end", ""]
    lines += render(rows, md)
    lines += ["### Details" if md else "Details:", *(("- " if md else "  ") + ln for ln in details)]
    lines.append(f"\ntotal {time.perf_counter() - started:.0f} s")
    print("\n".join(lines))
    return 0 if all(r[4] in ("PASS", "SKIP") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""How the ratio table times things: alternated in-process rounds, one-off runs, fresh processes.

pytest-benchmark runs the rounds of one candidate back to back; on a noisy shared machine that lets a
burst of load land on one candidate only. Here, rounds alternate the candidates (A B, B A, ...) and
each figure is the minimum over the rounds, with more rounds while a time budget lasts.
"""

from __future__ import annotations

import gc
import math
import statistics
import subprocess
import time
from collections.abc import Callable


def _loop(fn: Callable[[], object], k: int, prepare: Callable[[], object] | None = None) -> float:
    if prepare is not None:
        prepare()  # untimed
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k


def alternated(
    candidates: dict[str, Callable[[], object]],
    rounds: int,
    *,
    budget: float = 0.0,
    min_loop: float = 0.0,
    max_loop: float = 0.25,
    max_rounds: int = 200,
    group_of: Callable[[str], str] = lambda name: "",
    prepare: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Minimum seconds per call of each candidate over alternated rounds.

    At least `rounds` rounds run, more (up to `max_rounds`) while the total is under `budget`: on a busy
    machine the minimum needs many samples to find a quiet moment. With `min_loop`, each timing is a
    loop of k calls, the same k for the candidates of one group (``group_of(name)``), so that the
    group's fastest loop lasts `min_loop` unless its slowest would exceed `max_loop`. Compared
    candidates share k because the minimum of a k-call average and of single calls are different
    statistics (a loop pays periodic costs, such as allocator trims, that a lucky single call escapes).
    `prepare`, when given, runs untimed before every timed loop (see ``Case.prepare``).
    """
    singles = {name: _loop(fn, 1, prepare) for name, fn in candidates.items()}  # warm-up: JIT load, page faults
    for name, fn in candidates.items():  # calibration, where a loop of several calls is possible
        if 0 < min_loop and singles[name] < max_loop:
            singles[name] = min(_loop(fn, 1, prepare) for _ in range(3))
    loops = dict.fromkeys(candidates, 1)
    if min_loop > 0:
        for group in {group_of(n) for n in candidates}:
            members = [n for n in candidates if group_of(n) == group]
            fastest, slowest = min(singles[n] for n in members), max(singles[n] for n in members)
            k = max(1, min(math.ceil(min_loop / max(fastest, 1e-7)), int(max_loop / slowest)))
            loops.update(dict.fromkeys(members, k))
    best = dict.fromkeys(candidates, math.inf)
    order = list(candidates)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    t0 = time.perf_counter()
    try:
        done = 0
        while done < rounds or (done < max_rounds and time.perf_counter() - t0 < budget):
            for name in order if done % 2 == 0 else reversed(order):
                best[name] = min(best[name], _loop(candidates[name], loops[name], prepare))
            done += 1
    finally:
        if was_enabled:
            gc.enable()
    return best


def once(full: Callable[[], object], part: Callable[[], object], scale: float, budget: float) -> tuple[float, str]:
    """One run of a slow candidate (the reference), within a budget.

    `part` is the same call on 1/`scale` of the groups. It runs first; if ``scale`` times its time is
    within `budget`, `full` runs once and its time is returned, otherwise the scaled estimate is, with a
    note saying so. Per-group work is linear in the number of groups, so the estimate is fair.
    """
    t_part = _loop(part, 1)
    if t_part * scale <= budget:
        return _loop(full, 1), ""
    return t_part * scale, f"reference > {budget:g} s: timed once on 1/{scale:.3g} of the groups, scaled"


def process_medians(
    commands: dict[str, list[str]],
    runs: int,
    *,
    cwd: str,
    env: dict[str, str],
    warmups: int = 2,
    prepare: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Median wall time of alternated fresh processes per command (after `warmups` untimed runs of each);
    `prepare`, when given, runs untimed before every run (see ``Case.prepare``)."""

    def run(cmd: list[str]) -> float:
        if prepare is not None:
            prepare()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")
        return time.perf_counter() - t0

    for _ in range(warmups):
        for cmd in commands.values():
            run(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(run(cmd))
    return {name: statistics.median(ts) for name, ts in times.items()}

"""pytest-benchmark over the registry of ``cases.py``: one test per case and candidate.

``python -m pytest benchmarks/ --benchmark-only`` (``--fq-quick`` for the reduced sizes). Each
benchmark group is one case; the ratios and verdicts come from ``python benchmarks/ratios.py``, which
alternates the candidates as the targets prescribe. The reference runs once, on 1/8 of the groups
(``data["part"]``); the memory probe is not a timing and is left to ``ratios.py``.
"""

from __future__ import annotations

import gc
import os
import subprocess

import cases
import pytest

_data: dict[str, dict] = {}  # the data of the case being run only: the next case frees it


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    profile = cases.QUICK if metafunc.config.getoption("--fq-quick") else cases.FULL
    params = []
    for case in cases.build(profile)[0]:
        for name in [*case.candidates, *case.once]:
            if case.kind not in ("memory", "value") and not name.endswith("A/A"):
                marks = [pytest.mark.skip(reason=case.skip)] if case.skip else []
                params.append(
                    pytest.param(case, name, id=f"{case.name}|{name}".replace("×", "x").replace("²", "^2"), marks=marks)
                )
    metafunc.parametrize(("case", "name"), params)


def data(case: cases.Case) -> dict:
    if case.name not in _data:
        _data.clear()
        gc.collect()
        _data[case.name] = case.setup()
    return _data[case.name]


def test_case(benchmark, warmed, tmp_path, case: cases.Case, name: str) -> None:
    benchmark.group = case.title
    if case.kind == "process":
        cmd = case.candidates[name]({"tmp": str(tmp_path), "env": dict(os.environ)})
        subprocess.run(cmd, check=True, capture_output=True)  # warm the OS file cache and Numba's cache
        rounds = 5 if case.timing == "rounds" else 11  # multi-second scripts: fewer
        benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"check": True}, rounds=rounds)
    elif name in case.once:
        benchmark.extra_info["data"] = f"1/{data(case)['scale']:.3g} of the groups"
        benchmark.pedantic(case.once[name][1], args=(data(case),), rounds=1, iterations=1)
    elif case.prepare is not None:  # an untimed step before every timed call (Case.prepare)
        d = data(case)

        def setup():
            case.prepare(d)
            return (d,), {}

        benchmark.pedantic(case.candidates[name], setup=setup, rounds=5, warmup_rounds=1)
    elif case.timing == "rounds":  # multi-second seed baselines
        benchmark.pedantic(case.candidates[name], args=(data(case),), rounds=5, warmup_rounds=1)
    else:
        case.candidates[name](data(case))  # warm: kernels loaded, pages touched
        benchmark(case.candidates[name], data(case))

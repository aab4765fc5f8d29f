"""Time budgets that fit the work: a test's calls into the submission may take, in all,
`test_multiplier` times what the reference's took in that test, and at least `test_floor_s`
(course.toml [limits]). The reference's times are measured by `python -m grader sync` and kept
beside each suite's tests (`reference_times.json`: per `<suite>/test_<topic>::<test function>`,
the seconds of its calls into the reference, `calls_s`, the slowest of its parameter sets, and
of the whole test, `test_s`, all its parameter sets, which `grader.grade` uses to share topics
out among cores; both null for a test the measuring machine skipped, a GPU test on a CPU). A
test without a time keeps the per-call limit alone, so it is never cut short; `grader sync
--check` fails on a test missing from the file."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

from grader.course import Course

TIMES_FILE = "reference_times.json"


def key_of(test_file: str | Path, function: str) -> str:
    """A test function's key: `public/test_softmax::test_softmax_small_example`."""
    path = Path(test_file)
    return f"{path.parent.name}/{path.stem}::{function}"


Timings = dict[str, dict[str, float | None]]  # test key -> {"calls_s": s, "test_s": s}


@functools.cache
def reference_times(suite_dir: Path) -> Timings:
    """The reference's times per test of one suite folder; empty when never measured."""
    try:
        data = json.loads((suite_dir / TIMES_FILE).read_text())
        return {str(k): {f: None if v[f] is None else float(v[f]) for f in ("calls_s", "test_s")}
                for k, v in data.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _entry(test_file: str | Path, function: str, field: str) -> float | None:
    entry = reference_times(Path(test_file).resolve().parent).get(key_of(test_file, function))
    return entry[field] if entry else None


def reference_time(test_file: str | Path, function: str) -> float | None:
    """What the reference's calls took in this test, if measured."""
    return _entry(test_file, function, "calls_s")


def topic_cost(test_files: list[Path]) -> float:
    """What grading these test files costs: the reference's seconds as measured (a file never
    measured counts one second per test, about a hypothesis test's cost)."""
    total = 0.0
    for f in test_files:
        prefix = key_of(f, "")
        costs = [e["test_s"] for k, e in reference_times(f.resolve().parent).items()
                 if k.startswith(prefix)]
        total += sum(c or 0.0 for c in costs) if costs else len(functions_in(f))
    return total


def record(timings: Timings, test_file: str | Path, function: str, calls_s: float,
           test_s: float) -> None:
    """Add one test run (one parameter set) to `timings`."""
    entry = timings.setdefault(key_of(test_file, function), {"calls_s": 0.0, "test_s": 0.0})
    entry["calls_s"] = max(entry["calls_s"] or 0.0, round(calls_s, 4))
    entry["test_s"] = round((entry["test_s"] or 0.0) + test_s, 4)


def budget_of(course: Course, reference_s: float | None) -> float | None:
    """Seconds a test's calls into student code may take in all; None: no budget beyond the
    per-call limit (the test was never measured, or the course sets no floor)."""
    floor, multiplier = course.limits.get("test_floor_s"), course.limits.get("test_multiplier")
    if reference_s is None or floor is None or multiplier is None:
        return None
    return max(float(floor), float(multiplier) * reference_s)


@functools.cache
def functions_in(test_file: Path) -> list[str]:
    """The test functions a test module defines (read, never imported)."""
    tree = ast.parse(test_file.read_text(), str(test_file))
    return [n.name for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def unmeasured(test_files: list[Path]) -> list[str]:
    """The tests of these files missing from their suite's times (`sync` measures them)."""
    return [key_of(f, name) for f in test_files for name in functions_in(f)
            if key_of(f, name) not in reference_times(f.resolve().parent)]


def merged(runs: list[Timings], test_files: list[Path]) -> dict[Path, Timings]:
    """Suite folder -> its times: each test's least over `runs` (the machine's noise only ever
    adds), and null for the tests no run measured (skipped on this machine)."""
    out: dict[Path, Timings] = {}
    for f in test_files:
        suite = out.setdefault(f.resolve().parent, {})
        for name in functions_in(f):
            key = key_of(f, name)
            seen = [r[key] for r in runs if key in r]
            suite[key] = {field: min([v for e in seen if (v := e[field]) is not None],
                                     default=None) for field in ("calls_s", "test_s")}
    return out

"""Generating the student stubs (`exercises/`) from the reference (`solutions/`), and measuring
the reference's time in each test, from which a test's time budget follows (`grader.budgets`).

The solution code sits between nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers;
as nbgrader does, each region becomes `# YOUR CODE HERE` + `raise NotImplementedError()` at the
marker's indentation. Everything else (docstrings, signatures, imports) is kept, so the `.py`
track and the notebook track strip solutions the same way.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.atomic import write_atomic
from grader.budgets import TIMES_FILE, Timings, merged
from grader.course import KIT_ROOT
from grader.scan.allowlist import MODULE_ATTRIBUTES_FILE

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]


class MarkerError(ValueError):
    """Unbalanced or nested solution markers."""


def strip_solutions(text: str, filename: str = "<source>") -> str:
    """The stub for a solution source: every marked region replaced by the stub lines."""
    out: list[str] = []
    begin_line = None
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin_line is not None:
                raise MarkerError(f"{filename}:{lineno}: nested {BEGIN} (opened at {begin_line})")
            begin_line = lineno
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{stub}\n" for stub in STUB)
        elif marker == END:
            if begin_line is None:
                raise MarkerError(f"{filename}:{lineno}: {END} without {BEGIN}")
            begin_line = None
        elif begin_line is None:
            out.append(line)
    if begin_line is not None:
        raise MarkerError(f"{filename}:{begin_line}: {BEGIN} is never closed")
    return "".join(out)


def expected_stubs(solutions: Path = KIT_ROOT / "solutions") -> dict[str, str]:
    """File name -> generated stub text, for every solution module. No solution module is an
    error: a check against nothing would pass."""
    stubs = {p.name: strip_solutions(p.read_text(), str(p)) for p in sorted(solutions.glob("*.py"))}
    if not stubs:
        raise FileNotFoundError(f"no solution modules in {solutions}")
    return stubs


GENERATED_FILE = ".generated.sha256"  # in exercises/: the hash of each stub sync wrote
STRICT_ENV = "TORCHDRILL_STRICT_SYNC"  # CI: an exercise that is not a generated stub fails


@dataclass
class SyncResult:
    """What `sync` found: stubs it wrote (or, checking, would write), and exercises it left
    alone because they hold someone's own work (not a stub sync generated)."""

    drift: list[str]
    student_work: list[str]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generated_hashes(exercises: Path) -> dict[str, str]:
    """File name -> the hash of the stub `sync` last wrote there."""
    try:
        lines = (exercises / GENERATED_FILE).read_text().splitlines()
    except OSError:
        return {}
    return {name: digest for digest, _, name in (line.partition("  ") for line in lines)
            if name}


def sync(check: bool = False, root: Path = KIT_ROOT) -> SyncResult:
    """Write (or, with `check`, compare) exercises/ against solutions/. An exercise is
    replaced only when it is missing or is a stub sync generated (its hash is in
    GENERATED_FILE): one a student filled in is never overwritten, only reported."""
    exercises = root / "exercises"
    stubs = expected_stubs(root / "solutions")
    generated = generated_hashes(exercises)
    result = SyncResult([], [])
    for name, text in stubs.items():
        target = exercises / name
        current = target.read_text() if target.exists() else None
        if current == text:
            generated.setdefault(name, _digest(text))
            continue
        if current is not None and generated.get(name) != _digest(current):
            result.student_work.append(name)
            continue
        result.drift.append(name)
        if not check:
            write_atomic(target, text)
            generated[name] = _digest(text)
    extra = sorted(p.name for p in exercises.glob("*.py") if p.name not in stubs)
    result.drift += [f"{name} (no solution)" for name in extra]
    if not check:
        write_atomic(exercises / GENERATED_FILE, "".join(
            f"{digest}  {name}\n" for name, digest in sorted(generated.items())))
    return result


def student_work_advice(names: list[str], exercises: Path = KIT_ROOT / "exercises") -> str:
    """How to keep the student's work in `names` and still bring the stubs up to date."""
    files = " ".join(f"exercises/{n}" for n in names)
    return (f"{', '.join(names)} in {exercises} hold{'s' if len(names) == 1 else ''} your own "
            "work (not a stub `sync` generated), so sync leaves "
            f"{'it' if len(names) == 1 else 'them'} alone. That is right for a student: grade "
            "it with `make grade`. A course author who wants the fresh stubs: keep the work "
            f"elsewhere first (`mkdir -p ~/my-work && mv {files} ~/my-work/`), then run sync.")


COMPUTE_ATTRIBUTES = ("import json; from grader.course import load_course; "
                      "from grader.scan.allowlist import compute_module_attributes; "
                      "print(json.dumps(compute_module_attributes(load_course().source), "
                      "indent=0, sort_keys=True))")


def sync_module_attributes(check: bool = False) -> bool:
    """Write (or, with `check`, compare) what the allowed modules hold, which the source
    allow-list reads (`grader.scan.allowlist.compute_module_attributes`); whether it differed.
    Computed in a fresh interpreter: what a module holds depends on what was imported before."""
    text = subprocess.run([sys.executable, "-c", COMPUTE_ATTRIBUTES], cwd=KIT_ROOT, check=True,
                          capture_output=True, text=True).stdout
    try:
        same = MODULE_ATTRIBUTES_FILE.read_text() == text
    except OSError:
        same = False
    if not same and not check:
        write_atomic(MODULE_ATTRIBUTES_FILE, text)
    return not same


MEASURE_ROUNDS = 3


def suite_files(root: Path = KIT_ROOT) -> list[Path]:
    """Every test module of the public and hidden suites."""
    return sorted(p for suite in ("public", "hidden") for p in (root / "tests" / suite).glob(
        "test_*.py"))


def measure_reference(rounds: int = MEASURE_ROUNDS) -> dict[Path, Timings]:
    """The reference graded `rounds` times (sandboxed, one topic at a time, on one thread, as
    a student is graded), each test's least time kept: suite folder -> its times."""
    from grader.grade import grade
    from grader.sandbox.client import Template

    runs: list[Timings] = []
    template = Template()
    try:
        for _ in range(rounds):
            timings: Timings = {}
            grade(KIT_ROOT / "solutions", suite="all", template=template, timings=timings)
            runs.append(timings)
    finally:
        template.close()
    return merged(runs, suite_files())


def write_times(times: dict[Path, Timings]) -> None:
    for suite, timings in times.items():
        write_atomic(suite / TIMES_FILE, json.dumps(timings, indent=1, sort_keys=True) + "\n")

"""Generating the student stubs (`exercises/`) from the reference (`solutions/`).

The solution code sits between nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` markers;
as nbgrader does, each region becomes `# YOUR CODE HERE` + `raise NotImplementedError()` at the
marker's indentation. Everything else (docstrings, signatures, imports) is kept, so the `.py`
track and the notebook track strip solutions the same way.
"""

from __future__ import annotations

from pathlib import Path

from grader.atomic import write_atomic
from grader.course import KIT_ROOT

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


def sync(check: bool = False, root: Path = KIT_ROOT) -> list[str]:
    """Write (or, with `check`, compare) exercises/ against solutions/; return what differs."""
    exercises = root / "exercises"
    stubs = expected_stubs(root / "solutions")
    drift = []
    for name, text in stubs.items():
        target = exercises / name
        if target.exists() and target.read_text() == text:
            continue
        drift.append(name)
        if not check:
            write_atomic(target, text)
    extra = sorted(p.name for p in exercises.glob("*.py") if p.name not in stubs)
    drift += [f"{name} (no solution)" for name in extra]
    return drift

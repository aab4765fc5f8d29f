"""What decides a student's report, as hashes: `grader batch` regrades a student only when one
of them changed since their report, and re-renders a report only when what renders it changed.

A student's fingerprint (`fingerprint`) is made of
- the kit's part (`kit_hash`): the grader's code but its presentation (`PRESENTATION`) and the
  instructor's modules that only present or release (`GRADING_INSTRUCTOR` are the ones that
  grade), torchdrill, the test packages' own files, pyproject.toml, course.toml's sections
  that bind every topic ([course], [limits], [source], [gpu]), the GPU override, and torch's
  version and whether CUDA is here (GPU tests count only there);
- one part per topic graded (`topic_parts`): the topic's course.toml entry and, when the
  student handed the topic in (a file of it the grader read), its test files with the test
  modules they import, the reference's measured times of its tests, and its reference and
  stub. A topic with no file the grader read (none, or one refused: a link, not UTF-8, too
  large) scores nothing whatever its tests (every test meets the missing module, as the
  kit's tests see the stubs score nothing), and its maximum is course.toml's points (a kit
  test keeps them equal to the tests'), so a change to its tests alone regrades no one who
  skipped it;
- what grading reads of the submission, and the batch's options.
A wrong "unchanged" would keep a stale grade, so anything else that may decide a grade is in
the kit's part, and a change there regrades everyone.

A report's render stamp (`render_stamp`) is the renderers' code, course.toml's [gradescope]
and the report's late penalties: a change to any re-renders report.md, report.html and
results.json from report.json, without grading.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from grader.course import COURSE_FILE, GPU_TESTS_ENV, KIT_ROOT, Course
from grader.report.environment import files_digest, kit_files
from grader.report.schema import Report
from grader.submission import Submission

# Modules that only show a grade: a change re-renders reports, regrades no one.
PRESENTATION = ("grader/report/formats.py", "grader/report/table.py")
# The instructor's modules that decide how a student is read and graded in a batch.
GRADING_INSTRUCTOR = ("grader/instructor/tasks.py", "grader/instructor/pool.py",
                      "grader/instructor/archive.py", "grader/instructor/batch.py",
                      "grader/instructor/fingerprint.py")
TEST_PACKAGE_FILES = ("tests/__init__.py", "tests/conftest.py", "tests/public/__init__.py",
                      "tests/hidden/__init__.py")
# course.toml's sections that present, compare or penalise (never grade): in no fingerprint.
NOT_GRADING_SECTIONS = ("topics", "similarity", "late", "deadlines", "gradescope")
SUITES = ("public", "hidden")


@functools.cache
def _course_data() -> dict:
    return tomllib.loads(COURSE_FILE.read_text())


def kit_hash() -> str:
    """The part of every student's fingerprint that the kit decides (the module's doc)."""
    import torch

    grader = [p for p in kit_files("grader") if str(p.relative_to(KIT_ROOT)) not in PRESENTATION]
    files = [*grader, *(KIT_ROOT / f for f in GRADING_INSTRUCTOR), *kit_files("torchdrill"),
             *(KIT_ROOT / f for f in (*TEST_PACKAGE_FILES, "pyproject.toml"))]
    sections = {k: v for k, v in _course_data().items() if k not in NOT_GRADING_SECTIONS}
    machine = [torch.__version__, torch.cuda.is_available(), os.environ.get(GPU_TESTS_ENV, "")]
    return files_digest([f for f in files if f.is_file()],
                        json.dumps([sections, machine], sort_keys=True))


def _test_modules(path: Path) -> list[Path]:
    """The kit's test modules `path` imports (`from tests.hidden._training import ...`),
    at any depth, as files."""
    found: list[Path] = []
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                if not name.startswith("tests."):
                    continue
                file = KIT_ROOT.joinpath(*name.split(".")).with_suffix(".py")
                if file.is_file() and file not in found:
                    found.append(file)
                    todo.append(file)
    return sorted(found)


def _reference_times(topic: str) -> dict[str, object]:
    """The measured times of the topic's tests, in every suite (`grader.budgets`' files)."""
    times: dict[str, object] = {}
    for suite in SUITES:
        path = KIT_ROOT / "tests" / suite / "reference_times.json"
        if path.is_file():
            prefix = f"{suite}/test_{topic}::"
            times |= {k: v for k, v in json.loads(path.read_text()).items()
                      if k.startswith(prefix)}
    return times


def topic_parts(course: Course) -> dict[str, tuple[str, str]]:
    """Per topic, its part of a fingerprint: (handed in, not handed in)."""
    entries = {t["name"]: t for t in _course_data().get("topics", [])}
    parts = {}
    for topic in course.names:
        entry = json.dumps(entries.get(topic), sort_keys=True)
        tests = [p for s in SUITES if (p := KIT_ROOT / "tests" / s / f"test_{topic}.py").is_file()]
        code = [*tests, *(m for t in tests for m in _test_modules(t)),
                *(p for f in ("solutions", "exercises") if (p := KIT_ROOT / f / f"{topic}.py")
                  .is_file())]
        handed_in = files_digest(sorted(set(code)), entry + json.dumps(
            _reference_times(topic), sort_keys=True))
        parts[topic] = (handed_in, hashlib.sha256(entry.encode()).hexdigest())
    return parts


def handed_in(submission: Submission, topic: str) -> bool:
    """Whether the grader read a file of the topic from the submission."""
    return topic in submission.sources


def fingerprint(submission: Submission, kit: str, options: tuple,
                topics: Mapping[str, tuple[str, str]] | None = None) -> str:
    """What decides a student's report: the kit, the options, each graded topic's part (as
    the student handed it in or not) and what grading reads of the submission (each topic's
    file by its path inside the submission and its text, what was wrong with a topic, the
    files not graded)."""
    read = {"sources": {m: [os.path.relpath(f, submission.path), text]
                        for m, (f, text) in submission.sources.items()},
            "problems": submission.problems, "not_graded": submission.not_graded}
    chosen = {t: parts[0 if handed_in(submission, t) else 1]
              for t, parts in sorted((topics or {}).items())}
    data = json.dumps([kit, repr(options), submission.name, read, chosen], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()  # ascii: json escapes the rest


def render_stamp(report: Report) -> str:
    """What renders a report besides report.json's grade: the renderers, course.toml's
    [gradescope] and the late penalties."""
    shown = [_course_data().get("gradescope", {}), report.get("late") or []]
    return files_digest([KIT_ROOT / f for f in PRESENTATION], json.dumps(shown, sort_keys=True))

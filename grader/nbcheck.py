"""What the cells of checks in torchdrill's notebooks call, inside a student's Jupyter kernel,
and the text those cells show.

A cell of checks never runs the student's code in the kernel, nor tests there. `check` grades
the saved notebook (`<topic>.ipynb` in the kernel's working folder, which is the notebook's
folder under Jupyter) with `python -m grader grade`, in its own process (`run_grader`), once per
kernel and notebook content; then it prints what `checks_text` says about one function's tests
in that report (grouped as the release grouped them, by the function names the notebook's
metadata lists: `grader.notebooks.group_of`): public tests by name, hidden tests only by what
they check and what failed, never their code. It returns the points, which as a cell's last
value are nbgrader's partial credit for the cell.

It writes nothing to stderr (nbgrader gives 0 to a cell with any stderr output, and torch and
its friends print warnings there): warnings are silenced and the grader's output is captured.

GPU tests count as the notebook was released (its `GPU_METADATA_KEY` metadata: course.toml's
[gpu] tests then): with "counted" they are in the cells' points, so the grader counts them, and
a machine without CUDA makes the cell that holds them fail with that reason, never a silent 0;
with "where-cuda" or "omitted" they are in no cell, so the grader leaves them out too and a
notebook's maximum is the same on every machine.

Under `nbgrader autograde` no kernel runs at all: the released course's Execute step
(`grader.instructor.nbsteps.GradeInSandbox`) grades the submission with `run_grader` and
writes each cell of checks' output from `checks_text`, the same text a kernel would print.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from grader.course import GPU_TESTS_ENV, KIT_ROOT, GpuTests, load_course
from grader.notebooks import METADATA_KEY, group_of
from grader.report.formats import PRINTED, detail_message, diagnose, diagnosis_text
from grader.report.schema import OUTCOMES, GradedTest, Report, waiting

GRADER_START_S = 120  # beyond the course's submission time limit: torch import, pytest, workers

# Notebook metadata: {"tests": course.toml's [gpu] tests at release, "points": the points of
# GPU tests in this notebook's cells}. A notebook without it (released before the setting
# existed) counted its GPU tests.
GPU_METADATA_KEY = "torchdrill_gpu"
COUNTED_WITHOUT_CUDA = (
    "THIS COURSE COUNTS ITS GPU TESTS (released with [gpu] tests = \"counted\" in course.toml), "
    "and this machine has no CUDA device, so {points} of this cell's checks could not run. "
    "The cell fails rather than score them 0 for the machine's sake: autograde on a machine "
    "with CUDA.")

_reports: dict[tuple[str, str], Report] = {}  # (topic, sha256 of the notebook) -> report


def check(topic: str, function: str | None = None, hidden: bool = False,
          points: float | None = None) -> float:
    """Points earned by `function`'s public tests in this notebook (or, with `hidden`, by its
    public and hidden tests together: worth `points`), with what went wrong printed.
    `function` None: the topic's tests that are about no single function."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        report, functions = _report(topic)
    text, earned = checks_text(report, topic, function, functions, hidden, points)
    print(text)
    return earned


def checks_text(report: Report, topic: str, function: str | None, functions: list[str],
                hidden: bool = False, points: float | None = None) -> tuple[str, float]:
    """What a cell of checks says about `function`'s tests in `report` (tests grouped by
    `functions`, the notebook's), and the points it gives: those of the public tests, or with
    `hidden` those of all of them, which must be worth the cell's `points` (RuntimeError with
    the reason otherwise)."""
    tests = [t for entry in report["topics"] if entry["name"] == topic for t in entry["tests"]
             if group_of(t["name"], functions) == function]
    about = f"`{function}`" if function else "the topic as a whole"
    if not hidden:
        public = [t for t in tests if t["visibility"] == "public"]
        return "\n".join(_public_lines(about, public)), _earned(public)
    skipped = sum(float(t["points"]) for t in report.get("not_counted", [])
                  if t["topic"] == topic and group_of(t["name"], functions) == function)
    points = _check_hidden_ran(report, topic, tests, points, skipped)
    total = _earned(tests)
    lines = _hidden_lines(about, [t for t in tests if t["visibility"] == "hidden"])
    return "\n".join([*lines, f"{about}: {_fmt(total)} of {_fmt(points)} points in all."]), total


def _report(topic: str) -> tuple[Report, list[str]]:
    """The grader's report on the saved notebook, and the notebook's functions."""
    notebook = Path.cwd() / f"{topic}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(
            f"no {notebook.name} in {Path.cwd()}: the checks grade the saved notebook, so it "
            f"must be called {notebook.name} and be run from its own folder.")
    data = notebook.read_bytes()
    try:
        functions = json.loads(data)["metadata"][METADATA_KEY]["functions"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"{notebook.name} is not a notebook of the torchdrill course (its "
                           f"metadata has no {METADATA_KEY!r} entry)") from None
    key = (topic, hashlib.sha256(data).hexdigest())
    if key not in _reports:
        _reports[key] = _grade(topic, notebook.name, data)
    return _reports[key], functions


def released_gpu_tests(data: bytes) -> GpuTests:
    """How the notebook counts its GPU tests: "counted", or "omitted" (released with
    "where-cuda" or "omitted": they are in none of its cells)."""
    try:
        released = json.loads(data)["metadata"].get(GPU_METADATA_KEY, {}).get("tests")
    except (ValueError, KeyError, TypeError, AttributeError):
        released = None
    return "omitted" if released in ("where-cuda", "omitted") else "counted"


def _grade(topic: str, name: str, data: bytes) -> Report:
    """The grader's report on these notebook bytes, as the only file of a submission in an
    empty folder, counting GPU tests as the notebook was released."""
    with tempfile.TemporaryDirectory(prefix="torchdrill-check-") as tmp:
        notebook = Path(tmp, "submission", name)
        notebook.parent.mkdir()
        notebook.write_bytes(data)
        return run_grader(notebook.parent, topic, released_gpu_tests(data))


def run_grader(submission: Path, topic: str, gpu_tests: GpuTests) -> Report:
    """The report of `python -m grader grade SUBMISSION --topics TOPIC`, as `grader batch`
    grades a student's folder, from a fresh process in an empty folder (`-P`: nothing beside
    the submission can stand in for the grader), counting GPU tests as `gpu_tests` says.
    RuntimeError when the grader could not grade it."""
    timeout = float(load_course().limits["submission_timeout_s"]) + GRADER_START_S
    env = {**os.environ, GPU_TESTS_ENV: gpu_tests}
    with tempfile.TemporaryDirectory(prefix="torchdrill-grade-") as tmp:
        out = Path(tmp, "report")
        try:
            run = subprocess.run(
                [sys.executable, "-P", "-m", "grader", "grade", str(submission), "--topics",
                 topic, "--out", str(out)], cwd=tmp, stdin=subprocess.DEVNULL, env=env,
                capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"grading {submission.name} took more than {timeout:.0f} s"
                               ) from None
        report = out / "report.json"
        if run.returncode != 0 or not report.is_file():
            raise RuntimeError(f"torchdrill's grader could not grade {submission.name}:\n"
                               + (run.stderr or run.stdout)[-2000:])
        result: Report = json.loads(report.read_text())
        return result


def _check_hidden_ran(report: Report, topic: str, tests: list[GradedTest],
                      points: float | None, skipped: float = 0.0) -> float:
    """Fail (0 points, with the reason) rather than score without the hidden tests, without
    the GPU tests a course counts, or with tests that changed since the notebook was
    released; the cell's points. `skipped`: points of this cell's tests that this machine
    skipped (GPU tests without CUDA)."""
    ran = [t for entry in report["topics"] if entry["name"] == topic for t in entry["tests"]]
    if not any(t["visibility"] == "hidden" for t in ran):
        raise RuntimeError(f"the hidden tests of {topic} are not on this machine "
                           f"({KIT_ROOT / 'tests' / 'hidden'}): grade where they are.")
    if points is None:
        raise TypeError("check(..., hidden=True) needs the cell's points")
    worth = _worth(tests)
    if worth < points and worth + skipped == points:
        raise RuntimeError(COUNTED_WITHOUT_CUDA.format(points=_points(skipped)))
    if worth != points:
        raise RuntimeError(f"the tests of this cell are worth {_fmt(worth)} points but the cell "
                           f"{_fmt(points)}: the tests changed after the notebook was "
                           "released. Run `make release` and `nbgrader generate_assignment` "
                           "again.")
    return points


def _earned(tests: list[GradedTest]) -> float:
    return round(sum(float(t["score"]) for t in tests), 4)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _points(x: float) -> str:
    return f"{x:g} point{'' if x == 1 else 's'}"


def _public_lines(about: str, tests: list[GradedTest]) -> list[str]:
    if not tests:
        return [f"No public checks for {about}: the hidden checks grade it. Test it yourself."]
    lost = [t for t in tests if t["score"] < t["max_score"]]
    return [f"{about}: {_fmt(_earned(tests))} of {_fmt(_worth(tests))} points from the public "
            "checks." + ("" if lost else " The hidden checks will test it further."),
            *_lost_lines(lost, named=True)]


def _hidden_lines(about: str, tests: list[GradedTest]) -> list[str]:
    return [f"Hidden checks of {about}: {_fmt(_earned(tests))} of {_fmt(_worth(tests))} points.",
            *_lost_lines([t for t in tests if t["score"] < t["max_score"]], named=False)]


def _lost_lines(lost: list[GradedTest], named: bool) -> list[str]:
    """Each lost test with what went wrong and what it checks, after the diagnosis (each
    recognised mistake or shared message once, with what it cost, as the report has it); a
    function not written yet is said once, not once per test."""
    lines = []
    unwritten = [t for t in lost if waiting(t)]
    if unwritten:
        lines.append(f"  ✗ {len(unwritten)} check(s), {_points(_worth(unwritten))}: "
                     f"{unwritten[0]['message']}")
    fix = [t for t in lost if not waiting(t)]
    diagnoses = diagnose(fix)
    lines += [f"  {diagnosis_text(diagnosis)}" for diagnosis in diagnoses]
    for t in fix:
        name = t["name"] if named else "a hidden check"
        lines.append(f"  ✗ {name} ({_points(t['max_score'])}): "
                     f"{OUTCOMES[t['outcome']].check_text}")
        message = detail_message(t, diagnoses) if t.get("message") else ""
        lines += [textwrap.indent(f"{label}: {text}", "      ")
                  for label, text in (("what went wrong", message),
                                      ("what it checks", t.get("hint")),
                                      (PRINTED.lower(), t.get("output"))) if text]
    return lines


def _worth(tests: list[GradedTest]) -> float:
    return sum(float(t["max_score"]) for t in tests)

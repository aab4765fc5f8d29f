"""Grading a class: every entry of a folder is one student (a folder of `.py` files or
notebooks, or a `.zip` of one), graded in parallel, each report written atomically as soon as
it is done. A student whose files, the tests and the kit are unchanged since their report is
skipped, so a run killed midway resumes where it stopped. At the end, the gradebook and the
class page are written from every report.

Each student's reports go to `OUT/students/<student>/`, so no student's name can collide with
the class's own files in `OUT/`. Local runs use grader processes the batch owns
(`grader.instructor.pool`: one worker template each, none outliving the batch, each student within a
wall-clock budget); `--executor dask` sends the same tasks to a Dask cluster.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.atomic import write_atomic
from grader.course import COURSE_FILE, KIT_ROOT, Course, load_course
from grader.instructor.archive import extract_submission
from grader.instructor.class_report import STUDENTS, write_class_report
from grader.instructor.pool import run_tasks
from grader.report.formats import summary_line, write_reports
from grader.submission import Submission, load_submission
from grader.text import clean_text

if TYPE_CHECKING:
    from grader.stopped import TestPlan

FINGERPRINT = ".fingerprint"


@dataclass(frozen=True)
class Task:
    """One student to grade; everything a grader process needs, picklable."""

    student: str
    entry: str
    out: str
    topics: tuple[str, ...] | None
    suite: str | None
    call_timeout: float | None
    fingerprint: str
    keyword: str | None = None  # only the tests matching this pytest -k expression


def entries(root: Path) -> list[tuple[str, Path]]:
    """(student id, entry) for each sub-folder and `.zip` of `root`, by name."""
    found = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            found.append((p.name, p))
        elif p.suffix.lower() == ".zip":
            found.append((p.stem, p))
    return found


def _hash_files(h, files: Iterator[Path], base: Path) -> None:
    """Each regular file's path and bytes. A symlink counts by where it points, never
    followed (a link in a submission must not make the coordinator read a device or a huge
    file), and a file that cannot be read by its error."""
    for f in sorted(files):
        if "__pycache__" in f.parts:
            continue
        if f.is_symlink():
            data = b"link to " + os.fsencode(os.readlink(f))
        elif f.is_file():
            try:
                data = f.read_bytes()
            except OSError as e:
                data = f"unreadable: {e.strerror}".encode()
        else:
            continue
        h.update(str(f.relative_to(base)).encode() + b"\0")
        h.update(data + b"\0")


def kit_hash() -> str:
    """Everything that decides a score besides the submission: grader, tests, course."""
    h = hashlib.sha256()
    for sub in ("grader", "torchdrill", "tests/public", "tests/hidden"):
        _hash_files(h, (KIT_ROOT / sub).rglob("*.py"), KIT_ROOT)
    _hash_files(h, iter([KIT_ROOT / "pyproject.toml"]), KIT_ROOT)
    h.update(COURSE_FILE.read_bytes())  # the kit's course.toml, or the one TORCHDRILL_COURSE names
    return h.hexdigest()


def fingerprint(entry: Path, kit: str, options: tuple) -> str:
    h = hashlib.sha256((kit + repr(options)).encode())
    files = entry.rglob("*") if entry.is_dir() else iter([entry])
    _hash_files(h, files, entry if entry.is_dir() else entry.parent)
    return h.hexdigest()


def is_current(task: Task) -> bool:
    """The student's reports exist and were made from these files, tests and kit."""
    out = Path(task.out)
    stamp = out / FINGERPRINT
    return (out / "report.json").exists() and stamp.exists() and \
        stamp.read_text().strip() == task.fingerprint


def student_dir(out: Path, student: str) -> Path:
    """Where a student's reports go: `OUT/students/<student>/`."""
    return out / STUDENTS / student


def write_student(task: Task, report: dict) -> None:
    """The student's reports, then the fingerprint that lets a rerun skip them."""
    out = Path(task.out)
    write_reports(report, out)
    write_atomic(out / FINGERPRINT, task.fingerprint + "\n")


# -- in a grader process -----------------------------------------------------------------------

_template = None


def template_once():
    """One worker template per grader process (local or Dask). A local grader process starts
    it as the process starts, before the process imports torch for its first task."""
    global _template
    if _template is None:
        from grader.sandbox.client import Template

        _template = Template()
        import torch

        torch.set_num_threads(1)
    return _template


def _submission(task: Task, scratch: Path) -> Submission:
    """The student's submission; whatever was wrong with it (a bad archive, no code, a file
    that could not be read) becomes a problem of every topic, so the student still gets a
    report that says so."""
    entry = Path(task.entry)
    try:
        problem = None
        if entry.is_file():
            problem = extract_submission(entry, scratch)
            entry = scratch
        sub = load_submission(entry)
        if problem is None and not sub.sources and not sub.problems:
            names = sorted(p.name for p in entry.rglob("*") if p.is_file())[:8]
            problem = ("the submission has no .py or .ipynb files" +
                       (f" (found: {', '.join(names)})" if names else ": it is empty"))
    except Exception as e:
        sub = Submission(task.student, entry)
        problem = f"the submission could not be read ({type(e).__name__}: {e})"
    sub.name = task.student
    if problem:
        for topic in load_course().names:
            sub.problems.setdefault(topic, problem)
    return sub


def grade_task(task: Task, plan: TestPlan | None = None) -> dict:
    """Grade one student and write their reports; returns the report. `plan` hears which
    tests the run collected (a batch's coordinator needs them if it has to stop the run)."""
    from grader.cli import grade

    course = load_course()
    if task.call_timeout:
        course = course.with_call_timeout(task.call_timeout)
    with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
        sub = _submission(task, Path(scratch))
        report = grade(sub, list(task.topics) if task.topics else None, task.suite, None,
                       template=template_once(), course=course, keyword=task.keyword,
                       plan=plan)
    write_student(task, report)
    return report


# -- the coordinator ---------------------------------------------------------------------------


def plan(root: Path, out: Path, topics: list[str] | None, suite: str | None,
         call_timeout: float | None, keyword: str | None = None,
         student_timeout: float | None = None) -> list[Task]:
    """One task per student of `root`, reporting to `OUT/students/<student>/`."""
    kit = kit_hash()
    options = (tuple(topics or ()), suite, call_timeout, keyword, student_timeout)
    return [Task(student, str(entry), str(student_dir(out, student)),
                 tuple(topics) if topics else None, suite, call_timeout,
                 fingerprint(entry, kit, options), keyword)
            for student, entry in entries(root)]


def grading_budget(course: Course, student_timeout: float | None = None) -> float:
    """Seconds of wall clock grading one student may take in all (course.toml's
    `grading_timeout_s` unless given)."""
    return student_timeout or float(course.limits["grading_timeout_s"])


def grade_locally(tasks: list[Task], jobs: int, budget_s: float | None = None
                  ) -> Iterator[tuple[Task, dict | None, str | None]]:
    """Grade tasks on `jobs` grader processes of our own (`grader.instructor.pool`), each student within
    `budget_s` (default: course.toml's); yield (task, report, error) as each finishes. A
    student stopped past the budget gets a report that says so."""
    course = load_course()
    budget_s = budget_s or grading_budget(course)
    for outcome in run_tasks(tasks, jobs, budget_s):
        task = outcome.task
        if outcome.stopped:
            from grader.stopped import stopped_report

            report = stopped_report(course, list(task.topics or course.names), task.student,
                                    budget_s, outcome.planned, outcome.not_counted)
            write_student(task, report)
            yield task, report, None
        else:
            yield task, outcome.report, outcome.error


def _dask(tasks: list[Task], scheduler: str) -> Iterator[tuple[Task, dict | None, str | None]]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(scheduler) as client:
        futures = {client.submit(grade_task, t, key=f"grade-{t.student}-{t.fingerprint[:12]}",
                                 pure=False): t for t in tasks}
        for fut in dask_completed(list(futures)):
            task = futures[fut]
            try:
                yield task, fut.result(), None
            except Exception as e:
                yield task, None, f"{type(e).__name__}: {e}"


def run_batch(root: Path, out: Path, course: Course, topics: list[str] | None = None,
              suite: str | None = None, jobs: int | None = None, executor: str = "local",
              scheduler: str | None = None, call_timeout: float | None = None, *,
              keyword: str | None = None, student_timeout: float | None = None) -> int:
    """Grade every student of `root` into `out`; return the number that could not be graded.
    Locally each student has `student_timeout` seconds in all (default: course.toml's
    `grading_timeout_s`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    out.mkdir(parents=True, exist_ok=True)
    tasks = plan(root, out, topics, suite, call_timeout, keyword, student_timeout)
    todo = [t for t in tasks if not is_current(t)]
    print(f"{len(tasks)} students; {len(tasks) - len(todo)} unchanged since their report, "
          f"{len(todo)} to grade", file=sys.stderr)
    failures = []
    runner = _dask(todo, scheduler) if executor == "dask" else grade_locally(
        todo, jobs or os.cpu_count() or 1, grading_budget(course, student_timeout))
    columns = [TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn()]
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("grading", total=len(todo), rate="")
        for n, (task, report, error) in enumerate(runner, start=1):
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(bar, advance=1, rate=f"{n / elapsed * 60:.1f}/min")
            if error:
                failures.append(task.student)
                _say(progress.console, f"{task.student}: could not be graded: {error}", "red")
            else:
                _say(progress.console, f"{task.student}: {summary_line(report)}")
    reports = {t.student: _load(Path(t.out) / "report.json") for t in tasks}
    write_class_report({s: r for s, r in reports.items() if r}, out,
                       f"{course.title}: {root.name}")
    print(f"gradebook: {out / 'gradebook.csv'}; class page: {out / 'index.html'}; "
          f"students' reports: {out / STUDENTS}/", file=sys.stderr)
    return len(failures)


def _say(console, text: str, style: str | None = None) -> None:
    """One line on the console, shown as written: no markup (a student named `[red]` stays
    that), no control characters, no line breaks (nothing that could fake a line)."""
    console.print(" ".join(clean_text(text).split()), style=style, markup=False,
                  highlight=False)


def _load(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

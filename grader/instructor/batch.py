"""Grading a class: every entry of a folder is one student (a folder of `.py` files or
notebooks, or a `.zip` of one), graded in parallel, each report written atomically as soon as
it is done. A student whose files, the tests and the kit are unchanged since their report is
skipped, so a run killed midway resumes where it stopped. At the end, the gradebook and the
class page are written from every report.

Each student's reports go to `OUT/students/<student>/`, so no student's name can collide with
the class's own files in `OUT/`. Local runs use grader processes the batch owns
(`grader.instructor.pool`: one worker template each, none outliving the batch, each student
within a wall-clock budget); `--executor dask` sends the same tasks to a Dask cluster. What a
grader process does for one student is `grader.instructor.tasks`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grader.course import COURSE_FILE, GPU_TESTS_ENV, KIT_ROOT, Course, load_course
from grader.grade import grading_budget
from grader.instructor.class_report import STUDENTS, write_class_report
from grader.instructor.pool import run_tasks
from grader.instructor.similarity import ClassSimilarity, compare_class
from grader.instructor.sync import expected_stubs
from grader.instructor.tasks import (
    FINGERPRINT,
    Task,
    grade_task,
    read_submission,
    write_student,
)
from grader.report.formats import summary_line
from grader.report.schema import Report
from grader.text import clean_text

Graded = tuple[Task, Report | None, str | None]  # a student's report, or why there is none


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
    h.update(os.environ.get(GPU_TESTS_ENV, "").encode())  # [gpu] tests, when overridden
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


# -- the coordinator ---------------------------------------------------------------------------


def gpu_refusal(course: Course, topics: list[str] | None, executor: str = "local") -> str | None:
    """Why a batch may not start on this machine, or None: the course counts its GPU tests
    (course.toml's [gpu] tests = "counted"), the topics to grade have some, and there is no
    CUDA device here to run them. (With Dask the workers grade: their reports say so.)"""
    if course.gpu_tests != "counted" or executor != "local":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    from grader.instructor.release import collect_tests

    tests = collect_tests(list(topics or course.names), "counted")
    gpu = {name: sum(t.points for t in found if t.gpu) for name, found in tests.items()}
    gpu = {name: points for name, points in gpu.items() if points}
    if not gpu:
        return None
    return ("grader batch: this course counts its GPU tests ([gpu] tests = \"counted\" in "
            f"{COURSE_FILE}) and this machine has no CUDA device, so they cannot be graded here ("
            + ", ".join(f"{name}: {points:g} points" for name, points in gpu.items())
            + "). Grade the class on a machine with CUDA, or set [gpu] tests to \"where-cuda\" "
            "(counted only where CUDA exists) or \"omitted\" (not part of the course).")


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


def grade_locally(tasks: list[Task], jobs: int, budget_s: float | None = None
                  ) -> Iterator[Graded]:
    """Grade tasks on `jobs` grader processes of our own (`grader.instructor.pool`), each
    student within `budget_s` (default: course.toml's); yield (task, report, error) as each
    finishes. A student stopped past the budget gets a report that says so."""
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


def _dask(tasks: list[Task], scheduler: str) -> Iterator[Graded]:
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
    runner: Iterator[Graded]
    if executor == "dask":
        if not scheduler:
            raise ValueError("the dask executor needs a scheduler's address")
        runner = _dask(todo, scheduler)
    else:
        runner = grade_locally(todo, jobs or os.cpu_count() or 1,
                               grading_budget(course, student_timeout))
    columns = [TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn()]
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("grading", total=len(todo), rate="")
        for n, (task, report, error) in enumerate(runner, start=1):
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(bar, advance=1, rate=f"{n / elapsed * 60:.1f}/min")
            if error or report is None:
                failures.append(task.student)
                _say(progress.console, f"{task.student}: could not be graded: {error}", "red")
            else:
                _say(progress.console, f"{task.student}: {summary_line(report)}")
    reports = {t.student: _load(Path(t.out) / "report.json") for t in tasks}
    similar = similarity(tasks, course, out)
    write_class_report({s: r for s, r in reports.items() if r}, out,
                       f"{course.title}: {root.name}", similar)
    print(f"gradebook: {out / 'gradebook.csv'}; class page: {out / 'index.html'}; "
          f"students' reports: {out / STUDENTS}/", file=sys.stderr)
    return len(failures)


def similarity(tasks: list[Task], course: Course, out: Path) -> ClassSimilarity:
    """Every pair of students compared per topic graded (grader.instructor.similarity), the
    pairs at course.toml's [similarity] threshold written beside the class page."""
    stubs = expected_stubs(KIT_ROOT / "solutions")
    topics = {t for task in tasks for t in (task.topics or course.names)}
    stubs = {t: stubs[f"{t}.py"] for t in course.names if t in topics and f"{t}.py" in stubs}
    code: dict[str, dict[str, str]] = {}
    for task in tasks:
        with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
            sub = read_submission(task, Path(scratch))
        code[task.student] = {t: text for t in stubs if (text := sub.source(t))}
    return compare_class(code, stubs, course.similarity.threshold,
                         course.similarity.min_shared, out)


def _say(console, text: str, style: str | None = None) -> None:
    """One line on the console, shown as written: no markup (a student named `[red]` stays
    that), no control characters, no line breaks (nothing that could fake a line)."""
    console.print(" ".join(clean_text(text).split()), style=style, markup=False,
                  highlight=False)


def _load(path: Path) -> Report | None:
    import json

    try:
        report: Report = json.loads(path.read_text())
        return report
    except (OSError, ValueError):
        return None

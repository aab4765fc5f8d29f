"""What one grader process does for a student of a batch (locally in `grader.instructor.pool`,
or on a Dask worker): read the submission (a folder or an archive), grade it, and write the
student's reports (their earlier ones kept in `history/`, `grader.instructor.history`), the
fingerprint that lets a rerun skip them and the stamp that lets it skip rendering them."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.atomic import write_atomic
from grader.course import load_course
from grader.grade import grade
from grader.instructor.archive import extract_submission
from grader.instructor.fingerprint import render_stamp
from grader.instructor.history import keep_earlier
from grader.report.formats import write_reports
from grader.report.schema import Report
from grader.submission import Submission, load_submission, smallest

if TYPE_CHECKING:
    from grader.sandbox.client import Template
    from grader.stopped import TestPlan

FINGERPRINT = ".fingerprint"
RENDERED = ".rendered"  # the render stamp (`fingerprint.render_stamp`) of the files written
SHOWN_NAMES = 8  # names a report shows of a submission that holds no code file


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


def write_student(task: Task, report: Report) -> None:
    """The student's reports (their earlier ones moved to `history/` first), then the
    fingerprint that lets a rerun skip them."""
    out = Path(task.out)
    keep_earlier(out)
    write_rendered(report, out)
    write_atomic(out / FINGERPRINT, task.fingerprint + "\n")


def write_rendered(report: Report, out: Path) -> None:
    """The report in all its formats, and the stamp of what rendered them."""
    write_reports(report, out)
    write_atomic(out / RENDERED, render_stamp(report) + "\n")


_template: Template | None = None


def template_once() -> Template:
    """One worker template per grader process (local or Dask). A local grader process starts
    it as the process starts, before the process imports torch for its first task."""
    global _template
    if _template is None:
        from grader.sandbox.client import Template

        threads = load_course().threads
        _template = Template(threads)
        import torch

        torch.set_num_threads(threads)
    return _template


def read_submission(task: Task, scratch: Path, topics: list[str] | None = None) -> Submission:
    """The student's submission, a zip unpacked into `scratch` (`topics`: the course's, read
    from course.toml unless given). Whatever was wrong with it (a bad archive, no code, a file
    that could not be read) becomes a problem of every topic, so the student still gets a
    report that says so."""
    topics = topics or load_course().names
    entry = Path(task.entry)
    try:
        problem = None
        if entry.is_file():
            scratch.mkdir(exist_ok=True)
            problem = extract_submission(entry, scratch)
            entry = scratch
        sub = load_submission(entry, topics)
        if problem is None and not sub.sources and not sub.problems:
            problem = f"the submission has no .py or .ipynb files{_found(entry)}"
    except Exception as e:
        sub = Submission(task.student, entry)
        problem = f"the submission could not be read ({type(e).__name__}: {e})"
    sub.name = task.student
    if problem:
        for topic in topics:
            sub.problems.setdefault(topic, problem)
    return sub


def _found(folder: Path) -> str:
    """What a submission without code holds, as a report says it: the first names of its top
    folder (never a walk of what lies below)."""
    if not folder.is_dir():
        return ""
    with os.scandir(folder) as listing:
        names, count = smallest((e.name + "/" if e.is_dir(follow_symlinks=False) else e.name
                                 for e in listing), SHOWN_NAMES)
    if not names:
        return ": it is empty"
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return f" (found: {', '.join(names)}{more})"


def grade_task(task: Task, plan: TestPlan | None = None) -> Report:
    """Grade one student and write their reports; returns the report. `plan` hears which
    tests the run collected (a batch's coordinator needs them if it has to stop the run)."""
    course = load_course()
    if task.call_timeout:
        course = course.with_call_timeout(task.call_timeout)
    with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
        sub = read_submission(task, Path(scratch))
        report = grade(sub, list(task.topics) if task.topics else None, task.suite, None,
                       template=template_once(), course=course, keyword=task.keyword,
                       plan=plan)
    write_student(task, report)
    return report

"""Grading a class: every entry of a folder is one student (a folder of `.py` files or
notebooks, or a `.zip` of one), graded in parallel, each report written atomically as soon as
it is done. A student whose files, the tests and the kit are unchanged since their report is
skipped, so a run killed midway resumes where it stopped. At the end, the gradebook and the
class page are written from every report.

Local runs use a process pool (one worker template per grader process); `--executor dask`
sends the same tasks to a Dask cluster.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from grader.archive import extract_submission
from grader.atomic import write_atomic
from grader.class_report import write_class_report
from grader.course import KIT_ROOT, Course, load_course
from grader.reports import summary_line, write_reports
from grader.submission import load_submission

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
    for f in sorted(files):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(base)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")


def kit_hash() -> str:
    """Everything that decides a score besides the submission: grader, tests, course."""
    h = hashlib.sha256()
    for sub in ("grader", "torchdrill", "tests/public", "tests/hidden"):
        _hash_files(h, (KIT_ROOT / sub).rglob("*.py"), KIT_ROOT)
    _hash_files(h, iter([KIT_ROOT / "course.toml", KIT_ROOT / "pyproject.toml"]), KIT_ROOT)
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


# -- in a grader process -----------------------------------------------------------------------

_template = None


def _template_once():
    """One worker template per grader process (pool worker or Dask worker). A local pool
    starts it as each process starts, before the process imports torch for its first task."""
    global _template
    if _template is None:
        from grader.workers import Template

        _template = Template()
        import torch

        torch.set_num_threads(1)
    return _template


def _submission(task: Task, scratch: Path):
    entry = Path(task.entry)
    problem = None
    if entry.is_file():
        problem = extract_submission(entry, scratch)
        entry = scratch
    sub = load_submission(entry)
    sub.name = task.student
    if problem is None and not sub.sources and not sub.problems:
        names = sorted(p.name for p in entry.rglob("*") if p.is_file())[:8]
        problem = ("the submission has no .py or .ipynb files" +
                   (f" (found: {', '.join(names)})" if names else ": it is empty"))
    if problem:
        for topic in load_course().names:
            sub.problems.setdefault(topic, problem)
    return sub


def grade_task(task: Task) -> dict:
    """Grade one student and write their reports; returns the report."""
    from grader.cli import grade

    course = load_course()
    if task.call_timeout:
        course = course.with_call_timeout(task.call_timeout)
    with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
        sub = _submission(task, Path(scratch))
        report = grade(sub, list(task.topics) if task.topics else None, task.suite, None,
                       template=_template_once(), course=course, keyword=task.keyword)
    out = Path(task.out)
    write_reports(report, out)
    write_atomic(out / FINGERPRINT, task.fingerprint + "\n")
    return report


# -- the coordinator ---------------------------------------------------------------------------


def plan(root: Path, out: Path, topics: list[str] | None, suite: str | None,
         call_timeout: float | None, keyword: str | None = None) -> list[Task]:
    kit = kit_hash()
    options = (tuple(topics or ()), suite, call_timeout, keyword)
    return [Task(student, str(entry), str(out / student), tuple(topics) if topics else None,
                 suite, call_timeout, fingerprint(entry, kit, options), keyword)
            for student, entry in entries(root)]


def grade_locally(tasks: list[Task], jobs: int) -> Iterator[tuple[Task, dict | None, str | None]]:
    """Run tasks on a process pool; a pool broken by a dying grader process is rebuilt and its
    unfinished tasks retried once."""
    attempts: dict[Task, int] = {}
    todo = list(tasks)
    while todo:
        retry = []
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=_template_once) as pool:
            futures = {pool.submit(grade_task, t): t for t in todo}
            for fut in as_completed(futures):
                task, exc = futures[fut], fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    attempts[task] = attempts.get(task, 0) + 1
                    if attempts[task] < 2:
                        retry.append(task)
                        continue
                    yield task, None, "its grader process died twice"
                elif exc is not None:
                    yield task, None, f"{type(exc).__name__}: {exc}"
                else:
                    yield task, fut.result(), None
        todo = retry


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
              keyword: str | None = None) -> int:
    """Grade every student of `root` into `out`; return the number that could not be graded."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    out.mkdir(parents=True, exist_ok=True)
    tasks = plan(root, out, topics, suite, call_timeout, keyword)
    todo = [t for t in tasks if not is_current(t)]
    print(f"{len(tasks)} students; {len(tasks) - len(todo)} unchanged since their report, "
          f"{len(todo)} to grade", file=sys.stderr)
    failures = []
    runner = _dask(todo, scheduler) if executor == "dask" else grade_locally(
        todo, jobs or os.cpu_count() or 1)
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
                progress.console.print(f"[red]{task.student}: could not be graded: {error}")
            else:
                progress.console.print(f"{task.student}: {summary_line(report)}",
                                       markup=False, highlight=False)
    reports = [_load(Path(t.out) / "report.json") for t in tasks]
    write_class_report([r for r in reports if r], out, f"{course.title}: {root.name}")
    print(f"gradebook: {out / 'gradebook.csv'}; class page: {out / 'index.html'}",
          file=sys.stderr)
    return len(failures)


def _load(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

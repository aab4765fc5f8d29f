"""Grading a class: every entry of a folder is one student (a folder of `.py` files or
notebooks, or a `.zip` of one), graded in parallel, each report written atomically as soon as
it is done. A student whose submission, the tests and the kit are unchanged since their report
is skipped, so a run killed midway resumes where it stopped. At the end, the gradebook and the
class page are written from every report.

Each student's reports go to `OUT/students/<student>/`, so no student's name can collide with
the class's own files in `OUT/`. A student is known by an id made from their entry's name
(`entries`): the name itself where it is plain text, its bytes that are not UTF-8 and its
invisible characters escaped otherwise (`grader.text.safe_name`), and a folder and a zip of the
same name (`alice/`, `alice.zip`) each under its own, the zip by its full name; the class page
and the gradebook say so. Ids depend on the class folder's names only, so a rerun finds each
student's reports where it left them.

A student's fingerprint (`grader.instructor.fingerprint`) is that of what grading reads of the
submission (`grader.submission.load_submission`: the course's topic files, each within a size;
the names of the other code files), never a walk of the folder: a tree nested thousands deep or
a sparse file of a terabyte costs nothing, and a change to a file the grader never reads
regrades no one. It holds what decides the grade besides: the kit's grading code and the
course, and each topic's tests only where the student handed that topic in. So after the
tests, course.toml or the kit change, a rerun regrades exactly the students whose grade could
change; their earlier reports are kept and the run ends with what moved
(`grader.instructor.history`: `changes.csv` and the class page).

Late penalties (`grader.instructor.deadlines`: course.toml's [late] and [deadlines], the
roster's extensions, nbgrader's timestamps or the instructor's CSV of times) are applied when a
run ends, to every student's report, without grading anyone again; a report is rendered again
only when its penalties or the renderers changed (`fingerprint.render_stamp`).

Local runs use grader processes the batch owns (`grader.instructor.pool`: one worker template
each, none outliving the batch, each student within a wall-clock budget and a memory cap);
`--executor dask` sends the same tasks to a Dask cluster. What a grader process does for one
student is `grader.instructor.tasks`. Whatever one student's entry does to the grader, the
others are graded and the class's files are written: that student gets a report saying what
went wrong, or is listed on the class page and in the gradebook as not graded, with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.course import COURSE_FILE, KIT_ROOT, Course, load_course
from grader.grade import grading_budget
from grader.instructor.class_report import STUDENTS, ClassNotes, write_class_report
from grader.instructor.deadlines import (
    Deadlines,
    load_deadlines,
    nbgrader_times,
    penalties,
    read_times,
)
from grader.instructor.fingerprint import fingerprint, kit_hash, render_stamp, topic_parts
from grader.instructor.history import note_regrading, settle
from grader.instructor.pool import memory_cap_mb, run_tasks
from grader.instructor.roster import Student, read_roster
from grader.instructor.similarity import ClassSimilarity, compare_class
from grader.instructor.sync import expected_stubs
from grader.instructor.tasks import (
    FINGERPRINT,
    RENDERED,
    Task,
    grade_task,
    read_submission,
    write_rendered,
    write_student,
)
from grader.report.formats import summary_line
from grader.report.schema import Report
from grader.text import clean_text, safe_name

Graded = tuple[Task, Report | None, str | None]  # a student's report, or why there is none
MAX_ID_BYTES = 200  # a student's id is a folder name: at most 255 bytes on most file systems


@dataclass(frozen=True)
class Entry:
    """One student of a class folder: the id their reports go by (their folder under
    `OUT/students/` and their row of the gradebook), their folder or zip, and what the class
    page says of the id when it is not simply the entry's name."""

    student: str
    path: Path
    note: str = ""


def entries(root: Path) -> list[Entry]:
    """Each sub-folder and `.zip` of `root` (not those whose names begin with a dot), by name,
    with its student id: the folder's name, or the zip's without `.zip`, made safe to show
    (`safe_name`); where a folder and a zip would share an id, the zip keeps its full name."""
    found: dict[str, tuple[str, Path, str]] = {}  # name -> (id it asks for, path, as shown)
    with os.scandir(root) as listing:
        for item in listing:
            path = Path(item.path)
            if item.name.startswith("."):
                continue
            if path.is_dir():
                found[item.name] = (item.name, path, safe_name(item.name) + "/")
            elif path.suffix.lower() == ".zip":
                found[item.name] = (path.stem, path, safe_name(item.name))
    ids = {name: wanted for name, (wanted, _, _) in found.items()}
    while True:
        taken = Counter(ids.values())
        clashes = [name for name, i in ids.items() if i != name and taken[i] > 1]
        if not clashes:
            break
        for name in clashes:  # an entry's full name is unique in its folder
            ids[name] = name
    result = []
    for name in sorted(found):
        wanted, path, shown = found[name]
        student = student_id(ids[name])
        notes = []
        if others := sorted(found[n][2] for n in found
                            if n != name and wanted in (found[n][0], ids[n])):
            notes.append(f"{shown} is graded on its own, as {student}: the class folder also "
                         f"holds {', '.join(others)}")
        if safe_name(ids[name]) != ids[name]:
            notes.append("its name is shown escaped: \\xNN is a byte that is not UTF-8, "
                         "\\uNNNN a character that is invisible or reorders text")
        if student != safe_name(ids[name]):
            notes.append(f"its name is too long for a folder's: its reports are in {student}")
        result.append(Entry(student, path, "; ".join(notes)))
    return result


def student_id(name: str) -> str:
    """The id of an entry that asks for `name`: `safe_name(name)`, shortened with a hash of
    the name where it would be too long for a folder's name."""
    shown = safe_name(name)
    if len(os.fsencode(shown)) <= MAX_ID_BYTES:
        return shown
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return f"{shown[:MAX_ID_BYTES // 4]}~{digest}"


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


@dataclass
class Plan:
    """A class to grade: a task per student, and what the class page and the gradebook say of
    a student besides their report (`notes`: their id, or why they were not graded)."""

    tasks: list[Task]
    notes: dict[str, str] = field(default_factory=dict)


def plan(root: Path, out: Path, topics: list[str] | None, suite: str | None,
         call_timeout: float | None, keyword: str | None = None,
         student_timeout: float | None = None) -> Plan:
    """One task per student of `root`, reporting to `OUT/students/<student>/`, fingerprinted
    by what decides their grade (`grader.instructor.fingerprint`)."""
    course = load_course()
    kit, names = kit_hash(), course.names
    parts = {t: part for t, part in topic_parts(course).items() if t in (topics or names)}
    options = (tuple(topics or ()), suite, call_timeout, keyword, student_timeout)
    found = entries(root)
    tasks = []
    with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
        for n, e in enumerate(found):
            task = Task(e.student, str(e.path), str(student_dir(out, e.student)),
                        tuple(topics) if topics else None, suite, call_timeout, "", keyword)
            unpacked = Path(scratch, str(n))  # where a zip is unpacked
            submission = read_submission(task, unpacked, names)
            tasks.append(replace(task, fingerprint=fingerprint(submission, kit, options, parts)))
    return Plan(tasks, {e.student: e.note for e in found if e.note})


def grade_locally(tasks: list[Task], jobs: int, budget_s: float | None = None
                  ) -> Iterator[Graded]:
    """Grade tasks on `jobs` grader processes of our own (`grader.instructor.pool`), each
    student within `budget_s` (default: course.toml's) and the pool's memory cap; yield (task,
    report, error) as each finishes. A student stopped past the budget or the cap gets a
    report that says so."""
    course = load_course()
    budget_s = budget_s or grading_budget(course)
    from grader.stopped import stopped_report

    for outcome in run_tasks(tasks, jobs, budget_s):
        task = outcome.task
        if outcome.stopped or outcome.out_of_memory:
            why = out_of_memory_message(memory_cap_mb(course)) if outcome.out_of_memory \
                else None
            report = stopped_report(course, list(task.topics or course.names), task.student,
                                    budget_s, outcome.planned, outcome.not_counted, why,
                                    "error" if outcome.out_of_memory else "timeout")
            write_student(task, report)
            yield task, report, None
        else:
            yield task, outcome.report, outcome.error


def out_of_memory_message(megabytes: int) -> str:
    return (f"grading this submission needed more than {megabytes:,} MB of the grader's own "
            "memory and was stopped, so none of its tests earned points: something in it sent "
            "the grader far more data than an exercise needs (a huge result, or a flood of "
            "values). Ask your instructor.")


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
              keyword: str | None = None, student_timeout: float | None = None,
              roster: Path | None = None, times: Path | None = None) -> int:
    """Grade every student of `root` into `out`; return the number that could not be graded.
    Locally each student has `student_timeout` seconds in all (default: course.toml's
    `grading_timeout_s`). `roster`: the class roster (extensions); `times`: the instructor's
    CSV of submission times. A deadline, roster or time that cannot be used raises ValueError
    before anyone is graded."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    deadlines = load_deadlines(course.names)
    students = read_roster(roster) if roster else {}
    given_times = read_times(times, course.names) if times else {}
    out.mkdir(parents=True, exist_ok=True)
    planned = plan(root, out, topics, suite, call_timeout, keyword, student_timeout)
    tasks, notes = planned.tasks, planned.notes
    times_of = submission_times(tasks, deadlines, given_times)
    todo = [t for t in tasks if not is_current(t)]
    note_regrading(out, [t.student for t in todo if (Path(t.out) / "report.json").is_file()])
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
                notes[task.student] = "; ".join(filter(None, [
                    f"not graded in this run: {error}", notes.get(task.student)]))
                _say(progress.console, f"{task.student}: could not be graded: {error}", "red")
            else:
                _say(progress.console, f"{task.student}: {summary_line(report)}")
    reports = {t.student: r for t in tasks if (r := _load(Path(t.out) / "report.json"))}
    late = finish(tasks, reports, deadlines, times_of, students)
    changes = settle(out, out / STUDENTS, reports, set(failures))
    write_class_report(reports, out, f"{course.title}: {safe_name(root.name)}",
                       similarity(tasks, course, out),
                       extra=ClassNotes(notes, late, bool(deadlines.due), changes))
    print(f"gradebook: {out / 'gradebook.csv'}; class page: {out / 'index.html'}; "
          f"students' reports: {out / STUDENTS}/"
          + (f"; who moved: {out / 'changes.csv'}" if changes else ""), file=sys.stderr)
    return len(failures)


def submission_times(tasks: list[Task], deadlines: Deadlines,
                     given: dict[str, dict[str, dt.datetime]]) -> dict[str, dict[str, dt.datetime]]:
    """Each student's submission time per topic with a deadline: the instructor's CSV, else
    the timestamp.txt nbgrader wrote beside the student's notebooks."""
    if not deadlines.due:
        return {}
    return {t.student: {**nbgrader_times(Path(t.entry), list(deadlines.due)),
                        **given.get(t.student, {})} for t in tasks}


def finish(tasks: list[Task], reports: dict[str, Report], deadlines: Deadlines,
           times: dict[str, dict[str, dt.datetime]], roster: dict[str, Student]
           ) -> dict[str, list[str]]:
    """Apply the late penalties to each report (in place) and render again the reports whose
    penalties or renderers changed; returns what the gradebook notes of lateness."""
    notes: dict[str, list[str]] = {}
    for task in tasks:
        report = reports.get(task.student)
        if report is None:
            continue
        found, unknown = penalties(report, times.get(task.student, {}), deadlines,
                                   roster.get(task.student))
        if unknown:
            notes[task.student] = unknown
        report["late"] = found
        stamp = Path(task.out) / RENDERED
        if not stamp.is_file() or stamp.read_text().strip() != render_stamp(report):
            write_rendered(report, Path(task.out))
    return notes


def similarity(tasks: list[Task], course: Course, out: Path) -> ClassSimilarity | None:
    """Every pair of students compared per topic graded (grader.instructor.similarity), the
    pairs at course.toml's [similarity] threshold written beside the class page; None, with a
    line on the console, where the comparison failed (the class page goes without it)."""
    stubs = expected_stubs(KIT_ROOT / "solutions")
    topics = {t for task in tasks for t in (task.topics or course.names)}
    stubs = {t: stubs[f"{t}.py"] for t in course.names if t in topics and f"{t}.py" in stubs}
    code: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="torchdrill-") as scratch:
        for n, task in enumerate(tasks):
            unpacked = Path(scratch, str(n))  # where a zip is unpacked
            sub = read_submission(task, unpacked, course.names)
            code[task.student] = {t: text for t in stubs if (text := sub.source(t))}
    try:
        return compare_class(code, stubs, course.similarity.threshold,
                             course.similarity.min_shared, out)
    except Exception as e:  # a student's code the comparison could not take: grades stand
        print(clean_text(f"similar code was not compared: {type(e).__name__}: {e}"),
              file=sys.stderr)
        return None


def _say(console, text: str, style: str | None = None) -> None:
    """One line on the console, shown as written: no markup (a student named `[red]` stays
    that), no control characters, no line breaks (nothing that could fake a line)."""
    console.print(" ".join(clean_text(text).split()), style=style, markup=False,
                  highlight=False)


def _load(path: Path) -> Report | None:
    try:
        report: Report = json.loads(path.read_text())
        return report
    except (OSError, ValueError):
        return None

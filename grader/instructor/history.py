"""A student's earlier reports, kept when they are regraded, and what a regrade moved.

Before a regrade's report replaces a student's, their current files (report.json and its other
formats) move to `OUT/students/<student>/history/<graded_at>/`, as they were: every earlier
report stays readable, each page self-contained. The batch notes whom it regrades
(`OUT/.regrading.json`, kept until a run completes, so a killed run's regrades are not
forgotten); when a run completes, each of them is compared with their latest earlier report
(`changes`): who moved, by how much, and which tests did it, for `changes.csv` and the class
page, which keep showing the last regrade's changes until the next regrade.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TypedDict

from grader.atomic import fsync_dir, write_atomic, write_json_atomic
from grader.instructor.class_report import csv_cell
from grader.report.formats import final_score, points
from grader.report.schema import Report

HISTORY = "history"
REPORT_FILES = ("report.json", "report.md", "report.html", "results.json")
REGRADING = ".regrading.json"  # OUT/: students whose regrade has not been compared yet
CHANGES = ".changes.json"  # OUT/: the last regrade's changes, as the class page shows them


class Change(TypedDict):
    """One student's move in a regrade: final scores before and after (late penalties
    included), and each test whose points changed."""

    student: str
    before: float
    after: float
    change: float
    max_score: float
    tests: list[str]  # "softmax: test_x 0 -> 2"
    earlier: str  # the earlier report, relative to OUT/students/<student>/


def _stamp(report_json: Path) -> str:
    """A folder name for a report: its `graded_at` as digits (else the file's time)."""
    try:
        graded_at = str(json.loads(report_json.read_text()).get("graded_at", ""))
    except (OSError, ValueError, AttributeError):
        graded_at = ""
    digits = "".join(c for c in graded_at[:19] if c.isdigit())
    return digits or str(int(report_json.stat().st_mtime))


def keep_earlier(folder: Path) -> Path | None:
    """Move the student's current reports into `history/<when graded>/` (a new folder even
    when two share a second); None when there is no report to keep."""
    current = folder / "report.json"
    if not current.is_file():
        return None
    stamp = _stamp(current)
    target, n = folder / HISTORY / stamp, 1
    while target.exists():
        n += 1
        target = folder / HISTORY / f"{stamp}-{n}"
    target.mkdir(parents=True)
    for name in REPORT_FILES[::-1]:  # report.json first: a folder without it is no report
        if (folder / name).is_file():
            os.replace(folder / name, target / name)
    fsync_dir(target)
    fsync_dir(folder)
    return target


def earlier(folder: Path) -> Path | None:
    """The student's latest earlier report (its folder under `history/`), if any."""
    root = folder / HISTORY
    if not root.is_dir():
        return None
    kept = [p for p in root.iterdir() if (p / "report.json").is_file()]
    return max(kept, key=lambda p: (p.name.split("-")[0], int(p.name.split("-")[1])
                                    if "-" in p.name else 1), default=None)


def _tests(report: Report) -> dict[str, float]:
    return {f"{topic['name']}: {test['name']}": float(test["score"])
            for topic in report["topics"] for test in topic["tests"]}


def change(student: str, before: Report, after: Report, where: str) -> Change | None:
    """What moved between two reports of a student, or None when no score moved."""
    old, new = _tests(before), _tests(after)
    moved = [f"{name} {points(old[name]) if name in old else 'absent'} -> "
             f"{points(new[name]) if name in new else 'absent'}"
             for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]
    was, now = final_score(before), final_score(after)
    topics_moved = {t["name"]: t["score"] for t in before["topics"]} != {
        t["name"]: t["score"] for t in after["topics"]}
    if was == now and not topics_moved:
        return None
    return {"student": student, "before": was, "after": now, "change": round(now - was, 4),
            "max_score": float(after["max_score"]), "tests": moved, "earlier": where}


def note_regrading(out: Path, students: list[str]) -> None:
    """Add `students` to those whose regrade waits to be compared."""
    waiting = set(regrading(out)) | set(students)
    write_json_atomic(out / REGRADING, sorted(waiting))


def regrading(out: Path) -> list[str]:
    try:
        found = json.loads((out / REGRADING).read_text())
    except (OSError, ValueError):
        return []
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []


def settle(out: Path, students_dir: Path, reports: dict[str, Report],
           unfinished: set[str]) -> list[Change]:
    """At the end of a run: compare each student whose regrade waited (but those it could not
    grade, who wait on) with their latest earlier report, write `changes.csv` (when there was
    a regrade) and return the last regrade's changes for the class page."""
    waiting = [s for s in regrading(out) if s not in unfinished]
    if not waiting:
        try:
            kept = json.loads((out / CHANGES).read_text())
        except (OSError, ValueError):
            return []
        return kept if isinstance(kept, list) else []
    changes = []
    for student in sorted(waiting):
        folder = students_dir / student
        before = earlier(folder)
        if student not in reports or before is None:
            continue
        try:
            old: Report = json.loads((before / "report.json").read_text())
        except (OSError, ValueError):
            continue
        moved = change(student, old, reports[student], str(before.relative_to(folder)))
        if moved:
            changes.append(moved)
    write_atomic(out / "changes.csv", changes_csv(changes))
    write_json_atomic(out / CHANGES, changes)
    if unfinished & set(regrading(out)):
        write_json_atomic(out / REGRADING, sorted(unfinished & set(regrading(out))))
    else:
        (out / REGRADING).unlink(missing_ok=True)
    return changes


def changes_csv(changes: list[Change]) -> str:
    """changes.csv: a row per student who moved (before and after are final scores)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "before", "after", "change", "max_score", "tests",
                     "earlier_report"])
    for c in changes:
        writer.writerow([csv_cell(c["student"]), c["before"], c["after"], c["change"],
                         c["max_score"], csv_cell("; ".join(c["tests"])),
                         csv_cell(f"students/{c['student']}/{c['earlier']}/report.html")])
    return buf.getvalue()

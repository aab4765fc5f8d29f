"""The gradebook in an LMS's import format, one column per topic, through the roster
(`grader.instructor.roster`) that maps each submission's id to the student's LMS identity.

- Canvas (its gradebook import, as canvas-lms's `GradebookImporter` reads one): the header
  `Student, ID, SIS User ID, SIS Login ID, Section`, then a column per assignment (a new title
  creates the assignment); a second row whose first cell is `Points Possible` gives each
  assignment's points; then a row per student, matched by ID, else SIS User ID, else SIS
  Login ID, else name.
- Moodle (its CSV grade import): a header row, a column that identifies the user (Moodle maps
  it to the user's email address, ID number or username, chosen when importing) and a column
  per grade item, each mapped to an item or a new one; a row whose user is not found stops
  the whole import, so only students the roster identifies are written.

The score exported is the one after any late penalty (the gradebook's `<topic>_penalised`),
else the topic's score. Nobody is dropped: gradebook rows with no roster entry (or no identity
for the LMS) and roster entries with no submission go to `<out>-unmatched.csv`, and the
command prints how many.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.atomic import write_atomic
from grader.course import Course
from grader.instructor.class_report import csv_cell, csv_value
from grader.instructor.roster import Student

Lms = Literal["canvas", "moodle"]
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDENTITIES = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section")
MOODLE_IDENTIFIERS = {"email": "Email address", "idnumber": "ID number",
                      "username": "Username"}
PENALISED = "_penalised"  # the gradebook's column of a topic's score after the late penalty


@dataclass
class Export:
    """An import file's text and who is not in it, with why."""

    text: str
    unmatched: list[tuple[str, str]]  # (student, why)


def read_gradebook(path: Path) -> list[dict[str, str]]:
    """gradebook.csv's rows, cells as written (a text cell's quote against formulas undone)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: csv_value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def scores(row: dict[str, str], topics: list[str]) -> dict[str, str]:
    """A gradebook row's score per topic, after the late penalty where the gradebook has one
    (blank for a student not graded)."""
    return {t: row.get(t + PENALISED) or row.get(t) or "" for t in topics}


def export(rows: list[dict[str, str]], roster: dict[str, Student], course: Course, lms: Lms,
           moodle_id: str | None = None) -> Export:
    """The import file for `lms` of the gradebook's `rows` (topics in course order, those the
    gradebook has), and who is not in it."""
    topics = [t for t in course.names if rows and t in rows[0]]
    titles = [course.topic(t).title for t in topics]
    graded = {row["student"] for row in rows}
    unmatched = [(row["student"], "not in the roster") for row in rows
                 if row["student"] not in roster]
    unmatched += [(s, "in the roster, no submission graded") for s in sorted(roster)
                  if s not in graded]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if lms == "canvas":
        writer.writerow([*CANVAS_STUDENT_COLUMNS, *map(csv_cell, titles)])
        writer.writerow(["Points Possible", "", "", "", "",
                         *(f"{course.topic(t).points:g}" for t in topics)])
    else:
        column = moodle_id or next((k for k in MOODLE_IDENTIFIERS
                                    if any(s.identities.get(k) for s in roster.values())), None)
        if column not in MOODLE_IDENTIFIERS:
            raise ValueError("a Moodle export needs a roster column that identifies each "
                             f"student: one of {', '.join(MOODLE_IDENTIFIERS)}")
        writer.writerow([MOODLE_IDENTIFIERS[column], *map(csv_cell, titles)])
    for row in rows:
        student = roster.get(row["student"])
        if student is None:
            continue
        values = list(scores(row, topics).values())
        if lms == "canvas":
            identity = [student.identities.get(k, "") for k in CANVAS_IDENTITIES]
            if not any(identity[:4]):
                unmatched.append((row["student"], "no name or Canvas ID in the roster"))
                continue
            writer.writerow([*map(csv_cell, identity), *values])
        else:
            identifier = student.identities.get(column or "", "")
            if not identifier:
                unmatched.append((row["student"], f"no {column} in the roster"))
                continue
            writer.writerow([csv_cell(identifier), *values])
    return Export(buf.getvalue(), unmatched)


def unmatched_csv(unmatched: list[tuple[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "why"])
    writer.writerows([csv_cell(s), csv_cell(why)] for s, why in unmatched)
    return buf.getvalue()


def write_export(result: Export, out: Path) -> Path | None:
    """Write the import file to `out` and, when anyone is left out, `<out>-unmatched.csv`
    (returned)."""
    write_atomic(out, result.text)
    if not result.unmatched:
        return None
    return write_atomic(out.with_name(f"{out.stem}-unmatched.csv"),
                        unmatched_csv(result.unmatched))

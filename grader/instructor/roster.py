"""The class roster: a CSV the instructor keeps, one row per student, that maps the id a
submission goes by in `grader batch` (its folder's or zip's name, the gradebook's `student`)
to the student's identities in the LMS, and gives a student more time.

Columns (a header row, UTF-8; only `student` is required, the others as the LMS needs):
- `student`: the submission's id;
- `name`, `canvas_id`, `sis_user_id`, `sis_login_id`, `section`: Canvas's gradebook columns
  (Student, ID, SIS User ID, SIS Login ID, Section);
- `email`, `idnumber`, `username`: the identifiers Moodle's grade import maps a row by;
- `extension_hours`: more time for every topic; `extension_hours:<topic>` for one topic
  (it wins over the other).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

IDENTITIES = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section", "email",
              "idnumber", "username")
EXTENSION = "extension_hours"


@dataclass(frozen=True)
class Student:
    """One row of the roster."""

    student: str
    identities: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, float] = field(default_factory=dict)  # topic ("" for all) -> hours

    def extension_hours(self, topic: str) -> float:
        return self.extensions.get(topic, self.extensions.get("", 0.0))


class RosterError(ValueError):
    """The roster cannot be read as it is; the message names the file, the line and the fix."""


def read_roster(path: Path) -> dict[str, Student]:
    """The roster's students by submission id."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
        header = rows[0].keys() if rows else set()
    if rows and "student" not in header:
        raise RosterError(f"{path}: no `student` column (the submission's id, as the gradebook "
                          f"names it); the columns are {', '.join(map(str, header))}")
    unknown = [c for c in header if c != "student" and c not in IDENTITIES and c != EXTENSION
               and not str(c).startswith(EXTENSION + ":")]
    if unknown:
        raise RosterError(f"{path}: unknown column(s) {', '.join(map(str, unknown))}; a roster "
                          f"has student, {', '.join(IDENTITIES)}, {EXTENSION} and "
                          f"{EXTENSION}:<topic>")
    students: dict[str, Student] = {}
    for line, row in enumerate(rows, start=2):
        sid = (row.get("student") or "").strip()
        if not sid:
            raise RosterError(f"{path}, line {line}: the `student` cell is empty")
        if sid in students:
            raise RosterError(f"{path}, line {line}: student {sid!r} is listed twice")
        extensions = {}
        for column, value in row.items():
            if column and column.startswith(EXTENSION) and (value or "").strip():
                extensions[column.partition(":")[2]] = _hours(value, path, line, column)
        students[sid] = Student(sid, {k: (row.get(k) or "").strip() for k in IDENTITIES
                                      if k in header}, extensions)
    return students


def _hours(value: str, path: Path, line: int, column: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours < 0:
        raise RosterError(f"{path}, line {line}: {column} is {value!r}: a number of hours, "
                          "0 or more (48 for two days)")
    return hours

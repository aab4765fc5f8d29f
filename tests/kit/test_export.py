"""`grader export --canvas` and `--moodle`: the gradebook through the roster into each LMS's
grade import CSV, checked against the columns each importer reads (canvas-lms's
GradebookImporter: Student, ID, SIS User ID, SIS Login ID, Section, then the assignments, and a
"Points Possible" row; Moodle's CSV grade import: a user identifier column, then one column per
grade item, every row a user it can find). Nobody is dropped: students missing from the roster
and roster entries with no submission are listed beside the export."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from grader.course import load_course
from grader.instructor.export import export
from grader.instructor.roster import RosterError, read_roster
from tests.kit.variants import KIT_ROOT

COURSE = load_course()
GRADEBOOK = """\
student,softmax,mlp,total,max_score,softmax_penalised,mlp_penalised,total_penalised,late,empty_or_broken,flags,timeouts,errors,max_similarity,note
alice,43.0,58.0,101.0,101.0,38.7,58.0,96.7,softmax: 5 h late,,,0,0,0.1,
bob,20.5,0.0,20.5,101.0,20.5,0.0,20.5,,mlp: nothing of it reached the grader,,0,0,0.0,
'=carol,10.0,10.0,20.0,101.0,10.0,10.0,20.0,,,,0,0,0.0,
dave,1.0,1.0,2.0,101.0,1.0,1.0,2.0,,,,0,0,0.0,
"""
ROSTER = """\
student,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber,extension_hours
alice,Alice A,101,S-1,alice1,Sec 1,alice@uni.edu,1001,
bob,Bob B,102,S-2,bob2,Sec 2,bob@uni.edu,1002,24
=carol,Carol C,103,,,Sec 1,,1003,
erin,Erin E,105,S-5,erin5,Sec 2,erin@uni.edu,1005,
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "gradebook.csv").write_text(GRADEBOOK)
    (tmp_path / "roster.csv").write_text(ROSTER)
    return tmp_path


def run_export(files, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "export", *args, "--gradebook",
                           str(files / "gradebook.csv"), "--roster", str(files / "roster.csv")],
                          cwd=KIT_ROOT, capture_output=True, text=True, timeout=120)


def rows_of(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_canvas_csv_has_canvas_columns_points_and_penalised_scores(files):
    run = run_export(files, "--canvas")
    assert run.returncode == 0, run.stderr
    rows = rows_of(files / "canvas.csv")
    header, points, *students = rows
    # canvas-lms: row[0] holds "Student", row[1] "ID", SIS User ID and SIS Login ID, then
    # "Section" closes the student columns; the rest are assignments
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert header[5:] == [COURSE.topic("softmax").title, COURSE.topic("mlp").title]
    assert points[0] == "Points Possible" and points[1:5] == ["", "", "", ""]
    assert [float(p) for p in points[5:]] == [COURSE.topic("softmax").points,
                                              COURSE.topic("mlp").points]
    by_id = {r[1]: r for r in students}
    assert by_id["101"][:5] == ["Alice A", "101", "S-1", "alice1", "Sec 1"]
    assert by_id["101"][5:] == ["38.7", "58.0"]  # after the late penalty
    assert by_id["102"][5:] == ["20.5", "0.0"]
    assert by_id["103"][0] == "Carol C"  # the id that looked like a formula, read back
    assert len(students) == 3 and all(len(r) == len(header) for r in rows)


def test_moodle_csv_identifies_every_row(files):
    run = run_export(files, "--moodle", "--moodle-id", "idnumber")
    assert run.returncode == 0, run.stderr
    header, *students = rows_of(files / "moodle.csv")
    assert header == ["ID number", COURSE.topic("softmax").title, COURSE.topic("mlp").title]
    assert {r[0]: r[1:] for r in students} == {"1001": ["38.7", "58.0"],
                                               "1002": ["20.5", "0.0"],
                                               "1003": ["10.0", "10.0"]}


def test_nobody_is_dropped(files):
    run = run_export(files, "--moodle")  # by email: carol has none
    assert run.returncode == 0, run.stderr
    header, *students = rows_of(files / "moodle.csv")
    assert header[0] == "Email address"
    assert sorted(r[0] for r in students) == ["alice@uni.edu", "bob@uni.edu"]
    left_out = {r[0]: r[1] for r in rows_of(files / "moodle-unmatched.csv")[1:]}
    assert left_out == {"dave": "not in the roster",
                        "erin": "in the roster, no submission graded",
                        "'=carol": "no email in the roster"}
    assert "3 not in it" in run.stderr


def roster_of(tmp_path, text: str):
    (tmp_path / "roster.csv").write_text(text)
    return read_roster(tmp_path / "roster.csv")


def test_formula_cells_stay_text(tmp_path):
    rows = [{"student": "x", "softmax": "1.0"}]
    roster = roster_of(tmp_path, "student,name,canvas_id\nx,=HYPERLINK(1),7\n")
    text = export(rows, roster, COURSE, "canvas").text
    assert list(csv.reader(io.StringIO(text)))[2][0] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("text, error", [
    ("name,email\nA,a@x\n", "no `student` column"),
    ("student,emial\na,a@x\n", "unknown column"),
    ("student\na\na\n", "listed twice"),
    ("student,extension_hours\na,two days\n", "number of hours"),
])
def test_a_roster_that_cannot_be_used_says_why(tmp_path, text, error):
    with pytest.raises(RosterError, match=error):
        roster_of(tmp_path, text)

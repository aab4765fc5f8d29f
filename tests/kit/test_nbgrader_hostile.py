"""nbgrader autograde, as the released course runs it (`make nbgrader ARGS="autograde
softmax"`), on a class of softmax notebooks written by students who have read the grader.

Under autograde no student cell runs in a kernel, or anywhere but the grader's sandbox, so
what a cell would do there never reaches a grade: replacing `nbcheck.check` or silencing the
cells' values (full marks for stubs), making the checks write to stderr (0 for a correct
notebook), printing the hidden tests and the reference into one's own feedback, rewriting a
classmate's submitted notebook. The cells of checks are the release's: one a student deleted
is put back and graded, a grade cell of the student's own earns nothing, and a notebook that
is not JSON is scored rather than skipped. Every student's `grades.csv` row is what `grader
batch` gives the same notebooks, and no cell ever ran in a kernel: cells that only a kernel
runs (one that calls `get_ipython()`, a `%%bash` cell) leave no file behind.

Scores are asserted as "nbgrader's == the grader's" (the grader's own rules may change what it
gives a hostile notebook), and as numbers only where the code is plainly a stub or the
reference.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.instructor.nbchecks import ReleasedCell, ReleasedNotebook, restore_checks
from grader.instructor.release import release
from grader.notebooks import group_of
from tests.kit.test_nbgrader import (
    COURSE_ID,
    after_check_of,
    exported,
    hidden_test_code,
    make_nbgrader,
    nbgrader,
    released_notebook,
    solution_lines,
    submission,
    submit,
)
from tests.kit.test_notebooks import nbgrader_meta, student_notebook
from tests.kit.variants import KIT_ROOT
from tests.kit.variants_softmax import MISTAKES

pytestmark = pytest.mark.heavy(130)  # rough seconds; see tests/kit/conftest.py

TOPIC = "softmax"
RELEASED_CHECKS = ["test_softmax", "test_logsumexp", "test_log_softmax",
                   "test_softmax_regression"]
NO_MAX = next(v for v in MISTAKES if v.name == "no_max_subtraction")
SPOOF_UP = ("from grader import nbcheck\n"
            "nbcheck.check = lambda *args, **kwargs: kwargs.get('points') or 2")
SILENCE = "get_ipython().ast_node_interactivity = 'none'"
SPOOF_DOWN = ("import sys\nfrom grader import nbcheck\n"
              "nbcheck.check = lambda *args, **kwargs: print('failed', file=sys.stderr)")
HIDDEN_FILE = KIT_ROOT / "tests" / "hidden" / f"test_{TOPIC}.py"
REFERENCE_FILE = KIT_ROOT / "solutions" / f"{TOPIC}.py"
READ = f"for path in [{str(HIDDEN_FILE)!r}, {str(REFERENCE_FILE)!r}]:\n    print(open(path).read())"
READ_BASH = f"%%bash\ncat {HIDDEN_FILE} {REFERENCE_FILE}"
VICTIM = "zoe"  # graded after the saboteur, as nbgrader orders students


def in_kernel_only(markers: Path, student: str) -> list[str]:
    """Two cells that only a Jupyter kernel runs (the grader's worker has no `get_ipython`
    and runs no cell magic), each leaving a file in `markers`."""
    return [f"get_ipython()\nopen({str(markers / student)!r} + '-python', 'w').close()",
            f"%%bash\ntouch {markers / student}-bash"]


def before_checks(nb: nbformat.NotebookNode, *cells: str) -> nbformat.NotebookNode:
    """The notebook with code cells of the student's own before its first cell of checks."""
    first = after_check_of(nb, TOPIC) - 1
    return student_notebook(nb, extra=[(first, text) for text in cells])


def sabotage(course: Path) -> str:
    """A cell that overwrites the victim's submitted notebook with the released stubs, by the
    path relative to a kernel's working folder (autograded/<student>/softmax/) and by the
    absolute one."""
    victim = course / "submitted" / VICTIM / TOPIC / f"{TOPIC}.ipynb"
    stubs = course / "release" / TOPIC / f"{TOPIC}.ipynb"
    return ("import pathlib\n"
            f"for victim in ['../../../submitted/{VICTIM}/{TOPIC}/{TOPIC}.ipynb', "
            f"{str(victim)!r}]:\n"
            f"    pathlib.Path(victim).write_text(pathlib.Path({str(stubs)!r}).read_text())")


def forged(course: Path) -> nbformat.NotebookNode:
    """The stubs with a grade cell of the student's own (100 points), one whose metadata
    claims a newer nbgrader (which made nbgrader abort the whole class's autograde), the
    solution cell of `softmax` made a grade cell (50 points), and a copy of a real cell of
    checks at the end."""
    nb = released_notebook(course, TOPIC)
    extra = nbformat.v4.new_code_cell("100", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "task": False, "points": 100,
        "grade_id": "extra_credit", "schema_version": 3}})
    future = nbformat.v4.new_code_cell("1", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": False, "points": 1,
        "grade_id": "from_the_future", "schema_version": 99}})
    copy = nbformat.from_dict(json.loads(json.dumps(
        next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "test_softmax"))))
    copy.source, copy.id = "24", "a-copy"
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == f"{TOPIC}_code":
            cell.metadata.nbgrader.update(grade=True, points=50)
    nb.cells[3:3] = [extra, future]
    nb.cells.append(copy)
    return nb


def without_check(course: Path, grade_id: str) -> nbformat.NotebookNode:
    """The reference with one cell of checks deleted."""
    nb = submission(course, TOPIC)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != grade_id]
    return nb


def class_of(course: Path, markers: Path) -> dict[str, nbformat.NotebookNode | bytes]:
    stubs = released_notebook(course, TOPIC)
    return {
        VICTIM: submission(course, TOPIC),
        "partial": submission(course, TOPIC, {TOPIC: NO_MAX.source.strip(),
                                              "logsumexp": "def logsumexp(X):\n    return ("}),
        "stub": stubs,
        "spoofer": before_checks(stubs, SPOOF_UP, *in_kernel_only(markers, "spoofer")),
        "silencer": before_checks(stubs, SILENCE, *in_kernel_only(markers, "silencer")),
        "sinker": before_checks(submission(course, TOPIC), SPOOF_DOWN),
        "reader": before_checks(stubs, READ, READ_BASH),
        "mallory": before_checks(stubs, sabotage(course), *in_kernel_only(markers, "mallory")),
        "ghost": without_check(course, "test_softmax"),
        "forger": forged(course),
        "garbled": b'{"cells": [ this is not JSON',
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """The released course, the class submitted, autograded with `make nbgrader` while
    `grader batch` grades the same folder, then exported and given feedback."""
    out = tmp_path_factory.mktemp("release") / "release"
    release(out)
    course = tmp_path_factory.mktemp("course") / "torchdrill"
    (out / "nbgrader").rename(course)
    nbgrader(course, "generate_assignment", TOPIC)
    markers = tmp_path_factory.mktemp("markers")
    submitted = {}
    for student, nb in class_of(course, markers).items():
        if isinstance(nb, bytes):
            path = course / "submitted" / student / TOPIC / f"{TOPIC}.ipynb"
            path.parent.mkdir(parents=True)
            path.write_bytes(nb)
        else:
            submit(course, student, TOPIC, nb)
        submitted[student] = (course / "submitted" / student / TOPIC / f"{TOPIC}.ipynb"
                              ).read_bytes()
    ours = tmp_path_factory.mktemp("ours")
    batch = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(course / "submitted"),
                              "--out", str(ours), "--topics", TOPIC, "--jobs", "1"],
                             cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    make = tmp_path_factory.mktemp("make")
    autograde = make_nbgrader(course, "autograde", TOPIC, tmp=make)
    _, err = batch.communicate()
    assert batch.returncode == 0, err[-3000:]
    export = make_nbgrader(course, "export", tmp=make)
    assert export.returncode == 0, (export.stdout + export.stderr)[-3000:]
    feedback = nbgrader(course, "generate_feedback", TOPIC, check=False)
    return {"course": course, "markers": markers, "submitted": submitted,
            "autograde": autograde, "feedback": feedback, "csv": exported(course),
            "ours": {p.parent.name: next(t for t in json.loads(p.read_text())["topics"]
                                         if t["name"] == TOPIC)
                     for p in ours.glob("students/*/report.json")}}


def autograded(graded, student: str) -> nbformat.NotebookNode:
    return nbformat.read(graded["course"] / "autograded" / student / TOPIC / f"{TOPIC}.ipynb",
                         as_version=4)


def feedback_html(graded, student: str) -> str:
    """The student's feedback page, its HTML entities decoded (so printed code would match)."""
    path = graded["course"] / "feedback" / student / TOPIC / f"{TOPIC}.html"
    return html.unescape(path.read_text())


def cell_scores(graded, student: str) -> dict[str, float]:
    """grade cell id -> nbgrader's score for the student's notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", COURSE_ID) as gb:
        sub = gb.find_submission_notebook(TOPIC, TOPIC, student)
        return {g.name: g.score for g in sub.grades}


# --------------------------------------------------------------------------- no kernel


def test_autograde_runs_no_student_cell_in_a_kernel(graded):
    """The command succeeds on every notebook, hostile ones included; no kernel starts (its
    start-up line is not in the log) and no cell that only a kernel runs left its file."""
    run = graded["autograde"]
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "IPKernelApp" not in log
    assert list(graded["markers"].iterdir()) == []
    assert {p.name for p in (graded["course"] / "autograded").iterdir()} == set(
        graded["submitted"])


def test_no_checksum_warnings(graded):
    """nbgrader warned "Attribute 'checksum' for cell test_... has changed" for every cell of
    checks of every notebook (the gradebook records them with their hidden part); restored as
    recorded before nbgrader compares them, none changes."""
    log = graded["autograde"].stdout + graded["autograde"].stderr
    assert "has changed" not in log, log[-3000:]


# --------------------------------------------------------------------------- scores


def test_grades_csv_is_the_graders_student_by_student(graded):
    assert set(graded["csv"]) == {(s, TOPIC) for s in graded["submitted"]}
    for student in graded["submitted"]:
        ours = graded["ours"][student]
        assert graded["csv"][(student, TOPIC)] == (ours["score"], ours["max_score"]), student
    most = graded["ours"][VICTIM]["max_score"]
    assert graded["csv"][(VICTIM, TOPIC)] == (most, most)
    assert graded["csv"][("sinker", TOPIC)] == (most, most)  # the reference, its checks spoiled
    assert 0 < graded["csv"][("partial", TOPIC)][0] < most
    for stubs in ("stub", "spoofer", "silencer", "reader", "mallory", "forger", "garbled"):
        assert graded["csv"][(stubs, TOPIC)] == (0, most), stubs


def test_every_cell_of_checks_scores_what_the_grader_gives_its_function(graded):
    functions = nbformat.read(graded["course"] / "source" / TOPIC / f"{TOPIC}.ipynb",
                              as_version=4).metadata["torchdrill"]["functions"]
    for student in graded["submitted"]:
        cells = cell_scores(graded, student)
        assert sorted(cells) == sorted(RELEASED_CHECKS), student
        for cell, score in cells.items():
            ours = sum(t["score"] for t in graded["ours"][student]["tests"]
                       if group_of(t["name"], functions) == cell.removeprefix("test_"))
            assert score == pytest.approx(ours), (student, cell)


def test_a_classmates_notebook_is_unchanged_and_graded_right(graded):
    path = graded["course"] / "submitted" / VICTIM / TOPIC / f"{TOPIC}.ipynb"
    assert path.read_bytes() == graded["submitted"][VICTIM]
    most = graded["ours"][VICTIM]["max_score"]
    assert graded["csv"][(VICTIM, TOPIC)] == (most, most)


# --------------------------------------------------------------------------- the cells of checks


def test_the_cells_of_checks_are_the_releases_each_once_with_the_graders_output(graded):
    """In every autograded notebook: each cell of checks of the release once, in the
    release's order, its source as the gradebook recorded it, its output the grader's text
    and points; no other cell is a grade cell, and no other cell has an output."""
    source = nbformat.read(graded["course"] / "source" / TOPIC / f"{TOPIC}.ipynb",
                           as_version=4)
    recorded = {nbgrader_meta(c)["grade_id"]: c.source for c in source.cells
                if nbgrader_meta(c).get("grade")}
    for student in graded["submitted"]:
        nb = autograded(graded, student)
        checks = [c for c in nb.cells if nbgrader_meta(c).get("grade")]
        assert [nbgrader_meta(c)["grade_id"] for c in checks] == RELEASED_CHECKS, student
        for cell in checks:
            assert cell.source == recorded[nbgrader_meta(cell)["grade_id"]]
            assert [o.output_type for o in cell.outputs] == ["stream", "execute_result"]
        assert not [c for c in nb.cells if c.cell_type == "code" and c.outputs
                    and c not in checks], student


def test_a_deleted_cell_of_checks_is_put_back_and_graded(graded):
    nb = autograded(graded, "ghost")
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert ids.index("test_softmax") == ids.index(f"{TOPIC}_code") + 1
    most = graded["ours"]["ghost"]["max_score"]
    assert graded["csv"][("ghost", TOPIC)] == (most, most)  # the reference's code


def test_a_grade_cell_of_the_students_own_earns_nothing(graded):
    """A cell of the student's own marked as a grade cell, a solution cell marked as one, and
    a copy of a real cell of checks: nbgrader grades only the release's cells."""
    nb = autograded(graded, "forger")
    assert "extra_credit" not in json.dumps(nb.cells)
    assert "from_the_future" not in json.dumps(nb.cells)
    solution = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == f"{TOPIC}_code")
    assert not nbgrader_meta(solution)["grade"] and "points" not in nbgrader_meta(solution)
    assert sorted(cell_scores(graded, "forger")) == sorted(RELEASED_CHECKS)
    assert graded["csv"][("forger", TOPIC)][0] == 0


def test_a_notebook_that_is_not_json_is_scored_with_the_reason(graded):
    reason = graded["ours"]["garbled"]["tests"][0]["message"]
    assert "not a notebook Jupyter can open" in reason
    assert graded["csv"][("garbled", TOPIC)][0] == 0
    assert "not a notebook Jupyter can open" in feedback_html(graded, "garbled")


# --------------------------------------------------------------------------- feedback


def test_feedback_never_shows_the_hidden_tests_or_the_reference(graded):
    """Not the hidden tests' code in anyone's feedback, nor the reference's solution lines in
    the feedback of a student who did not write them, however their cells tried to print
    them."""
    run = graded["feedback"]
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    hidden = hidden_test_code(TOPIC)
    reference = solution_lines(TOPIC)
    for student in graded["submitted"]:
        page = feedback_html(graded, student)
        assert not [line for line in hidden if line in page], student
        assert "BEGIN HIDDEN TESTS" not in page and "hidden=True" not in page
    for student in ("reader", "stub", "spoofer", "silencer", "mallory", "forger", "garbled"):
        page = feedback_html(graded, student)
        assert not [line for line in reference if line in page], student


# --------------------------------------------------------------------------- earlier releases


def test_the_steps_earlier_releases_configured_grade_in_the_sandbox():
    """Course folders released before name the Execute step `AutogradeExecute` or
    `ExecuteUntilKernelDies` (which ran a kernel): each name is now the step that grades in
    the sandbox, so autograding an old folder runs no student cell either."""
    from grader import nbexecute as oldest
    from grader.instructor import nbexecute, nbsteps

    for name in (oldest.ExecuteUntilKernelDies, nbexecute.ExecuteUntilKernelDies,
                 nbsteps.AutogradeExecute):
        assert name is nbsteps.GradeInSandbox


# --------------------------------------------------------------------------- restoring, alone


def test_a_missing_cell_of_checks_goes_after_the_releases_cell_before_it():
    """Both cells of `logsumexp` deleted and the first cell of checks copied twice: the copy
    is dropped and `test_logsumexp` comes back after the nearest earlier cell of the release
    that is still there; a student's own cell keeps its place."""
    def cell(grade_id: str, points: float | None) -> ReleasedCell:
        return ReleasedCell(grade_id, "code", f"# {grade_id}", "sum", points is not None, points)

    release = ReleasedNotebook(TOPIC, ["softmax", "logsumexp"], {}, [
        cell("softmax_code", None), cell("test_softmax", 2), cell("logsumexp_code", None),
        cell("test_logsumexp", 1)])
    meta = {"nbgrader": {"grade_id": "test_softmax", "grade": True}}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def softmax(X): ...", metadata={
            "nbgrader": {"grade_id": "softmax_code", "solution": True}}),
        nbformat.v4.new_code_cell("24", metadata=meta),
        nbformat.v4.new_code_cell("mine = 1"),
        nbformat.v4.new_code_cell("24", metadata=meta)])
    changes = restore_checks(nb, release)
    assert [(c.source, nbgrader_meta(c).get("grade_id")) for c in nb.cells] == [
        ("def softmax(X): ...", "softmax_code"), ("# test_softmax", "test_softmax"),
        ("# test_logsumexp", "test_logsumexp"), ("mine = 1", None)]
    assert nbgrader_meta(nb.cells[1])["points"] == 2 and nbgrader_meta(nb.cells[1])["locked"]
    assert len(changes) == 2

"""The nbgrader course, with the real nbgrader, Jupyter kernel and all.

`generate_assignment` works for every topic and strips all solution code and hidden tests. A
class of students then submits tensor_ops notebooks: the reference (every point), the released
stubs (none), a contract mistake (some lost), a notebook that prints to stderr and warns (every
point), one with a cell that does not parse (only that function's points lost), and a
resubmission that kills the kernel after an autograde that gave every point (no point kept).
nbgrader's scores, cell by cell, are the grader's on the same notebooks, and the feedback shows
what failed without the hidden tests. (`make bench` autogrades a class of softmax notebooks
the same way and checks every score against the grader's.)
"""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.course import load_course
from grader.instructor.nbgrader_course import HIDDEN_BEGIN, run_nbgrader
from grader.instructor.release import release
from grader.instructor.sync import BEGIN, END, expected_stubs, strip_solutions
from grader.notebooks import group_of, public_names
from tests.kit.test_notebooks import nbgrader_meta, solution_cells, student_notebook
from tests.kit.variants import KIT_ROOT
from tests.kit.variants_tensor_ops import MISTAKES as TENSOR_OPS_MISTAKES

pytestmark = pytest.mark.heavy(150)  # rough seconds; see tests/kit/conftest.py

ROUND_TRIP = ["tensor_ops"]
COURSE_ID = load_course().name
NO_KEEPDIM = next(v for v in TENSOR_OPS_MISTAKES if v.name == "row_normalize_no_keepdim")
BROKEN_PICK = "def pick(Y_hat, y):\n    return Y_hat[range(len(y)), y\n"
NOISY = """\
import sys
import warnings

print("a progress note on stderr", file=sys.stderr)
warnings.warn("something is deprecated", DeprecationWarning)
warnings.warn("a UserWarning, as torch prints them", UserWarning)
"""
NOISY_ARANGE = '''\
def arange_grid(rows, cols):
    import sys
    import warnings
    print("arange_grid called", file=sys.stderr)
    warnings.warn("arange_grid warns on every call", UserWarning)
    return torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
'''
EXPLORING = ["%matplotlib inline", "X = arange_grid(2, 3)\nraise RuntimeError('just trying')"]


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the nbgrader command in the course folder."""
    run = run_nbgrader(course, *args)
    if check:
        assert run.returncode == 0, run.stderr[-4000:]
    return run


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The released nbgrader course, its assignments generated."""
    out = tmp_path_factory.mktemp("release") / "release"
    release(out)
    course = tmp_path_factory.mktemp("course") / "torchdrill"
    shutil.copytree(out / "nbgrader", course)
    nbgrader(course, "generate_assignment", "*")
    return course


def topics_of(course: Path) -> list[str]:
    return sorted(p.name for p in (course / "source").iterdir())


def released_notebook(course: Path, topic: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "release" / topic / f"{topic}.ipynb", as_version=4)


def function_of(cell) -> str:
    return nbgrader_meta(cell)["grade_id"].removesuffix("_code")


def submission(course: Path, topic: str, replace: dict[str, str] | None = None,
               extra: list[tuple[int, str]] = ()) -> nbformat.NotebookNode:
    """The released notebook with the reference's solutions written in (or `replace`)."""
    source = nbformat.read(course / "source" / topic / f"{topic}.ipynb", as_version=4)
    reference = {function_of(c): c.source for c in solution_cells(source)}
    return student_notebook(released_notebook(course, topic), {**reference, **(replace or {})},
                            extra)


def submit(course: Path, student: str, topic: str, nb: nbformat.NotebookNode) -> None:
    path = course / "submitted" / student / topic / f"{topic}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def after_check_of(nb, function: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if nbgrader_meta(c).get("grade_id") == f"test_{function}") + 1


def kernel_killer(course: Path) -> nbformat.NotebookNode:
    nb = submission(course, "tensor_ops")
    return student_notebook(nb, extra=[(after_check_of(nb, "arange_grid"),
                                        "import os\nos._exit(1)")])


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory) -> dict:
    """The class submitted, autograded (then a resubmission that kills the kernel), exported,
    and graded again by the grader itself (beside nbgrader's second run: CI has two cores)."""
    for topic in ROUND_TRIP:
        submit(course, "reference", topic, submission(course, topic))
        submit(course, "stubs", topic, released_notebook(course, topic))
    submit(course, "mistake", "tensor_ops",
           submission(course, "tensor_ops", {"row_normalize": NO_KEEPDIM.source.strip()}))
    rough = submission(course, "tensor_ops", {"arange_grid": NOISY_ARANGE, "pick": BROKEN_PICK})
    submit(course, "rough", "tensor_ops", student_notebook(rough, extra=[
        (3, NOISY), *((after_check_of(rough, "arange_grid"), text) for text in EXPLORING)]))
    submit(course, "crasher", "tensor_ops", submission(course, "tensor_ops"))
    nbgrader(course, "autograde", "*")
    first_scores = scores(course)
    submit(course, "crasher", "tensor_ops", kernel_killer(course))
    ours = tmp_path_factory.mktemp("ours")
    batch = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(course / "submitted"),
                              "--out", str(ours), "--topics", ",".join(ROUND_TRIP)],
                             cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    nbgrader(course, "autograde", "tensor_ops", "--student", "crasher", "--force")
    nbgrader(course, "export")
    _, err = batch.communicate()
    assert batch.returncode == 0, err[-3000:]
    return {"first": first_scores, "cells": scores(course), "csv": exported(course),
            "ours": {p.parent.name: json.loads(p.read_text())
                     for p in ours.glob("students/*/report.json")}}


def scores(course: Path) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """(student, topic) -> {grade cell id: (score, max score)} from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        for topic in ROUND_TRIP:
            for sub in gb.notebook_submissions(topic, topic):
                found[(sub.student.id, topic)] = {
                    g.name: (g.score, g.max_score) for g in sub.grades}
    return found


def exported(course: Path) -> dict[tuple[str, str], tuple[float, float]]:
    with open(course / "grades.csv", newline="") as f:
        return {(r["student_id"], r["assignment"]): (float(r["score"]), float(r["max_score"]))
                for r in csv.DictReader(f)}


def total(graded, student: str, topic: str) -> tuple[float, float]:
    return graded["csv"][(student, topic)]


# --------------------------------------------------------------------------- generate_assignment


def solution_lines(topic: str) -> set[str]:
    """Lines of the reference's solution regions that do not also occur in the stubs."""
    text = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
    stub = {line.strip() for line in expected_stubs()[f"{topic}.py"].splitlines()}
    found, inside = set(), False
    for line in text.splitlines():
        inside = (inside or line.strip() == BEGIN) and line.strip() != END
        if inside and line.strip() and line.strip() != BEGIN and line.strip() not in stub:
            found.add(line.strip())
    return found


def test_generate_assignment_strips_solutions_and_hidden_tests(course):
    assert topics_of(course) == sorted(
        p.stem for p in (KIT_ROOT / "solutions").glob("*.py"))
    for topic in topics_of(course):
        nb = released_notebook(course, topic)
        nbformat.validate(nb)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        lines = {line.strip() for text in code for line in text.splitlines()}
        assert not lines & solution_lines(topic), topic
        assert not any(HIDDEN_BEGIN in t or "hidden=True" in t or BEGIN in t for t in code)
        exercise = expected_stubs()[f"{topic}.py"]
        for cell in solution_cells(nb):  # nbgrader's stubs are the exercises'
            function = function_of(cell)
            stub = strip_solutions(
                next(c for c in solution_cells(nbformat.read(
                    course / "source" / topic / f"{topic}.ipynb", as_version=4))
                    if function_of(c) == function).source)
            assert cell.source.strip() == stub.strip()
            assert f"def {function}(" in exercise or f"class {function}" in exercise


# --------------------------------------------------------------------------- autograde and export


def test_reference_gets_every_point_and_stubs_none(graded):
    for topic in ROUND_TRIP:
        score, most = total(graded, "reference", topic)
        assert score == most > 0, topic
        assert total(graded, "stubs", topic) == (0, most)


def test_a_contract_mistake_loses_points(graded):
    score, most = total(graded, "mistake", "tensor_ops")
    assert 0 < score < most
    lost = {n for n, (score, most) in graded["cells"][("mistake", "tensor_ops")].items()
            if score < most}
    assert lost == {"test_row_normalize"}


def test_stderr_warnings_and_broken_cells_cost_only_the_broken_function(graded):
    """A notebook that prints to stderr and warns (at import and in a graded function), runs
    a magic, has a cell that raises and one that does not parse: only the function of the
    broken cell loses its points."""
    cells = graded["cells"][("rough", "tensor_ops")]
    assert cells["test_pick"][0] == 0
    assert all(score == most for name, (score, most) in cells.items() if name != "test_pick"), \
        cells


def test_a_dying_kernel_leaves_nothing_passed(graded):
    first = graded["first"][("crasher", "tensor_ops")]
    assert all(score == most for score, most in first.values())  # the first submission
    assert total(graded, "crasher", "tensor_ops")[0] == 0  # the resubmission killed its kernel


def test_the_grader_agrees_with_nbgrader_cell_by_cell(graded):
    compared = 0
    for (student, topic), cells in graded["cells"].items():
        report = graded["ours"][student]
        entry = next(t for t in report["topics"] if t["name"] == topic)
        assert entry["score"] == graded["csv"][(student, topic)][0], (student, topic)
        assert entry["max_score"] == graded["csv"][(student, topic)][1]
        functions = public_names((KIT_ROOT / "solutions" / f"{topic}.py").read_text())
        for cell, (score, _) in cells.items():
            function = cell.removeprefix("test_")
            ours = sum(t["score"] for t in entry["tests"] if group_of(
                t["name"], functions) == (None if function == "_topic" else function))
            assert score == pytest.approx(ours), (student, topic, cell)
            compared += 1
    assert compared >= 20


# --------------------------------------------------------------------------- feedback


def test_feedback_teaches_without_showing_hidden_tests(course, graded):
    nbgrader(course, "generate_feedback", "tensor_ops", "--student", "mistake")
    html = (course / "feedback" / "mistake" / "tensor_ops" / "tensor_ops.html").read_text()
    checks = html[html.index("Hidden checks of `row_normalize`"):]
    assert NO_KEEPDIM.expect in checks[:checks.index("Hidden checks of", 1)]  # what failed
    hidden = (KIT_ROOT / "tests" / "hidden" / "test_tensor_ops.py").read_text()
    public = (KIT_ROOT / "tests" / "public" / "test_tensor_ops.py").read_text()
    names = {n.name for n in ast.parse(hidden).body if isinstance(n, ast.FunctionDef)
             and n.name.startswith("test_")} - set(re.findall(r"def (test_\w+)", public))
    assert names and not [n for n in names if re.search(rf"\b{n}\b", html)]
    assert "BEGIN HIDDEN TESTS" not in html and "hidden=True" not in html

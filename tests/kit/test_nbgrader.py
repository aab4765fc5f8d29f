"""The nbgrader course, with the real nbgrader, run as an instructor runs it: through
`python -m grader nbgrader` (and once `make nbgrader`) with no environment activated (PATH
without the venv's bin/, where nbgrader would look for `alembic`).

`generate_assignment` works for every topic and strips all solution code and hidden tests. A
class of students then submits tensor_ops notebooks: the reference (every point), the released
stubs (none), a contract mistake (some lost), a notebook that prints to stderr and warns (every
point), one with a cell that does not parse (only that function's points lost) and a forged
grader report beside it, and a resubmission whose last cell ends the process (`os._exit`)
after an autograde that gave every point: no kernel runs it, and it scores what the grader
gives it (nothing: the worker that imports it dies). The reference and the stubs also submit
gpu_training, released with the default [gpu] tests = "where-cuda": on a machine without CUDA
the reference gets nbgrader's every point, and that maximum is the grader's. nbgrader's
scores, cell by cell, are the grader's on the same notebooks, and the feedback shows what
failed without the hidden cells and ends with the grader's report. (`make bench` autogrades a
class of softmax notebooks the same way and checks every score against the grader's; hostile
notebooks are tests/kit/test_nbgrader_hostile.py's.)
"""
from __future__ import annotations

import ast
import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from grader.course import load_course
from grader.instructor.nbchecks import REPORT_FILE
from grader.instructor.nbgrader_course import HIDDEN_BEGIN
from grader.instructor.release import collect_tests, release
from grader.instructor.sync import BEGIN, END, expected_stubs, strip_solutions
from grader.notebooks import group_of, public_names
from tests.kit.test_notebooks import nbgrader_meta, solution_cells, student_notebook
from tests.kit.variants import KIT_ROOT
from tests.kit.variants_tensor_ops import MISTAKES as TENSOR_OPS_MISTAKES

pytestmark = pytest.mark.heavy(170)  # rough seconds; see tests/kit/conftest.py

ROUND_TRIP = ["tensor_ops", "gpu_training"]
COURSE = load_course()
COURSE_ID = COURSE.name
NO_KEEPDIM = next(v for v in TENSOR_OPS_MISTAKES if v.name == "row_normalize_no_keepdim")
BROKEN_PICK = "def pick(Y_hat, y):\n    return Y_hat[range(len(y)), y\n"
NOISY = """\
import warnings

import torch

warnings.warn("something is deprecated", DeprecationWarning)
warnings.warn("a UserWarning on stderr, as torch prints them", UserWarning)
torch.tensor(torch.ones(2))  # torch's own UserWarning (copy-constructing from a tensor)
"""
NOISY_ARANGE = '''\
def arange_grid(rows, cols):
    import warnings
    warnings.warn("arange_grid warns on every call", UserWarning)
    return torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
'''
EXPLORING = ["%matplotlib inline", "X = arange_grid(2, 3)\nraise RuntimeError('just trying')"]


def bare_env() -> dict[str, str]:
    """The environment of an instructor who activated nothing: no venv's bin/ on PATH. A
    PYTHONPATH that names this kit stays (a checkout's tests run its own code, not a copy
    installed elsewhere); any other goes."""
    venv = Path(sys.executable).parent
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and Path(p).resolve() != venv.resolve() and ".venv" not in Path(p).parts]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    if Path(os.environ.get("PYTHONPATH") or "/nonexistent").resolve() == KIT_ROOT.resolve():
        env["PYTHONPATH"] = str(KIT_ROOT)
    return {**env, "PATH": os.pathsep.join(path or ["/usr/bin", "/bin"])}


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m grader nbgrader --course COURSE ARGS`, as the README shows it, run from
    outside the kit with no environment activated."""
    assert shutil.which("alembic", path=bare_env()["PATH"]) is None  # or the test proves little
    run = subprocess.run([sys.executable, "-m", "grader", "nbgrader", "--course", str(course),
                          *args], cwd=course.parent, env=bare_env(), capture_output=True,
                         text=True)
    if check:
        assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return run


def make_nbgrader(course: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    """`make nbgrader ARGS=... COURSE=...` in the kit, with no environment activated (the
    venv's Python stands in for the .venv the Makefile would create, its stamp made new)."""
    stamp = tmp / "installed"
    stamp.touch()
    return subprocess.run(["make", "-s", "nbgrader", f"PY={sys.executable}", f"STAMP={stamp}",
                           f"COURSE={course}", f"ARGS={' '.join(args)}"], cwd=KIT_ROOT,
                          env=bare_env(), capture_output=True, text=True)


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


def process_ender(course: Path) -> nbformat.NotebookNode:
    """The reference with a last cell that ends the process: in a kernel (as nbgrader ran it)
    every check before it had passed; in the grader's worker the module never imports."""
    nb = submission(course, "tensor_ops")
    return student_notebook(nb, extra=[(len(nb.cells), "import os\nos._exit(1)")])


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory) -> dict:
    """The class submitted, autograded (then a resubmission that ends the process), exported,
    and graded again by the grader itself (beside nbgrader's second run: CI has two cores)."""
    for topic in ROUND_TRIP:
        submit(course, "reference", topic, submission(course, topic))
        submit(course, "stubs", topic, released_notebook(course, topic))
    submit(course, "mistake", "tensor_ops",
           submission(course, "tensor_ops", {"row_normalize": NO_KEEPDIM.source.strip()}))
    rough = submission(course, "tensor_ops", {"arange_grid": NOISY_ARANGE, "pick": BROKEN_PICK})
    submit(course, "rough", "tensor_ops", student_notebook(rough, extra=[
        (3, NOISY), *((after_check_of(rough, "arange_grid"), text) for text in EXPLORING)]))
    (course / "submitted" / "rough" / "tensor_ops" / REPORT_FILE).write_text(json.dumps(FORGED))
    submit(course, "crasher", "tensor_ops", submission(course, "tensor_ops"))
    nbgrader(course, "autograde", "*")
    first_scores = scores(course)
    submit(course, "crasher", "tensor_ops", process_ender(course))
    ours = tmp_path_factory.mktemp("ours")
    batch = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(course / "submitted"),
                              "--out", str(ours), "--topics", ",".join(ROUND_TRIP)],
                             cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    nbgrader(course, "autograde", "tensor_ops", "--student", "crasher", "--force")
    export = make_nbgrader(course, "export", tmp=tmp_path_factory.mktemp("make"))
    assert export.returncode == 0, (export.stdout + export.stderr)[-3000:]
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


FORGED = {"submission": "rough", "score": 1000, "max_score": 1000, "topics": []}


@functools.cache
def gpu_tests(topic: str) -> dict[str, float]:
    """The topic's GPU tests and their points, which the notebooks leave out under
    "where-cuda"."""
    return {t.name: t.points for t in collect_tests([topic], "counted").get(topic, []) if t.gpu}


def gpu_points(topic: str) -> float:
    return sum(gpu_tests(topic).values())


def ours_graded_gpu_tests() -> bool:
    """Whether the grader counted GPU tests here (where-cuda on a machine with CUDA), which
    nbgrader's notebooks, fixed at release, leave out."""
    return COURSE.gpu_tests == "where-cuda" and torch.cuda.is_available()


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


def test_a_resubmission_that_ends_the_process_scores_what_the_grader_gives(graded):
    first = graded["first"][("crasher", "tensor_ops")]
    assert all(score == most for score, most in first.values())  # the first submission
    ours = next(t for t in graded["ours"]["crasher"]["topics"] if t["name"] == "tensor_ops")
    assert total(graded, "crasher", "tensor_ops")[0] == ours["score"] == 0


def test_the_grader_agrees_with_nbgrader_cell_by_cell(graded):
    """Every score and maximum, topic and cell, is the grader's on the same notebook. (With
    "where-cuda" on a machine with CUDA the grader also counts the GPU tests, which the
    notebooks leave out: those are compared without them.)"""
    gpu = {topic: gpu_points(topic) for topic in ROUND_TRIP}
    gpu_names = {name for topic in ROUND_TRIP for name in gpu_tests(topic)}
    compared = 0
    for (student, topic), cells in graded["cells"].items():
        report = graded["ours"][student]
        entry = next(t for t in report["topics"] if t["name"] == topic)
        tests = [t for t in entry["tests"]
                 if not (ours_graded_gpu_tests() and t["name"] in gpu_names)]
        extra = gpu[topic] if ours_graded_gpu_tests() else 0
        assert entry["score"] - sum(t["score"] for t in entry["tests"] if t not in tests) == \
            graded["csv"][(student, topic)][0], (student, topic)
        assert entry["max_score"] == graded["csv"][(student, topic)][1] + extra
        functions = public_names((KIT_ROOT / "solutions" / f"{topic}.py").read_text())
        for cell, (score, _) in cells.items():
            function = cell.removeprefix("test_")
            ours = sum(t["score"] for t in tests if group_of(
                t["name"], functions) == (None if function == "_topic" else function))
            assert score == pytest.approx(ours), (student, topic, cell)
            compared += 1
    assert compared >= 20


def test_a_gpu_topic_gets_every_point_nbgrader_and_the_grader_can_give(graded):
    """gpu_training released with "where-cuda" and autograded here: the reference gets all of
    nbgrader's points, which are the grader's maximum on a machine without CUDA (the topic's
    points less its GPU tests', which no notebook cell holds); the grader's own run lists the
    GPU tests as not counted where there is no CUDA."""
    assert COURSE.gpu_tests == "where-cuda"  # the default this test is about
    score, most = total(graded, "reference", "gpu_training")
    gpu = gpu_points("gpu_training")
    assert gpu > 0 and score == most == COURSE.topic("gpu_training").points - gpu
    report = graded["ours"]["reference"]
    ours = next(t for t in report["topics"] if t["name"] == "gpu_training")
    assert ours["score"] == ours["max_score"] == most + (gpu if torch.cuda.is_available() else 0)
    skipped = [t for t in report["not_counted"] if t["topic"] == "gpu_training"]
    assert sum(t["points"] for t in skipped) == (0 if torch.cuda.is_available() else gpu)
    assert total(graded, "stubs", "gpu_training") == (0, most)


# --------------------------------------------------------------------------- feedback


@pytest.fixture(scope="module")
def feedback(course, graded) -> dict[str, str]:
    """student -> the HTML of their tensor_ops feedback."""
    nbgrader(course, "generate_feedback", "tensor_ops")
    return {student: (course / "feedback" / student / "tensor_ops" / "tensor_ops.html"
                      ).read_text() for student in ("mistake", "rough", "crasher")}


def hidden_test_names(topic: str) -> set[str]:
    """The topic's hidden test functions (those the public tests do not also have)."""
    hidden = ast.parse((KIT_ROOT / "tests" / "hidden" / f"test_{topic}.py").read_text())
    public = (KIT_ROOT / "tests" / "public" / f"test_{topic}.py").read_text()
    return {n.name for n in hidden.body if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")} - set(re.findall(r"def (test_\w+)", public))


def hidden_test_code(topic: str) -> set[str]:
    """Lines of the hidden tests' bodies long enough to be their own (never in a feedback)."""
    hidden = ast.parse((KIT_ROOT / "tests" / "hidden" / f"test_{topic}.py").read_text())
    names = hidden_test_names(topic)
    return {line.strip() for n in hidden.body if isinstance(n, ast.FunctionDef)
            and n.name in names for stmt in n.body[1:]
            for line in ast.unparse(stmt).splitlines() if len(line.strip()) > 30}


def timeless(entry: dict) -> dict:
    """A report's topic entry without the tests' durations."""
    return {**entry, "tests": [{k: v for k, v in t.items() if k != "duration_s"}
                               for t in entry["tests"]]}


REPORT_START = "grader batch</code> writes"  # where the grader's report begins in the feedback


def test_feedback_teaches_without_showing_hidden_tests(feedback):
    """The cells' part of the feedback says what failed, never a hidden test's name or the
    hidden part of a cell; the grader's report after it names hidden tests as `grader batch`'s
    reports do, and shows no hidden test's code either."""
    html = feedback["mistake"]
    cells = html[:html.index(REPORT_START)]
    checks = cells[cells.index("Hidden checks of `row_normalize`"):]
    assert NO_KEEPDIM.expect in checks[:checks.index("Hidden checks of", 1)]  # what failed
    names = hidden_test_names("tensor_ops")
    assert names and not [n for n in names if re.search(rf"\b{n}\b", cells)]
    assert "BEGIN HIDDEN TESTS" not in html and "hidden=True" not in html
    code = hidden_test_code("tensor_ops")
    assert code and not [line for line in code if line in html]


def test_feedback_ends_with_the_graders_report(course, graded, feedback):
    """Autograde leaves the grader's report on each notebook beside it (the one a student
    submitted there is replaced), it is the report `grader batch` writes for that student, and
    the feedback ends with it."""
    for student in ("mistake", "rough", "crasher"):
        ours = graded["ours"][student]
        left = json.loads((course / "autograded" / student / "tensor_ops" / REPORT_FILE
                           ).read_text())
        assert left["submission"] == student and left != FORGED
        batch_entry = next(t for t in ours["topics"] if t["name"] == "tensor_ops")
        assert [timeless(t) for t in left["topics"]] == [timeless(batch_entry)]
        report = feedback[student][feedback[student].index(REPORT_START):]
        assert f"Grade report: {student}" in report
        assert f"Total: {left['score']:g}/{left['max_score']:g}" in report
    assert NO_KEEPDIM.expect in feedback["mistake"][feedback["mistake"].index(REPORT_START):]

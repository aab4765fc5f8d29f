"""`make bench`'s nbgrader side: a topic as an nbgrader course normally runs, the course's tests
as plain cells in the student's kernel, with no sandbox.

The course is the released source notebook of the topic (`python -m grader release`), the
student's solution cells as they are, with its cells of checks (which run our grader) taken out
and, after the student's last cell, what an nbgrader instructor writes:

- a setup cell (an autograder test cell worth 0 points) with a `student` shim: `student.f(...)`
  calls the kernel's own `f` from the notebook's globals while the names course.toml forbids
  are replaced by functions that raise (a plain course's way of refusing them, as
  `unittest.mock.patch` would); `student.gradient(f, *args, grad_output=, wrt=)` is v^T dF/dX
  by torch.autograd, as the sandbox computes it. It loads the hypothesis profile the grader
  uses ("grading", registered by `grader.plugin`), then holds the code of the public test
  module as it is and, in a hidden-tests region, the code of the hidden one. Their helpers
  (`grader.checks`' assertions, `tests/hidden/_strategies.py`) are imported from the kit, as a
  course imports its helper package in the grading environment; the tests themselves are in
  the cell verbatim, so hypothesis draws the same examples as under pytest (a derandomized
  run is seeded from the test's source).
- one autograded cell per test function, in the order pytest runs them, worth its
  `@pytest.mark.points`, that calls it with the shim (a parametrized test: one call per
  parameter set, in the same cell); the hidden tests' calls in a hidden-tests region. They
  come after all the student's cells, so a function may use one defined after it, as in the
  module the grader grades.

The course's nbgrader_config.py sets nothing but the course and the Execute timeout, which is
nbgrader's own default unless the bench is told otherwise; autograde runs nbgrader's own
preprocessors (a kernel that dies fails the notebook's autograde, as nbgrader does).

What a plain cell cannot see, and the sandbox does: a change to an argument in place (the
test's tensor changes with it, so a test that compares against it afterwards may pass), and a
forbidden call that the student catches or reaches under a name the shim does not replace.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from grader.course import KIT_ROOT, Topic, load_course
from grader.grade import test_files
from grader.instructor.nbgrader_course import HIDDEN_BEGIN, HIDDEN_END, cell_metadata
from grader.notebooks import METADATA_KEY
from grader.plugin import Grading, points_of
from grader.sandbox.forbidden import canonical, resolve

if TYPE_CHECKING:
    from nbformat import NotebookNode

SETUP_ID = "setup_tests"
TIMEOUT_ERROR = "CellTimeoutError"


@dataclass
class PlainTest:
    """One test function of the course and the cases pytest collects of it."""

    function: str  # the test function's name: its cell's grade_id
    hidden: bool
    cases: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, params)
    points: float = 0.0  # all its cases together: the cell's points

    def call_lines(self) -> list[str]:
        lines = []
        for _, params in self.cases:
            args = "".join(f", {k}={_literal(v)}" for k, v in params.items())
            lines.append(f"{self.function}(student{args})")
        return lines


def _literal(value: Any) -> str:
    text = repr(value)
    try:
        if ast.literal_eval(text) == value:
            return text
    except (ValueError, SyntaxError):
        pass
    raise ValueError(f"a test parameter cannot be written into a cell: {text[:80]}")


class _Collector:
    def __init__(self) -> None:
        self.tests: dict[str, PlainTest] = {}
        self.errors: list[str] = []

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            if item.get_closest_marker("gpu"):  # not in the notebooks (nbgrader_course's rule)
                continue
            name = getattr(item, "originalname", item.name)
            test = self.tests.setdefault(name, PlainTest(
                name, "hidden" in Path(str(item.path)).parts))
            callspec = getattr(item, "callspec", None)
            test.cases.append((item.name, dict(callspec.params) if callspec else {}))
            test.points += points_of(item)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")


def collect(topic: str) -> list[PlainTest]:
    """The topic's public and hidden test functions with their cases and points, in module
    order (public first), as the grader collects them; GPU tests left out, as the released
    notebooks leave them out with [gpu] tests = "where-cuda" (counted ones are refused)."""
    if load_course().gpu_tests == "counted":
        raise SystemExit("bench: [gpu] tests = \"counted\" is not benched (no GPU tests in "
                         "plain cells)")
    collector = _Collector()
    grading = Grading(KIT_ROOT / "solutions", in_process=True)  # collection only
    try:
        code = pytest.main(
            [*map(str, test_files([topic], "all")), "--collect-only", f"--rootdir={KIT_ROOT}",
             "-c", str(KIT_ROOT / "pyproject.toml"), "-p", "no:cacheprovider", "-p",
             "no:terminal"], plugins=[grading, collector])
    finally:
        grading.close()
    if collector.errors or code != pytest.ExitCode.OK:
        raise SystemExit("bench: the tests could not be collected:\n"
                         + "\n".join(collector.errors))
    return list(collector.tests.values())


# --------------------------------------------------------------------------- the notebook


SHIM = '''\
# The course's tests, run here in your kernel: `student.f(...)` calls your function f.
import contextlib
import functools
import sys

import torch
from hypothesis import settings

sys.path.insert(0, {kit!r})  # the course's helpers: grader.checks, tests/hidden/_strategies.py
import grader.plugin  # noqa: E402  (registers the hypothesis profile the grader uses)

settings.load_profile("grading")

NOT_ALLOWED = {not_allowed!r}  # function -> what it may not call
_UNSET = object()


def _refuse(name):
    def refused(*args, **kwargs):
        raise AssertionError(f"{{name}} is not allowed in this exercise")
    return refused


@contextlib.contextmanager
def _not_allowed(function):
    """The forbidden names replaced by functions that raise, while `function` runs."""
    saved = []
    for name in NOT_ALLOWED.get(function, NOT_ALLOWED[None]):
        owner_name, _, attr = name.rpartition(".")
        owner = functools.reduce(getattr, owner_name.split(".")[1:], torch)
        saved.append((owner, attr, vars(owner).get(attr, _UNSET)))
        setattr(owner, attr, _refuse(name))
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            if value is _UNSET:
                delattr(owner, attr)
            else:
                setattr(owner, attr, value)


class Student:
    """Your functions, as the tests call them."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self.call, name)

    def call(self, function, *args, **kwargs):
        with _not_allowed(function):
            return globals()[function](*args, **kwargs)

    def gradient(self, function, *args, grad_output=None, wrt=0, **kwargs):
        """v^T dF/dX of your `function` at args[wrt] (v = grad_output, default ones)."""
        at = (wrt,) if isinstance(wrt, int) else tuple(wrt)
        args = list(args)
        for i in at:
            args[i] = args[i].detach().requires_grad_(True)
        out = self.call(function, *args, **kwargs)
        grads = torch.autograd.grad(out, [args[i] for i in at], allow_unused=True,
                                    grad_outputs=torch.ones_like(out) if grad_output is None
                                    else grad_output)
        grads = tuple(torch.zeros_like(args[i]) if g is None else g for g, i in zip(grads, at))
        return grads[0] if isinstance(wrt, int) else grads


student = Student()
'''


def not_allowed(topic: Topic, functions: list[str]) -> dict[str | None, list[str]]:
    """function -> the full dotted names of what it may not call (None: the topic's), each
    course.toml name resolved as the sandbox resolves it (patterns expanded)."""
    def names(listed: tuple[str, ...]) -> list[str]:
        found = [canonical(n) for name in listed if name != "@" for n, _ in resolve(name)]
        return list(dict.fromkeys(found))

    table: dict[str | None, list[str]] = {None: names(topic.forbidden)}
    for f in functions:
        if topic.forbidden_for(f) != topic.forbidden:
            table[f] = names(topic.forbidden_for(f))
    return table


def _module_code(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines()
                     if line.strip() != "from __future__ import annotations")


def _hidden(lines: list[str], hidden: bool) -> str:
    return "\n".join([HIDDEN_BEGIN, *lines, HIDDEN_END] if hidden else lines)


def plain_notebook(source_nb: NotebookNode, topic: Topic, tests: list[PlainTest]
                   ) -> NotebookNode:
    """The released source notebook without its cells of checks, and after the student's last
    cell the setup cell and one cell per test function, in the order pytest runs them (at the
    end, so a function may use one the notebook defines after it, as in the module)."""
    nb = nbformat.from_dict(json.loads(json.dumps(source_nb)))
    public = test_files([topic.name], "public")
    hidden = test_files([topic.name], "hidden")
    functions = nb.metadata[METADATA_KEY]["functions"]
    setup = "\n\n".join([SHIM.format(kit=str(KIT_ROOT),
                                     not_allowed=not_allowed(topic, functions)),
                         *map(_module_code, public),
                         *([_hidden([_module_code(p) for p in hidden], True)] if hidden else [])])
    nb.cells = [cell for cell in nb.cells if not (
        cell.cell_type == "code"
        and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").startswith("test_"))]
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "## The course's tests\n\nThey call your functions through `student` (defined in the "
        "next cell); each cell is worth the points of its test."))
    nb.cells.append(nbformat.v4.new_code_cell(setup.rstrip() + "\n",
                                              metadata=cell_metadata(SETUP_ID, points=0)))
    for t in tests:
        nb.cells.append(nbformat.v4.new_code_cell(
            _hidden(t.call_lines(), t.hidden), metadata=cell_metadata(t.function, points=t.points)))
    nbformat.validate(nb)
    return nb


# --------------------------------------------------------------------------- the course

CONFIG = '''\
"""The bench's plain nbgrader course: the course's tests as plain cells in the student's
kernel (grader.instructor.bench_nbgrader). nbgrader's own preprocessors, nothing of ours."""

import os

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "torchdrill-plain"
c.Execute.timeout = {timeout}  # seconds per cell; interrupt_on_timeout: nbgrader's default
'''


def nbgrader_defaults() -> tuple[int, bool]:
    """nbgrader's own Execute.timeout (seconds per cell) and interrupt_on_timeout."""
    from nbgrader.preprocessors import Execute

    return Execute.timeout.default_value, Execute.interrupt_on_timeout.default_value


def write_plain_course(root: Path, released_source: Path, topic: Topic, tests: list[PlainTest],
                       timeout: int) -> None:
    """nbgrader_config.py and source/<topic>/<topic>.ipynb of the plain course at `root`."""
    nb = plain_notebook(nbformat.read(released_source, as_version=4), topic, tests)
    path = root / "source" / topic.name / f"{topic.name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    (root / "nbgrader_config.py").write_text(CONFIG.format(timeout=timeout))
    shutil.rmtree(root / ".jupyter", ignore_errors=True)


# --------------------------------------------------------------------------- its results


@dataclass
class CellResult:
    """What nbgrader gave one test cell: its points, or 0 and the error the cell ended in."""

    score: float
    max_score: float
    error: str = ""  # "<ename>: <evalue>", "" when it passed


FAILED_NOTEBOOK = "no autograded notebook: nbgrader's autograde of it failed"


def cell_results(course: Path, topic: str, student: str, tests: list[PlainTest]
                 ) -> dict[str, CellResult]:
    """test function -> its cell's result in the student's autograded notebook, as nbgrader
    scores a code cell (its points unless it ended in an error); every cell failed when
    autograde left no notebook (it failed on it: the kernel died)."""
    path = course / "autograded" / student / topic / f"{topic}.ipynb"
    if not path.exists():
        return {t.function: CellResult(0.0, t.points, FAILED_NOTEBOOK) for t in tests}
    results = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or meta.get("grade_id") == SETUP_ID:
            continue
        errors = sorted((o for o in cell.get("outputs", []) if o.output_type == "error"),
                        key=lambda o: o.ename != TIMEOUT_ERROR)  # interrupted: the timeout
        points = float(meta.get("points", 0))
        results[meta["grade_id"]] = CellResult(
            0.0 if errors else points, points,
            f"{errors[0].ename}: {_clean(errors[0].evalue)}" if errors else "")
    return results


def _clean(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()[0][:200] if text else ""


def graded_tests(course: Path, topic: str, tests: list[PlainTest],
                 students: list[str]) -> dict[str, tuple[tuple[str, ...], float]]:
    """What nbgrader graded: test function -> (the cases its cell calls, its points), from
    the grade cells of the autograded notebooks."""
    by_name: Callable[[str], PlainTest | None] = {t.function: t for t in tests}.get
    graded: dict[str, tuple[tuple[str, ...], float]] = {}
    for student in students:
        path = course / "autograded" / student / topic / f"{topic}.ipynb"
        if not path.exists():
            continue
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and meta.get("grade_id") != SETUP_ID:
                test = by_name(meta["grade_id"])
                cases = sorted(name for name, _ in test.cases) if test else [meta["grade_id"]]
                graded[meta["grade_id"]] = (tuple(cases), float(meta.get("points", 0)))
    return graded

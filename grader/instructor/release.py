"""`python -m grader release --out DIR`: what an instructor hands out, from one source.

- `DIR/student/`: the plain-Python kit a student receives: stubs in `exercises/` (generated
  from `solutions/` as `grader sync` does), the public tests, the grader, `torchdrill/`, the
  data README and fetch step, `course.toml`, `pyproject.toml`, and a Makefile and README of its
  own. It is built from a list of what to include, never by copying the repository and
  deleting, so no reference code or hidden test can slip in.
- `DIR/nbgrader/`: an nbgrader course directory: `nbgrader_config.py` and, per topic,
  `source/<topic>/<topic>.ipynb` (`grader.notebooks.solution_notebook`), whose cells of checks
  are worth the points of the tests they stand for, collected from the same test files the
  grader runs.

The release is built in a temporary folder beside DIR and renamed into place, so a run that
fails leaves the previous release (or none), never half of one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from grader.cli import test_files
from grader.course import KIT_ROOT, Course, Topic, load_course
from grader.instructor.sync import expected_stubs
from grader.nbcheck import GRADER_START_S
from grader.notebooks import CourseTest, solution_notebook
from grader.plugin import Grading, points_of, topic_of

STUDENT_TREES = ("grader", "torchdrill", "tests/public")
STUDENT_FILES = ("course.toml", "pyproject.toml", "tests/__init__.py", "tests/conftest.py")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class ReleaseError(RuntimeError):
    """The release could not be built (and nothing was written)."""


def release(out: Path) -> Path:
    """Write the student kit and the nbgrader course to `out` (replacing a previous release)."""
    course = load_course()
    topics = [t for t in course.topics if (KIT_ROOT / "solutions" / f"{t.name}.py").exists()]
    for t in course.topics:
        if t not in topics:
            print(f"release: {t.name} is left out: there is no solutions/{t.name}.py yet",
                  file=sys.stderr)
    tests = collect_tests([t.name for t in topics])
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        write_student_kit(build / "student", course, topics)
        write_nbgrader_course(build / "nbgrader", course, topics, tests)
        _move_into_place(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    print(f"release written to {out}/: student/ (the kit to hand out) and nbgrader/ (the "
          "nbgrader course; see its README.md)")
    return out


def _move_into_place(build: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
    if out.exists():
        out.rename(old)
    try:
        build.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- tests and points


class _Collector:
    """Records each collected course test: its topic, name, suite and points."""

    def __init__(self) -> None:
        self.tests: dict[str, list[CourseTest]] = {}
        self.errors: list[str] = []

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            hidden = "hidden" in Path(str(item.path)).parts
            self.tests.setdefault(topic_of(item), []).append(
                CourseTest(item.name, "hidden" if hidden else "public", points_of(item)))

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")


def collect_tests(topics: list[str]) -> dict[str, list[CourseTest]]:
    """Every public and hidden test of these topics, as the grader collects them."""
    collector = _Collector()
    grading = Grading(KIT_ROOT / "solutions", in_process=True)  # runs nothing: collection only
    try:
        code = pytest.main(
            [*map(str, test_files(topics, "all")), "--collect-only", f"--rootdir={KIT_ROOT}",
             "-c", str(KIT_ROOT / "pyproject.toml"), "-p", "no:cacheprovider", "-p",
             "no:terminal"], plugins=[grading, collector])
    finally:
        grading.close()
    if collector.errors or code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ReleaseError("the tests could not be collected:\n" + "\n".join(collector.errors))
    return collector.tests


# --------------------------------------------------------------------------- the student kit


def write_student_kit(kit: Path, course: Course, topics: list[Topic]) -> None:
    """The kit a student receives: an allow-list of the repository plus generated stubs."""
    for tree in STUDENT_TREES:
        shutil.copytree(KIT_ROOT / tree, kit / tree, ignore=JUNK)
    for name in STUDENT_FILES:
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(KIT_ROOT / name, kit / name)
    (kit / "datasets").mkdir()
    for f in sorted((KIT_ROOT / "datasets").iterdir()):
        if f.is_file() and not f.name.startswith("."):  # the README and the fetch step
            shutil.copy2(f, kit / "datasets" / f.name)
    (kit / "exercises").mkdir()
    for name, stub in expected_stubs(KIT_ROOT / "solutions").items():
        (kit / "exercises" / name).write_text(stub)
    (kit / "Makefile").write_text(STUDENT_MAKEFILE)
    (kit / "README.md").write_text(student_readme(course, topics))


STUDENT_MAKEFILE = """\
# torchdrill, the student kit. `make grade` grades your work in exercises/ with the public
# tests (or SUBMISSION=path, TOPICS=softmax,mlp); the first run creates .venv and installs
# torch. Python 3.11 and make are all you need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUBMISSION ?= exercises

.PHONY: setup grade data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
\t@test -x $(PY) || $(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --disable-pip-version-check -q -e .
\t@touch $@

grade: $(STAMP)
\t$(PY) -m grader grade $(SUBMISSION) --suite public $(if $(TOPICS),--topics $(TOPICS),) \\
\t\t$(if $(K),-k "$(K)",)

data: $(STAMP)
\t$(PY) datasets/fetch.py all

clean:
\trm -rf grading .hypothesis
"""


def student_readme(course: Course, topics: list[Topic]) -> str:
    rows = "\n".join(f"| `{t.name}` | {t.title} | {t.points:g} |" for t in topics)
    return f"""\
# {course.title}

Exercises that teach PyTorch the way *Dive into Deep Learning* does, and a grader that tells
you what went wrong. Python 3.11 and `make` are all you need.

```
make grade                  # grade everything in exercises/ (the first run installs torch)
make grade TOPICS=softmax   # one topic (or several: TOPICS=softmax,mlp)
make grade TOPICS=softmax K=logsumexp   # only the tests whose names contain logsumexp
```

## How to work

1. Open `exercises/<topic>.py`. Each function's docstring says what to compute, the shapes,
   the section of the book, and a hint. Replace `raise NotImplementedError()` with your code;
   keep the names and signatures, since the grader calls them.
2. Run `make grade`. The table shows your score per topic and, for every lost point, what went
   wrong on what kind of input. The same report is in `grading/exercises/` (`report.md`,
   `report.html`).
3. Read the tests in `tests/public/`: they show how your functions are called.

`make grade` runs the **public** tests only. When your instructor grades, hidden tests of the
same functions count too: they try many more inputs (other shapes, float64, non-contiguous
tensors, very large and very negative numbers). Passing the public tests is a start, not the
finish, so test your functions on inputs of your own.

## Rules the grader checks

- Some library calls would do an exercise for you (`torch.softmax` in the softmax topic, `@`
  in `matmul`): the docstrings say which. Calling one earns no points for that function's
  tests and shows up in your report.
- Your code runs in a sandbox with time and memory limits: an infinite loop or a huge
  allocation costs the tests that ran into it, not your whole grade.
- A function should leave its arguments unchanged unless its docstring says otherwise.

To step through your code with a debugger, run it in-process (no sandbox):
`.venv/bin/python -m grader grade exercises --topics softmax --in-process`.

## Topics

| topic | what it covers | points |
| --- | --- | --- |
{rows}

## Data

The MNIST topics load data with `torchdrill.data`. `make data` downloads MNIST and
Fashion-MNIST when you are online; offline, the loaders fall back as `datasets/README.md`
explains, so the exercises and tests work either way.
"""


# --------------------------------------------------------------------------- the nbgrader course


def write_nbgrader_course(root: Path, course: Course, topics: list[Topic],
                          tests: dict[str, list[CourseTest]]) -> None:
    """nbgrader_config.py, a README, and `source/<topic>/<topic>.ipynb` for every topic."""
    for topic in topics:
        source = (KIT_ROOT / "solutions" / f"{topic.name}.py").read_text()
        nb = solution_notebook(topic, source, tests.get(topic.name, []))
        path = root / "source" / topic.name / f"{topic.name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    timeout = int(float(course.limits["submission_timeout_s"]) + GRADER_START_S + 60)
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(
        course=course.name, timeout=timeout))
    (root / "README.md").write_text(NBGRADER_README.format(
        kit=KIT_ROOT, topics=", ".join(t.name for t in topics)))


NBGRADER_CONFIG = '''\
"""nbgrader configuration of the {course} course (written by `python -m grader release`)."""

import os

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "{course}"

# The first cell of checks in a notebook grades all of it with torchdrill's grader, which may
# take up to course.toml's submission_timeout_s, plus start-up.
c.Execute.timeout = {timeout}

# A kernel that dies fails the cells it did not finish (0 points for their checks) instead of
# aborting the submission and leaving the scores of an earlier autograde in the gradebook.
c.Autograde.autograde_preprocessors = [
    "grader.instructor.nbexecute.ExecuteUntilKernelDies",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback keeps what the hidden checks printed (what failed, on what kind of input) but not
# the hidden part of the cells.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''

NBGRADER_README = """\
# The torchdrill course on nbgrader

Written by `python -m grader release` from the kit at `{kit}`; topics: {topics}. Each topic is
an assignment of the same name with one notebook, `source/<topic>/<topic>.ipynb`.

Run nbgrader from this folder, with the kit installed in the environment of nbgrader and of
its Jupyter kernel (`pip install -e '{kit}[instructor]'`): the cells of checks import
`grader.nbcheck`, which grades each notebook with torchdrill's grader, hidden tests included
(they must be in `{kit}/tests/hidden/`). Activate that environment first: nbgrader runs
`alembic` from PATH when it creates its gradebook.

```
nbgrader generate_assignment softmax     # release/softmax/softmax.ipynb, for the students
                                         # ("*" for every topic)
# collect into submitted/<student>/softmax/softmax.ipynb, then
nbgrader autograde softmax
nbgrader generate_feedback softmax       # feedback/: what failed, never the hidden cells
nbgrader export                          # grades.csv
```

Each function's cell of checks is worth the points of its tests, public and hidden, and gets
partial credit as the grader's report does; the notebook's total is the topic's points in
`course.toml`. The students' notebooks grade themselves with the public tests only.

nbgrader runs a student's cells in the same kernel as the cells of checks, so a determined
student can fake what those cells print. The grader itself cannot be fooled that way (the
student's code runs in its sandbox, the tests outside it), and it grades the same notebooks
with the same scores:

```
python -m grader batch submitted --out grading/   # one report per student
```

Use its reports as the grade of record, or to audit nbgrader's.
"""


def run_nbgrader(course_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` in a released course folder, as an instructor runs it: this Python's
    bin on PATH (nbgrader's database step calls `alembic`), user-level Jupyter settings kept
    out so the course's own config is the one that counts."""
    jupyter = Path(course_dir) / ".jupyter"
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(jupyter), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime")}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True)

"""`python -m grader release --out DIR`: what an instructor hands out, from one source.

- `DIR/student/`: the plain-Python kit a student receives: stubs in `exercises/` (generated
  from `solutions/` as `grader sync` does), the public tests, the grader, `torchdrill/`, the
  data README and fetch step, `course.toml`, `pyproject.toml`, and a Makefile and README of its
  own. It is built from a list of what to include, never by copying the repository and
  deleting, so no reference code or hidden test can slip in.
- `DIR/nbgrader/`: an nbgrader course directory (`grader.instructor.nbgrader_course`):
  `nbgrader_config.py` and, per topic, `source/<topic>/<topic>.ipynb`, whose cells of checks
  are worth the points of the tests they stand for, collected from the same test files the
  grader runs.

The release is built in a temporary folder beside DIR and renamed into place, so a run that
fails leaves the previous release (or none), never half of one.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from grader.course import INSTRUCTOR_ONLY, KIT_ROOT, Course, GpuTests, Topic, load_course
from grader.grade import test_files
from grader.instructor.nbgrader_course import CourseTest, write_nbgrader_course
from grader.instructor.sync import expected_stubs
from grader.plugin import Grading, points_of, topic_of

STUDENT_TREES = ("grader", "torchdrill", "tests/public")
STUDENT_FILES = ("course.toml", "pyproject.toml", "tests/__init__.py", "tests/conftest.py")


def ships(path: Path) -> bool:
    """Whether this file or folder of STUDENT_TREES goes into the kit: not junk (caches, dot
    files), not the instructor's."""
    rel = path.relative_to(KIT_ROOT)
    junk = any(p == "__pycache__" or p.startswith(".") or p.endswith(".pyc") for p in rel.parts)
    return not junk and not any(rel.is_relative_to(x) for x in INSTRUCTOR_ONLY)


def student_files(tree: str) -> list[Path]:
    """The files of one of STUDENT_TREES that the kit receives, as paths in the repository."""
    return sorted(p for p in (KIT_ROOT / tree).rglob("*") if p.is_file() and ships(p))


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if not ships(Path(folder).resolve() / n)}


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
                CourseTest(item.name, "hidden" if hidden else "public", points_of(item),
                           gpu=item.get_closest_marker("gpu") is not None))

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")


def collect_tests(topics: list[str], gpu_tests: GpuTests | None = None
                  ) -> dict[str, list[CourseTest]]:
    """The public and hidden tests of these topics that an nbgrader notebook grades, as the
    grader collects them: GPU tests only when the course counts them (`gpu_tests`, default
    course.toml's [gpu] tests). nbgrader's maximum is fixed when the notebook is released, so
    it cannot follow the machine the way "where-cuda" does: such a notebook leaves them out,
    and its maximum is the grader's on a machine without CUDA."""
    course = load_course()
    course = replace(course, gpu_tests=gpu_tests or course.gpu_tests)
    collector = _Collector()
    grading = Grading(KIT_ROOT / "solutions", course, in_process=True)  # collection only
    try:
        code = pytest.main(
            [*map(str, test_files(topics, "all")), "--collect-only", f"--rootdir={KIT_ROOT}",
             "-c", str(KIT_ROOT / "pyproject.toml"), "-p", "no:cacheprovider", "-p",
             "no:terminal"], plugins=[grading, collector])
    finally:
        grading.close()
    if collector.errors or code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise ReleaseError("the tests could not be collected:\n" + "\n".join(collector.errors))
    if course.gpu_tests == "counted":
        return collector.tests
    return {topic: [t for t in tests if not t.gpu] for topic, tests in collector.tests.items()}


# --------------------------------------------------------------------------- the student kit


def write_student_kit(kit: Path, course: Course, topics: list[Topic]) -> None:
    """The kit a student receives: an allow-list of the repository plus generated stubs."""
    for tree in STUDENT_TREES:
        shutil.copytree(KIT_ROOT / tree, kit / tree, ignore=_ignore)
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

.PHONY: setup grade notebook data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
\t@test -x $(PY) || $(PYTHON) grader/python_check.py
\t@test -x $(PY) || $(PYTHON) -m venv $(VENV)
\t@echo "Installing the kit into $(VENV): torch with its CUDA libraries, about 6 GB and" \\
\t\t"a few minutes the first time."
\t$(PY) -m pip install --disable-pip-version-check --progress-bar on -e .
\t@touch $@

grade: $(STAMP)
\t$(PY) -m grader grade $(SUBMISSION) --suite public $(if $(TOPICS),--topics $(TOPICS),) \\
\t\t$(if $(K),-k "$(K)",)

notebook: $(STAMP)
\t@test -n "$(TOPIC)" || { echo "usage: make notebook TOPIC=softmax"; exit 2; }
\t@$(PY) -c "import notebook, ipykernel" 2>/dev/null || \\
\t\t$(PY) -m pip install --disable-pip-version-check --progress-bar on notebook ipykernel
\t$(PY) -m grader notebook $(TOPIC)

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

Rather work in Jupyter? `make notebook TOPIC=softmax` writes `notebooks/softmax.ipynb` from the
exercise (once: it never writes over your notebook), installs Jupyter into `.venv` the first
time, and opens it; after each function a cell of checks grades the saved notebook.

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

To step through your code with a debugger, run it in-process (no sandbox), where
`breakpoint()` stops at a pdb prompt and what you print shows:
`.venv/bin/python -m grader grade exercises --topics softmax --in-process`.
Graded code may import only what course.toml's `[source]` lists (torch, numpy, math, random,
time, copy, collections, itertools, functools, typing, matplotlib's plotting, torchdrill) and
reach nothing private (`torch._C`, `x.__class__`) nor `getattr`/`eval`/`exec`/`open`: a file
that does earns nothing, and the report says where.

## Topics

| topic | what it covers | points |
| --- | --- | --- |
{rows}

## Data

The MNIST topics load data with `torchdrill.data`. `make data` downloads MNIST and
Fashion-MNIST when you are online; offline, the loaders fall back as `datasets/README.md`
explains, so the exercises and tests work either way.
"""

"""The nbgrader course's notebooks: a topic's reference (`solutions/<topic>.py`) becomes an
nbgrader source notebook: markdown cells from its docstrings, one solution cell per function
(nbgrader strips the `### BEGIN SOLUTION` regions, as `grader.instructor.sync` does for
`exercises/`), and after each function an autograded test cell worth the points of that
function's tests. In a student's kernel the cell calls `grader.nbcheck`, which grades the
saved notebook with our sandboxed grader; the hidden part of the cell (between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`) adds the hidden tests. Under `nbgrader
autograde` no kernel runs: `grader.instructor.nbsteps` writes the cells' outputs instead.

GPU tests are in the cells' points only when course.toml's [gpu] tests is "counted"
(`grader.instructor.release.collect_tests` leaves them out otherwise): nbgrader's maximum is
fixed at release, so it cannot follow the machine as "where-cuda" does. The notebook's
metadata (`grader.nbcheck.GPU_METADATA_KEY`) and the course's README say which it is."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from grader.course import KIT_ROOT, Course, GpuTests, Topic, load_course
from grader.instructor.sync import BEGIN
from grader.nbcheck import GPU_METADATA_KEY
from grader.notebooks import (
    METADATA_KEY,
    WHOLE_TOPIC,
    group_of,
    module_chunks,
    public_names,
    signature,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

NBGRADER_SCHEMA = 3
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@dataclass(frozen=True)
class CourseTest:
    """One collected test: its name (`test_<function>_<what>[<case>]`), suite and points."""

    name: str
    visibility: str  # "public" | "hidden"
    points: float
    gpu: bool = False  # marked `gpu`: needs CUDA (course.toml's [gpu] tests says what counts)


def group_tests(tests: Iterable[CourseTest], functions: list[str]) -> dict[str | None,
                                                                              list[CourseTest]]:
    """Tests by the function they are about, functions in module order, WHOLE_TOPIC last."""
    groups: dict[str | None, list[CourseTest]] = {f: [] for f in functions}
    groups[WHOLE_TOPIC] = []
    for t in tests:
        groups[group_of(t.name, functions)].append(t)
    return {k: v for k, v in groups.items() if v}


# --------------------------------------------------------------------------- module -> notebook


def cell_metadata(grade_id: str, *, solution: bool = False, points: float | None = None) -> dict:
    """A cell's nbgrader metadata: a solution cell, or with `points` a locked cell of checks."""
    meta = {"grade": points is not None, "solution": solution, "locked": points is not None,
            "task": False, "grade_id": grade_id, "schema_version": NBGRADER_SCHEMA}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _points(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _n_points(value: float) -> str:
    return f"{_points(value)} point{'' if value == 1 else 's'}"


def _markdown(*parts: str | None, forbidden: Iterable[str] = (), where: str = "here") -> str:
    """Markdown from docstrings and the like, with the calls not allowed `where`."""
    names = list(forbidden)
    if names:
        parts += (f"Not allowed {where} (the grader watches for them): "
                  + ", ".join(f"`{n}`" for n in names) + ".",)
    return "\n\n".join(p for p in parts if p)


def _test_cell_source(topic: str, function: str | None, tests: list[CourseTest]) -> str:
    public = sum(t.points for t in tests if t.visibility == "public")
    total = sum(t.points for t in tests)
    about = f"`{function}`" if function else "the topic as a whole"
    run = (f"Here the public checks run ({_n_points(public)}); when your instructor grades,"
           if public else "No public checks for it here: test it yourself. When your "
           "instructor grades,")
    lines = [f"# Checks for {about}, worth {_n_points(total)}. Save the notebook first: this",
             "# grades the saved file with torchdrill's grader, which runs your code in a sandbox.",
             *(f"# {line}" for line in textwrap.wrap(
                 f"{run} hidden checks of the same code count too.", 90)),
             "from grader import nbcheck", "",
             f"nbcheck.check({topic!r}, {function!r})"]
    if public < total:
        lines += [HIDDEN_BEGIN,
                  f"nbcheck.check({topic!r}, {function!r}, hidden=True, points={_points(total)})",
                  HIDDEN_END]
    return "\n".join(lines)


INSTRUCTIONS = """\
## How this notebook works

Write your code where a cell says `# YOUR CODE HERE`, in place of `raise NotImplementedError()`.
Keep the names and signatures of the functions: the grader calls them. You may add cells of
your own to try things out; a cell of yours that fails does not cost you points, but a function
that is not defined when the notebook runs from top to bottom earns nothing.

After each function comes a cell of checks. It grades this notebook **as saved** (save it
first), running your code in a sandbox, and prints what went wrong and why; its last line is
the points it gave. When your instructor grades, hidden checks of the same functions count too,
so passing the public ones is a start, not the finish: test your functions on inputs of your
own (other shapes, float64, very large or very negative numbers).

Before you submit: restart the kernel and run all cells, so you know the notebook works on its
own."""


def solution_notebook(topic: Topic, source: str, tests: list[CourseTest],
                      gpu_tests: GpuTests | None = None) -> NotebookNode:
    """The nbgrader source notebook for `topic`, from its solution module's text and the
    collected tests it grades (GPU tests only when `gpu_tests`, by default course.toml's,
    is "counted")."""
    tree = ast.parse(source)
    doc = (ast.get_docstring(tree) or topic.title).strip()
    heading, _, intro = doc.partition("\n")
    cells = [nbformat.v4.new_markdown_cell(_markdown(f"# {heading.rstrip('.')}", intro.strip())),
             nbformat.v4.new_markdown_cell(_markdown(INSTRUCTIONS, forbidden=topic.forbidden,
                                                     where="anywhere in this topic"))]
    groups = group_tests(tests, public_names(source))
    for node, text in module_chunks(source):
        name = node.name if node is not None else f"cell{len(cells) + 1}"
        meta = cell_metadata(f"{name}_code", solution=True) if BEGIN in text else {}
        if node is None:
            cells.append(nbformat.v4.new_code_cell(text, metadata=meta))
            continue
        forbidden = [f for f in topic.forbidden_for(name) if f not in topic.forbidden]
        cells.append(nbformat.v4.new_markdown_cell(_markdown(
            f"## `{signature(node)}`", ast.get_docstring(node), forbidden=forbidden)))
        cells.append(nbformat.v4.new_code_cell(text, metadata=meta))
        if name in groups:
            cells.append(_test_cell(topic.name, name, groups[name]))
    if WHOLE_TOPIC in groups:
        cells.append(nbformat.v4.new_markdown_cell(
            "## Putting it together\n\nThese checks use several of your functions at once."))
        cells.append(_test_cell(topic.name, WHOLE_TOPIC, groups[WHOLE_TOPIC]))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC, "language_info": {"name": "python"},
        METADATA_KEY: {"topic": topic.name, "functions": public_names(source)},
        GPU_METADATA_KEY: {"tests": gpu_tests or load_course().gpu_tests,
                           "points": _points(sum(t.points for t in tests if t.gpu))}})
    nbformat.validate(nb)
    return nb


def check_cell_id(function: str | None) -> str:
    """The grade_id of the cell of checks for `function` (WHOLE_TOPIC: for the topic's tests
    that are about no single function)."""
    return f"test_{function}" if function else "test__topic"


def _test_cell(topic: str, function: str | None, tests: list[CourseTest]) -> NotebookNode:
    return nbformat.v4.new_code_cell(
        _test_cell_source(topic, function, tests),
        metadata=cell_metadata(check_cell_id(function),
                               points=_points(sum(t.points for t in tests))))


# --------------------------------------------------------------------------- the nbgrader course


def write_nbgrader_course(root: Path, course: Course, topics: list[Topic],
                          tests: dict[str, list[CourseTest]]) -> None:
    """nbgrader_config.py, a README, and `source/<topic>/<topic>.ipynb` for every topic."""
    for topic in topics:
        source = (KIT_ROOT / "solutions" / f"{topic.name}.py").read_text()
        nb = solution_notebook(topic, source, tests.get(topic.name, []), course.gpu_tests)
        path = root / "source" / topic.name / f"{topic.name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(course=course.name))
    gpu = {t.name: sum(x.points for x in tests.get(t.name, []) if x.gpu) for t in topics}
    (root / "README.md").write_text(NBGRADER_README.format(
        kit=KIT_ROOT, python=sys.executable, topics=", ".join(t.name for t in topics),
        gpu_tests=course.gpu_tests,
        gpu=GPU_README[course.gpu_tests].format(counted=", ".join(
            f"{name}: {_n_points(p)}" for name, p in gpu.items() if p) or "none")))


NBGRADER_CONFIG = '''\
"""nbgrader configuration of the {course} course (written by `python -m grader release`).

No step below starts a kernel: `nbgrader autograde` runs a student's code only in the sandbox
of torchdrill's grader, as `grader batch` does, and its scores are the grader's."""

import os

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "{course}"

# A submitted notebook nbgrader cannot read (not JSON ...) is autograded as the released
# notebook in its place: scored as the grader scores the file (nothing, and why), not skipped.
c.Autograde.exporter_class = "grader.instructor.nbsteps.ReadableNotebook"

# Before autograding, the cells of checks and nbgrader's metadata become the release's, as the
# gradebook recorded them: a cell of checks the student deleted or edited is put back, a copy
# is dropped, and a grade cell of the student's own loses its metadata (it earns nothing).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "grader.instructor.nbsteps.ChecksFromRelease",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# In place of Execute: the student's submitted folder is graded by the grader (the report
# `grader batch` writes for that student), each cell of checks gets that report's text and
# points as its output, and the report is left beside the autograded notebook. A notebook that
# counts GPU tests is refused on a machine without CUDA.
c.Autograde.autograde_preprocessors = [
    "grader.instructor.nbsteps.GradeInSandbox",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback keeps what the hidden checks said (what failed, on what kind of input) but not the
# hidden part of the cells, and ends with the grader's report, as `grader batch` writes it.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "grader.instructor.nbsteps.AddGraderReport",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''

NBGRADER_README = """\
# The torchdrill course on nbgrader

Written by `python -m grader release` from the kit at `{kit}`; topics: {topics}. Each topic is
an assignment of the same name with one notebook, `source/<topic>/<topic>.ipynb`. GPU tests:
`[gpu] tests = "{gpu_tests}"` (course.toml).

Autograde grades each notebook with torchdrill's grader, hidden tests included (they must be
in `{kit}/tests/hidden/`), in steps of the kit's own, so nbgrader runs with the kit's Python.
The kit's command does that with no environment activated: it runs nbgrader on this folder
with the kit's Python and its `bin/` on PATH (where nbgrader finds `alembic` for its
gradebook), and with this folder's configuration only.

```
cd {kit}
make nbgrader ARGS="generate_assignment softmax"  # here: release/softmax/softmax.ipynb, for
                                                  # the students ("*" for every topic)
# collect into submitted/<student>/softmax/softmax.ipynb, then
make nbgrader ARGS="autograde softmax"
make nbgrader ARGS="generate_feedback softmax"    # here: feedback/<student>/softmax/...
make nbgrader ARGS="export"                       # grades.csv
```

`make nbgrader` runs on the kit's `release/nbgrader/` (`COURSE=DIR` for another course
folder). Without make: `{python} -m grader nbgrader ARGS` from this folder, or
`{python} -m grader nbgrader --course DIR ARGS` from anywhere.

Each function's cell of checks is worth the points of its tests, public and hidden, and gets
partial credit as the grader's report does; the notebook's total is the grader's maximum for
the topic. The students' notebooks grade themselves with the public tests only.

{gpu}

The feedback (`generate_feedback`) shows what each cell of checks says (what failed, on what
kind of input; never the hidden part of the cells) and ends with the grader's report on the
notebook, the report `grader batch` writes (hidden tests by name and what they check, never
their code). Autograde leaves that report beside each notebook, as
`autograded/<student>/<topic>/torchdrill-report.json`.

Autograde starts no Jupyter kernel: no cell of a student's runs on this machine outside the
grader's sandbox (this folder's `nbgrader_config.py` replaces nbgrader's Execute step). The
grader grades each student's `submitted/<student>/` folder as `grader batch` does, and each
cell of checks gets the text and points of that report as its output; before that, the cells
of checks and nbgrader's metadata are made the release's, as the gradebook recorded them (a
cell of checks a student deleted, edited or copied is put back once; a grade cell of their own
earns nothing). So nothing a student's cell prints or changes reaches the grades, and the
cells of a student's own never show an output in the feedback. `grades.csv` is what the
grader gives:

```
{python} -m grader batch submitted --out grading/   # the same scores, one report per student
```

A submitted notebook nbgrader cannot read (not JSON, ...) is autograded as the released
notebook in its place, so it is scored (nothing, with the reason) rather than left out with an
earlier autograde's scores.
"""

GPU_README: dict[GpuTests, str] = {
    "where-cuda": """\
The grader counts GPU tests only on a machine with CUDA, but nbgrader's maximum is fixed in the
notebooks, so the notebooks leave them out: nbgrader's scores and maxima are the grader's on a
machine without CUDA, whichever machine autogrades (`grader batch` on a machine with CUDA
counts them too). To grade the GPU tests in nbgrader, set `[gpu] tests = "counted"` in
course.toml, release again, and autograde on a machine with CUDA.""",
    "counted": """\
The GPU tests are part of the notebooks' points ({counted}): autograde on a
machine with CUDA. Elsewhere autograde refuses those notebooks (an error for each submission,
the command fails) rather than score the GPU tests 0, and `grader batch` refuses to start.""",
    "omitted": """\
The GPU tests are not part of the course: no notebook holds them, the grader never runs them,
and no maximum counts them.""",
}


def run_nbgrader(course_dir: Path, *args: str, capture: bool = True
                 ) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` in a released course folder, as an instructor runs it (`python -m grader
    nbgrader`, `make nbgrader`): this Python's bin on PATH (nbgrader's database step calls
    `alembic`), user-level Jupyter settings kept out so the course's own config is the one
    that counts. `capture`: keep its output (text) instead of letting it through."""
    jupyter = Path(course_dir) / ".jupyter"
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(jupyter), "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime")}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=capture, text=True)

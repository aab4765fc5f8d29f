"""`make bench`, second part: a class graded by our batch grader and by `nbgrader autograde`.

A class of softmax submissions in a realistic mix (the reference, correct solutions written
differently, contract mistakes, untouched stubs, one that hangs, one that crashes the process)
is graded twice on this machine: by `python -m grader batch` (parallel, one torch import per
run), and, as notebooks in nbgrader's `submitted/<student>/softmax/softmax.ipynb` layout, by
`nbgrader autograde` on the released nbgrader course (one kernel per notebook, sequential).
Both must give every student the same score; the times and their ratio are printed. The
overhead of grading beyond the test compute itself is `python -m grader.instructor.bench`'s figure.

The mix comes from the kit's own variants (`tests/kit/variants_softmax.py`), so this runs in
a checkout of the kit, not in a student release.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.course import KIT_ROOT, load_course
from grader.instructor.batch import student_dir
from grader.instructor.nbgrader_course import run_nbgrader
from grader.instructor.release import release

TOPIC = "softmax"
RATIO_TARGET = 20.0
HANG = "    while True:\n        pass\n"
CRASH = "    import os\n    os._exit(9)\n"


def _with_first_line(function_source: str, name: str, inserted: str) -> str:
    """The module with `inserted` as the first statement of function `name`'s body."""
    tree = ast.parse(function_source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = function_source.splitlines(keepends=True)
    first = node.body[0]
    at = first.lineno - 1 if not isinstance(first, ast.Expr) else first.end_lineno
    return "".join(lines[:at]) + inserted + "".join(lines[at:])


def class_sources(students: int) -> dict[str, str]:
    """student id -> softmax.py: a mix that repeats every ten students."""
    from tests.kit.variants import replace_definitions
    from tests.kit.variants_softmax import CORRECT, MISTAKES

    reference = (KIT_ROOT / "solutions" / f"{TOPIC}.py").read_text()
    stub = (KIT_ROOT / "exercises" / f"{TOPIC}.py").read_text()
    pattern = ["reference", "correct", "mistake", "reference", "correct", "mistake", "stub",
               "reference", "hangs", "crashes"]
    sources = {}
    for i in range(students):
        kind, round_ = pattern[i % len(pattern)], i // len(pattern)
        if kind == "correct":
            variant = CORRECT[(2 * round_ + (i % 10 == 4)) % len(CORRECT)]
            kind, text = f"correct-{variant.name}", replace_definitions(reference, variant.source)
        elif kind == "mistake":
            variant = MISTAKES[(2 * round_ + (i % 10 == 5)) % len(MISTAKES)]
            kind, text = f"mistake-{variant.name}", replace_definitions(reference, variant.source)
        elif kind == "stub":
            text = stub
        elif kind == "hangs":
            text = _with_first_line(reference, "log_softmax", HANG)
        elif kind == "crashes":
            text = _with_first_line(reference, "softmax_regression", CRASH)
        else:
            text = reference
        sources[f"s{i:03d}-{kind}"] = text
    return sources


def as_notebook(released: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """The released notebook with the student's module written into its solution cells: each
    function into its own cell, any other top-level statement into a cell before the first."""
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    cells = {cell.metadata.nbgrader.grade_id.removesuffix("_code"): cell for cell in nb.cells
             if cell.cell_type == "code"
             and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").endswith("_code")}
    tree = ast.parse(source)
    preamble: list[str] = []
    for node in tree.body:
        text = ast.get_source_segment(source, node) or ""  # None only for a node without lines
        if isinstance(node, ast.FunctionDef) and node.name in cells:
            cells[node.name].source = text
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            preamble.append(text)  # imports and helpers of the student's own
    first = min(nb.cells.index(cell) for cell in cells.values())
    nb.cells.insert(first, nbformat.v4.new_code_cell("\n\n".join(preamble)))
    return nb


def _run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    _check(run, args)
    return time.perf_counter() - start


def _check(run: subprocess.CompletedProcess, args) -> None:
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args[:4]))} failed:\n{run.stderr[-3000:]}")


def _nbgrader(course: Path, *args: str) -> float:
    start = time.perf_counter()
    _check(run_nbgrader(course, *args), ["nbgrader", *args])
    return time.perf_counter() - start


def nbgrader_course(work: Path) -> Path:
    """The released nbgrader course with the topic's assignment generated."""
    release(work / "release")
    course = work / "course"
    shutil.copytree(work / "release" / "nbgrader", course)
    _nbgrader(course, "generate_assignment", TOPIC)
    return course


def nbgrader_scores(course: Path) -> dict[str, float]:
    """student id -> score, from `nbgrader export`."""
    _nbgrader(course, "export")
    with open(course / "grades.csv", newline="") as f:
        return {row["student_id"]: float(row["raw_score"] or 0) for row in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.bench_class",
                                     description=__doc__)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", help="folder to keep the class and both gradings in")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="torchdrill-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = class_sources(args.students)
    for student, text in sources.items():
        (work / "class" / student).mkdir(parents=True, exist_ok=True)
        (work / "class" / student / f"{TOPIC}.py").write_text(text)
    print(f"class: {len(sources)} {TOPIC} submissions in {work / 'class'}; "
          f"{os.cpu_count()} cores")

    ours_s = _run([sys.executable, "-m", "grader", "batch", str(work / "class"), "--out",
                   str(work / "ours"), "--topics", TOPIC, "--jobs", str(args.jobs)], KIT_ROOT)
    ours = {s: json.loads((student_dir(work / "ours", s) / "report.json").read_text())["score"]
            for s in sources}
    print(f"grader batch --jobs {args.jobs}: {ours_s:.1f} s "
          f"({ours_s / len(sources):.2f} s per student)")

    course = nbgrader_course(work)
    released = nbformat.read(course / "release" / TOPIC / f"{TOPIC}.ipynb", as_version=4)
    for student, text in sources.items():
        path = course / "submitted" / student / TOPIC / f"{TOPIC}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(as_notebook(released, text), path)
    nb_s = _nbgrader(course, "autograde", TOPIC)
    theirs = nbgrader_scores(course)
    print(f"nbgrader autograde: {nb_s:.1f} s ({nb_s / len(sources):.2f} s per student)")

    differ = {s: (ours[s], theirs.get(s)) for s in sources if theirs.get(s) != ours[s]}
    ratio = nb_s / ours_s
    print(f"ratio: ours is {ratio:.1f}x faster (target {RATIO_TARGET:.0f}x); "
          f"{len(sources) - len(differ)}/{len(sources)} students scored the same by both")
    for student, (a, b) in differ.items():
        print(f"  {student}: grader {a:g}, nbgrader {b}")
    course_total = load_course().topic(TOPIC).points
    print(f"class mean: {sum(ours.values()) / len(ours):.1f}/{course_total:g}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

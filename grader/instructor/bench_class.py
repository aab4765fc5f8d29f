"""`make bench`, second part: one class graded three ways, the same tests on every side.

A class of softmax submissions in a realistic mix (the reference, correct solutions written
differently, contract mistakes, untouched stubs, one that hangs, one that crashes the process)
is graded on this machine by:

- ours: `python -m grader batch` (parallel, `--jobs`, one torch import per run, the sandbox);
- per-student pytest: a fresh `python -m pytest tests/public/test_softmax.py
  tests/hidden/test_softmax.py --submission DIR -q` per student, one after another, as a
  per-student CI job runs it (our plugin and sandbox; `grader.instructor.bench_pytest`);
- nbgrader as an nbgrader course normally runs: the released notebook with the same tests as
  plain cells in the student's kernel, no sandbox, `nbgrader autograde` (one kernel per
  notebook, sequential; `grader.instructor.bench_nbgrader`), with nbgrader's own Execute
  timeout unless `--nbgrader-timeout` says otherwise.

The bench checks that the three grade the same tests with the same points ("same N tests (M
points) on every side", exit 1 otherwise), prints the times and the ratios to ours, and
compares every student's score: a difference that is not one a plain cell must make (a
change to an argument in place or a forbidden call it cannot see, a hang or a crash handled
differently) fails the bench. The overhead of grading beyond the test compute itself is
`python -m grader.instructor.bench`'s figure.

The mix comes from the kit's own variants (`tests/kit/variants_softmax.py`), so this runs in
a checkout of the kit, not in a student release.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.course import KIT_ROOT, load_course
from grader.instructor import bench_nbgrader, bench_pytest
from grader.instructor.batch import student_dir
from grader.instructor.bench_nbgrader import FAILED_NOTEBOOK, TIMEOUT_ERROR, CellResult
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


# --------------------------------------------------------------------------- each side's grades

# Per student: test function -> (score, max score, how its cases ended, what went wrong).
Graded = dict[str, tuple[float, float, set[str], str]]
# What a side grades: test function -> (its cases, sorted, and its points).
Tests = dict[str, tuple[tuple[str, ...], float]]


def function_of(test_name: str) -> str:
    return test_name.split("[", 1)[0]


def by_function(records: list[dict]) -> Graded:
    graded: Graded = {}
    for r in records:
        score, most, outcomes, message = graded.get(function_of(r["name"]), (0.0, 0.0, set(), ""))
        graded[function_of(r["name"])] = (score + r["score"], most + r["max_score"],
                                          outcomes | {r["outcome"]}, message or r["message"])
    return graded


def tests_of(records: dict[str, list[dict]]) -> Tests:
    """What a side graded over the class: each test function's cases and points."""
    points = {r["name"]: r["max_score"] for rs in records.values() for r in rs}
    tests: Tests = {}
    for name in sorted(points):
        cases, total = tests.get(function_of(name), ((), 0.0))
        tests[function_of(name)] = ((*cases, name), total + points[name])
    return tests


def ours_records(out: Path, students: list[str]) -> dict[str, list[dict]]:
    records = {}
    for s in students:
        report = json.loads((student_dir(out, s) / "report.json").read_text())
        records[s] = [t for topic in report["topics"] for t in topic["tests"]]
    return records


def nbgrader_graded(cells: dict[str, CellResult]) -> Graded:
    return {f: (c.score, c.max_score, {"passed" if not c.error else c.error.split(":")[0]},
                c.error) for f, c in cells.items()}


def plain_course(work: Path, tests: list[bench_nbgrader.PlainTest], timeout: int) -> Path:
    """The plain nbgrader course, assignment generated, from the released source notebook."""
    release(work / "release")
    course = work / "plain"
    bench_nbgrader.write_plain_course(
        course, work / "release" / "nbgrader" / "source" / TOPIC / f"{TOPIC}.ipynb",
        load_course().topic(TOPIC), tests, timeout)
    _nbgrader(course, "generate_assignment", TOPIC)
    return course


FAILED_STUDENT = re.compile(r"error processing assignment '[^']*' for student '([^']*)'")


def autograde(course: Path) -> tuple[float, set[str]]:
    """(seconds, the students whose notebook autograde failed on): nbgrader goes on after a
    notebook it cannot grade (its kernel died) and exits 1 at the end, naming them."""
    start = time.perf_counter()
    run = run_nbgrader(course, "autograde", TOPIC)
    seconds = time.perf_counter() - start
    failed = set(FAILED_STUDENT.findall(run.stdout + run.stderr))
    if run.returncode != 0 and not failed:
        _check(run, ["nbgrader", "autograde", TOPIC])
    return seconds, failed


def nbgrader_totals(course: Path) -> dict[str, float]:
    """student id -> score, from `nbgrader export`."""
    _nbgrader(course, "export")
    with open(course / "grades.csv", newline="") as f:
        return {row["student_id"]: float(row["raw_score"] or 0) for row in csv.DictReader(f)}


# --------------------------------------------------------------------------- the comparison

WHY_CRASH = ("the kernel died (a crash, os._exit): nbgrader's autograde fails the whole "
             "notebook, 0 points; ours loses only the tests whose worker died")
WHY_HUNG = ("a hang: nbgrader interrupts each cell at its Execute timeout, ours stops the call "
            "at its own time limit, so the tests that ran out of time differ")
WHY_FORBIDDEN = ("a forbidden call the plain cells cannot stop (the student catches the error, "
                 "or reaches it under another name); the sandbox sees it at the dispatcher")
WHY_IN_PLACE = ("changes its argument in place: the sandbox fails the call, a plain cell sees "
                "only the changed tensor, which the test then compares against")


def why_differs(ours: tuple[float, float, set[str], str] | None,
                theirs: tuple[float, float, set[str], str] | None) -> str | None:
    """The reason a plain nbgrader cell legitimately scores a test function differently from
    ours, or None when it should not."""
    if ours is None or theirs is None:
        return None
    outcomes, message = ours[2], ours[3]
    error = theirs[3]
    if error == FAILED_NOTEBOOK or error.startswith("DeadKernelError") or " died (" in message:
        return WHY_CRASH
    if error.startswith(TIMEOUT_ERROR) or "timeout" in outcomes:
        return WHY_HUNG
    if theirs[0] > ours[0]:  # nbgrader gave points ours did not
        if "forbidden" in outcomes:
            return WHY_FORBIDDEN
        if "in place" in message:
            return WHY_IN_PLACE
    return None


def compare(sides: dict[str, Graded]) -> tuple[bool, list[str]]:
    """Whether every difference between the sides' scores of a student is explained, and lines
    that say where they differ and why: pytest must agree with ours exactly (the same plugin and
    sandbox), nbgrader may differ for the reasons `why_differs` knows."""
    ours, pytest_, theirs = sides["grader"], sides["pytest"], sides["nbgrader"]
    lines, explained = [], True
    reasons: dict[str, list[str]] = {}
    for f in sorted(set(ours) | set(pytest_) | set(theirs)):
        o, p, n = ours.get(f), pytest_.get(f), theirs.get(f)
        if o is None or p is None or o[0] != p[0]:
            explained = False
            lines.append(f"    UNEXPLAINED {f}: grader {o and o[0]}, pytest {p and p[0]}")
        if o is None or n is None or o[0] != n[0]:
            reason = why_differs(o, n)
            if reason is None:
                explained = False
                lines.append(f"    UNEXPLAINED {f}: grader {o and (o[0], sorted(o[2]), o[3][:150])}"
                             f", nbgrader {n and (n[0], n[3][:150])}")
            else:
                reasons.setdefault(reason, []).append(f)
    lines += [f"    {reason} ({_tests(fs)})" for reason, fs in reasons.items()]
    return explained, lines


def _tests(functions: list[str], shown: int = 3) -> str:
    more = f" and {len(functions) - shown} more" if len(functions) > shown else ""
    return f"{len(functions)} tests: {', '.join(functions[:shown])}{more}"


def _total(graded: Graded) -> float:
    return sum(g[0] for g in graded.values())


def _count(tests: Tests) -> tuple[int, float]:
    return sum(len(c) for c, _ in tests.values()), sum(p for _, p in tests.values())


@dataclass
class Gradings:
    """The class graded three ways: the times (seconds) and what each side gave."""

    students: list[str]
    seconds: dict[str, float]  # "grader batch", "per-student pytest", "nbgrader"
    ours: dict[str, list[dict]]  # student -> report.json's tests
    per_student: dict[str, list[dict]]  # student -> the plugin's records under pytest
    cells: dict[str, dict[str, CellResult]]  # student -> test function -> nbgrader's cell
    totals: dict[str, float]  # student -> nbgrader export's score
    failed: set[str]  # students whose notebook nbgrader's autograde failed on
    tests: dict[str, Tests]  # side -> what it graded


def grade_class(work: Path, sources: dict[str, str], jobs: int, timeout: int) -> Gradings:
    """Grade the class in `work/class` by batch, per-student pytest and the plain nbgrader
    course (built first, with the students' notebooks, outside the times)."""
    students = list(sources)
    plain_tests = bench_nbgrader.collect(TOPIC)
    course = plain_course(work, plain_tests, timeout)
    released = nbformat.read(course / "release" / TOPIC / f"{TOPIC}.ipynb", as_version=4)
    for student, text in sources.items():
        path = course / "submitted" / student / TOPIC / f"{TOPIC}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(as_notebook(released, text), path)

    ours_s = _run([sys.executable, "-m", "grader", "batch", str(work / "class"), "--out",
                   str(work / "ours"), "--topics", TOPIC, "--jobs", str(jobs)], KIT_ROOT)
    ours = ours_records(work / "ours", students)
    pytest_s, per_student = bench_pytest.grade_each(
        TOPIC, {s: work / "class" / s for s in students}, work / "pytest")
    nb_s, failed = autograde(course)
    return Gradings(
        students, {"grader batch": ours_s, "per-student pytest": pytest_s, "nbgrader": nb_s},
        ours, per_student,
        {s: bench_nbgrader.cell_results(course, TOPIC, s, plain_tests) for s in students},
        nbgrader_totals(course), failed,
        {"grader batch": tests_of(ours), "per-student pytest": tests_of(per_student),
         "nbgrader": bench_nbgrader.graded_tests(course, TOPIC, plain_tests, students)})


def same_tests(g: Gradings) -> bool:
    """Print whether every side graded the same tests with the same points (and where not)."""
    first = next(iter(g.tests.values()))
    if all(t == first for t in g.tests.values()):
        n, points = _count(first)
        print(f"tests: same {n} tests ({points:g} points) on every side "
              f"({', '.join(g.tests)}); the topic is worth {load_course().topic(TOPIC).points:g}")
        return True
    print("tests: THE SIDES DO NOT GRADE THE SAME TESTS: " + "; ".join(
        f"{side} {_count(tests)[0]} tests ({_count(tests)[1]:g} points)"
        for side, tests in g.tests.items()))
    for f in sorted({f for tests in g.tests.values() for f in tests}):
        seen = {side: tests.get(f) for side, tests in g.tests.items()}
        if len(set(seen.values())) > 1:
            print(f"  {f}: " + "; ".join(f"{side} {v}" for side, v in seen.items()))
    return False


def print_times(g: Gradings, jobs: int, timeout: int) -> None:
    n = len(g.students)
    ours_s, pytest_s, nb_s = (g.seconds[side] for side in g.tests)
    print(f"grader batch --jobs {jobs}: {ours_s:.1f} s ({ours_s / n:.2f} s per student)")
    print(f"per-student pytest, sequential: {pytest_s:.1f} s ({pytest_s / n:.2f} s per "
          f"student): pytest/ours {pytest_s / ours_s:.1f}x")
    print(f"nbgrader autograde, plain cells: {nb_s:.1f} s ({nb_s / n:.2f} s per student): "
          f"nbgrader/ours {nb_s / ours_s:.1f}x (target {RATIO_TARGET:.0f}x)")
    default_timeout, interrupt = bench_nbgrader.nbgrader_defaults()
    whose = "nbgrader's default" if timeout == default_timeout else "--nbgrader-timeout"
    print(f"  nbgrader's Execute: timeout {timeout} s per cell ({whose}), interrupt_on_timeout "
          f"{interrupt} (nbgrader's default); the kit's released course runs no Execute (it "
          "grades in the sandbox)")
    timed_out = sum(c.error.startswith(TIMEOUT_ERROR) for cs in g.cells.values()
                    for c in cs.values())
    if timed_out:
        print(f"  {timed_out} cells ran into that timeout: about {timed_out * timeout} s of "
              "nbgrader's time")
    if g.failed:
        print(f"  autograde failed on {len(g.failed)} notebook(s), as nbgrader does when the "
              f"kernel dies: {', '.join(sorted(g.failed))}")


def same_scores(g: Gradings) -> bool:
    """Print how the sides scored each student where they differ, and the class means; False
    when a difference is not one a plain cell makes (or the bench misread nbgrader)."""
    ok, same, lines = True, 0, []
    means = dict.fromkeys(("grader", "pytest", "nbgrader"), 0.0)
    for s in g.students:
        sides = {"grader": by_function(g.ours[s]), "pytest": by_function(g.per_student[s]),
                 "nbgrader": nbgrader_graded(g.cells[s])}
        scores = {side: _total(graded) for side, graded in sides.items()}
        for side, score in scores.items():
            means[side] += score / len(g.students)
        if abs(g.totals.get(s, 0.0) - scores["nbgrader"]) > 1e-9:
            ok = False
            lines.append(f"  {s}: nbgrader's export says {g.totals.get(s)}, its cells "
                         f"{scores['nbgrader']:g}: the bench misreads nbgrader")
        if len(set(scores.values())) == 1:
            same += 1
            continue
        explained, why = compare(sides)
        ok &= explained
        lines.append(f"  {s}: " + ", ".join(f"{side} {v:g}" for side, v in scores.items()))
        lines += why
    points = _count(next(iter(g.tests.values())))[1]
    print(f"scores: {same}/{len(g.students)} students scored the same on every side; class "
          "mean: " + ", ".join(f"{side} {m:.1f}" for side, m in means.items())
          + f" (of {points:g})")
    print("\n".join(lines))
    return ok


def main(argv: list[str] | None = None) -> int:
    default_timeout, _ = bench_nbgrader.nbgrader_defaults()
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.bench_class",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", help="folder to keep the class and the gradings in")
    parser.add_argument("--nbgrader-timeout", type=int, default=default_timeout,
                        help="nbgrader's Execute.timeout, seconds per cell (default: "
                             f"nbgrader's own, {default_timeout})")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="torchdrill-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = class_sources(args.students)
    for student, text in sources.items():
        (work / "class" / student).mkdir(parents=True, exist_ok=True)
        (work / "class" / student / f"{TOPIC}.py").write_text(text)
    print(f"class: {len(sources)} {TOPIC} submissions in {work / 'class'}; "
          f"{os.cpu_count()} cores (times are wall clock on this machine: noisy when it is "
          "shared)")
    gradings = grade_class(work, sources, args.jobs, args.nbgrader_timeout)
    ok = same_tests(gradings)
    print_times(gradings, args.jobs, args.nbgrader_timeout)
    ok &= same_scores(gradings)
    print("every difference is one a plain cell makes" if ok else "BENCH FAILED: see above")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

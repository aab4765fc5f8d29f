"""`make bench` runs and prints every figure it promises (the figures themselves are not
asserted: speed targets live in the bench, not in timed tests)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.kit.variants import KIT_ROOT


def test_bench_prints_suite_time_and_grading_costs():
    run = subprocess.run([sys.executable, "-m", "grader.instructor.bench", "--rounds", "1",
                          "--topics", "tensor_ops"], cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^tensor_ops +[\d.]+ +[\d.]+ +-?\d+ +(\d+)/\1$", out, re.M), out
    fixed = re.search(r"once per submission: (\d+) ms \(test session (\d+) ms, worker start "
                      r"(\d+) ms, reports (\d+) ms\)", out)
    assert fixed, out
    parts = [int(x) for x in fixed.groups()]
    assert parts[1] > 0 and parts[2] > 0 and abs(parts[0] - sum(parts[1:])) <= 2, out
    trip = re.search(r"every call into student code: ([\d.]+) ms.*\n.*\(([\d.]+) ms of it", out)
    assert trip and 0 < float(trip.group(2)) and 0 < float(trip.group(1)), out


def test_bench_prints_what_the_similarity_report_costs():
    run = subprocess.run([sys.executable, "-m", "grader.instructor.bench_similarity",
                          "--students", "20"], cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^similarity: 20 students x \d+ topics in [\d.]+ s \(target \d+ s\); \d+ "
                     r"pairs at the threshold$", run.stdout, re.M), run.stdout


def test_bench_class_grades_the_same_tests_on_every_side():
    """Two students (the reference and a correct variant): batch, per-student pytest and the
    plain-cell nbgrader course grade the same tests and give the same scores."""
    run = subprocess.run([sys.executable, "-m", "grader.instructor.bench_class", "--students",
                          "2", "--jobs", "1"], cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^tests: same \d+ tests \([\d.]+ points\) on every side", out, re.M), out
    assert re.search(r"^per-student pytest, sequential: [\d.]+ s .*pytest/ours [\d.]+x$", out,
                     re.M), out
    assert re.search(r"^nbgrader autograde, plain cells: [\d.]+ s .*nbgrader/ours [\d.]+x "
                     r"\(target 20x\)$", out, re.M), out
    assert re.search(r"nbgrader's Execute: timeout \d+ s per cell", out), out
    assert "scores: 2/2 students scored the same on every side" in out, out


def test_bench_grade_floor_is_the_longer_of_the_import_chain_and_the_cpu_per_core():
    """bench_grade's floor of a reference grade: the template's chain of imports, or all its
    processes' CPU spread over the cores; the CPU is read from /proc/stat and grows."""
    from grader.instructor.bench_grade import busy_cpu_s, floor_s

    assert floor_s(2.8, 12.0, 2) == 6.0
    assert floor_s(2.8, 4.0, 2) == 2.8
    before = busy_cpu_s()
    if before is None:
        return  # no /proc/stat: the bench prints no floor
    sum(range(5_000_000))  # about 0.1 s of this process's CPU: several clock ticks
    assert busy_cpu_s() > before


def test_bench_grade_loops_each_function_after_its_docstring():
    """The looping softmax the bench grades: an endless loop as each named function's first
    statement, after its docstring, and nowhere else."""
    from grader.instructor.bench_grade import LOOP, looping

    source = 'def f(x):\n    """Doc."""\n    return x\n\n\ndef g(x):\n    return x\n'
    looped = looping(source, {"g"})
    assert looped == source.replace("def g(x):\n", "def g(x):\n" + LOOP)
    everywhere = looping(source)
    assert everywhere.count(LOOP) == 2 and '"""Doc."""\n' + LOOP in everywhere

"""Time that fits the work: a test's calls get a budget from the reference's measured time, an
endless loop costs that budget (not the per-call limit), a module that hangs when imported
costs one per-call limit for its whole topic, and a test missing from the measured times is found by
`sync --check`. Hostile submissions are built in temporary folders."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import pytest
import torch

import grader.grade as grade_module
from grader.budgets import budget_of, key_of, reference_time, unmeasured
from grader.course import load_course
from grader.grade import grade
from grader.instructor.sync import suite_files
from tests.kit.students import student_of
from tests.kit.variants import KIT_ROOT, replace_definitions
from tests.kit.variants_softmax import MISTAKES

pytestmark = pytest.mark.heavy(40)  # rough seconds; see tests/kit/conftest.py

COURSE = load_course()
REFERENCE = (KIT_ROOT / "solutions" / "softmax.py").read_text()
LOOP = "    while True:\n        pass\n"


def looping_everywhere(source: str) -> str:
    """`source` with an endless loop as the first statement of every top-level function."""
    return re.sub(r'(\ndef [^\n]*:\n(?:    """(?:.|\n)*?"""\n)?)', lambda m: m.group(1) + LOOP,
                  source)


def test_the_budget_is_the_reference_time_times_the_multiplier_at_least_the_floor():
    floor, multiplier = COURSE.limits["test_floor_s"], COURSE.limits["test_multiplier"]
    assert budget_of(COURSE, 0.001) == floor
    assert budget_of(COURSE, 10.0) == pytest.approx(10.0 * multiplier)
    assert budget_of(COURSE, None) is None  # never measured: the per-call limit alone


def test_every_test_has_a_reference_time():
    assert unmeasured(suite_files()) == []
    # the slowest reference test (training on MNIST) gets far more than the floor
    slowest = reference_time(KIT_ROOT / "tests" / "hidden" / "test_mlp.py",
                             "test_train_mlp_learns_mnist")
    assert slowest is not None and budget_of(COURSE, slowest) > 5 * COURSE.limits["test_floor_s"]


def test_a_new_test_without_a_time_is_found(tmp_path):
    suite = tmp_path / "hidden"
    suite.mkdir()
    shutil.copy(KIT_ROOT / "tests" / "hidden" / "reference_times.json", suite)
    source = (KIT_ROOT / "tests" / "hidden" / "test_softmax.py").read_text()
    (suite / "test_softmax.py").write_text(source + "\n\ndef test_brand_new(student):\n    pass\n")
    assert unmeasured([suite / "test_softmax.py"]) == [
        key_of(suite / "test_softmax.py", "test_brand_new")]


def test_an_endless_loop_costs_the_test_budget_not_the_call_limit(tmp_path):
    """Every softmax function loops: each function's first timeout comes after its test's
    budget (1 s), not call_timeout_s (20 s); its second after a quarter of that; after that it
    is not called again."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "softmax.py").write_text(looping_everywhere(REFERENCE))
    report = grade(tmp_path / "sub", ["softmax"], "all")
    tests = report["topics"][0]["tests"]
    assert report["score"] == 0 and all(t["outcome"] == "timeout" for t in tests), tests
    waits = [float(m) for t in tests for m in re.findall(r"did not finish within ([\d.]+) s",
                                                        t["message"])]
    functions = {name for name in re.findall(r"^def (\w+)", REFERENCE, re.M)}
    assert waits and max(waits) <= COURSE.limits["test_floor_s"], waits
    assert len(waits) <= 2 * len(functions), waits  # two timeouts per function at most
    assert sum(waits) <= 1.25 * COURSE.limits["test_floor_s"] * len(functions) + 0.01


def test_a_module_that_hangs_when_imported_costs_one_limit_for_its_topic(tmp_path):
    (tmp_path / "softmax.py").write_text("while True:\n    pass\n" + REFERENCE)
    with student_of(tmp_path, "softmax", call_timeout=1) as student:
        session = student._session
        X = torch.randn(2, 3)
        for i, function in enumerate(["softmax", "log_softmax", "softmax", "logsumexp"]):
            session.begin_test(f"t{i}", 0.5)
            with pytest.raises(Exception, match="importing your softmax module did not finish"):
                getattr(student, function)(X)
        assert session.generation == 1  # one worker, killed once: no import was tried again


def test_parallel_sessions_give_the_same_report(tmp_path):
    """Topics graded in forked sessions (jobs=2) score what one session scores, test by test."""
    topics = ["softmax", "cross_entropy", "tensor_ops"]
    sub = tmp_path / "sub"
    sub.mkdir()
    for t in topics:  # a mistake in one, the reference in the others
        shutil.copy(KIT_ROOT / "solutions" / f"{t}.py", sub)
    (sub / "softmax.py").write_text(replace_definitions(REFERENCE, MISTAKES[0].source))

    def outcomes(report: dict) -> list[tuple]:
        return [(tp["name"], t["name"], t["score"], t["outcome"], t["message"])
                for tp in report["topics"] for t in tp["tests"]]

    one = grade(sub, topics, "all", jobs=1)
    two = grade(sub, topics, "all", jobs=2, out_dir=tmp_path / "out")
    assert outcomes(two) == outcomes(one)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["score"] == one["score"]


def test_a_course_on_several_threads_forks_no_session(tmp_path, monkeypatch):
    """OpenMP is not fork-safe: a session forked after its parent ran a parallel operation
    hangs on its first (seen: the bench's threads = cores row, in libgomp). On more than one
    thread every topic is graded in this process, whatever `jobs` says."""
    sub = tmp_path / "sub"
    sub.mkdir()
    for t in ("tensor_ops", "softmax"):
        shutil.copy(KIT_ROOT / "solutions" / f"{t}.py", sub)

    def no_fork(*args, **kwargs):
        raise AssertionError("a session was forked on a course of 2 threads")

    monkeypatch.setattr(grade_module, "Forked", no_fork)
    course = dataclasses.replace(COURSE, limits={**COURSE.limits, "threads": 2})
    try:
        report = grade(sub, ["tensor_ops", "softmax"], "public", course=course, jobs=2)
    finally:
        torch.set_num_threads(1)
    assert report["score"] == report["max_score"] > 0


def test_a_parallel_grade_past_its_budget_is_stopped_with_every_test(tmp_path):
    """The budget stops forked sessions too: every test of every share is lost as stopped,
    and no process of the run is left."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "softmax.py").write_text(looping_everywhere(REFERENCE))
    shutil.copy(KIT_ROOT / "solutions" / "tensor_ops.py", sub)
    course = COURSE.with_call_timeout(60)  # no test budgets: each call may take 60 s
    before = _children()
    report = grade(sub, ["tensor_ops", "softmax"], "all", course=course, jobs=2, timeout_s=4)
    tests = [t for tp in report["topics"] for t in tp["tests"]]
    assert {tp["name"] for tp in report["topics"]} == {"tensor_ops", "softmax"}
    assert all(t["outcome"] == "timeout" and "was stopped" in t["message"] for t in tests)
    assert len(tests) > 20  # the tests each session had collected, not one per topic
    assert _children() <= before, "a forked session or its worker outlived the grade"


def _children() -> set[int]:
    """Live child processes of this process."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.add(int(entry))
    return found

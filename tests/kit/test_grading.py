"""End to end through the CLI: the reference scores every point, the stubs score none, the
reports follow the schema, and the same tests run through plain pytest and --in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from grader.course import load_course
from grader.instructor.release import collect_tests
from grader.report.formats import to_markdown
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(120)  # rough seconds; see tests/kit/conftest.py

OUTCOMES = {"passed", "failed", "error", "timeout", "forbidden", "not_implemented"}
COURSE = load_course()
TOPICS = [t.name for t in COURSE.topics if (KIT_ROOT / "solutions" / f"{t.name}.py").exists()]


def grade(path, out, *args) -> dict:
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(path), "--out", str(out),
                          "--topics", ",".join(TOPICS), *args], cwd=KIT_ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def solutions_report(tmp_path_factory):
    return grade(KIT_ROOT / "solutions", tmp_path_factory.mktemp("solutions"))


@pytest.fixture(scope="module")
def exercises_report(tmp_path_factory):
    return grade(KIT_ROOT / "exercises", tmp_path_factory.mktemp("exercises"))


def test_solutions_score_every_point(solutions_report):
    lost = [(t["name"], t["message"]) for topic in solutions_report["topics"]
            for t in topic["tests"] if t["outcome"] != "passed"]
    assert lost == []
    assert solutions_report["score"] == solutions_report["max_score"] > 0
    assert [t["name"] for t in solutions_report["topics"]] == TOPICS
    assert not solutions_report["flags"]


def not_counted(report: dict, topic: str | None = None) -> float:
    """Points of the tests this machine skipped (GPU tests without CUDA)."""
    return sum(t["points"] for t in report["not_counted"] if topic in (None, t["topic"]))


def test_topic_maxima_match_course_toml(solutions_report):
    for topic in solutions_report["topics"]:
        assert (topic["max_score"] + not_counted(solutions_report, topic["name"])
                == COURSE.topic(topic["name"]).points), topic["name"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the report without CUDA")
def test_gpu_tests_are_reported_as_not_counted_without_cuda(solutions_report):
    skipped = solutions_report["not_counted"]
    gpu = {(topic, t.name) for topic, tests in collect_tests(TOPICS, "counted").items()
           for t in tests if t.gpu}
    assert skipped and {(t["topic"], t["name"]) for t in skipped} == gpu
    assert all("CUDA" in t["reason"] for t in skipped)
    total = not_counted(solutions_report)
    assert f"Not counted: {len(skipped)} tests ({total:g} points)" in to_markdown(solutions_report)


def test_exercises_score_zero(exercises_report):
    assert exercises_report["score"] == 0
    outcomes = {t["outcome"] for topic in exercises_report["topics"] for t in topic["tests"]}
    assert outcomes == {"not_implemented"}
    assert (exercises_report["max_score"] + not_counted(exercises_report)
            == sum(COURSE.topic(t).points for t in TOPICS))


def test_report_schema(solutions_report, exercises_report):
    for report in (solutions_report, exercises_report):
        assert set(report) == {"submission", "kit_version", "graded_at", "isolation", "score",
                               "max_score", "topics", "flags", "not_counted",
                               "files_not_graded", "environment", "late"}
        assert report["files_not_graded"] == []  # every file of solutions/ is a topic
        for topic in report["topics"]:
            assert set(topic) == {"name", "title", "score", "max_score", "state", "tests"}
            assert topic["score"] == sum(t["score"] for t in topic["tests"])
            for t in topic["tests"]:
                assert set(t) - {"curve"} == {"name", "visibility", "score", "max_score",
                                              "outcome", "message", "mistake", "hint",
                                              "duration_s"}
                assert t["outcome"] in OUTCOMES and t["visibility"] in {"public", "hidden"}
                assert t["hint"], f"{t['name']} has no docstring to use as a hint"
    assert {t["state"] for t in solutions_report["topics"]} == {"attempted"}
    assert {t["state"] for t in exercises_report["topics"]} == {"stub"}


def test_all_report_files_written(tmp_path):
    grade(KIT_ROOT / "exercises", tmp_path, "--suite", "public")
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md", "report.html",
                                                    "results.json"}
    gradescope = json.loads((tmp_path / "results.json").read_text())
    assert gradescope["score"] == 0 and gradescope["tests"]


def test_runtime_and_source_flags(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "softmax.py").write_text(
        "import torch\nimport torch.nn.functional as F\n\n"
        "def softmax(X):\n    return F.softmax(X, dim=1)\n")
    report = grade(sub, tmp_path / "out", "--topics", "softmax")
    flags = {(f["function"], f["call"], f["how"]) for f in report["flags"]}
    assert ("softmax", "F.softmax", "runtime") in flags
    assert ("softmax", "F.softmax", "source") in flags
    outcomes = {t["outcome"] for t in report["topics"][0]["tests"] if "softmax" in t["name"]}
    assert "forbidden" in outcomes and "passed" not in outcomes


def test_plain_pytest_grades_too():
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/public/test_softmax.py",
                          "--submission", "solutions", "-q", "-p", "no:cacheprovider"],
                         cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/public/test_softmax.py",
                          "--submission", "exercises", "-q", "-p", "no:cacheprovider"],
                         cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 1


def test_in_process_gives_the_same_scores(tmp_path, solutions_report):
    """--in-process (for a student's debugger) sees what the sandboxed worker sees, also where
    a test reads a net's state before and after the student's code trained it in place."""
    report = grade(KIT_ROOT / "solutions", tmp_path, "--in-process")
    lost = [(t["name"], t["message"]) for topic in report["topics"] for t in topic["tests"]
            if t["outcome"] != "passed"]
    assert lost == []
    assert [(t["name"], t["score"]) for t in report["topics"]] == [
        (t["name"], t["score"]) for t in solutions_report["topics"]]
    assert report["isolation"] == ["in-process"]


def test_installed_pytest_plugins_do_not_change_scores(tmp_path):
    """A pytest plugin installed where the grader runs (here one that deselects every test,
    as a randomising or filtering plugin could) is not loaded into a grading run."""
    site = tmp_path / "site"
    (site / "sabotage-1.0.dist-info").mkdir(parents=True)
    (site / "sabotage-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sabotage\nVersion: 1.0\n")
    (site / "sabotage-1.0.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\nsabotage = sabotage_plugin\n")
    (site / "sabotage_plugin.py").write_text(
        "def pytest_collection_modifyitems(config, items):\n    items.clear()\n")
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "solutions", "--out",
                          str(tmp_path / "out"), "--topics", "tensor_ops"], cwd=KIT_ROOT,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["topics"][0]["tests"], "the installed plugin deselected the tests"
    assert report["score"] == report["max_score"]

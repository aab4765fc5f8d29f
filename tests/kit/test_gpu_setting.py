"""course.toml's [gpu] tests, each setting in the grader, the release and the cells of checks.

"where-cuda" (the default): the grader counts GPU tests only where CUDA exists; the nbgrader
notebooks leave them out, so nbgrader's maximum is the grader's on a machine without CUDA.
"counted": they are in every maximum, the notebooks' too; without CUDA a student's `grade`
skips them and says loudly that the course counts them, `grader batch` refuses to start,
autograde refuses the notebook and its cell of checks fails (never a silent 0). "omitted":
deselected everywhere, in no maximum and no notebook. The course's topic points are the sum of
all its tests', GPU tests included, whichever the setting (tests/kit/test_course.py).
Settings are switched with a course file of our own (TORCHDRILL_COURSE) or a Course object.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch
from traitlets.config import Config

from grader import grade as grade_module
from grader import nbcheck
from grader.course import GPU_SETTINGS, GPU_TESTS_ENV, load_course
from grader.instructor import commands
from grader.instructor import release as release_module
from grader.instructor.batch import gpu_refusal
from grader.instructor.nbchecks import REPORT_FILE, counted_without_cuda
from grader.instructor.nbgrader_course import solution_notebook, write_nbgrader_course
from grader.instructor.nbsteps import AddGraderReport, GradeInSandbox
from grader.instructor.release import collect_tests
from grader.notebooks import WHOLE_TOPIC, group_of, public_names
from grader.plugin import Grading
from grader.report.formats import to_markdown
from grader.stopped import TestPlan, stopped_report
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(100)  # rough seconds; see tests/kit/conftest.py

TOPIC = "gpu_training"
COURSE = load_course()
CUDA = torch.cuda.is_available()
PY = sys.executable
no_cuda = pytest.mark.skipif(CUDA, reason="what happens on a machine without CUDA")


def course_file(folder: Path, setting: str | None) -> Path:
    """A copy of course.toml whose [gpu] tests is `setting` (None: no [gpu] section)."""
    text = re.sub(r"(?ms)^\[gpu\]\n.*?(?=^\[|\Z)", "", (KIT_ROOT / "course.toml").read_text())
    if setting is not None:
        text += f'\n[gpu]\ntests = "{setting}"\n'
    path = folder / f"course-{setting}.toml"
    path.write_text(text)
    return path


def env_for(folder: Path, setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != GPU_TESTS_ENV}
    return {**env, "TORCHDRILL_COURSE": str(course_file(folder, setting))}


@pytest.fixture(scope="module")
def all_tests() -> list:
    """Every test of the topic, GPU tests marked."""
    return collect_tests([TOPIC], "counted")[TOPIC]


@pytest.fixture(scope="module")
def gpu_points(all_tests) -> float:
    points = sum(t.points for t in all_tests if t.gpu)
    assert points > 0 and len([t for t in all_tests if t.gpu]) >= 3
    return points


# --------------------------------------------------------------------------- course.toml


def test_the_course_reads_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(GPU_TESTS_ENV, raising=False)
    assert COURSE.gpu_tests in GPU_SETTINGS
    for setting in GPU_SETTINGS:
        assert load_course(course_file(tmp_path, setting)).gpu_tests == setting
    assert load_course(course_file(tmp_path, None)).gpu_tests == "where-cuda"  # the default
    with pytest.raises(ValueError, match=r"\[gpu\] tests in .*course-everywhere.toml"):
        load_course(course_file(tmp_path, "everywhere"))
    monkeypatch.setenv(GPU_TESTS_ENV, "omitted")  # what nbcheck sets for the grader it runs
    assert load_course(course_file(tmp_path, "counted")).gpu_tests == "omitted"


# --------------------------------------------------------------------------- the grader's maximum


def planned(setting: str, tmp_path: Path) -> TestPlan:
    """The tests a grading run of the topic counts (and those it does not), as the grader
    plans them (`grader.stopped.TestPlan`: the plugin's own rules), under `setting`."""
    course = load_course(course_file(tmp_path, setting))
    grading = Grading(KIT_ROOT / "solutions", course, in_process=True)
    plan = TestPlan()
    try:
        code = pytest.main([*map(str, grade_module.test_files([TOPIC], "all")), "--collect-only",
                            f"--rootdir={KIT_ROOT}", "-c", str(KIT_ROOT / "pyproject.toml"),
                            "-p", "no:cacheprovider", "-p", "no:terminal"],
                           plugins=[grading, plan])
    finally:
        grading.close()
    assert code == pytest.ExitCode.OK
    return plan


@pytest.mark.parametrize("setting", GPU_SETTINGS)
def test_the_notebook_and_the_grader_agree_on_the_maximum(setting, tmp_path, gpu_points):
    """Per setting: the release's notebook points and the grader's maximum on this machine,
    equal wherever grading is allowed (everywhere but "counted" without CUDA, which refuses)."""
    points = COURSE.topic(TOPIC).points
    tests = collect_tests([TOPIC], setting)[TOPIC]
    source = (KIT_ROOT / "solutions" / f"{TOPIC}.py").read_text()
    nb = solution_notebook(COURSE.topic(TOPIC), source, tests, setting)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    notebook_max = sum(c.metadata.nbgrader["points"] for c in cells)
    counted = setting == "counted"
    assert notebook_max == (points if counted else points - gpu_points)
    assert nb.metadata[nbcheck.GPU_METADATA_KEY] == {
        "tests": setting, "points": gpu_points if counted else 0}
    functions = public_names(source)
    topic_cell = next(c for c in cells if c.metadata.nbgrader["grade_id"] == "test__topic")
    assert topic_cell.metadata.nbgrader["points"] == sum(
        t.points for t in tests if group_of(t.name, functions) == WHOLE_TOPIC)

    plan = planned(setting, tmp_path)
    ours = sum(r["max_score"] for r in plan.records)
    skipped = sum(t["points"] for t in plan.not_counted)
    if setting == "omitted":
        assert (ours, skipped) == (points - gpu_points, 0)
    else:
        assert (ours, skipped) == ((points, 0) if CUDA else (points - gpu_points, gpu_points))
    if setting == "omitted" or (setting == "where-cuda" and not CUDA) or (counted and CUDA):
        assert ours == notebook_max  # where this machine's grades and nbgrader's must agree
    elif setting == "where-cuda":  # with CUDA: the grader counts what no notebook can
        assert ours == notebook_max + gpu_points
    else:  # "counted" without CUDA: batch and autograde refuse (below), never a silent 0
        assert ours == notebook_max - gpu_points


@pytest.mark.parametrize("setting", ["counted", "omitted"])
def test_a_grading_run_under_the_setting(setting, tmp_path):
    """`python -m grader grade` under the setting (where-cuda: tests/kit/test_grading.py):
    "omitted" runs no GPU test and lists none; "counted" without CUDA skips them and says,
    in the report and on the terminal, that the course counts them."""
    out = tmp_path / "out"
    run = subprocess.run(
        [PY, "-m", "grader", "grade", "solutions", "--topics", TOPIC, "--out", str(out), "-k",
         "gpu_try_gpu_finds or gpu_evaluate_on or gpu_train_on or no_hard_coded"],
        cwd=KIT_ROOT, env=env_for(tmp_path, setting), capture_output=True, text=True,
        timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    names = [t["name"] for topic in report["topics"] for t in topic["tests"]]
    assert "test_no_hard_coded_gpu" in names
    if setting == "omitted":
        assert names == ["test_no_hard_coded_gpu"] and report["not_counted"] == []
        assert report["max_score"] == report["score"] == 1
    elif not CUDA:
        assert len(report["not_counted"]) == 3 and report["max_score"] == 1
        assert all("COUNTS ITS GPU TESTS" in t["reason"] for t in report["not_counted"])
        assert "COUNTS ITS GPU TESTS" in " ".join(run.stdout.split())  # the table wraps
    else:
        assert report["not_counted"] == [] and report["max_score"] == 7


# --------------------------------------------------------------------------- the release


def test_the_release_says_which_setting(tmp_path, all_tests):
    for setting in GPU_SETTINGS:
        root = tmp_path / setting
        course = replace(COURSE, gpu_tests=setting)
        tests = [t for t in all_tests if setting == "counted" or not t.gpu]
        write_nbgrader_course(root, course, [COURSE.topic(TOPIC)], {TOPIC: tests})
        readme = (root / "README.md").read_text()
        assert f'[gpu] tests = "{setting}"' in readme
        assert "make nbgrader" in readme and "-m grader nbgrader" in readme
        config = (root / "nbgrader_config.py").read_text()
        assert "grader.instructor.nbsteps.GradeInSandbox" in config
        assert "grader.instructor.nbsteps.AddGraderReport" in config
        nb = nbformat.read(root / "source" / TOPIC / f"{TOPIC}.ipynb", as_version=4)
        assert nb.metadata[nbcheck.GPU_METADATA_KEY]["tests"] == setting
    said = {setting: " ".join((tmp_path / setting / "README.md").read_text().split())
            for setting in GPU_SETTINGS}
    assert "autograde on a machine with CUDA" in said["counted"]
    assert f"{TOPIC}: 6 points" in said["counted"]
    assert "not part of the course" in said["omitted"]
    assert 'set `[gpu] tests = "counted"`' in said["where-cuda"]


# --------------------------------------------------------------------------- the cells of checks


def notebook_bytes(setting: str | None) -> bytes:
    nb = nbformat.v4.new_notebook(metadata={"torchdrill": {"topic": TOPIC, "functions": []}})
    if setting is not None:
        nb.metadata[nbcheck.GPU_METADATA_KEY] = {"tests": setting, "points": 6}
    return nbformat.writes(nb).encode()


def test_the_checks_grade_as_the_notebook_was_released(tmp_path, monkeypatch):
    """The grader that nbcheck runs counts GPU tests as the notebook's cells do: "counted"
    (and a notebook released before the setting, whose cells held them), or left out."""
    assert nbcheck.released_gpu_tests(notebook_bytes("counted")) == "counted"
    assert nbcheck.released_gpu_tests(notebook_bytes(None)) == "counted"
    assert nbcheck.released_gpu_tests(notebook_bytes("where-cuda")) == "omitted"
    assert nbcheck.released_gpu_tests(notebook_bytes("omitted")) == "omitted"
    seen = {}

    def fake_run(args, **kwargs):
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(nbcheck.subprocess, "run", fake_run)
    monkeypatch.setenv(GPU_TESTS_ENV, "counted")  # the instructor's own: the notebook's wins
    with pytest.raises(RuntimeError, match="could not grade"):
        nbcheck._grade(TOPIC, f"{TOPIC}.ipynb", notebook_bytes("where-cuda"))
    assert seen[GPU_TESTS_ENV] == "omitted"


def gpu_check_report(skipped: bool) -> dict:
    """A report of the whole-topic cell's tests: one that ran, and the GPU tests (skipped or
    passed)."""
    gpu = [("test_gpu_try_gpu_finds_the_gpus", 1), ("test_gpu_train_on_the_gpu", 3)]
    ran = [("test_no_hard_coded_gpu", 1)] + ([] if skipped else gpu)
    return {"topics": [{"name": TOPIC, "tests": [
        {"name": n, "visibility": "hidden", "score": p, "max_score": p, "outcome": "passed",
         "message": "", "hint": ""} for n, p in ran]}],
        "not_counted": [{"topic": TOPIC, "name": n, "points": p, "reason": "needs a CUDA device"}
                        for n, p in (gpu if skipped else [])]}


@pytest.fixture
def counted_notebook(tmp_path, monkeypatch):
    (tmp_path / f"{TOPIC}.ipynb").write_bytes(notebook_bytes("counted"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nbcheck, "_reports", {})
    return tmp_path


def test_a_counted_gpu_cell_fails_loudly_without_cuda(counted_notebook, monkeypatch):
    monkeypatch.setattr(nbcheck, "_grade", lambda *a: gpu_check_report(skipped=True))
    with pytest.raises(RuntimeError, match="(?s)COUNTS ITS GPU TESTS.*4 points.*autograde on a "
                                           "machine with CUDA"):
        nbcheck.check(TOPIC, None, hidden=True, points=5)
    nbcheck._reports.clear()
    monkeypatch.setattr(nbcheck, "_grade", lambda *a: gpu_check_report(skipped=False))
    assert nbcheck.check(TOPIC, None, hidden=True, points=5) == 5  # on a machine with CUDA


# --------------------------------------------------------------------------- nbgrader's steps


def counted_nb(points: float = 6, setting: str = "counted") -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(metadata={
        nbcheck.GPU_METADATA_KEY: {"tests": setting, "points": points}})


@no_cuda
def test_autograde_refuses_a_notebook_that_counts_gpu_tests_without_cuda(tmp_path):
    """The release's source notebook says it counts GPU tests (what the submission says is
    not asked): refused before anything is graded."""
    source = tmp_path / "source" / TOPIC / f"{TOPIC}.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(nbformat.from_dict({**counted_nb(), "metadata": {
        **counted_nb().metadata, "torchdrill": {"topic": TOPIC, "functions": []}}}), source)
    stale = tmp_path / REPORT_FILE
    stale.write_text("{}")  # brought by a submission
    step = GradeInSandbox(config=Config({"CourseDirectory": {"root": str(tmp_path)}}))
    resources = {"metadata": {"path": str(tmp_path)}, "nbgrader": {
        "assignment": TOPIC, "notebook": TOPIC, "student": "alice", "db_url": "sqlite://"}}
    with pytest.raises(RuntimeError, match="autograde it on a machine with CUDA"):
        step.preprocess(counted_nb(setting="where-cuda"), resources)
    assert not stale.exists()
    assert counted_without_cuda(counted_nb(points=0).metadata) is None  # no GPU tests
    assert counted_without_cuda(counted_nb(setting="where-cuda").metadata) is None
    assert counted_without_cuda(nbformat.v4.new_notebook().metadata) is None


def test_feedback_ends_with_the_graders_report(tmp_path):
    report = stopped_report(COURSE, ["softmax"], "alice", 10, [], [])
    (tmp_path / REPORT_FILE).write_text(json.dumps(report))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    nb, _ = AddGraderReport().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert nb.cells[-1].cell_type == "markdown"
    assert nb.cells[-1].source.endswith(to_markdown(report))
    (tmp_path / REPORT_FILE).unlink()
    nb, _ = AddGraderReport().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert "No report of torchdrill's grader" in nb.cells[-1].source
    (tmp_path / REPORT_FILE).write_text('{"forged": true}')
    nb, _ = AddGraderReport().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert "could not be read" in nb.cells[-1].source and "forged" not in nb.cells[-1].source


# --------------------------------------------------------------------------- grader batch


@no_cuda
def test_batch_refuses_a_course_that_counts_gpu_tests_without_cuda(tmp_path, monkeypatch):
    (tmp_path / "class").mkdir()
    run = subprocess.run([PY, "-m", "grader", "batch", str(tmp_path / "class"), "--out",
                          str(tmp_path / "out")], cwd=tmp_path,
                         env=env_for(tmp_path, "counted"), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2, run.stderr[-3000:]
    assert 'counts its GPU tests ([gpu] tests = "counted"' in run.stderr
    assert "no CUDA device" in run.stderr and f"{TOPIC}: 6 points" in run.stderr
    assert not (tmp_path / "out").exists()
    counted = replace(COURSE, gpu_tests="counted")
    refusal = gpu_refusal(counted, ["softmax"]) or ""
    assert "softmax: " in refusal and TOPIC not in refusal  # the topics to grade, only
    assert gpu_refusal(counted, None, "dask") is None  # the workers grade, not this machine
    monkeypatch.setattr(release_module, "collect_tests",
                        lambda topics, gpu_tests: {t: [] for t in topics})
    assert gpu_refusal(counted, ["softmax"]) is None  # no GPU test to grade
    assert gpu_refusal(replace(COURSE, gpu_tests="where-cuda"), None) is None


# --------------------------------------------------------------------------- grader nbgrader


def test_the_nbgrader_command_finds_its_course(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert commands.course_folder(None) == KIT_ROOT / "release" / "nbgrader"
    (tmp_path / "nbgrader_config.py").write_text("")
    assert commands.course_folder(None) == tmp_path
    assert commands.course_folder("elsewhere") == Path("elsewhere")
    run = subprocess.run([PY, "-m", "grader", "nbgrader", "--course", str(tmp_path / "none"),
                          "generate_assignment", "softmax"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 2 and "not an nbgrader course" in run.stderr
    assert "make release" in run.stderr


def test_make_nbgrader_runs_the_command(tmp_path):
    stamp = tmp_path / "installed"
    stamp.touch()
    dry = subprocess.run(["make", "-n", "nbgrader", f"STAMP={stamp}",
                          "ARGS=generate_assignment softmax"], cwd=KIT_ROOT,
                         capture_output=True, text=True)
    assert ".venv/bin/python -m grader nbgrader --course release/nbgrader generate_assignment " \
           "softmax" in dry.stdout
    usage = subprocess.run(["make", "-s", "nbgrader", f"PY={PY}", f"STAMP={stamp}"],
                           cwd=KIT_ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and 'ARGS="generate_assignment softmax"' in usage.stdout

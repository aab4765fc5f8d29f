"""`python -m grader gradescope` (`make gradescope`): the autograder zip is what Gradescope's
autograder specification asks (setup.sh and run_autograder at its root), holds the grader, the
hidden tests and the course but no solutions, and its run_autograder, run in a simulated
/autograder (a temp folder with source/, submission/ and results/, named by AUTOGRADER_ROOT),
leaves a results.json with the specification's fields. The same run shows the environment
block in every report format and a training curve in report.html. setup.sh installs Python
3.11 and the pinned dependencies on Gradescope's Ubuntu image: it is not run here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from grader.report import formats
from grader.report.environment import course_hash, hidden_tests_hash
from grader.report.formats import to_gradescope
from grader.report.schema import GradescopeResults, Report
from tests.kit.test_schema import validate
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(40)  # rough seconds; see tests/kit/conftest.py

TOPICS = "softmax,optim"
SPEC_TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "visibility",
                  "tags"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def build(out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "gradescope", "--topics", TOPICS,
                           "--out", str(out), *extra], cwd=KIT_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    """The zip, unpacked into a simulated /autograder and run on the reference's files."""
    root = tmp_path_factory.mktemp("gradescope")
    made = build(root / "autograder.zip")
    assert made.returncode == 0, made.stderr
    ag = root / "autograder"
    with zipfile.ZipFile(root / "autograder.zip") as zf:
        zf.extractall(ag / "source")
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    for name in ("setup.sh", "run_autograder"):
        os.chmod(ag / "source" / name, modes[name] & 0o777)
    (ag / "submission").mkdir()
    for topic in TOPICS.split(","):
        shutil.copy(KIT_ROOT / "solutions" / f"{topic}.py", ag / "submission")
    run = subprocess.run([str(ag / "source" / "run_autograder")], cwd=ag, capture_output=True,
                         text=True, timeout=900,
                         env={**os.environ, "AUTOGRADER_ROOT": str(ag),
                              "AUTOGRADER_PYTHON": sys.executable})
    return root, ag, modes, run


def test_the_zip_is_what_gradescope_asks_for(autograded):
    root, _, modes, _ = autograded
    names = set(modes)
    assert {"setup.sh", "run_autograder", "course.toml", "pyproject.toml"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert "tests/hidden/test_softmax.py" in names and "tests/public/test_optim.py" in names
    assert "exercises/softmax.py" in names and "grader/cli.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "grader/instructor/"))
                or "__pycache__" in n]
    setup = (root / "autograder" / "source" / "setup.sh").read_text()
    assert "python3.11" in setup and "torch==2.14.1" in setup and "pip install -e" in setup
    again = build(root / "again.zip")
    assert again.returncode == 0 and (root / "again.zip").read_bytes() == \
        (root / "autograder.zip").read_bytes()


def test_run_autograder_leaves_results_json_by_the_spec(autograded):
    _, ag, _, run = autograded
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads((ag / "results" / "results.json").read_text())
    validate(results, GradescopeResults, "results")
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], int)
    assert isinstance(results["output"], str)
    assert results["visibility"] == "visible" and results["stdout_visibility"] == "hidden"
    tests = results["tests"]
    assert tests and all(set(t) == SPEC_TEST_KEYS for t in tests)
    assert {t["status"] for t in tests} == {"passed"}
    assert results["score"] == pytest.approx(sum(t["max_score"] for t in tests))
    assert results["score"] > 0
    assert all(t["visibility"] in VISIBILITIES and isinstance(t["tags"], list) for t in tests)
    by_suite = {suite: {t["visibility"] for t in tests if suite in t["tags"]}
                for suite in ("public", "hidden")}
    assert by_suite == {"public": {"visible"}, "hidden": {"after_published"}}
    assert {t["tags"][0] for t in tests} == set(TOPICS.split(","))
    numbers = [t["number"] for t in tests]
    assert len(set(numbers)) == len(numbers) and numbers[0] == "1.1"


def test_visibility_follows_course_toml(tmp_path, monkeypatch):
    course, text = tmp_path / "course.toml", (KIT_ROOT / "course.toml").read_text()
    assert 'hidden = "after_published"' in text and 'result = "visible"' in text
    course.write_text(text.replace('hidden = "after_published"', 'hidden = "hidden"')
                      .replace('result = "visible"', 'result = "after_due_date"'))
    monkeypatch.setattr(formats, "COURSE_FILE", course)
    formats.gradescope_visibility.cache_clear()
    try:
        test = {"name": "t", "visibility": "hidden", "score": 1.0, "max_score": 1.0,
                "outcome": "passed", "message": "", "mistake": None, "hint": "",
                "duration_s": 0.1}
        report = {"submission": "s", "kit_version": "0", "graded_at": "", "isolation": [],
                  "score": 1.0, "max_score": 1.0, "flags": [], "topics": [
                      {"name": "softmax", "title": "S", "score": 1.0, "max_score": 1.0,
                       "state": "attempted", "tests": [test, {**test, "visibility": "public"}]}]}
        results = to_gradescope(report)
        assert [t["visibility"] for t in results["tests"]] == ["hidden", "visible"]
        assert results["visibility"] == "after_due_date"
        course.write_text(text.replace('hidden = "after_published"', 'hidden = "later"'))
        formats.gradescope_visibility.cache_clear()
        with pytest.raises(ValueError, match="hidden = 'later'"):
            to_gradescope(report)
    finally:
        formats.gradescope_visibility.cache_clear()


ENVIRONMENT = ("course ", "Python ", "torch ", "thread", "device ", "TF32", "seeds:", "data:")


def test_the_environment_block_is_in_every_report_format(autograded):
    _, ag, _, run = autograded
    folder = ag / "results" / "report"
    report = json.loads((folder / "report.json").read_text())
    validate(report, Report)
    env = report["environment"]
    # the zip's kit is the repository's: the same hashes a batch's reports show
    assert (env["course_hash"], env["hidden_tests_hash"]) == (course_hash(),
                                                              hidden_tests_hash())
    assert env["threads"] >= 1
    assert env["torch"].startswith("2.") and env["python"].startswith("3.11")
    assert env["device"] and "TF32" in env["tf32"] and "derandomized" in env["seeds"]
    assert "MNIST" in env["data"] or "generated digits" in env["data"]
    shown = {"report.md": (folder / "report.md").read_text(),
             "report.html": (folder / "report.html").read_text(),
             "results.json": json.loads((ag / "results" / "results.json").read_text())["output"],
             "terminal": run.stdout}
    for where, text in shown.items():
        missing = [w for w in (*ENVIRONMENT, env["course_hash"]) if w not in text]
        assert not missing, f"{where} lacks {missing}"


def test_a_training_report_draws_the_curve_beside_the_reference(autograded):
    _, ag, _, _ = autograded
    folder = ag / "results" / "report"
    report = json.loads((folder / "report.json").read_text())
    curves = [t["curve"] for topic in report["topics"] for t in topic["tests"] if "curve" in t]
    (curve,) = curves  # optim's gradient descent on the Rosenbrock function
    series = curve["series"][0]
    assert len(series["yours"]) == len(series["reference"]) == len(curve["x"]) == 51
    assert series["yours"] == pytest.approx(series["reference"])  # the reference's own code
    page = (folder / "report.html").read_text()
    figure = page[page.index('<figure class="curves">'):page.index("</figure>")]
    assert "<svg" in figure and formats.CURVE_COLORS[0] in figure
    assert formats.CURVE_COLORS[1] in figure and "reference" in figure

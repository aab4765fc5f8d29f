"""Grading a class: every student gets reports, junk and misbehaving submissions cost only their
own score, the gradebook and class page are written, a killed run resumes without regrading
finished students, and the same tasks run on a Dask cluster."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.kit.permissive import permissive_env
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(100)  # rough seconds; see tests/kit/conftest.py

SOLUTION = (KIT_ROOT / "solutions" / "softmax.py").read_text()

MISBEHAVING = {
    "hangs": SOLUTION.replace("    X_shifted = X - X.max", "    while True:\n        pass\n"
                              "    X_shifted = X - X.max"),
    "crashes": "import os\n" + SOLUTION.replace("    X_shifted = X - X.max",
                                                "    os.abort()\n"
                                                "    X_shifted = X - X.max"),
    "hogs_memory": SOLUTION.replace("    X_shifted = X - X.max",
                                    "    junk = [bytearray(1 << 30) for _ in range(64)]\n"
                                    "    X_shifted = X - X.max"),
    "floods_output": SOLUTION.replace("    X_shifted = X - X.max",
                                      "    print('spam' * 1_000_000)\n"
                                      "    X_shifted = X - X.max"),
}


def make_class(root: Path) -> None:
    """A realistic mix: correct, stub, buggy, misbehaving, and junk entries."""
    for name in ("correct", "correct_too"):
        shutil.copytree(KIT_ROOT / "solutions", root / name)
    shutil.copytree(KIT_ROOT / "exercises", root / "stub")
    (root / "buggy").mkdir()
    (root / "buggy" / "softmax.py").write_text(SOLUTION.replace(
        "X_shifted = X - X.max(dim=1, keepdim=True).values", "X_shifted = X"))
    for name, source in MISBEHAVING.items():
        (root / name).mkdir()
        (root / name / "softmax.py").write_text(source)
    with zipfile.ZipFile(root / "zipped.zip", "w") as zf:
        zf.writestr("my_submission/softmax.py", SOLUTION)
        zf.writestr("__MACOSX/my_submission/._softmax.py", b"\x00\x05junk")
    (root / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (root / "empty").mkdir()
    (root / "binary").mkdir()
    (root / "binary" / "softmax.py").write_bytes(bytes(range(256)) * 4)


# Every misbehaviour sits in `softmax`: its tests (and softmax_regression's) meet it, those of
# logsumexp pass; the rest of the suite would only make the class slower to grade.
OPTIONS = ["--topics", "softmax", "--call-timeout", "3", "-k", "test_softmax_ or test_logsumexp_"]


def batch(root: Path, out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    """`grader batch` on the class, against a course that allows every step outside the source
    allow-list (the student that crashes imports os): the batch's own mechanics are tested."""
    kwargs.setdefault("env", permissive_env(out.parent))
    return subprocess.run([sys.executable, "-m", "grader", "batch", str(root), "--out", str(out),
                           *OPTIONS, *extra], cwd=KIT_ROOT,
                          capture_output=True, text=True, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    make_class(root / "in")
    run = batch(root / "in", root / "out", "--jobs", "2")
    return root, run


def report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / student / "report.json").read_text())


STUDENTS = ["binary", "buggy", "correct", "correct_too", "corrupt", "crashes", "empty",
            "floods_output", "hangs", "hogs_memory", "stub", "zipped"]


def test_every_student_gets_all_reports(graded_class):
    root, run = graded_class
    assert run.returncode == 0, run.stderr[-3000:]
    for student in STUDENTS:
        files = {p.name for p in (root / "out" / "students" / student).iterdir()}
        assert {"report.json", "report.md", "report.html", "results.json"} <= files, student
    names = {t["name"] for t in report(root / "out", "correct")["topics"][0]["tests"]}
    assert names and all(n.startswith(("test_softmax_", "test_logsumexp_")) for n in names), (
        f"-k selected other tests too: {sorted(names)}")


def test_scores_are_each_students_own(graded_class):
    root, _ = graded_class
    out = root / "out"
    full = report(out, "correct")["max_score"]
    assert full > 0
    for student in ("correct", "correct_too", "zipped", "floods_output"):
        assert report(out, student)["score"] == full, student
    for student in ("stub", "corrupt", "empty", "binary"):
        assert report(out, student)["score"] == 0, student
    for student in ("buggy", "hangs", "crashes", "hogs_memory"):
        assert 0 < report(out, student)["score"] < full, student


def test_junk_reports_say_what_was_wrong(graded_class):
    root, _ = graded_class
    out = root / "out"

    def first_message(student):
        return report(out, student)["topics"][0]["tests"][0]["message"]

    assert "not a readable zip" in first_message("corrupt")
    assert "empty" in first_message("empty")
    assert "not UTF-8" in first_message("binary")


def test_gradebook(graded_class):
    root, _ = graded_class
    with open(root / "out" / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == STUDENTS
    assert float(rows["correct"]["softmax"]) == float(rows["correct"]["total"]) > 0
    assert int(rows["hangs"]["timeouts"]) > 0
    assert int(rows["crashes"]["errors"]) > 0
    assert float(rows["correct"]["max_similarity"]) == 1.0  # correct_too handed in the same
    assert float(rows["stub"]["max_similarity"]) == 0.0


def test_class_page(graded_class):
    root, _ = graded_class
    page = (root / "out" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 1
    for text in ("Most-failed tests", "Timeouts and crashes", "hangs", "crashes",
                 'href="students/correct/report.html"', "Similar code",
                 'href="similarity/1.html"'):
        assert text in page
    assert "correct_too" in (root / "out" / "similarity" / "1.html").read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_class_page_renders_in_chromium(graded_class, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    root, _ = graded_class
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1300,16000", f"--screenshot={shot}",
                    (root / "out" / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = mpimg.imread(shot)[..., :3]
    bar = np.array([0x3B, 0x6E, 0xA8]) / 255  # the histograms' bar colour
    painted = (np.abs(pixels - bar).max(axis=-1) < 0.05).sum()
    assert painted > 500, "the score histograms did not render"
    share = np.array([0xD9, 0x82, 0x2B]) / 255  # the similar-code section's bars
    assert (np.abs(pixels - share).max(axis=-1) < 0.05).sum() > 500, "no similarity bars"


def test_killed_batch_resumes_without_regrading(tmp_path, graded_class):
    reference_root, _ = graded_class
    root = tmp_path / "in"
    root.mkdir()
    for student in ("correct", "correct_too", "stub", "buggy", "zipped"):
        src = reference_root / "in" / (student + ".zip" if student == "zipped" else student)
        (shutil.copy if src.is_file() else shutil.copytree)(src, root / src.name)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "grader", "batch", str(root), "--out",
                             str(out), *OPTIONS, "--jobs", "1"], cwd=KIT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=permissive_env(out.parent))
    deadline = time.time() + 300
    # a student is done once their fingerprint is written, after the reports: a kill between
    # the two leaves a report.json that the rerun rightly grades again
    while time.time() < deadline and len(list(out.glob("students/*/.fingerprint"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.parent.name: (p.stat().st_mtime_ns, p.read_text())
                   for p in out.glob("students/*/report.json")
                   if (p.parent / ".fingerprint").is_file()}
    assert 2 <= len(done_before) < 5, "the kill came too late to test resuming"
    run = batch(root, out, "--jobs", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{len(done_before)} unchanged since their report" in run.stderr
    for student, (mtime, text) in done_before.items():
        path = out / "students" / student / "report.json"
        assert path.stat().st_mtime_ns == mtime and path.read_text() == text, student
    for student in ("correct", "correct_too", "stub", "buggy", "zipped"):
        ours, theirs = report(out, student), report(reference_root / "out", student)
        assert strip_volatile(ours) == strip_volatile(theirs), student


def strip_volatile(r: dict) -> dict:
    """A report without its timestamp and timings (the rest must be reproducible)."""
    r = json.loads(json.dumps(r))
    r.pop("graded_at")
    for topic in r["topics"]:
        for t in topic["tests"]:
            t.pop("duration_s")
    return r


def test_dask_executor(tmp_path, graded_class):
    distributed = pytest.importorskip("distributed")
    reference_root, _ = graded_class
    root = tmp_path / "in"
    root.mkdir()
    for student in ("correct", "stub"):
        shutil.copytree(reference_root / "in" / student, root / student)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        run = batch(root, tmp_path / "out", "--executor", "dask", "--scheduler",
                    cluster.scheduler_address)
    assert run.returncode == 0, run.stderr[-3000:]
    assert report(tmp_path / "out", "correct")["score"] == report(
        reference_root / "out", "correct")["score"] > 0
    assert report(tmp_path / "out", "stub")["score"] == 0

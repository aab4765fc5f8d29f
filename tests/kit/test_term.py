"""An instructor's term with `grader batch`: what the class got wrong on the class page (a
mistake two students made, grouped; empty and broken submissions kept apart), late penalties
with an extension honoured, and a regrade after a test is fixed that regrades exactly the
students who handed that topic in and lists exactly those who moved.

The kit is copied into the test's folder (grader, tests, course), so the test can change a
test file and course.toml without touching the repository; the copy grades the class."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(80)  # rough seconds (two batches of 8); see tests/kit/conftest.py

SOLUTION = (KIT_ROOT / "solutions" / "softmax.py").read_text()
NO_MAX = SOLUTION.replace("X_shifted = X - X.max(dim=1, keepdim=True).values", "X_shifted = X")
OPTIONS = ["--topics", "softmax", "--call-timeout", "3", "--jobs", "2",
           "-k", "large_logits or small_example or each_row_alone"]
DEADLINES = """
[late]
per = "day"
penalty = 0.1
cap = 0.5

[deadlines]
softmax = "2025-10-06T23:59:00+02:00"
"""
LATE_STAMP = "2025-10-08 10:00:00.000000 UTC"  # 36 h 1 min after the deadline: 2 days begun
ROSTER = "student,name,extension_hours\nextended,Ext Ended,48\nlate,Late Comer,\n"
# the fixed test: small logits, which the students who forgot the max subtraction now pass
FIXED = ("X = torch.tensor([[1000.0, 1001.0], [-1000.0, -1000.0]])",
         "X = torch.tensor([[1.0, 2.0], [-1.0, -1.0]])")


def copy_kit(to: Path) -> Path:
    """The grader, torchdrill, tests, solutions, stubs and course: a kit of its own."""
    for tree in ("grader", "torchdrill", "solutions", "exercises", "tests/public",
                 "tests/hidden"):
        shutil.copytree(KIT_ROOT / tree, to / tree,
                        ignore=shutil.ignore_patterns("__pycache__", ".*"))
    for name in ("tests/__init__.py", "tests/conftest.py", "pyproject.toml"):
        shutil.copy2(KIT_ROOT / name, to / name)
    (to / "course.toml").write_text((KIT_ROOT / "course.toml").read_text() + DEADLINES)
    return to


def notebook(folder: Path, source: str, stamp: str) -> None:
    """nbgrader's submitted/<student>/softmax/: the notebook and its timestamp.txt."""
    (folder / "softmax").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbformat.write(nb, folder / "softmax" / "softmax.ipynb")
    (folder / "softmax" / "timestamp.txt").write_text(stamp)


def make_class(root: Path) -> None:
    for name, source in (("correct", SOLUTION), ("no_max_1", NO_MAX), ("no_max_2", NO_MAX),
                         ("syntax", "def softmax(X:\n    pass\n")):
        (root / name).mkdir(parents=True)
        (root / name / "softmax.py").write_text(source)
    shutil.copytree(KIT_ROOT / "exercises", root / "stub")
    (root / "other").mkdir()  # hands in another topic only
    (root / "other" / "tensor_ops.py").write_text("def matmul(A, B):\n    return A\n")
    notebook(root / "late", SOLUTION, LATE_STAMP)
    notebook(root / "extended", SOLUTION, LATE_STAMP)


def batch(kit: Path, root: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "batch", str(root), "--out",
                           str(out), *OPTIONS, *extra], cwd=kit, capture_output=True,
                          text=True, timeout=900)


def snapshot(out: Path) -> dict:
    return {"page": (out / "index.html").read_text(), "gradebook": gradebook(out),
            "reports": {p.parent.name: (p.stat().st_mtime_ns, json.loads(p.read_text()))
                        for p in out.glob("students/*/report.json")}}


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The class graded once (with the roster), then again after a test was fixed."""
    root = tmp_path_factory.mktemp("term")
    kit = copy_kit(root / "kit")
    make_class(root / "in")
    (root / "roster.csv").write_text(ROSTER)
    out = root / "out"
    first = batch(kit, root / "in", out, "--roster", str(root / "roster.csv"))
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(out)
    test_file = kit / "tests" / "public" / "test_softmax.py"
    text = test_file.read_text()
    assert FIXED[0] in text
    test_file.write_text(text.replace(*FIXED).replace("scale=1001.0", "scale=2.0"))
    second = batch(kit, root / "in", out, "--roster", str(root / "roster.csv"))
    assert second.returncode == 0, second.stderr[-3000:]
    return out, before, second


def test_a_repeated_mistake_is_grouped_with_its_students(term):
    out, before, _ = term
    page = before["page"]
    start = page.index("Recognised mistakes")
    row = page[start:page.index("</table>", start)]
    assert "subtract each row" in row and "2 of 5" in row, row  # 5 attempted softmax
    for student in ("no_max_1", "no_max_2"):
        assert f'href="students/{student}/report.html"' in row
    assert "correct" not in row


def test_empty_and_broken_submissions_are_kept_apart(term):
    out, before, _ = term
    rows = before["gradebook"]
    assert rows["stub"]["empty_or_broken"] == "softmax: the stub, unchanged"
    assert rows["syntax"]["empty_or_broken"] == "softmax: does not parse"
    assert "softmax: " in rows["other"]["empty_or_broken"]
    assert rows["correct"]["empty_or_broken"] == ""
    page = before["page"]
    rates = page[page.index("Pass rate per test"):page.index("Most-failed tests")]
    # every softmax test ran for the 5 who attempted it; stub, syntax and other left out
    assert rates.count(" of 5</td><td>3</td>") == rates.count("<tr>") - 1 > 0
    failed = page[page.index("Most-failed tests"):page.index("Empty and broken")]
    assert "not written yet" not in failed and "syntax" not in failed


def test_a_late_student_is_penalised_and_the_extension_honoured(term):
    out, before, _ = term
    rows = before["gradebook"]
    full = float(rows["correct"]["softmax"])
    assert float(rows["late"]["softmax"]) == full  # the raw score stays
    assert float(rows["late"]["softmax_penalised"]) == pytest.approx(0.8 * full)  # 2 days
    assert float(rows["late"]["total_penalised"]) == pytest.approx(0.8 * full)
    assert "36.02 h late" in rows["late"]["late"] and "-20%" in rows["late"]["late"]
    assert float(rows["extended"]["softmax_penalised"]) == full
    assert rows["extended"]["late"] == ""
    assert float(rows["correct"]["softmax_penalised"]) == full
    assert "no submission time" in rows["correct"]["late"]  # none known: not checked
    report = before["reports"]["late"][1]
    (penalty,) = report["late"]
    assert penalty["penalty"] == pytest.approx(0.2) and penalty["extension_hours"] == 0
    folder = out / "students" / "late"
    told = [(folder / "report.md").read_text(), (folder / "report.html").read_text(),
            json.loads((folder / "results.json").read_text())["output"]]
    for text in told:
        assert "36.0 hours after its deadline" in text and "20%" in text
    assert json.loads((folder / "results.json").read_text())["score"] == \
        pytest.approx(0.8 * full)
    assert not before["reports"]["extended"][1]["late"]


def test_a_regrade_regrades_those_who_handed_the_topic_in(term):
    out, before, second = term
    assert "8 students; 1 unchanged since their report, 7 to grade" in second.stderr
    after = snapshot(out)
    other = before["reports"]["other"]
    assert after["reports"]["other"][0] == other[0]  # not handed in: not regraded
    assert (out / "students" / "correct" / "history").is_dir()


def test_a_regrade_lists_exactly_the_students_who_moved(term):
    out, before, _ = term
    with open(out / "changes.csv") as f:
        moved = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(moved) == ["no_max_1", "no_max_2"]
    for student, row in moved.items():
        was = before["reports"][student][1]["score"]
        assert float(row["before"]) == was and float(row["after"]) == was + 1
        assert row["tests"] == "softmax: test_softmax_large_logits 0 -> 1"
        earlier = out / row["earlier_report"]
        assert earlier.is_file()  # the earlier report, as it was
        kept = json.loads((earlier.parent / "report.json").read_text())
        assert kept["score"] == was
    page = (out / "index.html").read_text()
    section = page[page.index("Regrade: who moved"):page.index("Flags per student")]
    assert "no_max_1" in section and "no_max_2" in section and "correct" not in section
    assert "+1 of" in section


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_the_class_page_shows_the_grouped_mistake_in_chromium(term, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    out, _, _ = term
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1300,3000", f"--screenshot={shot}",
                    (out / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = mpimg.imread(shot)[..., :3]

    def painted(color: str) -> int:
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        return int((np.abs(pixels - rgb).max(axis=-1) < 0.05).sum())

    assert painted("#8e24aa") > 300, "the recognised mistake's share bar did not render"
    assert painted("#2e7d32") > 1000, "the pass-rate bars did not render"

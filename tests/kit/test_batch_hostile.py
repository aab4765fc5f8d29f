"""A class cannot be broken by one student or by killing the batch: a `kill -9` of the batch
leaves no process behind; a student whose grading runs past its budget is stopped and gets a
report saying so while the class goes on; no student's name collides with or spoofs the
class's own files and console; and every unreadable archive becomes that student's report.

Every run grades one or two softmax tests: what is tested here is the batch, not the tests.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from grader.instructor.archive import extract_submission
from grader.text import safe_name
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(90)  # rough seconds; see tests/kit/conftest.py

SOLUTION = (KIT_ROOT / "solutions" / "softmax.py").read_text()
# Every function sleeps before it returns: a student whose grading never ends.
SLEEPER = "import time\n" + SOLUTION.replace(") -> torch.Tensor:\n", ") -> torch.Tensor:\n"
                                             "    time.sleep(3600)\n")
ONE_TEST = ["--topics", "softmax", "-k", "test_softmax_small_example"]
MARK = "TORCHDRILL_TEST_MARK"


def marked(mark: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment carries `mark`."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"{MARK}={mark}".encode() in environ.split(b"\0"):
            found[int(pid)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def gone(mark: str, within_s: float) -> dict[int, str]:
    """The processes carrying `mark` still alive after up to `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_all(pids) -> None:
    """Clean up after a failed check, so that no test leaves processes behind."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def batch_command(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "batch", str(root), "--out", str(out), *ONE_TEST,
            *extra]


def run_batch(root: Path, out: Path, mark: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(root, out, *extra), cwd=KIT_ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, MARK: mark})


def report(out: Path, student: str) -> dict:
    return json.loads((out / "students" / student / "report.json").read_text())


def messages(r: dict) -> str:
    return " ".join(t["message"] for topic in r["topics"] for t in topic["tests"])


@pytest.mark.skipif(os.geteuid() != 0, reason="reads every process's environment (root)")
def test_killed_batch_leaves_no_process(tmp_path):
    for name in ("sleeps", "sleeps_too"):
        (tmp_path / "in" / name).mkdir(parents=True)
        (tmp_path / "in" / name / "softmax.py").write_text(SLEEPER)
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(
        batch_command(tmp_path / "in", tmp_path / "out", "--jobs", "2", "--call-timeout", "600"),
        cwd=KIT_ROOT, env={**os.environ, MARK: mark}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not students_running(mark):
            time.sleep(0.2)
        time.sleep(3)  # into the student's call (before it, a worker exits once orphaned)
        before = marked(mark)
        assert len(before) > 3, f"the batch had not started its workers: {before}"
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator alone, as `kill -9 PID` does
        proc.wait()
        left = gone(mark, within_s=10)
        assert not left, f"still running 10 s after kill -9 of the batch: {left}"
    finally:
        proc.kill()
        kill_all(marked(mark))


def students_running(mark: str) -> bool:
    """Whether a marked process runs as a worker's unprivileged user (student code)."""
    for pid in marked(mark):
        try:
            if Path(f"/proc/{pid}").stat().st_uid != 0:
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="module")
def stalled_class(tmp_path_factory):
    """Three students, one whose grading never ends, graded with a 40 s budget each (room for a
    loaded machine: the correct student must finish within it)."""
    root = tmp_path_factory.mktemp("stalled")
    shutil.copytree(KIT_ROOT / "solutions", root / "in" / "good")
    shutil.copytree(KIT_ROOT / "exercises", root / "in" / "stub")
    (root / "in" / "sleeps").mkdir()
    (root / "in" / "sleeps" / "softmax.py").write_text(SLEEPER)
    mark = uuid.uuid4().hex
    options = ("--jobs", "2", "--call-timeout", "600", "--student-timeout", "40")
    start = time.monotonic()
    run = run_batch(root / "in", root / "out", mark, *options)
    took = time.monotonic() - start
    left = gone(mark, within_s=10)
    kill_all(left)
    rerun = run_batch(root / "in", root / "out", mark, *options)
    return root / "out", run, took, left, rerun


def test_stalled_student_is_stopped_and_the_class_goes_on(stalled_class):
    out, run, took, _, _ = stalled_class
    assert run.returncode == 0, run.stderr[-3000:]
    assert took < 200, f"the batch took {took:.0f} s: the stalled student was not stopped"
    good, stub, stopped = (report(out, s) for s in ("good", "stub", "sleeps"))
    assert good["score"] == good["max_score"] > 0
    assert stub["score"] == 0 and stub["max_score"] == good["max_score"]
    assert stopped["score"] == 0 and stopped["max_score"] == good["max_score"]
    tests = [t for topic in stopped["topics"] for t in topic["tests"]]
    assert [t["name"] for t in tests] == ["test_softmax_small_example"]
    assert all(t["outcome"] == "timeout" for t in tests)
    assert "took longer than 40 s" in messages(stopped) and "stopped" in messages(stopped)


def test_stalled_class_gets_its_gradebook_and_page(stalled_class):
    out, _, _, _, _ = stalled_class
    with open(out / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["good", "sleeps", "stub"]
    assert int(rows["sleeps"]["timeouts"]) == 1 and float(rows["good"]["total"]) > 0
    page = (out / "index.html").read_text()
    assert "sleeps" in page and "was stopped" in page


def test_stopped_student_leaves_no_process(stalled_class):
    _, _, _, left, _ = stalled_class
    assert not left, f"still running after the batch: {left}"


def test_stopped_student_is_not_regraded(stalled_class):
    _, _, _, _, rerun = stalled_class
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "3 unchanged since their report" in rerun.stderr


def test_grade_stops_a_submission_that_stalls_it(tmp_path):
    (tmp_path / "sleeps").mkdir()
    (tmp_path / "sleeps" / "softmax.py").write_text(SLEEPER)
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "sleeps"),
                          *ONE_TEST, "--out", str(tmp_path / "out"), "--call-timeout", "600",
                          "--student-timeout", "8"], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert time.monotonic() - start < 60
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert r["max_score"] > 0 and r["score"] == 0
    assert "took longer than 8 s" in messages(r)


# -- names and archives ------------------------------------------------------------------------

NASTY_NAME = "<i>[bold red]x\x1b[2J"  # markup for the page and the console, a terminal escape
NASTY_ID = safe_name(NASTY_NAME)  # its id: the escape shown as `\u001b`, never sent to a screen


def zip_with(path: Path, patch) -> Path:
    """A zip of softmax.py with `patch(data, local_header, central_header)` applied."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("softmax.py", SOLUTION)
    data = bytearray(path.read_bytes())
    patch(data, data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02"))
    path.write_bytes(bytes(data))
    return path


def encrypted(data: bytearray, local: int, central: int) -> None:
    for offset in (local + 6, central + 8):  # general purpose flags: bit 0, encrypted
        data[offset] |= 1


def unknown_method(data: bytearray, local: int, central: int) -> None:
    for offset in (local + 8, central + 10):  # compression method
        data[offset:offset + 2] = struct.pack("<H", 99)


@pytest.mark.parametrize("patch,expect", [(encrypted, "password"),
                                          (unknown_method, "compression")])
def test_unreadable_zip_member_is_a_problem_not_an_exception(tmp_path, patch, expect):
    archive = zip_with(tmp_path / "x.zip", patch)
    (tmp_path / "dest").mkdir()
    problem = extract_submission(archive, tmp_path / "dest")
    assert problem and "x.zip" in problem and expect in problem.lower()


@pytest.fixture(scope="module")
def odd_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    (root / "in").mkdir()
    for name in ("index.html", NASTY_NAME):
        shutil.copytree(KIT_ROOT / "solutions", root / "in" / name)
    shutil.copytree(KIT_ROOT / "exercises", root / "in" / "gradebook.csv")
    zip_with(root / "in" / "encrypted.zip", encrypted)
    zip_with(root / "in" / "method99.zip", unknown_method)
    (root / "in" / "dangling.zip").symlink_to(root / "nowhere.zip")
    run = run_batch(root / "in", root / "out", uuid.uuid4().hex)
    return root / "out", run


ODD = ["dangling", "encrypted", "gradebook.csv", "index.html", "method99", NASTY_ID]


def test_every_odd_student_gets_a_report(odd_class):
    out, run = odd_class
    assert run.returncode == 0, run.stderr[-3000:]
    full = report(out, "index.html")["max_score"]
    assert full > 0 and report(out, "index.html")["score"] == full
    assert report(out, NASTY_ID)["score"] == full
    assert report(out, "gradebook.csv")["score"] == 0
    assert "password" in messages(report(out, "encrypted"))
    assert "compression" in messages(report(out, "method99")).lower()
    assert report(out, "dangling")["score"] == 0 and messages(report(out, "dangling"))


def test_class_files_are_the_class_s(odd_class):
    out, _ = odd_class
    with open(out / "gradebook.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(report(out, s)["submission"] for s in ODD)
    assert float(rows["index.html"]["total"]) > 0
    page = (out / "index.html").read_text()
    for folder in ("index.html", NASTY_ID):  # each score links to the student's own report
        assert f'href="students/{quote(folder)}/report.html"' in page
    assert "&lt;i&gt;[bold red]x" in page and "<i>" not in page


def test_console_shows_names_as_written_without_control_characters(odd_class):
    _, run = odd_class
    console = run.stdout + run.stderr
    assert "\x1b[2J" not in console
    assert "<i>[bold red]x" in console  # shown as text, not taken as rich markup

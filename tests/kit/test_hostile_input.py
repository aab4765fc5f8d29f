"""Hostile input to the grader itself, not to the tests: files that are links, pipes or not
topics, a flood of forbidden-call hits, a module of thousands of functions, and text full of
terminal escape codes. Each must cost the grader bounded work, never reach past the
submission's folder, and leave a report that says what happened in plain text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from grader.course import load_course
from grader.handle import MAX_FLAGS_PER_FUNCTION, MAX_HITS, Session
from grader.report.scoring import build_report, source_flags
from grader.scan.allowlist import steps_outside
from grader.scan.source import (
    MAX_SOURCE_CHARS,
    SourceTooLarge,
    forbidden_in_source,
    python_loops,
)
from grader.submission import Submission, load_submission
from grader.text import clean_text
from tests.kit.permissive import permissive_env
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(45)  # rough seconds; see tests/kit/conftest.py

COURSE = load_course()
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SPOOF = "\x1b[2J\x1b[H\x1b]0;owned\x07Total 109/109\r\x1b[1;32mall passed\x1b[0m\x9b7m\x08"
NAME = "mallory\x1b[31m\x07\r"  # the submission folder's name
NOTES = "notes\x1b[5m\r.py"  # a file of the submission that is not a topic

HOSTILE_FILES_TESTS = ("test_softmax_small_example or test_relu_small_example or "
                       "test_cross_entropy_small or test_arange_grid_small")


def grade(folder, out, topics: str, keyword: str, timeout: float = 180,
          env: dict[str, str] | None = None) -> tuple[dict, str]:
    """Grade `folder` in a subprocess that must finish within `timeout` seconds: the report
    and what the grader printed."""
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--topics",
                          topics, "--suite", "public", "--out", str(out), "-k", keyword],
                         cwd=KIT_ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "report.json").read_text(encoding="utf-8")), run.stdout


def texts_in(value: object) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*texts_in(k), *texts_in(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts_in(v)]
    return []


def topic_tests(report: dict, topic: str) -> list[dict]:
    return next(t["tests"] for t in report["topics"] if t["name"] == topic)


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """One submission with every kind of hostile file, graded on one public test per topic:
    softmax.py links to the reference, mlp.py is a FIFO (reading it would block forever),
    cross_entropy.py imports a helper module of the student's own, tensor_ops' function raises
    a message full of escape codes, and names carry control characters."""
    root = tmp_path_factory.mktemp("hostile_files")
    folder = root / NAME
    folder.mkdir()
    (folder / "softmax.py").symlink_to(KIT_ROOT / "solutions" / "softmax.py")
    os.mkfifo(folder / "mlp.py")
    (folder / "helpers.py").write_text("def one_hot(y, n):\n    return y\n")
    (folder / NOTES).write_text("# scratch\n")
    (folder / "cross_entropy.py").write_text(
        "import torch\nfrom helpers import one_hot\n\n\ndef cross_entropy(y_hat, y):\n"
        "    return -torch.log(y_hat[range(len(y)), y])\n")
    (folder / "tensor_ops.py").write_text(textwrap.dedent(f'''
        import torch


        def arange_grid(rows, cols):
            raise ValueError({SPOOF!r})
        '''))
    out = root / "out"
    report, printed = grade(folder, out, "softmax,mlp,cross_entropy,tensor_ops",
                            HOSTILE_FILES_TESTS)
    return report, printed, out


def test_a_symlinked_topic_file_earns_nothing_and_is_named(hostile_files):
    report, _, _ = hostile_files
    softmax = topic_tests(report, "softmax")
    assert softmax and all(t["score"] == 0 for t in softmax)
    for test in softmax:
        assert "softmax.py is a symbolic link: submit the file itself" in test["message"]
    refused = {f["file"]: f["reason"] for f in report["files_not_graded"]}
    assert "symbolic link" in refused["softmax.py"]


def test_a_fifo_is_refused_without_blocking(hostile_files):
    report, _, _ = hostile_files
    (relu,) = topic_tests(report, "mlp")
    assert relu["score"] == 0 and "mlp.py is not a regular file" in relu["message"]


def test_a_helper_module_is_not_sent_and_is_listed(hostile_files):
    report, printed, out = hostile_files
    refused = {f["file"]: f["reason"] for f in report["files_not_graded"]}
    assert "only the course's topic files" in refused["helpers.py"]
    (test,) = topic_tests(report, "cross_entropy")
    assert test["score"] == 0
    assert "`import helpers`" in test["message"]
    assert "copy the code you need from helpers.py into this file" in test["message"]
    for shown in (printed, (out / "report.md").read_text(encoding="utf-8"),
                  (out / "report.html").read_text(encoding="utf-8"),
                  json.loads((out / "results.json").read_text())["output"]):
        assert "Files not graded" in shown or "Not graded: " in shown
        assert "helpers.py is not graded" in shown
        assert "softmax.py is a symbolic link" in shown


def test_no_control_character_reaches_a_report_or_the_console(hostile_files):
    report, printed, out = hostile_files
    (test,) = topic_tests(report, "tensor_ops")
    assert test["outcome"] == "error" and "Total 109/109" in test["message"]
    assert report["submission"] == "mallory"
    assert clean_text(NOTES) in {f["file"] for f in report["files_not_graded"]}
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    assert set(written) == {"report.json", "report.md", "report.html", "results.json"}
    for name, text in [*written.items(), ("console", printed)]:
        texts = texts_in(json.loads(text)) if name.endswith(".json") else [text]
        assert not any(CONTROL.search(t) for t in texts), name


FLOOD = '''
import torch

flooded = False


def softmax(X):
    global flooded
    if not flooded:  # once: the hits outlive the call in the grader's record of the test
        flooded = True
        from torch.overrides import _get_current_function_mode_stack
        hits = next(m.state for m in _get_current_function_mode_stack()
                    if hasattr(m, "state")).hits  # the guard's own record of the call
        add = hits.setdefault
        for i in range(400_000):
            add(f"torch.fake_{i}")
        for _ in range(5_000):
            try:
                torch.softmax(X, 1)
            except Exception:
                pass
    E = torch.exp(X - X.max(1, keepdim=True).values)
    return E / E.sum(1, keepdim=True)
'''


def test_a_flood_of_forbidden_hits_grades_in_seconds(tmp_path):
    (tmp_path / "flood").mkdir()
    (tmp_path / "flood" / "softmax.py").write_text(FLOOD)
    start = time.monotonic()
    report, _ = grade(tmp_path / "flood", tmp_path / "out", "softmax",
                      "test_softmax_small_example", timeout=120,
                      env=permissive_env(tmp_path))  # it imports grader: let it run
    assert time.monotonic() - start < 60
    (test,) = topic_tests(report, "softmax")
    assert test["outcome"] == "forbidden" and test["score"] == 0
    runtime = [f for f in report["flags"] if f["how"] == "runtime"]
    assert 0 < len(runtime) <= MAX_FLAGS_PER_FUNCTION


def test_session_keeps_a_bounded_record_of_any_reply(tmp_path):
    session = Session(Submission("s", tmp_path), COURSE, None)
    topic = COURSE.topic("softmax")
    start = time.monotonic()
    session._record(topic, "softmax", [f"torch.fake_{i}" for i in range(400_000)])
    session._record(topic, "softmax", ["torch.softmax", 7, None, "x" * 10**6])
    session._record(topic, "log_softmax", {"not": "a list"})
    assert time.monotonic() - start < 1
    assert len(session.test_hits) == MAX_HITS
    assert len(session.flags) == MAX_FLAGS_PER_FUNCTION
    session.begin_test("next")
    session._record(topic, "log_softmax", ["torch.softmax"] * 1000)
    assert session.test_hits == [{"topic": "softmax", "function": "log_softmax",
                                  "call": "torch.softmax", "how": "runtime"}]


# -- reading a submission --------------------------------------------------------------------


def test_only_topic_files_are_read_and_the_rest_is_listed(tmp_path):
    (tmp_path / "softmax.py").write_text("def softmax(X):\n    return X\n")
    (tmp_path / "softmax.ipynb").write_text("{}")
    (tmp_path / "helpers.py").write_text("x = 1\n")
    (tmp_path / "secret.py").symlink_to("/etc/passwd")
    (tmp_path / "mlp.py").mkdir()
    (tmp_path / "sgd.py").write_text("#" * (MAX_SOURCE_CHARS + 1))
    (tmp_path / "tensor_ops.py").write_bytes(b"\xff\xfe")
    sub = load_submission(tmp_path)
    assert list(sub.sources) == ["softmax"]
    assert sub.problems == {
        "sgd": sub.problems["sgd"], "mlp": "mlp.py is a folder, not a file",
        "tensor_ops": "tensor_ops.py is not UTF-8 text"}
    assert "sgd.py is 1.0 MB; the grader reads files up to 1 MB" in sub.problems["sgd"]
    listed = {f["file"] for f in sub.not_graded}
    assert listed == {"softmax.ipynb", "helpers.py", "secret.py", "mlp.py", "sgd.py",
                      "tensor_ops.py"}
    assert "softmax.py is" in next(f["reason"] for f in sub.not_graded
                                   if f["file"] == "softmax.ipynb")


def test_a_symlinked_notebook_folder_is_refused_and_a_real_one_read(tmp_path):
    nb = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "def relu(X):\n    return X\n"}]})
    (tmp_path / "elsewhere" / "softmax").mkdir(parents=True)
    (tmp_path / "elsewhere" / "softmax" / "softmax.ipynb").write_text(nb)
    (tmp_path / "sub" / "mlp").mkdir(parents=True)
    (tmp_path / "sub" / "mlp" / "mlp.ipynb").write_text(nb)
    (tmp_path / "sub" / "softmax").symlink_to(tmp_path / "elsewhere" / "softmax")
    sub = load_submission(tmp_path / "sub")
    assert list(sub.sources) == ["mlp"]
    assert sub.problems == {"softmax": "softmax/ is a symbolic link: submit the folder itself, "
                                       "not a link to it"}


def test_only_the_given_topics_are_read(tmp_path):
    for topic in ("softmax", "cross_entropy"):
        (tmp_path / f"{topic}.py").write_text("x = 1\n")
    sub = load_submission(tmp_path, ["cross_entropy"])
    assert list(sub.sources) == ["cross_entropy"]
    assert [f["file"] for f in sub.not_graded] == ["softmax.py"]


def test_a_long_list_of_files_not_graded_is_summed_up(tmp_path):
    for i in range(120):
        (tmp_path / f"extra_{i}.py").write_text("")
    listed = load_submission(tmp_path).not_graded
    assert len(listed) == 51 and "70 more files" in listed[-1]["reason"]


# -- the source scan -------------------------------------------------------------------------


def test_a_module_of_6000_reachable_functions_is_scanned_in_linear_time():
    n = 6000  # each calls the next, the last the first: every function reaches every other
    source = "import torch\nsoftmax = f0\n" + "".join(
        f"def f{i}(x):\n    return f{(i + 1) % n}(x) + torch.softmax(x, 0)\n" for i in range(n))
    sub = Submission("big", KIT_ROOT, {"softmax": ("softmax.py", source)})
    start = time.monotonic()
    flags = source_flags(sub, COURSE, ["softmax"])
    loops = python_loops(source, "f0")
    steps = steps_outside(source, COURSE.source, frozenset(COURSE.names))
    elapsed = time.monotonic() - start
    # about 1.5 s on an idle 2-core machine; a scan quadratic in the functions takes minutes.
    # The bound leaves room for a loaded CI machine (the speed itself is make bench's business).
    assert elapsed < 20, f"{elapsed:.2f} s"
    assert flags == [{"topic": "softmax", "function": "softmax", "call": "torch.softmax",
                      "how": "source"}]  # the contract's functions only, however bound
    assert loops == [] and steps == ()
    assert forbidden_in_source(source, f"f{n - 1}", ["torch.softmax", "torch.exp"]) == [
        "torch.softmax"]


def test_a_source_over_the_cap_is_not_scanned():
    source = "def softmax(X):\n    return X\n" + "#" * MAX_SOURCE_CHARS
    with pytest.raises(SourceTooLarge, match="reads modules up to 1 MB"):
        python_loops(source, "softmax")
    sub = Submission("big", KIT_ROOT, {"softmax": ("softmax.py", source)})
    assert source_flags(sub, COURSE, ["softmax"]) == []


def test_a_forbidden_call_is_flagged_where_it_is_written_not_in_its_callers():
    """softmax_regression calls softmax, which writes F.softmax: the flag is softmax's; a
    private helper is part of the function that reaches it."""
    source = textwrap.dedent('''
        import torch.nn.functional as F

        def softmax(X):
            return F.softmax(X, 1)

        def _rows(X):
            return F.softmax(X, 1)

        def log_softmax(X):
            return _rows(X).log()

        def softmax_regression(X, W, b):
            return softmax(X.reshape(-1, W.shape[0]) @ W + b)
        ''')
    sub = Submission("s", KIT_ROOT, {"softmax": ("softmax.py", source)})
    flags = {(f["function"], f["call"]) for f in source_flags(sub, COURSE, ["softmax"])}
    assert flags == {("softmax", "F.softmax"), ("log_softmax", "F.softmax")}


def test_helpers_reached_by_name_are_scanned_with_their_imports():
    source = textwrap.dedent('''
        from torch.nn import functional as F


        def softmax(X):
            return _helper(X) @ X


        def _helper(X):
            return [F.softmax(x, 0) for x in X]


        def log_softmax(X):
            import torch as t
            return t.log(X)
        ''')
    assert forbidden_in_source(source, "softmax", ["F.softmax", "@", "torch.log"]) == [
        "F.softmax", "@"]
    assert forbidden_in_source(source, "log_softmax", ["torch.log"]) == ["torch.log"]
    assert python_loops(source, "softmax") == [("a comprehension", 10)]


# -- text ------------------------------------------------------------------------------------


def test_clean_text_removes_escape_sequences_and_controls_only():
    assert clean_text(SPOOF) == "Total 109/109all passed"
    assert clean_text("tab\tnew\nline é ✓ [bold]x[/]") == "tab\tnew\nline é ✓ [bold]x[/]"
    assert clean_text("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"


def test_the_report_is_cleaned_where_it_is_built(tmp_path):
    record = {"topic": "softmax", "name": "test_softmax_small_example", "visibility": "public",
              "score": 0.0, "max_score": 1.0, "outcome": "error", "message": SPOOF,
              "hint": "h", "duration_s": 0.1}
    sub = Submission(NAME, tmp_path, not_graded=[{"file": NOTES, "reason": NOTES}])
    report = build_report([record], COURSE, ["softmax"], sub, [], [
        {"topic": "softmax", "function": "softmax", "call": "\x1b[8mtorch.softmax",
         "how": "runtime"}])
    assert texts_in(report) and not any(CONTROL.search(t) for t in texts_in(report))
    assert report["submission"] == "mallory" and report["topics"][0]["tests"][0]["message"] \
        == "Total 109/109all passed"
    assert report["flags"][0]["call"] == "torch.softmax"
    assert report["files_not_graded"] == [{"file": "notes.py", "reason": "notes.py"}]


def test_an_unknown_topic_is_a_usage_error_not_a_traceback(tmp_path):
    """A typo in --topics: one line that lists the topics, exit code 2 as argparse's own."""
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path), "--topics",
                          "softmax,sofmax"], cwd=KIT_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert "no topic 'sofmax'" in run.stderr and "softmax, cross_entropy" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr

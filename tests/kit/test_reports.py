"""The report writers: atomic files, Markdown, HTML, Gradescope's results.json, the terminal
table. A report here mixes every outcome, a hostile message and a function not written yet."""

from __future__ import annotations

import copy
import html
import io
import json
import math
import os
import re
import stat
import sys

import pytest
from rich.console import Console

from grader import atomic
from grader.atomic import write_atomic, write_json_atomic
from grader.report import formats as reports
from grader.report.formats import (
    function_fixes,
    to_gradescope,
    to_html,
    to_markdown,
    write_reports,
)
from grader.report.table import default_console, render_table, summary_line

HOSTILE = "<script>alert(1)</script>"
MARKUP = "[/] [bold]not bold[/bold] :thumbs_up:"
NOT_WRITTEN = "relu is not written yet (it raises NotImplementedError)."


def _test(name, outcome, score, max_score, message="", hint="", visibility="public",
          mistake=None):
    return {"name": name, "visibility": visibility, "score": score, "max_score": max_score,
            "outcome": outcome, "message": message, "mistake": mistake, "hint": hint,
            "duration_s": 0.6}


REPORT = {
    "submission": "alice<img src=x onerror=alert(2)>",
    "kit_version": "0.1.0",
    "graded_at": "2025-01-01T00:00:00+00:00",
    "isolation": ["pid-namespace", "rlimits"],
    "score": 2.5, "max_score": 7.0,
    "topics": [
        {"name": "softmax", "title": "Softmax regression (§3.4)", "score": 2.5,
         "max_score": 5.0, "tests": [
             _test("test_softmax_small_example", "passed", 1.0, 1.0, hint="softmax of a row"),
             _test("test_softmax_large_logits", "failed", 0.0, 1.0,
                   "rows of your softmax sum to nan for logits near 1000: subtract each "
                   f"row's max before exp {HOSTILE}", "Logits of 1000 must not overflow."),
             _test("test_softmax_hidden_shapes", "timeout", 0.0, 1.0,
                   "softmax took longer than 20 s", visibility="hidden"),
             _test("test_softmax_uses_exp", "forbidden", 0.0, 0.5,
                   f"your code called torch.softmax ``` {MARKUP}"),
             _test("test_softmax_rows", "passed", 1.5, 1.5),
         ]},
        {"name": "mlp", "title": "Multilayer perceptrons (§5.1)", "score": 0.0,
         "max_score": 2.0, "tests": [
             _test("test_relu", "not_implemented", 0.0, 1.0, NOT_WRITTEN, "relu clips at 0"),
             _test("test_relu_grad", "not_implemented", 0.0, 1.0, NOT_WRITTEN, "relu's slope"),
         ]},
        {"name": "tensor_ops", "title": "Data manipulation (§2.1)", "score": 0.0,
         "max_score": 0.0, "tests": [_test("test_reshape", "passed", 0, 0)]},
    ],
    "flags": [
        {"topic": "softmax", "function": "softmax", "call": "torch.softmax", "how": "runtime"},
        {"topic": "softmax", "function": "softmax", "call": "torch.softmax", "how": "source"},
    ],
}
LOST = [t for topic in REPORT["topics"] for t in topic["tests"] if t["outcome"] != "passed"]


@pytest.fixture
def report() -> dict:
    return copy.deepcopy(REPORT)


def fresh_stub() -> dict:
    """Every function unwritten: the report a student sees before writing anything."""
    stub = copy.deepcopy(REPORT)
    for topic in stub["topics"]:
        topic["score"] = 0.0
        for test in topic["tests"]:
            test.update(outcome="not_implemented", score=0.0, message=NOT_WRITTEN)
    stub.update(score=0.0, flags=[])
    return stub


# -- atomic writes ---------------------------------------------------------------------------


def test_write_atomic_writes_text_and_bytes_and_makes_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    assert write_atomic(target, "héllo") == target
    assert target.read_bytes() == "héllo".encode()
    write_atomic(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    assert os.listdir(target.parent) == ["out.txt"]


def test_failed_replace_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    write_atomic(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_atomic(target, "new " * 1000)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]


def test_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    write_atomic(target, "old")

    def broken_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="no space"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.md"]


def test_write_atomic_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", recording_fsync)
    write_atomic(tmp_path / "x.txt", "data")
    assert synced == [False, True]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_new_files_follow_the_umask_not_private_temp_modes(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "x.txt", "data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644


def test_write_json_atomic_round_trips_and_refuses_nan(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"name": "é", "score": 1.5})
    assert json.loads(target.read_text(encoding="utf-8")) == {"name": "é", "score": 1.5}
    with pytest.raises(ValueError):
        write_json_atomic(target, {"score": math.nan})
    assert json.loads(target.read_text(encoding="utf-8"))["score"] == 1.5
    assert os.listdir(tmp_path) == ["r.json"]


# -- write_reports ---------------------------------------------------------------------------


def test_write_reports_writes_all_four_with_report_json_last(tmp_path, monkeypatch, report):
    order = []
    for name in ("write_atomic", "write_json_atomic"):
        real = getattr(reports, name)
        monkeypatch.setattr(reports, name,
                            lambda path, data, real=real: order.append(path.name) or
                            real(path, data))
    paths = write_reports(report, tmp_path / "out")
    assert order[-1] == "report.json"
    assert sorted(order) == ["report.html", "report.json", "report.md", "results.json"]
    assert [p.name for p in paths] == order
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8")) == report
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == to_gradescope(report)
    assert (tmp_path / "out" / "report.html").read_text(encoding="utf-8") == to_html(report)


def test_an_interrupted_rewrite_leaves_no_report_json(tmp_path, monkeypatch, report):
    write_reports(report, tmp_path)
    real = reports.write_json_atomic

    def failing(path, obj):
        if path.name == "results.json":
            raise OSError("killed")
        return real(path, obj)

    monkeypatch.setattr(reports, "write_json_atomic", failing)
    with pytest.raises(OSError):
        write_reports(report, tmp_path)
    assert not (tmp_path / "report.json").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# -- Gradescope ------------------------------------------------------------------------------

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def _check_gradescope(results: dict) -> None:
    """The keys and types of Gradescope's results.json spec that we rely on."""
    assert isinstance(results["score"], float)
    assert isinstance(results["execution_time"], int)
    assert isinstance(results["output"], str)
    assert isinstance(results["tests"], list)
    for test in results["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "status", "output",
                             "visibility", "tags"}
        assert isinstance(test["name"], str) and test["name"]
        assert all(isinstance(test[k], float) for k in ("score", "max_score"))
        assert test["status"] in ("passed", "failed")
        assert isinstance(test["output"], str)
        assert test["visibility"] in VISIBILITIES
    json.dumps(results, allow_nan=False)


def test_gradescope_follows_the_spec_and_adds_up(report):
    results = to_gradescope(report)
    _check_gradescope(results)
    tests = results["tests"]
    assert len(tests) == sum(len(t["tests"]) for t in report["topics"])
    assert len({t["name"] for t in tests}) == len(tests)
    assert sum(t["score"] for t in tests) == pytest.approx(results["score"])
    assert results["score"] == pytest.approx(report["score"])
    assert sum(t["max_score"] for t in tests) == pytest.approx(report["max_score"])
    assert results["execution_time"] == 5  # 8 tests of 0.6 s, rounded up


def test_gradescope_status_visibility_and_output(report):
    tests = {t["name"]: t for t in to_gradescope(report)["tests"]}
    assert tests["softmax: test_softmax_small_example"]["status"] == "passed"
    assert tests["softmax: test_softmax_large_logits"]["status"] == "failed"
    assert tests["mlp: test_relu"]["status"] == "failed"
    assert tests["softmax: test_softmax_large_logits"]["visibility"] == "visible"
    assert tests["softmax: test_softmax_hidden_shapes"]["visibility"] == "after_published"
    assert "subtract each row's max" in tests["softmax: test_softmax_large_logits"]["output"]
    assert "Logits of 1000" in tests["softmax: test_softmax_large_logits"]["output"]


# -- HTML ------------------------------------------------------------------------------------


def test_html_escapes_student_text(report):
    page = to_html(report)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page
    assert "<script" not in page.lower()


HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2",
             "h3", "h4", "p", "section", "div", "article", "code", "span", "pre", "strong",
             "ul", "li", "details", "summary"}


def test_html_is_self_contained(report):
    page = to_html(report).lower()
    assert page.startswith("<!doctype html>")
    assert set(re.findall(r"<(\w+)", page)) <= HTML_TAGS
    for external in ("http:", "https:", "@import", "url("):
        assert external not in page, external


def test_html_shows_every_topic_lost_point_flag_and_isolation(report):
    page = to_html(report)
    for topic in report["topics"]:
        assert f'id="topic-{topic["name"]}"' in page
        assert topic["title"] in page
    for test in LOST:
        assert html.escape(test["message"]) in page
    assert "torch.softmax in softmax (softmax)" in page
    assert "Isolation: pid-namespace, rlimits" in page
    assert page.count(html.escape(NOT_WRITTEN)) == 1  # grouped, not one per test


def test_html_bars_match_scores(report):
    page = to_html(report)
    assert 'class="fill partial" style="width: 50.0%"' in page  # softmax 2.5/5
    assert 'class="fill none" style="width: 0.0%"' in page  # mlp 0/2
    assert 'class="fill done" style="width: 100.0%"' in page  # tensor_ops, 0 points, passed


# -- Markdown --------------------------------------------------------------------------------


def test_markdown_lists_every_lost_points_message(report):
    text = to_markdown(report)
    for test in LOST:
        assert test["message"] in text
    assert "Logits of 1000 must not overflow." in text
    assert "wrong result" in text and "ran out of time" in text


def test_markdown_fences_outlast_backticks_in_messages(report):
    text = to_markdown(report)
    assert f"````text\nyour code called torch.softmax ``` {MARKUP}\n````" in text


def test_markdown_groups_unwritten_functions_and_escapes_names(report):
    text = to_markdown(report)
    assert text.count(NOT_WRITTEN) == 1
    assert "2 tests (2 points) waiting" in text
    assert re.search(r"(?<!\\)<img", text) is None
    assert "alice\\<img src=x onerror=alert(2)\\>" in text


def test_markdown_for_a_fresh_stub_is_a_to_do_list():
    text = to_markdown(fresh_stub())
    assert "### To fix" not in text
    assert text.count("### Not written yet") == 3
    assert "wrong result" not in text


# -- terminal table --------------------------------------------------------------------------


def _recorded(report: dict, width: int = 240) -> str:
    console = Console(file=io.StringIO(), record=True, width=width)
    render_table(report, console)
    return console.export_text()


def test_table_shows_topics_scores_messages_and_flags(report):
    text = _recorded(report)
    for topic in report["topics"]:
        assert topic["name"] in text and topic["title"] in text
    for score in ("2.5/5", "0/2", "0/0", "Total 2.5/7"):
        assert score in text
    for test in LOST:
        if test["outcome"] != "not_implemented":
            assert test["name"] in text
            assert test["message"] in text
    assert "Logits of 1000 must not overflow." in text
    assert "torch.softmax in softmax (softmax): called while grading and written in the " \
           "source" in text
    assert "Isolation: pid-namespace, rlimits" in text


def test_table_prints_student_text_verbatim_not_as_markup(report):
    text = _recorded(report)
    assert MARKUP in text
    assert HOSTILE in text


def test_table_groups_unwritten_functions(report):
    text = _recorded(report)
    assert text.count(NOT_WRITTEN) == 1
    assert "mlp: " + NOT_WRITTEN in text
    assert "test_relu_grad" not in text


def test_table_for_a_fresh_stub_has_nothing_to_fix():
    text = _recorded(fresh_stub())
    assert "To fix" not in text
    assert "wrong result" not in text
    assert "Not written yet" in text


def test_table_in_a_non_terminal_is_100_columns(report, monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    console = default_console()
    assert not console.is_terminal
    assert console.width == 100
    render_table(report, console)
    lines = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue()
    assert lines and max(len(line) for line in lines) <= 100
    assert "test_softmax_large_logits" in out.getvalue()


def test_table_falls_back_to_ascii_bars_on_a_narrow_encoding(report):
    raw = io.BytesIO()
    console = Console(file=io.TextIOWrapper(raw, encoding="cp1252"), width=100)
    render_table(report, console)
    console.file.flush()
    text = raw.getvalue().decode("cp1252")
    assert "#" * 10 + "-" * 10 in text


def test_summary_line(report):
    assert summary_line(report) == "softmax 2.5/5 · mlp 0/2 · tensor_ops 0/0 · total 2.5/7"


# -- files not graded ------------------------------------------------------------------------

NOT_GRADED = [{"file": "softmax.py", "reason": "softmax.py is a symbolic link: submit the file "
               "itself, not a link to it"},
              {"file": "helpers.py", "reason": f"helpers.py is not graded {HOSTILE} {MARKUP}"}]


def test_every_format_lists_the_files_not_graded(report):
    report["files_not_graded"] = NOT_GRADED
    page, text = to_html(report), to_markdown(report)
    output, table = to_gradescope(report)["output"], _recorded(report)
    for shown in (page, text, output, table):
        assert "softmax.py is a symbolic link: submit the file itself" in shown
    assert "<li>helpers.py is not graded &lt;script&gt;" in page
    assert "- helpers.py is not graded \\<script\\>" in text
    assert f"Not graded: helpers.py is not graded {HOSTILE}" in output
    assert f"helpers.py is not graded {HOSTILE} {MARKUP}" in table


def test_no_files_not_graded_no_section(report):
    report["files_not_graded"] = []
    for shown in (to_html(report), to_markdown(report), to_gradescope(report)["output"],
                  _recorded(report)):
        assert "not graded" not in shown.lower()


# -- by function, the diagnosis first ---------------------------------------------------------

WRONG = f"each column sums to 1 {HOSTILE} {MARKUP}"  # a recognised mistake, hostile as can be
BOOM = "softmax raised ValueError: boom"


def diagnosed() -> dict:
    """softmax's tests: two recognised one mistake, two share a message, one has its own; a
    test of logsumexp and one of the topic as a whole."""
    report = copy.deepcopy(REPORT)
    report["topics"][0]["tests"] = [
        _test("test_softmax_a", "failed", 0, 2, f"softmax(X) for X (3, 5): {WRONG}",
              "what a checks", mistake=WRONG),
        _test("test_logsumexp_a", "error", 0, 1, "logsumexp raised ValueError: boom"),
        _test("test_softmax_c", "error", 0, 1, BOOM),
        _test("test_softmax_b", "failed", 0, 1, f"softmax(X): {WRONG}", mistake=WRONG,
              visibility="hidden"),
        _test("test_softmax_d", "error", 0, 1.5, BOOM),
        _test("test_softmax_e", "failed", 0, 1, "rows sum to 2"),
        _test("test_softmax_ok", "passed", 1, 1),
        _test("test_whole_topic", "failed", 0, 1, "the module is wrong"),
    ]
    return report


def test_lost_tests_are_grouped_by_function_each_thing_said_once():
    fixes = function_fixes(diagnosed()["topics"][0])
    assert [(f.title, f.score_text, [t["name"] for t in f.tests]) for f in fixes] == [
        ("softmax.softmax", "1/7.5", ["test_softmax_a", "test_softmax_c", "test_softmax_b",
                                      "test_softmax_d", "test_softmax_e"]),
        ("softmax.logsumexp", "0/1", ["test_logsumexp_a"]),
        ("softmax, the topic as a whole", "0/1", ["test_whole_topic"])]
    softmax = fixes[0]
    assert [(d.number, d.text, d.recognised, [t["name"] for t in d.tests], d.lost)
            for d in softmax.diagnoses] == [
        (1, WRONG, True, ["test_softmax_a", "test_softmax_b", "test_softmax_e"], 4.0),
        (2, BOOM, False, ["test_softmax_c", "test_softmax_d"], 2.5)]
    assert fixes[1].diagnoses == [] and fixes[2].diagnoses == []  # a message of its own


def _after(lines: list[str], heading: str) -> list[str]:
    """The non-empty lines after `heading`."""
    return [line for line in lines[lines.index(heading) + 1:] if line.strip()]


def test_markdown_leads_each_function_with_its_diagnosis():
    text = to_markdown(diagnosed())
    wrong = reports._md(WRONG)
    assert _after(text.splitlines(), "### To fix: softmax.softmax · 1/7.5")[:3] == [
        f"1. **{wrong}** — cost 3 tests, 4 points",
        f"2. **{BOOM}** — cost 2 tests, 2.5 points",
        "#### test\\_softmax\\_a · wrong result · 0/2"]
    assert text.count(wrong) == 1 and text.count(BOOM) == 1  # the details refer to them
    assert "```text\nsoftmax(X) for X (3, 5): see 1 above\n```" in text
    assert "```text\nthe same message as 2 above\n```" in text
    # a wrong result no test recognised, where one mistake was: said, and counted as its
    assert "```text\nrows sum to 2 (likely the mistake of 1 above)\n```" in text
    assert text.index("### To fix: softmax.logsumexp") < text.index("the topic as a whole")
    assert re.search(r"(?<!\\)<script", text) is None


def test_html_leads_each_function_with_its_diagnosis():
    page = to_html(diagnosed())
    start = page.index("<h3>To fix: <code>softmax.softmax</code>")
    diagnosis = page[start:].split("\n")[1]
    assert diagnosis.startswith('<ul class="diagnosis"><li>1. <strong>'
                                f"{html.escape(WRONG)}</strong>")
    assert "cost 3 tests, 4 points" in diagnosis and "cost 2 tests, 2.5 points" in diagnosis
    assert page.count(html.escape(WRONG)) == 1
    assert "<pre>softmax(X) for X (3, 5): see 1 above</pre>" in page
    assert "<script" not in page.lower()
    assert set(re.findall(r"<(\w+)", page.lower())) <= HTML_TAGS


def test_table_leads_each_function_with_its_diagnosis():
    lines = [line.rstrip() for line in _recorded(diagnosed()).splitlines()]
    start = lines.index("softmax.softmax  1/7.5")
    assert lines[start + 1:start + 3] == [f"  1. {WRONG} — cost 3 tests, 4 points",
                                          f"  2. {BOOM} — cost 2 tests, 2.5 points"]
    text = "\n".join(lines)
    assert text.count(WRONG) == 1 and text.count(BOOM) == 1  # verbatim: no markup, once
    assert "softmax(X) for X (3, 5): see 1 above" in text
    assert lines.index("softmax.logsumexp  0/1") < lines.index(
        "softmax, the topic as a whole  0/1")


def test_gradescope_keeps_each_tests_message_and_sums_up_the_diagnosis():
    results = to_gradescope(diagnosed())
    _check_gradescope(results)
    tests = {t["name"]: t for t in results["tests"]}
    assert f"softmax(X): {WRONG}" in tests["softmax: test_softmax_b"]["output"]
    assert f"softmax.softmax: {WRONG} — cost 3 tests, 4 points" in results["output"]


def test_a_report_without_mistakes_still_renders():
    """A report.json written before tests had a `mistake` (a batch's earlier run)."""
    old = diagnosed()
    for test in old["topics"][0]["tests"]:
        del test["mistake"]
    text = to_markdown(old)
    assert text.count(BOOM) == 1 and text.count(WRONG) == 2  # each message where it is
    assert to_html(old) and _recorded(old)


def test_a_failure_of_the_whole_module_is_one_fix_not_one_per_function():
    """A syntax error fails every test of every function with one message: the report says
    it once, as the module's fix, and a function that failed otherwise keeps its own."""
    syntax = "softmax.py has a syntax error at line 18: expected ':'."
    report = copy.deepcopy(REPORT)
    report["topics"][0]["tests"] = [
        _test("test_softmax_a", "error", 0, 2, syntax),
        _test("test_softmax_b", "error", 0, 1, syntax),
        _test("test_logsumexp_a", "error", 0, 1, syntax),
        _test("test_log_softmax_a", "failed", 0, 1, "log_softmax is -inf for large logits"),
    ]
    fixes = function_fixes(report["topics"][0])
    assert [(f.title, f.score_text, len(f.tests)) for f in fixes] == [
        ("softmax, the whole module", "0/4", 3), ("softmax.log_softmax", "0/1", 1)]
    assert fixes[0].diagnoses[0].text == syntax and fixes[0].diagnoses[0].lost == 4
    text = to_markdown(report)
    assert text.count("### To fix") == 2 and text.count(syntax) == 1

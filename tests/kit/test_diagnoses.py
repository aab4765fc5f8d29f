"""One mistake, said once (#14): a softmax normalised over the wrong dim fails several tests
with the one mistake the hidden tests recognise. report.json records it for every test it cost,
and report.md, report.html and the terminal table lead the function's tests with it, once, with
the tests and points it cost, before the tests' details (which refer to it). A correct
submission has nothing to diagnose."""

from __future__ import annotations

import html
import io
import json

import pytest
import torch
from rich.console import Console

from grader import nbcheck
from grader.grade import grade
from grader.notebooks import group_of
from grader.report.formats import points, to_gradescope, topic_functions
from grader.report.schema import GradescopeResults, Report
from grader.report.scoring import settle_served
from grader.report.table import render_table
from tests.kit.test_schema import validate
from tests.kit.variants import KIT_ROOT, replace_definitions
from tests.public._mistakes_softmax import softmax_mistakes

pytestmark = pytest.mark.heavy(50)  # rough seconds (two gradings); see tests/kit/conftest.py

WRONG_DIM = '''
def softmax(X):
    X_exp = torch.exp(X - X.max(dim=0, keepdim=True).values)
    return X_exp / X_exp.sum(dim=0, keepdim=True)
'''
# the words of softmax_mistakes (tests/public/_mistakes_softmax.py) for this mistake
MISTAKE = ("each column sums to 1, not each row: normalise over dim=1 (the classes), "
           "not dim=0 (the examples).")


def _graded(root, source: str) -> tuple[dict, dict[str, str]]:
    """report.json (as `grade` returns it) and the text of the report's other forms."""
    sub, out = root / "sub", root / "out"
    sub.mkdir()
    (sub / "softmax.py").write_text(source)
    report = grade(sub, ["softmax"], out_dir=out)
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    validate(report, Report)
    validate(json.loads((out / "results.json").read_text(encoding="utf-8")), GradescopeResults,
             "results")
    console = Console(file=io.StringIO(), record=True, width=400)
    render_table(report, console)
    return report, {"md": (out / "report.md").read_text(encoding="utf-8"),
                    "html": (out / "report.html").read_text(encoding="utf-8"),
                    "table": console.export_text()}


@pytest.fixture(scope="module")
def wrong_dim(tmp_path_factory) -> tuple[dict, dict[str, str]]:
    reference = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    return _graded(tmp_path_factory.mktemp("wrong_dim"), replace_definitions(reference, WRONG_DIM))


@pytest.fixture(scope="module")
def heading(wrong_dim) -> str:
    """`softmax.softmax · 0/24`: the function and its score over all its tests."""
    report, _ = wrong_dim
    mine = [t for t in report["topics"][0]["tests"]
            if group_of(t["name"], topic_functions("softmax")) == "softmax"]
    score = f"{points(sum(t['score'] for t in mine))}/{points(sum(t['max_score'] for t in mine))}"
    return f"softmax.softmax · {score}"


@pytest.fixture(scope="module")
def cost(wrong_dim) -> str:
    """What the mistake cost, as every form says it: `cost 13 tests, 24 points`: every wrong
    result of softmax, the one mistake recognised there (also where a test did not name it)."""
    report, _ = wrong_dim
    hit = [t for t in report["topics"][0]["tests"] if t["outcome"] == "failed"
           and t["score"] < t["max_score"]
           and group_of(t["name"], topic_functions("softmax")) == "softmax"]
    assert {t["mistake"] for t in hit} <= {MISTAKE, None}
    lost = sum(t["max_score"] - t["score"] for t in hit)
    return f"cost {len(hit)} tests, {points(lost)} points"


def test_the_hidden_tests_still_recognise_the_mistake_in_these_words():
    assert MISTAKE in softmax_mistakes(torch.zeros(2, 3))


def test_report_json_records_the_mistake_of_every_test_it_cost(wrong_dim):
    report, _ = wrong_dim
    (topic,) = report["topics"]
    tests = {t["name"]: t for t in topic["tests"]}
    hit = [t for t in tests.values() if t["mistake"] is not None]
    assert len(hit) >= 5, "the hidden tests should recognise the mistake in several tests"
    for t in hit:
        assert t["mistake"] == MISTAKE, t["name"]
        assert t["outcome"] == "failed" and t["score"] == 0 < t["max_score"]
        assert t["message"].endswith(": " + MISTAKE)  # the text the student reads, as before
    assert tests["test_softmax_matches_torch"]["mistake"] == MISTAKE
    for t in tests.values():  # a test that did not recognise it neither names it nor carries it
        assert (MISTAKE in t["message"]) == (t["mistake"] is not None), t["name"]
    assert {t["name"] for t in hit} <= {n for n in tests if n.startswith("test_softmax_")}


def test_report_md_leads_the_function_with_its_one_mistake(wrong_dim, heading, cost):
    _, forms = wrong_dim
    assert forms["md"].count(MISTAKE) == 1  # once, in the diagnosis; the details refer to it
    lines = forms["md"].splitlines()
    start = lines.index(f"### To fix: {heading}")
    first = next(line for line in lines[start + 1:] if line.strip())
    assert first == f"1. **{MISTAKE}** — {cost}"
    section = "\n".join(lines[start:])
    assert section.index(MISTAKE) < section.index("#### test")
    assert "softmax(X) for X (3, 5): see 1 above" in section
    # the function's other lost tests are still listed, with their own messages
    assert "row 1 of softmax(X) sums to" in section


def test_the_terminal_table_leads_the_function_with_its_one_mistake(wrong_dim, heading, cost):
    _, forms = wrong_dim
    assert forms["table"].count(MISTAKE) == 1
    lines = [line.rstrip() for line in forms["table"].splitlines()]
    start = lines.index(heading.replace(" · ", "  "))
    assert lines[start + 1] == f"  1. {MISTAKE} — {cost}"
    assert "┃ Test" in lines[start + 3]  # then the table of the tests' details
    assert "softmax(X) for X (3, 5): see 1 above" in forms["table"]


def test_report_html_leads_the_function_with_its_one_mistake(wrong_dim, cost):
    _, forms = wrong_dim
    page = forms["html"]
    assert page.count(html.escape(MISTAKE)) == 1
    start = page.index("<h3>To fix: <code>softmax.softmax</code>")
    after = page[start:].split("\n")[1]
    assert after.startswith('<ul class="diagnosis"><li>1. ')
    assert f"<strong>{html.escape(MISTAKE)}</strong>" in after and html.escape(cost) in after
    assert page.index(html.escape(MISTAKE)) < page.index("<article", start)


def test_gradescope_summary_names_the_mistake_once(wrong_dim, cost):
    report, _ = wrong_dim
    output = to_gradescope(report)["output"]
    assert f"softmax.softmax: {MISTAKE} — {cost}" in output.splitlines()
    json.dumps(to_gradescope(report), allow_nan=False)


def test_a_notebooks_cell_of_checks_says_the_mistake_once(wrong_dim):
    """The hidden checks' part of the cell: the mistake once, with what it cost there."""
    report, _ = wrong_dim
    tests = [t for t in report["topics"][0]["tests"] if t["name"].startswith("test_softmax_")
             and not t["name"].startswith("test_softmax_regression")
             and t["visibility"] == "hidden"]
    lost = [t for t in tests if t["score"] < t["max_score"]]
    out = "\n".join(nbcheck._lost_lines(lost, named=False))
    assert out.count(MISTAKE) == 1
    wrong = [t for t in lost if t["outcome"] == "failed"]
    cost = (f"cost {len(wrong)} tests, "
            f"{points(sum(t['max_score'] - t['score'] for t in wrong))} points")
    assert out.splitlines()[0] == f"  1. {MISTAKE} — {cost}"


def test_a_correct_submission_has_nothing_to_diagnose(tmp_path):
    report, forms = _graded(tmp_path, (KIT_ROOT / "solutions" / "softmax.py").read_text())
    assert report["score"] == report["max_score"] > 0
    assert all(t["mistake"] is None for t in report["topics"][0]["tests"])
    for name, text in forms.items():
        assert "To fix" not in text, name
        assert "— cost" not in text and 'class="diagnosis"' not in text, name
        assert not any(m in text for m in softmax_mistakes(torch.zeros(2, 3))), name


def test_a_function_that_fails_only_through_a_wrong_callee_is_graded_as_right(wrong_dim):
    """softmax_regression calls softmax, which normalises the wrong dim: graded with the
    grader's softmax in place of the student's, it is right, so the mistake costs softmax's
    tests once, and every form of the report says where the fix is."""
    report, forms = wrong_dim
    (topic,) = report["topics"]
    regression = [t for t in topic["tests"] if t["name"].startswith("test_softmax_regression")]
    assert regression and all(t["score"] == t["max_score"] and t["served"] == ["softmax"]
                              for t in regression), regression
    assert any("gradient" in t["name"] for t in regression)  # autograd through the grader's
    softmax = [t for t in topic["tests"]
               if group_of(t["name"], topic_functions("softmax")) == "softmax"]
    assert topic["max_score"] - topic["score"] == sum(t["max_score"] - t["score"]
                                                      for t in softmax)
    for name, text in forms.items():
        assert "passed with a right softmax in place of yours" in " ".join(text.split()), name


def test_a_function_wrong_itself_still_fails_beside_a_wrong_callee(tmp_path):
    """The same wrong softmax, and a softmax_regression that drops the bias: its tests still
    fail (the grader's softmax does not make them pass), and no test says it was served."""
    reference = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    source = replace_definitions(reference, WRONG_DIM + '''
def softmax_regression(X, W, b):
    return softmax(X.reshape(-1, W.shape[0]) @ W)
''')
    report, _ = _graded(tmp_path, source)
    regression = [t for t in report["topics"][0]["tests"]
                  if t["name"].startswith("test_softmax_regression")]
    assert any(t["score"] < t["max_score"] for t in regression), regression
    assert not any("served" in t for t in regression if t["score"] < t["max_score"])


def _record(name: str, score: float, **extra) -> dict:
    return {"topic": "softmax", "name": name, "visibility": "hidden", "score": score,
            "max_score": 2.0, "outcome": "passed" if score else "failed",
            "message": "" if score else "wrong", "mistake": None, "hint": "",
            "duration_s": 0.1, **extra}


@pytest.mark.parametrize("callee_lost,counts", [(True, True), (False, False)])
def test_a_served_pass_counts_only_where_the_callee_is_wrong(callee_lost, counts):
    """A caller that passes with the grader's softmax but fails with the student's own, which
    passes all its own tests, is wrong in how it calls softmax (a keyword it drops, a device
    it picks): its first failure stands. Only a callee that lost a test of its own makes the
    served pass count."""
    first = _record("test_softmax_regression_shape", 0.0, message="rows do not sum to 1")
    served = _record("test_softmax_regression_shape", 2.0, served=["softmax"], unserved=first)
    callee = _record("test_softmax_rows_sum_to_one", 0.0 if callee_lost else 2.0)
    (settled, _) = settle_served([served, callee])
    assert "unserved" not in settled
    assert settled == ({k: v for k, v in served.items() if k != "unserved"} if counts else first)


def test_a_served_callee_whose_caller_builds_a_class_leaves_the_worker_answering(tmp_path):
    """evaluate_accuracy calls accuracy (wrong: a fraction) and Accumulator (a class, never
    served: its objects would carry the reference's code). Its failed tests run again with
    the grader's accuracy and pass; no later test finds the worker out of step with the
    grader ("the process ... died"), as when a callback went unanswered."""
    from tests.kit.variants_cross_entropy import MISTAKES

    (variant,) = [v for v in MISTAKES if v.name == "accuracy_fraction"]
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "cross_entropy.py").write_text(replace_definitions(
        (KIT_ROOT / "solutions" / "cross_entropy.py").read_text(), variant.source))
    report = grade(sub, ["cross_entropy"], suite="public", out_dir=tmp_path / "out")
    tests = report["topics"][0]["tests"]
    assert not [t["name"] for t in tests if t["outcome"] == "error"]
    evaluate = [t for t in tests if t["name"].startswith("test_evaluate_accuracy")]
    assert evaluate and all(t["score"] == t["max_score"] and t["served"] == ["accuracy"]
                            for t in evaluate), evaluate


def test_a_served_rerun_starts_from_a_fresh_module(tmp_path):
    """The rerun with the grader's softmax runs in a new worker: a softmax_regression that is
    right only from its second call on (state its first call left behind) fails the rerun
    too, where the same worker would have let it pass."""
    reference = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    source = replace_definitions(reference, WRONG_DIM + '''
_calls = []

def softmax_regression(X, W, b):
    _calls.append(1)
    scores = X.reshape(-1, W.shape[0]) @ W + b
    return softmax(scores if len(_calls) > 1 else -scores)
''')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "softmax.py").write_text(source)
    report = grade(sub, ["softmax"], "public",
                   keyword="test_softmax_small_example or test_softmax_regression_small_example")
    (regression,) = [t for t in report["topics"][0]["tests"]
                     if t["name"] == "test_softmax_regression_small_example"]
    assert regression["score"] == 0 and "served" not in regression, regression

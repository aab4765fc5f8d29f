"""Only the arguments the contract updates in place (course.toml `in_place`) come back from the
worker. Any other change to an argument fails the test that made it, with a message naming the
argument and what changed, also when a generator the call returned changes it while it is
iterated; nothing of it reaches the test's tensors, so an oracle computed from them sees values
student code never touched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from grader.course import load_course, reference_parameters
from grader.failures import ArgumentChanged
from grader.handle import _apply_writeback, _changed_arguments
from grader.sandbox import wire
from grader.sandbox.client import decode_reply
from tests.kit import variants_sgd
from tests.kit.students import student_of
from tests.kit.variants import KIT_ROOT, Variant, build_submission

pytestmark = pytest.mark.heavy(60)  # rough seconds; see tests/kit/conftest.py

# Functions of the sgd topic, some with their parameters renamed: the contract's names (the
# reference's) are what messages and `in_place` use.
SOURCE = '''
import torch

def sgd(weights, lr, batch_size):
    with torch.no_grad():
        for p in weights:
            p -= lr * p.grad / batch_size
            p.grad.zero_()

def squared_loss(prediction, target):
    prediction -= target.reshape(prediction.shape)
    return prediction ** 2 / 2

def linreg(X, w, b):
    out = X @ w + b
    X.add_(1.0).sub_(1.0)
    return out

def closed_form_linreg(features, labels):
    old = features[0, 0].item()
    features[0, 0] = old + 1.0
    features[0, 0] = old
    return features.t_(), labels

def gradient_descent(f, x0, lr, num_steps):
    x0.requires_grad_(True)
    f(x0).backward()
    return x0.grad

def synthetic_data(w, b, num_examples, noise=0.01):
    w[0] += 1e-6
    w[0] -= 2e-6
    w[0] += 1e-6
    return w, b

def data_iter(batch_size, features, labels):
    for i in range(0, len(features), batch_size):
        yield features[i:i + batch_size], labels[i:i + batch_size]
    features.zero_()
'''


@pytest.fixture(scope="module", params=["worker", "in-process"])
def student(request, tmp_path_factory):
    sub = tmp_path_factory.mktemp("sub")
    (sub / "sgd.py").write_text(textwrap.dedent(SOURCE))
    with student_of(sub, "sgd", in_process=request.param == "in-process") as s:
        yield s


def test_in_place_arguments_are_named_by_the_reference():
    """Every `in_place` name of course.toml is a positional parameter of its function in the
    reference, so it resolves to a position whatever the student calls it."""
    course = load_course()
    declared = [(t.name, f, name) for t in course.topics for f, names in t.in_place.items()
                for name in names]
    assert ("sgd", "sgd", "params") in declared
    for topic, function, name in declared:
        assert name in reference_parameters(topic).get(function, ()), (topic, function, name)


def test_an_in_place_argument_comes_back_under_a_students_own_name(student):
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.full((3,), 2.0)
    student.sgd([w], 0.5, 2)
    assert torch.equal(w.detach(), torch.full((3,), 0.5))
    assert torch.equal(w.grad, torch.zeros(3))


def test_a_changed_argument_fails_and_never_reaches_the_caller(student):
    y_hat, y = torch.tensor([[3.0], [1.0]]), torch.tensor([1.0, 1.0])
    with pytest.raises(ArgumentChanged, match=r"squared_loss changed its argument y_hat in "
                       r"place \(its values\): y_hat was modified by your function, which left "
                       r"y_hat perturbed \(largest change 1\)"):
        student.squared_loss(y_hat, y)
    assert torch.equal(y_hat, torch.tensor([[3.0], [1.0]]))


def test_an_argument_restored_exactly_is_unchanged(student):
    X = torch.tensor([[1.0, 2.0]])
    out = student.linreg(X, torch.ones(2, 1), torch.zeros(1))
    assert torch.equal(out, torch.tensor([[3.0]]))


def test_a_change_of_layout_is_named(student):
    features = torch.arange(6.0).reshape(2, 3)
    with pytest.raises(ArgumentChanged, match=r"its argument features in place \(its shape\)"):
        student.closed_form_linreg(features, torch.zeros(2, 1))
    assert features.shape == (2, 3)


def test_a_gradient_left_on_an_argument_is_named(student):
    x0 = torch.ones(2)
    with pytest.raises(ArgumentChanged, match=r"x0 in place \(whether it requires grad, its "
                       r"\.grad\): backward\(\) accumulates into the caller's x0\.grad"):
        student.gradient_descent(torch.sum, x0, 0.1, 1)
    assert not x0.requires_grad and x0.grad is None


def test_rounding_left_behind_is_told_apart(student):
    w = torch.tensor([0.7, 0.2], dtype=torch.float64)
    with pytest.raises(ArgumentChanged, match="left w changed by rounding"):
        student.synthetic_data(w, 4.2, 3)
    assert torch.equal(w, torch.tensor([0.7, 0.2], dtype=torch.float64))


def test_a_generator_that_changes_its_argument_fails_when_exhausted(student):
    features, labels = torch.arange(4.0).reshape(4, 1), torch.arange(4)
    batches = iter(student.data_iter(2, features, labels))
    assert [int(y[0]) for _, y in (next(batches), next(batches))] == [0, 2]
    with pytest.raises(ArgumentChanged, match=r"data_iter changed its argument features in place "
                       r"while it was iterated \(its values\).*shuffle a list of indices"):
        next(batches)
    assert torch.equal(features, torch.arange(4.0).reshape(4, 1))


def test_the_grader_writes_back_only_what_the_contract_allows():
    """The worker is the student's process: a reply that claims a change to any other argument
    changes nothing in the caller."""
    x, p = torch.zeros(2), torch.zeros(2)
    claims = [[0, torch.ones(2), True, True, torch.ones(2)], [7, torch.ones(2), True, True, None],
              [-1, torch.ones(2), True, True, None], [1, torch.ones(2), False, False, None]]
    _apply_writeback("sgd", [x, p], claims, [["x", False], ["params[0]", True]])
    assert torch.equal(x, torch.zeros(2)) and not x.requires_grad and x.grad is None
    assert torch.equal(p, torch.ones(2))


@pytest.mark.parametrize("writeback", [
    [[[0], torch.ones(2), False, False, None]], [["0", torch.ones(2), False, False, None]],
    [[0, 1]], [None], [[0, torch.ones(2), 0, 0, None]], [[0, [1.0], False, False, None]],
    [[0, None, False, True, "grad"]], {"0": 1}, "writeback"])
def test_a_malformed_writeback_is_a_reply_that_does_not_decode(writeback):
    """Garbage where the writeback goes is a worker that broke the protocol (the student's
    crash), never something the grader skips or trips over."""
    nonce = "n"
    enc = wire.DataEncoder(lambda obj: (1, "object", "?"))
    reply = enc.finish({"result": None, "writeback": enc.encode(writeback),
                        "head": enc.encode({"nonce": nonce, "ok": True})})
    with pytest.raises(wire.WireError, match="malformed writeback"):
        decode_reply(reply, nonce, [torch.zeros(2)], lambda handle: None)


def test_an_in_place_argument_left_as_what_the_caller_cannot_take_is_the_students():
    """A float parameter that requires grad cannot hold integer data: the student's function
    left it so (ArgumentChanged, naming it); the grader's own order of updates (requires_grad
    off before the data changes) takes any state the worker can reach."""
    p = torch.zeros(2, requires_grad=True)
    _apply_writeback("sgd", [p], [[0, torch.ones(2, dtype=torch.int64), False, False, None]],
                     [["params[0]", True]])
    assert p.dtype == torch.int64 and not p.requires_grad and p.tolist() == [1, 1]
    q = torch.zeros(2, requires_grad=True)
    with pytest.raises(ArgumentChanged, match=r"sgd left its argument params\[0\] as a int64 "
                       r"tensor of shape \(2,\) \(requires_grad=True\), which the caller's "
                       r"params\[0\] cannot take"):
        _apply_writeback("sgd", [q], [[0, torch.ones(2, dtype=torch.int64), True, False, None]],
                         [["params[0]", True]])


@pytest.mark.parametrize("changed,later", [
    ("x", None), ([["X"]], {}), ([["X", [["nothing"]]]], {"arguments": 3}), (None, [1]),
    ([[None, None]], {"function": None, "arguments": [["f", "values"]]})])
def test_a_malformed_report_of_changes_is_no_change(changed, later):
    assert _changed_arguments("softmax", changed, later) is None


# --------------------------------------------------------------------------- whole submissions


def grade(submission, out, *args: str) -> dict:
    subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out),
                    *args], cwd=KIT_ROOT, check=True, capture_output=True)
    return json.loads((out / "report.json").read_text())


def graded_tests(report: dict) -> list[dict]:
    return [t for topic in report["topics"] for t in topic["tests"]]


ZERO_X_SOFTMAX = Variant("softmax", "zeroes_X", '''
def softmax(X):
    X.zero_()
    return torch.full_like(X, 1.0 / X.shape[1])
''')


def test_a_softmax_that_zeroes_X_earns_nothing_on_softmax(tmp_path):
    """Zeroed, X's oracle would be the uniform 1/q this returns: it scored 21/43 when every
    changed argument was written back."""
    entry = build_submission(ZERO_X_SOFTMAX, tmp_path / "in")
    tests = graded_tests(grade(entry, tmp_path / "out", "--topics", "softmax",
                               "-k", "test_softmax_ and not regression"))
    assert tests and all(t["score"] == 0 for t in tests), [(t["name"], t["score"]) for t in tests]
    failed = [t["message"] for t in tests if t["outcome"] == "failed"]
    assert failed and all("softmax changed its argument X in place (its values)" in m
                          for m in failed), failed


def test_a_data_iter_that_shuffles_in_place_loses_points(tmp_path):
    """The argument check of a call runs before a generator's body does: features and labels
    shuffled in place (`features[:] = features[perm]`) got full marks."""
    variant = next(v for v in variants_sgd.MISTAKES if v.name == "data_iter_shuffles_in_place")
    report = grade(build_submission(variant, tmp_path / "in"), tmp_path / "out", "--topics",
                   "sgd", "-k", "data_iter")
    assert report["score"] < report["max_score"]
    assert any(variant.expect in t["message"] for t in graded_tests(report))


def test_the_reference_gets_every_point_on_sgd(tmp_path):
    report = grade(KIT_ROOT / "solutions", tmp_path / "out", "--topics", "sgd")
    assert report["score"] == report["max_score"] > 0, [
        (t["name"], t["message"]) for t in graded_tests(report) if t["score"] < t["max_score"]]


DATA_SOURCE = '''
import torch

def sgd(params, lr, batch_size):
    for p in params:  # the D2L of older editions: no no_grad, writes through .data
        p.data -= lr * p.grad / batch_size
        p.grad.data.zero_()

def squared_loss(y_hat, y):
    y_hat.data -= y.reshape(y_hat.shape)
    return y_hat ** 2 / 2
'''


@pytest.mark.parametrize("mode", ["worker", "in-process"])
def test_writes_through_data_count_both_ways(tmp_path, mode):
    """A write through `.data` leaves no trace in the version counters: it must still come back
    when the contract lets the argument change (sgd's params), and still fail when it does not
    (squared_loss's y_hat)."""
    (tmp_path / "sgd.py").write_text(DATA_SOURCE)
    with student_of(tmp_path, "sgd", in_process=mode == "in-process") as s:
        w = torch.ones(3, requires_grad=True)
        w.grad = torch.full((3,), 2.0)
        s.sgd([w], 0.5, 2)
        assert torch.equal(w.detach(), torch.full((3,), 0.5))
        assert torch.equal(w.grad, torch.zeros(3))
        s._session.begin_test("u")
        y_hat = torch.tensor([[3.0], [1.0]])
        with pytest.raises(ArgumentChanged, match="squared_loss changed its argument y_hat"):
            s.squared_loss(y_hat, torch.tensor([1.0, 1.0]))

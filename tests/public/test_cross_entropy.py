"""Public checks for the cross-entropy loss and evaluation (§3.4.6, §3.6, §3.7.2): read them,
run them, then make them pass. The hidden tests check the same functions on many more inputs
(float32 and float64, huge logits, uneven batches, nets in train mode)."""

import functools
import math

import pytest
import torch

from grader.checks import assert_close, expect_float, expect_tensor


@pytest.mark.points(1)
def test_cross_entropy_small(student):
    """D2L's example (§3.6.3): -log of each example's probability of its true class, one loss
    per example."""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    out = expect_tensor(student.cross_entropy(y_hat, y), "cross_entropy(y_hat, y)", shape=(2,))
    assert_close(out, torch.tensor([-math.log(0.1), -math.log(0.5)]), "cross_entropy(y_hat, y)")


@pytest.mark.points(1)
def test_cross_entropy_from_logits_small(student):
    """Cross-entropy from logits equals -log softmax(logits)[y] (§3.7.2)."""
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    expected = -torch.log_softmax(logits, 1)[torch.arange(2), y]
    assert_close(student.cross_entropy_from_logits(logits, y), expected,
                 "cross_entropy_from_logits(logits, y)")


@pytest.mark.points(1)
def test_cross_entropy_from_logits_large(student):
    """Logits of +-1000 give a finite loss: the true class 1000 below the best one costs about
    1000 (§3.7.2: logsumexp(o) - o_y, never log(softmax(o)))."""
    logits = torch.tensor([[1000.0, 0.0], [-1000.0, -1000.0]])
    y = torch.tensor([1, 0])
    out = expect_tensor(student.cross_entropy_from_logits(logits, y),
                        "cross_entropy_from_logits for logits of +-1000", shape=(2,))
    assert_close(out, torch.tensor([1000.0, math.log(2.0)]),
                 "cross_entropy_from_logits for logits of +-1000", atol=1e-3)


@pytest.mark.points(1)
def test_accuracy_small(student):
    """D2L's example (§3.6.5): one of the two predictions is right, so accuracy is 1.0 (a
    count; evaluate_accuracy divides by the number of examples)."""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    assert expect_float(student.accuracy(y_hat, y), "accuracy(y_hat, y)") == 1.0, (
        "accuracy(y_hat, y) should be 1.0: the number of correct predictions.")


@pytest.mark.points(1)
def test_accumulator_small(student):
    """Accumulator(2) sums two variables; reset() sets them back to 0 (§3.6.5)."""
    acc = student.Accumulator(2)
    acc.add(3, 10)
    acc.add(1.5, torch.tensor(5.0))
    assert (expect_float(acc[0], "acc[0]"), expect_float(acc[1], "acc[1]")) == (4.5, 15.0), (
        "after add(3, 10) and add(1.5, 5), acc[0] should be 4.5 and acc[1] 15.0.")
    acc.reset()
    assert expect_float(acc[0], "acc[0] after reset()") == 0.0, "reset() should set the sums to 0"


@pytest.mark.points(1)
def test_evaluate_accuracy_small(student):
    """A linear classifier that predicts class 0 when x > 0 and class 1 otherwise, on two
    batches: 3 of 5 examples are right, so the accuracy is 0.6 (§3.6.5)."""
    net = functools.partial(torch.nn.functional.linear, weight=torch.tensor([[1.0], [-1.0]]))
    data_iter = [(torch.tensor([[1.0], [-2.0], [3.0]]), torch.tensor([0, 1, 1])),
                 (torch.tensor([[-1.0], [2.0]]), torch.tensor([0, 0]))]
    out = expect_float(student.evaluate_accuracy(net, data_iter), "evaluate_accuracy")
    assert abs(out - 0.6) < 1e-9, f"evaluate_accuracy gave {out}, expected 0.6 (3 of 5)."

"""Public checks for the cross-entropy loss and evaluation (§3.4.6, §3.6, §3.7.2): read them,
run them, then make them pass. Each function has a small example and the input that breaks its
most common mistakes (zero and tiny probabilities, huge logits, scores that are not
probabilities, a smaller last batch, a BatchNorm net handed over in training mode); a mistake
the tests recognise is named with the same words the hidden tests use. The hidden tests check
the same functions on many more inputs (float32 and float64, huge logits, uneven batches, nets
in train mode)."""

import functools
import math

import pytest
import torch

from grader.checks import (
    assert_close,
    expect_tensor,
    hints_on_error,
)
from tests.public._conventions import DATA_ITERATOR_HINTS, expect_exact_float
from tests.public._mistakes_cross_entropy import (
    FRESH_FIX,
    RESET_FIX,
    RESET_HINTS,
    batchnorm_data,
    batchnorm_net,
    check_accuracy,
    check_added,
    check_eval_mode,
    check_fraction,
    check_mode_restored,
    check_no_graph,
    check_own_sums,
    check_zeros,
    cross_entropy_mistakes,
    expect_finite_losses,
    expect_not_clamped,
    expected_fraction,
    from_logits_mistakes,
    logits_scale,
    pick64,
    read,
    read_count,
)
from torchdrill.callables import OneShotBatches

# --------------------------------------------------------------------------- cross_entropy


@pytest.mark.points(1)
def test_cross_entropy_small(student):
    """D2L's example (§3.6.3): -log of each example's probability of its true class, one loss
    per example."""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    out = expect_tensor(student.cross_entropy(y_hat, y), "cross_entropy(y_hat, y)", shape=(2,))
    assert_close(out, torch.tensor([-math.log(0.1), -math.log(0.5)]), "cross_entropy(y_hat, y)",
                 mistakes=cross_entropy_mistakes(y_hat, y))


@pytest.mark.points(1)
def test_cross_entropy_other_classes_zero(student):
    """Other classes may have probability exactly 0 (a confident model, a one-hot row): the loss
    is still -log of the TRUE class's probability, finite, here -log 0.8 and log 2 for float64
    probabilities stored transposed (non-contiguous). Pick y_hat[i, y[i]] first, then take the
    log; a one-hot mask times log(y_hat) gives 0 * -inf = nan (§3.4.6)."""
    y_hat = torch.tensor([[0.0, 0.5], [0.2, 0.5], [0.8, 0.0]], dtype=torch.float64).T
    y = torch.tensor([2, 0])
    out = expect_tensor(student.cross_entropy(y_hat, y),
                        "cross_entropy for probabilities with zeros", shape=(2,),
                        dtype=torch.float64)
    assert_close(out, torch.tensor([-math.log(0.8), math.log(2.0)], dtype=torch.float64),
                 "cross_entropy for probabilities with zeros",
                 mistakes=cross_entropy_mistakes(y_hat, y))


@pytest.mark.points(2)
def test_cross_entropy_tiny_true_probabilities(student):
    """A true class of probability 1e-20 costs -log(1e-20) = 46.05, and one of float32's smallest
    normal number (about 1.2e-38) costs 87.34: exact, never clamped (clamp(min=1e-12)) or shifted
    by an epsilon (log(p + 1e-12)), which would cap the loss near 27.6 (§3.4.6)."""
    tiny = torch.finfo(torch.float32).tiny
    y_hat = torch.tensor([[1e-20, 0.5, 0.5], [0.25, 0.75, tiny]])
    y = torch.tensor([0, 2])
    what = "cross_entropy for true classes of probability 1e-20 and 1.2e-38"
    out = expect_tensor(student.cross_entropy(y_hat, y), what, shape=(2,))
    expect_not_clamped(out, y_hat, y, what)
    assert_close(out, (-torch.log(pick64(y_hat, y))).float(), what,
                 mistakes=cross_entropy_mistakes(y_hat, y))


# --------------------------------------------------------------------------- from logits


@pytest.mark.points(1)
def test_cross_entropy_from_logits_small(student):
    """Cross-entropy from logits equals -log softmax(logits)[y] (§3.7.2)."""
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    expected = -torch.log_softmax(logits, 1)[torch.arange(2), y]
    assert_close(student.cross_entropy_from_logits(logits, y), expected,
                 "cross_entropy_from_logits(logits, y)", scale=logits_scale(logits),
                 mistakes=from_logits_mistakes(logits, y))


@pytest.mark.points(1)
def test_cross_entropy_from_logits_large(student):
    """Logits of +-1000 give a finite loss: the true class 1000 below the best one costs about
    1000 (§3.7.2: logsumexp(o) - o_y, never log(softmax(o)))."""
    logits = torch.tensor([[1000.0, 0.0], [-1000.0, -1000.0]])
    y = torch.tensor([1, 0])
    out = expect_tensor(student.cross_entropy_from_logits(logits, y),
                        "cross_entropy_from_logits for logits of +-1000", shape=(2,))
    mistakes = from_logits_mistakes(logits, y)
    expect_finite_losses(out, logits, y, mistakes)
    assert_close(out, torch.tensor([1000.0, math.log(2.0)]),
                 "cross_entropy_from_logits for logits of +-1000", scale=logits_scale(logits),
                 mistakes=mistakes)


# --------------------------------------------------------------------------- accuracy


@pytest.mark.points(1)
def test_accuracy_small(student):
    """D2L's example (§3.6.5): one of the two predictions is right, so accuracy is 1.0, a count
    returned as a Python float, float(...), neither a 0-d tensor nor an int (.item() of an
    integer sum is an int); evaluate_accuracy divides it by the number of examples."""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    check_accuracy(student, y_hat, y, "accuracy(y_hat, y)", read=read_count)


@pytest.mark.points(1)
def test_accuracy_argmax_before_converting(student):
    """Four examples whose predicted classes (the argmax of each row) are 2, 2, 0 and 1, three
    of them right: take the argmax of the scores first, then convert the predictions to the
    labels' dtype; converting probabilities to int64 first truncates them all to 0 (§3.6.5)."""
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5], [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    check_accuracy(student, y_hat, torch.tensor([2, 1, 0, 1]), "accuracy for 3 of 4 right")


@pytest.mark.points(1)
def test_accuracy_of_float_labels(student):
    """y_hat may already hold predicted labels, shape (n,), here as floats (2.0, 0.0, ...): no
    argmax then (decide by y_hat's shape, not its dtype), just compare in the labels' dtype and
    count: 3 of 4 (§3.6.5)."""
    check_accuracy(student, torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([2, 0, 0, 1]),
                   "accuracy for predicted labels [2., 0., 1., 1.]")


# --------------------------------------------------------------------------- Accumulator


@pytest.mark.points(1)
def test_accumulator_small(student):
    """Accumulator(2) sums two variables: it starts at the floats 0.0 (not the int 0), after
    add(3, 10) and add(1.5, 5) it holds 4.5 and 15.0, and reset() sets every slot back to the
    float 0.0 (§3.6.5)."""
    acc = student.Accumulator(2)
    check_zeros(acc, 2, "a new Accumulator(2)", FRESH_FIX)
    acc.add(3, 10)
    acc.add(1.5, torch.tensor(5.0))
    when = "after add(3, 10) and add(1.5, 5)"
    check_added(read(acc, 2, when), [[3.0, 10.0], [1.5, 5.0]], when)
    acc.reset()
    with hints_on_error(RESET_HINTS):
        check_zeros(acc, 2, "Accumulator(2) after two add() calls and reset()", RESET_FIX)


@pytest.mark.points(1)
def test_accumulator_add_a_loss(student):
    """Adding a loss that requires grad (as training does) stores the plain number float(loss),
    not the tensor with its whole autograd graph (§3.6.5)."""
    acc = student.Accumulator(2)
    acc.add(torch.tensor(2.5, requires_grad=True), 4)
    check_added(read(acc, 2, "after add(loss, 4)"), [[2.5, 4.0]], "after add(loss, 4)")


@pytest.mark.points(1)
def test_accumulator_two_at_once(student):
    """Two Accumulators alive at once keep their own sums: creating and adding to a second one
    leaves the first as it was (§3.6.5)."""
    first = student.Accumulator(2)
    first.add(1.0, 2.0)
    second = student.Accumulator(2)
    second.add(10.0, 20.0)
    check_own_sums(first, [1.0, 2.0], "the first")
    check_own_sums(second, [10.0, 20.0], "the second")


# --------------------------------------------------------------------------- evaluate_accuracy


@pytest.mark.points(1)
def test_evaluate_accuracy_small(student):
    """A linear classifier that predicts class 0 when x > 0 and class 1 otherwise, on batches of
    3 and 2: 3 of 5 examples are right, so the accuracy is 0.6, not the mean of the batches'
    accuracies, (2/3 + 1/2) / 2 (§3.6.5)."""
    W = torch.tensor([[1.0], [-1.0]])
    net = functools.partial(torch.nn.functional.linear, weight=W)
    data_iter = [(torch.tensor([[1.0], [-2.0], [3.0]]), torch.tensor([0, 1, 1])),
                 (torch.tensor([[-1.0], [2.0]]), torch.tensor([0, 0]))]
    right, wrong = expected_fraction(lambda X: torch.nn.functional.linear(X, W), data_iter)
    check_fraction(student.evaluate_accuracy(net, data_iter), right, wrong,
                   "evaluate_accuracy over batches of 3 and 2")


@pytest.mark.points(1)
def test_evaluate_accuracy_reads_once(student):
    """data_iter may be a one-shot iterator, as a generator is: read it once, counting the
    examples (y.numel()) and the correct predictions in the same loop, and return the fraction
    as a Python float (§3.6.5)."""
    W = torch.tensor([[1.0], [-1.0]])
    net = functools.partial(torch.nn.functional.linear, weight=W)
    data = [(torch.tensor([[1.0], [-2.0], [3.0]]), torch.tensor([0, 1, 1])),
            (torch.tensor([[-1.0], [2.0]]), torch.tensor([0, 0]))]
    right, wrong = expected_fraction(lambda X: torch.nn.functional.linear(X, W), data)
    with hints_on_error(DATA_ITERATOR_HINTS):
        out = student.evaluate_accuracy(net, student.remote(OneShotBatches, data))
    what = "evaluate_accuracy over a one-shot iterator"
    check_fraction(expect_exact_float(out, what), right, wrong, what)


@pytest.mark.points(2)
def test_evaluate_accuracy_net_in_training_mode(student):
    """A net with BatchNorm handed over in training mode (13 examples in batches of 5, 5 and 3):
    evaluate it in evaluation mode (net.eval(): BatchNorm uses its running statistics, 7 of 13
    right, where training mode's batch statistics get 3), and put it back in training mode at
    the end (net.train(was_training)) (§3.6.5, §5.6)."""
    net = check_eval_mode(student, seed=4)
    check_mode_restored((net.training, net[1].training, net[2].training), "train")


@pytest.mark.points(1)
def test_evaluate_accuracy_net_in_eval_mode(student):
    """A net handed over in evaluation mode is evaluated in it (7 of 13 right) and left in it:
    restore the mode the net had (net.train(was_training)), not always training mode
    (§3.6.5)."""
    data_iter = batchnorm_data(4)
    right, wrong = expected_fraction(batchnorm_net(4).eval(), data_iter)
    net = student.remote(torch.nn.Sequential, *batchnorm_net(4))
    net.eval()
    check_fraction(student.evaluate_accuracy(net, data_iter), right, wrong, "evaluate_accuracy")
    check_mode_restored((net.training, net[1].training, net[2].training), "eval")


@pytest.mark.points(1)
def test_evaluate_accuracy_builds_no_graph_small(student):
    """The net's forward passes run inside `with torch.no_grad():`, which records no autograd
    graph: evaluation needs no gradients, only memory and time would be spent (§3.6.5)."""
    check_no_graph(student, net_seed=8, data_seed=9)

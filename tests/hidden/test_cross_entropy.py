"""Hidden tests for the cross-entropy loss and evaluation (§3.4.6, §3.6, §3.7.2).

Losses are checked on float32 and float64 inputs, contiguous or not, against torch's own
losses computed here in float64; tolerances grow with the logits' magnitude (what the rounding
of logsumexp(o) - o_y grows with). Accuracy is checked on scores and on predicted labels, with
labels of several integer dtypes. evaluate_accuracy gets data sets whose last batch is
smaller, plain-function nets, and nets built in the worker (`student.remote`) that behave
differently in train mode (BatchNorm), so that evaluating in the wrong mode is visible.
"""

import functools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given
from hypothesis import strategies as st

from grader.checks import (
    assert_close,
    expect_tensor,
    hints_on_error,
    max_abs,
)
from tests.hidden import _strategies as tds
from tests.hidden._conventions import (
    DATA_ITERATOR_HINTS,
    GPU,
    expect_exact_float,
    expect_on_gpu,
)
from tests.hidden._vjp import vjp
from tests.public._mistakes_cross_entropy import (
    FRESH_FIX,
    RESET_FIX,
    RESET_HINTS,
    SHARED,
    batches,
    batchnorm_data,
    batchnorm_net,
    check_accuracy,
    check_added,
    check_eval_mode,
    check_fraction,
    check_mode_restored,
    check_no_graph,
    check_own_sums,
    check_sums,
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


@st.composite
def probabilities_and_labels(draw):
    """Rows of probabilities (softmax of logits up to 10, so no entry rounds to 0), in any
    layout, with int64 labels."""
    n, q = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    dtype = draw(tds.dtypes())
    logits = draw(tds.tensors((n, q), dtype=torch.float64, layout="contiguous",
                              magnitude=st.sampled_from([0.1, 1.0, 3.0, 10.0])))
    probs = tds.with_layout(torch.softmax(logits, 1).to(dtype), draw(tds.layouts()))
    return probs, draw(tds.labels(n, q))


@pytest.mark.points(4)
@given(Py=probabilities_and_labels())
def test_cross_entropy_matches(student, Py):
    """cross_entropy(y_hat, y) is -log y_hat[i, y[i]] for each example, shape (n,), for
    probabilities in float32 and float64, contiguous or not, any number of examples and
    classes; y_hat and y are left unchanged (§3.4.6)."""
    y_hat, y = Py
    expected = (-torch.log(pick64(y_hat, y))).to(y_hat.dtype)
    out = student.cross_entropy(y_hat, y)  # the handle fails a change to an argument
    assert_close(out, expected, f"cross_entropy for y_hat {tuple(y_hat.shape)}",
                 mistakes=cross_entropy_mistakes(y_hat, y))


@st.composite
def probabilities_with_zeros(draw):
    """Rows of probabilities in which some classes other than the true one have probability
    exactly 0 (as a confident model's outputs, or one-hot targets), in any layout."""
    n, q = draw(st.integers(1, 9)), draw(st.integers(2, 9))
    dtype = draw(tds.dtypes())
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    y = torch.randint(0, q, (n,), generator=g)
    weights = torch.rand(n, q, generator=g, dtype=torch.float64) + 0.05
    zero = torch.rand(n, q, generator=g) < draw(st.sampled_from([0.3, 0.6, 1.0]))
    zero[torch.arange(n), y] = False
    zero[0, (int(y[0]) + 1) % q] = True  # at least one exact zero
    weights = weights.masked_fill(zero, 0.0)
    probs = (weights / weights.sum(1, keepdim=True)).to(dtype)
    return tds.with_layout(probs, draw(tds.layouts())), y


@pytest.mark.points(2)
@given(Py=probabilities_with_zeros())
def test_cross_entropy_zero_probabilities(student, Py):
    """Where classes other than the true one have probability exactly 0 (a confident model, a
    one-hot row), the loss is still the finite -log y_hat[i, y[i]]: only the true class's
    probability enters the loss, never log(0) of another class (§3.4.6)."""
    y_hat, y = Py
    expected = (-torch.log(pick64(y_hat, y))).to(y_hat.dtype)
    assert_close(student.cross_entropy(y_hat, y), expected,
                 f"cross_entropy for y_hat {tuple(y_hat.shape)} with zero probabilities",
                 mistakes=cross_entropy_mistakes(y_hat, y))


# probabilities of the true class far below 1e-12, down to each dtype's smallest normal
TINY = {torch.float32: (1e-13, 1e-20, 1e-30, torch.finfo(torch.float32).tiny),
        torch.float64: (1e-13, 1e-50, 1e-200, torch.finfo(torch.float64).tiny)}


@st.composite
def tiny_true_probabilities(draw):
    """Rows of probabilities whose true class has one of TINY's probabilities (the others
    share the rest), in any layout, float32 and float64."""
    n, q = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    dtype = draw(tds.dtypes())
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    y = torch.randint(0, q, (n,), generator=g)
    tiny = torch.tensor(TINY[dtype], dtype=torch.float64)
    p_true = tiny[torch.randint(0, len(tiny), (n,), generator=g)]
    p_true[0] = tiny[-1]  # the smallest normal, always
    rows = torch.arange(n)
    others = torch.rand(n, q, generator=g, dtype=torch.float64) + 0.1
    others[rows, y] = 0.0
    probs = others / others.sum(1, keepdim=True) * (1 - p_true[:, None])
    probs[rows, y] = p_true
    return tds.with_layout(probs.to(dtype), draw(tds.layouts())), y


@pytest.mark.points(2)
@given(Py=tiny_true_probabilities())
def test_cross_entropy_tiny_probabilities(student, Py):
    """The true class's probability may be as small as the dtype's smallest normal number
    (about 1e-38 in float32, 1e-308 in float64): the loss -log y_hat[i, y[i]] is exact there
    (87.3 and 708.4), never clamped or shifted by an epsilon (§3.4.6)."""
    y_hat, y = Py
    expected = -torch.log(pick64(y_hat, y))
    what = f"cross_entropy for y_hat {tuple(y_hat.shape)} with tiny probabilities"
    out = expect_tensor(student.cross_entropy(y_hat, y), what, shape=y.shape)
    expect_not_clamped(out, y_hat, y, what)
    assert_close(out, expected.to(y_hat.dtype), what, mistakes=cross_entropy_mistakes(y_hat, y))


@pytest.mark.points(1)
def test_cross_entropy_one_hot_rows(student):
    """A row that is exactly one-hot at the true class costs 0, and a 50/50 row with a third
    class at probability 0 costs log 2 (§3.4.6)."""
    y_hat = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.25, 0.75, 0.0]])
    y = torch.tensor([1, 0, 1])
    assert_close(student.cross_entropy(y_hat, y), (-torch.log(pick64(y_hat, y))).float(),
                 "cross_entropy for rows with probabilities 0 and 1",
                 mistakes=cross_entropy_mistakes(y_hat, y))


@pytest.mark.points(2)
def test_cross_entropy_one_loss_per_example(student):
    """A batch of 4 examples gives 4 losses, not their mean or sum (§3.4.6)."""
    y_hat = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25], [0.3, 0.3, 0.4]])
    y = torch.tensor([0, 1, 1, 2])
    assert_close(student.cross_entropy(y_hat, y), (-torch.log(pick64(y_hat, y))).float(),
                 "cross_entropy for a batch of 4", mistakes=cross_entropy_mistakes(y_hat, y))


@pytest.mark.points(1)
@tds.max_examples(at_most=10)
@given(Py=probabilities_and_labels(), seed=st.integers(0, 2**16))
def test_cross_entropy_gradient(student, Py, seed):
    """Autograd through your cross_entropy gives -v_i / y_hat[i, y[i]] at the true classes and
    0 elsewhere: build it from differentiable tensor operations (§3.4.6)."""
    y_hat, y = Py
    expect_tensor(student.cross_entropy(y_hat, y), "cross_entropy(y_hat, y)", shape=y.shape)
    v = tds.random_tensor((len(y),), seed, y_hat.dtype)
    P = y_hat.double().clone().requires_grad_(True)
    (expected,) = vjp(-torch.log(P[torch.arange(len(y)), y]), P, v.double())
    scale = float((v.double().abs() / pick64(y_hat, y)).max())
    assert_close(student.gradient("cross_entropy", y_hat, y, grad_output=v),
                 expected.to(y_hat.dtype), "the gradient of your cross_entropy", scale=scale)


# --------------------------------------------------------------------------- from logits


def oracle_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.double(), y, reduction="none").to(logits.dtype)


@st.composite
def logits_and_labels(draw, magnitude=None, min_classes=1):
    n, q = draw(st.integers(1, 9)), draw(st.integers(min_classes, 9))
    mag = draw(magnitude if magnitude is not None else tds.magnitudes())
    logits = draw(tds.tensors((n, q), magnitude=mag))
    return logits, draw(tds.labels(n, q))


@pytest.mark.points(4)
@given(Ly=logits_and_labels())
def test_cross_entropy_from_logits_matches(student, Ly):
    """cross_entropy_from_logits(logits, y) equals torch's per-example cross-entropy, shape
    (n,), for logits up to 1e4 in magnitude, float32 and float64, contiguous or not; the
    arguments are left unchanged (§3.7.2)."""
    logits, y = Ly
    expected = oracle_ce(logits, y)
    out = student.cross_entropy_from_logits(logits, y)  # the handle fails a change to an argument
    assert_close(out, expected, f"cross_entropy_from_logits for logits {tuple(logits.shape)}",
                 scale=logits_scale(logits), mistakes=from_logits_mistakes(logits, y))


@pytest.mark.points(3)
@given(Ly=logits_and_labels(magnitude=st.sampled_from([1e3, 1e4]), min_classes=2))
def test_cross_entropy_from_logits_huge_logits(student, Ly):
    """Logits of 1e3 to 1e4 give finite, accurate losses: no inf from log(softmax) underflow,
    no nan from exp overflow (§3.7.2)."""
    logits, y = Ly
    out = expect_tensor(student.cross_entropy_from_logits(logits, y),
                        "cross_entropy_from_logits for huge logits")
    mistakes = from_logits_mistakes(logits, y)
    expect_finite_losses(out, logits, y, mistakes)
    assert_close(out, oracle_ce(logits, y), "cross_entropy_from_logits for huge logits",
                 scale=logits_scale(logits), mistakes=mistakes)


@pytest.mark.points(2)
def test_cross_entropy_from_logits_far_below_max(student):
    """A true class far below the best logit (by 200, by 2e4) costs exactly that much: finite,
    never inf, even though its softmax probability rounds to 0 (§3.7.2)."""
    logits = torch.tensor([[0.0, -200.0, 1.0], [1e4, -1e4, 0.0], [-50.0, -50.0, -50.0]])
    y = torch.tensor([1, 1, 2])
    assert_close(student.cross_entropy_from_logits(logits, y), oracle_ce(logits, y),
                 "cross_entropy_from_logits for a true class far below the max",
                 scale=logits_scale(logits), mistakes=from_logits_mistakes(logits, y))


@pytest.mark.points(2)
@tds.max_examples(at_most=10)
@given(Ly=logits_and_labels(magnitude=tds.magnitudes(100.0)), seed=st.integers(0, 2**16))
def test_cross_entropy_from_logits_gradient(student, Ly, seed):
    """Autograd through your loss gives v_i * (softmax(o_i) - onehot(y_i)), the gradient
    softmax regression trains with (§3.4.6): build it from differentiable operations."""
    logits, y = Ly
    expect_tensor(student.cross_entropy_from_logits(logits, y),
                  "cross_entropy_from_logits(logits, y)", shape=y.shape)
    v = tds.random_tensor((len(y),), seed, logits.dtype)
    Lg = logits.double().clone().requires_grad_(True)
    (expected,) = vjp(F.cross_entropy(Lg, y, reduction="none"), Lg, v.double())
    assert_close(student.gradient("cross_entropy_from_logits", logits, y, grad_output=v),
                 expected.to(logits.dtype), "the gradient of your cross_entropy_from_logits",
                 scale=logits_scale(logits) * max_abs(v))


# --------------------------------------------------------------------------- accuracy


@st.composite
def scores_and_labels(draw, label_dtypes=(torch.int64,)):
    n, q = draw(st.integers(2, 20)), draw(st.integers(2, 9))
    scores = draw(tds.tensors((n, q)))
    if draw(st.booleans()):  # probabilities, as net(X) returns them in §3.6
        scores = tds.with_layout(torch.softmax(scores.double(), 1).to(scores.dtype),
                                 draw(tds.layouts()))
    y = draw(tds.labels(n, q))
    # make a few predictions right on purpose, so counts span 0..n
    right = draw(st.lists(st.integers(0, n - 1), max_size=n))
    y[right] = scores.argmax(1)[right]
    return scores, y.to(draw(st.sampled_from(label_dtypes)))


@pytest.mark.points(3)
@given(Sy=scores_and_labels())
@example(Sy=(torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]]), torch.tensor([1, 1, 1])))
def test_accuracy_counts_correct_predictions(student, Sy):
    """accuracy(y_hat, y) for scores or probabilities y_hat (n, q) is the number of rows whose
    argmax equals the label, as a float (a count, not a fraction), for any q > 1, two classes
    included (§3.6.5)."""
    y_hat, y = Sy
    check_accuracy(student, y_hat, y, f"accuracy for y_hat {tuple(y_hat.shape)}")


@pytest.mark.points(2)
@given(Sy=scores_and_labels(label_dtypes=(torch.int32, torch.uint8, torch.int16)))
def test_accuracy_label_dtypes(student, Sy):
    """Labels stored as int32, int16 or uint8 (as some data sets store them) are compared with
    the predicted classes (int64 from argmax) after converting to the labels' dtype (§3.6.5)."""
    y_hat, y = Sy
    check_accuracy(student, y_hat, y, f"accuracy for labels of dtype {y.dtype}")


@pytest.mark.points(2)
@given(n=st.integers(2, 20), seed=st.integers(0, 2**16),
       pred_dtype=st.sampled_from([torch.int64, torch.float32, torch.float64]),
       label_dtype=st.sampled_from([torch.int64, torch.int32]))
def test_accuracy_of_predicted_labels(student, n, seed, pred_dtype, label_dtype):
    """y_hat may already be predicted labels of shape (n,), as integers or as floats such as
    2.0: no argmax then, just compare in the labels' dtype and count (§3.6.5)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    pred = torch.where(torch.rand(n, generator=g) < 0.5, y, torch.randint(0, 4, (n,),
                                                                          generator=g))
    check_accuracy(student, pred.to(pred_dtype), y.to(label_dtype),
                   f"accuracy for predicted labels of dtype {pred_dtype} and labels of dtype "
                   f"{label_dtype}")


@pytest.mark.points(1)
@given(Sy=scores_and_labels(label_dtypes=(torch.int64, torch.int32)))
def test_accuracy_returns_a_float(student, Sy):
    """accuracy returns its count as a Python float (D2L: float(cmp.type(y.dtype).sum())),
    not a 0-d tensor, for scores and for labels of any integer dtype (§3.6.5)."""
    y_hat, y = Sy
    check_accuracy(student, y_hat, y,
                   f"accuracy for y_hat {tuple(y_hat.shape)} and labels of dtype {y.dtype}",
                   read=read_count)


@pytest.mark.points(2)
def test_accuracy_is_a_count(student):
    """3 of 4 predictions right gives 3.0: accuracy counts, evaluate_accuracy divides
    (§3.6.5)."""
    y_hat = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    check_accuracy(student, y_hat, torch.tensor([0, 1, 1, 1]), "accuracy for 3 of 4 right")


# --------------------------------------------------------------------------- Accumulator


@pytest.mark.points(2)
@given(n=st.integers(1, 5),
       rows=st.lists(st.lists(st.sampled_from([0, 1, 3, 2.5, -1.25, 100.0, 1e6]), min_size=5,
                              max_size=5), min_size=1, max_size=4),
       as_tensor=st.booleans())
def test_accumulator_adds(student, n, rows, as_tensor):
    """Accumulator(n) keeps n running sums: each add(a_1, ..., a_n) adds a_i to the i-th sum,
    for ints, floats and 0-d tensors (a loss or a count, as in §3.6.5); acc[i] reads them."""
    acc = student.Accumulator(n)
    for row in rows:
        acc.add(*[torch.tensor(float(v)) if as_tensor else v for v in row[:n]])
    check_added(read(acc, n, f"after {len(rows)} add() calls"),
                [[float(v) for v in row[:n]] for row in rows], f"after {len(rows)} add() calls")


@pytest.mark.points(1)
@given(values=st.lists(st.sampled_from([0, 1, 2.5, -1.25, "tensor", "int tensor"]), min_size=3,
                       max_size=3))
def test_accumulator_items_are_floats(student, values):
    """acc[i] is a Python float (as D2L's float(...)), whatever was added: ints, floats, 0-d
    float or int tensors (a loss, a count of correct predictions) (§3.6.5)."""
    args = [torch.tensor(1.5) if v == "tensor" else torch.tensor(3) if v == "int tensor" else v
            for v in values]
    acc = student.Accumulator(3)
    acc.add(*args)
    acc.add(*args)
    for i in range(3):
        expect_exact_float(acc[i], f"acc[{i}] after add({', '.join(map(repr, args))}) twice",
                            "store plain sums in add(), self.data = [a + float(b) for a, b in "
                            "zip(self.data, args)], and return self.data[i]")
    check_sums([acc[i] for i in range(3)], [2 * float(a) for a in args], "after two add() calls")


@pytest.mark.points(1)
def test_accumulator_keeps_no_graph(student):
    """Adding a loss that requires grad stores a plain number: float(loss), not the tensor
    with its autograd graph (§3.6.5)."""
    acc = student.Accumulator(2)
    acc.add(torch.tensor(2.5, requires_grad=True), 4)
    check_sums(read(acc, 2, "after add(loss, 4)"), [2.5, 4.0], "after add(loss, 4)")


@pytest.mark.points(2)
def test_accumulator_reset(student):
    """reset() sets every sum back to 0.0 and the accumulator keeps working with the same
    number of variables (§3.6.5)."""
    acc = student.Accumulator(3)
    acc.add(1, 2, 3)
    acc.add(1, 2, 3)
    acc.reset()
    with hints_on_error(RESET_HINTS):
        after = read(acc, 3, "after reset()")
    check_sums(after, [0.0, 0.0, 0.0], "after reset()")
    acc.add(5, 0.5, torch.tensor(7.0))
    check_sums(read(acc, 3, "after reset() and add(5, 0.5, 7)"), [5.0, 0.5, 7.0],
               "after reset() and add(5, 0.5, 7)")


@pytest.mark.points(1)
@pytest.mark.parametrize("n", [1, 3])
def test_accumulator_fresh_and_reset_state(student, n):
    """A new Accumulator(n) holds n sums, each the Python float 0.0, and reset() sets every one
    of them back to 0.0 (not an int 0, no slot left behind) after any number of add() calls,
    ready for new sums (§3.6.5)."""
    acc = student.Accumulator(n)
    check_zeros(acc, n, f"a new Accumulator({n})", FRESH_FIX)
    acc.add(*range(1, n + 1))
    acc.add(*[0.5] * n)
    acc.reset()
    check_zeros(acc, n, f"Accumulator({n}) after two add() calls and reset()", RESET_FIX)
    acc.add(*[2.5] * n)
    check_sums(read(acc, n, "after reset() and add()"), [2.5] * n, "after reset() and add()")


@pytest.mark.points(1)
def test_accumulator_two_alive_at_once(student):
    """Two Accumulators alive at once keep their own sums: adding to one, creating a third or
    resetting one leaves the other as it was (§3.6.5)."""
    first, second = student.Accumulator(2), student.Accumulator(2)
    first.add(1.0, 2.0)
    second.add(10.0, 20.0)
    first.add(0.5, 0.5)
    check_own_sums(first, [1.5, 2.5], "the first")
    check_own_sums(second, [10.0, 20.0], "the second")
    check_zeros(student.Accumulator(2), 2, "a third, new Accumulator(2)",
                "a new Accumulator starts at 0.0 whatever the others hold; " + SHARED)
    first.reset()
    if read(second, 2, "after resetting another Accumulator") != [10.0, 20.0]:
        raise AssertionError(f"resetting one Accumulator changed another: {SHARED}")


# --------------------------------------------------------------------------- evaluate_accuracy


@st.composite
def uneven_data(draw):
    """A small data set of images (n, 1, 2, 2) split into batches whose last one is smaller."""
    batch_size = draw(st.integers(2, 6))
    full = draw(st.integers(1, 4))
    last = draw(st.integers(1, batch_size - 1))
    sizes = [batch_size] * full + [last]
    n, q = sum(sizes), draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 2, 2, generator=g)
    W = torch.randn(q, 4, generator=g)
    b = torch.randn(q, generator=g) * 0.1
    scores = F.linear(X.reshape(n, 4), W, b)
    top2 = scores.topk(2, dim=1).values
    assume(bool((top2[:, 0] - top2[:, 1] > 1e-3).all()))  # no near-ties: argmax is unambiguous
    y = scores.argmax(1)
    flip = torch.rand(n, generator=g) < draw(st.sampled_from([0.2, 0.5, 0.8]))
    y = torch.where(flip, torch.randint(0, q, (n,), generator=g), y)
    return batches(X, y, sizes), W, b


@pytest.mark.points(4)
@given(data=uneven_data())
def test_evaluate_accuracy_uneven_batches(student, data):
    """evaluate_accuracy is the fraction of all examples classified correctly, for data sets
    whose last batch is smaller than the others (not the mean of per-batch accuracies), with
    an nn.Module net (§3.6.5)."""
    data_iter, W, b = data
    lin = torch.nn.Linear(4, W.shape[0])
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    net = student.remote(torch.nn.Sequential, torch.nn.Flatten(), lin)
    right, wrong = expected_fraction(lambda X: F.linear(X.reshape(len(X), -1), W, b),
                                     data_iter)
    check_fraction(student.evaluate_accuracy(net, data_iter), right, wrong,
                   f"evaluate_accuracy over batches of sizes {[len(y) for _, y in data_iter]}")


@pytest.mark.points(2)
def test_evaluate_accuracy_smaller_last_batch(student):
    """Batches of 4, 4 and 1 examples with 4, 0 and 1 right: 5 / 9, not (1 + 0 + 1) / 3
    (§3.6.5)."""
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    net = functools.partial(F.linear, weight=W)
    X = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 1.0], [1.0, 3.0],
                      [1.0, 0.0], [2.0, 1.0], [0.0, 1.0], [1.0, 3.0], [5.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 1, 1, 0, 0, 0])
    data_iter = batches(X, y, [4, 4, 1])
    right, wrong = expected_fraction(lambda X: F.linear(X, W), data_iter)
    check_fraction(student.evaluate_accuracy(net, data_iter), right, wrong,
                   "evaluate_accuracy over batches of 4, 4 and 1")


BN_SEEDS = [0, 1, 2]


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", BN_SEEDS)
def test_evaluate_accuracy_uses_eval_mode(student, seed):
    """A net with BatchNorm, handed over in training mode, is evaluated in evaluation mode
    (net.eval(): running statistics, not the batch's), and evaluating it does not change its
    running statistics (§3.6.5, §5.6)."""
    check_eval_mode(student, seed)


@pytest.mark.points(2)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_evaluate_accuracy_restores_mode(student, mode):
    """After evaluating, the net (and each of its layers) is back in the mode it had before:
    training mode stays training mode, evaluation mode stays evaluation mode (§3.6.5)."""
    net = student.remote(torch.nn.Sequential, *batchnorm_net(3))
    getattr(net, mode)()
    student.evaluate_accuracy(net, batchnorm_data(3))
    check_mode_restored((net.training, net[1].training, net[2].training), mode)


@pytest.mark.points(2)
def test_evaluate_accuracy_builds_no_graph(student):
    """The forward passes run without recording an autograd graph (torch.no_grad()), which
    would only cost memory and time during evaluation (§3.6.5)."""
    check_no_graph(student, net_seed=5, data_seed=4)


@pytest.mark.points(2)
@given(data=uneven_data())
def test_evaluate_accuracy_plain_function(student, data):
    """net may be a plain function (here F.linear with fixed weights), not an nn.Module: then
    there is no mode to set or restore, only the fraction to compute (§3.6.5)."""
    data_iter, W, b = data
    flat = [(X.reshape(len(X), -1), y) for X, y in data_iter]
    net = functools.partial(F.linear, weight=W, bias=b)
    right, wrong = expected_fraction(lambda X: F.linear(X, W, b), flat)
    with hints_on_error({"has no attribute": "net may be a plain function: call net.eval() and "
                       "net.train() only when isinstance(net, torch.nn.Module)."}):
        out = student.evaluate_accuracy(net, flat)
    check_fraction(out, right, wrong, "evaluate_accuracy with a plain-function net")


@pytest.mark.points(2)
@given(data=uneven_data())
def test_evaluate_accuracy_one_shot_iterator(student, data):
    """data_iter may be a one-shot iterator, as a generator is: evaluate_accuracy reads it once
    (counting the examples and the correct predictions in the same loop) and returns the
    fraction as a Python float (§3.6.5)."""
    data_iter, W, b = data
    flat = [(X.reshape(len(X), -1), y) for X, y in data_iter]
    net = functools.partial(F.linear, weight=W, bias=b)
    right, wrong = expected_fraction(lambda X: F.linear(X, W, b), flat)
    with hints_on_error(DATA_ITERATOR_HINTS):
        out = student.evaluate_accuracy(net, student.remote(OneShotBatches, flat))
    what = "evaluate_accuracy over a one-shot iterator"
    check_fraction(expect_exact_float(out, what), right, wrong, what)


@pytest.mark.points(1)
def test_evaluate_accuracy_dataloader(student):
    """data_iter may be a torch DataLoader (10 examples in batches of 4: 4, 4, 2), iterated
    once (§3.5, §3.6.5)."""
    g = torch.Generator().manual_seed(7)
    X, y = torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)
    W = torch.randn(3, 4, generator=g)
    loader = student.remote(torch.utils.data.DataLoader, torch.utils.data.TensorDataset(X, y),
                            batch_size=4)
    right, wrong = expected_fraction(lambda X: F.linear(X, W), batches(X, y, [4, 4, 2]))
    check_fraction(student.evaluate_accuracy(functools.partial(F.linear, weight=W), loader),
                   right, wrong, "evaluate_accuracy over a DataLoader")


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """Probabilities, logits and labels on the GPU give losses on the GPU, and accuracy and
    evaluate_accuracy work there and return Python floats: make new tensors where the inputs
    are (torch.arange(n, device=y_hat.device)), never on the default device."""
    g = torch.Generator().manual_seed(10)
    logits = torch.randn(6, 4, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    P, L, y = torch.softmax(logits, 1).to(GPU), logits.to(GPU), y.to(GPU)
    expect_on_gpu(student.cross_entropy(P, y), f"cross_entropy for inputs on {GPU}")
    expect_on_gpu(student.cross_entropy_from_logits(L, y),
                  f"cross_entropy_from_logits for inputs on {GPU}")
    expect_exact_float(student.accuracy(P, y), f"accuracy for inputs on {GPU}")
    net = functools.partial(F.linear, weight=torch.eye(4).to(GPU))
    expect_exact_float(student.evaluate_accuracy(net, [(L[:4], y[:4]), (L[4:], y[4:])]),
                       f"evaluate_accuracy for a net and batches on {GPU}")

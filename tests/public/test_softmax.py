"""Public checks for softmax regression (§3.4, §3.6, §3.7): read them, run them, then make
them pass. Each function has a small example and the input that breaks its most common mistake
(huge logits, rows of very different scales, a square X, float64, non-contiguous images); a
mistake the tests recognise is named with the same words the hidden tests use. The hidden tests
check the same functions on many more inputs."""

import math

import pytest
import torch

from grader.checks import assert_close, expect_tensor, max_abs
from tests.public._mistakes_softmax import (
    log_softmax_mistakes,
    logsumexp_mistakes,
    oracle_softmax,
    regression_mistakes,
    softmax_mistakes,
)

# --------------------------------------------------------------------------- softmax


@pytest.mark.points(1)
def test_softmax_small_example(student):
    """softmax of [[1, 2, 3]] is exp(x) / sum(exp(x)) (§3.4.1)."""
    X = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = torch.exp(X) / torch.exp(X).sum(1, keepdim=True)
    assert_close(student.softmax(X), expected, "softmax([[1, 2, 3], [0, 0, 0]])",
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_large_logits(student):
    """Logits of 1000 must not overflow: subtract each row's max first (§3.7)."""
    X = torch.tensor([[1000.0, 1001.0], [-1000.0, -1000.0]])
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=(2, 2))
    # float32 rounds 1000 - logsumexp to about 1e-4, so allow what float32 allows at 1e3
    assert_close(out, torch.tensor([[0.2689414, 0.7310586], [0.5, 0.5]]), "softmax(X)",
                 scale=1001.0, mistakes=softmax_mistakes(X))


@pytest.mark.points(2)
def test_softmax_rows_far_apart(student):
    """Three rows of four classes, one near 800, one near 0 and one from -300 to 2: each row is
    normalised on its own, so its max must be its own row's (X.max(dim=1, keepdim=True)), not
    the whole tensor's, and exp never sees more than 0 (§3.7)."""
    X = torch.tensor([[-2.0, 0.5, 1.0, -0.75], [800.0, 801.5, 799.0, 800.25],
                      [-300.0, 0.0, 2.0, -1.0]])
    assert_close(student.softmax(X), oracle_softmax(X), "softmax(X) for rows near 0, 800 and -300",
                 scale=max_abs(X), mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_square_example(student):
    """A square X (3 examples, 3 classes) is where dividing by `X_exp.sum(1)` without
    keepdim=True still runs but divides each column by a row's sum, and where the wrong dim
    gives the right shape: each ROW must sum to 1 (§3.4.1)."""
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 1.0, -1.0], [0.5, 0.5, 4.0]])
    assert_close(student.softmax(X), oracle_softmax(X), "softmax(X) for a 3x3 X",
                 scale=max_abs(X), mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_float64_transposed(student):
    """A float64 X (here a transposed, non-contiguous view) gives a float64 softmax, accurate to
    float64 precision: compute from X itself, with no `.float()` and no float32 tensor made on
    the way (§3.4.1)."""
    X = torch.tensor([[0.5, 2.0, -1.0], [1.5, 0.25, 3.0], [-0.5, 1.0, 0.0],
                      [2.5, -2.0, 1.0]], dtype=torch.float64).T  # (3, 4), not contiguous
    out = expect_tensor(student.softmax(X), "softmax(X) for a float64 X", shape=(3, 4),
                        dtype=torch.float64)
    assert_close(out, oracle_softmax(X), "softmax(X) for a float64 X",
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_gradient_small(student):
    """Autograd through your softmax gives the vector-Jacobian product s * (v - (s . v)) of the
    true softmax s: build it from tensor operations (exp, max, sum, division), never by
    detaching X or going through NumPy or Python numbers (§3.4)."""
    X = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 1.0]])
    s = oracle_softmax(X.double())
    expected = s * (v.double() - (s * v.double()).sum(1, keepdim=True))
    assert_close(student.gradient("softmax", X, grad_output=v), expected.float(),
                 "the gradient of your softmax (v^T dsoftmax/dX)", scale=max_abs(X) * max_abs(v))


# --------------------------------------------------------------------------- logsumexp


@pytest.mark.points(1)
def test_logsumexp_small_example(student):
    """logsumexp of a row is log(sum(exp(row))): log(3) for three zeros, one number per row,
    shape (n,), and more than the row's max (§3.7)."""
    X = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    expected = torch.tensor([math.log(3.0), 3.0 + math.log(1.0 + math.exp(-1) + math.exp(-2))])
    assert_close(student.logsumexp(X), expected, "logsumexp([[0, 0, 0], [1, 2, 3]])",
                 scale=max_abs(X) + 10, mistakes=logsumexp_mistakes(X))


@pytest.mark.points(2)
def test_logsumexp_large_logits(student):
    """Logits of +-1000 give a finite logsumexp: with m each row's max, logsumexp(x) =
    m + log(sum(exp(x - m))), so exp never sees more than 0 (§3.7)."""
    X = torch.tensor([[1000.0, 1000.0], [-1000.0, -1001.0], [999.0, -1000.0]])
    expected = torch.tensor([1000.0 + math.log(2.0), -1000.0 + math.log(1.0 + math.exp(-1)),
                             999.0])
    assert_close(student.logsumexp(X), expected, "logsumexp(X) for logits of +-1000",
                 scale=max_abs(X) + 10, mistakes=logsumexp_mistakes(X))


# --------------------------------------------------------------------------- log_softmax


@pytest.mark.points(1)
def test_log_softmax_small_example(student):
    """log_softmax(X) = X - logsumexp(X): its exp is softmax(X), whose rows sum to 1 (§3.7.2)."""
    X = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = torch.log_softmax(X.double(), 1).float()
    assert_close(student.log_softmax(X), expected, "log_softmax([[1, 2, 3], [0, 0, 0]])",
                 scale=max_abs(X) + 10, mistakes=log_softmax_mistakes(X))


@pytest.mark.points(2)
def test_log_softmax_far_below_max(student):
    """A class 200 below its row's max has log-probability about -200, finite: its softmax
    probability rounds to 0 in float32, so log(softmax(X)) gives -inf. Rows near +-1000 must
    not overflow either (§3.7.2: log_softmax = X - logsumexp(X))."""
    X = torch.tensor([[0.0, -200.0, 1.0], [1000.0, 999.0, 0.0], [-1000.0, -1000.5, -1200.0]])
    out = expect_tensor(student.log_softmax(X), "log_softmax(X)", shape=(3, 3))
    assert_close(out, torch.log_softmax(X.double(), 1).float(),
                 "log_softmax(X) for classes far below their row's max", scale=max_abs(X) + 10,
                 mistakes=log_softmax_mistakes(X))


# --------------------------------------------------------------------------- the model


@pytest.mark.points(1)
def test_softmax_regression_small_example(student):
    """The model of §3.6.2: the scores X @ W + b (the bias added to every row), then the softmax
    of each row: 2 examples of 3 features, 2 classes."""
    X = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 1.0]])
    W = torch.tensor([[0.5, -0.5], [1.0, 0.0], [-0.25, 0.5]])
    b = torch.tensor([0.5, -1.0])
    expected = oracle_softmax(X.double() @ W.double() + b.double()).float()
    assert_close(student.softmax_regression(X, W, b), expected,
                 "softmax_regression(X, W, b) for X (2, 3), W (3, 2)",
                 scale=max_abs(X) * 3 * max_abs(W) + max_abs(b) + 1,
                 mistakes=regression_mistakes(X, W, b))


@pytest.mark.points(2)
def test_softmax_regression_images(student):
    """Images X of shape (n, 2, 3) are flattened to (n, 6) rows before X @ W. Here X is a
    transposed view (non-contiguous, as a transposed or sliced batch is), which `X.view(-1, d)`
    refuses: use `X.reshape(-1, W.shape[0])` (§3.6.2)."""
    images = torch.tensor([[[1.0, 0.0], [2.0, -1.0], [0.5, 0.5]],
                           [[0.0, 1.0], [-1.0, 0.5], [1.5, 2.0]],
                           [[-0.5, 0.0], [0.25, 1.0], [1.0, -2.0]]])
    X = images.transpose(1, 2)  # (3, 2, 3), not contiguous
    W = torch.tensor([[0.5, -0.5, 0.0], [1.0, 0.0, -1.0], [-0.25, 0.5, 0.25],
                      [0.0, 0.75, -0.5], [0.5, 0.5, 0.5], [-1.0, 0.25, 0.0]])
    b = torch.tensor([0.25, -0.5, 0.0])
    expected = oracle_softmax(X.double().reshape(3, 6) @ W.double() + b.double()).float()
    out = expect_tensor(student.softmax_regression(X, W, b),
                        "softmax_regression for images X (3, 2, 3)", shape=(3, 3))
    assert_close(out, expected, "softmax_regression for images X (3, 2, 3), W (6, 3)",
                 scale=max_abs(X) * 6 * max_abs(W) + 1, mistakes=regression_mistakes(X, W, b))

"""Public checks for linear regression from scratch and minibatch SGD (§3.1-3.3): read them,
run them, then make them pass. The hidden tests check the same functions on many more inputs;
a mistake they recognise reads the same here (the messages live in `_mistakes_sgd.py`, and
what every topic shares in `_conventions.py`).

Each test's inputs, the numbers it expects and what each mistake it names gives for those
inputs are a table in `_mistakes_sgd.py` (`LINREG_EXAMPLE`, `SGD_EXAMPLE`, ...), worked out from
the formulas of the section.

`sgd` is given its parameters as a `torchdrill.callables.Parameters` list: leaf tensors that
require grad and already hold a `.grad`, as right after `loss.backward()`.
"""

import pytest
import torch

from grader.checks import assert_close, expect_tensor, hints_on_error
from tests.public._conventions import CUSTOM_FUNCTION_HINTS
from tests.public._mistakes_sgd import (
    CLOSED_FORM_EXAMPLE,
    DESCENT_EXAMPLE,
    LINREG_EXAMPLE,
    SGD_EXAMPLE,
    SQUARED_LOSS_COLUMN_EXAMPLE,
    SQUARED_LOSS_FLAT_EXAMPLE,
    check_gradients_zeroed,
    check_one_pass,
    check_passes_in_turns,
    check_shuffled,
    check_starting_point,
    check_still_requires_grad,
    check_synthetic_distribution,
    check_trained,
    check_updated_in_place,
    check_y_column,
    collect_batches,
    make_indexed_data,
    order_of,
    passes_in_turns,
    sgd_scale,
    sgd_step,
)
from torchdrill import callables

TRUE_W = torch.tensor([2.0, -3.4])
TRUE_B = 4.2


def d2l_data(n: int = 1000, seed: int = 0):
    """The data of §3.2: X ~ N(0, 1), y = X w + b + N(0, 0.01**2) noise."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (X @ TRUE_W + TRUE_B + 0.01 * torch.randn(n, generator=g)).reshape(-1, 1)
    return X, y


@pytest.mark.points(1)
def test_synthetic_data_shapes_and_relation(student):
    """synthetic_data(w, 4.2, 1000) gives X of shape (1000, 2), y of shape (1000, 1), and
    y - (X w + b) is noise of standard deviation about 0.01 (§3.3.1)."""
    X, y = student.synthetic_data(TRUE_W, TRUE_B, 1000)
    expect_tensor(X, "X", shape=(1000, 2), dtype=torch.float32)
    check_y_column(y, 1000)
    expect_tensor(y, "y", shape=(1000, 1), dtype=torch.float32)
    residual = y.reshape(-1) - (X @ TRUE_W + TRUE_B)
    assert 0.005 < float(residual.std()) < 0.02, (
        f"y - (X w + b) has standard deviation {float(residual.std()):.3g}, not about 0.01.")


@pytest.mark.points(1)
def test_synthetic_data_uses_noise_and_normal_features(student):
    """synthetic_data(w, 4.2, 20000, noise=0.5): X's entries are N(0, 1) draws (mean 0,
    standard deviation 1, not torch.rand's uniform [0, 1)), and y - (X w + b) has standard
    deviation 0.5, the `noise` argument, not a hard-coded 0.01 (§3.3.1)."""
    w = torch.tensor([2.0, -3.4, 0.5])
    X, y = student.synthetic_data(w, 4.2, 20000, noise=0.5)
    expect_tensor(X, "X", shape=(20000, 3))
    expect_tensor(y, "y", shape=(20000, 1))
    check_synthetic_distribution(X, y, w, 4.2, 0.5)


@pytest.mark.points(1)
def test_data_iter_covers_every_example_once(student):
    """25 examples in batches of 10 come as batches of 10, 10 and 5 (the last, partial batch
    is kept) that together hold every example exactly once, each batch's X and y rows
    belonging together (§3.2.1). Row i of the features is [i, 10 i] and its label is i, so
    the labels tell which examples a batch holds."""
    features, labels = make_indexed_data(25, 2, True, torch.float32)
    batches = collect_batches(student, 10, features, labels)
    check_one_pass(batches, order_of(batches, features, labels), 25, 10)


@pytest.mark.points(1)
def test_data_iter_no_empty_last_batch(student):
    """12 examples in batches of 4 are exactly three full batches: no empty batch after the
    last one (a data iterator never yields an empty batch) (§3.2.1)."""
    features, labels = make_indexed_data(12, 2, False, torch.float32)
    batches = collect_batches(student, 4, features, labels)
    check_one_pass(batches, order_of(batches, features, labels), 12, 4)


@pytest.mark.points(1)
def test_data_iter_shuffles_anew(student):
    """Two passes over 20 examples in batches of 3: each visits the examples in a random
    order (not 0, 1, 2, ..., and not merely the batches shuffled, each still a run of
    consecutive examples), and the two orders differ: no fixed seed inside data_iter
    (§3.2.1)."""
    features, labels = make_indexed_data(20, 2, True, torch.float32)
    passes = []
    for _ in range(2):
        batches = collect_batches(student, 3, features, labels)
        passes.append((batches, order_of(batches, features, labels)))
    check_shuffled(passes, 20)


@pytest.mark.points(1)
def test_data_iter_two_passes_read_in_turns(student):
    """Two passes of data_iter alive at once (two calls, read in turns, batch by batch) each
    yield every one of 11 examples exactly once: keep a pass's order in the generator's own
    variables, not in a list at module level (§3.2.1)."""
    features, labels = make_indexed_data(11, 2, True, torch.float32)
    batches = passes_in_turns(student, 3, features, labels)
    check_passes_in_turns(batches, features, labels, 3)


@pytest.mark.points(1)
def test_linreg_small_example(student):
    """linreg(X, w, b) = X @ w + b, shape (n, 1), here for 3 examples of 2 features
    (§3.2.3)."""
    example = LINREG_EXAMPLE
    assert_close(student.linreg(example["X"], example["w"], example["b"]), example["expected"],
                 "linreg(X, w, b)", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_squared_loss_reshapes_y(student):
    """squared_loss(y_hat (n, 1), y (n,)) is (y_hat - y)**2 / 2 per example, shape (n, 1): y is
    reshaped to y_hat's shape, so nothing broadcasts to (n, n) (§3.2.4)."""
    example = SQUARED_LOSS_COLUMN_EXAMPLE
    assert_close(student.squared_loss(example["y_hat"], example["y"]), example["expected"],
                 "squared_loss(y_hat (3, 1), y (3,))", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_squared_loss_flat_predictions(student):
    """y_hat may also be (n,): squared_loss(y_hat (4,), y (4,)) has shape (4,). Reshape y to
    y_hat.shape, not to a fixed (-1, 1), which would broadcast (4,) - (4, 1) to (4, 4)
    (§3.2.4)."""
    example = SQUARED_LOSS_FLAT_EXAMPLE
    assert_close(student.squared_loss(example["y_hat"], example["y"]), example["expected"],
                 "squared_loss(y_hat (4,), y (4,))", mistakes=example["mistakes"])


@pytest.mark.points(2)
def test_sgd_one_step(student):
    """sgd([w, b], lr=0.1, batch_size=4) with w of shape (3, 1) and b of shape (1,) updates each
    parameter in place by -lr * grad / batch_size, inside torch.no_grad(), and zeroes its
    gradient (§3.2.5)."""
    example = SGD_EXAMPLE
    values, grads, lr = example["values"], example["grads"], example["lr"]
    after, result = sgd_step(student, values, grads, lr, example["batch_size"])
    assert result is None, f"sgd returned {type(result).__name__}; it should return None."
    check_updated_in_place(values, after)
    for i, (p, want) in enumerate(zip(after, example["expected"], strict=True)):
        assert_close(p.detach(), want, f"parameter {i} {tuple(p.shape)} after one sgd step "
                     "(lr=0.1, batch_size=4)", scale=sgd_scale(values, grads, lr, i),
                     mistakes=example["mistakes"][i])
        check_still_requires_grad(i, p)
    check_gradients_zeroed(after)


@pytest.mark.points(1)
def test_train_linreg_recovers_parameters(student):
    """On the data of §3.2 (w = [2, -3.4], b = 4.2, 1000 examples), three epochs of SGD with
    lr = 0.03 and batches of 10 get w and b within 0.05, returned detached."""
    X, y = d2l_data()
    w, b = student.train_linreg(X, y)
    check_trained(w, b, TRUE_W, TRUE_B, torch.float32, atol=0.05)


@pytest.mark.points(1)
def test_train_linreg_starts_from_small_random_w(student):
    """With num_epochs=0 train_linreg returns where it starts: w (400, 1) drawn from
    N(0, 0.01**2), not zeros, and b = 0 (§3.2.2)."""
    w, b = student.train_linreg(torch.zeros(10, 400), torch.zeros(10, 1), num_epochs=0)
    expect_tensor(w, "w", shape=(400, 1), dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    check_starting_point(w, b)


@pytest.mark.points(1)
def test_closed_form_linreg_exact(student):
    """Without noise, the normal equations with a column of ones for the bias give w and b
    exactly (up to rounding), in float64 (§3.1.1)."""
    example = CLOSED_FORM_EXAMPLE
    w, b = student.closed_form_linreg(example["X"], example["y"])
    assert_close(w, example["w"], "w", atol=1e-9, mistakes=example["mistakes_w"])
    assert_close(b, example["b"], "b", atol=1e-9, mistakes=example["mistakes_b"])


@pytest.mark.points(1)
def test_gradient_descent_finds_minimum(student):
    """100 steps of gradient descent with lr = 0.1 on sum((x - 3)**2) from x0 = 0 reach x = 3,
    and x0 stays 0 (§3.1.1)."""
    x0 = torch.zeros(3)
    x = student.gradient_descent(callables.shifted_quadratic, x0, 0.1, 100)
    assert_close(x, torch.full((3,), 3.0), "the final x", atol=1e-4)
    assert not bool(x0.any()), "gradient_descent changed x0: work on a copy."


@pytest.mark.points(1)
def test_gradient_descent_three_steps_custom_function(student):
    """Three steps x <- x - lr grad f(x) with lr = 0.1 on sum((x - 3)**2), here computed by a
    custom torch.autograd.Function (as a callable may be), from x0 = [0.5, -1, 2]: each step
    moves x a fifth of the way to 3. Differentiate with torch.autograd (backward or
    torch.autograd.grad), which supports such a function; torch.func does not (§3.1.1)."""
    example = DESCENT_EXAMPLE
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        got = student.gradient_descent(example["f"], example["x0"], example["lr"],
                                       example["num_steps"])
    assert_close(got, example["expected"], "gradient_descent(f, [0.5, -1, 2], lr=0.1, "
                 "num_steps=3)", scale=example["scale"], mistakes=example["mistakes"])

"""Public checks for linear regression from scratch and minibatch SGD (§3.1-3.3): read them,
run them, then make them pass. The hidden tests check the same functions on many more inputs.

`sgd` is given its parameters as a `torchdrill.callables.Parameters` list: leaf tensors that
require grad and already hold a `.grad`, as right after `loss.backward()`.
"""

import pytest
import torch

from grader.checks import assert_close, expect_tensor
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
    expect_tensor(y, "y", shape=(1000, 1), dtype=torch.float32)
    residual = y.reshape(-1) - (X @ TRUE_W + TRUE_B)
    assert 0.005 < float(residual.std()) < 0.02, (
        f"y - (X w + b) has standard deviation {float(residual.std()):.3g}, not about 0.01.")


@pytest.mark.points(1)
def test_data_iter_covers_every_example_once(student):
    """25 examples in batches of 10 come as batches of 10, 10 and 5 that together hold every
    example exactly once (§3.2.1)."""
    features = torch.arange(50.0).reshape(25, 2)
    labels = torch.arange(25).reshape(-1, 1)
    batches = [batch for batch in student.data_iter(10, features, labels)]
    assert [len(y) for _, y in batches] == [10, 10, 5], (
        f"batch sizes are {[len(y) for _, y in batches]}, expected [10, 10, 5].")
    seen = torch.cat([y.reshape(-1) for _, y in batches])
    assert sorted(seen.tolist()) == list(range(25)), "not every example appears exactly once."
    for X, y in batches:
        assert torch.equal(X, features[y.reshape(-1)]), "a batch's X and y rows do not match."


@pytest.mark.points(1)
def test_linreg(student):
    """linreg(X, w, b) = X @ w + b, shape (n, 1) (§3.2.3)."""
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]])
    w = torch.tensor([[2.0], [-3.4]])
    b = torch.tensor([4.2])
    assert_close(student.linreg(X, w, b), X @ w + b, "linreg(X, w, b)")


@pytest.mark.points(1)
def test_squared_loss_reshapes_y(student):
    """squared_loss(y_hat (n, 1), y (n,)) is (y_hat - y)**2 / 2 per example, shape (n, 1): y is
    reshaped to y_hat's shape, so nothing broadcasts to (n, n) (§3.2.4)."""
    y_hat = torch.tensor([[1.0], [2.0], [4.0]])
    y = torch.tensor([1.5, 2.0, 1.0])
    assert_close(student.squared_loss(y_hat, y), torch.tensor([[0.125], [0.0], [4.5]]),
                 "squared_loss(y_hat, y)")


@pytest.mark.points(1)
def test_sgd_one_step(student):
    """sgd updates each parameter in place by -lr * grad / batch_size and zeroes its gradient
    (§3.2.5)."""
    w, b = torch.tensor([[1.0], [2.0]]), torch.tensor([0.5])
    gw, gb = torch.tensor([[4.0], [-2.0]]), torch.tensor([1.0])
    params = student.remote(callables.parameters_with_grads, [w, b], [gw, gb])
    student.sgd(params, 0.1, 4)
    new_w, new_b = params.originals
    assert_close(new_w, w - 0.1 * gw / 4, "w after one sgd step",
                 mistakes={"the update was not divided by batch_size (4).": w - 0.1 * gw,
                           "the update was divided by len(params) (2), not by batch_size (4).":
                           w - 0.1 * gw / 2})
    assert_close(new_b, b - 0.1 * gb / 4, "b after one sgd step")
    for p in (new_w, new_b):
        assert p.grad is None or not bool(p.grad.any()), "sgd did not zero the gradients."


@pytest.mark.points(1)
def test_train_linreg_recovers_parameters(student):
    """On the data of §3.2 (w = [2, -3.4], b = 4.2, 1000 examples), three epochs of SGD with
    lr = 0.03 and batches of 10 get w and b within 0.05."""
    X, y = d2l_data()
    w, b = student.train_linreg(X, y)
    expect_tensor(w, "w", shape=(2, 1))
    expect_tensor(b, "b", shape=(1,))
    assert_close(w, TRUE_W.reshape(2, 1), "the trained w", atol=0.05)
    assert_close(b, torch.tensor([TRUE_B]), "the trained b", atol=0.05)


@pytest.mark.points(1)
def test_closed_form_linreg_exact(student):
    """Without noise, the normal equations give w and b exactly (up to rounding) (§3.1.1)."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 2, dtype=torch.float64, generator=g)
    y = (X @ TRUE_W.double() + TRUE_B).reshape(-1, 1)
    w, b = student.closed_form_linreg(X, y)
    assert_close(w, TRUE_W.double().reshape(2, 1), "w", atol=1e-9)
    assert_close(b, torch.tensor([TRUE_B], dtype=torch.float64), "b", atol=1e-9)


@pytest.mark.points(1)
def test_gradient_descent_finds_minimum(student):
    """100 steps of gradient descent with lr = 0.1 on sum((x - 3)**2) from x0 = 0 reach x = 3,
    and x0 stays 0."""
    x0 = torch.zeros(3)
    x = student.gradient_descent(callables.shifted_quadratic, x0, 0.1, 100)
    assert_close(x, torch.full((3,), 3.0), "the final x", atol=1e-4)
    assert not bool(x0.any()), "gradient_descent changed x0: work on a copy."

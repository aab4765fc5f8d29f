"""Hidden tests for linear regression from scratch and minibatch SGD (§3.1-3.3).

Data is made here with seeded generators; oracles are the formulas of the section computed in
float64, `torch.linalg.lstsq` for the closed form, and gradient descent run here with
`torch.autograd.grad` (tests/hidden/_oracles_sgd.py, with the recognisers of the mistakes).
`sgd` gets its parameters as a worker-side `torchdrill.callables.Parameters` list (leaves that
require grad and hold a `.grad`), so the test reads the very tensors the submission updated.
`data_iter`'s generator is iterated remotely, batch by batch. A change to any argument but
sgd's `params` (course.toml `in_place`) fails the test that made it, while a generator is
iterated too: the handle checks.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.checks import assert_close, expect_tensor, hints_on_error, max_abs
from tests.hidden import _strategies as tds
from tests.hidden._conventions import CUSTOM_FUNCTION_HINTS, GPU, expect_on_gpu
from tests.hidden._oracles_sgd import (
    descend,
    descent_mistakes,
    least_squares,
    linreg64,
    linreg_mistakes,
    loss_mistakes,
    sgd_expected,
    sgd_mistakes,
    squared_loss64,
)
from tests.public._mistakes_sgd import (
    APPLIED_TWICE,
    CLOSED_FORM_B_ZERO,
    CLOSED_FORM_NO_BIAS,
    ONE_STEP_FOR_ZERO,
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
from torchdrill import callables as cf

TRUE_W = torch.tensor([2.0, -3.4])
TRUE_B = 4.2


def d2l_data(n: int = 1000, seed: int = 0, w: torch.Tensor = TRUE_W, b: float = TRUE_B,
             noise: float = 0.01, dtype: torch.dtype = torch.float32):
    """Data as in §3.2, made in the grader: X ~ N(0, 1), y = X w + b + N(0, noise**2)."""
    g = torch.Generator().manual_seed(seed)
    w = w.double()
    X = torch.randn(n, len(w), generator=g, dtype=torch.float64)
    y = (X @ w + b + noise * torch.randn(n, generator=g, dtype=torch.float64)).reshape(-1, 1)
    return X.to(dtype), y.to(dtype)


# --------------------------------------------------------------------------- synthetic_data


@pytest.mark.points(2)
@given(d=st.integers(1, 5), n=st.integers(1, 40), b=st.floats(-5, 5, allow_nan=False),
       seed=st.integers(0, 2**16))
def test_synthetic_data_shapes(student, d, n, b, seed):
    """synthetic_data(w, b, n) returns X of shape (n, len(w)) and y of shape (n, 1), float32
    for a float32 w, for any number of features and examples (§3.3.1)."""
    dtype = torch.float32
    w = tds.random_tensor((d,), seed, dtype)
    X, y = student.synthetic_data(w, b, n)
    expect_tensor(X, "X", shape=(n, d), dtype=dtype)
    check_y_column(y, n)
    expect_tensor(y, "y", shape=(n, 1), dtype=dtype)


@pytest.mark.points(2)
@given(d=st.integers(1, 5), n=st.integers(1, 40), b=st.floats(-5, 5, allow_nan=False),
       seed=st.integers(0, 2**16), layout=tds.layouts())
def test_synthetic_data_without_noise_is_linear(student, d, n, b, seed, layout):
    """With noise=0, y is exactly X w + b, for a w contiguous or not (§3.3.1)."""
    dtype = torch.float32
    w = tds.with_layout(tds.random_tensor((d,), seed, dtype), layout)
    X, y = student.synthetic_data(w, b, n, noise=0.0)
    expect_tensor(X, "X", shape=(n, d), dtype=dtype)
    expected = (X.double() @ w.double() + b).reshape(-1, 1).to(dtype)
    scale = float(X.double().abs().sum(1).max() * w.double().abs().max()) + abs(b) + 1
    assert_close(y, expected, "y for noise=0", scale=scale,
                 mistakes={"y misses the bias: y = X w + b.": (X.double() @ w.double()).reshape(
                     -1, 1).to(dtype),
                     "y should have shape (n, 1): return y.reshape((-1, 1)).":
                     expected.reshape(-1)})


@pytest.mark.points(1)
@given(d=st.integers(1, 5), n=st.integers(1, 40), b=st.floats(-5, 5, allow_nan=False),
       seed=st.integers(0, 2**16))
@tds.max_examples(at_most=10)
def test_synthetic_data_keeps_float64(student, d, n, b, seed):
    """For a float64 w, X and y are float64 too, and with noise=0 y = X w + b: create X and
    the noise with dtype=w.dtype (§3.3.1)."""
    w = tds.random_tensor((d,), seed, torch.float64)
    X, y = student.synthetic_data(w, b, n, noise=0.0)
    expect_tensor(X, "X for a float64 w", shape=(n, d), dtype=torch.float64)
    expect_tensor(y, "y for a float64 w", shape=(n, 1), dtype=torch.float64)
    scale = float(X.abs().sum(1).max() * w.abs().max()) + abs(b) + 1
    assert_close(y, (X @ w + b).reshape(-1, 1), "y for noise=0 and a float64 w", scale=scale)


@pytest.mark.points(3)
@pytest.mark.parametrize("noise", [0.01, 0.5])
def test_synthetic_data_distribution(student, noise):
    """For 20000 examples, X's entries have mean 0 and standard deviation 1 (N(0, 1)), and the
    noise y - (X w + b) has mean 0 and standard deviation `noise` (§3.3.1)."""
    w = torch.tensor([2.0, -3.4, 0.5])
    X, y = student.synthetic_data(w, 4.2, 20000, noise=noise)
    expect_tensor(X, "X", shape=(20000, 3))
    expect_tensor(y, "y", shape=(20000, 1))
    check_synthetic_distribution(X, y, w, 4.2, noise)


# --------------------------------------------------------------------------- data_iter


@st.composite
def iter_inputs(draw):
    n = draw(st.integers(1, 40))
    batch_size = draw(st.one_of(st.integers(2, 12), tds.batch_sizes(n)))
    d = draw(st.integers(1, 3))
    return n, batch_size, d, draw(st.booleans()), draw(tds.dtypes()), draw(tds.layouts())


@pytest.mark.points(4)
@tds.max_examples(at_most=20)
@given(inputs=iter_inputs())
@example(inputs=(24, 6, 2, False, torch.float64, "contiguous"))  # batch_size divides n
def test_data_iter_one_pass(student, inputs):
    """One pass of data_iter yields every example exactly once, in batches of batch_size except
    a smaller last one, with matching X and y rows, and never an empty batch; for any n,
    including n divisible by batch_size, n not divisible by it and batch_size > n, labels (n,)
    or (n, 1), features contiguous or not (§3.2.1)."""
    n, batch_size, d, labels_2d, dtype, layout = inputs
    features, labels = make_indexed_data(n, d, labels_2d, dtype)
    features = tds.with_layout(features, layout)
    batches = collect_batches(student, batch_size, features, labels)
    check_one_pass(batches, order_of(batches, features, labels), n, batch_size)


@pytest.mark.points(2)
@pytest.mark.parametrize("n,batch_size", [(25, 10), (103, 10), (7, 3)])
def test_data_iter_keeps_last_partial_batch(student, n, batch_size):
    """When n is not a multiple of batch_size, the last batch holds the remaining examples
    instead of being dropped (§3.2.1)."""
    features, labels = make_indexed_data(n, 2, True, torch.float32)
    batches = collect_batches(student, batch_size, features, labels)
    check_one_pass(batches, order_of(batches, features, labels), n, batch_size)


@pytest.mark.points(1)
@pytest.mark.parametrize("n,batch_size", [(20, 5), (12, 12), (9, 1)])
def test_data_iter_batch_size_divides_n(student, n, batch_size):
    """When batch_size divides n exactly, every batch is full and there is no empty batch after
    the last one: a data iterator never yields an empty batch (§3.2.1)."""
    features, labels = make_indexed_data(n, 2, False, torch.float32)
    batches = collect_batches(student, batch_size, features, labels)
    check_one_pass(batches, order_of(batches, features, labels), n, batch_size)


@pytest.mark.points(1)
def test_data_iter_two_passes_at_once(student):
    """Two passes of data_iter alive at once (two calls, read in turns, batch by batch) do not
    interfere: each yields every example exactly once. Every object is independent: keep a
    pass's order in the generator's own variables, not in a list at module or class level
    (§3.2.1)."""
    n, batch_size = 23, 4
    features, labels = make_indexed_data(n, 2, True, torch.float32)
    batches = passes_in_turns(student, batch_size, features, labels)
    check_passes_in_turns(batches, features, labels, batch_size)


@pytest.mark.points(3)
def test_data_iter_shuffles(student):
    """data_iter visits the examples in a random order: not 0, 1, 2, ..., not merely the
    batches in a random order, and a different order on each pass (§3.2.1)."""
    n, batch_size = 60, 7
    features, labels = make_indexed_data(n, 2, True, torch.float32)
    passes = []
    for _ in range(2):
        batches = collect_batches(student, batch_size, features, labels)
        passes.append((batches, order_of(batches, features, labels)))
    check_shuffled(passes, n)
    for batches, order in passes:
        check_one_pass(batches, order, n, batch_size)


@pytest.mark.points(1)
def test_data_iter_leaves_data_alone(student):
    """data_iter does not modify features or labels, while it is iterated either (no in-place
    shuffle of the data: shuffle a list of indices instead) (§3.2.1)."""
    features, labels = make_indexed_data(30, 3, True, torch.float64)
    collect_batches(student, 4, features, labels)  # the handle fails a change to an argument


# --------------------------------------------------------------------------- linreg


@st.composite
def linreg_inputs(draw):
    n, d = draw(st.integers(1, 9)), draw(st.integers(1, 6))
    dtype = draw(tds.dtypes())
    X = draw(tds.tensors((n, d), dtype=dtype, magnitude=tds.magnitudes(100.0)))
    w = draw(tds.tensors((d, 1), dtype=dtype))
    b = draw(tds.tensors((1,), dtype=dtype, layout="contiguous"))
    return X, w, b


@pytest.mark.points(3)
@given(inputs=linreg_inputs())
def test_linreg_matches_model(student, inputs):
    """linreg(X, w, b) = X @ w + b of shape (n, 1) for X (n, d), w (d, 1), b (1,), float32 and
    float64, contiguous or not (§3.2.3)."""
    X, w, b = inputs
    expected = linreg64(X, w, b)
    scale = float((X.double().abs() @ w.double().abs()).max() + b.abs().max()) + 1
    assert_close(student.linreg(X, w, b), expected,
                 f"linreg(X, w, b) for X {tuple(X.shape)}", scale=scale,
                 mistakes=linreg_mistakes(X, w))


@pytest.mark.points(1)
@given(inputs=linreg_inputs(), seed=st.integers(0, 2**16))
def test_linreg_gradient(student, inputs, seed):
    """Autograd reaches w through linreg: the gradient of v . linreg(X, w, b) with respect to w
    is X^T v (what training in §3.2 relies on)."""
    X, w, b = inputs
    v = tds.random_tensor((X.shape[0], 1), seed, X.dtype)
    expected = (X.double().T @ v.double()).to(X.dtype)
    scale = float((X.double().abs().T @ v.double().abs()).max()) + 1
    assert_close(student.gradient("linreg", X, w, b, grad_output=v, wrt=1), expected,
                 "the gradient of linreg with respect to w", scale=scale)


# --------------------------------------------------------------------------- squared_loss


@st.composite
def loss_inputs(draw):
    """(y_hat, y), each of shape (n,) or (n, 1), as the contract allows."""
    n = draw(st.integers(2, 9))
    dtype = draw(tds.dtypes())
    magnitude = draw(tds.magnitudes(100.0))
    y_hat, y = (draw(tds.tensors(draw(st.sampled_from([(n, 1), (n,)])), dtype=dtype,
                                 magnitude=magnitude)) for _ in range(2))
    return y_hat, y


# y_hat (n,) with y (n,) (a y reshaped to a fixed (n, 1) broadcasts), y_hat (n,) with
# y (n, 1) and y_hat (n, 1) with y (n,) (a y not reshaped broadcasts)
FLAT = (tds.random_tensor((5,), 11), tds.random_tensor((5,), 12))
FLAT_Y_HAT = (tds.random_tensor((5,), 13), tds.random_tensor((5, 1), 14))
COLUMN_Y_HAT = (tds.random_tensor((4, 1), 15, torch.float64), tds.random_tensor((4,), 16,
                                                                                torch.float64))


@pytest.mark.points(4)
@given(inputs=loss_inputs())
@example(inputs=FLAT)
@example(inputs=FLAT_Y_HAT)
@example(inputs=COLUMN_Y_HAT)
def test_squared_loss_per_example(student, inputs):
    """squared_loss(y_hat, y) is (y_hat - y)**2 / 2 per example with y_hat's shape, for y_hat
    and y each of shape (n,) or (n, 1): y is reshaped to y_hat's shape first, never broadcast
    to (n, n) (§3.2.4)."""
    y_hat, y = inputs
    expected = squared_loss64(y_hat, y)
    assert_close(student.squared_loss(y_hat, y), expected,
                 f"squared_loss(y_hat {tuple(y_hat.shape)}, y {tuple(y.shape)})",
                 scale=max_abs(y_hat, y) ** 2, mistakes=loss_mistakes(y_hat, y))


@pytest.mark.points(1)
@given(inputs=loss_inputs())
def test_squared_loss_gradient(student, inputs):
    """Autograd through squared_loss: the gradient of sum(loss) with respect to y_hat is
    y_hat - y (§3.2.4)."""
    y_hat, y = inputs
    expected = (y_hat.double() - y.double().reshape(y_hat.shape)).to(y_hat.dtype)
    assert_close(student.gradient("squared_loss", y_hat, y), expected,
                 "the gradient of squared_loss with respect to y_hat", scale=max_abs(y_hat, y))


@pytest.mark.points(1)
@given(inputs=loss_inputs())
def test_squared_loss_leaves_inputs_alone(student, inputs):
    """squared_loss does not modify y_hat or y."""
    student.squared_loss(*inputs)  # the handle fails a change to an argument


# --------------------------------------------------------------------------- sgd

PARAM_SHAPES = [(3, 1), (1,), (2, 5), (4,), (6, 1)]


@st.composite
def sgd_inputs(draw):
    k = draw(st.integers(2, 3))  # [w, b] as in §3.2, sometimes one more
    dtype = draw(tds.dtypes())
    shapes = draw(st.permutations(PARAM_SHAPES))[:k]
    values = [draw(tds.tensors(s, dtype=dtype, layout="contiguous")) for s in shapes]
    grads = [draw(tds.tensors(s, dtype=dtype, layout="contiguous", magnitude=10.0))
             for s in shapes]
    lr = draw(st.sampled_from([0.03, 0.1, 0.5]))
    batch_size = draw(st.sampled_from([5, 7, 10, 32]))
    return values, grads, lr, batch_size


@pytest.mark.points(4)
@given(inputs=sgd_inputs())
def test_sgd_updates_in_place(student, inputs):
    """sgd(params, lr, batch_size) sets every parameter p to p - lr * p.grad / batch_size, in
    place, for one to three parameters of different shapes, float32 and float64, several
    learning rates and batch sizes (§3.2.5)."""
    values, grads, lr, batch_size = inputs
    after, _ = sgd_step(student, values, grads, lr, batch_size)
    check_updated_in_place(values, after)
    for i, (p, want) in enumerate(zip(after, sgd_expected(values, grads, lr, batch_size),
                                      strict=True)):
        assert_close(p.detach(), want, f"parameter {i} {tuple(p.shape)} after sgd (lr={lr}, "
                     f"batch_size={batch_size})", scale=sgd_scale(values, grads, lr, i),
                     mistakes=sgd_mistakes(values, grads, lr, batch_size, i))
        check_still_requires_grad(i, p)


@pytest.mark.points(3)
@given(inputs=sgd_inputs())
def test_sgd_zeroes_gradients(student, inputs):
    """After sgd, every parameter's gradient is zero (p.grad.zero_()): backward() adds to .grad,
    so a gradient left behind would be added to the next minibatch's (§3.2.5)."""
    values, grads, lr, batch_size = inputs
    after, _ = sgd_step(student, values, grads, lr, batch_size)
    check_gradients_zeroed(after)


@pytest.mark.points(2)
@tds.max_examples(at_most=10)
@given(inputs=sgd_inputs())
def test_sgd_twice_without_new_gradients(student, inputs):
    """Two sgd calls with no backward in between move the parameters only once: the first call
    zeroed the gradients, so the second has nothing to apply (§3.2.5)."""
    values, grads, lr, batch_size = inputs
    after, _ = sgd_step(student, values, grads, lr, batch_size, steps=2)
    for i, (p, want) in enumerate(zip(after, sgd_expected(values, grads, lr, batch_size),
                                      strict=True)):
        twice = sgd_expected(values, grads, lr, batch_size, steps=2)[i]
        assert_close(p.detach(), want, f"parameter {i} after two sgd calls",
                     scale=sgd_scale(values, grads, lr, i, steps=2),
                     mistakes={APPLIED_TWICE: twice,
                               **sgd_mistakes(values, grads, lr, batch_size, i)})


@pytest.mark.points(1)
def test_sgd_returns_none(student):
    """sgd works in place and returns None (§3.2.5)."""
    _, result = sgd_step(student, [torch.ones(2, 1)], [torch.ones(2, 1)], 0.1, 10)
    assert result is None, f"sgd returned {type(result).__name__}; it should return None."


# --------------------------------------------------------------------------- train_linreg

@pytest.mark.points(4)
@pytest.mark.parametrize("seed", [0, 1])
def test_train_linreg_recovers_d2l_parameters(student, seed):
    """On the data of §3.2 (w = [2, -3.4], b = 4.2, 1000 examples, noise 0.01), the defaults
    (lr = 0.03, 3 epochs, batches of 10) recover w and b within 0.02, as in the book."""
    X, y = d2l_data(seed=seed)
    w, b = student.train_linreg(X, y)
    check_trained(w, b, TRUE_W, TRUE_B, torch.float32, atol=0.02)


@pytest.mark.points(2)
def test_train_linreg_other_sizes_float64(student):
    """Four features, float64 data, 600 examples, batches of 7 (the last batch smaller),
    lr = 0.05 and 5 epochs: w and b are recovered within 0.02 and keep float64 (§3.2)."""
    true_w = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    X, y = d2l_data(n=600, seed=3, w=true_w, b=-1.5, dtype=torch.float64)
    w, b = student.train_linreg(X, y, lr=0.05, num_epochs=5, batch_size=7)
    check_trained(w, b, true_w, -1.5, torch.float64, atol=0.02)


@pytest.mark.points(1)
def test_train_linreg_starting_point(student):
    """With num_epochs=0 train_linreg returns its starting point: w drawn from N(0, 0.01**2)
    (standard deviation 0.01) and b = 0 (§3.2.2)."""
    X = torch.zeros(10, 400)
    y = torch.zeros(10, 1)
    w, b = student.train_linreg(X, y, num_epochs=0)
    expect_tensor(w, "w", shape=(400, 1), dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    check_starting_point(w, b)


# --------------------------------------------------------------------------- closed_form_linreg


@st.composite
def regression_problems(draw):
    d = draw(st.integers(1, 5))
    n = draw(st.integers(3 * (d + 1), 40))
    dtype = draw(tds.dtypes())
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    true_w = torch.randn(d, generator=g, dtype=torch.float64) * 3
    true_b = float(torch.randn((), generator=g, dtype=torch.float64) * 3)
    X, y = d2l_data(n=n, seed=seed + 1, w=true_w, b=true_b, noise=0.1, dtype=dtype)
    return tds.with_layout(X, draw(tds.layouts())), y


@pytest.mark.points(4)
@given(problem=regression_problems())
def test_closed_form_linreg_matches_least_squares(student, problem):
    """closed_form_linreg(X, y) returns the least-squares w (d, 1) and b (1,) of noisy data,
    with a bias column of ones appended to X, float32 and float64, X contiguous or not
    (§3.1.1)."""
    X, y = problem
    d = X.shape[1]
    theta, cond = least_squares(X, y)
    scale = cond ** 2 * (max_abs(theta) + max_abs(y) + 1)
    w, b = student.closed_form_linreg(X, y)
    expect_tensor(w, "w", shape=(d, 1), dtype=X.dtype)
    if isinstance(b, torch.Tensor) and b.numel() == 1 and b.shape != (1,):
        raise AssertionError(f"b has shape {tuple(b.shape)}; return it with shape (1,) "
                             "(b.reshape(1)).")
    expect_tensor(b, "b", shape=(1,), dtype=X.dtype)
    no_bias, _ = least_squares(X, y, bias=False)
    assert_close(w, theta[:d].to(X.dtype), "w", scale=scale,
                 mistakes={CLOSED_FORM_NO_BIAS: no_bias.to(X.dtype)})
    assert_close(b, theta[d:].reshape(1).to(X.dtype), "b", scale=scale)


@pytest.mark.points(2)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_form_linreg_noise_free(student, dtype):
    """Without noise the normal equations recover w = [2, -3.4] and b = 4.2 (§3.1.1)."""
    X, y = d2l_data(n=50, seed=5, noise=0.0, dtype=dtype)
    w, b = student.closed_form_linreg(X, y)
    assert_close(w, TRUE_W.reshape(2, 1).to(dtype), "w", scale=100)
    assert_close(b, torch.tensor([TRUE_B], dtype=dtype), "b", scale=100,
                 mistakes={CLOSED_FORM_B_ZERO: torch.zeros(1, dtype=dtype)})


@pytest.mark.points(1)
@given(problem=regression_problems())
def test_closed_form_linreg_leaves_data_alone(student, problem):
    """closed_form_linreg does not modify features or labels."""
    student.closed_form_linreg(*problem)  # the handle fails a change to an argument


# --------------------------------------------------------------------------- gradient_descent

# Convex functions: with lr * (largest curvature) <= 1 the steps never amplify rounding.
DESCENT_FUNCTIONS = {
    "shifted_quadratic": (cf.shifted_quadratic, [0.01, 0.1, 0.3, 0.45]),
    "sum_of_squares": (cf.sum_of_squares, [0.01, 0.1, 0.25]),
    "square_of_sum_plus_quartic": (cf.square_of_sum_plus_quartic, [0.01, 0.05]),
    # a custom torch.autograd.Function, as a callable may be (torch.func refuses it)
    "shifted_quadratic_by_function": (cf.shifted_quadratic_by_function, [0.1, 0.3]),
}


@st.composite
def descent_inputs(draw):
    name = draw(st.sampled_from(tuple(DESCENT_FUNCTIONS)))
    f, lrs = DESCENT_FUNCTIONS[name]
    size = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(size,), (size, 2)]))
    x0 = draw(tds.tensors(shape, distribution="uniform"))
    return name, x0, draw(st.sampled_from(lrs)), draw(st.integers(0, 30))


@pytest.mark.points(4)
@given(inputs=descent_inputs())
@example(inputs=("sum_of_squares", tds.random_tensor((3, 2), 5, distribution="uniform"), 0.1, 3))
@example(inputs=("shifted_quadratic_by_function", tds.random_tensor((4,), 6, torch.float64),
                 0.1, 2))
def test_gradient_descent_matches_steps(student, inputs):
    """gradient_descent(f, x0, lr, num_steps) is x0 after num_steps steps x <- x - lr grad f(x)
    (0 steps: x0 itself), for 1-D and 2-D x0, float32 and float64, several f and lr, also an f
    computed through a custom torch.autograd.Function (differentiate with torch.autograd, not
    torch.func) (§3.1.1)."""
    name, x0, lr, num_steps = inputs
    f = DESCENT_FUNCTIONS[name][0]
    expected, size = descend(f, x0, lr, num_steps)
    mistakes = descent_mistakes(f, x0, lr, num_steps)
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        got = student.gradient_descent(f, x0, lr, num_steps)
    assert_close(got, expected.to(x0.dtype), f"gradient_descent({name}, x0 {tuple(x0.shape)}, "
                 f"lr={lr}, num_steps={num_steps})", scale=4 * size + 1, mistakes=mistakes)


@pytest.mark.points(1)
def test_gradient_descent_rosenbrock(student):
    """200 steps with lr = 1e-3 on the Rosenbrock function from x0 = [-0.5, 0.5] (float64) land
    where the same steps computed here do (§3.1.1)."""
    x0 = torch.tensor([-0.5, 0.5], dtype=torch.float64)
    expected, _ = descend(cf.rosenbrock, x0, 1e-3, 200)
    assert_close(student.gradient_descent(cf.rosenbrock, x0, 1e-3, 200), expected,
                 "gradient_descent(rosenbrock, [-0.5, 0.5], lr=1e-3, num_steps=200)", atol=1e-9)


@pytest.mark.points(2)
@given(inputs=descent_inputs())
def test_gradient_descent_leaves_x0_alone(student, inputs):
    """x0 keeps its values, gets no .grad and keeps requires_grad False: descend on a copy,
    x0.detach().clone().requires_grad_(True)."""
    name, x0, lr, num_steps = inputs
    # the handle fails a change to an argument, naming what changed
    student.gradient_descent(DESCENT_FUNCTIONS[name][0], x0, lr, max(num_steps, 1))


@pytest.mark.points(1)
def test_gradient_descent_zero_steps(student):
    """num_steps = 0 takes no step: the result is x0's values, a new tensor with no graph
    (§3.1.1)."""
    x0 = torch.tensor([0.5, -1.5, 2.0])
    got = expect_tensor(student.gradient_descent(cf.shifted_quadratic, x0, 0.1, 0),
                        "gradient_descent(f, x0, 0.1, num_steps=0)", shape=(3,))
    assert_close(got, x0, "gradient_descent(f, x0, 0.1, num_steps=0)",
                 mistakes={ONE_STEP_FOR_ZERO: descend(cf.shifted_quadratic, x0, 0.1, 1)[0]
                           .float()})
    if got.requires_grad:
        raise AssertionError("gradient_descent(..., num_steps=0) returned a tensor that "
                             "requires grad: return x.detach() (no graph attached).")


@pytest.mark.points(1)
def test_gradient_descent_keeps_dtype(student):
    """The result has x0's shape and dtype (float64 here)."""
    x0 = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.float64)
    expect_tensor(student.gradient_descent(cf.sum_of_squares, x0, 0.1, 3),
                  "gradient_descent(...)", shape=(2, 2), dtype=torch.float64)



# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """Data and parameters on the GPU give batches, predictions, losses, updated parameters,
    the closed-form fit and the descent's result on the GPU: make new tensors where the
    inputs are (device=features.device, torch.zeros_like(x)), never on the default device."""
    X, y = d2l_data(n=30, seed=9)
    X, y = X.to(GPU), y.to(GPU)
    w, b = TRUE_W.reshape(2, 1).to(GPU), torch.zeros(1).to(GPU)
    for batch in student.data_iter(7, X, y):
        expect_on_gpu(tuple(batch), f"a batch of data_iter(7, X, y) for X on {GPU}")
    expect_on_gpu(student.linreg(X, w, b), f"linreg(X, w, b) for inputs on {GPU}")
    expect_on_gpu(student.squared_loss(y, y * 2), f"squared_loss for inputs on {GPU}")
    expect_on_gpu(tuple(student.closed_form_linreg(X, y)),
                  f"closed_form_linreg(X, y) for X on {GPU}")
    expect_on_gpu(student.gradient_descent(cf.sum_of_squares, X[0], 0.1, 2),
                  f"gradient_descent(f, x0, 0.1, 2) for x0 on {GPU}")
    params = student.remote(cf.parameters_with_grads, [w, b], [w, b])
    student.sgd(params, 0.1, 10)
    expect_on_gpu(list(params.originals), f"sgd's parameters on {GPU} after the update")

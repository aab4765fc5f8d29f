"""Hidden tests for linear regression from scratch and minibatch SGD (§3.1-3.3).

Data is made here with seeded generators; oracles are the formulas of the section computed in
float64, `torch.linalg.lstsq` for the closed form, and gradient descent run here with
`torch.autograd.grad`. `sgd` gets its parameters as a worker-side
`torchdrill.callables.Parameters` list (leaves that require grad and hold a `.grad`), so the
test reads the very tensors the submission updated. `data_iter`'s generator is iterated
remotely, batch by batch. A change to any argument but sgd's `params` (course.toml `in_place`)
fails the test that made it, while a generator is iterated too: the handle checks.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.checks import assert_close, expect_tensor, hints_on_error, max_abs
from tests.hidden import _strategies as tds
from tests.hidden._conventions import CUSTOM_FUNCTION_HINTS, GPU, expect_on_gpu
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
    if isinstance(y, torch.Tensor) and tuple(y.shape) == (n,) and n > 1:
        raise AssertionError("y has shape (n,) but should be (n, 1): return "
                             "y.reshape((-1, 1)) (§3.3.1).")
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
    X64 = X.double()
    mean, std = float(X64.mean()), float(X64.std())
    if abs(mean) > 0.03 or abs(std - 1) > 0.03:
        raise AssertionError(f"X's entries have mean {mean:.3g} and standard deviation "
                             f"{std:.3g}: draw them from N(0, 1) (torch.normal(0, 1, ...)).")
    residual = y.double().reshape(-1) - (X64 @ w.double() + 4.2)
    r_mean, r_std = float(residual.mean()), float(residual.std())
    if abs(r_std / noise - 1) > 0.05:
        hint = " (is the `noise` argument used?)" if abs(r_std - 0.01) < 0.002 else ""
        raise AssertionError(f"the noise y - (X w + b) has standard deviation {r_std:.3g} but "
                             f"noise={noise} asks for {noise}{hint}: add "
                             "torch.normal(0, noise, y.shape).")
    if abs(r_mean) > 5 * noise / math.sqrt(20000):
        raise AssertionError(f"the noise y - (X w + b) has mean {r_mean:.3g}, not 0.")


# --------------------------------------------------------------------------- data_iter


def make_indexed_data(n: int, d: int, labels_2d: bool, dtype: torch.dtype):
    """Features whose row i is i * [1, 10, 100, ...] and labels i, so a batch tells which
    examples it holds."""
    features = torch.arange(n, dtype=dtype).reshape(-1, 1) * (10.0 ** torch.arange(
        d, dtype=dtype))
    labels = torch.arange(n)
    return features, labels.reshape(-1, 1) if labels_2d else labels


def collect_batches(student, batch_size: int, features: torch.Tensor, labels: torch.Tensor):
    """One pass of the student's data_iter, iterated batch by batch (`for`, not `list()`: a
    remote generator has no len)."""
    batches = []
    for batch in student.data_iter(batch_size, features, labels):
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise AssertionError("data_iter should yield pairs (X_batch, y_batch), but it "
                                 f"yielded {type(batch).__name__}.")
        X, y = batch
        expect_tensor(X, "X_batch")
        expect_tensor(y, "y_batch")
        batches.append((X, y))
    return batches


def order_of(batches, features: torch.Tensor, labels: torch.Tensor) -> list[int]:
    """The example indices in the order data_iter produced them, after checking that every
    batch's X and y rows belong together."""
    order = []
    for X, y in batches:
        idx = y.reshape(-1).long()
        if X.shape[1:] != features.shape[1:] or y.shape[1:] != labels.shape[1:]:
            raise AssertionError(f"a batch has X of shape {tuple(X.shape)} and y of shape "
                                 f"{tuple(y.shape)}; rows of features {tuple(features.shape)} "
                                 f"and labels {tuple(labels.shape)} were expected.")
        if len(X) != len(idx) or bool(((idx < 0) | (idx >= len(features))).any()):
            raise AssertionError("a batch's X and y have different numbers of rows.")
        if not torch.equal(X, features[idx]):
            raise AssertionError("in a batch, the rows of X and y do not belong to the same "
                                 "examples: index features and labels with the same indices.")
        order += idx.tolist()
    return order


def check_one_pass(batches, order: list[int], n: int, batch_size: int) -> None:
    counts = torch.bincount(torch.tensor(order, dtype=torch.long), minlength=n) if order else (
        torch.zeros(n, dtype=torch.long))
    sizes = [len(y) for _, y in batches]
    if 0 in sizes:
        raise AssertionError(
            f"data_iter yielded an empty batch (batch {sizes.index(0) + 1} of {len(sizes)}, "
            f"for n = {n} and batch_size = {batch_size}): a data iterator never yields an empty "
            "batch, also when batch_size divides n exactly and the last batch is full. Loop "
            "over range(0, n, batch_size), not n // batch_size + 1 batches (§3.2.1).")
    repeated = (counts > 1).nonzero().reshape(-1).tolist()
    missing = (counts == 0).nonzero().reshape(-1).tolist()
    if repeated:
        raise AssertionError(
            f"examples {repeated[:5]} appear more than once in one pass (and "
            f"{len(missing)} never): data_iter repeats examples. Shuffle a permutation of the "
            "indices (random.shuffle or torch.randperm) instead of sampling with replacement.")
    if missing:
        last = n % batch_size
        if last and len(missing) == last:
            raise AssertionError(
                f"{len(missing)} of {n} examples never appear: data_iter drops the last partial "
                f"batch (n = {n} is not a multiple of batch_size = {batch_size}). Keep the "
                "last, smaller batch: range(0, n, batch_size) and indices[i:i + batch_size].")
        raise AssertionError(f"{len(missing)} of {n} examples never appear in one pass "
                             f"(for example {missing[:5]}).")
    expected = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if sizes != expected:
        raise AssertionError(f"batch sizes are {sizes[:12]}{'...' if len(sizes) > 12 else ''}; "
                             f"expected {batch_size} each, the last one holding the remaining "
                             f"{expected[-1]} (n = {n}).")


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
    passes = [iter(student.data_iter(batch_size, features, labels)) for _ in range(2)]
    batches: list[list] = [[], []]
    live = [True, True]
    while any(live):
        for i, it in enumerate(passes):
            batch = next(it, None) if live[i] else None
            live[i] = live[i] and batch is not None
            if batch is not None:
                batches[i].append(tuple(batch))
    for i in range(2):
        try:
            check_one_pass(batches[i], order_of(batches[i], features, labels), n, batch_size)
        except AssertionError as e:
            raise AssertionError(
                f"two passes of data_iter read in turns interfere (pass {i + 1}: {e}): each "
                "call's pass is an object of its own. Keep the shuffled indices in the "
                "generator's local variables, not in a module-level or class-level list that "
                "the other pass reshuffles.") from None


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
    (batches, first), (_, second) = passes
    if first == list(range(n)):
        raise AssertionError("data_iter never shuffles: the examples come in their original "
                             "order. Shuffle the indices (random.shuffle(indices)) first.")
    if all(y.reshape(-1).diff().eq(1).all() for _, y in batches):
        raise AssertionError("data_iter shuffles only the order of the batches: each batch is "
                             "still a run of consecutive examples. Shuffle the examples' "
                             "indices, then cut them into batches.")
    if first == second:
        raise AssertionError("data_iter gives the same order on every pass: do not reseed the "
                             "random generator inside data_iter; each pass must shuffle anew.")
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
    expected = (X.double() @ w.double() + b.double()).to(X.dtype)
    scale = float((X.double().abs() @ w.double().abs()).max() + b.abs().max()) + 1
    assert_close(student.linreg(X, w, b), expected,
                 f"linreg(X, w, b) for X {tuple(X.shape)}", scale=scale,
                 mistakes={"the bias b is missing: X @ w + b.": (X.double() @ w.double()).to(
                     X.dtype)})


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


def loss_mistakes(y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    diff = y_hat.double() - y.double().reshape(y_hat.shape)
    right = diff ** 2 / 2
    n = len(y_hat)
    mistakes = {
        f"the result has shape {(n, n)}: without y.reshape(y_hat.shape), (n, 1) - (n,) "
        "broadcasts to (n, n) (every prediction minus every label) (§3.2.4).":
            (y_hat.double() - y.double()) ** 2 / 2,
        "this is (y_hat - y)**2 without the / 2 of §3.2.4.": diff ** 2,
        f"this is the mean over the examples: return the loss of each example, shape "
        f"{tuple(y_hat.shape)} (training sums it before backward).": right.mean(),
        f"this is the sum over the examples: return the loss of each example, shape "
        f"{tuple(y_hat.shape)}.": right.sum(),
    }
    if y_hat.dim() == 2:
        mistakes["the losses have shape (n,): keep y_hat's shape (n, 1)."] = right.reshape(-1)
    else:
        mistakes[f"the result has shape {(n, n)}: y_hat may be (n,) or (n, 1), so reshape y "
                 "to y_hat.shape, not to a fixed (-1, 1): (n,) - (n, 1) broadcasts to (n, n) "
                 "(§3.2.4)."] = (y_hat.double() - y.double().reshape(-1, 1)) ** 2 / 2
        mistakes["the losses have shape (n, 1), but y_hat is (n,): keep y_hat's shape (reshape "
                 "y to y_hat.shape, not y_hat to (n, 1))."] = right.reshape(-1, 1)
    return {m: w.to(y_hat.dtype) for m, w in mistakes.items()}


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
    expected = ((y_hat.double() - y.double().reshape(y_hat.shape)) ** 2 / 2).to(y_hat.dtype)
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


def sgd_expected(values, grads, lr: float, batch_size: int, steps: int = 1):
    return [(v.double() - steps * lr * g.double() / batch_size).to(v.dtype)
            for v, g in zip(values, grads, strict=True)]


def sgd_mistakes(values, grads, lr, batch_size, i: int) -> dict[str, torch.Tensor]:
    v, g = values[i].double(), grads[i].double()
    wrong = {
        "the update was not divided by batch_size: p -= lr * p.grad / batch_size (the gradient "
        "is of the summed minibatch loss) (§3.2.5).": v - lr * g,
        f"the update was divided by len(params) = {len(values)}, not by batch_size.":
            v - lr * g / len(values),
        f"the update was divided by the parameter's first dimension ({values[i].shape[0]}), "
        "not by batch_size.": v - lr * g / values[i].shape[0],
        "the update was multiplied by batch_size; divide: p -= lr * p.grad / batch_size.":
            v - lr * g * batch_size,
        "the parameter moved uphill: p -= lr * p.grad / batch_size (minus, not plus).":
            v + lr * g / batch_size,
    }
    right = v - lr * g / batch_size
    return {m: w.to(values[i].dtype) for m, w in wrong.items()
            if not torch.allclose(w, right, rtol=0, atol=1e-12)}


def sgd_step(student, values, grads, lr, batch_size, steps: int = 1):
    """Run the student's sgd `steps` times on worker-side parameters; return the parameter
    tensors (the very ones it was given) afterwards, with their .grad. A second step is only
    taken while every gradient is still a tensor (`p.grad = None` also clears them)."""
    params = student.remote(cf.parameters_with_grads, values, grads)
    result = student.sgd(params, lr, batch_size)
    for _ in range(steps - 1):
        if any(p.grad is None for p in params.originals):
            break
        student.sgd(params, lr, batch_size)
    after = params.originals
    if not isinstance(after, list) or len(after) != len(values):
        raise AssertionError("sgd changed the list of parameters it was given: update each "
                             "tensor in place instead of replacing list entries.")
    return after, result


def check_updated_in_place(values, after) -> None:
    for i, (v, p) in enumerate(zip(values, after, strict=True)):
        expect_tensor(p, f"parameter {i}", shape=v.shape)
        if torch.equal(p.detach(), v):
            raise AssertionError(
                f"parameter {i} was not updated in place: `p = p - lr * p.grad / batch_size` "
                "(or replacing params[i]) only makes a new tensor. Update the tensor itself, "
                "inside torch.no_grad(): `p -= lr * p.grad / batch_size` (§3.2.5).")


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
                     f"batch_size={batch_size})",
                     scale=max(1.0, max_abs(values[i]))
                     + lr * max(1.0, max_abs(grads[i])),  # each term floored, as before
                     mistakes=sgd_mistakes(values, grads, lr, batch_size, i))
        if not p.requires_grad:
            raise AssertionError(f"parameter {i} no longer requires grad after sgd: update its "
                                 "values inside torch.no_grad(), do not replace or detach it.")


@pytest.mark.points(3)
@given(inputs=sgd_inputs())
def test_sgd_zeroes_gradients(student, inputs):
    """After sgd, every parameter's gradient is zero (p.grad.zero_()): backward() adds to .grad,
    so a gradient left behind would be added to the next minibatch's (§3.2.5)."""
    values, grads, lr, batch_size = inputs
    after, _ = sgd_step(student, values, grads, lr, batch_size)
    for i, p in enumerate(after):
        if p.grad is not None and bool(p.grad.any()):
            raise AssertionError(f"parameter {i}'s gradient is not zero after sgd: the "
                                 "gradients are not zeroed, so they accumulate over minibatches."
                                 " Call p.grad.zero_() after each update (§3.2.5).")


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
                     scale=max(1.0, max_abs(values[i]))
                     + 2 * lr * max(1.0, max_abs(grads[i])),  # each term floored, as before
                     mistakes={"the second call applied the same gradient again: the gradients "
                               "are not zeroed after the update (p.grad.zero_()) (§3.2.5).":
                               twice, **sgd_mistakes(values, grads, lr, batch_size, i)})


@pytest.mark.points(1)
def test_sgd_returns_none(student):
    """sgd works in place and returns None (§3.2.5)."""
    _, result = sgd_step(student, [torch.ones(2, 1)], [torch.ones(2, 1)], 0.1, 10)
    assert result is None, f"sgd returned {type(result).__name__}; it should return None."


# --------------------------------------------------------------------------- train_linreg

TRAINING_HINT = ("check the loop of §3.2.6: l = squared_loss(linreg(X, w, b), y); "
                 "l.sum().backward(); sgd([w, b], lr, batch_size) (which zeroes the gradients), "
                 "for every minibatch of every epoch")


def check_trained(w, b, true_w: torch.Tensor, true_b: float, dtype, atol: float) -> None:
    d = len(true_w)
    expect_tensor(w, "w", shape=(d, 1), dtype=dtype)
    expect_tensor(b, "b", shape=(1,), dtype=dtype)
    if w.requires_grad or b.requires_grad:
        raise AssertionError("train_linreg returned w or b still attached to autograd: return "
                             "w.detach(), b.detach().")
    err_w = float((w.double().reshape(-1) - true_w.double()).abs().max())
    err_b = float((b.double() - true_b).abs().max())
    if not (math.isfinite(err_w) and math.isfinite(err_b)):
        raise AssertionError(f"training diverged (w or b is nan or inf): {TRAINING_HINT}.")
    if err_w > atol or err_b > atol:
        raise AssertionError(
            f"after training, w is off by up to {err_w:.3g} and b by {err_b:.3g} (tolerance "
            f"{atol}): {TRAINING_HINT}.")


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
    assert float(b.abs().max()) == 0, f"b should start at 0, not {float(b.reshape(-1)[0])}."
    std = float(w.double().std())
    if not 0.008 < std < 0.012:
        raise AssertionError(f"w starts with standard deviation {std:.3g}: draw it from "
                             "N(0, 0.01**2), torch.normal(0, 0.01, size=(d, 1)) (§3.2.2).")


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


def least_squares(X: torch.Tensor, y: torch.Tensor, bias: bool = True):
    """theta of min ||X1 theta - y|| in float64, by torch's own solver (the grader may)."""
    X64 = X.double()
    X1 = torch.cat([X64, torch.ones(len(X64), 1, dtype=torch.float64)], 1) if bias else X64
    theta = torch.linalg.lstsq(X1, y.double().reshape(-1, 1)).solution
    cond = float(torch.linalg.cond(X1))
    return theta, cond


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
                 mistakes={"w is the least-squares fit without a bias: append a column of ones "
                           "to X (X1 = [X, 1]) and solve for [w; b] together (§3.1.1).":
                           no_bias.to(X.dtype)})
    assert_close(b, theta[d:].reshape(1).to(X.dtype), "b", scale=scale)


@pytest.mark.points(2)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_form_linreg_noise_free(student, dtype):
    """Without noise the normal equations recover w = [2, -3.4] and b = 4.2 (§3.1.1)."""
    X, y = d2l_data(n=50, seed=5, noise=0.0, dtype=dtype)
    w, b = student.closed_form_linreg(X, y)
    assert_close(w, TRUE_W.reshape(2, 1).to(dtype), "w", scale=100)
    assert_close(b, torch.tensor([TRUE_B], dtype=dtype), "b", scale=100,
                 mistakes={"b is 0: append a column of ones to X for the bias (§3.1.1).":
                           torch.zeros(1, dtype=dtype)})


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


def descend(f, x0: torch.Tensor, lr: float, num_steps: int, mode: str = "right"):
    """Gradient descent in float64; `mode` also runs the usual wrong versions. Returns the
    final x and the sum of the magnitudes rounding grows with."""
    x = x0.detach().double().clone()
    total = torch.zeros_like(x)
    size = max_abs(x)
    for _ in range(num_steps):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xg), xg)
        total = total + g
        step = {"right": g, "accumulated": total, "uphill": -g}[mode]
        x = x - lr * step
        size += max_abs(x) + lr * max_abs(g)
    return x, size


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
    mistakes = {"x moved uphill: step against the gradient, x - lr * grad.":
                descend(f, x0, lr, num_steps, "uphill")[0].to(x0.dtype)}
    if num_steps >= 2:
        mistakes["the gradients accumulate from step to step: zero x.grad after every step "
                 "(x.grad.zero_()), or use torch.autograd.grad."] = descend(
            f, x0, lr, num_steps, "accumulated")[0].to(x0.dtype)
        mistakes[f"this is x0 after one step, not {num_steps}: repeat the step num_steps "
                 "times."] = descend(f, x0, lr, 1)[0].to(x0.dtype)
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
                 mistakes={"one step was taken although num_steps = 0: loop num_steps times, "
                           "range(num_steps).": descend(cf.shifted_quadratic, x0, 0.1, 1)[0]
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

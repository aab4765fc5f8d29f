"""The mistakes of linear regression and minibatch SGD (§3.1-3.3) the tests recognise, and what
they say about each: the public tests (test_sgd.py) and the instructor's hidden tests check
with these same functions, so a mistake reads the same wherever it is caught.

Each `check_*` function raises an AssertionError that names the mistake, or returns when it
finds none. For the public tests' fixed inputs, the right answers and what each mistake gives
are written out below as numbers (a table per test, `*_EXAMPLE`, for
`grader.checks.assert_close(..., mistakes=...)`), worked out in float64 from the formulas of
the section; the instructor's kit checks every number against the hidden tests' oracles.
"""

from __future__ import annotations

import math

import torch

from grader.checks import expect_tensor, max_abs
from torchdrill import callables as cf

# --------------------------------------------------------------------------- synthetic_data


def check_y_column(y, n: int) -> None:
    """y of synthetic_data is a column (n, 1), not the (n,) of X w + b."""
    if isinstance(y, torch.Tensor) and tuple(y.shape) == (n,) and n > 1:
        raise AssertionError("y has shape (n,) but should be (n, 1): return "
                             "y.reshape((-1, 1)) (§3.3.1).")


def check_synthetic_distribution(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: float,
                                 noise: float) -> None:
    """For synthetic_data(w, b, 20000, noise): X's entries are N(0, 1) draws and the noise
    y - (X w + b) has mean 0 and standard deviation `noise` (§3.3.1). The bounds are six or
    more standard errors wide for 20000 examples."""
    X64 = X.double()
    mean, std = float(X64.mean()), float(X64.std())
    if abs(mean) > 0.03 or abs(std - 1) > 0.03:
        raise AssertionError(f"X's entries have mean {mean:.3g} and standard deviation "
                             f"{std:.3g}: draw them from N(0, 1) (torch.normal(0, 1, ...)).")
    residual = y.double().reshape(-1) - (X64 @ w.double() + b)
    r_mean, r_std = float(residual.mean()), float(residual.std())
    if abs(r_std / noise - 1) > 0.05:
        hint = " (is the `noise` argument used?)" if abs(r_std - 0.01) < 0.002 else ""
        raise AssertionError(f"the noise y - (X w + b) has standard deviation {r_std:.3g} but "
                             f"noise={noise} asks for {noise}{hint}: add "
                             "torch.normal(0, noise, y.shape).")
    if abs(r_mean) > 5 * noise / math.sqrt(len(residual)):
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
    """One pass holds every example exactly once, in batches of batch_size but a smaller last
    one, never an empty batch: names an empty batch, repeated examples and a dropped last
    partial batch (§3.2.1)."""
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


def passes_in_turns(student, batch_size: int, features: torch.Tensor, labels: torch.Tensor,
                    count: int = 2) -> list[list]:
    """The batches of `count` passes of data_iter alive at once, read in turns, batch by batch
    (one call each)."""
    passes = [iter(student.data_iter(batch_size, features, labels)) for _ in range(count)]
    batches: list[list] = [[] for _ in range(count)]
    live = [True] * count
    while any(live):
        for i, it in enumerate(passes):
            batch = next(it, None) if live[i] else None
            live[i] = live[i] and batch is not None
            if batch is not None:
                batches[i].append(tuple(batch))
    return batches


def check_passes_in_turns(batches: list[list], features: torch.Tensor, labels: torch.Tensor,
                          batch_size: int) -> None:
    """Each of the passes passes_in_turns() read holds every example exactly once: names
    passes that share their order (a module- or class-level list)."""
    n = len(features)
    for i, one in enumerate(batches):
        try:
            check_one_pass(one, order_of(one, features, labels), n, batch_size)
        except AssertionError as e:
            raise AssertionError(
                f"two passes of data_iter read in turns interfere (pass {i + 1}: {e}): each "
                "call's pass is an object of its own. Keep the shuffled indices in the "
                "generator's local variables, not in a module-level or class-level list that "
                "the other pass reshuffles.") from None


def check_shuffled(passes, n: int) -> None:
    """Two passes [(batches, order), (batches, order)] of data_iter over n examples visit
    them in a random order: names a data_iter that never shuffles, shuffles only the batches,
    or gives the same order on every pass (§3.2.1)."""
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


# --------------------------------------------------------------------------- linreg

LINREG_NO_BIAS = "the bias b is missing: X @ w + b."

# --------------------------------------------------------------------------- squared_loss

LOSS_NO_HALF = "this is (y_hat - y)**2 without the / 2 of §3.2.4."
LOSS_FLAT = "the losses have shape (n,): keep y_hat's shape (n, 1)."
LOSS_COLUMN = ("the losses have shape (n, 1), but y_hat is (n,): keep y_hat's shape (reshape "
               "y to y_hat.shape, not y_hat to (n, 1)).")


def loss_broadcasts(n: int) -> str:
    """The message for a y_hat (n, 1) minus a y (n,) that was not reshaped."""
    return (f"the result has shape {(n, n)}: without y.reshape(y_hat.shape), (n, 1) - (n,) "
            "broadcasts to (n, n) (every prediction minus every label) (§3.2.4).")


def loss_fixed_column(n: int) -> str:
    """The message for a y_hat (n,) minus a y reshaped to a fixed (n, 1)."""
    return (f"the result has shape {(n, n)}: y_hat may be (n,) or (n, 1), so reshape y to "
            "y_hat.shape, not to a fixed (-1, 1): (n,) - (n, 1) broadcasts to (n, n) "
            "(§3.2.4).")


def loss_mean(shape: tuple[int, ...]) -> str:
    """The message for the mean of the losses of y_hat of `shape`."""
    return (f"this is the mean over the examples: return the loss of each example, shape "
            f"{shape} (training sums it before backward).")


def loss_sum(shape: tuple[int, ...]) -> str:
    """The message for the sum of the losses of y_hat of `shape`."""
    return f"this is the sum over the examples: return the loss of each example, shape {shape}."


# --------------------------------------------------------------------------- sgd

APPLIED_TWICE = ("the second call applied the same gradient again: the gradients are not "
                 "zeroed after the update (p.grad.zero_()) (§3.2.5).")


SGD_NOT_DIVIDED = ("the update was not divided by batch_size: p -= lr * p.grad / batch_size "
                   "(the gradient is of the summed minibatch loss) (§3.2.5).")
SGD_MULTIPLIED = "the update was multiplied by batch_size; divide: p -= lr * p.grad / batch_size."
SGD_UPHILL = "the parameter moved uphill: p -= lr * p.grad / batch_size (minus, not plus)."


def sgd_divided_by_len(num_params: int) -> str:
    """The message for an update divided by len(params)."""
    return f"the update was divided by len(params) = {num_params}, not by batch_size."


def sgd_divided_by_first_dim(size: int) -> str:
    """The message for an update divided by the parameter's first dimension."""
    return f"the update was divided by the parameter's first dimension ({size}), not by batch_size."


def sgd_scale(values, grads, lr: float, i: int, steps: int = 1) -> float:
    """The magnitude rounding grows with in parameter i's update: each term floored at 1."""
    return max(1.0, max_abs(values[i])) + steps * lr * max(1.0, max_abs(grads[i]))


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


def check_still_requires_grad(i: int, p: torch.Tensor) -> None:
    if not p.requires_grad:
        raise AssertionError(f"parameter {i} no longer requires grad after sgd: update its "
                             "values inside torch.no_grad(), do not replace or detach it.")


def check_gradients_zeroed(after) -> None:
    for i, p in enumerate(after):
        if p.grad is not None and bool(p.grad.any()):
            raise AssertionError(f"parameter {i}'s gradient is not zero after sgd: the "
                                 "gradients are not zeroed, so they accumulate over minibatches."
                                 " Call p.grad.zero_() after each update (§3.2.5).")


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


def check_starting_point(w, b) -> None:
    """train_linreg(..., num_epochs=0) on d >= 400 features returns w ~ N(0, 0.01**2) and
    b = 0 (§3.2.2); the bounds on w's sample standard deviation are five standard errors wide
    for 400 entries."""
    assert float(b.abs().max()) == 0, f"b should start at 0, not {float(b.reshape(-1)[0])}."
    std = float(w.double().std())
    if not 0.008 < std < 0.012:
        raise AssertionError(f"w starts with standard deviation {std:.3g}: draw it from "
                             "N(0, 0.01**2), torch.normal(0, 0.01, size=(d, 1)) (§3.2.2).")


# --------------------------------------------------------------------------- closed_form_linreg

CLOSED_FORM_NO_BIAS = ("w is the least-squares fit without a bias: append a column of ones to "
                       "X (X1 = [X, 1]) and solve for [w; b] together (§3.1.1).")
CLOSED_FORM_B_ZERO = "b is 0: append a column of ones to X for the bias (§3.1.1)."


# --------------------------------------------------------------------------- gradient_descent


DESCENT_UPHILL = "x moved uphill: step against the gradient, x - lr * grad."
DESCENT_ACCUMULATES = ("the gradients accumulate from step to step: zero x.grad after every step "
                       "(x.grad.zero_()), or use torch.autograd.grad.")


def descent_one_step(num_steps: int) -> str:
    """The message for one step where num_steps were asked."""
    return f"this is x0 after one step, not {num_steps}: repeat the step num_steps times."


ONE_STEP_FOR_ZERO = ("one step was taken although num_steps = 0: loop num_steps times, "
                     "range(num_steps).")


# --------------------------------------------------------------------------- the public tests
# A table per public test: its inputs, the right answer and, under "mistakes", what each mistake
# the test names gives for those inputs, in the order a test tries them (the first match is the
# one named), worked out in float64 and rounded once to the inputs' dtype (written with the
# digits that round to it). A mistake that gives the right answer for these inputs is listed
# all the same where the hidden tests name it: other inputs tell it apart. The instructor's kit
# recomputes every number from the formulas of the hidden tests, so the two agree.

F64 = torch.float64

LINREG_EXAMPLE = {
    "X": torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]]),
    "w": torch.tensor([[2.0], [-3.4]]),
    "b": torch.tensor([4.2]),
    # [[2 - 6.8 + 4.2], [6 - 13.6 + 4.2], [0 + 3.4 + 4.2]], with float32's -3.4 and 4.2
    "expected": torch.tensor([[-0.6000004], [-3.4000006], [7.6]]),
    "mistakes": {LINREG_NO_BIAS: torch.tensor([[-4.8], [-7.6000004], [3.4]])},
}

SQUARED_LOSS_COLUMN_EXAMPLE = {
    "y_hat": torch.tensor([[1.0], [2.0], [4.0]]),
    "y": torch.tensor([1.5, 2.0, 1.0]),
    "expected": torch.tensor([[0.125], [0.0], [4.5]]),
    "mistakes": {
        loss_broadcasts(3): torch.tensor([[0.125, 0.5, 0.0], [0.125, 0.0, 0.5],
                                          [3.125, 2.0, 4.5]]),
        LOSS_NO_HALF: torch.tensor([[0.25], [0.0], [9.0]]),
        loss_mean((3, 1)): torch.tensor(1.5416666),
        loss_sum((3, 1)): torch.tensor(4.625),
        LOSS_FLAT: torch.tensor([0.125, 0.0, 4.5]),
    },
}

SQUARED_LOSS_FLAT_EXAMPLE = {
    "y_hat": torch.tensor([0.5, -1.0, 3.0, 2.0], dtype=F64),
    "y": torch.tensor([1.5, -1.0, 1.0, 2.5], dtype=F64),
    "expected": torch.tensor([0.5, 0.0, 2.0, 0.125], dtype=F64),
    "mistakes": {
        # y_hat and y both (n,): nothing to broadcast, so this one is right here
        loss_broadcasts(4): torch.tensor([0.5, 0.0, 2.0, 0.125], dtype=F64),
        LOSS_NO_HALF: torch.tensor([1.0, 0.0, 4.0, 0.25], dtype=F64),
        loss_mean((4,)): torch.tensor(0.65625, dtype=F64),
        loss_sum((4,)): torch.tensor(2.625, dtype=F64),
        loss_fixed_column(4): torch.tensor([[0.5, 3.125, 1.125, 0.125], [1.125, 0.0, 8.0, 4.5],
                                            [0.125, 2.0, 2.0, 0.5], [2.0, 6.125, 0.125, 0.125]],
                                           dtype=F64),
        LOSS_COLUMN: torch.tensor([[0.5], [0.0], [2.0], [0.125]], dtype=F64),
    },
}

SGD_EXAMPLE = {
    "values": [torch.tensor([[1.0], [2.0], [-0.5]]), torch.tensor([0.5])],
    "grads": [torch.tensor([[4.0], [-2.0], [6.0]]), torch.tensor([1.0])],
    "lr": 0.1,
    "batch_size": 4,
    "expected": [torch.tensor([[0.9], [2.05], [-0.65]]), torch.tensor([0.475])],
    "mistakes": [  # per parameter
        {SGD_NOT_DIVIDED: torch.tensor([[0.6], [2.2], [-1.1]]),
         sgd_divided_by_len(2): torch.tensor([[0.8], [2.1], [-0.8]]),
         sgd_divided_by_first_dim(3): torch.tensor([[0.8666667], [2.0666666], [-0.7]]),
         SGD_MULTIPLIED: torch.tensor([[-0.6], [2.8], [-2.9]]),
         SGD_UPHILL: torch.tensor([[1.1], [1.95], [-0.35]])},
        {SGD_NOT_DIVIDED: torch.tensor([0.4]),
         sgd_divided_by_len(2): torch.tensor([0.45]),
         sgd_divided_by_first_dim(1): torch.tensor([0.4]),
         SGD_MULTIPLIED: torch.tensor([0.1]),
         SGD_UPHILL: torch.tensor([0.525])},
    ],
}

# noise-free data y = X [2, -3.4] + 4.2 (float64), so the fit is exact up to rounding
CLOSED_FORM_EXAMPLE = {
    "X": torch.tensor([[1.0, 2.0], [-0.5, 1.5], [2.0, -1.0], [0.0, 0.5], [-1.5, -2.0],
                       [3.0, 1.0]], dtype=F64),
    "y": torch.tensor([[-0.5999999999999996], [-1.8999999999999995], [11.600000000000001],
                       [2.5], [8.0], [6.800000000000001]], dtype=F64),
    "w": torch.tensor([[2.0], [-3.4]], dtype=F64),
    "b": torch.tensor([4.2], dtype=F64),
    # the least-squares w of the same data without a bias column (b stays 0)
    "mistakes_w": {CLOSED_FORM_NO_BIAS: torch.tensor([[2.928436516264428], [-3.11794333683106]],
                                                     dtype=F64)},
    "mistakes_b": {CLOSED_FORM_B_ZERO: torch.zeros(1, dtype=F64)},
}

# each step moves x a fifth of the way to 3: x = 3 - (3 - x0) * 0.8**3
DESCENT_EXAMPLE = {
    "f": cf.shifted_quadratic_by_function,
    "x0": torch.tensor([0.5, -1.0, 2.0]),
    "lr": 0.1,
    "num_steps": 3,
    "expected": torch.tensor([1.72, 0.952, 2.488]),
    "scale": 45.0,  # 4 * the magnitude rounding grows with over the steps, + 1
    "mistakes": {
        DESCENT_UPHILL: torch.tensor([-1.32, -3.912, 1.272]),
        DESCENT_ACCUMULATES: torch.tensor([3.02, 3.032, 3.008]),
        descent_one_step(3): torch.tensor([1.0, -0.2, 2.2]),
    },
}

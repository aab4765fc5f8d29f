"""Hidden tests for model selection, weight decay and dropout (§4.4-4.6).

Oracles are the section's formulas computed here in float64. Dropout is tested by its
properties only, with bounds that a correct layer breaks with a probability of at most 1e-6
(Hoeffding's, `share_margin`): the share of zeroed elements, each kept element exactly X / (1 -
dropout), and masks that are independent across rows, columns and calls. `train_ridge` draws a
random w, so its first batch is one on which one SGD step with lr (1 + lambd) = 1 forgets the
start (`orthogonal_batch`); everything after is deterministic and compared with SGD run here.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from grader.checks import RecognisedMistake, assert_close, expect_tensor, hints_on_error, max_abs
from grader.failures import StudentRaised
from tests.hidden import _strategies as tds
from tests.hidden._conventions import (
    DATA_ITERATOR_HINTS,
    GPU,
    NON_CONTIGUOUS_HINTS,
    expect_independent,
    expect_on_gpu,
)
from tests.public.test_regularization import (
    BIAS_PENALISED,
    BIASES_DECAYED,
    DROPOUT_IN_EVAL,
    DROPOUT_ONE_NAN,
    FROM_X1,
    NO_FACTORIAL,
    PENALTY_NO_HALF,
    PENALTY_NORM,
    SAME_MASK_EVERY_CALL,
    check_agreement,
    check_forgets_the_start,
    check_kept_values,
    check_masks_independent,
    check_zeroed_share,
    nonzero_tensor,
    orthogonal_batch,
)
from torchdrill import callables as cf

ONE_EPOCH = ("this is after one epoch: loop over train_iter afresh in every one of the num_epochs "
             "epochs (an iterator made once, iter(train_iter), is empty after the first).")
RIDGE_NOT_ZEROED = ("the gradients accumulate: backward() adds to w.grad and b.grad, so zero them "
                    "after every step (p.grad.zero_() or p.grad = None), as topic 3's sgd does.")
ENDS_INCLUDED = ("the line allows 0 <= dropout <= 1, both ends included: dropout 0 gives X's "
                 "values, dropout 1 zeros; raise only outside [0, 1] (§4.6.4).")
SHARED_RATES = ("the first net dropped nothing once a second DropoutMLP with dropouts 0 was "
                "built: the two nets share their dropout rates (a module-level or class-level "
                "variable). Every object is independent: keep each net's rates on the net "
                "itself, self.dropout1 = dropout1 (§4.6.4).")
NOT_FLATTENED = ("x of shape (n, 1) gave a third axis: make x a column first, x.reshape(-1, 1), "
                 "whether it came as (n,) or (n, 1) (§4.4.4).")

# --------------------------------------------------------------------------- poly_features


@st.composite
def poly_inputs(draw):
    n = draw(st.integers(1, 9))
    shape = draw(st.sampled_from([(n,), (n, 1)]))
    x = draw(tds.tensors(shape, magnitude=draw(st.sampled_from([1.0, 3.0, 10.0])),
                         distribution="uniform"))
    return x, draw(st.integers(1, 20))


def powers64(x: torch.Tensor, degrees: range, factorial: bool = True) -> torch.Tensor:
    x = x.double().reshape(-1, 1)
    columns = [x[:, 0] ** i / (math.factorial(i) if factorial else 1) for i in degrees]
    return torch.stack(columns, dim=1)


@pytest.mark.points(3)
@given(inputs=poly_inputs())
@example(inputs=(torch.tensor([0.0, -10.0, 10.0, 2.5]), 20))
@example(inputs=(torch.tensor([[1.5], [-3.0], [0.25]], dtype=torch.float64), 6))
def test_poly_features_values(student, inputs):
    """poly_features(x, max_degree) is (n, max_degree) with column i = x**i / i!, for x of
    shape (n,) or (n, 1), negative or positive up to |x| = 10 included, max_degree 1 to 20,
    float32 and float64 (kept), contiguous or not; x = 0 gives 1 in column 0 (§4.4.4)."""
    x, degree = inputs
    expected = powers64(x, range(degree)).to(x.dtype)
    mistakes = {NO_FACTORIAL: powers64(x, range(degree), False),
                FROM_X1: powers64(x, range(1, degree + 1))}
    if x.dim() == 2:
        mistakes[NOT_FLATTENED] = powers64(x, range(degree))[:, None]
    assert_close(student.poly_features(x, degree), expected,
                 f"poly_features(x {tuple(x.shape)}, {degree}) for x in [-10, 10]",
                 mistakes={m: w.to(x.dtype) for m, w in mistakes.items()})


# --------------------------------------------------------------------------- l2_penalty


@st.composite
def weights(draw):
    shape = draw(st.sampled_from([(5, 1), (3,), (2, 4), (1, 1), (7, 3)]))
    return draw(tds.tensors(shape, magnitude=tds.magnitudes(100.0)))


def penalty_mistakes(w: torch.Tensor) -> dict[str, torch.Tensor]:
    total = (w.double() ** 2).sum()
    return {PENALTY_NO_HALF: total, PENALTY_NORM: total.sqrt(),
            PENALTY_NORM + " (And halved.)": total.sqrt() / 2,
            "this is the mean of w**2 / 2: sum over every entry, (w**2).sum() / 2.":
            (w.double() ** 2).mean() / 2}


@pytest.mark.points(2)
@given(w=weights())
def test_l2_penalty_values(student, w):
    """l2_penalty(w) is the 0-d tensor sum(w**2) / 2 for weights of several shapes, float32 and
    float64, contiguous or not, entries up to 100 (§4.5.2)."""
    expected = ((w.double() ** 2).sum() / 2).to(w.dtype)
    got = student.l2_penalty(w)
    if isinstance(got, torch.Tensor) and got.numel() == 1 and got.dim():
        raise AssertionError(f"l2_penalty(w) has shape {tuple(got.shape)}: return a 0-d "
                             "tensor, the sum over every entry.")
    assert_close(got, expected, f"l2_penalty(w {tuple(w.shape)})",
                 mistakes={m: v.to(w.dtype) for m, v in penalty_mistakes(w).items()})


@pytest.mark.points(1)
@given(w=weights())
def test_l2_penalty_gradient(student, w):
    """Autograd reaches w through l2_penalty, whose gradient is w itself (§4.5.2)."""
    assert_close(student.gradient("l2_penalty", w), w, "the gradient of l2_penalty",
                 mistakes={PENALTY_NO_HALF: 2 * w})


# --------------------------------------------------------------------------- train_ridge

LAMBDAS = (0.0, 0.25, 1.0, 3.0)


def ridge_sgd(batches, num_inputs: int, lambd: float, num_epochs: int, lr: float,
              start: torch.Tensor | None = None, penalise_bias: bool = False,
              batch_size: int | None = None, accumulate: bool = False):
    """train_ridge's steps in float64 from w = `start` (0 by default: the first, orthogonal,
    batch forgets the start), b = 0. `penalise_bias`, `batch_size`, `accumulate` (gradients
    never zeroed, so the first one, which depends on the start, stays): the mistakes' steps."""
    w = torch.zeros(num_inputs, 1, dtype=torch.float64) if start is None else start.double()
    b = torch.zeros(1, dtype=torch.float64)
    size = max_abs(w)
    total_w, total_b = torch.zeros_like(w), torch.zeros_like(b)
    for _ in range(num_epochs):
        for X, y in batches:
            X, y = X.double(), y.double().reshape(-1, 1)
            n = batch_size or len(y)
            residual = X @ w + b - y
            grad_w = X.T @ residual + len(y) * lambd * w
            grad_b = residual.sum(0) + (len(y) * lambd * b if penalise_bias else 0)
            if accumulate:
                total_w, total_b = total_w + grad_w, total_b + grad_b
                grad_w, grad_b = total_w, total_b
            w, b = w - lr * grad_w / n, b - lr * grad_b / n
            size = max(size, max_abs(w, b))
    return w, b, size


@st.composite
def ridge_problems(draw):
    """The orthogonal batch, then 1 to 3 batches of 1 to 9 examples (X ~ 0.4 N(0, 1), in
    any layout), of y = X w* + b* + noise; lr = 1 / (1 + lambd)."""
    num_inputs = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**20))
    g = torch.Generator().manual_seed(seed)
    true_w = torch.randn(num_inputs, 1, generator=g) * 2
    true_b = float(torch.randn(1, generator=g)) * 2
    sizes = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))
    features = [orthogonal_batch(num_inputs)] + [0.4 * torch.randn(n, num_inputs, generator=g)
                                                 for n in sizes]
    batches = [(tds.with_layout(X, draw(tds.layouts())),
                X @ true_w + true_b + 0.1 * torch.randn(len(X), 1, generator=g))
               for X in features]
    lambd = draw(st.sampled_from(LAMBDAS))
    return batches, num_inputs, lambd, draw(st.integers(1, 3)), 1 / (1 + lambd)


@pytest.mark.points(4)
@given(problem=ridge_problems())
def test_train_ridge_takes_the_sgd_steps(student, problem):
    """train_ridge(train_iter, num_inputs, lambd, num_epochs, lr) takes one SGD step per batch
    on the summed squared loss plus lambd * l2_penalty(w) for every example, divided by that
    batch's size, the bias not penalised, the gradients zeroed after every step, for 1 to 3
    epochs over batches of unequal size (one example included, features contiguous or not),
    lambd 0 to 3; returns w (num_inputs, 1) and b (1,), float32, detached (§4.5.3)."""
    batches, num_inputs, lambd, num_epochs, lr = problem
    start = seeded_start(student, num_inputs)
    w, b = student.train_ridge(batches, num_inputs, lambd, num_epochs, lr)
    check_ridge(w, b, ridge_sgd(*problem), ridge_mistakes(problem, start),
                f"after {num_epochs} epoch(s) over batches of sizes "
                f"{[len(y) for _, y in batches]} with lambd={lambd}, lr={lr:.3g}",
                num_epochs * len(batches))


START_SEED = 4321


def seeded_start(student, num_inputs: int) -> torch.Tensor:
    """Seed the worker's random generator and return the w that train_ridge's line then draws
    first, torch.normal(0, 1, (num_inputs, 1)): the mistake that never zeroes the gradients
    keeps the first one, which depends on the start, and is named from it."""
    student.remote(torch.random.manual_seed, START_SEED)
    with torch.random.fork_rng():
        torch.manual_seed(START_SEED)
        return torch.normal(0, 1, (num_inputs, 1))


def ridge_mistakes(problem, start: torch.Tensor) -> dict[str, tuple]:
    """The named wrong results (w, b, size) of train_ridge on `problem` from w = `start`."""
    batches, num_inputs, lambd, num_epochs, lr = problem
    return {BIAS_PENALISED: ridge_sgd(*problem, penalise_bias=True),
            "every step was divided by the first batch's size: sgd gets each batch's own "
            "size, len(y).": ridge_sgd(*problem, batch_size=8),
            ONE_EPOCH: ridge_sgd(batches, num_inputs, lambd, 1, lr),
            RIDGE_NOT_ZEROED: ridge_sgd(*problem, start=start, accumulate=True)}


def check_ridge(w, b, expected: tuple, mistakes: dict[str, tuple], what: str, steps: int
                ) -> None:
    """train_ridge's (w, b) against the oracle's (w, b, size), naming a known mistake."""
    w_want, b_want, size = expected
    expect_tensor(w, "w", shape=w_want.shape, dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    if w.requires_grad or b.requires_grad:
        raise AssertionError("train_ridge returned w or b attached to autograd: return "
                             "w.detach(), b.detach().")
    tol = 1e-5 * (1 + size) * (1 + steps)
    assert_close(w, w_want.float(), f"w {what}", atol=tol,
                 mistakes={m: v[0].float() for m, v in mistakes.items()})
    assert_close(b, b_want.float(), f"b {what}", atol=tol,
                 mistakes={m: v[1].float() for m, v in mistakes.items()})


@pytest.mark.points(1)
def test_train_ridge_any_reiterable_data(student):
    """train_iter may be any re-iterable of (X, y) batches, here one with no len() and no
    .dataset (a new pass on every iter(), as a DataLoader): train_ridge loops over it afresh
    every epoch and takes the same SGD steps as on a list (§4.5.3)."""
    g = torch.Generator().manual_seed(31)
    features = [orthogonal_batch(4)] + [0.4 * torch.randn(n, 4, generator=g) for n in (5, 3)]
    batches = [(X, X @ torch.tensor([[1.0], [-0.5], [2.0], [0.25]]) + 0.5) for X in features]
    problem = (batches, 4, 0.25, 3, 0.8)
    data = student.remote(cf.ReiterableBatches, batches)
    start = seeded_start(student, 4)
    with hints_on_error(DATA_ITERATOR_HINTS):
        w, b = student.train_ridge(data, 4, 0.25, 3, 0.8)
    check_ridge(w, b, ridge_sgd(*problem), ridge_mistakes(problem, start),
                "after 3 epochs over a re-iterable of 3 batches without len()", 9)


@pytest.mark.points(3)
@pytest.mark.parametrize("num_inputs,lambd", [(5, 1.0), (2, 3.0)])
def test_train_ridge_penalty_on_every_example(student, num_inputs, lambd):
    """One step on 8 examples with orthogonal features and lr = 1 / (1 + lambd) lands where the
    penalty lambd * sum(w**2) / 2 on every example's loss puts it, forgetting the random
    start: not once per batch, not without the / 2 (§4.5.3)."""
    X = orthogonal_batch(num_inputs)
    g = torch.Generator().manual_seed(num_inputs)
    y = X @ torch.randn(num_inputs, 1, generator=g) - 1.5
    check_forgets_the_start(student, X, y, lambd, f"train_ridge with lambd={lambd}")


@pytest.mark.points(1)
def test_train_ridge_starting_point(student):
    """With num_epochs = 0 train_ridge returns its start: w drawn from N(0, 1) (4000 entries:
    mean within 0.08 of 0, variance within 0.15 of 1), anew on every call, and b = 0
    (§4.5.3)."""
    data = [(torch.zeros(1, 4000), torch.zeros(1, 1))]
    w, b = student.train_ridge(data, 4000, 1.0, 0, 0.1)
    expect_tensor(w, "w", shape=(4000, 1), dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    assert not bool(b.any()), f"b should start at 0, not {b.tolist()}."
    # mean of 4000 N(0, 1): sd 0.0158, 0.08 is 5 sd; variance: sd 0.0224, 0.15 is 6.7 sd
    mean, var = float(w.double().mean()), float(w.double().var())
    if abs(mean) > 0.08 or abs(var - 1) > 0.15:
        raise AssertionError(f"w starts with mean {mean:.3g} and variance {var:.3g}: draw it "
                             "from N(0, 1), torch.normal(0, 1, (num_inputs, 1)) (§4.5.3).")
    again, _ = student.train_ridge(data, 4000, 1.0, 0, 0.1)
    if torch.equal(w, again):
        raise AssertionError("two calls of train_ridge started from the same w: draw it anew "
                             "on every call (never reseed the random generator inside "
                             "train_ridge).")


# --------------------------------------------------------------------------- weight_decay_groups


def nets():
    """(name, modules, the parameters' names in the decayed group, in the other group)."""
    tied = nn.Linear(3, 3)
    return [
        ("two Linear layers", [nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)],
         ["0.weight", "2.weight"], ["0.bias", "2.bias"]),
        ("Linear without bias, BatchNorm1d, Linear",
         [nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 2)],
         ["0.weight", "1.weight", "2.weight"], ["1.bias", "2.bias"]),
        ("one Linear layer used twice", [tied, nn.Tanh(), tied], ["0.weight"], ["0.bias"]),
        ("weights only", [nn.Linear(3, 2, bias=False)], ["0.weight"], []),
    ]


def distinct_values(modules, seed: int) -> dict[str, torch.Tensor]:
    """Give every parameter random values (no two alike), so a returned tensor tells which
    parameter it is; returns name -> values."""
    net = nn.Sequential(*modules)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def names_of(params, values: dict[str, torch.Tensor], what: str) -> list[str]:
    if not isinstance(params, list | tuple):
        raise AssertionError(f"{what}['params'] should be a list of parameters, but it is "
                             f"{type(params).__name__}.")
    names = []
    for p in params:
        expect_tensor(p, f"an entry of {what}['params']")
        found = [n for n, v in values.items() if v.shape == p.shape and torch.equal(v, p)]
        if not found:
            raise AssertionError(f"{what}['params'] holds a tensor of shape {tuple(p.shape)} "
                                 "that is none of the net's parameters: list the parameters "
                                 "themselves (net.named_parameters()).")
        names.append(found[0])
    return names


@pytest.mark.points(1)
@pytest.mark.parametrize("case", range(4))
def test_weight_decay_groups_splits_by_name(student, case):
    """weight_decay_groups(net, wd) returns [{'params': the parameters whose name ends in
    'weight', 'weight_decay': wd}, {'params': the others, 'weight_decay': 0}], each parameter
    exactly once, for two Linear layers, a BatchNorm1d (its weight is decayed), a layer used
    twice (its parameters listed once) and a net without biases (an empty second group)
    (§4.5.4)."""
    name, modules, decayed, others = nets()[case]
    values = distinct_values(modules, case)
    groups = student.weight_decay_groups(student.remote(nn.Sequential, *modules), 3e-4)
    if not isinstance(groups, list | tuple) or len(groups) != 2 or not all(
            isinstance(g, dict) for g in groups):
        raise AssertionError("weight_decay_groups should return a list of two dicts, "
                             "{'params': [...], 'weight_decay': ...}.")
    first, second = (names_of(g.get("params"), values, f"group {i}")
                     for i, g in enumerate(groups))
    decays = [g.get("weight_decay") for g in groups]
    if decays != [3e-4, 0]:
        hint = " (the decayed group comes first)" if decays == [0, 3e-4] else ""
        raise AssertionError(f"the groups' weight_decay are {decays}, not [wd, 0]{hint}.")
    listed = first + second
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        raise AssertionError(f"{twice} appear more than once in the groups ({name}): each "
                             "parameter exactly once, as net.named_parameters() lists them.")
    if sorted(first) != sorted(decayed) or sorted(second) != sorted(others):
        found = (f"for {name} the decayed group holds {sorted(first)} and the other "
                 f"{sorted(second)}; expected {decayed} and {others}")
        if any(n.endswith("bias") for n in first):
            raise RecognisedMistake(f"{found}: {BIASES_DECAYED}", BIASES_DECAYED)
        raise AssertionError(f"{found}: decay exactly the parameters whose name in "
                             "net.named_parameters() ends in 'weight'.")


# --------------------------------------------------------------------------- dropout_layer

# Hoeffding margins (share_margin: a correct layer strays past one with probability <= 1e-6):
# 20000 elements 0.0190; the 2400 pairs of neighbouring rows of a (60, 80) X 0.0550 above
# dropout**2 + (1 - dropout)**2, 4800 elements of two calls 0.0389; 1200 pairs of (20, 12, 10)
# slices 0.0778. Every mistake of the variants suite is at least 0.2 past them.
DROPOUTS = (0.1, 0.3, 0.5, 0.8)


@pytest.mark.points(2)
@pytest.mark.parametrize("dropout", DROPOUTS)
def test_dropout_layer_zeroed_share(student, dropout):
    """dropout_layer(X, dropout) on 200 x 100 elements zeroes a share of them within
    share_margin (0.019) of dropout, and every kept element is X / (1 - dropout) to a relative
    1e-6 (§4.6.4)."""
    X = nonzero_tensor((200, 100), int(dropout * 10))
    out = expect_tensor(student.dropout_layer(X, dropout), f"dropout_layer(X, {dropout})",
                        shape=(200, 100), dtype=torch.float32)
    check_kept_values(out, X, dropout, f"dropout_layer(X, {dropout})")
    check_zeroed_share(out == 0, dropout, f"dropout_layer(X, {dropout})")


@pytest.mark.points(2)
@pytest.mark.parametrize("dropout", (0.2, 0.5))
def test_dropout_layer_independent_masks(student, dropout):
    """Masks are independent: neighbouring rows and neighbouring columns of a (60, 80) X agree
    on which elements were dropped no more than independent draws do, and so do two calls on
    the same X and the slices X[0], X[1], ... of a 3-d X (§4.6.4)."""
    X = nonzero_tensor((60, 80), 7)
    first = expect_tensor(student.dropout_layer(X, dropout), "dropout_layer(X)",
                          shape=(60, 80)) == 0
    check_masks_independent(first, dropout, f"the masks of dropout_layer(X, {dropout})")
    second = student.dropout_layer(X, dropout) == 0
    check_agreement(first == second, dropout, "the masks of two calls", SAME_MASK_EVERY_CALL)
    cube = student.dropout_layer(nonzero_tensor((20, 12, 10), 8), dropout)
    zeroed = expect_tensor(cube, "dropout_layer(X) for X (20, 12, 10)", shape=(20, 12, 10)) == 0
    check_masks_independent(zeroed, dropout, "the masks of dropout_layer(X) for X (20, 12, 10)")


@st.composite
def dropout_inputs(draw):
    shape = draw(st.sampled_from([(7,), (3, 5), (2, 3, 4), (2, 1, 3, 3)]))
    dtype = draw(tds.dtypes())
    seed = draw(st.integers(0, 2**20))
    X = tds.with_layout(nonzero_tensor(shape, seed, dtype), draw(tds.layouts()))
    return X, draw(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]))


@pytest.mark.points(2)
@given(inputs=dropout_inputs())
@example(inputs=(tds.with_layout(nonzero_tensor((3, 5), 21, torch.float64), "transposed"), 0.25))
def test_dropout_layer_keeps_shape_and_dtype(student, inputs):
    """For X of 1 to 4 dimensions, float32 and float64, contiguous or not, and dropout 0 to 1:
    the result has X's shape and dtype, every element 0 or X / (1 - dropout); X itself is left
    alone (§4.6.4)."""
    X, dropout = inputs
    with hints_on_error(NON_CONTIGUOUS_HINTS):
        out = student.dropout_layer(X, dropout)
    expect_tensor(out, f"dropout_layer(X {tuple(X.shape)}, {dropout})", shape=X.shape,
                  dtype=X.dtype)
    if dropout == 1:
        check_all_dropped(out)
    else:
        check_kept_values(out, X, dropout, f"dropout_layer(X {tuple(X.shape)}, {dropout})")
        if dropout == 0 and not bool((out != 0).all()):
            raise AssertionError("dropout_layer(X, 0) dropped elements: with dropout 0 none is "
                                 "dropped (return X, or keep where rand >= 0).")


def check_all_dropped(out: torch.Tensor) -> None:
    if bool(out.isnan().any()):
        raise RecognisedMistake(f"dropout_layer(X, 1): {DROPOUT_ONE_NAN}", DROPOUT_ONE_NAN)
    if bool(out.any()):
        raise AssertionError("dropout_layer(X, 1) should be all zeros: every element dropped.")


@pytest.mark.points(1)
@pytest.mark.parametrize("dropout", (0, 0.0, 1, 1.0))
def test_dropout_layer_extremes(student, dropout):
    """dropout_layer(X, 0) gives exactly X's values, dropout_layer(X, 1) zeros (never nan):
    0 <= dropout <= 1 holds at both ends, for a float or an int dropout, float32 and float64
    (§4.6.4)."""
    for dtype in (torch.float32, torch.float64):
        X = nonzero_tensor((30, 20), 9, dtype)
        try:
            out = student.dropout_layer(X, dropout)
        except StudentRaised as e:
            raise RecognisedMistake(f"dropout_layer(X, {dropout}) raised: {e}\n{ENDS_INCLUDED}",
                                    ENDS_INCLUDED) from None
        expect_tensor(out, f"dropout_layer(X, {dropout})", shape=X.shape, dtype=dtype)
        if dropout == 1:
            check_all_dropped(out)
        else:
            assert_close(out, X, f"dropout_layer(X, {dropout})", atol=0)


@pytest.mark.points(1)
@pytest.mark.parametrize("dropout", (-0.1, 1.5, float("nan"), -1e-9))
def test_dropout_layer_rejects_other_values(student, dropout):
    """dropout_layer(X, dropout) raises an exception for dropout outside [0, 1], nan included
    (§4.6.4)."""
    X = nonzero_tensor((4, 3), 10)
    student.dropout_layer(X, 0.5)  # it works where it should
    with pytest.raises(StudentRaised):
        out = student.dropout_layer(X, dropout)
        raise AssertionError(f"dropout_layer(X, {dropout}) returned {describe(out)} instead of "
                             "raising: check 0 <= dropout <= 1 first and raise a ValueError "
                             "otherwise (nan fails every comparison).")


def describe(value) -> str:
    return (f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
            else type(value).__name__)


@pytest.mark.points(1)
def test_dropout_layer_gradient(student):
    """Autograd reaches X through dropout_layer: each entry of the gradient of sum(dropout_layer
    (X, 0.25)) is 0 (dropped) or 1 / 0.75 (kept) (§4.6.4)."""
    grad = student.gradient("dropout_layer", nonzero_tensor((20, 10), 11), 0.25)
    grad = expect_tensor(grad, "the gradient of dropout_layer", shape=(20, 10))
    kept = grad != 0
    assert_close(grad[kept], torch.full((int(kept.sum()),), 1 / 0.75),
                 "the gradient of dropout_layer where an element was kept", rtol=1e-6, atol=0)


@pytest.mark.gpu
@pytest.mark.points(1)
def test_dropout_layer_on_the_gpu(student):
    """For X on the GPU, the mask is drawn there too (torch.rand(X.shape, device=X.device) or
    torch.rand_like(X)) and the result stays on X's device (§4.6.4, §5.6)."""
    X = nonzero_tensor((50, 40), 12).to("cuda:0")
    out = expect_tensor(student.dropout_layer(X, 0.5), "dropout_layer(X, 0.5) for X on cuda:0",
                        shape=(50, 40), device="cuda:0")
    check_kept_values(out.cpu(), X.cpu(), 0.5, "dropout_layer(X, 0.5) on cuda:0")


# --------------------------------------------------------------------------- DropoutMLP


def mlp_oracle(state: dict, X: torch.Tensor) -> torch.Tensor:
    """lin3(relu(lin2(relu(lin1(X flattened))))) in float64: the net without dropout."""
    h = X.double().reshape(len(X), -1)
    for i, layer in enumerate(("lin1", "lin2", "lin3")):
        h = h @ state[f"{layer}.weight"].double().T + state[f"{layer}.bias"].double()
        h = torch.relu(h) if i < 2 else h
    return h


def build(student, sizes=(12, 3, 10, 8), dropouts=(0.5, 0.5)):
    net = student.DropoutMLP(*sizes, *dropouts)
    state = net.state_dict()
    num_inputs, num_outputs, h1, h2 = sizes
    for name, shape in (("lin1.weight", (h1, num_inputs)), ("lin2.weight", (h2, h1)),
                        ("lin3.weight", (num_outputs, h2))):
        if name not in state or tuple(state[name].shape) != shape:
            raise AssertionError(f"DropoutMLP{(*sizes, *dropouts)} should have the nn.Linear "
                                 f"layers lin1, lin2 and lin3, {name} of shape {shape}; its "
                                 f"parameters are {sorted(state)}.")
    return net, state


@pytest.mark.points(2)
def test_dropout_mlp_layers(student):
    """DropoutMLP(num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2) has
    the Linear layers lin1 (num_inputs -> num_hiddens1), lin2 and lin3 (-> num_outputs), with
    biases, and maps images (n, 1, 3, 4) flattened to 12 inputs to logits (n, 3) (§4.6.4)."""
    net, state = build(student)
    for layer in ("lin1", "lin2", "lin3"):
        if f"{layer}.bias" not in state:
            raise AssertionError(f"{layer} has no bias: nn.Linear's default keeps one.")
    expect_tensor(net(nonzero_tensor((5, 1, 3, 4), 13)), "DropoutMLP(12, 3, ...)(X) for X "
                  "(5, 1, 3, 4)", shape=(5, 3))


@pytest.mark.points(3)
def test_dropout_mlp_eval_mode_drops_nothing(student):
    """In evaluation mode (net.eval()) DropoutMLP with dropouts 0.5 computes the plain MLP
    lin3(relu(lin2(relu(lin1(X))))), the same on every call (§4.6.4)."""
    net, state = build(student)
    net.eval()
    X = nonzero_tensor((16, 12), 14)
    first = expect_tensor(net(X), "DropoutMLP(...)(X) in evaluation mode", shape=(16, 3))
    if not torch.equal(first, net(X)):
        raise RecognisedMistake("DropoutMLP(...)(X) in evaluation mode changes from call to "
                                f"call: {DROPOUT_IN_EVAL}", DROPOUT_IN_EVAL)
    expected = mlp_oracle(state, X)
    assert_close(first, expected.float(), "DropoutMLP(...)(X) in evaluation mode",
                 scale=max_abs(expected) + 1)


@pytest.mark.points(2)
def test_dropout_mlp_training_mode_drops(student):
    """In training mode (after net.train()) DropoutMLP drops: with dropouts 0.5 two calls
    differ, and the output is attached to autograd (the net is trained through it); with
    dropouts 0 the output is the plain MLP's (§4.6.4)."""
    net, _ = build(student)
    X = nonzero_tensor((16, 12), 15)
    net.train()
    out = expect_tensor(net(X), "DropoutMLP(...)(X) in training mode", shape=(16, 3))
    if not out.requires_grad:
        raise AssertionError("DropoutMLP's output in training mode does not require grad: "
                             "compute it from the layers with differentiable operations (no "
                             "torch.no_grad(), .detach() or .item()), or the net cannot be "
                             "trained.")
    if torch.equal(out, net(X)):
        raise AssertionError("in training mode, DropoutMLP with dropout1 = dropout2 = 0.5 gave "
                             "the same output twice: apply dropout_layer after each hidden "
                             "ReLU while self.training is True.")
    plain, state = build(student, dropouts=(0.0, 0.0))
    expected = mlp_oracle(state, X)
    assert_close(plain(X), expected.float(), "DropoutMLP with dropouts 0 in training mode",
                 scale=max_abs(expected) + 1)


def all_dropped(state: dict, layer: str, n: int) -> torch.Tensor:
    """The output (n, num_outputs) of a DropoutMLP whose activations after `layer` ('lin1' or
    'lin2') were all dropped: every row lin3(relu(lin2.bias)), or lin3.bias."""
    b3 = state["lin3.bias"].double()
    if layer == "lin2":
        return b3.expand(n, -1)
    return (torch.relu(state["lin2.bias"].double()) @ state["lin3.weight"].double().T
            + b3).expand(n, -1)


@pytest.mark.points(2)
def test_dropout_mlp_drops_after_each_hidden_layer(student):
    """In training mode, dropout1 = 1 zeroes lin1's activations, so every row of the output is
    lin3(relu(lin2.bias)); dropout2 = 1 zeroes lin2's, so every row is lin3.bias (§4.6.4)."""
    X = nonzero_tensor((6, 12), 16)
    for dropouts, which, other in (((1.0, 0.0), "lin1", "lin2"), ((0.0, 1.0), "lin2", "lin1")):
        net, state = build(student, dropouts=dropouts)
        net.train()
        expected = all_dropped(state, which, 6)
        swapped = {"dropout1 and dropout2 are swapped: dropout1 follows lin1's ReLU, dropout2 "
                   "lin2's.": all_dropped(state, other, 6).float()}
        assert_close(net(X), expected.float(), f"DropoutMLP with dropout1, dropout2 = "
                     f"{dropouts} in training mode", scale=max_abs(expected) + 1,
                     mistakes=swapped)


@pytest.mark.points(2)
def test_dropout_mlp_nets_are_independent(student):
    """Two DropoutMLPs alive at once share nothing: a new net with dropout1 = 1 drops all of
    lin1's activations (a new nn.Module is in training mode), and still does after a second
    net with dropouts 0 is built, which computes the plain MLP; setting one net's parameters
    leaves the other's alone (§4.6.4)."""
    X = nonzero_tensor((6, 12), 18)
    first, state = build(student, dropouts=(1.0, 0.0))
    expected = all_dropped(state, "lin1", 6).float()
    what = "a new DropoutMLP with dropout1 = 1, in training mode as built"
    assert_close(first(X), expected, what, scale=max_abs(expected) + 1,
                 mistakes={"it dropped nothing: a new nn.Module is in training mode "
                           "(self.training is True) until net.eval(), and DropoutMLP drops "
                           "then.": mlp_oracle(state, X).float()})
    second, plain = build(student, dropouts=(0.0, 0.0))
    assert_close(first(X), expected, f"{what}, once a second net was built",
                 scale=max_abs(expected) + 1,
                 mistakes={SHARED_RATES: mlp_oracle(state, X).float()})
    unchanged = mlp_oracle(plain, X)
    assert_close(second(X), unchanged.float(), "the second DropoutMLP, with dropouts 0",
                 scale=max_abs(unchanged) + 1)
    expect_independent(student, first, second, "DropoutMLP", "Create the nn.Linear layers "
                       "in __init__, on every call.")


@pytest.mark.points(1)
@given(X=tds.tensors(st.sampled_from([(5, 1, 3, 4), (4, 12), (1, 12)]), dtype=torch.float32))
@example(X=tds.with_layout(nonzero_tensor((5, 1, 3, 4), 19), "transposed"))
@tds.max_examples(at_most=3)
def test_dropout_mlp_any_batch_layout(student, X):
    """DropoutMLP takes batches X of images (n, 1, 3, 4) or rows (n, 12), one example
    included, contiguous or not (transposed, strided, at a storage offset): in evaluation mode
    it computes the plain MLP (§4.6.4)."""
    net, state = build(student)
    net.eval()
    with hints_on_error(NON_CONTIGUOUS_HINTS):
        out = net(X)
    expected = mlp_oracle(state, X)
    assert_close(out, expected.float(), f"DropoutMLP(...)(X) for X {tuple(X.shape)} of "
                 f"strides {X.stride()}, in evaluation mode", scale=max_abs(expected) + 1)


@pytest.mark.points(2)
def test_dropout_mlp_rescales_what_it_keeps(student):
    """With lin2 and lin3 set to identities (biases 0), DropoutMLP(12, 10, 10, 10, 0.3, 0) in
    training mode outputs its evaluation-mode output relu(lin1(X)) with each element zeroed or
    divided by 0.7, a share of about 0.3 of the positive ones zeroed (§4.6.4)."""
    net, state = build(student, sizes=(12, 10, 10, 10), dropouts=(0.3, 0.0))
    eye, zero = torch.eye(10), torch.zeros(10)
    net.load_state_dict({**state, "lin2.weight": eye, "lin2.bias": zero, "lin3.weight": eye,
                         "lin3.bias": zero}, strict=False)
    X = nonzero_tensor((400, 12), 17)
    net.eval()
    hidden = expect_tensor(net(X), "DropoutMLP(...)(X) in evaluation mode", shape=(400, 10))
    if not torch.equal(hidden, net(X)):
        raise RecognisedMistake("DropoutMLP(...)(X) in evaluation mode changes from call to "
                                f"call: {DROPOUT_IN_EVAL}", DROPOUT_IN_EVAL)
    net.train()
    out = expect_tensor(net(X), "DropoutMLP(...)(X) in training mode", shape=(400, 10))
    positive = hidden > 0
    check_kept_values(out[positive], hidden[positive], 0.3,
                      "DropoutMLP's activations after lin1, in training mode")
    check_zeroed_share(out[positive] == 0, 0.3,
                       "DropoutMLP's activations after lin1, in training mode")


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """For inputs on the GPU, poly_features and l2_penalty give results there, and a DropoutMLP
    moved there (net.to(device)) computes there in training mode, its masks drawn on the GPU:
    make new tensors with device=x.device, never on the default device (§4.4-4.6, §5.6)."""
    x = torch.tensor([[0.5], [-2.0], [3.0]], dtype=torch.float64).to(GPU)
    expect_on_gpu(student.poly_features(x, 5), f"poly_features(x, 5) for x on {GPU}")
    expect_on_gpu(student.l2_penalty(x), f"l2_penalty(w) for w on {GPU}")
    net, _ = build(student)
    net.to(GPU)
    net.train()
    expect_on_gpu(net(nonzero_tensor((8, 12), 20).to(GPU)),
                  f"DropoutMLP(...)(X) in training mode for the net and X on {GPU}")

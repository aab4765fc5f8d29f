"""Public checks for model selection, weight decay and dropout (§4.4-4.6): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs, and name
the same mistakes in the same words (both take them from _mistakes_regularization.py, and what
every topic shares from _conventions.py).

Dropout is random, so its checks are statistical, with bounds a correct layer breaks with a
probability of at most one in a million (`share_margin`); they never compare with one draw of
a reference. `train_ridge` starts from a random w, so its checks use a batch on which one SGD
step forgets where w started (`orthogonal_batch`), and compare what comes after.

The tests that compare with numbers read their inputs, the numbers they expect and what each
mistake they name gives for those inputs from a table in _mistakes_regularization.py
(`POLY_EXAMPLE`, `RIDGE_TWO_SIZES_EXAMPLE`, ...).
"""

import pytest
import torch
from torch import nn

from grader.checks import RecognisedMistake, assert_close, expect_tensor, hints_on_error, max_abs
from grader.failures import StudentRaised
from tests.public._conventions import NON_CONTIGUOUS_HINTS, expect_independent
from tests.public._mistakes_regularization import (
    BIASES_DECAYED,
    ENDS_INCLUDED,
    L2_PENALTY_EXAMPLE,
    NOT_TRAINING_WHEN_BUILT,
    POLY_COLUMN_EXAMPLE,
    POLY_EXAMPLE,
    RATES_SWAPPED,
    RIDGE_BIAS_EXAMPLE,
    RIDGE_ONE_STEP_EXAMPLE,
    RIDGE_TWO_SIZES_EXAMPLE,
    SAME_MASK_EVERY_CALL,
    SHARED_RATES,
    all_dropped,
    build,
    check_agreement,
    check_all_dropped,
    check_forgets_the_start,
    check_groups,
    check_kept_values,
    check_masks_independent,
    check_ridge,
    check_ridge_start,
    check_same_in_eval,
    check_zeroed_share,
    distinct_values,
    mlp_oracle,
    nonzero_tensor,
    not_rejected,
    seeded_start,
)


@pytest.mark.points(1)
def test_poly_features_small_example(student):
    """poly_features([2, -1, 0.5], 4) has the columns 1, x, x**2 / 2!, x**3 / 3! (§4.4.4)."""
    example = POLY_EXAMPLE
    assert_close(student.poly_features(example["x"], example["max_degree"]), example["expected"],
                 "poly_features([2, -1, 0.5], 4)", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_poly_features_float64_column(student):
    """x may come as a column (n, 1), and in float64: poly_features([[1.5], [-3], [0.25]], 5)
    is still (3, 5), column i = x**i / i!, in float64 (make x a column with x.reshape(-1, 1),
    and build the powers and factorials in x's dtype) (§4.4.4)."""
    example = POLY_COLUMN_EXAMPLE
    assert_close(student.poly_features(example["x"], example["max_degree"]), example["expected"],
                 "poly_features(x, 5) for x (3, 1) in float64", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_l2_penalty_small_example(student):
    """l2_penalty([[3], [-4]]) is (9 + 16) / 2 = 12.5, a 0-d tensor (§4.5.2)."""
    example = L2_PENALTY_EXAMPLE
    penalty = student.l2_penalty(example["w"])
    expect_tensor(penalty, "l2_penalty(w)", shape=())
    assert_close(penalty, example["expected"], "l2_penalty([[3], [-4]])",
                 mistakes=example["mistakes"])


@pytest.mark.points(2)
def test_train_ridge_one_exact_step(student):
    """One step on 8 examples with orthogonal +-1 features (orthogonal_batch), lambd = 0.25 and
    lr = 0.8 = 1 / (1 + lambd): the penalty on every example's loss makes w forget its random
    start, w = lr X^T y / 8 = [0.8, -1.6, 0.4] and b = lr mean(y) = 2.4 (§4.5.3)."""
    example = RIDGE_ONE_STEP_EXAMPLE
    check_forgets_the_start(student, *example["batch"], example["lambd"],
                            "train_ridge after one step")


@pytest.mark.points(1)
def test_train_ridge_leaves_the_bias_alone(student):
    """Two steps on the orthogonal batch with lambd = 1, lr = 0.5: the first lands on w =
    [0.5, -1, 0.25], b = 1.5 (w is then the ridge solution and stays); the second, with the
    bias not penalised, moves b to 2.25 (§4.5.3)."""
    example = RIDGE_BIAS_EXAMPLE
    X, _ = example["batch"]
    w, b = student.train_ridge([example["batch"]], X.shape[1], example["lambd"],
                               example["num_epochs"], example["lr"])
    expect_tensor(b, "b", shape=(1,))
    want_w, want_b = example["expected"]
    assert_close(w, want_w, "w after two steps", atol=1e-5)
    assert_close(b, want_b, "b after two steps", atol=1e-5, mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_train_ridge_batches_of_two_sizes(student):
    """Two epochs over a batch of 8 (the orthogonal batch, which forgets the start) and a batch
    of 3, lambd = 0.25, lr = 0.8: each step divides by its own batch's size, len(y) (8, then
    3), the gradients are zeroed after every step, and every epoch reads the data afresh: 4
    SGD steps in all, compared with the same steps taken here (§4.5.3)."""
    example = RIDGE_TWO_SIZES_EXAMPLE
    seeded_start(student, example["num_inputs"])  # the start the table's mistakes assume
    w, b = student.train_ridge(*(example[k] for k in ("batches", "num_inputs", "lambd",
                                                     "num_epochs", "lr")))
    check_ridge(w, b, example["expected"], example["mistakes"],
                "after 2 epochs over batches of 8 and 3 examples", 4)


@pytest.mark.points(1)
def test_train_ridge_starting_point(student):
    """With num_epochs = 0 train_ridge returns where it starts: b = 0 and w drawn from N(0, 1),
    torch.normal(0, 1, (num_inputs, 1)), not topic 3's N(0, 0.01) (4000 entries: their mean
    within 0.08 of 0, their variance within 0.15 of 1), and drawn anew on every call (§4.5.3)."""
    check_ridge_start(student)


@pytest.mark.points(1)
def test_weight_decay_groups_linear_layers(student):
    """For nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) and wd = 0.01: the first group
    holds the two weights with weight_decay 0.01, the second the two biases with weight_decay 0
    (§4.5.4)."""
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    net = student.remote(nn.Sequential, *layers)
    groups = student.weight_decay_groups(net, 0.01)
    assert isinstance(groups, list) and len(groups) == 2, "a list of two dicts"
    decayed, others = groups
    assert decayed["weight_decay"] == 0.01 and others["weight_decay"] == 0, (
        "the first group has weight_decay=wd, the second weight_decay=0")
    shapes = sorted(tuple(p.shape) for p in decayed["params"])
    if (2,) in shapes or (3,) in shapes:
        raise RecognisedMistake(f"the decayed group holds parameters of shapes {shapes}: "
                                f"{BIASES_DECAYED}", BIASES_DECAYED)
    assert shapes == [(2, 3), (3, 4)], (
        f"the decayed group holds parameters of shapes {shapes}: the two weights only")
    assert sorted(tuple(p.shape) for p in others["params"]) == [(2,), (3,)], (
        "the second group holds the two biases")


@pytest.mark.points(1)
def test_weight_decay_groups_batchnorm_and_a_shared_layer(student):
    """For nn.Sequential(Linear(3, 4, bias=False), BatchNorm1d(4), L, ReLU(), L), the Linear
    layer L used twice: the decayed group holds 0.weight, 1.weight (BatchNorm's weight ends in
    'weight' too) and 2.weight; the other 1.bias and 2.bias; L's parameters once each, as
    net.named_parameters() lists them (§4.5.4)."""
    shared = nn.Linear(4, 4)
    modules = [nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), shared, nn.ReLU(), shared]
    values = distinct_values(modules, 0)
    groups = student.weight_decay_groups(student.remote(nn.Sequential, *modules), 0.01)
    check_groups(groups, values, 0.01, ["0.weight", "1.weight", "2.weight"],
                 ["1.bias", "2.bias"], "a BatchNorm1d and a Linear layer used twice")


@pytest.mark.points(1)
def test_dropout_layer_zero_and_one(student):
    """dropout_layer(X, 0) gives X's values and dropout_layer(X, 1) gives zeros, not nan: both
    ends of 0 <= dropout <= 1 are allowed (§4.6.4)."""
    X = nonzero_tensor((4, 5), 0)
    outs = {}
    for dropout in (0.0, 1.0):
        try:
            outs[dropout] = student.dropout_layer(X, dropout)
        except StudentRaised as e:
            raise RecognisedMistake(f"dropout_layer(X, {dropout}) raised: {e}\n{ENDS_INCLUDED}",
                                    ENDS_INCLUDED) from None
    assert_close(outs[0.0], X, "dropout_layer(X, 0)", atol=0)
    check_all_dropped(expect_tensor(outs[1.0], "dropout_layer(X, 1)", shape=(4, 5)))


@pytest.mark.points(1)
def test_dropout_layer_rejects_other_values(student):
    """dropout_layer(X, dropout) raises an exception (a ValueError) for dropout = 1.5, -0.1 and
    nan: nan fails every comparison, so `dropout < 0 or dropout > 1` lets it through, and
    `not 0 <= dropout <= 1` does not (§4.6.4)."""
    X = nonzero_tensor((4, 3), 10)
    for dropout in (1.5, -0.1, float("nan")):
        with pytest.raises(StudentRaised):
            raise not_rejected(dropout, student.dropout_layer(X, dropout))


@pytest.mark.points(2)
def test_dropout_layer_statistics(student):
    """dropout_layer(X, 0.2) on 100 x 100 elements zeroes a share of about 0.2 of them
    (within share_margin), and divides the others by 0.8 (§4.6.4)."""
    X = nonzero_tensor((100, 100), 1)
    out = expect_tensor(student.dropout_layer(X, 0.2), "dropout_layer(X, 0.2)",
                        shape=(100, 100), dtype=torch.float32)
    check_kept_values(out, X, 0.2, "dropout_layer(X, 0.2)")
    check_zeroed_share(out == 0, 0.2, "dropout_layer(X, 0.2)")


@pytest.mark.points(1)
def test_dropout_layer_rows_get_their_own_masks(student):
    """dropout_layer(X, 0.5) on 50 rows of 40: rows 0 and 1, 2 and 3, ... agree on whether an
    element was dropped about half the time, never all the time; so do columns 0 and 1, 2 and
    3, ..., and two calls: every element is dropped on its own, anew on each call (§4.6.4)."""
    X = nonzero_tensor((50, 40), 2)
    zeroed = expect_tensor(student.dropout_layer(X, 0.5), "dropout_layer(X, 0.5)",
                           shape=(50, 40)) == 0
    check_masks_independent(zeroed, 0.5, "the masks of dropout_layer(X, 0.5)")
    check_agreement(zeroed == (student.dropout_layer(X, 0.5) == 0), 0.5,
                    "the masks of two calls", SAME_MASK_EVERY_CALL)


@pytest.mark.points(1)
def test_dropout_layer_transposed_float64(student):
    """X may be non-contiguous (here a transposed (8, 5) float64 tensor), which .view cannot
    reshape (use .reshape, or keep X's shape): dropout_layer(X, 0.25) keeps X's shape and
    dtype, every element 0 or X / 0.75 (§4.6.4)."""
    X = nonzero_tensor((5, 8), 4, torch.float64).T
    with hints_on_error(NON_CONTIGUOUS_HINTS):
        out = student.dropout_layer(X, 0.25)
    out = expect_tensor(out, "dropout_layer(X, 0.25) for X (8, 5)", shape=(8, 5),
                        dtype=torch.float64)
    check_kept_values(out, X, 0.25, "dropout_layer(X, 0.25) for a transposed float64 X")


@pytest.mark.points(1)
def test_DropoutMLP_eval_mode(student):
    """DropoutMLP(6, 2, 5, 4, 0.5, 0.5) in evaluation mode computes lin3(relu(lin2(relu(lin1
    X)))), no element dropped, the same on every call; its layers are lin1, lin2, lin3
    (§4.6.4)."""
    net, state = build(student, (6, 2, 5, 4), (0.5, 0.5))
    net.eval()
    X = nonzero_tensor((8, 6), 3)
    first = expect_tensor(net(X), "DropoutMLP(...)(X)", shape=(8, 2))
    check_same_in_eval(net, X, first)
    expected = mlp_oracle(state, X)
    assert_close(first, expected.float(), "DropoutMLP(...)(X) in evaluation mode",
                 scale=max_abs(expected) + 1)


@pytest.mark.points(1)
def test_DropoutMLP_drops_after_each_hidden_layer(student):
    """In training mode, DropoutMLP(6, 2, 5, 4, 1, 0) drops every activation after lin1's
    ReLU, so every row of its output is lin3(relu(lin2.bias)); DropoutMLP(6, 2, 5, 4, 0, 1)
    drops every one after lin2's, so every row is lin3.bias: dropout1 belongs to the first
    hidden layer, dropout2 to the second (§4.6.4)."""
    X = nonzero_tensor((4, 6), 5)
    for dropouts, which, other in (((1.0, 0.0), "lin1", "lin2"), ((0.0, 1.0), "lin2", "lin1")):
        net, state = build(student, (6, 2, 5, 4), dropouts)
        net.train()
        expected = all_dropped(state, which, 4)
        assert_close(net(X), expected.float(), f"DropoutMLP(6, 2, 5, 4, {dropouts[0]:g}, "
                     f"{dropouts[1]:g})(X) in training mode", scale=max_abs(expected) + 1,
                     mistakes={RATES_SWAPPED: all_dropped(state, other, 4).float()})


@pytest.mark.points(1)
def test_DropoutMLP_nets_keep_their_own_rates(student):
    """A new DropoutMLP(6, 2, 5, 4, 1, 0) is in training mode and drops all of lin1's
    activations (every row lin3(relu(lin2.bias))); it still does once a second net,
    DropoutMLP(6, 2, 5, 4, 0, 0), was built: each net keeps its own rates (self.dropout1 =
    dropout1), never in a variable that every net shares; nor do they share a parameter:
    setting every parameter of one to new values leaves the other's alone (§4.6.4)."""
    X = nonzero_tensor((4, 6), 6)
    first, state = build(student, (6, 2, 5, 4), (1.0, 0.0))
    expected = all_dropped(state, "lin1", 4).float()
    what = "a new DropoutMLP(6, 2, 5, 4, 1, 0)(X)"
    assert_close(first(X), expected, what, scale=max_abs(expected) + 1,
                 mistakes={NOT_TRAINING_WHEN_BUILT: mlp_oracle(state, X).float()})
    second, _ = build(student, (6, 2, 5, 4), (0.0, 0.0))
    assert_close(first(X), expected, f"{what}, once a second net with dropouts 0 was built",
                 scale=max_abs(expected) + 1,
                 mistakes={SHARED_RATES: mlp_oracle(state, X).float()})
    expect_independent(first, second, "DropoutMLP", "Create the nn.Linear layers in __init__, "
                       "on every call.")


@pytest.mark.points(1)
def test_DropoutMLP_flattens_any_batch(student):
    """DropoutMLP(12, 3, 10, 8, 0.5, 0.5) takes a batch of 5 images (5, 1, 3, 4), flattened to
    (5, 12): here a non-contiguous one (transposed), which .view cannot flatten and
    .reshape(-1, num_inputs) (or nn.Flatten) can; in evaluation mode it gives the plain MLP's
    logits (§4.6.4)."""
    net, state = build(student, (12, 3, 10, 8), (0.5, 0.5))
    net.eval()
    X = nonzero_tensor((5, 1, 4, 3), 7).transpose(2, 3)
    expected = mlp_oracle(state, X)
    with hints_on_error(NON_CONTIGUOUS_HINTS):
        out = net(X)
    assert_close(out, expected.float(), "DropoutMLP(...)(X) for a transposed X (5, 1, 3, 4), "
                 "in evaluation mode", scale=max_abs(expected) + 1)

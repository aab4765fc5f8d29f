"""Hidden tests for model selection, weight decay and dropout (§4.4-4.6).

Oracles are the section's formulas computed in float64 (tests/hidden/_oracles_regularization.py,
with the recognisers of the mistakes). Dropout is tested by its properties only, with bounds
that a correct layer breaks with a probability of at most 1e-6 (Hoeffding's, `share_margin`):
the share of zeroed elements, each kept element exactly X / (1 - dropout), and masks that are
independent across rows, columns and calls. `train_ridge` draws a random w, so its first batch
is one on which one SGD step with lr (1 + lambd) = 1 forgets the start (`orthogonal_batch`);
everything after is deterministic and compared with SGD run here.
"""

from __future__ import annotations

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
from tests.hidden._oracles_regularization import (
    l2_penalty64,
    penalty_mistakes,
    poly_mistakes,
    powers64,
    ridge_mistakes,
    ridge_sgd,
)
from tests.public._mistakes_regularization import (
    ENDS_INCLUDED,
    NOT_TRAINING_WHEN_BUILT,
    PENALTY_NO_HALF,
    RATES_SWAPPED,
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
    orthogonal_batch,
    seeded_start,
)
from torchdrill import callables as cf

# --------------------------------------------------------------------------- poly_features


@st.composite
def poly_inputs(draw):
    n = draw(st.integers(1, 9))
    shape = draw(st.sampled_from([(n,), (n, 1)]))
    x = draw(tds.tensors(shape, magnitude=draw(st.sampled_from([1.0, 3.0, 10.0])),
                         distribution="uniform"))
    return x, draw(st.integers(1, 20))


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
    assert_close(student.poly_features(x, degree), expected,
                 f"poly_features(x {tuple(x.shape)}, {degree}) for x in [-10, 10]",
                 mistakes=poly_mistakes(x, degree))


# --------------------------------------------------------------------------- l2_penalty


@st.composite
def weights(draw):
    shape = draw(st.sampled_from([(5, 1), (3,), (2, 4), (1, 1), (7, 3)]))
    return draw(tds.tensors(shape, magnitude=tds.magnitudes(100.0)))


@pytest.mark.points(2)
@given(w=weights())
def test_l2_penalty_values(student, w):
    """l2_penalty(w) is the 0-d tensor sum(w**2) / 2 for weights of several shapes, float32 and
    float64, contiguous or not, entries up to 100 (§4.5.2)."""
    expected = l2_penalty64(w)
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
    check_ridge_start(student)


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
    check_groups(groups, values, 3e-4, decayed, others, name)


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
        raise not_rejected(dropout, student.dropout_layer(X, dropout))


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
    check_same_in_eval(net, X, first)
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


@pytest.mark.points(2)
def test_dropout_mlp_drops_after_each_hidden_layer(student):
    """In training mode, dropout1 = 1 zeroes lin1's activations, so every row of the output is
    lin3(relu(lin2.bias)); dropout2 = 1 zeroes lin2's, so every row is lin3.bias (§4.6.4)."""
    X = nonzero_tensor((6, 12), 16)
    for dropouts, which, other in (((1.0, 0.0), "lin1", "lin2"), ((0.0, 1.0), "lin2", "lin1")):
        net, state = build(student, dropouts=dropouts)
        net.train()
        expected = all_dropped(state, which, 6)
        swapped = {RATES_SWAPPED: all_dropped(state, other, 6).float()}
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
                 mistakes={NOT_TRAINING_WHEN_BUILT: mlp_oracle(state, X).float()})
    second, plain = build(student, dropouts=(0.0, 0.0))
    assert_close(first(X), expected, f"{what}, once a second net was built",
                 scale=max_abs(expected) + 1,
                 mistakes={SHARED_RATES: mlp_oracle(state, X).float()})
    unchanged = mlp_oracle(plain, X)
    assert_close(second(X), unchanged.float(), "the second DropoutMLP, with dropouts 0",
                 scale=max_abs(unchanged) + 1)
    expect_independent(first, second, "DropoutMLP", "Create the nn.Linear layers "
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
    check_same_in_eval(net, X, hidden)
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

"""Hidden tests for multilayer perceptrons (§4.1-4.3).

The recognisers of known mistakes and their messages live in tests/public/_mistakes_mlp.py,
which the public tests use too.

relu and mlp_forward are checked against torch's own functions computed here in float64 on
float32 and float64 inputs of many shapes and layouts; init_mlp_params statistically, on
layers large enough that the sample standard deviation is within a few percent of the true one
(whether its tensors are leaves is asked in the worker: see `leaf_flags`).

train_mlp is checked step by step: the test builds a small net in the worker from a state it
knows, hands the submission a list of batches (so their order is fixed), and repeats the same
SGD steps here with torch.optim.SGD and F.cross_entropy. Two mechanisms show how the net was
evaluated, without trusting anything the submission reports:

- a BatchNorm layer counts the forward passes made in training mode (`num_batches_tracked`);
- a forward pre-hook (`print` into an `io.StringIO` in the worker) logs the input of the last
  layer on every call: a tensor computed with autograd on prints with `grad_fn=...`.

A net handed over in evaluation mode must train in training mode from its first step
(net.train() at the start of every epoch, as D2L's train_epoch_ch3 does).

Finally a net is trained on MNIST (the real images when $TORCHDRILL_DATA has them, generated
digits otherwise) and must reach the accuracy such a net reaches in two epochs. The history is
not trusted (tests/hidden/_training.py): the grader measures the returned net's test accuracy
itself, on its own copy of the data, and repeats the first epoch's SGD steps; the history must
agree.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from grader.checks import assert_close, expect_tensor, hints_on_error, max_abs
from tests.hidden import _strategies as tds
from tests.hidden._conventions import (
    DATA_ITERATOR_HINTS,
    GPU,
    expect_independent,
    expect_on_gpu,
)
from tests.hidden._oracles_mlp import (
    expect_trained_state,
    forward_mistakes,
    mlp_scale,
    oracle_mlp,
    reference_training,
)
from tests.hidden._training import (
    LEARNING_BATCH,
    LEARNING_EPOCHS,
    LEARNING_WIDTHS,
    check_learning,
    expect_history,
    grader_mnist,
    reference_curve,
    training_setups,
    worker_mnist,
)
from tests.hidden._vjp import vjp
from tests.public._mistakes_mlp import (
    FLATTEN_FIRST_HINTS,
    FLATTEN_HINTS,
    NO_HIDDEN_RELU,
    OWN_SIZES_HINTS,
    RELU_ON_OUTPUT,
    batches,
    check_biases_zero,
    check_evaluation_modes,
    check_leaves,
    check_requires_grad,
    check_test_acc,
    check_train_acc,
    check_train_loss,
    expect_params,
    expect_relu_tensor,
    find_layers,
    leaf_flags,
    make_net,
    mode_probe_net,
    relu_mistakes,
    training_mode_message,
    weight_scale_message,
)
from torchdrill import callables as cf

# --------------------------------------------------------------------------- relu


@st.composite
def any_tensors(draw, magnitude=None):
    """Float tensors of 1 to 4 dimensions, any layout; entries are never exactly 0."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    mag = magnitude if magnitude is not None else draw(tds.magnitudes())
    return draw(tds.tensors(shape, magnitude=mag))


@pytest.mark.points(3)
@given(X=any_tensors())
def test_relu_matches_torch(student, X):
    """relu(X) keeps each positive entry and replaces each negative one by 0, for tensors of
    1 to 4 dimensions, float32 and float64, contiguous or not (§4.1.2.1)."""
    out = expect_relu_tensor(student.relu(X), X, f"relu(X) for X {tuple(X.shape)}")
    assert_close(out, torch.relu(X), "relu(X)", atol=0.0, mistakes=relu_mistakes(X))


@pytest.mark.points(1)
def test_relu_zeros_and_dtypes(student):
    """relu keeps the caller's dtype (float32 and float64) and maps 0 to 0 (§4.1.2.1)."""
    for dtype in (torch.float32, torch.float64):
        X = torch.tensor([[-2.0, 0.0, 3.5], [1e-30, -1e-30, 7.0]], dtype=dtype)
        out = expect_relu_tensor(student.relu(X), X, f"relu(X) for {dtype} X")
        expect_tensor(out, f"relu(X) for {dtype} X", dtype=dtype)
        assert_close(out, torch.relu(X), f"relu(X) for {dtype} X", atol=0.0,
                     mistakes=relu_mistakes(X))


@pytest.mark.points(1)
@given(X=any_tensors())
def test_relu_leaves_input_unchanged(student, X):
    """relu must not modify its argument (no `X[X < 0] = 0`, `X.clamp_` or `X *= ...`)."""
    student.relu(X)  # the handle fails a change to an argument


@pytest.mark.points(2)
@given(X=any_tensors(magnitude=1.0), seed=st.integers(0, 2**16))
def test_relu_gradient(student, X, seed):
    """Autograd through your relu passes the incoming gradient where x > 0 and blocks it
    where x < 0: build relu from differentiable tensor operations (§4.1.2.1)."""
    v = tds.random_tensor(X.shape, seed, X.dtype)
    expected = v * (X > 0).to(X.dtype)
    assert_close(student.gradient("relu", X, grad_output=v), expected,
                 "the gradient of your relu", scale=max_abs(v))


# --------------------------------------------------------------------------- init_mlp_params


@pytest.mark.points(2)
@given(sizes=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 12)))
@tds.max_examples(at_most=10)
def test_init_mlp_params_shapes_and_gradients(student, sizes):
    """init_mlp_params(num_inputs, num_hiddens, num_outputs) returns [W1 (in, h), b1 (h,),
    W2 (h, out), b2 (out,)] in float32, each a leaf tensor with requires_grad=True, for
    non-square sizes (§4.2.1)."""
    params = expect_params(student.init_mlp_params(*sizes), *sizes)
    check_requires_grad(params)
    check_leaves(leaf_flags(student, *sizes))


@pytest.mark.points(1)
def test_init_mlp_params_biases_zero(student):
    """The biases b1 and b2 start at zero (§4.2.1)."""
    params = expect_params(student.init_mlp_params(30, 20, 10), 30, 20, 10)
    check_biases_zero(params)


@pytest.mark.points(3)
@pytest.mark.parametrize("sizes", [(784, 256, 10), (100, 600, 40)])
def test_init_mlp_params_kaiming_scale(student, sizes):
    """Weights are drawn from a normal distribution with mean 0 and standard deviation
    sqrt(2 / fan_in), fan_in being the layer's number of inputs (W1: num_inputs, W2:
    num_hiddens), not unscaled randn and not 0.01 (§4.1, §5.4)."""
    num_inputs, num_hiddens, num_outputs = sizes
    params = expect_params(student.init_mlp_params(*sizes), *sizes)
    for name, W, fan_in, fan_out in (("W1", params[0], num_inputs, num_hiddens),
                                     ("W2", params[2], num_hiddens, num_outputs)):
        message = weight_scale_message(name, W, fan_in, fan_out)
        if message:
            raise AssertionError(message)


@pytest.mark.points(1)
def test_init_mlp_params_random_draws(student):
    """Two calls give different weights (random draws, not a fixed pattern), and the weights
    within a matrix are not all equal (§4.2.1)."""
    first = expect_params(student.init_mlp_params(20, 15, 5), 20, 15, 5)
    second = expect_params(student.init_mlp_params(20, 15, 5), 20, 15, 5)
    if torch.equal(first[0], second[0]):
        raise AssertionError("two calls of init_mlp_params returned the same W1: draw it with "
                             "torch.randn each time (no fixed seed inside the function).")
    if float(first[0].detach().std()) == 0 or float(first[2].detach().std()) == 0:
        raise AssertionError("all entries of a weight matrix are equal: hidden units then stay "
                             "identical during training. Draw each entry at random.")


# --------------------------------------------------------------------------- mlp_forward


@st.composite
def mlp_inputs(draw):
    """(X, params): X of shape (n, *image) in any layout, params [W1, b1, W2, b2] of X's dtype
    with entries of both signs, so some hidden units and some logits are negative."""
    n, h, q = draw(st.integers(1, 7)), draw(st.integers(1, 9)), draw(st.integers(1, 6))
    image = draw(st.sampled_from([(6,), (1, 3, 3), (2, 2, 3), (1, 4, 4)]))
    d = math.prod(image)
    dtype = draw(tds.dtypes())
    X = draw(tds.tensors((n, *image), dtype=dtype, magnitude=tds.magnitudes(100.0)))
    params = [draw(tds.tensors(shape, dtype=dtype, layout="contiguous", magnitude=m))
              for shape, m in (((d, h), 1 / math.sqrt(d)), ((h,), 0.5), ((h, q), 1.0),
                               ((q,), 0.5))]
    return X, params


# Images (2, 2, 3) stored transposed: X.view(-1, d) fails on them (flatten with reshape).
TRANSPOSED_IMAGES = (
    tds.with_layout(tds.random_tensor((3, 2, 2, 3), 1, magnitude=10.0), "transposed"),
    [tds.random_tensor(shape, seed, magnitude=m) for seed, (shape, m) in enumerate(
        (((12, 5), 12 ** -0.5), ((5,), 0.5), ((5, 3), 1.0), ((3,), 0.5)), start=2)])


@pytest.mark.points(4)
@given(inputs=mlp_inputs())
@example(inputs=TRANSPOSED_IMAGES)
def test_mlp_forward_matches_model(student, inputs):
    """mlp_forward(X, params) = relu(X W1 + b1) W2 + b2 for X of shape (n, ...) flattened to
    (n, num_inputs) (also non-contiguous X: use reshape), float32 and float64; ReLU on the
    hidden layer only (§4.2.2)."""
    X, params = inputs
    with hints_on_error(FLATTEN_HINTS):
        out = student.mlp_forward(X, params)
    expected = oracle_mlp(X, params)
    expect_tensor(out, "mlp_forward(X, params)")
    assert_close(out, expected, f"mlp_forward for X {tuple(X.shape)} and "
                 f"W1 {tuple(params[0].shape)}", scale=mlp_scale(X, params),
                 mistakes=forward_mistakes(X, params))


@pytest.mark.points(2)
def test_mlp_forward_mnist_images(student):
    """Images (n, 1, 28, 28) with parameters of init_mlp_params(784, 256, 10) give logits
    (n, 10), some of them negative: the output layer has no activation (§4.2.2)."""
    g = torch.Generator().manual_seed(3)
    X = torch.rand(5, 1, 28, 28, generator=g)
    params = [torch.randn(784, 256, generator=g) * math.sqrt(2 / 784),
              torch.randn(256, generator=g) * 0.1, torch.randn(256, 10, generator=g) * 0.1,
              torch.randn(10, generator=g) * 0.1]
    out = expect_tensor(student.mlp_forward(X, params), "mlp_forward(X, params) for MNIST "
                        "images", shape=(5, 10))
    if bool((out >= 0).all()):
        raise AssertionError(f"mlp_forward's logits are all >= 0: {RELU_ON_OUTPUT}")
    assert_close(out, oracle_mlp(X, params), "mlp_forward for MNIST images",
                 scale=mlp_scale(X, params), mistakes=forward_mistakes(X, params))


@pytest.mark.points(2)
@given(inputs=mlp_inputs())
@example(inputs=TRANSPOSED_IMAGES)
def test_mlp_forward_is_not_affine(student, inputs):
    """The MLP is not an affine map of X: f(X) + f(-X) differs from 2 f(0) as soon as some
    hidden units are negative. A model without a hidden nonlinearity fails this (§4.1.1.3)."""
    X, params = inputs
    expected_sum = oracle_mlp(X, params) + oracle_mlp(-X, params)
    affine_sum = 2 * oracle_mlp(torch.zeros_like(X), params)
    scale = mlp_scale(X, params)
    if float((expected_sum - affine_sum).abs().max()) < 1e-3 * scale:
        return  # every hidden unit has the same sign on X and -X here: nothing to see
    total = student.mlp_forward(X, params) + student.mlp_forward(-X, params)
    zero = student.mlp_forward(torch.zeros_like(X), params)
    if float((total - 2 * zero).abs().max()) < 1e-6 * scale:
        raise AssertionError(f"your mlp_forward is affine in X (f(X) + f(-X) = 2 f(0)): "
                             f"{NO_HIDDEN_RELU}")


@pytest.mark.points(2)
@given(inputs=mlp_inputs(), seed=st.integers(0, 2**16))
@tds.max_examples(at_most=15)
def test_mlp_forward_gradient(student, inputs, seed):
    """Autograd through your mlp_forward gives the true gradient with respect to X: no
    detach, no torch.no_grad, no .item() inside the model (§4.2.2)."""
    X, params = inputs
    X = X.contiguous()
    v = tds.random_tensor((X.shape[0], params[2].shape[1]), seed, X.dtype)
    Xg = X.double().requires_grad_(True)
    W1, b1, W2, b2 = (p.double() for p in params)
    O = torch.relu(Xg.reshape(-1, W1.shape[0]) @ W1 + b1) @ W2 + b2
    (expected,) = vjp(O, Xg, v.double())
    scale = float((W1.abs() @ W2.abs()).max()) * max_abs(v) + 1.0
    assert_close(student.gradient("mlp_forward", X, params, grad_output=v),
                 expected.to(X.dtype), "the gradient of your mlp_forward with respect to X",
                 scale=scale)


@pytest.mark.points(1)
@given(inputs=mlp_inputs())
@example(inputs=TRANSPOSED_IMAGES)
@tds.max_examples(at_most=10)
def test_mlp_forward_leaves_inputs_unchanged(student, inputs):
    """mlp_forward must not modify X or the parameters (reshape into a new name, no in-place
    relu on an input)."""
    X, params = inputs
    student.mlp_forward(X, params)  # the handle fails a change to an argument


# --------------------------------------------------------------------------- build_mlp


@pytest.mark.points(2)
def test_build_mlp_shapes(student):
    """build_mlp() maps MNIST images (n, 1, 28, 28) and flat rows (n, 784) to logits (n, 10);
    build_mlp(12, 7, 5) maps (n, 12) to (n, 5) (§4.3)."""
    g = torch.Generator().manual_seed(0)
    net = student.build_mlp()
    with hints_on_error(FLATTEN_FIRST_HINTS):
        out = net(torch.rand(4, 1, 28, 28, generator=g))
    expect_tensor(out, "build_mlp()(X) for images X (4, 1, 28, 28)", shape=(4, 10))
    expect_tensor(net(torch.rand(3, 784, generator=g)), "build_mlp()(X) for rows X (3, 784)",
                  shape=(3, 10))
    small = student.build_mlp(12, 7, 5)
    with hints_on_error(OWN_SIZES_HINTS):
        out = small(torch.rand(6, 12, generator=g))
    expect_tensor(out, "build_mlp(12, 7, 5)(X) for X (6, 12)", shape=(6, 5))


@pytest.mark.points(2)
def test_build_mlp_non_contiguous_batches(student):
    """build_mlp()'s net maps batches of images (n, 1, 28, 28) and of rows (n, 784) that are
    not contiguous (a transposed or strided view, one at an offset, an expanded view) to
    logits (n, 10), a batch of one example included: flatten with nn.Flatten or reshape, never
    view, and keep the batch axis (§4.3)."""
    net = student.build_mlp()
    params = find_layers(net.state_dict(), 784, 256, 10)
    if params is None:
        raise AssertionError("build_mlp()'s parameters do not have the shapes of "
                             "Linear(784, 256) and Linear(256, 10).")
    for layout, n, shape in itertools.product(("transposed", "strided", "offset", "expanded"),
                                              (3, 1), ((1, 28, 28), (784,))):
        X = tds.with_layout(tds.random_tensor((n, *shape), n, torch.float32), layout)
        what = f"build_mlp()(X) for a {layout} batch X {(n, *shape)}"
        with hints_on_error(FLATTEN_HINTS):
            out = net(X)
        expect_tensor(out, what, shape=(n, 10))
        assert_close(out, oracle_mlp(X, params), what, scale=mlp_scale(X, params))


@pytest.mark.points(1)
def test_build_mlp_nets_are_independent(student):
    """Two nets from build_mlp share no parameter: setting every parameter of one to new
    values leaves the other as it was. Every object is independent: build new layers on every call,
    never a module-level layer or net, nor a default argument (§4.3)."""
    expect_independent(student.build_mlp(12, 7, 5), student.build_mlp(12, 7, 5),
                       "build_mlp(12, 7, 5) net", "Create the nn.Linear layers inside "
                       "build_mlp, on every call.")


@pytest.mark.points(1)
def test_build_mlp_parameter_count(student):
    """build_mlp(num_inputs, num_hiddens, num_outputs) has exactly one hidden layer:
    in*h + h + h*out + out parameters (§4.3)."""
    for sizes in ((784, 256, 10), (12, 7, 5)):
        state = student.build_mlp(*sizes).state_dict()
        count = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor)
                    and v.is_floating_point())
        i, h, o = sizes
        if count != i * h + h + h * o + o:
            raise AssertionError(f"build_mlp{sizes} has {count} parameters, but one hidden "
                                 f"layer of {h} units has {i * h + h + h * o + o}: "
                                 "Linear(in, h), then ReLU, then Linear(h, out).")


@pytest.mark.points(3)
def test_build_mlp_computes_the_mlp(student):
    """build_mlp(12, 7, 5) computes relu(X W1 + b1) W2 + b2 with its own weights: a ReLU
    between the two linear layers and none after the last one (§4.3)."""
    net = student.build_mlp(12, 7, 5)
    params = find_layers(net.state_dict(), 12, 7, 5)
    if params is None:
        raise AssertionError("build_mlp(12, 7, 5)'s parameters do not have the shapes of "
                             "Linear(12, 7) and Linear(7, 5).")
    X = tds.random_tensor((9, 12), 4, torch.float32, magnitude=3.0)
    out = expect_tensor(net(X), "build_mlp(12, 7, 5)(X)", shape=(9, 5))
    assert_close(out, oracle_mlp(X, params), "build_mlp(12, 7, 5)(X)",
                 scale=mlp_scale(X, params), mistakes=forward_mistakes(X, params))


@pytest.mark.points(1)
def test_build_mlp_logits_can_be_negative(student):
    """The concise MLP's logits take both signs: no ReLU after the output layer (§4.3)."""
    net = student.build_mlp()
    X = tds.random_tensor((32, 1, 28, 28), 5, torch.float32, magnitude=1.0)
    out = expect_tensor(net(X), "build_mlp()(X)", shape=(32, 10))
    if bool((out >= 0).all()):
        raise AssertionError(f"all logits of build_mlp()(X) are >= 0: {RELU_ON_OUTPUT}")


@pytest.mark.points(1)
def test_build_mlp_is_not_affine(student):
    """The concise MLP is not affine: net(X) + net(-X) differs from 2 net(0) (a ReLU between
    the two Linear layers, §4.3)."""
    net = student.build_mlp(12, 30, 5)
    X = tds.random_tensor((16, 12), 6, torch.float32, magnitude=3.0)
    total = expect_tensor(net(X), "build_mlp(12, 30, 5)(X)", shape=(16, 5)) + net(-X)
    zero = net(torch.zeros_like(X))
    if float((total - 2 * zero).detach().abs().max()) < 1e-5:
        raise AssertionError(f"build_mlp's net is affine in X: {NO_HIDDEN_RELU}")


# --------------------------------------------------------------------------- train_mlp

MNIST_WIDTHS = (784, 16, 10)  # the nets of these tests: MNIST images in, 10 logits out


def mnist_batches(sizes, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """MNIST-shaped batches (X (b, 1, 28, 28) in [0, 1], y (b,) int64) of the given sizes."""
    return batches(sizes, seed, shape=(1, 28, 28), classes=10)


def run_small_training(student, setup):
    net = make_net(setup["seed"], MNIST_WIDTHS)
    train_data = mnist_batches(setup["train_sizes"], setup["seed"] + 1)
    test_data = mnist_batches(setup["test_sizes"], setup["seed"] + 2)
    remote_net = student.remote(nn.Sequential, *net)
    history = student.train_mlp(remote_net, train_data, test_data, setup["num_epochs"],
                                setup["lr"])
    return net, remote_net, history, train_data, test_data


@pytest.mark.points(5)
@given(setup=training_setups(lrs=(0.05, 0.3, 1.0)))
@tds.max_examples(at_most=6)
def test_train_mlp_takes_the_sgd_steps(student, setup):
    """After train_mlp(net, train_iter, test_iter, num_epochs, lr) the net's parameters are
    those of one torch.optim.SGD step with learning rate lr on the mean cross-entropy of each
    batch, in the order train_iter yields them, gradients zeroed before each backward, for
    1 to 3 epochs and batches of unequal size (§4.3, §3.6)."""
    net, remote_net, history, train_data, test_data = run_small_training(student, setup)
    expect_history(history, setup["num_epochs"], "train_mlp")
    expect_trained_state(remote_net.state_dict(), net, train_data, test_data,
                         setup["num_epochs"], setup["lr"], "train_mlp")


@pytest.mark.points(3)
@given(setup=training_setups(lrs=(0.05, 0.3, 1.0)))
@tds.max_examples(at_most=6)
def test_train_mlp_history_of_training(student, setup):
    """history['train_loss'][e] is the mean cross-entropy per training example in epoch e
    (each batch's mean loss weighted by its size), and history['train_acc'][e] the fraction
    of training examples classified correctly, both as floats, one per epoch (§3.6.6)."""
    net, _, history, train_data, test_data = run_small_training(student, setup)
    got = expect_history(history, setup["num_epochs"], "train_mlp")
    _, facts = reference_training(net, train_data, test_data, setup["num_epochs"], setup["lr"])
    for e in range(setup["num_epochs"]):
        check_train_loss(got, facts, e, train_data)
        check_train_acc(got, facts, e)


@pytest.mark.points(2)
@given(setup=training_setups(lrs=(0.05, 0.3, 1.0)))
@tds.max_examples(at_most=6)
def test_train_mlp_history_of_testing(student, setup):
    """history['test_acc'][e] is the fraction of test_iter's examples the net classifies
    correctly after epoch e, over all test batches (the last one may be smaller) (§3.6.6)."""
    net, _, history, train_data, test_data = run_small_training(student, setup)
    got = expect_history(history, setup["num_epochs"], "train_mlp")
    _, facts = reference_training(net, train_data, test_data, setup["num_epochs"], setup["lr"])
    for e in range(setup["num_epochs"]):
        check_test_acc(got, facts, e)


@pytest.mark.points(3)
def test_train_mlp_evaluates_in_eval_mode_without_graph(student):
    """train_mlp trains in training mode and evaluates the test set in evaluation mode
    (net.eval(): no dropout, BatchNorm's running statistics) inside torch.no_grad(), switching
    back to training mode for the next epoch (§4.6, §5.6). Checked on a net with Dropout and
    BatchNorm."""
    num_epochs, train_sizes, test_sizes = 2, (16, 16, 10), (20, 20, 9)
    net, remote_net, log = mode_probe_net(student, 11, (784, 24, 10))
    train_data, test_data = mnist_batches(train_sizes, 12), mnist_batches(test_sizes, 13)
    history = expect_history(student.train_mlp(remote_net, train_data, test_data, num_epochs,
                                               0.1), num_epochs, "train_mlp")
    check_evaluation_modes(history, remote_net.state_dict(), net, log, num_epochs, train_sizes,
                           test_data, "§4.6")


@pytest.mark.points(1)
def test_train_mlp_sets_training_mode_each_epoch(student):
    """train_mlp calls net.train() at the start of every epoch, as D2L's train_epoch_ch3
    does: a net handed over in evaluation mode trains in training mode from its first step,
    and again after each evaluation (§3.6.6, §4.3). Checked on a net with BatchNorm."""
    net = make_net(15, (784, 24, 10), extra=(nn.BatchNorm1d(24),))
    remote_net = student.remote(nn.Sequential, *net)
    remote_net.eval()
    train_sizes = (12, 12, 7)
    student.train_mlp(remote_net, mnist_batches(train_sizes, 16), mnist_batches((10, 5), 17), 2,
                      0.1)
    tracked = int(remote_net.state_dict()["2.num_batches_tracked"])
    message = training_mode_message(tracked, 2 * len(train_sizes), len(train_sizes),
                                    "train_epoch_ch3", "§3.6.6")
    if message:
        raise AssertionError(message)


@pytest.mark.points(1)
def test_train_mlp_any_reiterable_data(student):
    """train_iter and test_iter may be any re-iterable of (X, y) batches, here one with no
    len() and no .dataset (a new pass on every iter(), as a DataLoader): train_mlp takes the
    same SGD steps and counts the examples from the batches, y.numel() (§3.6, §4.3)."""
    setup = {"seed": 25, "train_sizes": (8, 8, 5), "test_sizes": (6, 4), "num_epochs": 2,
             "lr": 0.3}
    net = make_net(setup["seed"], MNIST_WIDTHS)
    train_data = mnist_batches(setup["train_sizes"], 26)
    test_data = mnist_batches(setup["test_sizes"], 27)
    remote_net = student.remote(nn.Sequential, *net)
    with hints_on_error(DATA_ITERATOR_HINTS):
        history = student.train_mlp(remote_net, student.remote(cf.ReiterableBatches, train_data),
                                    student.remote(cf.ReiterableBatches, test_data), 2, 0.3)
    got = expect_history(history, 2, "train_mlp")
    facts = expect_trained_state(remote_net.state_dict(), net, train_data, test_data, 2, 0.3,
                                 "train_mlp")
    for e in range(2):
        check_train_loss(got, facts, e, train_data)
        check_test_acc(got, facts, e)


MNIST_NET_SEED, MNIST_LR = 21, 0.2  # test_train_mlp_learns_mnist's


def mnist_reference_curve() -> dict:
    """The reference's curve for test_train_mlp_learns_mnist, computed before the test
    sessions fork (`prefetch`), once for all of them."""
    template = make_net(MNIST_NET_SEED, LEARNING_WIDTHS)
    return reference_curve(template, template.state_dict(), MNIST_LR, LEARNING_BATCH,
                           LEARNING_EPOCHS)


@pytest.mark.points(3)
@pytest.mark.prefetch(grader_mnist, mnist_reference_curve)
def test_train_mlp_learns_mnist(student):
    """An MLP (784-128-10) trained by train_mlp for 2 epochs, batch size 64, lr 0.2, reaches
    the test accuracy such a net reaches: above 85% on MNIST (above 60% on generated digits
    where the MNIST files are missing), measured by the grader from the trained net's
    parameters on its own copy of the test set; the history must report that same accuracy
    after the last epoch, and the first epoch's mean training loss of its SGD steps (§4.3)."""
    train_iter, test_iter, source = worker_mnist(student, LEARNING_BATCH)
    template = make_net(MNIST_NET_SEED, LEARNING_WIDTHS)
    net = student.remote(nn.Sequential, *template)
    history = expect_history(student.train_mlp(net, train_iter, test_iter, LEARNING_EPOCHS,
                                               MNIST_LR), LEARNING_EPOCHS, "train_mlp")
    check_learning("train_mlp", history, template, template.state_dict(), net.state_dict(),
                   MNIST_LR, LEARNING_BATCH, source)


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """Inputs and parameters on the GPU give relu's and mlp_forward's results on the GPU:
    compare with torch.zeros_like(X), never with a tensor on the default device (§4.1, §5.6)."""
    X = TRANSPOSED_IMAGES[0].to(GPU)
    params = [p.to(GPU) for p in TRANSPOSED_IMAGES[1]]
    expect_on_gpu(student.relu(X), f"relu(X) for X on {GPU}")
    expect_on_gpu(student.mlp_forward(X, params), f"mlp_forward(X, params) for inputs on {GPU}")

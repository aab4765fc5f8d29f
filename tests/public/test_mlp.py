"""Public checks for multilayer perceptrons (§4.1-4.3): read them, run them, then make them
pass. The hidden tests check the same functions on many more inputs and train on MNIST; a
mistake they recognise reads the same here (the messages live in `_mistakes_mlp.py`, and what
every topic shares in `_conventions.py`).

The training tests hand `train_mlp` a small net the test built itself (Flatten, Linear, ReLU,
Linear, its parameters drawn from a seed) and a list of batches of small "images", so the test
knows every step a correct loop takes: where they lead is written out in the tables of
`_mistakes_mlp.py`.
"""

import pytest
import torch
from torch import nn

from grader.checks import assert_close, expect_tensor, hints_on_error
from tests.public._conventions import DATA_ITERATOR_HINTS, expect_independent
from tests.public._mistakes_mlp import (
    BUILD_MLP_EXAMPLE,
    BUILD_MLP_IMAGES_EXAMPLE,
    FLATTEN_FIRST_HINTS,
    FLATTEN_HINTS,
    MLP_FORWARD_EXAMPLE,
    MLP_FORWARD_IMAGES_EXAMPLE,
    OWN_SIZES_HINTS,
    TRAIN_HISTORY_EXAMPLE,
    TRAIN_STEPS_EXAMPLE,
    batches,
    build_example_inputs,
    check_biases_zero,
    check_evaluation_modes,
    check_leaves,
    check_reported_accuracy,
    check_requires_grad,
    check_test_acc,
    check_train_acc,
    check_train_loss,
    check_trained_state,
    expect_history,
    expect_params,
    expect_relu_tensor,
    images_example_inputs,
    leaf_flags,
    make_net,
    mode_probe_net,
    relu_mistakes,
    training_example,
    training_mode_message,
    weight_scale_message,
    with_layers,
)


@pytest.mark.points(1)
def test_relu_small_example(student):
    """relu keeps positive entries and turns negative ones into 0, elementwise: the result has
    X's shape (§4.1.2.1)."""
    X = torch.tensor([[-1.5, 0.0, 2.0], [3.0, -0.5, 0.25]])
    expected = torch.tensor([[0.0, 0.0, 2.0], [3.0, 0.0, 0.25]])
    out = expect_relu_tensor(student.relu(X), X, "relu(X)")
    assert_close(out, expected, "relu(X)", atol=0.0, mistakes=relu_mistakes(X))


@pytest.mark.points(1)
def test_relu_gradient_small_example(student):
    """Autograd through your relu passes the incoming gradient v where x > 0 and blocks it
    where x < 0: build relu from differentiable tensor operations (torch.maximum, a mask),
    not through NumPy or a new tensor made from X's values (§4.1.2.1)."""
    X = torch.tensor([[-1.5, 2.0, 0.5], [3.0, -0.25, -4.0]])
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expected = torch.tensor([[0.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    assert_close(student.gradient("relu", X, grad_output=v), expected,
                 "the gradient of your relu", scale=6.0)


@pytest.mark.points(1)
def test_init_mlp_params_small_sizes(student):
    """init_mlp_params(5, 3, 2) returns [W1 (5, 3), b1 (3,), W2 (3, 2), b2 (2,)] in float32
    (W1 is (num_inputs, num_hiddens), so that X @ W1 works), each a leaf tensor that requires
    gradients, and the biases start at 0 (§4.2.1)."""
    params = expect_params(student.init_mlp_params(5, 3, 2), 5, 3, 2)
    check_requires_grad(params)
    check_leaves(leaf_flags(student, 5, 3, 2))
    check_biases_zero(params)


@pytest.mark.points(1)
def test_init_mlp_params_weight_scale(student):
    """init_mlp_params(784, 256, 10) draws the weights from a normal distribution with mean 0
    and standard deviation sqrt(2 / fan_in): sqrt(2 / 784) = 0.0505 for W1, sqrt(2 / 256) =
    0.0884 for W2; not unscaled randn, not 0.01, not uniform draws (§4.1, §5.4)."""
    params = expect_params(student.init_mlp_params(784, 256, 10), 784, 256, 10)
    for name, W, fan_in, fan_out in (("W1", params[0], 784, 256), ("W2", params[2], 256, 10)):
        message = weight_scale_message(name, W, fan_in, fan_out)
        if message:
            raise AssertionError(message)


@pytest.mark.points(1)
def test_mlp_forward_small_example(student):
    """A 2-input, 2-hidden, 1-output MLP computed by hand: relu(X W1 + b1) W2 + b2, the ReLU
    on the hidden layer only, so a logit may be negative (§4.2.2)."""
    example = MLP_FORWARD_EXAMPLE
    assert_close(student.mlp_forward(example["X"], example["params"]), example["expected"],
                 "mlp_forward(X, params)", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_mlp_forward_non_contiguous_images(student):
    """Three float64 "images" of shape (2, 2, 3) stored transposed (not contiguous) are
    flattened to rows of 12 = W1.shape[0] numbers: use X.reshape(-1, W1.shape[0]), since
    X.view fails on such a tensor and 784 is only MNIST's size (§4.2.2)."""
    example = MLP_FORWARD_IMAGES_EXAMPLE
    X, params = images_example_inputs(example)
    with hints_on_error(FLATTEN_HINTS):
        out = student.mlp_forward(X, params)
    expect_tensor(out, "mlp_forward(X, params) for X (3, 2, 2, 3)", shape=(3, 3))
    assert_close(out, example["expected"], "mlp_forward(X, params) for X (3, 2, 2, 3)",
                 scale=example["scale"], mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_build_mlp_output_shape(student):
    """build_mlp() turns a batch of images (n, 1, 28, 28) into logits (n, 10), and
    build_mlp(12, 7, 5) rows (n, 12) into logits (n, 5): flatten first, and build the layers
    from the arguments (§4.3)."""
    net = student.build_mlp()
    with hints_on_error(FLATTEN_FIRST_HINTS):
        out = net(torch.rand(3, 1, 28, 28))
    expect_tensor(out, "build_mlp()(X) for images X (3, 1, 28, 28)", shape=(3, 10))
    small = student.build_mlp(12, 7, 5)
    with hints_on_error(OWN_SIZES_HINTS):
        out = small(torch.rand(6, 12))
    expect_tensor(out, "build_mlp(12, 7, 5)(X) for X (6, 12)", shape=(6, 5))


def check_build_mlp(net, example: dict, what: str) -> None:
    """`net`, build_mlp(*sizes)'s, holding the table's parameters (each in the layout the net
    keeps it in), maps the table's X to the table's logits."""
    X, params = build_example_inputs(example)
    state = with_layers(net.state_dict(), params, example["sizes"])
    if state is None:
        n_in, n_h, n_out = example["sizes"]
        raise AssertionError(f"{what}'s parameters do not have the shapes of Linear({n_in}, "
                             f"{n_h}) and Linear({n_h}, {n_out}).")
    net.load_state_dict(state)
    with hints_on_error(FLATTEN_HINTS):
        out = net(X)
    expect_tensor(out, f"{what}(X) for X {tuple(X.shape)}", shape=(len(X), example["sizes"][2]))
    assert_close(out, example["expected"], f"{what}(X) for X {tuple(X.shape)}",
                 scale=example["scale"], mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_build_mlp_small_net_computes_the_mlp(student):
    """build_mlp(12, 7, 5) computes relu(X W1 + b1) W2 + b2, with parameters set by the test
    (each in the layout the net keeps it in): a ReLU between the two Linear layers and none
    after the last one (§4.3)."""
    check_build_mlp(student.build_mlp(12, 7, 5), BUILD_MLP_EXAMPLE, "build_mlp(12, 7, 5)")


@pytest.mark.points(1)
def test_build_mlp_non_contiguous_images(student):
    """build_mlp()'s net maps a batch of two images (2, 1, 28, 28) stored transposed (not
    contiguous) to the right logits, with parameters set by the test: nn.Flatten (or reshape)
    flattens any layout, view does not (§4.3)."""
    check_build_mlp(student.build_mlp(), BUILD_MLP_IMAGES_EXAMPLE, "build_mlp()")


@pytest.mark.points(1)
def test_build_mlp_nets_are_independent(student):
    """Two nets from build_mlp(12, 7, 5) share no parameter: setting every parameter of one to
    new values (load_state_dict) leaves the other as it was. Every object is independent:
    build new layers on every call, never a module-level layer or net, nor a default argument
    (§4.3)."""
    expect_independent(student.build_mlp(12, 7, 5), student.build_mlp(12, 7, 5),
                       "build_mlp(12, 7, 5) net", "Create the nn.Linear layers inside "
                       "build_mlp, on every call.")


def train(student, net, train_data, test_data, num_epochs: int, lr: float):
    """student.train_mlp(...), an error naming its likely cause where one is known (data
    iterators are any re-iterable of batches: a list here, which has no .dataset)."""
    with hints_on_error(DATA_ITERATOR_HINTS):
        return student.train_mlp(net, train_data, test_data, num_epochs, lr)


def small_training(student, example: dict):
    """train_mlp on the net and batches of a training table (training_example); returns the
    grader's copy of the net as it started, the trained net (in the worker), the history and
    the data."""
    net, train_data, test_data = training_example(example)
    remote_net = student.remote(nn.Sequential, *net)
    history = train(student, remote_net, train_data, test_data, example["num_epochs"],
                    example["lr"])
    return net, remote_net, history, train_data, test_data


@pytest.mark.points(2)
def test_train_mlp_small_net_sgd_steps(student):
    """Two epochs of train_mlp with lr = 0.3 on three batches of 8, 8 and 5 examples leave the
    net's parameters where one torch.optim.SGD step per batch, in the order given, on the
    batch's mean cross-entropy puts them: zero_grad before backward, then step (§4.3)."""
    example = TRAIN_STEPS_EXAMPLE
    net, remote_net, history, _, _ = small_training(student, example)
    expect_history(history, example["num_epochs"], "train_mlp")
    check_trained_state(remote_net.state_dict(), net.state_dict(), example["state"],
                        example["lr"], "train_mlp", lambda: example["mistakes"])


@pytest.mark.points(1)
def test_train_mlp_history(student):
    """train_mlp returns {'train_loss': [...], 'train_acc': [...], 'test_acc': [...]}, one
    Python float per epoch: the mean cross-entropy per training example (each batch's mean
    loss weighted by its size: the batches here have 8, 8 and 5 examples), the fraction of
    training examples classified correctly, and the fraction of all test examples (batches of
    6 and 3) classified correctly after the epoch (§3.6.6, §4.3). The last test accuracy is
    checked first against the trained net's, measured here from its parameters: a history
    reports what the net it trained measures."""
    example = TRAIN_HISTORY_EXAMPLE
    net, remote_net, history, train_data, test_data = small_training(student, example)
    got = expect_history(history, example["num_epochs"], "train_mlp")
    check_reported_accuracy(got, net, remote_net.state_dict(), test_data, "train_mlp")
    facts = example["facts"]
    for e in range(example["num_epochs"]):
        check_train_loss(got, facts, e, train_data)
        check_train_acc(got, facts, e)
        check_test_acc(got, facts, e)


@pytest.mark.points(1)
def test_train_mlp_evaluation_mode_and_no_grad(student):
    """train_mlp trains in training mode and evaluates the test set after every epoch in
    evaluation mode (net.eval()) inside torch.no_grad(), then switches back to training mode.
    Checked on a net with BatchNorm, which counts the batches it sees in training mode, and
    Dropout, whose last layer's inputs are logged to see which were computed with autograd
    on (§4.6, §5.6)."""
    train_sizes = (6, 6, 4)
    net, remote_net, log = mode_probe_net(student, 11, (16, 8, 5))
    test_data = batches((5, 3), 13)
    history = expect_history(train(student, remote_net, batches(train_sizes, 12), test_data,
                                   2, 0.1), 2, "train_mlp")
    check_evaluation_modes(history, remote_net.state_dict(), net, log, 2, train_sizes,
                           test_data, "§4.6")


@pytest.mark.points(1)
def test_train_mlp_net_arriving_in_eval_mode(student):
    """A net handed over in evaluation mode trains in training mode from its first step: call
    net.train() at the start of every epoch, as D2L's train_epoch_ch3 does, not only after
    evaluating. Checked on a net with BatchNorm, which counts the batches it sees in training
    mode: 2 epochs of 3 batches are 6 (§3.6.6, §4.3)."""
    net = make_net(15, (16, 8, 5), extra=(nn.BatchNorm1d(8),))
    remote_net = student.remote(nn.Sequential, *net)
    remote_net.eval()
    train(student, remote_net, batches((6, 6, 4), 16), batches((5,), 17), 2, 0.1)
    tracked = int(remote_net.state_dict()["2.num_batches_tracked"])
    message = training_mode_message(tracked, 6, 3, "train_epoch_ch3", "§3.6.6")
    if message:
        raise AssertionError(message)

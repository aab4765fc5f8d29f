"""Public checks for multilayer perceptrons (§4.1-4.3): read them, run them, then make them
pass. The hidden tests check the same functions on many more inputs, check the training steps
one by one, and train on MNIST."""

import math

import pytest
import torch
from torch import nn

from grader.checks import assert_close, expect_float, expect_tensor


@pytest.mark.points(1)
def test_relu_small_example(student):
    """relu keeps positive entries and turns negative ones into 0 (§4.1.2.1)."""
    X = torch.tensor([[-1.5, 0.0, 2.0], [3.0, -0.5, 0.25]])
    expected = torch.tensor([[0.0, 0.0, 2.0], [3.0, 0.0, 0.25]])
    assert_close(student.relu(X), expected, "relu(X)", atol=0.0)


@pytest.mark.points(1)
def test_init_mlp_params_shapes(student):
    """init_mlp_params(784, 256, 10) returns [W1 (784, 256), b1 (256,), W2 (256, 10),
    b2 (10,)], each requiring gradients; W1's entries have standard deviation about
    sqrt(2 / 784) (§4.2.1)."""
    params = student.init_mlp_params(784, 256, 10)
    assert isinstance(params, list | tuple) and len(params) == 4, \
        "init_mlp_params should return a list of 4 tensors [W1, b1, W2, b2]"
    for name, p, shape in zip(("W1", "b1", "W2", "b2"), params,
                              [(784, 256), (256,), (256, 10), (10,)], strict=True):
        expect_tensor(p, name, shape=shape, dtype=torch.float32)
        assert p.requires_grad, f"{name} should have requires_grad=True"
    std = float(params[0].detach().std())
    assert abs(std - math.sqrt(2 / 784)) < 0.1 * math.sqrt(2 / 784), \
        f"W1's standard deviation is {std:.4f}, expected about {math.sqrt(2 / 784):.4f}"


@pytest.mark.points(1)
def test_mlp_forward_small_example(student):
    """A 2-input, 2-hidden, 1-output MLP computed by hand: relu(X W1 + b1) W2 + b2 (§4.2.2)."""
    X = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    W1 = torch.tensor([[1.0, -1.0], [0.5, 1.0]])
    b1 = torch.tensor([0.0, -0.5])
    W2 = torch.tensor([[2.0], [-1.0]])
    b2 = torch.tensor([-3.0])
    # hidden: [[2, 0.5], [-0.75, 1.0]] -> relu -> [[2, 0.5], [0, 1]]; output: [[0.5], [-4]]
    expected = torch.tensor([[0.5], [-4.0]])
    assert_close(student.mlp_forward(X, [W1, b1, W2, b2]), expected, "mlp_forward(X, params)")


@pytest.mark.points(1)
def test_build_mlp_output_shape(student):
    """build_mlp() turns a batch of images (n, 1, 28, 28) into logits (n, 10) (§4.3)."""
    net = student.build_mlp()
    expect_tensor(net(torch.rand(3, 1, 28, 28)), "build_mlp()(X)", shape=(3, 10))


@pytest.mark.points(1)
def test_train_mlp_history(student):
    """train_mlp trains for num_epochs epochs and returns {'train_loss': [...], 'train_acc':
    [...], 'test_acc': [...]}, one float per epoch, accuracies in [0, 1] (§4.3)."""
    g = torch.Generator().manual_seed(0)
    data = [(torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g))
            for _ in range(3)]
    net = student.remote(nn.Sequential, nn.Flatten(), nn.Linear(784, 16), nn.ReLU(),
                         nn.Linear(16, 10))
    history = student.train_mlp(net, data, data[:1], 2, 0.1)
    assert isinstance(history, dict), "train_mlp should return a dict"
    for key in ("train_loss", "train_acc", "test_acc"):
        assert key in history and len(history[key]) == 2, f"history[{key!r}] needs 2 entries"
        values = [expect_float(v, f"history[{key!r}]") for v in history[key]]
        if key != "train_loss":
            assert all(0 <= v <= 1 for v in values), f"history[{key!r}] should be fractions"

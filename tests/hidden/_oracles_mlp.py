"""The mlp and gpu_training topics' answer-shaped oracles, hidden from students: the MLP's
forward pass (and the wrong ones the tests name) and the SGD steps of train_mlp and train_gpu.
tests/public/_mistakes_mlp.py keeps the messages and the checks, and literal tables of what
these compute for the public tests' inputs (tests/kit/test_public_tables_b.py checks every
number of them against the functions here)."""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from tests.public._mistakes_mlp import (
    NO_BIASES,
    NO_HIDDEN_RELU,
    NO_ZERO_GRAD_STEPS,
    RELU_BEFORE_BIAS,
    RELU_ON_OUTPUT,
    SUM_LOSS_STEPS,
    batch_counts,
    check_trained_state,
    count_correct,
)

# --------------------------------------------------------------------------- the forward pass


def oracle_mlp(X, params, hidden=torch.relu, output=None):
    """relu(X W1 + b1) W2 + b2 in float64 (the hidden and output activations swappable for a
    known mistake), in X's dtype."""
    W1, b1, W2, b2 = (p.detach().double() for p in params)
    H = hidden(X.double().reshape(-1, W1.shape[0]) @ W1 + b1)
    O = H @ W2 + b2
    return (output(O) if output else O).to(X.dtype)


def mlp_scale(X, params) -> float:
    """The size of the forward pass's sums (rounding grows with it)."""
    W1, b1, W2, b2 = (p.detach().double().abs() for p in params)
    H = X.double().abs().reshape(-1, W1.shape[0]) @ W1 + b1
    return float((H @ W2 + b2).max()) + 1.0


def forward_mistakes(X, params) -> dict[str, torch.Tensor]:
    """What the known wrong forward passes give for X with `params`."""
    W1, b1, W2, b2 = (p.detach() for p in params)
    return {
        RELU_ON_OUTPUT: oracle_mlp(X, params, output=torch.relu),
        NO_HIDDEN_RELU: oracle_mlp(X, params, hidden=lambda Z: Z),
        RELU_BEFORE_BIAS: oracle_mlp(X, [W1, torch.zeros_like(b1), W2, b2],
                                     hidden=lambda Z: torch.relu(Z) + b1.double()),
        NO_BIASES: oracle_mlp(X, [W1, torch.zeros_like(b1), W2, torch.zeros_like(b2)]),
    }


# --------------------------------------------------------------------------- the SGD steps


class PlainSGD:
    """torch.optim.SGD(params, lr) as the oracles use it (no momentum, no weight decay): its
    step computes p.add_(grad, alpha=-lr), as torch's own does. Here rather than torch.optim,
    whose first use imports torch._dynamo: a second of every grading run's start-up."""

    def __init__(self, params, lr: float):
        self.params, self.lr = list(params), lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


# the wrong loops check_trained_state names, as reference_training's options
TRAIN_MISTAKES = {NO_ZERO_GRAD_STEPS: {"zero_grad": False}, SUM_LOSS_STEPS: {"sum_loss": True}}


def reference_training(net: nn.Module, train_data, test_data, num_epochs: int, lr: float, *,
                       zero_grad: bool = True, sum_loss: bool = False) -> tuple[dict, dict]:
    """The steps train_mlp and train_gpu must take from `net`'s state, done here on a copy;
    returns (state_dict, facts), facts holding every correct way of reporting the history
    (per epoch: the mean loss during it and after it, the training accuracy during and after
    it, the test accuracy, each with the fraction rounding may decide) and the usual wrong
    one (the unweighted mean of the batches' losses)."""
    net = copy.deepcopy(net)
    trainer = PlainSGD(net.parameters(), lr)
    n_train = sum(len(y) for _, y in train_data)
    n_test = sum(len(y) for _, y in test_data)
    facts: dict[str, list[float]] = {k: [] for k in (
        "loss", "loss_unweighted", "acc", "acc_ambiguous", "acc_after", "loss_after",
        "test_acc", "test_ambiguous", "train_ambiguous")}
    for _ in range(num_epochs):
        net.train()
        loss_sum, unweighted, correct, unsure = 0.0, 0.0, 0.0, 0
        for X, y in train_data:
            y_hat = net(X)
            loss = F.cross_entropy(y_hat, y) * (len(y) if sum_loss else 1)
            if zero_grad:
                trainer.zero_grad()
            loss.backward()
            trainer.step()
            batch_mean = float(F.cross_entropy(y_hat.detach(), y))
            loss_sum += batch_mean * len(y)
            unweighted += batch_mean
            right, close = batch_counts(y_hat.detach(), y)
            correct, unsure = correct + right, unsure + close
        facts["loss"].append(loss_sum / n_train)
        facts["acc_ambiguous"].append(unsure / n_train)
        facts["loss_unweighted"].append(unweighted / len(train_data))
        facts["acc"].append(correct / n_train)
        net.eval()
        loss_sum, correct, unsure = 0.0, 0.0, 0
        with torch.no_grad():  # the loss and accuracy after the epoch, one pass for both
            for X, y in train_data:
                y_hat = net(X)
                loss_sum += float(F.cross_entropy(y_hat, y, reduction="sum"))
                right, close = batch_counts(y_hat, y)
                correct, unsure = correct + right, unsure + close
        facts["loss_after"].append(loss_sum / n_train)
        facts["acc_after"].append(correct / n_train)
        facts["train_ambiguous"].append(unsure / n_train)
        right, unsure = count_correct(net, test_data)
        facts["test_acc"].append(right / n_test)
        facts["test_ambiguous"].append(unsure / n_test)
    return net.state_dict(), facts


def mistaken_states(start: nn.Module, train_data, test_data, num_epochs: int, lr: float
                    ) -> dict[str, dict]:
    """{message: the state the wrong loop that message names leaves} from `start`'s state."""
    return {message: reference_training(start, train_data, test_data, num_epochs, lr, **kw)[0]
            for message, kw in TRAIN_MISTAKES.items()}


def expect_trained_state(final: dict, start: nn.Module, train_data, test_data,
                         num_epochs: int, lr: float, what: str, atol: float = 2e-5) -> dict:
    """check_trained_state of the trained net's state_dict `final` against the reference's
    steps from `start` (a grader-side net in the state training started from), the wrong
    loops' states computed only when needed; returns the reference's facts."""
    init = {k: v.detach().cpu() for k, v in start.state_dict().items()}
    expected, facts = reference_training(start, train_data, test_data, num_epochs, lr)
    mistakes = functools.cache(
        lambda: mistaken_states(start, train_data, test_data, num_epochs, lr))
    check_trained_state(final, init, expected, lr, what, mistakes, atol)
    return facts

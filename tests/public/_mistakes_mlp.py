"""The mistakes of multilayer perceptrons (§4.1-4.3) the tests recognise, and what they say
about each: the public tests (test_mlp.py) and the instructor's hidden tests check with these
same functions, so a mistake reads the same wherever it is caught. The tests of gpu_training
share the training checks, with the words that name the D2L function and section passed in;
what every topic shares (a Python float, a history that matches the net it trained) is in
`_conventions.py` beside this file.

`*_mistakes` functions return {message: the value that mistake gives} for
`grader.checks.assert_close(..., mistakes=...)`; `check_*` and `expect_*` functions raise an
AssertionError that names the mistake. Oracles are computed here, in the grader, with torch's
own functions (torch.relu, F.cross_entropy, an SGD step written out as `PlainSGD`).

A training loop is checked step by step on a small net the test builds from a state it knows
(`make_net`) and batches of fixed order (`batches`): `reference_training` repeats the SGD steps
on a copy, `expect_trained_state` compares the trained parameters and names the usual wrong
loops, `check_train_loss`, `check_train_acc` and `check_test_acc` compare the history with
every correct way of reporting it. How the net was run is seen without trusting anything the
submission reports: a BatchNorm layer counts the forward passes made in training mode
(`num_batches_tracked`), and a forward pre-hook (`forward_log`: `print` into an `io.StringIO` in
the worker) logs the input of the last layer on every call, which prints with `grad_fn=...`
when autograd was on (`check_evaluation_modes`, `training_mode_message`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import itertools
import math
import operator

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import assert_close, describe, expect_tensor, max_abs
from tests.public._conventions import check_measured_accuracy, expect_exact_float

# --------------------------------------------------------------------------- relu

RELU_ON_OUTPUT = ("ReLU was applied to the output logits too: the output layer has no "
                  "activation (logits may be negative; softmax comes later, in the loss) (§4.2.2)")

NO_HIDDEN_RELU = ("the hidden layer has no nonlinearity: without relu(X W1 + b1) the two layers "
                  "collapse into one linear model (§4.1.1.3)")

FLATTEN_HINTS = {
    "is invalid for input of size": "flatten each example to W1.shape[0] numbers "
    "(X.reshape(-1, W1.shape[0])), not a hard-coded 784.",
    "view size is not compatible": "X may be non-contiguous: flatten it with reshape, not view.",
}


def relu_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "relu(x) is max(x, 0), but your function returned |x|.": X.abs(),
        "relu keeps the positive entries and zeroes the negative ones; yours does the "
        "opposite (min(x, 0)?).": torch.minimum(X, torch.zeros_like(X)),
        "relu returned X unchanged: negative entries must become 0.": X,
    }


def expect_relu_tensor(out, X: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) and (
            isinstance(out, tuple | list) or "return_types" in repr(out)):
        raise AssertionError(
            f"{what} should be a tensor shaped like X, but it is {describe(out)}: "
            "torch.max(X, 0) reduces over dimension 0 and returns (values, indices). Compare "
            "with a tensor of zeros instead: torch.maximum(X, torch.zeros_like(X)).")
    expect_tensor(out, what)
    if tuple(out.shape) != tuple(X.shape):
        raise AssertionError(
            f"{what} has shape {tuple(out.shape)} but X has shape {tuple(X.shape)}: relu is "
            "elementwise (did you reduce with torch.max(X, 0) instead of comparing with "
            "torch.zeros_like(X)?)")
    return out


# --------------------------------------------------------------------------- init_mlp_params


def leaf_flags(student, *args) -> list[bool]:
    """`[p.is_leaf for p in init_mlp_params(*args)]`, evaluated in the worker: a tensor
    reaches the grader as data, and data does not say whether it was a leaf. The call is
    wrapped in lazy iterators (`map`, `chain`) so the parameters never leave the worker."""
    module = student.remote(importlib.import_module, "mlp")
    results = student.remote(map, module.init_mlp_params, *([a] for a in args))
    params = student.remote(itertools.chain.from_iterable, results)
    return student.remote(list, student.remote(map, operator.attrgetter("is_leaf"), params))


def expect_params(params, num_inputs: int, num_hiddens: int, num_outputs: int):
    what = f"init_mlp_params({num_inputs}, {num_hiddens}, {num_outputs})"
    if not isinstance(params, list | tuple) or len(params) != 4:
        raise AssertionError(f"{what} should return a list [W1, b1, W2, b2], but it returned "
                             f"{len(params) if isinstance(params, list | tuple) else params!r}"
                             f"{' items' if isinstance(params, list | tuple) else ''}.")
    shapes = [(num_inputs, num_hiddens), (num_hiddens,), (num_hiddens, num_outputs),
              (num_outputs,)]
    for name, p, shape in zip(("W1", "b1", "W2", "b2"), params, shapes, strict=True):
        p = expect_tensor(p, f"{name} of {what}")
        if tuple(p.shape) != shape:
            hint = (" (W1 is (num_inputs, num_hiddens) so that X @ W1 works, not the "
                    "(out, in) layout of nn.Linear)" if tuple(p.shape) == shape[::-1] else "")
            raise AssertionError(f"{name} of {what} has shape {tuple(p.shape)} but should have "
                                 f"shape {shape}{hint}.")
        expect_tensor(p, f"{name} of {what}", dtype=torch.float32)
    return params


def check_requires_grad(params) -> None:
    for name, p in zip(("W1", "b1", "W2", "b2"), params, strict=True):
        if not p.requires_grad:
            raise AssertionError(f"{name} does not require gradients: create it with "
                                 "requires_grad=True (or as nn.Parameter), or training cannot "
                                 "update it (§4.2.1).")


def check_leaves(flags: list[bool]) -> None:
    """`flags` from leaf_flags(): each parameter is a leaf."""
    for name, leaf in zip(("W1", "b1", "W2", "b2"), flags, strict=True):
        if not leaf:
            raise AssertionError(
                f"{name} is not a leaf tensor: it was computed from another tensor that "
                "requires gradients (e.g. torch.randn(..., requires_grad=True) * scale), so "
                "backward() leaves its .grad empty. Scale first, then call .requires_grad_() "
                "or wrap it in nn.Parameter (§4.2.1).")


def check_biases_zero(params) -> None:
    for name, b in (("b1", params[1]), ("b2", params[3])):
        if bool((b != 0).any()):
            raise AssertionError(f"{name} should start at 0 (torch.zeros), but it holds values "
                                 f"up to {max_abs(b):.3g}.")


def weight_scale_message(name: str, W: torch.Tensor, fan_in: int, fan_out: int) -> str | None:
    """None if W looks like N(0, 2 / fan_in) draws; else what it looks like instead."""
    W = W.detach()
    target = math.sqrt(2.0 / fan_in)
    std = float(W.double().std())
    mean = float(W.double().mean())
    n = W.numel()
    close = lambda s, rel: abs(std - s) <= rel * s  # noqa: E731
    rel = max(0.04, 6.0 / math.sqrt(2 * n))  # six standard errors of a sample std, at least 4 %
    if close(target, rel):
        if abs(mean) > 6 * target / math.sqrt(n):
            return (f"{name}'s entries have mean {mean:.3g}, far from 0: draw them from "
                    "torch.randn (mean 0).")
        beyond = float((W.double().abs() > 2 * std).double().mean())
        if beyond < 0.02:
            return (f"{name}'s entries look uniformly distributed ({beyond:.1%} beyond two "
                    "standard deviations; a normal distribution has 4.6%): draw them with "
                    "torch.randn.")
        return None
    known = [
        (1.0, "torch.randn without scaling: multiply by sqrt(2 / fan_in)"),
        (0.01, "0.01 * torch.randn (the scale of §4.2.1's first version); this exercise asks "
               "for Kaiming initialisation, sqrt(2 / fan_in)"),
        (2.0 / fan_in, "scaled by 2 / fan_in, the variance: multiply by its square root, "
                       "sqrt(2 / fan_in)"),
        (math.sqrt(1.0 / fan_in), "scaled by sqrt(1 / fan_in): Kaiming initialisation for ReLU "
                                  "layers uses sqrt(2 / fan_in)"),
        (math.sqrt(2.0 / fan_out), "scaled by sqrt(2 / fan_out): fan_in is the number of the "
                                   "layer's inputs, W.shape[0]"),
        (math.sqrt(2.0 / (fan_in + fan_out)), "Xavier's scale sqrt(2 / (fan_in + fan_out)); "
                                              "this exercise asks for sqrt(2 / fan_in)"),
    ]
    for scale, why in known:
        if close(scale, rel) and not close(target, 2 * rel):
            return f"{name}'s entries have standard deviation {std:.4g}, as with {why}."
    return (f"{name}'s entries have standard deviation {std:.4g}, but Kaiming initialisation "
            f"gives sqrt(2 / fan_in) = sqrt(2 / {fan_in}) = {target:.4g}.")


# --------------------------------------------------------------------------- mlp_forward


def oracle_mlp(X, params, hidden=torch.relu, output=None):
    W1, b1, W2, b2 = (p.detach().double() for p in params)
    H = hidden(X.double().reshape(-1, W1.shape[0]) @ W1 + b1)
    O = H @ W2 + b2
    return (output(O) if output else O).to(X.dtype)


def mlp_scale(X, params) -> float:
    W1, b1, W2, b2 = (p.detach().double().abs() for p in params)
    H = X.double().abs().reshape(-1, W1.shape[0]) @ W1 + b1
    return float((H @ W2 + b2).max()) + 1.0


def forward_mistakes(X, params) -> dict[str, torch.Tensor]:
    W1, b1, W2, b2 = (p.detach() for p in params)
    return {
        RELU_ON_OUTPUT: oracle_mlp(X, params, output=torch.relu),
        NO_HIDDEN_RELU: oracle_mlp(X, params, hidden=lambda Z: Z),
        "relu was applied before adding b1: the hidden layer is relu(X W1 + b1).": oracle_mlp(
            X, [W1, torch.zeros_like(b1), W2, b2], hidden=lambda Z: torch.relu(Z) + b1.double()),
        "the biases were not added: O = relu(X W1 + b1) W2 + b2.": oracle_mlp(
            X, [W1, torch.zeros_like(b1), W2, torch.zeros_like(b2)]),
    }


# --------------------------------------------------------------------------- build_mlp

# what torch raises when build_mlp's net gets images it does not flatten, or was built for
# 784 inputs whatever its arguments
FLATTEN_FIRST_HINTS = {"cannot be multiplied": "images (n, 1, 28, 28) must be flattened first: "
                       "start the net with nn.Flatten() (§4.3)."}
OWN_SIZES_HINTS = {"cannot be multiplied": "build_mlp(12, 7, 5) must build its layers from its "
                   "arguments (Linear(num_inputs, num_hiddens), ...), not from 784, 256 and 10."}


def find_layers(state: dict, num_inputs: int, num_hiddens: int, num_outputs: int):
    """[W1 (in, h), b1, W2 (h, out), b2] from a state_dict, whatever the layout; None if the
    parameters do not have the shapes of a one-hidden-layer MLP."""
    found = {}
    for value in state.values():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        shape = tuple(value.shape)
        if shape in ((num_hiddens, num_inputs), (num_inputs, num_hiddens)) and "W1" not in found:
            found["W1"] = value if shape == (num_inputs, num_hiddens) else value.T
        elif shape in ((num_outputs, num_hiddens), (num_hiddens, num_outputs)) \
                and "W2" not in found:
            found["W2"] = value if shape == (num_hiddens, num_outputs) else value.T
        elif shape == (num_hiddens,) and "b1" not in found:
            found["b1"] = value
        elif shape == (num_outputs,) and "b2" not in found:
            found["b2"] = value
    if len(found) != 4:
        return None
    return [found["W1"], found["b1"], found["W2"], found["b2"]]


# --------------------------------------------------------------------------- nets and batches


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


def with_state(net: torch.nn.Module, state: dict) -> torch.nn.Module:
    net = copy.deepcopy(net)
    net.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return net


def make_net(seed: int, widths: tuple[int, int, int] = (16, 12, 5),
             extra: tuple = ()) -> nn.Sequential:
    """Flatten, Linear(d, h), *extra, ReLU, Linear(h, q) for widths (d, h, q), with parameters
    drawn from `seed`: a net whose every parameter the test knows (built here, then copied to
    the worker with student.remote(nn.Sequential, *net))."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        d, h, q = widths
        return nn.Sequential(nn.Flatten(), nn.Linear(d, h), *extra, nn.ReLU(), nn.Linear(h, q))


def batches(sizes, seed: int, shape=(1, 4, 4), classes: int = 5
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches (X (b, *shape) in [0, 1], y (b,) int64 below `classes`) of the given sizes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(b, *shape, generator=g), torch.randint(0, classes, (b,), generator=g))
            for b in sizes]


def mode_probe_net(student, seed: int, widths: tuple[int, int, int]):
    """Flatten, Linear, BatchNorm, ReLU, Dropout, Linear built in the worker, its last layer's
    input logged (tests.hidden._probes): BatchNorm counts training-mode batches
    (`2.num_batches_tracked`), Dropout and BatchNorm behave differently in the two modes.
    Returns (the grader's copy, the worker's net, the log)."""
    net = make_net(seed, widths, extra=(nn.BatchNorm1d(widths[1]),))
    net.insert(4, nn.Dropout(0.5))
    remote_net = student.remote(nn.Sequential, *net)
    return net, remote_net, forward_log(student, remote_net[5])


# --------------------------------------------------------------------------- counting


def ambiguous(logits: torch.Tensor) -> int:
    """Examples whose two top logits are so close that rounding may decide the prediction."""
    if logits.shape[1] < 2:
        return 0
    top = logits.detach().topk(2, dim=1).values
    return int(((top[:, 0] - top[:, 1]) < 1e-4 * (1 + top[:, 0].abs())).sum())


def count_correct(net: nn.Module, data) -> tuple[float, int]:
    """(correct predictions, examples rounding may decide) of `net` as it is (its mode is left
    alone) on the batches `data`."""
    correct, unsure = 0.0, 0
    with torch.no_grad():
        for X, y in data:
            y_hat = net(X)
            correct += float((y_hat.argmax(1) == y).sum())
            unsure += ambiguous(y_hat)
    return correct, unsure


# --------------------------------------------------------------------------- the SGD steps

TRAIN_MISTAKES = {
    "the gradients were never zeroed, so each step used the sum of all earlier gradients: "
    "call optimizer.zero_grad() (or net.zero_grad()) before every loss.backward() "
    "(§3.6.5).": dict(zero_grad=False),
    "each step used the summed loss of the batch: take the mean cross-entropy (the default "
    "reduction of nn.CrossEntropyLoss), as the learning rate assumes (§3.6.5).":
        dict(sum_loss=True),
}


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
    facts = {k: [] for k in ("loss", "loss_unweighted", "acc", "acc_ambiguous", "acc_after",
                             "loss_after", "test_acc", "test_ambiguous", "train_ambiguous")}
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
            correct += float((y_hat.argmax(1) == y).sum())
            unsure += ambiguous(y_hat)
        facts["loss"].append(loss_sum / n_train)
        facts["acc_ambiguous"].append(unsure / n_train)
        facts["loss_unweighted"].append(unweighted / len(train_data))
        facts["acc"].append(correct / n_train)
        net.eval()
        with torch.no_grad():
            facts["loss_after"].append(sum(float(F.cross_entropy(net(X), y, reduction="sum"))
                                           for X, y in train_data) / n_train)
        right, unsure = count_correct(net, train_data)
        facts["acc_after"].append(right / n_train)
        facts["train_ambiguous"].append(unsure / n_train)
        right, unsure = count_correct(net, test_data)
        facts["test_acc"].append(right / n_test)
        facts["test_ambiguous"].append(unsure / n_test)
    return net.state_dict(), facts


def expect_trained_state(final: dict, start: nn.Module, train_data, test_data,
                         num_epochs: int, lr: float, what: str, atol: float = 2e-5) -> dict:
    """Compare the trained net's state_dict `final` with the reference's steps from `start`
    (a grader-side net in the state training started from); returns the reference's facts.

    The tolerance grows with the parameters' magnitude and with the steps' size:
    atol * (max|parameter| + max(1, 10 lr)), the larger of the two rules the mlp and
    gpu_training tests had before they shared this one."""
    init = {k: v.detach().cpu() for k, v in start.state_dict().items()}
    expected, facts = reference_training(start, train_data, test_data, num_epochs, lr)
    mistakes: dict[str, dict] = {}
    for name, want in expected.items():
        if name not in final:
            raise AssertionError(f"the net lost its parameter {name!r} during training.")
        if not (isinstance(want, torch.Tensor) and want.is_floating_point()):
            continue
        got = final[name].detach().cpu()
        if torch.equal(got, init[name]) and not torch.equal(want, init[name]):
            raise AssertionError(
                f"the parameter {name!r} did not change during training: call "
                "optimizer.zero_grad() before loss.backward() (not between backward and "
                "step), then optimizer.step() on every batch (§3.6.5).")
        tol = atol * (max_abs(want) + max(1.0, 10 * lr))
        if not _close(got, want, tol):
            for message, kw in TRAIN_MISTAKES.items():
                if message not in mistakes:
                    mistakes[message] = reference_training(start, train_data, test_data,
                                                           num_epochs, lr, **kw)[0]
                if _close(got, mistakes[message][name], tol):
                    raise AssertionError(f"the parameters after training: {message}")
        assert_close(got, want, f"parameter {name!r} after {what}'s steps", atol=tol)
    return facts


def _close(got: torch.Tensor, want: torch.Tensor, tol: float) -> bool:
    return bool(torch.isclose(got.double(), want.double(), rtol=0, atol=tol).all())


# --------------------------------------------------------------------------- the history

HISTORY_FLOAT = ("append float(...) of each epoch's metric to the history, not a tensor (a "
                 "kept loss tensor holds its whole autograd graph)")


def expect_history(history, num_epochs: int, what: str) -> dict[str, list[float]]:
    """The history `what` returned, checked to be {train_loss, train_acc, test_acc: one
    Python float per epoch}, the accuracies in [0, 1]. Each value is a Python float exactly:
    neither a tensor nor an int (expect_exact_float)."""
    if not isinstance(history, dict):
        raise AssertionError(f"{what} should return a dict with keys 'train_loss', 'train_acc' "
                             f"and 'test_acc', but it returned a {type(history).__name__}.")
    missing = {"train_loss", "train_acc", "test_acc"} - set(history)
    if missing:
        raise AssertionError(f"{what}'s history has no {sorted(missing)} (keys: "
                             f"{sorted(map(str, history))}).")
    out = {}
    for key in ("train_loss", "train_acc", "test_acc"):
        values = history[key]
        if not isinstance(values, list | tuple) or len(values) != num_epochs:
            n = len(values) if isinstance(values, list | tuple) else type(values).__name__
            raise AssertionError(f"history['{key}'] should be a list of {num_epochs} floats, "
                                 f"one per epoch, but it is {n}.")
        out[key] = [expect_exact_float(v, f"history['{key}'][{i}]", HISTORY_FLOAT)
                    for i, v in enumerate(values)]
        if key != "train_loss":
            for i, v in enumerate(out[key]):
                if not 0.0 <= v <= 1.0:
                    raise AssertionError(
                        f"history['{key}'][{i}] is {v:.6g}: accuracies are fractions in "
                        "[0, 1]. Divide the number of correct predictions by the number of "
                        "examples.")
    return out


def check_train_loss(got: dict, facts: dict, e: int, train_data) -> None:
    """history['train_loss'][e]: the mean cross-entropy per training example during epoch e
    (or after it), naming the plain average of the batches' losses and the epoch's total."""
    loss = got["train_loss"][e]
    if any(math.isclose(loss, facts[k][e], rel_tol=1e-4, abs_tol=1e-6)
           for k in ("loss", "loss_after")):
        return
    n = sum(len(y) for _, y in train_data)
    if math.isclose(loss, facts["loss_unweighted"][e], rel_tol=1e-4) and \
            not math.isclose(facts["loss"][e], facts["loss_unweighted"][e], rel_tol=1e-4):
        raise AssertionError(
            f"history['train_loss'][{e}] is the plain average of the batches' mean losses; "
            "batches differ in size, so weight each by its size (add loss * len(y), divide by "
            "the number of examples).")
    if math.isclose(loss, facts["loss"][e] * n, rel_tol=1e-4):
        raise AssertionError(f"history['train_loss'][{e}] is the total loss of the epoch: "
                             "divide by the number of training examples.")
    raise AssertionError(f"history['train_loss'][{e}] is {loss:.6g}, but the mean "
                         f"cross-entropy per training example in epoch {e} was "
                         f"{facts['loss'][e]:.6g} (weight each batch's mean loss by its size).")


def check_train_acc(got: dict, facts: dict, e: int) -> None:
    """history['train_acc'][e]: the fraction of training examples classified correctly during
    epoch e (or after it), up to the examples rounding may decide."""
    acc = got["train_acc"][e]
    if abs(acc - facts["acc"][e]) <= 1e-6 + facts["acc_ambiguous"][e] or \
            abs(acc - facts["acc_after"][e]) <= 1e-6 + facts["train_ambiguous"][e]:
        return
    raise AssertionError(f"history['train_acc'][{e}] is {acc:.6g}, but the fraction of "
                         f"training examples classified correctly in epoch {e} was "
                         f"{facts['acc'][e]:.6g} (argmax of the logits == y).")


def check_test_acc(got: dict, facts: dict, e: int) -> None:
    """history['test_acc'][e]: the fraction of the test examples classified correctly after
    epoch e, over all test batches."""
    acc, want = got["test_acc"][e], facts["test_acc"][e]
    if abs(acc - want) > 1e-6 + facts["test_ambiguous"][e]:
        raise AssertionError(f"history['test_acc'][{e}] is {acc:.6g}, but after epoch {e} the "
                             f"net classifies {want:.6g} of the test examples correctly: count "
                             "correct predictions over all test batches and divide by the "
                             "number of test examples.")


def check_reported_accuracy(history: dict, net: nn.Module, state: dict, test_data,
                            what: str) -> float:
    """history['test_acc'][-1] against the accuracy of the trained net, measured here: `net` is
    the grader's copy of its architecture, `state` the trained net's state_dict, `test_data`
    the test batches. A history made up (or measured on another net) does not match it
    (check_measured_accuracy). Returns the measured accuracy."""
    trained = with_state(net, state).eval()
    counts = [count_correct(trained, [batch]) for batch in test_data]
    sizes = [len(y) for _, y in test_data]
    n = sum(sizes)
    per_batch = sum(right / size for (right, _), size in zip(counts, sizes, strict=True))
    measured = sum(right for right, _ in counts) / n
    check_measured_accuracy(history["test_acc"][-1], measured,
                            sum(unsure for _, unsure in counts) / n, what,
                            per_batch=per_batch / len(sizes))
    return measured


# --------------------------------------------------------------------------- modes


def forward_log(student, module):
    """Log every call of the worker-side `module`: a forward pre-hook prints its input into a
    StringIO in the worker. Returns that StringIO (read it with .getvalue())."""
    log = student.remote(io.StringIO)
    module.register_forward_pre_hook(functools.partial(print, "<call>", file=log))
    return log


def logged_calls(log) -> tuple[int, int]:
    """(calls whose input was built with autograd on, calls without)."""
    records = log.getvalue().split("<call>")[1:]
    with_grad = sum("grad_fn=" in r for r in records)
    return with_grad, len(records) - with_grad


def check_evaluation_modes(history: dict, state: dict, net: nn.Module, log, num_epochs: int,
                           train_sizes, test_data, section: str) -> None:
    """After training mode_probe_net()'s net (handed over in training mode) for `num_epochs`
    on batches of `train_sizes`: every step, and only the steps, ran in training mode, no
    forward pass outside them built a graph, the test set was evaluated after every epoch,
    and history['test_acc'][-1] is the trained net's accuracy in evaluation mode. `state` is
    the trained net's state_dict, `net` the grader's copy of the net, `log` its last layer's
    logged inputs."""
    steps = num_epochs * len(train_sizes)
    tracked = int(state["2.num_batches_tracked"])
    if tracked > steps:
        raise AssertionError(f"the net ran {tracked} batches in training mode, but training has "
                             f"only {steps}: the test set was evaluated in training mode. Call "
                             "net.eval() before evaluating (dropout off, BatchNorm's running "
                             f"statistics) ({section}).")
    if tracked < steps:
        raise AssertionError(f"only {tracked} of the {steps} training steps ran in training "
                             "mode: call net.train() at the start of every epoch (evaluation "
                             "switched the net to eval mode).")
    with_grad, without = logged_calls(log)
    if with_grad > steps:
        raise AssertionError(
            f"{with_grad - steps} forward passes outside training built an autograd graph: "
            "evaluate inside `with torch.no_grad():` (§5.6).")
    net = with_state(net, state)
    net.eval()
    right, unsure = count_correct(net, test_data)
    n_test = sum(len(y) for _, y in test_data)
    if abs(history["test_acc"][-1] - right / n_test) > 1e-6 + unsure / n_test:
        raise AssertionError(f"history['test_acc'][-1] is {history['test_acc'][-1]:.6g}, but "
                             f"the trained net classifies {right / n_test:.6g} of the test set "
                             "correctly in evaluation mode: evaluate after the epoch's "
                             "training, with net.eval().")
    if without < num_epochs * len(test_data):
        raise AssertionError("the test set was not evaluated after every epoch.")


def training_mode_message(tracked: int, steps: int, per_epoch: int, loop: str,
                          section: str) -> str | None:
    """What the BatchNorm's count of training-mode batches says, for a net handed over in
    evaluation mode and trained by a loop like D2L's `loop` (of `section`); None when every
    step, and only the steps, ran in training mode."""
    if tracked > steps:
        return (f"the net ran {tracked} batches in training mode, but training has only "
                f"{steps}: the test set was evaluated in training mode. Call net.eval() before "
                f"evaluating ({section}).")
    if tracked == steps - per_epoch:
        return ("the net arrived in evaluation mode (net.eval()) and the first epoch trained "
                "in it: call net.train() at the start of every epoch, before its first batch, "
                f"as D2L's {loop} does, not only after evaluating ({section}).")
    if tracked < steps:
        return (f"only {tracked} of the {steps} training steps ran in training mode (the net "
                "arrived in evaluation mode): call net.train() at the start of every epoch "
                f"({section}).")
    return None

"""The cross-entropy topic's mistakes the tests recognise, and the checks that name them: the
public and the hidden tests share them, so a mistake reads the same wherever it is caught
(§3.4.6, §3.6, §3.7.2).

`*_mistakes(...)` map a message to what a usual wrong solution returns; the `check_*` and
`expect_*` functions compare a student's result (a loss, a count, an Accumulator's sums, a
fraction, a net's mode) with the right one and fail with the message of the mistake it
matches. The nets and data sets that make a mistake visible (`batchnorm_net`) are here too."""

import functools
import math
import operator
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from grader.checks import (
    RecognisedMistake,
    expect_float,
    hints_on_error,
    in_dtype,
    max_abs,
    tolerance,
)
from tests.public._conventions import expect_exact_float

# --------------------------------------------------------------------------- the losses

PER_EXAMPLE = ("one number was returned for the whole batch (the mean?): return one loss per "
               "example, shape (n,); training takes the mean later (§3.4.6).")
PER_EXAMPLE_SUM = ("one number was returned for the whole batch (the sum?): return one loss "
                   "per example, shape (n,) (§3.4.6).")
LOG_SOFTMAX = ("log(softmax(logits)) underflows: a probability that rounds to 0 gives "
               "-log(0) = inf. Compute logsumexp(o) - o_y with the row max subtracted inside "
               "the exp (§3.7.2).")
OVERFLOW = ("exp(logits) overflows to inf for large logits: subtract each row's max before exp, "
            "logsumexp(o) = m + log(sum(exp(o - m))) (§3.7.2).")
OVERFLOW_NAN = ("this is log(exp(o_y) / sum(exp(o))): exp overflows for large logits (inf / inf "
                "= nan) and tiny probabilities round to 0 (-log(0) = inf). Compute logsumexp(o) "
                "- o_y, subtracting each row's max before exp (§3.7.2).")
ONE_HOT_NAN = ("the loss is nan where another class has probability exactly 0: a one-hot mask "
               "times log(y_hat) gives 0 * log(0) = 0 * -inf = nan. Pick each example's "
               "probability of its true class first, y_hat[torch.arange(n), y], then take "
               "-log of it (§3.4.6).")
NO_MINUS = "the minus sign is missing: the loss is -log y_hat[i, y[i]], which is >= 0."
COLUMNS = ("y_hat[:, y] takes every label's column for every row, an (n, n) matrix; pair row i "
           "with its own label: y_hat[torch.arange(n), y] (§3.4.6).")
NO_LOG = "the log of the picked probability is missing: the loss is -log y_hat[i, y[i]]."
CLAMPED = ("probabilities may be as small as the dtype's smallest normal number (about 1e-38 "
           "in float32, 1e-308 in float64) and the loss is exact there (-log(1e-20) = 46.05): "
           "no clamp(min=...) of the probabilities and no + eps inside the log (§3.4.6).")
NOT_ADDED_BACK = ("the max was subtracted but not added back: logsumexp(o) = "
                  "m + log(sum(exp(o - m))), so the loss is m + log(sum(exp(o - m))) - o_y.")
SIGN_FLIPPED = "the sign is flipped: the loss is logsumexp(o) - o_y, which is >= 0."


def pick64(P: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each row's entry at its label, in float64."""
    return P.double()[torch.arange(len(y)), y]


def cross_entropy_mistakes(y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong cross_entropys return for probabilities y_hat and labels y."""
    true = -torch.log(pick64(y_hat, y))
    one_hot = F.one_hot(y, y_hat.shape[1]).double()
    return in_dtype({
        ONE_HOT_NAN: -(one_hot * torch.log(y_hat.double())).sum(1),
        PER_EXAMPLE: true.mean(),
        PER_EXAMPLE_SUM: true.sum(),
        NO_MINUS: -true,
        COLUMNS: -torch.log(y_hat.double()[:, y]),
        NO_LOG: -pick64(y_hat, y),
    }, y_hat.dtype)


def expect_not_clamped(out: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor,
                       what: str) -> None:
    """Fail, naming CLAMPED, where a loss `out` (shape (n,)) falls short of -log of the true
    class's probability: a clamp or an epsilon cut the log of a tiny probability short."""
    picked = pick64(y_hat, y)
    expected = -torch.log(picked)
    tol = tolerance(y_hat.dtype, max_abs(expected))
    short = out.detach().double() < expected - tol
    if bool(short.any()):
        i = int(short.nonzero()[0])
        raise RecognisedMistake(
            f"{what}: the loss of probability {float(picked[i]):.3g} is "
            f"{float(out[i]):.4g}, but -log({float(picked[i]):.3g}) = {float(expected[i]):.4g}: "
            f"{CLAMPED}", CLAMPED)


def logits_scale(logits: torch.Tensor) -> float:
    """What the rounding of logsumexp(o) - o_y grows with."""
    return max_abs(logits) + 10.0


def from_logits_mistakes(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong cross_entropy_from_logits return."""
    true = F.cross_entropy(logits.double(), y, reduction="none")
    rows = torch.arange(len(y))
    probs = torch.softmax(logits, 1)  # in the input's dtype, as the student computes it
    exp = torch.exp(logits)  # overflows to inf, as the student's would
    return in_dtype({
        PER_EXAMPLE: true.mean(),
        PER_EXAMPLE_SUM: true.sum(),
        LOG_SOFTMAX: -torch.log(probs[rows, y]),
        OVERFLOW: torch.log(exp.sum(1)) - logits[rows, y],
        OVERFLOW_NAN: -torch.log(exp[rows, y] / exp.sum(1)),
        NOT_ADDED_BACK: true - logits.max(1).values,
        SIGN_FLIPPED: -true,
    }, logits.dtype)


def expect_finite_losses(out: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                         mistakes: dict[str, torch.Tensor]) -> None:
    """Fail where losses from finite logits are nan or inf, naming the mistakes whose nan/inf
    pattern `out` has (or, failing that, the likelier of overflow and log(softmax))."""
    if out.shape == y.shape and not bool(torch.isfinite(out).all()):
        same_pattern = {message for message, wrong in mistakes.items()
                        if wrong.shape == out.shape and all(torch.equal(f(out), f(wrong)) for f in (
                            torch.isposinf, torch.isneginf, torch.isnan))}
        if not same_pattern:
            same_pattern = {OVERFLOW_NAN if bool(torch.isnan(out).any()) else LOG_SOFTMAX}
        raise AssertionError(f"cross_entropy_from_logits has nan or inf for logits near "
                             f"{logits_scale(logits) - 10:.0e}: " + " Or: ".join(
                                 sorted(same_pattern)))


# --------------------------------------------------------------------------- accuracy

FRACTION = ("that is the fraction of correct predictions; accuracy returns their NUMBER (a "
            "float count). evaluate_accuracy divides the total count by the number of "
            "examples (§3.6.5).")
CAST_FIRST = ("the scores were converted to the labels' dtype before the argmax, which "
              "truncates them: take the argmax of the scores first, then convert the predicted "
              "labels with .type(y.dtype) (§3.6.5).")
BY_SHAPE = ("y_hat may be predicted labels of shape (n,): take the argmax only when y_hat has a "
            "second dimension of size > 1 (decide by shape, not dtype) (§3.6.5).")
MAX_VALUES = ("y_hat.max(dim=1) gives the largest scores; the predicted class is their "
              "position, y_hat.argmax(dim=1).")


def read_count(value, what: str) -> float:
    """accuracy's result: a count as a Python float exactly, neither a 0-d tensor nor an int
    (`.item()` of an integer sum is one)."""
    return expect_exact_float(value, what, "return float(cmp.type(y.dtype).sum())")


def accuracy_mistakes(y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """What the usual wrong accuracys return (counts, or the fraction)."""
    n = len(y)
    pred = y_hat.argmax(1) if y_hat.dim() > 1 and y_hat.shape[1] > 1 else y_hat
    count = float((pred.double() == y.double()).sum())
    mistakes = {FRACTION: count / n}
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        if not y.dtype.is_floating_point and y.dtype != torch.uint8:
            cast = y_hat.type(y.dtype).argmax(1)
            mistakes[CAST_FIRST] = float((cast.long() == y.long()).sum())
        mistakes[MAX_VALUES] = float((y_hat.max(1).values.double() == y.double()).sum())
    return mistakes


def check_accuracy(student, y_hat: torch.Tensor, y: torch.Tensor, what: str,
                   read: Callable[[Any, str], float] = expect_float) -> None:
    """accuracy(y_hat, y) against the count, naming a recognised mistake; `read` turns the
    result into a number (or fails on its type)."""
    pred = y_hat.argmax(1) if y_hat.dim() > 1 and y_hat.shape[1] > 1 else y_hat
    count = float((pred.double() == y.double()).sum())
    with hints_on_error({"Dimension out of range": BY_SHAPE}):
        out = read(student.accuracy(y_hat, y), what)  # the handle fails a change to an argument
    if out == count:
        return
    for message, wrong in accuracy_mistakes(y_hat, y).items():
        if out == wrong:
            raise AssertionError(f"{what} is {out:g} but should be {count:g}: {message}")
    raise AssertionError(f"{what} is {out:g} but should be {count:g}, the number of examples "
                         "whose predicted class (the argmax of its row of scores) equals its "
                         "label.")


# --------------------------------------------------------------------------- Accumulator

REPLACED = ("acc holds the values of the last add() only: add them to the running sums instead "
            "of replacing them (§3.6.5).")
FRESH_FIX = "start every sum at 0.0, self.data = [0.0] * n"
RESET_FIX = "reset() sets every slot to 0.0, self.data = [0.0] * len(self.data)"
# errors of reading acc[i] after reset(), and the likely cause
RESET_HINTS = {"IndexError": "reset() must keep the n sums, each set back to 0.0 "
               "(self.data = [0.0] * len(self.data)), not empty the list."}
SHARED = ("two Accumulators share their sums: every object is independent. Keep the sums on the "
          "instance (self.data = [0.0] * n in __init__), not in a class attribute or a default "
          "argument that every Accumulator shares (§3.6.5).")


def read(acc, n: int, when: str) -> list[float]:
    """acc[0], ..., acc[n-1] as numbers; a tensor that requires grad fails."""
    values = []
    for i in range(n):
        v = acc[i]
        if isinstance(v, torch.Tensor) and v.requires_grad:
            raise AssertionError(f"acc[{i}] {when} is a tensor that requires grad: store "
                                 "float(value) in add(), or every loss you add keeps its whole "
                                 "autograd graph alive.")
        values.append(expect_float(v, f"acc[{i}] {when}"))
    return values


def check_sums(got: list[float], expected: list[float], when: str) -> None:
    for i, (a, e) in enumerate(zip(got, expected, strict=True)):
        if not math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-9):
            raise AssertionError(f"acc[{i}] {when} is {a:g} but should be {e:g}: add(*args) "
                                 "adds args[i] to the i-th running sum (§3.6.5).")


def check_added(got: list[float], added: list[list[float]], when: str) -> None:
    """The sums `got` after add(*row) for each row of `added`: their running sums, naming an
    Accumulator that keeps only the last add()."""
    total = [0.0] * len(got)
    for row in added:
        total = [t + v for t, v in zip(total, row, strict=True)]
    if len(added) > 1 and got == added[-1] and got != total:
        raise AssertionError(REPLACED)
    check_sums(got, total, when)


def check_own_sums(acc, want: list[float], name: str) -> None:
    """One of two Accumulators alive at once holds the sums of its own add() calls."""
    got = read(acc, len(want), f"of {name} of two Accumulators")
    if got != want:
        raise AssertionError(f"{name} of two Accumulators holds {got} after its own add() "
                             f"calls summed to {want}: {SHARED}")


def check_zeros(acc, n: int, when: str, fix: str) -> None:
    """Every slot of `acc` is the Python float 0.0 (an int 0 fails: expect_exact_float);
    `fix` says how to get there."""
    for i in range(n):
        value = expect_exact_float(acc[i], f"acc[{i}] of {when}", fix)
        if value != 0.0:
            raise AssertionError(f"acc[{i}] of {when} is {value:g}, not 0.0: {fix} (§3.6.5).")


# --------------------------------------------------------------------------- evaluate_accuracy

MEAN_OF_BATCHES = ("that is the mean of the per-batch accuracies, which weighs the smaller last "
                   "batch as much as a full one: sum the correct predictions and the numbers of "
                   "examples over all batches (an Accumulator(2)) and divide at the end "
                   "(§3.6.5).")
EVAL_MODE = ("the net was evaluated in training mode: call net.eval() first, so BatchNorm uses "
             "its running statistics and dropout is off (§3.6.5, §5.6).")
RUNNING_MEAN_CHANGED = ("evaluating changed the BatchNorm layer's running mean: the net ran in "
                        "training mode. Call net.eval() before the loop (§5.6).")
LEFT_IN_EVAL = ("the net was in training mode before evaluate_accuracy and is left in evaluation "
                "mode: remember was_training = net.training and call net.train(was_training) at "
                "the end, or the training that follows runs without dropout and BatchNorm "
                "updates.")
LEFT_IN_TRAIN = ("the net was in evaluation mode before evaluate_accuracy and is left in "
                 "training mode: restore the mode it had (net.train(was_training)), not always "
                 "training mode.")
WITH_GRAPH = ("the net's outputs were computed with autograd recording a graph: run the "
              "evaluation loop inside `with torch.no_grad():`.")


def batches(X: torch.Tensor, y: torch.Tensor, sizes: list[int]) -> list[tuple]:
    """(X, y) cut into consecutive batches of these sizes."""
    out, start = [], 0
    for s in sizes:
        out.append((X[start:start + s], y[start:start + s]))
        start += s
    return out


def expected_fraction(predict, data: list[tuple]) -> tuple[float, dict[str, float]]:
    """The right answer and the usual wrong ones, for `predict(X) -> scores`."""
    counts = [float((predict(X).argmax(1) == y).sum()) for X, y in data]
    sizes = [len(y) for _, y in data]
    right = sum(counts) / sum(sizes)
    wrong = {
        MEAN_OF_BATCHES: sum(c / s for c, s in zip(counts, sizes, strict=True)) / len(data),
        "that is the NUMBER of correct predictions; evaluate_accuracy returns the fraction: "
        "divide by the number of examples (§3.6.5).": sum(counts),
        "the last batch (the smaller one) was left out: every example counts once.":
            sum(counts[:-1]) / max(1, sum(sizes[:-1])),
        "the first batch was left out: iterate over data_iter once and count every batch.":
            sum(counts[1:]) / max(1, sum(sizes[1:])),
    }
    return right, wrong


def check_fraction(out, right: float, wrong: dict[str, float], what: str) -> None:
    out = expect_float(out, what)
    if math.isclose(out, right, rel_tol=1e-6, abs_tol=1e-9):
        return
    for message, value in wrong.items():
        if math.isclose(out, value, rel_tol=1e-6, abs_tol=1e-9):
            raise AssertionError(f"{what} is {out:.6g} but should be {right:.6g}: {message}")
    raise AssertionError(f"{what} is {out:.6g} but should be {right:.6g}, the number of "
                         "correctly classified examples divided by the number of examples.")


def batchnorm_net(seed: int, d: int = 4, q: int = 3) -> torch.nn.Sequential:
    """Flatten -> Linear -> BatchNorm1d whose running statistics differ from any batch's, so
    train mode (batch statistics) and eval mode (running statistics) predict differently."""
    g = torch.Generator().manual_seed(seed)
    lin, bn = torch.nn.Linear(d, q), torch.nn.BatchNorm1d(q)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(q, d, generator=g))
        lin.bias.zero_()
        bn.running_mean.copy_(torch.randn(q, generator=g) * 2)
        bn.running_var.copy_(torch.rand(q, generator=g) * 4 + 0.25)
        bn.weight.copy_(torch.rand(q, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(q, generator=g))
    return torch.nn.Sequential(torch.nn.Flatten(), lin, bn)


def batchnorm_data(seed: int, sizes=(5, 5, 3), d: int = 4, q: int = 3) -> list[tuple]:
    g = torch.Generator().manual_seed(seed + 1)
    n = sum(sizes)
    return batches(torch.randn(n, 1, d, generator=g) * 2, torch.randint(0, q, (n,), generator=g),
                   list(sizes))


def local_accuracy(net: torch.nn.Module, data: list[tuple], train: bool) -> float:
    """The fraction `net` gets right in training mode or in evaluation mode (net is changed)."""
    net.train(train)
    with torch.no_grad():
        right = sum(float((net(X).argmax(1) == y).sum()) for X, y in data)
    return right / sum(len(y) for _, y in data)


def check_eval_mode(student, seed: int):
    """evaluate_accuracy of `batchnorm_net(seed)`, handed over in training mode, on
    `batchnorm_data(seed)`: the eval-mode fraction, naming a train-mode evaluation, and the
    BatchNorm layer's running mean unchanged. Returns the net (in the worker)."""
    local = batchnorm_net(seed)
    data_iter = batchnorm_data(seed)
    right = local_accuracy(local, data_iter, train=False)
    in_train_mode = local_accuracy(batchnorm_net(seed), data_iter, train=True)
    net = student.remote(torch.nn.Sequential, *batchnorm_net(seed))
    net.train()
    _, wrong = expected_fraction(lambda X: local.eval()(X), data_iter)
    out = student.evaluate_accuracy(net, data_iter)
    check_fraction(out, right, {EVAL_MODE: in_train_mode, **wrong}, "evaluate_accuracy")
    stats = net[2].running_mean
    if not torch.equal(stats, local[2].running_mean):
        raise AssertionError(RUNNING_MEAN_CHANGED)
    return net


def check_mode_restored(training: tuple[bool, ...], mode: str) -> None:
    """A net's and its layers' `training` flags after evaluate_accuracy, for a net that was
    in `mode` ("train" or "eval") before."""
    if mode == "train" and not all(training):
        raise AssertionError(LEFT_IN_EVAL)
    if mode == "eval" and any(training):
        raise AssertionError(LEFT_IN_TRAIN)


def check_no_graph(student, net_seed: int, data_seed: int) -> None:
    """evaluate_accuracy of a Linear net (`batchnorm_net(net_seed)`'s) on
    `batchnorm_data(data_seed)`: the right fraction, and scores computed without a graph (a
    forward pre-hook of the net's last layer, an Identity, keeps what it is given)."""
    lin = batchnorm_net(net_seed)[1]  # a Linear(4, 3) with seeded weights
    net = student.remote(torch.nn.Sequential, torch.nn.Flatten(), lin, torch.nn.Identity())
    store = student.remote(weakref.WeakKeyDictionary)
    last = net[2]
    last.register_forward_pre_hook(student.remote(functools.partial, operator.setitem, store))
    data_iter = batchnorm_data(data_seed)
    right, wrong = expected_fraction(lambda X: lin(X.reshape(len(X), -1)), data_iter)
    check_fraction(student.evaluate_accuracy(net, data_iter), right, wrong, "evaluate_accuracy")
    (scores,) = store[last]
    if scores.requires_grad:
        raise AssertionError(WITH_GRAPH)

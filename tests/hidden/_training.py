"""What the hidden tests of mlp and gpu_training share: small nets and batches the grader
knows, the SGD steps a training loop must take (repeated here), the checks of a returned
history, and what they measure themselves when a net is trained on MNIST, instead of trusting
the history the submission returns.

train_mlp and train_gpu take the same steps and report the same history; the tests check
them with the same rules (one tolerance, one reading of "ambiguous" predictions, one set of
recognised mistakes), and only the words that name the D2L function and section differ.

The MNIST run: the worker trains on MNIST built there by torchdrill.data (the real images
when the data root has them, generated digits otherwise). The grader builds its own copy of
the same data here, from the same files or the same seed, and never reads data back from the
worker:

- the training loader is a fixed order of at most MAX_TRAIN training images, the same in
  every epoch and however often it is iterated (its own generator: no draw from torch's
  global one), so the grader can repeat the first epoch's SGD steps;
- the test accuracy of the returned net is recomputed here, with the grader's own model of
  the same architecture loaded from the net's state_dict, on the grader's copy of the test
  set: the history's last test accuracy is measured on that same net after the last epoch,
  so the two agree up to rounding (examples whose two top logits are within rounding are
  allowed either way);
- the first epoch's training loss is recomputed from the net's initial state: a correct
  loop takes the same steps up to float rounding (accumulated over the epoch's steps), and
  reports either the mean loss during the epoch or the loss after it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import warnings

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Subset

import torchdrill.data
from grader.checks import assert_close, max_abs
from grader.plugin import record_curve
from tests.hidden._conventions import expect_exact_float
from tests.hidden._probes import forward_log, logged_calls

MAX_TRAIN = 8000
ORDER_SEED = 0
# relative difference allowed between the grader's first-epoch loss and the history's: the
# two runs round differently (threads, loss formulas, accumulation), and 125 SGD steps carry
# those differences forward; a history that was not measured is off by far more
LOSS_RTOL = 1e-3
MEASURED = ("does not match the net's measured accuracy")


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


@functools.cache
def grader_mnist() -> dict:
    """The grader's own copy: source, the training order, the ordered training tensors and
    the test tensors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torchdrill.data.DataFallbackWarning)
        train_iter, test_iter, source = torchdrill.data.load_mnist_or_synthetic(64)
    train, test = train_iter.dataset, test_iter.dataset
    n = len(train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(ORDER_SEED))
    order = order[:min(n, MAX_TRAIN)].tolist()

    def stacked(dataset):
        Xs, ys = zip(*DataLoader(dataset, batch_size=1000), strict=True)
        return torch.cat(Xs), torch.cat(ys)

    X_train, y_train = stacked(Subset(train, order))
    X_test, y_test = stacked(test)
    return {"source": source, "train_len": n, "test_len": len(test), "order": order,
            "train": (X_train, y_train), "test": (X_test, y_test)}


def worker_mnist(student, batch_size: int):
    """(train_iter, test_iter, source) built in the worker, the same data as grader_mnist()
    in the same order."""
    mine = grader_mnist()
    train_iter, test_iter, source = student.remote(torchdrill.data.load_mnist_or_synthetic,
                                                   batch_size)
    if source != mine["source"] or len(train_iter.dataset) != mine["train_len"]:
        raise AssertionError(  # the grading machine's fault, not the submission's
            f"the grader and its worker see different MNIST data ({mine['source']} here, "
            f"{source} in the worker): check that TORCHDRILL_DATA is readable by the worker.")
    subset = student.remote(Subset, train_iter.dataset, mine["order"])
    train = student.remote(DataLoader, subset, batch_size, shuffle=False,
                           generator=torch.Generator())
    test = student.remote(DataLoader, test_iter.dataset, batch_size, shuffle=False,
                          generator=torch.Generator())
    return train, test, source


def chunks(X: torch.Tensor, y: torch.Tensor, batch_size: int):
    return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def measured_accuracy(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 64) -> tuple[float, float]:
    """(accuracy of `net` in evaluation mode, fraction of examples rounding may decide)."""
    net.eval()
    right, unsure = count_correct(net, chunks(X, y, batch_size))
    return right / len(y), unsure / len(y)


def first_epoch_losses(net: torch.nn.Module, lr: float, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy per example during the first epoch, after it) of SGD with `lr` from
    `net`'s state on the grader's training data, in the worker's order."""
    net = copy.deepcopy(net)
    X, y = grader_mnist()["train"]
    trainer = PlainSGD(net.parameters(), lr)
    net.train()
    during = 0.0
    for Xb, yb in chunks(X, y, batch_size):
        loss = F.cross_entropy(net(Xb), yb)
        trainer.zero_grad()
        loss.backward()
        trainer.step()
        during += loss.item() * len(yb)
    net.eval()
    with torch.no_grad():
        after = sum(float(F.cross_entropy(net(Xb), yb, reduction="sum"))
                    for Xb, yb in chunks(X, y, batch_size))
    return during / len(y), after / len(y)


def check_learning(what: str, history: dict, template: torch.nn.Module, init: dict,
                   final: dict, lr: float, batch_size: int, source: str, *,
                   bar_mnist: float = 0.85, bar_synthetic: float = 0.6) -> None:
    """Two epochs of training on worker_mnist() against what the grader measures itself.
    `history` is already checked to be floats, one per epoch; `template` is a grader-side
    model of the net's architecture, `init` the state training started from and `final` the
    trained net's state_dict."""
    X_test, y_test = grader_mnist()["test"]
    acc, unsure = measured_accuracy(with_state(template, final), X_test, y_test, batch_size)
    record_learning_curve(what, history, template, init, lr, batch_size, source)
    reported = history["test_acc"][-1]
    if abs(reported - acc) > 1e-6 + unsure:
        raise AssertionError(
            f"history['test_acc'][-1] is {reported:.4f}, but the net {what} returned "
            f"classifies {acc:.4f} of the test set correctly (measured by the grader from the "
            f"net's parameters): the history {MEASURED}. Report what you measure: after each "
            "epoch, the fraction of test_iter's examples the trained net classifies "
            "correctly.")
    bar = bar_synthetic if source == "synthetic" else bar_mnist
    data = "generated digits" if source == "synthetic" else "MNIST"
    if acc < bar:
        raise AssertionError(
            f"after 2 epochs on {data} the net {what} returned classifies {acc:.3f} of the "
            f"test set correctly, below {bar}: a correct training loop gets far above it. "
            "Check the loss (mean cross-entropy of the logits), zero_grad before backward, "
            "and the step order.")
    during, after = first_epoch_losses(with_state(template, init), lr, batch_size)
    loss = history["train_loss"][0]
    if not any(math.isclose(loss, want, rel_tol=LOSS_RTOL) for want in (during, after)):
        raise AssertionError(
            f"history['train_loss'][0] is {loss:.5g}, but the first epoch's SGD steps from "
            f"the net's initial parameters give a mean cross-entropy of {during:.5g} per "
            f"training example (measured by the grader; {after:.5g} after the epoch): either "
            "the steps differ from one SGD step with lr on each batch's mean cross-entropy, "
            "or the history does not match the training. Report the mean loss per example "
            "that the epoch's batches had.")
    if not history["train_loss"][1] < history["train_loss"][0]:
        raise AssertionError(f"the training loss went up from epoch 1 to 2 "
                             f"({history['train_loss']}): is each step descending the "
                             "gradient of this batch's loss (zero_grad, backward, step)?")


def record_learning_curve(what: str, history: dict, template: torch.nn.Module, init: dict,
                          lr: float, batch_size: int, source: str) -> None:
    """The history `what` reported beside the reference's training from the same initial
    state on the same data (computed here, in the grader), for report.html's plot."""
    epochs = len(history["test_acc"])
    facts = reference_curve(template, init, lr, batch_size, epochs)
    data = "generated digits" if source == "synthetic" else "MNIST"
    record_curve(f"{what} on {data}, {epochs} epochs, lr {lr}", "epoch",
                 list(range(1, epochs + 1)),
                 [("test accuracy", history["test_acc"], facts["test_acc"]),
                  ("training loss", history["train_loss"], facts["loss"]),
                  ("training accuracy", history["train_acc"], facts["acc"])])


def state_key(state: dict) -> str:
    """A digest of a state_dict's names and values (a correct init is the same every time)."""
    h = hashlib.sha256()
    for name, value in sorted(state.items()):
        h.update(name.encode() + value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


REFERENCE_CURVES: dict[tuple, dict] = {}  # a class's correct inits are one state per test


def reference_curve(template: torch.nn.Module, init: dict, lr: float, batch_size: int,
                    epochs: int) -> dict:
    """reference_training's facts on the grader's MNIST from `init`, computed once per
    initial state and setting in this process."""
    key = (state_key(init), lr, batch_size, epochs)
    if key not in REFERENCE_CURVES:
        X_train, y_train = grader_mnist()["train"]
        X_test, y_test = grader_mnist()["test"]
        if len(REFERENCE_CURVES) >= 8:
            REFERENCE_CURVES.clear()
        REFERENCE_CURVES[key] = reference_training(
            with_state(template, init), chunks(X_train, y_train, batch_size),
            chunks(X_test, y_test, batch_size), epochs, lr)[1]
    return REFERENCE_CURVES[key]


def with_state(net: torch.nn.Module, state: dict) -> torch.nn.Module:
    net = copy.deepcopy(net)
    net.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return net


# --------------------------------------------------------------------------- nets and batches


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


@st.composite
def training_setups(draw, lrs: tuple[float, ...]):
    """Batches of unequal sizes (the last one smaller, or all equal), 1 to 3 epochs, a
    learning rate from `lrs` and a seed for the net and the data."""
    return {"train_sizes": draw(st.sampled_from([(8, 8, 5), (6, 10), (7,), (4, 4, 4, 3)])),
            "test_sizes": draw(st.sampled_from([(6, 4), (9,), (5, 5, 2)])),
            "num_epochs": draw(st.integers(1, 3)), "lr": draw(st.sampled_from(lrs)),
            "seed": draw(st.integers(0, 2**16))}


# --------------------------------------------------------------------------- the history

HISTORY_FLOAT = ("append float(...) of each epoch's metric to the history, not a tensor (a "
                 "kept loss tensor holds its whole autograd graph)")


def expect_history(history, num_epochs: int, what: str) -> dict[str, list[float]]:
    """The history `what` returned, checked to be {train_loss, train_acc, test_acc: one
    Python float per epoch}, the accuracies in [0, 1]."""
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


# --------------------------------------------------------------------------- modes


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

"""What the hidden tests of mlp and gpu_training share: small nets and batches the grader
knows, the SGD steps a training loop must take (repeated here), the checks of a returned
history, and what they measure themselves when a net is trained on MNIST, instead of trusting
the history the submission returns. The small nets, the history's and the modes' checks live
in tests/public/_mistakes_mlp.py, which mlp's public tests use too, so a mistake reads the
same in both suites; the SGD steps (train_mlp's answer) in tests/hidden/_oracles_mlp.py. Both
are imported here for the hidden tests.

train_mlp and train_gpu take the same steps and report the same history; the tests check
them with the same rules (one tolerance, one reading of "ambiguous" predictions, one set of
recognised mistakes), and only the words that name the D2L function and section differ.

The MNIST run: the worker trains on MNIST built there by torchdrill.data (the real images
when the data root has them, generated digits otherwise). The grader builds its own copy of
the same data here, from the same files or the same seed, and never reads data back from the
worker (the checks of the history, and of its last test accuracy against the one measured
here, are the public tests' own: tests/public/_mistakes_mlp.py, tests/public/_conventions.py):

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
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Subset

import torchdrill.data
from grader.plugin import record_curve
from tests.hidden._oracles_mlp import (  # noqa: F401 (the hidden tests import them from here)
    PlainSGD,
    expect_trained_state,
    reference_training,
)
from tests.public._mistakes_mlp import (  # noqa: F401 (the hidden tests import them from here)
    batches,
    check_evaluation_modes,
    check_reported_accuracy,
    check_test_acc,
    check_train_acc,
    check_train_loss,
    count_correct,
    expect_history,
    make_net,
    mode_probe_net,
    training_mode_message,
    with_state,
)

MAX_TRAIN = 8000
ORDER_SEED = 0
# the learns-MNIST tests of train_mlp and train_gpu (`check_learning`): their nets, their
# batches, their epochs, which the reference's curves they prefetch must share
LEARNING_WIDTHS, LEARNING_BATCH, LEARNING_EPOCHS = (784, 128, 10), 64, 2
# relative difference allowed between the grader's first-epoch loss and the history's: the
# two runs round differently (threads, loss formulas, accumulation), and 125 SGD steps carry
# those differences forward; a history that was not measured is off by far more
LOSS_RTOL = 1e-3


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


def check_learning(what: str, history: dict, template: torch.nn.Module, init: dict,
                   final: dict, lr: float, batch_size: int, source: str, *,
                   bar_mnist: float = 0.85, bar_synthetic: float = 0.6) -> None:
    """Two epochs of training on worker_mnist() against what the grader measures itself.
    `history` is already checked to be floats, one per epoch; `template` is a grader-side
    model of the net's architecture, `init` the state training started from and `final` the
    trained net's state_dict."""
    X_test, y_test = grader_mnist()["test"]
    facts = record_learning_curve(what, history, template, init, lr, batch_size, source)
    acc = check_reported_accuracy(history, template, final, chunks(X_test, y_test, batch_size),
                                  what)
    bar = bar_synthetic if source == "synthetic" else bar_mnist
    data = "generated digits" if source == "synthetic" else "MNIST"
    if acc < bar:
        raise AssertionError(
            f"after 2 epochs on {data} the net {what} returned classifies {acc:.3f} of the "
            f"test set correctly, below {bar}: a correct training loop gets far above it. "
            "Check the loss (mean cross-entropy of the logits), zero_grad before backward, "
            "and the step order.")
    during, after = facts["loss"][0], facts["loss_after"][0]  # the reference's first epoch
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
                          lr: float, batch_size: int, source: str) -> dict:
    """The history `what` reported beside the reference's training from the same initial
    state on the same data (computed here, in the grader), for report.html's plot; returns
    the reference's facts (`reference_training`)."""
    epochs = len(history["test_acc"])
    facts = reference_curve(template, init, lr, batch_size, epochs)
    data = "generated digits" if source == "synthetic" else "MNIST"
    record_curve(f"{what} on {data}, {epochs} epochs, lr {lr}", "epoch",
                 list(range(1, epochs + 1)),
                 [("test accuracy", history["test_acc"], facts["test_acc"]),
                  ("training loss", history["train_loss"], facts["loss"]),
                  ("training accuracy", history["train_acc"], facts["acc"])])
    return facts


def state_key(state: dict) -> str:
    """A digest of a state_dict's names and values (a correct init is the same every time)."""
    h = hashlib.sha256()
    for name, value in sorted(state.items()):
        h.update(name.encode() + value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


REFERENCE_CURVES: dict[tuple, dict] = {}  # a class's correct inits are one state per test


def xavier_init_(net: torch.nn.Module) -> torch.nn.Module:
    """train_gpu's initialisation, in place, drawn as the reference draws it from torch's
    generator: `nn.init.xavier_uniform_` on each Linear and Conv2d weight in module order
    (`net.apply`), biases as they were."""
    def init_weights(layer: torch.nn.Module) -> None:
        if type(layer) in (torch.nn.Linear, torch.nn.Conv2d):
            torch.nn.init.xavier_uniform_(layer.weight)

    return net.apply(init_weights)


def xavier_state(template: torch.nn.Module, seed: int) -> dict:
    """The state `template` gets from train_gpu's initialisation after
    torch.manual_seed(seed) (`xavier_init_`)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return xavier_init_(copy.deepcopy(template)).state_dict()


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


# --------------------------------------------------------------------------- the SGD steps


@st.composite
def training_setups(draw, lrs: tuple[float, ...]):
    """Batches of unequal sizes (the last one smaller, or all equal), 1 to 3 epochs, a
    learning rate from `lrs` and a seed for the net and the data."""
    return {"train_sizes": draw(st.sampled_from([(8, 8, 5), (6, 10), (7,), (4, 4, 4, 3)])),
            "test_sizes": draw(st.sampled_from([(6, 4), (9,), (5, 5, 2)])),
            "num_epochs": draw(st.integers(1, 3)), "lr": draw(st.sampled_from(lrs)),
            "seed": draw(st.integers(0, 2**16))}

"""Checks of the conventions every topic shares (the course's list of conventions): a `-> float`
is a Python float, data iterators are any iterable of (X, y) batches, inputs may be
non-contiguous, a callable may be a custom torch.autograd.Function, two objects share nothing,
and a training history reports what the trained net measures. The public tests of several
topics use them, and so do the instructor's hidden tests, so a convention broken anywhere is
named with the same words.

`expect_*` and `check_*` functions raise an AssertionError that names the mistake; the
`*_HINTS` dictionaries are for `grader.checks.hints_on_error`: an error your code raised whose
message contains a key gets the value added as its likely cause.
"""

from __future__ import annotations

from typing import Any

import torch

from grader.checks import RecognisedMistake, expect_python_float
from torchdrill.callables import ONE_SHOT_READ_AGAIN

# --------------------------------------------------------------------------- Python floats


def expect_exact_float(value: Any, what: str, fix: str = "convert it with float(...)") -> float:
    """A contract's `-> float`: a Python float, never a 0-d tensor (expect_python_float says
    why) nor an int. `grader.checks.expect_python_float` accepts an int; the contract does
    not: a count returned as an int (`.item()` of an int64 sum) is not D2L's float(...)."""
    number = expect_python_float(value, what, fix)
    if not isinstance(value, float):
        raise AssertionError(
            f"{what} is the int {value!r}, but the contract says a Python float (as D2L's "
            f"float(...)), not an int (`.item()` of an integer tensor gives an int): {fix}.")
    return number


# --------------------------------------------------------------------------- data iterators

# Errors torch or Python raise inside student code when it treats a data iterator as more
# than an iterable of (X, y) batches, and what the student most likely did.
DATA_ITERATOR_HINTS = {
    ONE_SHOT_READ_AGAIN: "data_iter was read twice (a first pass to count, then the loop): "
    "evaluation functions read their data once",
    "has no len()": "data_iter may be any iterable of (X, y) batches, a generator included, "
    "which has no len(): count the examples as you go, with y.numel()",
    "has no attribute 'dataset'": "data_iter may be any iterable of (X, y) batches, not only a "
    "DataLoader: count the examples as you go, with y.numel(), never len(loader.dataset)",
    "division by zero": "an epoch (or an evaluation) saw no batch at all: was the data read "
    "up front, or the same one-shot iterator reused across epochs? Training data is "
    "re-iterable: loop over it afresh every epoch (for X, y in train_iter)",
}


# --------------------------------------------------------------------------- layouts

# What torch raises inside student code that assumed a contiguous input, and why: inputs may be
# transposed, strided or at a storage offset.
NON_CONTIGUOUS_HINTS = {
    "view size is not compatible": "the input may be non-contiguous (transposed, strided, at a "
    "storage offset), and .view(...) needs contiguous memory: use .reshape(...), which copies "
    "only when it must",
}


# --------------------------------------------------------------------------- custom Functions

# What torch.func raises for a custom torch.autograd.Function without setup_context, and why:
# "by autograd" means torch.autograd, which differentiates any Function.
CUSTOM_FUNCTION_HINTS = {
    "functorch transforms": "f may be a custom torch.autograd.Function (the course's "
    "conventions), which torch.func transforms (grad, vjp, jacrev) refuse: differentiate by "
    "autograd, y.backward() or torch.autograd.grad(y, x), which support it",
}


# --------------------------------------------------------------------------- independent objects


def expect_independent(first, second, what: str, fix: str) -> None:
    """Two objects a line built (`first`, `second`: nets or layers, left in your code's
    process) share no parameter: loading new values into every parameter of `first`
    (load_state_dict), each entry of `second`'s plus 1, leaves `second` as it was. `fix` says
    how to build them apart. (Values that differ from `second`'s whatever they are: an
    earlier test may have left a shared parameter at any value, so a fixed value such as 0.5
    could be the one it already holds.)"""
    before = {k: v.detach().clone() for k, v in second.state_dict().items()}
    first.load_state_dict({k: v + 1 for k, v in before.items()})
    after = second.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    if changed:
        mistake = (f"the two share their layers (or parameters), but every object is "
                   f"independent. {fix}")
        raise RecognisedMistake(f"setting every parameter of one {what} to new values "
                                f"(load_state_dict) changed another's {changed[0]!r}: "
                                f"{mistake}", mistake)


# --------------------------------------------------------------------------- training histories

MEASURED = "does not match the net's measured accuracy"


def check_measured_accuracy(reported: float, measured: float, unsure: float, what: str, *,
                            per_batch: float | None = None) -> None:
    """A history's last test accuracy (`reported`) against the accuracy the grader measured
    itself from the parameters of the net `what` returned (`measured`, a fraction of the test
    set, `unsure` the fraction of examples rounding may decide either way): the history
    reports what the trained net measures, never numbers made up or measured elsewhere.
    `per_batch`, the plain average of the test batches' accuracies, names that mistake."""
    if abs(reported - measured) <= 1e-6 + unsure:
        return
    if per_batch is not None and abs(reported - per_batch) <= 1e-6 and \
            abs(per_batch - measured) > 1e-6 + unsure:
        raise AssertionError(
            f"history['test_acc'][-1] is {reported:.6g}, the average of the test batches' "
            f"accuracies, but the net {what} returned classifies {measured:.6g} of the test "
            "set correctly: batches differ in size, so count correct predictions over all "
            "test batches and divide by the number of test examples.")
    raise AssertionError(
        f"history['test_acc'][-1] is {reported:.4f}, but the net {what} returned "
        f"classifies {measured:.4f} of the test set correctly (measured by the grader from the "
        f"net's parameters): the history {MEASURED}. Report what you measure: after each "
        "epoch, the fraction of test_iter's examples the trained net classifies "
        "correctly.")

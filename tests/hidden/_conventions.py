"""Checks of the conventions every topic's contract shares (`../shared/curriculum.md`, the top
list): a `-> float` is a Python float, data iterators are any iterable of batches, read once by
evaluation functions, inputs may be non-contiguous, two objects share nothing. The hidden tests
of several topics use them, so one message teaches each convention everywhere;
`tests/kit/convention_matrix.toml` says which test covers which convention for which
function."""

from __future__ import annotations

from typing import Any

import torch

from grader.checks import describe, expect_python_float
from torchdrill import callables as cf
from torchdrill.callables import ONE_SHOT_READ_AGAIN


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


# What torch raises inside student code that assumed a contiguous input, and why: inputs may be
# transposed, strided or at a storage offset.
NON_CONTIGUOUS_HINTS = {
    "view size is not compatible": "the input may be non-contiguous (transposed, strided, at a "
    "storage offset), and .view(...) needs contiguous memory: use .reshape(...), which copies "
    "only when it must",
}


def expect_independent(student, first, second, what: str, fix: str) -> None:
    """Two objects a line built (`first`, `second`: nets or layers, left in the worker) share
    no parameter: setting every parameter of `first` to 0.5 leaves `second` as it was. `fix`
    says how to build them apart."""
    before = second.state_dict()
    student.remote(cf.fill_parameters, first, 0.5)
    after = second.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    if changed:
        raise AssertionError(
            f"setting every parameter of one {what} to 0.5 changed another's {changed[0]!r}: "
            f"the two share their layers (or parameters), but every object is independent. {fix}")


GPU = torch.device("cuda:0")


def expect_on_gpu(value: Any, what: str) -> None:
    """Fail unless every tensor of `value` (a tensor, or a tuple or list of them) is on the GPU,
    where its inputs were: a function keeps the caller's device."""
    for t in value if isinstance(value, tuple | list) else (value,):
        if not isinstance(t, torch.Tensor):
            raise AssertionError(f"{what} should be a tensor, but it is {describe(t)}.")
        if t.device.type != GPU.type:
            raise AssertionError(
                f"{what} is on {t.device}, but its inputs were on {GPU}: a function keeps the "
                "caller's device. Make new tensors where the input is (torch.zeros_like(X), "
                "X.new_zeros(...), torch.arange(n, device=X.device)), not on the default "
                "device.")


# What torch.func raises for a custom torch.autograd.Function without setup_context, and why:
# "by autograd" means torch.autograd, which differentiates any Function.
CUSTOM_FUNCTION_HINTS = {
    "functorch transforms": "f may be a custom torch.autograd.Function (the course's "
    "conventions), which torch.func transforms (grad, vjp, jacrev) refuse: differentiate by "
    "autograd, y.backward() or torch.autograd.grad(y, x), which support it",
}

"""Checks of the conventions every topic's contract shares (`../shared/curriculum.md`, the top
list): a `-> float` is a Python float, data iterators are any iterable of batches, read once by
evaluation functions, inputs may be non-contiguous, two objects share nothing, a function keeps
the caller's device. The hidden tests of several topics use them, so one message teaches each
convention everywhere; `tests/kit/convention_matrix.toml` says which test covers which
convention for which function.

All but the device's checks live in tests/public/_conventions.py, which the public tests use
too (a student sees the same words there); they are imported here for the hidden tests. The
device's checks run only where CUDA exists, so only the hidden tests use them."""

from __future__ import annotations

from typing import Any

import torch

from grader.checks import describe
from tests.public._conventions import (  # noqa: F401 (the hidden tests import them from here)
    CUSTOM_FUNCTION_HINTS,
    DATA_ITERATOR_HINTS,
    NON_CONTIGUOUS_HINTS,
    expect_exact_float,
    expect_independent,
)

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

"""Assertions the course's tests use: each failure message shows both values and, where the
test recognises it, names the mistake the student most likely made (CMU needle style).

Every check runs in the trusted grader on values that came back from the worker, so a
submission cannot influence how a verdict is reached. A failure that names a recognised mistake
raises `RecognisedMistake`, which carries the mistake apart from the rest of the message, so
the report can say it once for every test it cost.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from grader.failures import StudentRaised

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class RecognisedMistake(AssertionError):
    """A failure whose result (or error) a check recognised as a known mistake: the message is
    what the student reads, `mistake` the mistake's own words within it (the same for every
    test that recognises it, whatever the input), which the report groups tests by."""

    def __init__(self, message: str, mistake: str):
        super().__init__(message)
        self.mistake = mistake

    def __reduce__(self) -> tuple[type[RecognisedMistake], tuple[str, str]]:
        # pickled with its mistake, as a copy of the exception must be
        return type(self), (str(self), self.mistake)


def describe(value: Any) -> str:
    """A short, student-readable description of a value (type, shape, dtype)."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if value is None:
        return "None (did you forget to `return` the result?)"
    return f"a {type(value).__name__}"


def tolerance(dtype: torch.dtype, scale: float = 1.0, ulps: float = 64.0) -> float:
    """Absolute tolerance for a correct float computation whose rounding grows with `scale`.

    A correct formula loses about eps * magnitude-of-the-intermediates; `ulps` leaves room for
    every reasonable way of writing it (other reductions, other stable formulas).
    """
    eps = torch.finfo(dtype if dtype in FLOAT_DTYPES else torch.float32).eps
    return ulps * eps * max(1.0, float(scale))


def expect_tensor(
    value: Any,
    what: str,
    *,
    shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Fail with a teaching message unless `value` is a tensor of the given shape/dtype/device."""
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is {describe(value)}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(
            f"{what} has shape {tuple(value.shape)} but should have shape {tuple(shape)}."
        )
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(
            f"{what} has dtype {value.dtype} but should have {dtype}: keep the caller's dtype "
            "(create new tensors with `dtype=X.dtype`, or compute from X)."
        )
    if device is not None and value.device != torch.device(device):
        raise AssertionError(f"{what} is on {value.device} but should be on {device}.")
    return value


def expect_float(value: Any, what: str) -> float:
    """Accept a Python number, a NumPy scalar or a one-element tensor; fail otherwise."""
    if isinstance(value, bool):
        raise AssertionError(f"{what} should be a number, but it is a bool.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    try:
        import numpy as np

        if isinstance(value, np.generic) and value.size == 1:
            return float(value)
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    raise AssertionError(f"{what} should be a number (a float), but it is {describe(value)}.")


def expect_python_float(value: Any, what: str,
                        fix: str = "convert the result with float(...)") -> float:
    """A contract's `-> float` (D2L's `float(...)`): a Python number, never a tensor, whose
    0-d form would keep its device and its autograd graph alive. An int is accepted (it is a
    float's value in every use); a bool is not a number here."""
    if isinstance(value, torch.Tensor):
        raise AssertionError(
            f"{what} is {describe(value)}, but the contract says a Python float (as D2L's "
            f"float(...)), never a 0-d tensor, which also keeps its graph alive: {fix}.")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AssertionError(f"{what} should be a Python float, but it is {describe(value)}: "
                             f"{fix}.")
    return float(value)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _close_mask(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float):
    return torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def is_close(actual: Any, expected: torch.Tensor, atol: float, rtol: float = 0.0) -> bool:
    """True when `actual` is a tensor of `expected`'s shape and every element is close."""
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return False
    a = actual.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    return bool(_close_mask(a, e, atol, rtol).all())


def assert_close(
    actual: Any,
    expected: torch.Tensor,
    what: str,
    *,
    scale: float | None = None,
    atol: float | None = None,
    rtol: float = 0.0,
    check_dtype: bool = True,
    mistakes: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Fail unless `actual` matches the oracle `expected` within a magnitude-aware tolerance.

    `scale` is the magnitude rounding grows with (default: the largest |expected|); `mistakes`
    maps a message to the value a known wrong solution returns, and the first one `actual`
    matches becomes the failure message (`RecognisedMistake`: "<what>: <message>").
    """
    expect_tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        for message, wrong in (mistakes or {}).items():
            if is_close(actual, wrong, atol=_default_atol(actual, wrong, scale, atol)):
                raise RecognisedMistake(f"{what}: {message}", message)
        raise AssertionError(
            f"{what} has shape {tuple(actual.shape)} but should have shape "
            f"{tuple(expected.shape)}."
        )
    if check_dtype and expected.dtype in FLOAT_DTYPES and actual.dtype != expected.dtype:
        raise AssertionError(
            f"{what} has dtype {actual.dtype} but the input was {expected.dtype}: keep the "
            "caller's dtype (no hard-coded float32, no `.float()`)."
        )
    a = actual.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    tol = _default_atol(actual, expected, scale, atol)
    ok = _close_mask(a, e, tol, rtol)
    if bool(ok.all()):
        return
    for message, wrong in (mistakes or {}).items():
        if is_close(a, wrong, atol=tol, rtol=rtol):
            raise RecognisedMistake(f"{what}: {message}", message)
    bad_nan = torch.isnan(a) & ~torch.isnan(e)
    bad_inf = torch.isinf(a) & ~torch.isinf(e)
    if bool(bad_nan.any()):
        idx = _first_index(bad_nan)
        raise AssertionError(
            f"{what} is nan at {idx} where the expected value is {_fmt(e[idx].item())} "
            f"(nan in {int(bad_nan.sum())} of {a.numel()} entries): an overflow or 0/0 "
            "somewhere? Large inputs need a numerically stable formula."
        )
    if bool(bad_inf.any()):
        idx = _first_index(bad_inf)
        raise AssertionError(
            f"{what} is {a[idx].item()} at {idx} where the expected value is "
            f"{_fmt(e[idx].item())}: an overflow (exp of a large number) or log of 0?"
        )
    diff = (a - e).abs().nan_to_num(nan=math.inf)
    idx = _first_index(diff == diff.max())
    raise AssertionError(
        f"{what} is wrong at index {idx}: got {_fmt(a[idx].item())}, expected "
        f"{_fmt(e[idx].item())} (largest difference {_fmt(diff[idx].item())}, tolerance "
        f"{_fmt(tol)}; {int((~ok).sum())} of {a.numel()} entries differ)."
    )


def _default_atol(actual, expected, scale, atol) -> float:
    if atol is not None:
        return atol
    dtype = actual.dtype if isinstance(actual, torch.Tensor) else expected.dtype
    if dtype not in FLOAT_DTYPES:
        dtype = expected.dtype if expected.dtype in FLOAT_DTYPES else torch.float32
    if scale is None:
        finite = expected.detach()[torch.isfinite(expected.detach())]
        scale = float(finite.abs().max()) if finite.numel() else 1.0
    return tolerance(dtype, scale)


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    nz = mask.nonzero()
    return tuple(int(i) for i in nz[0]) if nz.numel() else ()


def assert_unchanged(before: torch.Tensor, after: torch.Tensor, what: str) -> None:
    """Fail when a function modified an argument it must leave alone."""
    if before.shape != after.shape or not torch.equal(
        before.detach().cpu().nan_to_num(), after.detach().cpu().nan_to_num()
    ):
        raise AssertionError(
            f"{what} was modified by your function: compute into a new tensor instead of "
            "changing the argument in place (avoid `X -= ...`, `X.exp_()`, `X[...] = ...`)."
        )


@contextlib.contextmanager
def hints_on_error(hints: Mapping[str, str]) -> Iterator[None]:
    """Turn an error the student's code raised, whose message contains a key of `hints`, into
    a failure that adds the likely cause (its value): `torch`'s own words rarely say which
    line of the exercise is wrong. The likely cause is the failure's recognised mistake."""
    try:
        yield
    except StudentRaised as e:
        for pattern, hint in hints.items():
            if pattern in str(e):
                raise RecognisedMistake(f"{e}\nLikely cause: {hint}", hint) from None
        raise


def in_dtype(mistakes: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Known wrong answers in the student's dtype (so they are compared at its precision)."""
    return {message: wrong.to(dtype) for message, wrong in mistakes.items()}


def max_abs(*tensors: torch.Tensor) -> float:
    """The largest |entry| over all of `tensors` (detached), the scale rounding grows with; 0.0
    when every one is empty. The one rule for a scale: it has no floor of its own because
    `tolerance()` (and so `assert_close(scale=...)`) already floors the scale at 1, and a
    floor here would hide where a product or sum of scales relied on one (write
    `max(1.0, max_abs(...))` there)."""
    return max((float(t.detach().abs().max()) for t in tensors if t.numel()), default=0.0)

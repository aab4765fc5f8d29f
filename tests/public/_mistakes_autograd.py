"""The mistakes the autograd tests recognise (§2.4, §2.5), and the words that name them.

Both the public tests (which you have) and the course's other tests import these, so a mistake
reads the same wherever it is caught. Each `*_mistakes(...)` returns {message: the value that
mistake returns for these inputs}; each `expect_*(...)` or `check_*(...)` fails with the
mistake's message when a result shows it. The oracles here (central differences, autograd in
float64) are the tests' own, computed outside your code.
"""

from __future__ import annotations

import math

import torch

from grader.checks import assert_close, expect_float

FORWARD = ("this is the forward difference (f(x + h) - f(x)) / h; use the central difference "
           "(f(x + h) - f(x - h)) / (2h), whose error shrinks like h**2 (§2.4.1).")
BACKWARD_DIFF = ("this is the backward difference (f(x) - f(x - h)) / h; use the central "
                 "difference (f(x + h) - f(x - h)) / (2h) (§2.4.1).")
NO_HALF = ("this is twice the derivative: divide f(x + h) - f(x - h) by 2h, the distance "
           "between the two points, not by h.")


def _number_close(got: float, want: float, tol: float) -> bool:
    return math.isfinite(got) and abs(got - want) <= tol


def check_number(got, want: float, tol: float, what: str, mistakes: dict[str, float]) -> None:
    """Fail unless the float `got` is within `tol` of `want`; name a recognised mistake."""
    value = expect_float(got, what)
    if _number_close(value, want, tol):
        return
    for message, wrong in mistakes.items():
        if _number_close(value, wrong, tol):
            raise AssertionError(f"{what}: {message}")
    raise AssertionError(f"{what} is {value:.12g}, expected {want:.12g} (difference "
                         f"{abs(value - want):.3g}, tolerance {tol:.3g}).")


# --------------------------------------------------------------------------- numerical_derivative


def derivative_mistakes(f, x: float, h: float) -> dict[str, float]:
    return {FORWARD: (f(x + h) - f(x)) / h, BACKWARD_DIFF: (f(x) - f(x - h)) / h,
            NO_HALF: (f(x + h) - f(x - h)) / h}


# --------------------------------------------------------------------------- numerical_gradient


def central_difference(f, x: torch.Tensor, eps: float, forward: bool = False) -> torch.Tensor:
    """The oracle's own finite differences, one entry at a time, on a copy of x."""
    flat = x.detach().clone().reshape(-1)
    out = torch.empty_like(flat)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(flat.reshape(x.shape)))
        flat[i] = old if forward else old - eps
        minus = float(f(flat.reshape(x.shape)))
        flat[i] = old
        out[i] = (plus - minus) / (eps if forward else 2 * eps)
    return out.reshape(x.shape)


def gradient_mistakes(f, x: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    central = central_difference(f, x, eps)
    return {
        "these are forward differences (f(x + eps e_i) - f(x)) / eps; use central differences "
        "(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) (§2.4.1).": central_difference(
            f, x, eps, forward=True),
        "every entry is twice the partial derivative: divide by 2 eps, not eps.": 2 * central,
        "this is the gradient flattened to 1-D: return a tensor shaped like x "
        "(reshape(x.shape)).": central.reshape(-1),
    }


# --------------------------------------------------------------------------- autograd_gradient


def autograd_oracle(f, x: torch.Tensor) -> torch.Tensor:
    xg = x.detach().double().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xg), xg)
    return g.to(x.dtype)


ACCUMULATES = ("this is the caller's old x.grad plus the gradient: the gradient "
               "accumulates into x.grad. Use a fresh leaf "
               "(x.detach().clone().requires_grad_(True)) or torch.autograd.grad.")


def expect_grad_left_alone(x: torch.Tensor, old_grad: torch.Tensor) -> None:
    """After autograd_gradient(f, x) on an x that requires grad and holds `old_grad` as its
    .grad: both are as they were."""
    if x.grad is None or not torch.equal(x.grad, old_grad):
        raise AssertionError("autograd_gradient changed the caller's x.grad (it accumulates "
                             "into x.grad, or replaced or cleared it): differentiate with "
                             "respect to x.detach().clone().requires_grad_(True).")
    assert x.requires_grad, "autograd_gradient turned off requires_grad on the caller's x."


# ----------------------------------------------------------------- vector_jacobian_product


def jacobian(f, x: torch.Tensor) -> torch.Tensor:
    """J as a matrix (outputs, inputs), in float64."""
    J = torch.autograd.functional.jacobian(f, x.detach().double())
    return J.reshape(-1, x.numel())


def vjp_mistakes(J: torch.Tensor, v: torch.Tensor, shape) -> dict[str, torch.Tensor]:
    """The wrong answers for v^T J, with J (outputs, inputs) in float64 (`jacobian`) and v
    flattened; `shape` is x's."""
    mistakes = {"this is the gradient of y.sum(), i.e. v = ones: the product ignores v. Use "
                "y.backward(v) or torch.autograd.grad(y, x, grad_outputs=v) (§2.5.2).":
                J.sum(0).reshape(shape)}
    if J.shape[0] == J.shape[1]:
        mistakes["this is J v, not v^T J: autograd's backward(v) computes v^T J."] = (
            J @ v).reshape(shape)
    return mistakes


# --------------------------------------------------------------- detached_product_gradient


def detached_mistakes(x: torch.Tensor) -> dict[str, torch.Tensor]:
    expected = x * x
    return {"this is 3 x**2, the gradient of sum(x**3): without detach, autograd "
            "differentiates through u = x * x too. Use u = (x * x).detach() "
            "(§2.5.3).": 3 * expected,
            "this is 2 x, the gradient of sum(x * x); the function is "
            "sum(u * x) with u = (x * x).detach().": 2 * x,
            "this is x, not u = x * x: the gradient of sum(u * x) with respect "
            "to x is u.": x.clone()}


# --------------------------------------------------------------------------- control_flow_f


def control_flow_mistakes(a: torch.Tensor, power: float, positive: bool
                          ) -> dict[str, torch.Tensor]:
    """The usual wrong answers where control_flow_f(a) = power * a (b.sum() > 0, `positive`)
    or 100 * power * a, in a's dtype."""
    a64 = a.double()
    k = power if positive else 100 * power
    if positive:
        mistakes = {"100 * b was returned although b.sum() > 0: the branches are swapped "
                    "(return b if b.sum() > 0 else 100 * b) (§2.5.4).": a64 * 100 * power}
    else:
        mistakes = {"b was returned although b.sum() <= 0: then the result is 100 * b (the "
                    "else branch is missing or swapped) (§2.5.4).": a64 * power}
    if float(a64.norm()) >= 1000:
        mistakes["b starts at a, not at 2a: the function begins with b = 2 * a (§2.5.4)."] = (
            a64 * k / 2)
    return {m: w.to(a.dtype) for m, w in mistakes.items()}


NORM_BOUNDARY = ("b.norm() lands exactly on 1000 here, and the loop doubles b only while "
                 "b.norm() < 1000: at 1000 it stops. A `<=` in the while condition doubles once "
                 "too often (§2.5.4).")
SUM_BOUNDARY = ("b.sum() is exactly 0 here, and the function returns b only if b.sum() > 0, "
                "otherwise 100 * b. A `>=` in the if returns b when the sum is 0 (§2.5.4).")


def exact_control_flow_factor(a: torch.Tensor) -> float:
    """k with control_flow_f(a) = k * a, for inputs whose norms and sums are exact."""
    b = a.double() * 2
    k = 2.0
    while float(b.norm()) < 1000:
        b, k = b * 2, k * 2
    return k if float(b.sum()) > 0 else 100 * k


def check_control_flow_at(student, value, wrong: float, message: str) -> None:
    """control_flow_f and its gradient at one boundary input, float32 and float64; `wrong` is
    the factor the mistake `message` names gives instead of the right one."""
    for dtype in (torch.float32, torch.float64):
        a = torch.tensor(value, dtype=dtype)
        k = exact_control_flow_factor(a)
        what = f"control_flow_f({value!r}) in {str(dtype).removeprefix('torch.')}"
        assert_close(student.control_flow_f(a), a.double().mul(k).to(dtype), what,
                     mistakes={message: a.double().mul(k * wrong).to(dtype)})
        v = torch.ones_like(a)
        assert_close(student.gradient("control_flow_f", a, grad_output=v),
                     v.double().mul(k).to(dtype), f"the gradient of {what}",
                     mistakes={message: v.double().mul(k * wrong).to(dtype)})


# --------------------------------------------------------------------------- gradient_check


def expect_small_check(got: float, what: str) -> None:
    """gradient_check of a function whose gradient is right is near 0."""
    if not (0 <= got < 1e-6):
        raise AssertionError(
            f"{what} is {got:.3g} for a function whose gradient is right: "
            "expected a relative error near 0 (use central differences, and divide "
            "|g_auto - g_num| by max(|g_auto|, |g_num|)).")


def expect_half_gradient_error(got: float) -> None:
    """gradient_check where autograd's gradient is half the true one (entries 1.5 and up)."""
    if not 0.3 <= got <= 1.01:
        raise AssertionError(
            f"gradient_check is {got:.4g} when autograd's gradient is half the true one: "
            "expected the relative error |g_auto - g_num| / max(|g_auto|, |g_num|) = 0.5"
            + (" (an absolute difference is not a relative error)." if got > 1.01 else "."))


def expect_largest_error(got: float, n: int) -> None:
    """gradient_check where one of `n` partial derivatives is twice the true one (entries
    1.5 and up): that entry's relative error, the largest."""
    if got < 0.3:
        raise AssertionError(
            f"gradient_check is {got:.4g} when one of {n} partial derivatives is off by "
            "a factor 2: report the largest relative error over the entries, not the mean or a "
            "norm of all of them.")
    if got > 1.01:
        raise AssertionError(f"gradient_check is {got:.4g}: a relative error "
                             "|g_auto - g_num| / max(|g_auto|, |g_num|) is at most 1 here "
                             "(an absolute difference is not a relative error).")


def contract_relative_error(f, x: torch.Tensor, eps: float) -> float:
    """The contract's largest relative error, with the oracle's own central differences."""
    g_auto = autograd_oracle(f, x)
    g_num = central_difference(f, x, eps)
    denom = torch.maximum(g_auto.abs(), g_num.abs()).clamp_min(1e-12)
    return float(((g_auto - g_num).abs() / denom).max())


def expect_eps_used(got: float, expected: float, default: float, what: str,
                    eps: float) -> None:
    """gradient_check(f, x, eps=eps) is `got`; `expected` is the contract's relative error with
    that eps, `default` the one with eps = 1e-6. Accepted: 0.4 to 1.1 times `expected` (a
    denominator |g_auto| + |g_num|, about twice the contract's, is still accepted)."""
    if 0.4 * expected <= got <= 1.1 * expected:
        return
    if got <= max(100 * default, 1e-3 * expected):
        raise AssertionError(
            f"{what} is {got:.3g}, but with eps = {eps!r} the "
            f"central differences are off by a relative {expected:.3g}: gradient_check ignores "
            "its eps. Pass it on: numerical_gradient(f, x, eps).")
    raise AssertionError(
        f"{what} is {got:.3g}, expected {expected:.3g}: the "
        "largest |g_auto - g_num| / max(|g_auto|, |g_num|), with g_num the central differences "
        "of step eps.")


def expect_not_a_tensor_of_errors(got) -> None:
    if isinstance(got, torch.Tensor) and got.numel() > 1:
        raise AssertionError("gradient_check returned a tensor of errors: return the largest "
                             "one as a float (float(errors.max())).")

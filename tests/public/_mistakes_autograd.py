"""The mistakes the autograd tests recognise (§2.4, §2.5), and the words that name them.

Both the public tests (which you have) and the course's other tests import these, so a mistake
reads the same wherever it is caught. Each `expect_*(...)` or `check_*(...)` fails with the
mistake's message when a result shows it. For the public tests' fixed inputs, the right answers
and what each mistake gives are written out below as numbers (a table per test, `*_EXAMPLE`),
worked out in float64 (central differences, autograd) outside your code; the instructor's kit
checks every number against the hidden tests' oracles.
"""

from __future__ import annotations

import math

import torch

from grader.checks import assert_close, expect_float
from torchdrill import callables

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


# --------------------------------------------------------------------------- numerical_gradient


GRADIENT_FORWARD = ("these are forward differences (f(x + eps e_i) - f(x)) / eps; use central "
                    "differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) (§2.4.1).")
GRADIENT_TWICE = "every entry is twice the partial derivative: divide by 2 eps, not eps."
GRADIENT_FLAT = ("this is the gradient flattened to 1-D: return a tensor shaped like x "
                 "(reshape(x.shape)).")


# --------------------------------------------------------------------------- autograd_gradient


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


VJP_IGNORES_V = ("this is the gradient of y.sum(), i.e. v = ones: the product ignores v. Use "
                 "y.backward(v) or torch.autograd.grad(y, x, grad_outputs=v) (§2.5.2).")
VJP_J_V = "this is J v, not v^T J: autograd's backward(v) computes v^T J."


# --------------------------------------------------------------- detached_product_gradient


DETACHED_NOT_DETACHED = ("this is 3 x**2, the gradient of sum(x**3): without detach, autograd "
                         "differentiates through u = x * x too. Use u = (x * x).detach() "
                         "(§2.5.3).")
DETACHED_TWO_X = ("this is 2 x, the gradient of sum(x * x); the function is sum(u * x) with "
                  "u = (x * x).detach().")
DETACHED_X = ("this is x, not u = x * x: the gradient of sum(u * x) with respect to x is u.")


# --------------------------------------------------------------------------- control_flow_f


CONTROL_SWAPPED = ("100 * b was returned although b.sum() > 0: the branches are swapped "
                   "(return b if b.sum() > 0 else 100 * b) (§2.5.4).")
CONTROL_ELSE_MISSING = ("b was returned although b.sum() <= 0: then the result is 100 * b (the "
                        "else branch is missing or swapped) (§2.5.4).")
CONTROL_B_STARTS_AT_A = "b starts at a, not at 2a: the function begins with b = 2 * a (§2.5.4)."
NORM_BOUNDARY = ("b.norm() lands exactly on 1000 here, and the loop doubles b only while "
                 "b.norm() < 1000: at 1000 it stops. A `<=` in the while condition doubles once "
                 "too often (§2.5.4).")
SUM_BOUNDARY = ("b.sum() is exactly 0 here, and the function returns b only if b.sum() > 0, "
                "otherwise 100 * b. A `>=` in the if returns b when the sum is 0 (§2.5.4).")


def check_control_flow_at(student, value, k: float, mistakes: dict[str, float]) -> None:
    """control_flow_f and its gradient at one boundary input, float32 and float64: the result
    is k * a; `mistakes` gives the factor each named mistake gives instead."""
    for dtype in (torch.float32, torch.float64):
        a = torch.tensor(value, dtype=dtype)
        what = f"control_flow_f({value!r}) in {str(dtype).removeprefix('torch.')}"
        assert_close(student.control_flow_f(a), a.double().mul(k).to(dtype), what,
                     mistakes={m: a.double().mul(w).to(dtype) for m, w in mistakes.items()})
        v = torch.ones_like(a)
        assert_close(student.gradient("control_flow_f", a, grad_output=v),
                     v.double().mul(k).to(dtype), f"the gradient of {what}",
                     mistakes={m: v.double().mul(w).to(dtype) for m, w in mistakes.items()})


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


# --------------------------------------------------------------------------- the public tests
# A table per public test: its inputs, the right answer and, under "mistakes", what each mistake
# the test names gives for those inputs, in the order a test tries them (the first match is the
# one named), in float64 (or rounded once to float32 where the inputs are), written with the
# digits that round to it. A mistake that gives the right answer for these inputs (J v for a
# symmetric J) is listed all the same: other inputs tell it apart.

F64 = torch.float64

# f(x) = 3x**2 - 4x at x = 1 with the default h = 1e-5: the derivative 6x - 4 = 2, to 1e-6
NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE = {
    "f": callables.d2l_quadratic, "x": 1.0, "h": 1e-5, "expected": 2.0, "tol": 1e-6,
    "mistakes": {FORWARD: 2.0000300000155846, BACKWARD_DIFF: 1.999969999966211,
                 NO_HALF: 3.9999999999817955},
}

# exp at 0 with h = 0.01: the central difference itself, (e**0.01 - e**-0.01) / 0.02, to 1e-9
NUMERICAL_DERIVATIVE_CENTRAL_EXAMPLE = {
    "f": callables.exp, "x": 0.0, "h": 0.01, "expected": 1.0000166667499921, "tol": 1e-9,
    "mistakes": {FORWARD: 1.005016708416795, BACKWARD_DIFF: 0.9950166250831893,
                 NO_HALF: 2.0000333334999842},
}

# exp at 1 with the default h = 1e-5: e, to 1e-8
NUMERICAL_DERIVATIVE_E_EXAMPLE = {
    "f": callables.exp, "x": 1.0, "h": 1e-5, "expected": math.e, "tol": 1e-8,
    "mistakes": {FORWARD: 2.7182954199567173, BACKWARD_DIFF: 2.7182682370785467,
                 NO_HALF: 5.436563657035264},
}

# the gradient of sum(x**2) is 2x, with the default eps = 1e-6
NUMERICAL_GRADIENT_SQUARES_EXAMPLE = {
    "f": callables.sum_of_squares,
    "x": torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.1, -0.7]], dtype=F64),
    "eps": 1e-6,
    "atol": 1e-6,
    "expected": torch.tensor([[2.0, -4.0, 1.0], [6.0, 0.2, -1.4]], dtype=F64),
    "mistakes": {
        GRADIENT_FORWARD: torch.tensor([[2.0000010003684565, -3.9999989986938544,
                                         1.0000009993405001],
                                        [6.000001000927568, 0.20000100064976323,
                                         -1.3999990002844243]], dtype=F64),
        GRADIENT_TWICE: torch.tensor([[4.000000000559112, -7.999999999341867, 1.999999998503199],
                                      [12.000000001677336, 0.4000000011217253,
                                       -2.8000000007466497]], dtype=F64),
        GRADIENT_FLAT: torch.tensor([2.000000000279556, -3.9999999996709334, 0.9999999992515995,
                                     6.000000000838668, 0.20000000056086265,
                                     -1.4000000003733248], dtype=F64),
    },
}

# the gradient of sum(x**3) is 3 x**2; central differences of eps = 1e-3 are off by eps**2
NUMERICAL_GRADIENT_CUBES_EXAMPLE = {
    "f": callables.sum_of_cubes,
    "x": torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.75, 1.25]], dtype=F64),
    "eps": 1e-3,
    "atol": 1e-5,
    "expected": torch.tensor([[0.75, 3.0, 12.0], [6.75, 1.6875, 4.6875]], dtype=F64),
    "mistakes": {
        GRADIENT_FORWARD: torch.tensor([[0.7515009999998767, 3.0030009999997276,
                                         12.0060009999996],
                                        [6.754500999999635, 1.6897510000006832,
                                         4.6912510000005625]], dtype=F64),
        GRADIENT_TWICE: torch.tensor([[1.5000020000002223, 6.000002000000393, 24.000001999997522],
                                      [13.5000019999989, 3.3750020000002934, 9.37500200000052]],
                                     dtype=F64),
        GRADIENT_FLAT: torch.tensor([0.7500010000001112, 3.0000010000001964, 12.000000999998761,
                                     6.75000099999945, 1.6875010000001467, 4.68750100000026],
                                    dtype=F64),
    },
}

# sum(x**2) again, at an x whose entries + eps - eps do not come back exactly
NUMERICAL_GRADIENT_UNCHANGED_EXAMPLE = {
    "f": callables.sum_of_squares,
    "x": torch.tensor([[0.7, 1.3, -0.4], [2.2, 0.3, -1.1]], dtype=F64),
    "eps": 1e-6,
    "atol": 1e-6,
    "expected": torch.tensor([[1.4, 2.6, -0.8], [4.4, 0.6, -2.2]], dtype=F64),
    "mistakes": {
        GRADIENT_FORWARD: torch.tensor([[1.4000010004622254, 2.6000010002746876,
                                         -0.7999989986018363],
                                        [4.400001001769738, 0.6000010017714885,
                                         -2.199998998975161]], dtype=F64),
        GRADIENT_TWICE: torch.tensor([[2.8000000007466497, 5.200000000371574,
                                       -1.5999999991578306],
                                      [8.800000001585317, 1.1999999998124622,
                                       -4.39999999990448]], dtype=F64),
        GRADIENT_FLAT: torch.tensor([1.4000000003733248, 2.600000000185787, -0.7999999995789153,
                                     4.400000000792659, 0.5999999999062311, -2.19999999995224],
                                    dtype=F64),
    },
}

# sum(x**3) at a transposed (non-contiguous) x (3, 2), eps = 1e-4
NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE = {
    "f": callables.sum_of_cubes,
    "x": torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=F64).T,
    "eps": 1e-4,
    "atol": 1e-6,
    "expected": torch.tensor([[0.75, 6.75], [3.0, 0.1875], [12.0, 1.6875]], dtype=F64),
    "mistakes": {
        GRADIENT_FORWARD: torch.tensor([[0.7501500100026703, 6.750450009995745],
                                        [2.9997000100046023, 0.18757500999555532],
                                        [12.000600010022566, 1.6872750100027645]], dtype=F64),
        GRADIENT_TWICE: torch.tensor([[1.5000000199982821, 13.500000019988079],
                                      [6.000000020005558, 0.37500001999646315],
                                      [24.000000020034662, 3.375000020007235]], dtype=F64),
        GRADIENT_FLAT: torch.tensor([0.7500000099991411, 6.750000009994039, 3.000000010002779,
                                     0.18750000999823158, 12.000000010017331,
                                     1.6875000100036175], dtype=F64),
    },
}

# y = x * x: v^T J = 2 x * v
VJP_SQUARE_EXAMPLE = {
    "f": callables.square,
    "x": torch.tensor([1.0, 2.0, 3.0]),
    "v": torch.tensor([0.5, -1.0, 2.0]),
    "expected": torch.tensor([1.0, -4.0, 12.0]),
    "mistakes": {VJP_IGNORES_V: torch.tensor([2.0, 4.0, 6.0]),
                 VJP_J_V: torch.tensor([1.0, -4.0, 12.0])},
}

# y = [x, x**2, x**3] (2, 3): entry i of v^T J is v[i, 0] + 2 x_i v[i, 1] + 3 x_i**2 v[i, 2]
VJP_POLYNOMIAL_EXAMPLE = {
    "f": callables.polynomial_features,
    "x": torch.tensor([1.0, 2.0], dtype=F64),
    "v": torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.0, -1.0]], dtype=F64),
    "expected": torch.tensor([6.0, -11.5], dtype=F64),
    "mistakes": {VJP_IGNORES_V: torch.tensor([6.0, 17.0], dtype=F64)},
}

# y = x * x by a custom torch.autograd.Function
VJP_CUSTOM_FUNCTION_EXAMPLE = {
    "f": callables.square_by_function,
    "x": torch.tensor([1.0, -2.0, 3.0]),
    "v": torch.tensor([0.5, 1.0, -2.0]),
    "expected": torch.tensor([1.0, -4.0, -12.0]),
    "mistakes": {VJP_IGNORES_V: torch.tensor([2.0, -4.0, 6.0]),
                 VJP_J_V: torch.tensor([1.0, -4.0, -12.0])},
}

DETACHED_EXAMPLE = {
    "x": torch.tensor([0.0, 1.0, 2.0, 3.0]),
    "expected": torch.tensor([0.0, 1.0, 4.0, 9.0]),
    "mistakes": {DETACHED_NOT_DETACHED: torch.tensor([0.0, 3.0, 12.0, 27.0]),
                 DETACHED_TWO_X: torch.tensor([0.0, 2.0, 4.0, 6.0]),
                 DETACHED_X: torch.tensor([0.0, 1.0, 2.0, 3.0])},
}

DETACHED_MATRIX_EXAMPLE = {
    "x": torch.tensor([[1.0, -2.0, 0.5], [-1.5, 3.0, 2.0]], dtype=F64),
    "expected": torch.tensor([[1.0, 4.0, 0.25], [2.25, 9.0, 4.0]], dtype=F64),
    "mistakes": {
        DETACHED_NOT_DETACHED: torch.tensor([[3.0, 12.0, 0.75], [6.75, 27.0, 12.0]], dtype=F64),
        DETACHED_TWO_X: torch.tensor([[2.0, -4.0, 1.0], [-3.0, 6.0, 4.0]], dtype=F64),
        DETACHED_X: torch.tensor([[1.0, -2.0, 0.5], [-1.5, 3.0, 2.0]], dtype=F64),
    },
}

# control_flow_f(a) = k a: "expected" and "gradient" (of the sum) are k a and k
CONTROL_FLOW_SMALL_EXAMPLE = {  # b = 0.2 doubles 13 times to 1638.4, positive: k = 2**14
    "a": torch.tensor(0.1, dtype=F64),
    "expected": torch.tensor(1638.4, dtype=F64),
    "gradient": torch.tensor(16384.0, dtype=F64),
    "mistakes": {CONTROL_SWAPPED: torch.tensor(163840.0, dtype=F64)},
}

CONTROL_FLOW_NEGATIVE_EXAMPLE = {  # b = 2a doubles 9 times, negative sum: k = 100 * 1024
    "a": torch.tensor([-1.0, 0.5]),
    "expected": torch.tensor([-102400.0, 51200.0]),
    "gradient": torch.tensor([102400.0, 102400.0]),
    "mistakes": {CONTROL_ELSE_MISSING: torch.tensor([-1024.0, 512.0])},
}

CONTROL_FLOW_LARGE_EXAMPLE = {  # b = 2a has norm 2600 already, positive: k = 2
    "a": torch.tensor([1200.0, -500.0], dtype=F64),
    "expected": torch.tensor([2400.0, -1000.0], dtype=F64),
    "gradient": torch.tensor([2.0, 2.0], dtype=F64),
    "mistakes": {CONTROL_SWAPPED: torch.tensor([240000.0, -100000.0], dtype=F64),
                 CONTROL_B_STARTS_AT_A: torch.tensor([1200.0, -500.0], dtype=F64)},
}

# inputs a (float32 and float64) at a decision boundary, each with the factor k of
# control_flow_f(a) = k a and, under "mistakes", the factor each boundary mistake gives
CONTROL_FLOW_NORM_BOUNDARY_EXAMPLE = {
    "points": [{"a": 500.0, "k": 2.0, "mistakes": {NORM_BOUNDARY: 4.0}},
               {"a": [300.0, 400.0], "k": 2.0, "mistakes": {NORM_BOUNDARY: 4.0}}],
}

CONTROL_FLOW_SUM_BOUNDARY_EXAMPLE = {
    "points": [{"a": [1.0, -1.0], "k": 102400.0, "mistakes": {SUM_BOUNDARY: 1024.0}}],
}

# sum(x**3) at [1, 2]: the contract's relative error with eps = 0.1 ("expected") and with the
# default eps = 1e-6 ("default")
GRADIENT_CHECK_EPS_EXAMPLE = {
    "f": callables.sum_of_cubes,
    "x": torch.tensor([1.0, 2.0], dtype=F64),
    "eps": 0.1,
    "expected": 0.003322259136213142,
    "default": 1.3977796695918903e-10,
}

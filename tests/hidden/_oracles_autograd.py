"""The autograd topic's oracles (§2.4, §2.5) and the recognisers that compute its mistakes with
them (instructor-only: central differences, autograd on a fresh leaf, §2.5.4's loop and the
relative error are the exercises' answers, or one edit from them). The public tests name the
same mistakes from literal tables in tests/public/_mistakes_autograd.py, which
tests/kit/test_public_tables_a.py checks against these.

A recogniser returns `{message: what the mistake computes}` for the inputs of a test, with the
public module's messages.
"""

from __future__ import annotations

import torch

from tests.public import _mistakes_autograd as P

# --------------------------------------------------------------------------- numerical_derivative


def central_derivative(f, x: float, h: float) -> float:
    """(f(x + h) - f(x - h)) / (2h) (§2.4.1)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def derivative_mistakes(f, x: float, h: float) -> dict[str, float]:
    """numerical_derivative's wrong results: forward, backward, not halved."""
    return {P.FORWARD: (f(x + h) - f(x)) / h, P.BACKWARD_DIFF: (f(x) - f(x - h)) / h,
            P.NO_HALF: (f(x + h) - f(x - h)) / h}


# --------------------------------------------------------------------------- numerical_gradient


def central_difference(f, x: torch.Tensor, eps: float, forward: bool = False) -> torch.Tensor:
    """The central (or `forward`) differences of f at x, one entry at a time, on a copy of x."""
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
    """numerical_gradient's wrong results: forward differences, twice the gradient, flat."""
    central = central_difference(f, x, eps)
    return {P.GRADIENT_FORWARD: central_difference(f, x, eps, forward=True),
            P.GRADIENT_TWICE: 2 * central,
            P.GRADIENT_FLAT: central.reshape(-1)}


# --------------------------------------------------------------------------- autograd_gradient


def autograd_oracle(f, x: torch.Tensor) -> torch.Tensor:
    """The gradient of the scalar f at x by autograd in float64, in x's dtype (§2.5.1)."""
    xg = x.detach().double().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xg), xg)
    return g.to(x.dtype)


# ----------------------------------------------------------------- vector_jacobian_product


def jacobian(f, x: torch.Tensor) -> torch.Tensor:
    """J as a matrix (outputs, inputs), in float64."""
    J = torch.autograd.functional.jacobian(f, x.detach().double())
    return J.reshape(-1, x.numel())


def vjp_oracle(J: torch.Tensor, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """v^T J (§2.5.2) shaped like x, in x's dtype, from J (`jacobian`) and v of f's output."""
    return (v.double().reshape(-1) @ J).reshape(x.shape).to(x.dtype)


def vjp_mistakes(J: torch.Tensor, v: torch.Tensor, shape) -> dict[str, torch.Tensor]:
    """The wrong answers for v^T J, with J (outputs, inputs) in float64 (`jacobian`) and v
    flattened; `shape` is x's."""
    mistakes = {P.VJP_IGNORES_V: J.sum(0).reshape(shape)}
    if J.shape[0] == J.shape[1]:
        mistakes[P.VJP_J_V] = (J @ v).reshape(shape)
    return mistakes


# --------------------------------------------------------------- detached_product_gradient


def detached_mistakes(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """detached_product_gradient's wrong results: no detach (3 x**2), 2 x, x."""
    return {P.DETACHED_NOT_DETACHED: 3 * (x * x), P.DETACHED_TWO_X: 2 * x,
            P.DETACHED_X: x.clone()}


# --------------------------------------------------------------------------- control_flow_f


def control_flow_mistakes(a: torch.Tensor, power: float, positive: bool
                          ) -> dict[str, torch.Tensor]:
    """The usual wrong answers where control_flow_f(a) = power * a (b.sum() > 0, `positive`)
    or 100 * power * a, in a's dtype."""
    a64 = a.double()
    k = power if positive else 100 * power
    mistakes = ({P.CONTROL_SWAPPED: a64 * 100 * power} if positive else
                {P.CONTROL_ELSE_MISSING: a64 * power})
    if float(a64.norm()) >= 1000:
        mistakes[P.CONTROL_B_STARTS_AT_A] = a64 * k / 2
    return {m: w.to(a.dtype) for m, w in mistakes.items()}


def exact_control_flow_factor(a: torch.Tensor, norm_at_most: bool = False,
                              sum_at_least: bool = False) -> float:
    """k with control_flow_f(a) = k * a, for inputs whose norms and sums are exact (§2.5.4);
    `norm_at_most`: the loop doubles while b.norm() <= 1000, `sum_at_least`: b is returned if
    b.sum() >= 0 (the boundary mistakes)."""
    b = a.double() * 2
    k = 2.0
    while float(b.norm()) < 1000 or (norm_at_most and float(b.norm()) == 1000):
        b, k = b * 2, k * 2
    total = float(b.sum())
    return k if total > 0 or (sum_at_least and total == 0) else 100 * k


def boundary_mistakes(a: torch.Tensor) -> dict[str, float]:
    """The factors the boundary mistakes give where they differ from the right one: `<=` for
    `<` in the loop, `>=` for `>` in the if."""
    k = exact_control_flow_factor(a)
    wrong = {P.NORM_BOUNDARY: exact_control_flow_factor(a, norm_at_most=True),
             P.SUM_BOUNDARY: exact_control_flow_factor(a, sum_at_least=True)}
    return {m: w for m, w in wrong.items() if w != k}


# --------------------------------------------------------------------------- gradient_check


def contract_relative_error(f, x: torch.Tensor, eps: float) -> float:
    """The contract's largest relative error between autograd's gradient and the central
    differences of step eps."""
    g_auto = autograd_oracle(f, x)
    g_num = central_difference(f, x, eps)
    denom = torch.maximum(g_auto.abs(), g_num.abs()).clamp_min(1e-12)
    return float(((g_auto - g_num).abs() / denom).max())

"""The regularization topic's oracles (§4.4, §4.5) and the recognisers that compute its
mistakes with them (instructor-only: the polynomial features, the L2 penalty and train_ridge's
SGD steps are the exercises' answers, or one edit from them). The public tests name the same
mistakes from literal tables in tests/public/_mistakes_regularization.py, which
tests/kit/test_public_tables_a.py checks against these.

A recogniser returns `{message: what the mistake computes}` for the inputs of a test, with the
public module's messages.
"""

from __future__ import annotations

import math

import torch

from grader.checks import max_abs
from tests.public import _mistakes_regularization as P

# --------------------------------------------------------------------------- poly_features, l2


def powers64(x: torch.Tensor, degrees: range, factorial: bool = True) -> torch.Tensor:
    """The columns x**i (/ i!) for i in `degrees`, in float64, of x as a column (§4.4.4)."""
    x = x.double().reshape(-1, 1)
    columns = [x[:, 0] ** i / (math.factorial(i) if factorial else 1) for i in degrees]
    return torch.stack(columns, dim=1)


def poly_mistakes(x: torch.Tensor, degree: int) -> dict[str, torch.Tensor]:
    """What the known wrong poly_features(x, degree) return, in x's dtype."""
    mistakes = {P.NO_FACTORIAL: powers64(x, range(degree), False),
                P.FROM_X1: powers64(x, range(1, degree + 1)),
                P.FROM_X1_NO_FACTORIAL: powers64(x, range(1, degree + 1), False)}
    if x.dim() == 2:
        mistakes[P.NOT_FLATTENED] = powers64(x, range(degree))[:, None]
    return {m: w.to(x.dtype) for m, w in mistakes.items()}


def l2_penalty64(w: torch.Tensor) -> torch.Tensor:
    """sum(w**2) / 2 computed in float64, in w's dtype (§4.5.2)."""
    return ((w.double() ** 2).sum() / 2).to(w.dtype)


def penalty_mistakes(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the known wrong l2_penalty(w) return, in float64."""
    total = (w.double() ** 2).sum()
    return {P.PENALTY_NO_HALF: total, P.PENALTY_NORM: total.sqrt(),
            P.PENALTY_NORM_HALVED: total.sqrt() / 2,
            P.PENALTY_MEAN: (w.double() ** 2).mean() / 2}


# --------------------------------------------------------------------------- train_ridge


def ridge_sgd(batches, num_inputs: int, lambd: float, num_epochs: int, lr: float,
              start: torch.Tensor | None = None, penalise_bias: bool = False,
              batch_size: int | None = None, accumulate: bool = False):
    """train_ridge's steps in float64 from w = `start` (0 by default: the first, orthogonal,
    batch forgets the start), b = 0; returns (w, b, the largest |entry| on the way).
    `penalise_bias`, `batch_size`, `accumulate` (gradients never zeroed, so the first one,
    which depends on the start, stays): the mistakes' steps."""
    w = torch.zeros(num_inputs, 1, dtype=torch.float64) if start is None else start.double()
    b = torch.zeros(1, dtype=torch.float64)
    size = max_abs(w)
    total_w, total_b = torch.zeros_like(w), torch.zeros_like(b)
    for _ in range(num_epochs):
        for X, y in batches:
            X, y = X.double(), y.double().reshape(-1, 1)
            n = batch_size or len(y)
            residual = X @ w + b - y
            grad_w = X.T @ residual + len(y) * lambd * w
            grad_b = residual.sum(0) + (len(y) * lambd * b if penalise_bias else 0)
            if accumulate:
                total_w, total_b = total_w + grad_w, total_b + grad_b
                grad_w, grad_b = total_w, total_b
            w, b = w - lr * grad_w / n, b - lr * grad_b / n
            size = max(size, max_abs(w, b))
    return w, b, size


def ridge_mistakes(problem, start: torch.Tensor) -> dict[str, tuple]:
    """The named wrong results (w, b, size) of train_ridge on `problem` (batches, num_inputs,
    lambd, num_epochs, lr) from w = `start`."""
    batches, num_inputs, lambd, num_epochs, lr = problem
    return {P.BIAS_PENALISED: ridge_sgd(*problem, penalise_bias=True),
            P.FIRST_BATCH_SIZE: ridge_sgd(*problem, batch_size=len(batches[0][1])),
            P.ONE_EPOCH: ridge_sgd(batches, num_inputs, lambd, 1, lr),
            P.RIDGE_NOT_ZEROED: ridge_sgd(*problem, start=start, accumulate=True)}

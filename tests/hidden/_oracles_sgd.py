"""The sgd topic's oracles (§3.1-3.3) and the recognisers that compute its mistakes with them
(instructor-only: each formula is an exercise's answer, or one edit from it). The public tests
name the same mistakes from literal tables in tests/public/_mistakes_sgd.py, which
tests/kit/test_public_tables_a.py checks against these.

Oracles are computed in float64 from the formulas of the section and rounded once to the
input's dtype; a recogniser returns `{message: what the mistake computes}` for
`grader.checks.assert_close(..., mistakes=...)`, with the public module's messages.
"""

from __future__ import annotations

import torch

from grader.checks import max_abs
from tests.public import _mistakes_sgd as P

# --------------------------------------------------------------------------- linreg


def linreg64(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """X @ w + b, computed in float64, in X's dtype (§3.2.3)."""
    return (X.double() @ w.double() + b.double()).to(X.dtype)


def linreg_mistakes(X: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
    """linreg without the bias."""
    return {P.LINREG_NO_BIAS: (X.double() @ w.double()).to(X.dtype)}


# --------------------------------------------------------------------------- squared_loss


def _halved_squares(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(y_hat - y reshaped to y_hat's shape)**2 / 2 in float64."""
    return (y_hat.double() - y.double().reshape(y_hat.shape)) ** 2 / 2


def squared_loss64(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The per-example squared loss in y_hat's dtype (§3.2.4)."""
    return _halved_squares(y_hat, y).to(y_hat.dtype)


def loss_mistakes(y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """squared_loss's usual wrong results, in y_hat's dtype: no reshape (or a reshape to a
    fixed column), no / 2, a mean or a sum, the wrong shape."""
    right = _halved_squares(y_hat, y)
    n, shape = len(y_hat), tuple(y_hat.shape)
    mistakes = {
        P.loss_broadcasts(n): (y_hat.double() - y.double()) ** 2 / 2,
        P.LOSS_NO_HALF: right * 2,
        P.loss_mean(shape): right.mean(),
        P.loss_sum(shape): right.sum(),
    }
    if y_hat.dim() == 2:
        mistakes[P.LOSS_FLAT] = right.reshape(-1)
    else:
        mistakes[P.loss_fixed_column(n)] = (y_hat.double() - y.double().reshape(-1, 1)) ** 2 / 2
        mistakes[P.LOSS_COLUMN] = right.reshape(-1, 1)
    return {m: w.to(y_hat.dtype) for m, w in mistakes.items()}


# --------------------------------------------------------------------------- sgd


def sgd_expected(values, grads, lr: float, batch_size: int, steps: int = 1
                 ) -> list[torch.Tensor]:
    """Each parameter after `steps` updates p -= lr * grad / batch_size with the same gradient
    (§3.2.5), in its dtype."""
    return [(v.double() - steps * lr * g.double() / batch_size).to(v.dtype)
            for v, g in zip(values, grads, strict=True)]


def sgd_mistakes(values, grads, lr: float, batch_size: int, i: int
                 ) -> dict[str, torch.Tensor]:
    """sgd's wrong updates of parameter i: the wrong divisor, or uphill; a mistake that gives
    the right value for these inputs is left out."""
    v, g = values[i].double(), grads[i].double()
    wrong = {
        P.SGD_NOT_DIVIDED: v - lr * g,
        P.sgd_divided_by_len(len(values)): v - lr * g / len(values),
        P.sgd_divided_by_first_dim(values[i].shape[0]): v - lr * g / values[i].shape[0],
        P.SGD_MULTIPLIED: v - lr * g * batch_size,
        P.SGD_UPHILL: v + lr * g / batch_size,
    }
    right = v - lr * g / batch_size
    return {m: w.to(values[i].dtype) for m, w in wrong.items()
            if not torch.allclose(w, right, rtol=0, atol=1e-12)}


# --------------------------------------------------------------------------- closed_form_linreg


def least_squares(X: torch.Tensor, y: torch.Tensor, bias: bool = True
                  ) -> tuple[torch.Tensor, float]:
    """theta of min ||X1 theta - y|| in float64 (X1 = [X, 1] with `bias`) by torch's own solver,
    and X1's condition number."""
    X64 = X.double()
    X1 = torch.cat([X64, torch.ones(len(X64), 1, dtype=torch.float64)], 1) if bias else X64
    theta = torch.linalg.lstsq(X1, y.double().reshape(-1, 1)).solution
    return theta, float(torch.linalg.cond(X1))


# --------------------------------------------------------------------------- gradient_descent


def descend(f, x0: torch.Tensor, lr: float, num_steps: int, mode: str = "right"
            ) -> tuple[torch.Tensor, float]:
    """Gradient descent in float64; `mode` also runs the usual wrong versions ("accumulated",
    "uphill"). Returns the final x and the sum of the magnitudes rounding grows with."""
    x = x0.detach().double().clone()
    total = torch.zeros_like(x)
    size = max_abs(x)
    for _ in range(num_steps):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xg), xg)
        total = total + g
        step = {"right": g, "accumulated": total, "uphill": -g}[mode]
        x = x - lr * step
        size += max_abs(x) + lr * max_abs(g)
    return x, size


def descent_mistakes(f, x0: torch.Tensor, lr: float, num_steps: int
                     ) -> dict[str, torch.Tensor]:
    """gradient_descent's wrong results in x0's dtype: uphill, the gradients piling up, one
    step for many."""
    mistakes = {P.DESCENT_UPHILL: descend(f, x0, lr, num_steps, "uphill")[0].to(x0.dtype)}
    if num_steps >= 2:
        mistakes[P.DESCENT_ACCUMULATES] = descend(f, x0, lr, num_steps, "accumulated")[0].to(
            x0.dtype)
        mistakes[P.descent_one_step(num_steps)] = descend(f, x0, lr, 1)[0].to(x0.dtype)
    return mistakes

"""The optimizers of D2L chapter 11 as formulas: the oracles of test_optim, and the recognisers
that compute the contract's mistakes with them (instructor-only: each is the exercise's answer,
or one edit from it; the public tests name the same mistakes from literal tables in
tests/public/_mistakes_optim.py, which tests/kit/test_optimizer_oracles.py checks against
these).

torch.optim would serve where its formulas agree with the contract (momentum, Adam), but
constructing an optimizer imports torch._dynamo, about a second of every grading process
(grader/sandbox/lazy.py), so the grader takes the steps itself.
tests/kit/test_optimizer_oracles.py checks these against torch.optim.SGD(momentum=...) and
torch.optim.Adam, including `adam_path`'s claim to take torch.optim.Adam's steps bit for bit.

A step takes a parameter, its gradient and its state and returns the new parameter and state
(new tensors: the exercise's update functions change theirs in place); the flags give the
steps of the contract's mistakes, so a test can name the one it sees. A recogniser returns
`{message: what the mistake computes}` for the inputs of a test, which
`grader.checks.assert_close(..., mistakes=...)` compares a wrong answer with; the messages are
tests/public/_mistakes_optim.py's (one copy of each).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grader.checks import max_abs
from tests.public._mistakes_optim import (
    ADAM_EPS_INSIDE,
    ADAM_NO_BIAS_CORRECTION,
    ADAM_T_PER_PARAMETER,
    ADAM_T_TOO_LARGE,
    DESCEND_ACCUMULATES,
    DESCEND_STORES_X,
    DESCEND_WITHOUT_X0,
    EPS_OUTSIDE,
    FIND_MINIMUM_ACCUMULATES,
    HIMMELBLAU_ROWS,
    MOMENTUM_NOT_SCALED,
    MOMENTUM_STEP_BY_GRAD,
    NO_EPS,
    RMSPROP_GAMMA_SWAPPED,
)
from torchdrill import callables as cf

EPS = 1e-6  # the contract's eps of adagrad, rmsprop and adam
BETA1, BETA2 = 0.9, 0.999
TORCH_ADAM_EPS = 1e-8  # torch.optim.Adam's default, find_minimum's

# --------------------------------------------------------------------------- the steps


def momentum_step(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, lr: float,
                  momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """v = momentum * v + g; p -= lr * v (§11.6.5)."""
    v = momentum * v + g
    return p - lr * v, v


def adagrad_step(p: torch.Tensor, g: torch.Tensor, s: torch.Tensor, lr: float,
                 eps: float = EPS, eps_inside: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """s += g**2; p -= lr * g / sqrt(s + eps) (§11.7.5); `eps_inside=False`: torch.optim's
    sqrt(s) + eps."""
    s = s + g * g
    return p - lr * g / _root(s, eps, eps_inside), s


def rmsprop_step(p: torch.Tensor, g: torch.Tensor, s: torch.Tensor, lr: float, gamma: float,
                 eps: float = EPS, eps_inside: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """s = gamma * s + (1 - gamma) * g**2; p -= lr * g / sqrt(s + eps) (§11.8.2)."""
    s = gamma * s + (1 - gamma) * g * g
    return p - lr * g / _root(s, eps, eps_inside), s


def _root(s: torch.Tensor, eps: float, inside: bool) -> torch.Tensor:
    return torch.sqrt(s + eps) if inside else torch.sqrt(s) + eps


def adam_step(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, s: torch.Tensor, lr: float,
              t: int, eps: float = EPS, bias_correction: bool = True, eps_inside: bool = False
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """v = beta1 v + (1 - beta1) g; s = beta2 s + (1 - beta2) g**2;
    p -= lr * (v / (1 - beta1**t)) / (sqrt(s / (1 - beta2**t)) + eps) (§11.10.2)."""
    v = BETA1 * v + (1 - BETA1) * g
    s = BETA2 * s + (1 - BETA2) * g * g
    v_hat, s_hat = (v / (1 - BETA1 ** t), s / (1 - BETA2 ** t)) if bias_correction else (v, s)
    return p - lr * v_hat / _root(s_hat, eps, eps_inside), (v, s)


def adam_path(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, lr: float,
              num_steps: int, eps: float = TORCH_ADAM_EPS, zero_grad: bool = True
              ) -> torch.Tensor:
    """x after `num_steps` steps of torch.optim.Adam([x], lr=lr, eps=eps) on `f` from x0, in
    x0's dtype, with torch's own operations in torch's order (its single-tensor step), so
    float32 rounds as it does there; `zero_grad=False`: the gradients accumulate."""
    x = x0.detach().clone().requires_grad_(True)
    v, s = torch.zeros_like(x), torch.zeros_like(x)
    for step in range(1, num_steps + 1):
        if zero_grad:
            x.grad = None
        f(x).backward()
        grad = x.grad
        assert grad is not None
        with torch.no_grad():
            v.lerp_(grad, 1 - BETA1)
            s.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
            step_size = lr / (1 - BETA1 ** step)
            denom = (s.sqrt() / (1 - BETA2 ** step) ** 0.5).add_(eps)
            x.addcdiv_(v, denom, value=-step_size)
    return x.detach()


def himmelblau_in_dtype(x: torch.Tensor) -> torch.Tensor:
    """Himmelblau's function in x's own dtype: what find_minimum's Adam descends (its path
    rounds as the submission's does)."""
    return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2


def counting_path(f, x0: torch.Tensor, lr: float, num_steps: int, fresh: bool = True):
    """descend's path with torchdrill.callables.counting_update from zero states and t = 1,
    in float64 (`fresh=False`: the gradients pile up), the final state and the sum of
    magnitudes rounding grows with."""
    x = x0.detach().double().clone().requires_grad_(True)
    states, hyperparams = [torch.zeros_like(x)], {"lr": lr, "t": 1}
    path, size = [x.detach().clone()], max_abs(x)
    for _ in range(num_steps):
        if fresh:
            x.grad = None
        f(x).backward()
        cf.counting_update([x], states, hyperparams)
        path.append(x.detach().clone())
        size += max_abs(x) + lr * max_abs(states[0])
    return torch.stack(path), states[0], size


# --------------------------------------------------------------------------- recognisers


def finite(mistakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mistakes whose result is a number everywhere (a nan matches any nan)."""
    return {m: w for m, w in mistakes.items() if bool(torch.isfinite(w).all())}


def himmelblau_mistakes(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """himmelblau's wrong values for points `x` (..., 2): the first two rows of a batch taken
    for the two coordinates (in x's dtype, computed in float64)."""
    if x.dim() < 2 or x.shape[0] < 2:
        return {}
    return {HIMMELBLAU_ROWS: ((x[0].double() ** 2 + x[1] - 11) ** 2
                              + (x[0] + x[1] ** 2 - 7) ** 2).to(x.dtype)}


def momentum_mistakes(p, g, v, lr: float, momentum: float) -> dict[str, torch.Tensor]:
    """sgd_momentum's wrong parameters after one step from velocity v."""
    return {MOMENTUM_NOT_SCALED: momentum_step(p, g, v, lr, 1.0)[0],
            MOMENTUM_STEP_BY_GRAD: p - lr * g}


def eps_mistakes(step, p, g, s) -> dict[str, torch.Tensor]:
    """The wrong parameters of `step` (adagrad_step or rmsprop_step with its lr and gamma
    bound) with eps outside the square root, or no eps."""
    return finite({EPS_OUTSIDE: step(p, g, s, eps_inside=False)[0],
                   NO_EPS: step(p, g, s, eps=0.0)[0]})


def adagrad_mistakes(p, g, s, lr: float) -> dict[str, torch.Tensor]:
    """adagrad's wrong parameters after one step from the sums of squares s."""
    return eps_mistakes(lambda *a, **kw: adagrad_step(*a, lr, **kw), p, g, s)


def rmsprop_mistakes(p, g, s, lr: float, gamma: float) -> dict[str, torch.Tensor]:
    """rmsprop's wrong parameters after one step from the running averages s."""
    return {**eps_mistakes(lambda *a, **kw: rmsprop_step(*a, lr, gamma, **kw), p, g, s),
            RMSPROP_GAMMA_SWAPPED: rmsprop_step(p, g, s, lr, 1 - gamma)[0]}


def adam_mistakes(p, g, state, lr: float, t: int, i: int) -> dict[str, torch.Tensor]:
    """Adam's named wrong steps for parameter i: a parameter after the first one that used t +
    i is the "t per parameter" mistake (the first one was right)."""
    v, s = state
    wrong = {ADAM_T_PER_PARAMETER: adam_step(p, g, v, s, lr, t + i)[0]} if i else {}
    wrong |= {ADAM_NO_BIAS_CORRECTION: adam_step(p, g, v, s, lr, t, bias_correction=False)[0],
              ADAM_T_TOO_LARGE: adam_step(p, g, v, s, lr, t + 1)[0],
              ADAM_EPS_INSIDE: adam_step(p, g, v, s, lr, t, eps_inside=True)[0]}
    return finite(wrong)


def descend_mistakes(f, x0: torch.Tensor, lr: float, num_steps: int
                     ) -> dict[str, torch.Tensor]:
    """descend's wrong paths with counting_update (in x0's dtype): x itself stored at every
    step, x0 left out, the gradients piling up."""
    expected = counting_path(f, x0, lr, num_steps)[0]
    mistakes = {DESCEND_STORES_X: expected[-1:].expand_as(expected).to(x0.dtype),
                DESCEND_WITHOUT_X0: expected[1:].to(x0.dtype)}
    if num_steps >= 2:
        mistakes[DESCEND_ACCUMULATES] = counting_path(f, x0, lr, num_steps, False)[0].to(
            x0.dtype)
    return mistakes


def find_minimum_mistakes(x0: torch.Tensor, lr: float, num_steps: int
                          ) -> dict[str, torch.Tensor]:
    """find_minimum's wrong x: Adam's steps without zero_grad."""
    return {FIND_MINIMUM_ACCUMULATES: adam_path(himmelblau_in_dtype, x0, lr, num_steps,
                                                zero_grad=False)}

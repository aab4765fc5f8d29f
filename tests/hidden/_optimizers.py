"""The optimizers of D2L chapter 11 as formulas: the oracles of test_optim.

torch.optim would serve where its formulas agree with the contract (momentum, Adam), but
constructing an optimizer imports torch._dynamo, about a second of every grading process
(grader/sandbox/lazy.py), so the grader takes the steps itself.
tests/kit/test_optimizer_oracles.py checks these against torch.optim.SGD(momentum=...) and
torch.optim.Adam, including `adam_path`'s claim to take torch.optim.Adam's steps bit for bit.

A step takes a parameter, its gradient and its state and returns the new parameter and state;
the flags give the steps of the contract's mistakes, so a test can name the one it sees.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-6  # the contract's eps of adagrad, rmsprop and adam
BETA1, BETA2 = 0.9, 0.999
TORCH_ADAM_EPS = 1e-8  # torch.optim.Adam's default, find_minimum's


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

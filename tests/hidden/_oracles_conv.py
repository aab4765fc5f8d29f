"""The conv topic's answer-shaped oracles, hidden from students: learn_kernel's steps and the
book's LeNet. tests/public/_mistakes_conv.py keeps the messages and the checks, and literal
tables of what these compute for the public tests' inputs (tests/kit/test_public_tables_b.py
checks every number of them against the functions here)."""

from __future__ import annotations

import torch
from torch import nn

from grader.checks import max_abs
from tests.public._mistakes_conv import (
    MAX_POOL,
    MEAN_LOSS,
    NO_ZERO_GRAD,
    RELU,
    RELU_AND_MAX_POOL,
    oracle_conv,
)


def oracle_learn_kernel(X: torch.Tensor, Y: torch.Tensor, kernel: tuple[int, int],
                        num_epochs: int, lr: float, *, zero_grad: bool = True,
                        mean: bool = False) -> tuple[torch.Tensor, float]:
    """The kernel after learn_kernel's steps, done here in float64 with F.conv2d, and the
    largest |entry| the kernel had on the way (rounding grows with it)."""
    K = torch.zeros(kernel, dtype=torch.float64, requires_grad=True)
    grad = torch.zeros_like(K)
    largest = 0.0
    for _ in range(num_epochs):
        errors = (oracle_conv(X[None], K[None, None])[0] - Y.double()) ** 2
        (g,) = torch.autograd.grad(errors.mean() if mean else errors.sum(), K)
        grad = grad + g if not zero_grad else g
        K = (K - lr * grad).detach().requires_grad_(True)
        largest = max(largest, max_abs(K))
    return K.detach(), largest


def learn_kernel_expectations(X: torch.Tensor, Y: torch.Tensor, kernel: tuple[int, int],
                              num_epochs: int, lr: float
                              ) -> tuple[torch.Tensor, float, dict[str, torch.Tensor]]:
    """What check_learned_kernel compares learn_kernel(X, Y, kernel, num_epochs, lr) with: the
    kernel (in X's dtype), the scale of its rounding and the known mistakes' kernels."""
    expected, largest = oracle_learn_kernel(X, Y, kernel, num_epochs, lr)
    mistakes = {NO_ZERO_GRAD: oracle_learn_kernel(X, Y, kernel, num_epochs, lr,
                                                  zero_grad=False)[0].to(X.dtype),
                MEAN_LOSS: oracle_learn_kernel(X, Y, kernel, num_epochs, lr,
                                               mean=True)[0].to(X.dtype)}
    oh, ow = X.shape[0] - kernel[0] + 1, X.shape[1] - kernel[1] + 1
    scale = num_epochs * (1 + largest) * oh * ow * max(1.0, max_abs(X)) ** 2
    return expected.to(X.dtype), scale, mistakes


def book_lenet(activation: type[nn.Module] = nn.Sigmoid,
               pool: type[nn.Module] = nn.AvgPool2d) -> nn.Sequential:
    """The book's LeNet (§6.6.1), the activation or pooling swapped for a known mistake."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), activation(), pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), activation(), pool(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(400, 120), activation(), nn.Linear(120, 84), activation(),
        nn.Linear(84, 10))


def load_in_order(net: nn.Module, params: list[tuple[str, torch.Tensor]]) -> nn.Module:
    """`net`, a new grader-side LeNet, holding `params`, matched by order, not by name."""
    keys = [k for k, v in net.state_dict().items() if v.is_floating_point()]
    net.load_state_dict({k: v.detach().cpu() for k, (_, v) in zip(keys, params, strict=True)})
    return net


def lenet_outputs(params: list[tuple[str, torch.Tensor]], X: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The book's LeNet's logits for X with `params` (in order), and the known wrong nets'
    (ReLU, max pooling, both) with the same parameters."""
    oracles = {name: load_in_order(book_lenet(activation, pool), params)
               for name, activation, pool in (("", nn.Sigmoid, nn.AvgPool2d),
                                              (RELU, nn.ReLU, nn.AvgPool2d),
                                              (MAX_POOL, nn.Sigmoid, nn.MaxPool2d),
                                              (RELU_AND_MAX_POOL, nn.ReLU, nn.MaxPool2d))}
    with torch.no_grad():
        values = {name: oracle(X) for name, oracle in oracles.items()}
    return values.pop(""), values

"""The oracles' vector-Jacobian products, without autograd's grad_outputs path."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def vjp(out: torch.Tensor, inputs: torch.Tensor | Sequence[torch.Tensor],
        v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What `torch.autograd.grad(out, inputs, v)` returns, bit for bit: the gradient of the
    scalar (out * v).sum() reaches `out` as exactly v. Passing v as grad_outputs instead makes
    torch import sympy (torch.fx's symbolic shapes) on first use, 0.3 to 0.6 s in every
    grading process (tests/kit/test_layout.py keeps it out of the tests)."""
    if out.shape != v.shape:
        raise ValueError(f"vjp: v has shape {tuple(v.shape)}, the output {tuple(out.shape)}")
    return torch.autograd.grad((out * v).sum(), inputs)

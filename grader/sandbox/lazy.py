"""Modules torch imports on first use, not at `import torch`: the first backward with a
grad_output (torch.fx's symbolic shapes, with sympy: ~0.4 s) and the first optimizer step
(torch._dynamo: ~0.9 s). A process that will fork (the worker template, `grader.grade` before
its test sessions) imports them once, so that no child pays for them, each on its own: a worker
inside a test's time budget, a test session in a test's time."""

from __future__ import annotations

import contextlib
import importlib

LAZY_TORCH_MODULES = ("torch.fx.experimental.symbolic_shapes",
                      "torch.nested._internal.nested_tensor", "torch._dynamo")


def import_lazy_modules() -> None:
    """A speed-up only: a module that fails to import is left for torch to try lazily. No
    thread starts, so the process stays safe to fork."""
    for name in LAZY_TORCH_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

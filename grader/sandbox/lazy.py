"""Modules torch imports on first use, not at `import torch`: the first backward with a
grad_output (torch.fx's symbolic shapes, with sympy: ~0.4 s) and the first optimizer (torch._dynamo:
~1 s). A process that will fork imports the ones its children use once, so that no child pays
for them, each on its own: the worker template all of them (student code trains with
torch.optim), a grading process before its test sessions only those the tests' oracles use
(they take SGD steps without torch.optim: tests/hidden/_training.py)."""

from __future__ import annotations

import contextlib
import importlib

GRADER_LAZY_MODULES = ("torch.fx.experimental.symbolic_shapes",
                       "torch.nested._internal.nested_tensor")
WORKER_LAZY_MODULES = (*GRADER_LAZY_MODULES, "torch._dynamo")


def import_lazy_modules(names: tuple[str, ...]) -> None:
    """A speed-up only: a module that fails to import is left for torch to try lazily. No
    thread starts, so the process stays safe to fork."""
    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

"""Modules torch imports on first use, not at `import torch`: the first backward with a
grad_output (torch.fx's symbolic shapes, with sympy: 0.3 to 0.6 s) and the first optimizer
(torch._dynamo: ~1 s). The worker template imports them once before it forks, so that no
worker pays for them (student code trains with torch.optim and takes gradients with a
grad_output). A grading process needs neither: its tests take their SGD steps and
vector-Jacobian products without them (tests/kit/test_startup_costs.py)."""

from __future__ import annotations

import contextlib
import importlib

WORKER_LAZY_MODULES = ("torch.fx.experimental.symbolic_shapes", "torch._dynamo")


def import_lazy_modules(names: tuple[str, ...]) -> None:
    """A speed-up only: a module that fails to import is left for torch to try lazily. No
    thread starts, so the process stays safe to fork."""
    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

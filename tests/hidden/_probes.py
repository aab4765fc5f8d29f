"""Probes the tests attach to worker-side modules, to see how student code called them."""

from __future__ import annotations

import functools
import io


def forward_log(student, module):
    """Log every call of the worker-side `module`: a forward pre-hook prints its input into a
    StringIO in the worker. Returns that StringIO (read it with .getvalue())."""
    log = student.remote(io.StringIO)
    module.register_forward_pre_hook(functools.partial(print, "<call>", file=log))
    return log


def logged_calls(log) -> tuple[int, int]:
    """(calls whose input was built with autograd on, calls without)."""
    records = log.getvalue().split("<call>")[1:]
    with_grad = sum("grad_fn=" in r for r in records)
    return with_grad, len(records) - with_grad

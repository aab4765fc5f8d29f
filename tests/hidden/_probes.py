"""Probes the tests attach to worker-side modules, to see how student code called them. They
live in tests/public/_mistakes_mlp.py, whose evaluation checks use them in mlp's public tests
too."""

from __future__ import annotations

from tests.public._mistakes_mlp import forward_log, logged_calls  # noqa: F401 (re-exported)

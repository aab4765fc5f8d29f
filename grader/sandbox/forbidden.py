"""Forbidden calls at run time: while a student function runs, calling a library function that
would do the exercise for the student is recorded and fails that call.

Torch functions and tensor methods are caught with a TorchFunctionMode, which sees a call
whatever name it was reached by (`from torch import softmax`, `X.softmax`, `nn.Softmax`'s
forward). Classes (`torch.optim.SGD`) are caught by hooking their `__init__` once per process.
Names follow course.toml: `torch.softmax`, `F.softmax`, `nn.Softmax`, `Tensor.norm`,
fnmatch patterns (`torch.linalg.*`) and `@`.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
from collections.abc import Iterable
from typing import Any

ALIASES = {"F.": "torch.nn.functional.", "nn.": "torch.nn.", "Tensor.": "torch.Tensor."}
MATMUL_METHODS = ("__matmul__", "__rmatmul__", "matmul")


class ForbiddenCallError(RuntimeError):
    """Raised inside student code when it calls a function the exercise forbids."""


def canonical(name: str) -> str:
    """`F.softmax` -> `torch.nn.functional.softmax`; `@` stays `@`."""
    for short, full in ALIASES.items():
        if name.startswith(short):
            return full + name[len(short):]
    return name


@functools.cache
def resolve(name: str) -> tuple[tuple[str, Any], ...]:
    """The objects a course.toml name stands for, each with the name to report. Cached: a
    Guard is made for every call into student code, and an import lookup costs ~0.1 ms."""
    import torch

    if name == "@":
        return tuple(("@", getattr(torch.Tensor, m)) for m in MATMUL_METHODS)
    full = canonical(name)
    parent, _, leaf = full.rpartition(".")
    owner = _import_owner(parent)
    if not any(c in leaf for c in "*?["):
        return ((name, getattr(owner, leaf)),) if hasattr(owner, leaf) else ()
    found = []
    for attr in sorted(dir(owner)):
        if attr.startswith("_") or not fnmatch.fnmatchcase(attr, leaf):
            continue
        obj = getattr(owner, attr)
        if callable(obj) and not inspect.ismodule(obj):
            found.append((f"{parent}.{attr}".replace("torch.nn.functional.", "F."), obj))
    return tuple(found)


def _import_owner(dotted: str) -> Any:
    try:
        return importlib.import_module(dotted)
    except ImportError:
        parent, _, attr = dotted.rpartition(".")
        return getattr(importlib.import_module(parent), attr)


MAX_HITS = 50  # distinct names kept per call: a loop of a million forbidden calls keeps one


class _State:
    """What is forbidden right now (obj -> reported name), and what was hit (an ordered set)."""

    active: dict[Any, str] = {}
    hits: dict[str, None] = {}


def note_hit(hits: dict[str, None], name: str) -> None:
    """Keep `name` among a call's hits: once, and at most MAX_HITS names."""
    if name not in hits and len(hits) < MAX_HITS:
        hits[name] = None


def forbidden_error(name: str, function: str, reached: str = "") -> ForbiddenCallError:
    """What student code gets for a forbidden call (`reached`: how the call was caught)."""
    return ForbiddenCallError(
        f"{name} is not allowed in {function}{reached}: it would do the exercise for you. "
        "Build it from the basic operations the section uses.")


def _record(name: str, function: str) -> None:
    note_hit(_State.hits, name)
    raise forbidden_error(name, function)


_hooked: set[type] = set()


def _hook_class(cls: type) -> None:
    if cls in _hooked:
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        name = _State.active.get(type(self)) or _State.active.get(cls)
        if name is not None:
            _record(name, _State.function)
        original(self, *args, **kwargs)

    del __init__.__wrapped__  # the original stays in the closure, not one attribute away
    cls.__init__ = __init__
    _hooked.add(cls)


@functools.cache
def _mode_class() -> type:
    """The TorchFunctionMode that checks each torch call against a Guard's functions; made
    once, since a Guard is entered for every call into student code."""
    from torch.overrides import TorchFunctionMode

    class _ForbiddenMode(TorchFunctionMode):
        def __init__(self, funcs: dict[Any, str], function: str):
            super().__init__()
            self.funcs, self.function = funcs, function

        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = self.funcs.get(func)
            if name is not None:
                _record(name, self.function)
            return func(*args, **(kwargs or {}))

    return _ForbiddenMode


@functools.cache
def _targets(names: tuple[str, ...]) -> tuple[dict[Any, str], dict[Any, str]]:
    """(every forbidden object -> reported name, the same for the functions alone); classes
    get their `__init__` hooked."""
    targets: dict[Any, str] = {}
    for name in names:
        for reported, obj in resolve(name):
            if inspect.isclass(obj):
                _hook_class(obj)
            targets[obj] = reported
    return targets, {k: v for k, v in targets.items() if not inspect.isclass(k)}


class Guard:
    """Context manager: forbid `names` while `function` runs; collect what was hit."""

    def __init__(self, names: Iterable[str], function: str):
        self.function = function
        self.targets, self.funcs = _targets(tuple(names))
        self.hits: dict[str, None] = {}  # the names hit, each once, in order
        self._mode = None

    def __enter__(self) -> Guard:
        _State.active, _State.hits, _State.function = self.targets, self.hits, self.function
        if self.funcs:
            self._mode = _mode_class()(self.funcs, self.function)
            self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._mode is not None:
            self._mode.__exit__(*exc)
            self._mode = None
        _State.active, _State.hits = {}, {}


_State.function = ""

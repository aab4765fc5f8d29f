"""Forbidden calls at run time: while a student function runs, calling a library function that
would do the exercise for the student is recorded and fails that call.

Torch functions and tensor methods are caught with a TorchFunctionMode, which sees a call
whatever name it was reached by (`from torch import softmax`, `X.softmax`, `nn.Softmax`'s
forward). Classes (`torch.optim.SGD`) are caught by hooking their `__init__` once per process.
Names follow course.toml: `torch.softmax`, `F.softmax`, `nn.Softmax`, `Tensor.norm`,
fnmatch patterns (`torch.linalg.*`) and `@`.

What a guarded call forbids and what it hit is its Guard's own `GuardState`, handed to whatever
records a hit; the one thing the process shares is the stack of entered states the class hooks
read (a hooked `__init__` serves every guard), kept in the hooks' closure. None of this stops
code that imports the grader: the source allow-list (`grader.scan.allowlist`) refuses such code, and
the dispatcher guard catches the computations whatever happens here.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # torch is imported where it is used
    from torch.overrides import TorchFunctionMode

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


def note_hit(hits: dict[str, None], name: str) -> None:
    """Keep `name` among a call's hits: once, and at most MAX_HITS names."""
    if name not in hits and len(hits) < MAX_HITS:
        hits[name] = None


def forbidden_error(name: str, function: str, reached: str = "") -> ForbiddenCallError:
    """What student code gets for a forbidden call (`reached`: how the call was caught)."""
    return ForbiddenCallError(
        f"{name} is not allowed in {function}{reached}: it would do the exercise for you. "
        "Build it from the basic operations the section uses.")


class GuardState:
    """One guarded call's state: what it forbids (object -> name to report), the function it
    guards, and the names it hit (an ordered set). Each Guard owns one; what records a hit is
    handed it (the TorchFunctionMode, the class hooks while the guard is entered, the
    dispatcher kernels of `grader.sandbox.dispatch_guard`), so no module or class attribute
    holds a call's hits."""

    __slots__ = ("targets", "function", "hits")

    def __init__(self, targets: dict[Any, str], function: str):
        self.targets, self.function = targets, function
        self.hits: dict[str, None] = {}

    def record(self, name: str) -> NoReturn:
        """Note a forbidden call and fail it."""
        note_hit(self.hits, name)
        raise forbidden_error(name, self.function)


def _class_hooks() -> tuple[Callable[[type[Any]], None], Callable[[GuardState], None],
                            Callable[[GuardState], None]]:
    """(hook a class, enter a guard's state, leave it). A class is one object for every guard
    of the process, so its `__init__` is hooked once and checks against the state of the guard
    entered now; the stack of entered states lives in this closure only."""
    entered: list[GuardState] = []
    hooked: set[type] = set()

    def hook(cls: type[Any]) -> None:
        if cls in hooked:
            return
        original = cls.__init__

        @functools.wraps(original)
        def __init__(self, *args, **kwargs):
            state = entered[-1] if entered else None
            if state is not None:
                name = state.targets.get(type(self)) or state.targets.get(cls)
                if name is not None:
                    state.record(name)
            original(self, *args, **kwargs)

        del __init__.__wrapped__  # the original stays in the closure, not one attribute away
        cls.__init__ = __init__
        hooked.add(cls)

    def enter(state: GuardState) -> None:
        entered.append(state)

    def leave(state: GuardState) -> None:
        if state in entered:
            del entered[len(entered) - 1 - entered[::-1].index(state):]

    return hook, enter, leave


_hook_class, _enter_classes, _leave_classes = _class_hooks()


@functools.cache
def _mode_class() -> Callable[[dict[Any, str], GuardState], TorchFunctionMode]:
    """The TorchFunctionMode that checks each torch call against a Guard's functions; made
    once, since a Guard is entered for every call into student code."""
    from torch.overrides import TorchFunctionMode

    class _ForbiddenMode(TorchFunctionMode):
        def __init__(self, funcs: dict[Any, str], state: GuardState):
            super().__init__()
            self.funcs, self.state = funcs, state

        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = self.funcs.get(func)
            if name is not None:
                self.state.record(name)
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
    """Context manager: forbid `names` while `function` runs; `state.hits` collects what was
    hit. Guards nest: leaving one gives the class hooks back to the one entered before."""

    def __init__(self, names: Iterable[str], function: str):
        targets, self.funcs = _targets(tuple(names))
        self.state = GuardState(targets, function)
        self._mode: TorchFunctionMode | None = None

    @property
    def function(self) -> str:
        return self.state.function

    @property
    def hits(self) -> dict[str, None]:
        """The names hit, each once, in order."""
        return self.state.hits

    def __enter__(self) -> Guard:
        _enter_classes(self.state)
        if self.funcs:
            try:
                self._mode = _mode_class()(self.funcs, self.state)
                self._mode.__enter__()
            except BaseException:
                self._mode = None
                _leave_classes(self.state)
                raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._mode is not None:
                self._mode.__exit__(*exc)
                self._mode = None
        finally:
            _leave_classes(self.state)

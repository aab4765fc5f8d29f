"""Running one request against student code: a call, a gradient through it, or a public
callable. Shared by the sandboxed worker and by `--in-process`, so both behave the same.

A traceback frame is the student's when its file is one of the submission's modules as
`SubmissionModules` compiled them (or a cell of a submitted notebook, which `grader.notebooks`
compiles as `<notebook>, cell N`): torch, the standard library, `torchdrill` and the grader
are never the student's line, wherever they are installed (`is_submission_file`, which the
worker's audit hook, `grader.sandbox.audit`, uses too). The grader's own steps of a request
(the forbidden-call guards, seeding) fail as `GraderStepFailed`, never as the student's error.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import importlib.abc
import importlib.util
import sys
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any

from grader.sandbox import dispatch_guard
from grader.sandbox.forbidden import ForbiddenCallError, Guard

Refusals = Callable[[], tuple[str, ...]]  # the audit hook's refusals of the request so far


class MissingFunction(Exception):
    """The submission's module does not define the function a test asks for."""


class SubmissionImportError(Exception):
    """The submission's module failed to import (syntax error, exception at import...)."""


class GraderStepFailed(Exception):
    """A step of the grader's own in the worker failed (`step`: "setup", seeding a call and
    setting up its forbidden-call guards; the server's "arguments", copying a request's
    arguments). The worker is the student's process, so code the student ran earlier may be
    the cause: the grader reproduces the step before calling it its error."""

    def __init__(self, step: str):
        super().__init__(f"the grader's step {step!r} failed in the worker")
        self.step = step


class RefusedAtImport(ForbiddenCallError):
    """A module whose top-level code did what graded code may not (the audit hook refused it,
    caught or not): every function of the module fails with this, reporting `calls` again."""

    def __init__(self, module: str, calls: tuple[str, ...]):
        super().__init__(
            f"{module}.py was refused when it was imported: its top-level code (outside any "
            f"function, which runs at import) used {', '.join(calls)}, which graded code may "
            f"not use. Every function of {module}.py fails until that code is gone.")
        self.calls = calls


def submission_files(sources: dict[str, tuple[str, str]]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(the file names the submission's modules are compiled with, those of notebooks)."""
    files = frozenset(filename for filename, _ in sources.values())
    return files, tuple(sorted(f for f in files if f.endswith(".ipynb")))


def is_submission_file(filename: str, files: frozenset[str], notebooks: tuple[str, ...]) -> bool:
    """Whether code compiled as `filename` is the submission's: a module's file exactly as
    `exec_module` compiled it (`files`), or `<notebook>, cell N` of one of its `notebooks` (the
    label `grader.notebooks` compiles a cell's statements with; `<notebook>` is the notebook's
    path relative to the submission, the end of the module's file name)."""
    if filename in files:
        return True
    notebook, cell, number = filename.rpartition(", cell ")
    return bool(cell and notebook) and number.isdigit() and any(
        f == notebook or f.endswith("/" + notebook) for f in notebooks)


def submission_code(sources: dict[str, tuple[str, str]]) -> frozenset[tuple[str, bytes]]:
    """(file name, UTF-8 source) of everything the submission compiles: each module's text, and
    each notebook cell that `grader.notebooks` wrote into a module as `exec(compile(TEXT,
    LABEL, 'exec'), globals())` at its top level (alone, or as the body of a `try`). A call of
    that shape inside a student's own definition is not the converter's and is left out."""
    found = {(filename, text.encode()) for filename, text in sources.values()}
    for filename, text in sources.values():
        if not filename.endswith(".ipynb"):
            continue
        try:
            tree = ast.parse(text, filename)
        except SyntaxError:  # its compile fails anyway
            continue
        for node in tree.body:
            for stmt in node.body if isinstance(node, ast.Try) else [node]:
                cell = compiled_cell(stmt.value) if isinstance(stmt, ast.Expr) else None
                if cell is not None:
                    found.add((cell[1], cell[0].encode()))
    return frozenset(found)


def compiled_cell(node: ast.AST) -> tuple[str, str] | None:
    """(code, label) of exactly `exec(compile("<code>", "<label>", "exec"), globals())`, the
    wrapper `grader.notebooks` puts around a notebook cell's statements; None for anything
    else. The worker's audit hook lets that code compile, and the source allow-list reads it
    as module-level code: one shape for both."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "exec" and len(node.args) == 2 and not node.keywords):
        return None
    inner, scope = node.args
    if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
            and inner.func.id == "compile" and len(inner.args) == 3 and not inner.keywords
            and isinstance(scope, ast.Call) and isinstance(scope.func, ast.Name)
            and scope.func.id == "globals" and not scope.args and not scope.keywords):
        return None
    code, label, mode = (a.value if isinstance(a, ast.Constant) else None for a in inner.args)
    if isinstance(code, str) and isinstance(label, str) and mode == "exec":
        return code, label
    return None


ANNOTATIONS = __future__.annotations.compiler_flag


class SubmissionModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The submission's modules, built from source text; sibling imports (`from softmax import
    softmax` inside cross_entropy.py) resolve here first."""

    def __init__(self, sources: dict[str, tuple[str, str]], problems: dict[str, str]):
        self.sources = sources  # module name -> (filename, source text)
        self.failures: dict[str, Exception] = {m: SubmissionImportError(why)
                                               for m, why in problems.items()}
        self.files, self.notebooks = submission_files(sources)

    def is_student_file(self, filename: str) -> bool:
        """Whether code compiled as `filename` is the submission's (`is_submission_file`)."""
        return is_submission_file(filename, self.files, self.notebooks)

    def student_frames(self, e: BaseException) -> list[traceback.FrameSummary]:
        """The frames of `e`'s traceback in the submission's code, outermost first."""
        return [f for f in traceback.extract_tb(e.__traceback__)
                if self.is_student_file(f.filename)]

    def student_line(self, e: BaseException) -> str:
        """` (line N of file.py)` for the deepest frame in the submission's code, if any."""
        frames = self.student_frames(e)
        return f" (line {frames[-1].lineno} of {frames[-1].filename.rsplit('/', 1)[-1]})" \
            if frames else ""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.sources:
            return importlib.util.spec_from_loader(fullname, self, origin=self.sources[fullname][0])
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        filename, text = self.sources[module.__name__]
        module.__file__ = filename
        # annotations are never evaluated (PEP 563: kept as text), not even at def time
        exec(compile(text, filename, "exec", flags=ANNOTATIONS), module.__dict__)

    def module(self, name: str, refused: Refusals | None = None) -> types.ModuleType:
        """Import a submission module once; a failure is remembered and raised again, and so
        is a refusal of the audit hook while it was imported (`refused`: the refusals of this
        request so far; without it, none are looked at)."""
        if name in self.failures:
            raise self.failures[name]
        if name in sys.modules and getattr(sys.modules[name], "__loader__", None) is self:
            return sys.modules[name]
        if name not in self.sources:
            raise MissingFunction(f"your submission has no {name}.py (or {name}.ipynb)")
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        before = set(refused()) if refused is not None else set()
        try:
            module = importlib.import_module(name)
            err: Exception | None = None
        except BaseException as e:  # SystemExit and KeyboardInterrupt at import included
            err = SubmissionImportError(_import_message(name, e, self.student_line(e)))
        calls = tuple(c for c in refused() if c not in before) if refused is not None else ()
        if calls:
            err = RefusedAtImport(name, calls)
        if err is None:
            return module
        sys.modules.pop(name, None)
        self.failures[name] = err
        raise err from None

    def function(self, module: str, name: str, refused: Refusals | None = None) -> Callable:
        mod = self.module(module, refused)
        fn = getattr(mod, name, None)
        if fn is None:
            raise MissingFunction(f"{module}.py defines no `{name}`: keep the names and "
                                  "signatures of the exercise")
        if not callable(fn):
            raise MissingFunction(f"`{name}` in {module}.py is a {type(fn).__name__}, "
                                  "not a function")
        return fn


def _import_message(module: str, e: BaseException, where: str) -> str:
    """What a student reads when `module` failed to import with `e` (`where`: the line)."""
    if isinstance(e, SyntaxError):
        return (f"{module}.py has a syntax error at line {e.lineno}: {e.msg}. "
                "Fix it and run the file once to check.")
    if isinstance(e, SystemExit):
        return f"{module}.py called sys.exit() while being imported; remove that call."
    if isinstance(e, ModuleNotFoundError) and e.name:
        text = f"{module}.py imports {e.name}{where}, which is not installed where grading runs."
        if "." not in e.name:  # perhaps a helper module of the student's own
            text += (f" If {e.name}.py is a file of yours: only the course's topic files (like "
                     f"{module}.py) are graded and reach the grader, so copy the code you need "
                     f"from {e.name}.py into {module}.py.")
        return text
    return f"importing {module}.py raised {type(e).__name__}: {e}{where}"


@contextlib.contextmanager
def fake_cuda(devices: int | None) -> Iterator[None]:
    """Make torch report `devices` CUDA devices (None: leave torch alone)."""
    if devices is None:
        yield
        return
    import torch

    patches: list[tuple[Any, str, Callable[..., Any]]] = [
        (torch.cuda, "is_available", lambda: devices > 0),
        (torch.cuda, "device_count", lambda: devices)]
    acc = getattr(torch, "accelerator", None)
    if acc is not None:
        patches += [(acc, "is_available", lambda: devices > 0),
                    (acc, "device_count", lambda: devices),
                    (acc, "current_accelerator",
                     lambda *a, **k: torch.device("cuda") if devices > 0 else None)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches if hasattr(obj, name)]
    for obj, name, fn in patches:
        if hasattr(obj, name):
            setattr(obj, name, fn)
    try:
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def gradient(fn: Callable, args: tuple, kwargs: dict, grad_output: Any, wrt: int | tuple[int, ...]):
    """`v^T dF/dargs[wrt]` through student code; `v` defaults to ones for a scalar output."""
    import torch

    wrt_list = (wrt,) if isinstance(wrt, int) else tuple(wrt)
    call_args = list(args)
    for i in wrt_list:
        if not isinstance(call_args[i], torch.Tensor):
            raise TypeError(f"argument {i} is not a tensor; cannot differentiate")
        call_args[i] = call_args[i].detach().requires_grad_(True)
    out = fn(*call_args, **kwargs)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"returned {type(out).__name__}, not a tensor: cannot differentiate")
    if not out.requires_grad:
        raise NotConnected()
    if grad_output is None:
        grad_output = torch.ones_like(out)
    inputs = [call_args[i] for i in wrt_list]
    grads = torch.autograd.grad(out, inputs, grad_outputs=grad_output, allow_unused=True)
    grads = tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs,
                                                                          strict=True))
    return grads[0] if isinstance(wrt, int) else grads


class NotConnected(Exception):
    """The output does not depend on the input through autograd."""

    def __str__(self) -> str:
        return ("the output is not connected to the input in the autograd graph: no "
                "`.detach()`, `.item()`, `.numpy()`, `torch.tensor(...)` of intermediate "
                "results, and no `torch.no_grad()` in this function")


def seed_everything(seed: int) -> None:
    """Seed torch, random and NumPy: a test's first call starts from the same state in every
    run, so a score is reproducible."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    # torch.manual_seed's CPU and CUDA parts: it also queues a seed for every other backend,
    # each with a formatted stack trace (0.3 ms a test).
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# (function, args, kwargs, grad_output) -> the grader's value of the function; with a
# grad_output, the vector-Jacobian product for each argument (None for a non-tensor)
Callback = Callable[[str, tuple, dict, Any], Any]


@contextlib.contextmanager
def substituted(request: dict, modules: SubmissionModules,
                callback: Callback | None) -> Iterator[None]:
    """For this call, the module's functions the request names in `substitute` are stand-ins
    that ask the grader (`callback`) for their value: a function is graded as if the contract
    functions it calls were right, and no reference code ever enters the worker."""
    names = request.get("substitute") or ()
    if not names or callback is None or request.get("kind") not in ("call", "gradient"):
        yield
        return
    namespace = modules.module(request["module"]).__dict__
    saved = {name: namespace[name] for name in names if name in namespace}
    for name in names:
        namespace[name] = _stand_in(name, callback)
    try:
        yield
    finally:
        for name in names:
            namespace.pop(name, None)
        namespace.update(saved)


def _stand_in(name: str, callback: Callback) -> Callable:
    """The grader's `name`: its value, and where an argument requires grad, its gradient too
    (a custom autograd Function whose backward asks the grader for the product)."""
    import torch

    class Served(torch.autograd.Function):
        @staticmethod
        def forward(ctx, kwargs: dict, *args):
            ctx.kwargs, ctx.args = kwargs, args
            return callback(name, args, kwargs, None)

        @staticmethod
        def backward(ctx, grad_output):
            grads = callback(name, ctx.args, ctx.kwargs, grad_output)
            return (None, *grads)

    def stand_in(*args, **kwargs):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad
                                           for a in args):
            return Served.apply(kwargs, *args)
        return callback(name, args, kwargs, None)
    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


def run(request: dict, modules: SubmissionModules, hits: list[str],
        refused: Refusals | None = None, callback: Callback | None = None) -> Any:
    """Execute one call, gradient or import request; forbidden calls it hit are appended to
    `hits` whether or not it raises (`refused`: the audit hook's refusals of this request so
    far, in a sandboxed worker). A failure of the grader's own set-up raises
    GraderStepFailed. `callback`: how a stand-in asks the grader (`substituted`)."""
    if request.get("seed") is not None:  # before the import: a module may draw at import
        try:
            seed_everything(request["seed"])
        except Exception as e:
            raise GraderStepFailed("setup") from e
    kind = request["kind"]
    try:
        if kind == "import":  # the module alone, so that a hang here is known as the import's
            modules.module(request["module"], refused)
            return None
        if kind == "remote":
            fn, name = request["fn"], getattr(request["fn"], "__name__", "callable")
        else:
            fn = modules.function(request["module"], request["function"], refused)
            name = request["function"]
    except RefusedAtImport as e:  # each function of such a module is flagged
        hits.extend(e.calls)
        raise
    forbidden = tuple(request.get("forbidden", ()))
    with contextlib.ExitStack() as stack:
        try:
            guard = Guard(forbidden, name)
            stack.callback(lambda: hits.extend(guard.hits))
            stack.enter_context(fake_cuda(request.get("cuda_devices")))
            stack.enter_context(guard)
            stack.enter_context(dispatch_guard.armed(forbidden, guard.state))
            stack.enter_context(substituted(request, modules, callback))
        except Exception as e:
            raise GraderStepFailed("setup") from e
        if kind == "gradient":
            return gradient(fn, request["args"], request["kwargs"],
                            request.get("grad_output"), request.get("wrt", 0))
        return fn(*request["args"], **request["kwargs"])

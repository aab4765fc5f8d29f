"""Machinery in a submission's source: what the grader cannot check at run time, so it costs the
points of the functions that use it unless course.toml allows it.

The dispatcher guard (`grader.sandbox.dispatch_guard`) catches every forbidden operator however it
is reached, from inside the worker's interpreter. Code that reaches *around* that interpreter or
into the grader could undo or escape it: torch's private and compiler APIs (`torch._C`,
`torch.library`, `torch.ops`, `torch.jit`, `torch.compile`, `torch._refs`...), threads and processes
(`threading`, `multiprocessing`, `subprocess`, `os.system`: a new interpreter has no guard),
`ctypes`, `gc`, `importlib`, `exec`/`eval`/`compile`/`__import__`, `vars`/`globals`, `getattr` with
a computed or private name (or passed around as a value, or `operator.attrgetter`), modules that
fetch any object by a name in a string (`inspect`, `pkgutil`, `pickle`...), another object's private
attributes (`obj._x`; a class's own `self._x` is fine), the attributes that open a function's
closure or globals, and any import of `grader`. None of it is needed for an exercise of this course.

Used in a function (or a helper it calls), it costs that function; used at module level (an
import, a thread started at import), every function of the module.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from grader.scan.source import add_aliases, callers, dotted, function_names, parse

MODULES = {  # top-level modules no exercise needs: name -> what it is, for the message
    "ctypes": "ctypes", "gc": "gc", "importlib": "importlib", "threading": "threading",
    "_thread": "threading", "multiprocessing": "multiprocessing", "concurrent": "threads",
    "subprocess": "subprocess", "signal": "signal", "builtins": "builtins",
    "marshal": "marshal", "pty": "pty", "grader": "the grader's modules", "sys.modules": "",
    # each reaches any module or object by a name in a string
    "inspect": "inspect", "pkgutil": "pkgutil", "runpy": "runpy", "pickle": "pickle",
    "_pickle": "pickle", "copyreg": "copyreg", "shelve": "shelve", "code": "code",
    "codeop": "codeop", "imp": "imp", "zipimport": "zipimport",
}
COMPUTED_ACCESS = ("operator.attrgetter", "operator.methodcaller")
TORCH_MACHINERY = ("torch.jit", "torch.library", "torch.ops", "torch.compile", "torch.fx",
                   "torch.export", "torch.utils.cpp_extension", "torch.overrides",
                   "torch.utils._python_dispatch")
OS_ESCAPES = ("os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn")
CALLS = {"exec", "eval", "compile", "__import__", "breakpoint", "vars", "globals", "locals"}
ATTRIBUTE_CALLS = {"getattr", "setattr", "delattr", "hasattr"}
DUNDERS = {"__dict__", "__globals__", "__closure__", "__code__", "__wrapped__",
           "__subclasses__", "__builtins__", "__getattribute__", "__loader__", "__spec__",
           "__import__", "__kwdefaults__", "__defaults__", "__self__", "__func__"}


def _reason(full: str) -> str | None:
    """Why a dotted name (import aliases resolved) is machinery, or None."""
    top = full.split(".")[0]
    if full == "sys.modules" or full.startswith("sys.modules."):
        return "sys.modules"
    if top in MODULES:
        return MODULES[top]
    if full.startswith(COMPUTED_ACCESS):
        return "computed attribute access (operator.attrgetter)"
    if full.startswith(OS_ESCAPES):
        return full.split("(")[0]
    if full.startswith(TORCH_MACHINERY):
        return next(m for m in TORCH_MACHINERY if full.startswith(m))
    parts = full.split(".")
    if parts[0] == "torch" and any(p.startswith("_") and not p.startswith("__")
                                   for p in parts[1:]):
        return "torch's private API (" + ".".join(
            parts[:next(i for i, p in enumerate(parts) if p.startswith("_")) + 1]) + ")"
    return None


def _aliases(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            add_aliases(node, found)
    return found


def _exec_of_constant(node: ast.AST) -> tuple[ast.Call, str] | None:
    """`exec(compile("<code>", "<label>", "exec"), globals())`: how `grader.notebooks` runs a
    notebook cell's statements so that one failing cell costs only what it defines. The code is
    a constant, so it is read here like the rest of the module instead of being machinery.
    The exec call and its code; None for any other node."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "exec" and node.args):
        return None
    inner = node.args[0]
    if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name)
            and inner.func.id == "compile" and len(inner.args) == 3
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                    for a in inner.args)):
        return None
    code = inner.args[0]
    return (node, code.value) if isinstance(code, ast.Constant) and isinstance(
        code.value, str) else None


def _embedded(tree: ast.AST) -> tuple[list[ast.Module], set[int]]:
    """The modules `exec`-ed from constants anywhere in `tree` (and in them), and the ids of
    those exec and compile calls, which are not machinery themselves."""
    modules: list[ast.Module] = []
    skip: set[int] = set()
    todo = [tree]
    while todo:
        for node in ast.walk(todo.pop()):
            if (found := _exec_of_constant(node)) is not None:
                call, code = found
                skip |= {id(call), *map(id, call.args)}  # exec, compile and globals()
                try:
                    parsed = ast.parse(code)
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    continue
                modules.append(parsed)
                todo.append(parsed)
    return modules, skip


def _uses(node: ast.AST, aliases: dict[str, str],
          skip: AbstractSet[int] = frozenset()) -> set[str]:
    """The machinery one statement or definition uses (`skip`: calls that are not)."""
    found: set[str] = set()
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    for inner in ast.walk(node):
        if id(inner) in skip:
            continue
        if isinstance(inner, ast.Import):
            found |= {r for a in inner.names if (r := _reason(a.name))}
        elif isinstance(inner, ast.ImportFrom) and inner.module:
            found |= {r for a in inner.names if (r := _reason(f"{inner.module}.{a.name}"))}
        elif isinstance(inner, ast.Attribute):
            chain = dotted(inner)
            reason = _reason(".".join([aliases[chain[0]], *chain[1:]])) \
                if chain and chain[0] in aliases else None
            if reason is not None:  # a known name says best what it is (`torch._C`)
                found.add(reason)
            elif inner.attr in DUNDERS:
                found.add(f"the {inner.attr} attribute")
            elif inner.attr.startswith("_") and not inner.attr.startswith("__") and not (
                    isinstance(inner.value, ast.Name) and inner.value.id in ("self", "cls")):
                found.add(f"a private attribute (.{inner.attr})")
        elif isinstance(inner, ast.Name) and inner.id in aliases:
            if (r := _reason(aliases[inner.id])) is not None:
                found.add(r)
        elif isinstance(inner, ast.Name) and inner.id in ATTRIBUTE_CALLS | CALLS and (
                id(inner) not in called):
            found.add(f"{inner.id} passed around as a value")
        elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name):
            name = inner.func.id
            if name in CALLS:
                found.add(f"{name}()")
            elif name in ATTRIBUTE_CALLS and len(inner.args) >= 2:
                attr = inner.args[1]
                if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                    found.add(f"{name}() with a computed name")
                elif attr.value.startswith("_"):
                    found.add(f"{name}() of a private name")
    return found


@functools.lru_cache(maxsize=8)
def machinery(source: str) -> dict[str, tuple[str, ...]]:
    """Top-level function -> the machinery it uses, itself or through the helpers it calls,
    or through module-level code. Raises SourceTooLarge past MAX_SOURCE_CHARS."""
    tree = parse(source)
    if tree is None:
        return {}
    embedded, skip = _embedded(tree)
    aliases = _aliases(tree)
    for module in embedded:
        aliases.update(_aliases(module))
    module_level: set[str] = set()
    for module in embedded:  # a notebook's statement cells run at import: module-level code
        module_level |= _uses(module, aliases, skip)
    own: dict[str, set[str]] = {}
    for node in tree.body:
        uses = _uses(node, aliases, skip)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own[node.name] = uses
        else:
            module_level |= uses
    reached = {name: set(module_level) for name in own}
    graph = callers(source)
    for reason in set().union(*own.values()) if own else ():  # few reasons: one walk each
        todo = [name for name, uses in own.items() if reason in uses]
        seen = set(todo)
        while todo:
            name = todo.pop()
            reached[name].add(reason)
            fresh = graph.get(name, set()) - seen
            seen |= fresh
            todo.extend(fresh)
    functions = set(function_names(source))
    return {f: tuple(sorted(r)) for f, r in reached.items() if r and f in functions}


def costing(source: str, allowed: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """`machinery(source)` less what course.toml allows (by the names it reports, or an
    fnmatch pattern: `*` allows everything)."""
    allow = set(allowed)
    result = {}
    for function, uses in machinery(source).items():
        kept = tuple(u for u in uses
                     if not any(a in u or fnmatch.fnmatchcase(u, a) for a in allow))
        if kept:
            result[function] = kept
    return result


def message(function: str, uses: Iterable[str]) -> str:
    """What a student reads on each lost test of `function`."""
    return (f"{function} uses {', '.join(uses)}: machinery the grader cannot check (it could "
            "reach around the rules of the exercise), so the tests of this function earn "
            "nothing. Nothing in this course needs it: remove it and use torch's public "
            "operations.")

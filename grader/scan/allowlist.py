"""A submission's source as an allow-list (course.toml's [source]), read in the grader before
any of it runs: every statement of every scope (module level, functions, lambdas, classes,
default arguments, decorators, annotations) is checked, and each place that steps outside is a
`Step` with its line. A module with a step costs every graded function it defines, however it
is bound (`def`, lambda, alias, class): the worker's guards live in the same interpreter as the
student's code, so code that may reach them is not graded at all.

What a submission may contain:
- imports from `SourceRules.imports`, the course's own topic modules and `__future__`;
- names reached in another module or object that do not begin with `_`, but for the
  data-model methods (`DATA_MODEL`); a private attribute the module itself defines
  (`self._cache = ...`, a `_helper` method) is its own;
- no attribute naming a module outside the list (`torch.sys`, `torch.jit`, `F.importlib`),
  found in `module_attributes.json`, which `python -m grader sync` computes from the allowed
  modules themselves; no interpreter internals (`gi_frame`, `tb_frame`, `f_back`, `co_code`);
- a module used by naming its attributes only, never as a value (`t = torch`, `f(torch)`),
  so every attribute reached on a module is known here; `F = torch.nn.functional`, bound once
  at module level, is an alias like an import;
- no builtin that reaches around (`REACHING_BUILTINS`), no name in `SourceRules.refused`, no
  assignment to another module's attributes.
Annotations are checked like any expression and never evaluated (the worker compiles modules
with postponed annotations).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.machinery
import json
import pkgutil
import re
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.course import SourceRules
from grader.sandbox.execute import compiled_cell
from grader.scan.source import add_aliases, dotted, parse

MODULE_ATTRIBUTES_FILE = Path(__file__).with_name("module_attributes.json")
# Data-model methods a class may define and code may name; `__name__`/`__doc__`/`__version__`
# are read-only descriptions.
DATA_MODEL = frozenset({
    "__init__", "__call__", "__len__", "__getitem__", "__setitem__", "__delitem__",
    "__iter__", "__next__", "__reversed__", "__contains__", "__repr__", "__str__",
    "__enter__", "__exit__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "__hash__", "__bool__", "__float__", "__int__", "__index__", "__neg__", "__pos__",
    "__abs__", "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__",
    "__mul__", "__rmul__", "__imul__", "__truediv__", "__rtruediv__", "__itruediv__",
    "__floordiv__", "__mod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__",
    "__post_init__", "__name__", "__doc__", "__version__",
})
MODULE_DUNDERS = frozenset({"__all__", "__slots__", "__doc__", "__name__", "__file__",
                            "__debug__"})  # a module may bind or read these
REACHING_BUILTINS = frozenset({
    "getattr", "setattr", "delattr", "vars", "globals", "locals", "eval", "exec", "compile",
    "__import__", "breakpoint"})
SHADOWABLE_BUILTINS = frozenset({"open", "input"})  # refused only where they are the builtins
DEBUGGING_BUILTINS = frozenset({"breakpoint"})  # allowed under `grade --in-process`
DEBUGGING_MODULES = frozenset({"pdb"})  # likewise: `import pdb; pdb.set_trace()`
FUTURE = "__future__"


@dataclass(frozen=True)
class Step:
    """A place where the source steps outside the allow-list: where, what, and its kind (the
    name course.toml's `allow` may name to lift it)."""

    line: int
    place: str  # "line 12" or, in a notebook, "cell 4"
    text: str
    kind: str  # import, private, dunder, module, internal, builtin, refused, module-value, store

    def __str__(self) -> str:
        return f"{self.place}: {self.text}"


# -- what the allowed modules hold (computed from them, kept in module_attributes.json) -------


def compute_module_attributes(rules: SourceRules) -> dict[str, object]:
    """What `sync` writes to MODULE_ATTRIBUTES_FILE, computed from the allowed modules (each
    imported here): `modules`, allowed module -> {public attribute: the module it holds},
    walked from every allowed module into the allowed modules it holds; `submodules`, each
    such package -> its public submodules, imported or not; `unresolved`, the
    attribute names that hold a module outside the list somewhere and are not also a member
    of any public class of those modules (`sys`, `jit`, `importlib`; not `modules`, which
    `nn.Module` has): named on an object the scan cannot resolve, they are refused."""
    roots = [p[:-2] if p.endswith(".*") else p for p in rules.imports if p != FUTURE]
    for name in roots:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    for pattern in rules.imports:  # `name.*`: every public submodule, held or not
        package = sys.modules.get(pattern[:-2]) if pattern.endswith(".*") else None
        for found in pkgutil.walk_packages(getattr(package, "__path__", None) or [],
                                           f"{pattern[:-2]}.", onerror=lambda name: None):
            if not _private(found.name):
                with contextlib.suppress(Exception):
                    importlib.import_module(found.name)
    table: dict[str, dict[str, str]] = {}
    children: dict[str, list[str]] = {}
    members: set[str] = set()
    todo = [n for n in roots if n in sys.modules]
    while todo:
        name = todo.pop()
        module = sys.modules.get(name)
        if name in table or not isinstance(module, types.ModuleType):
            continue
        public = {attr: value for attr, value in vars(module).items() if not attr.startswith("_")}
        table[name] = {attr: value.__name__ for attr, value in sorted(public.items())
                       if isinstance(value, types.ModuleType)}
        path = getattr(module, "__path__", None)
        if path is not None:  # its submodules, imported or not
            children[name] = sorted(m.name for m in pkgutil.iter_modules(list(path))
                                    if not m.name.startswith("_"))
        for value in public.values():
            if isinstance(value, type):
                members.update(n for n in dir(value) if not n.startswith("_"))
        todo += [m for m in table[name].values() if rules.allows_import(m) and m not in table]
    outside = {attr for held in table.values() for attr, module in held.items()
               if not rules.allows_import(module)}
    return {"modules": dict(sorted(table.items())), "submodules": dict(sorted(children.items())),
            "unresolved": sorted(outside - members)}


def _private(dotted_name: str) -> bool:
    return any(part.startswith("_") for part in dotted_name.split("."))


@dataclass(frozen=True)
class ModuleTable:
    """MODULE_ATTRIBUTES_FILE as `sync` wrote it (see `compute_module_attributes`)."""

    modules: dict[str, dict[str, str]]
    submodules: dict[str, list[str]]
    unresolved: frozenset[str]


@functools.cache
def _module_attributes() -> ModuleTable:
    try:
        data = json.loads(MODULE_ATTRIBUTES_FILE.read_text())
        return ModuleTable(dict(data["modules"]), dict(data["submodules"]),
                           frozenset(data["unresolved"]))
    except (OSError, ValueError, KeyError, TypeError):
        return ModuleTable({}, {}, frozenset())


@functools.cache
def interpreter_attributes() -> frozenset[str]:
    """The public attributes of frames, tracebacks, code, generators, coroutines and cells
    (`f_back`, `tb_frame`, `gi_frame`, `co_code`, `cell_contents`): each opens the
    interpreter's internals, so none may be named. Read from those objects themselves."""
    def generator():
        yield

    async def coroutine():
        return None

    async def async_generator():
        yield

    def closure():
        return internals

    internals: list[object] = [generator(), coroutine(), async_generator()]
    try:
        raise ValueError
    except ValueError as e:
        internals += [e.__traceback__, sys._getframe(), closure.__code__,
                      (closure.__closure__ or (None,))[0]]
    names = frozenset(n for obj in internals for n in dir(obj)
                      if re.match(r"(f|tb|gi|cr|ag|co|cell)_", n))
    internals[1].close()  # type: ignore[attr-defined]  # the coroutine, never awaited
    return names


@functools.lru_cache(maxsize=1 << 16)
def module_of(full: str, topics: frozenset[str] = frozenset()) -> str | None:
    """The module a dotted name is (`torch.nn` -> `torch.nn`, `torch.sys` -> `sys`), or None
    when it is not a module, read from what `sync` computed: the same answer in every
    process, whatever it imported."""
    table = _module_attributes()
    if full in table.modules or full in topics or full == FUTURE:
        return full
    parent, _, leaf = full.rpartition(".")
    if not parent:
        return full if full in sys.builtin_module_names or (
            importlib.machinery.PathFinder.find_spec(full) is not None) else None
    parent_module = module_of(parent, topics)
    if parent_module is None:
        return None
    held = table.modules.get(parent_module, {}).get(leaf)
    if held is not None:
        return held
    if leaf in table.submodules.get(parent_module, ()):
        return f"{parent_module}.{leaf}"
    return None


# -- one module's scan -------------------------------------------------------------------------


class _Scan:
    """One pass over a module's tree (and the code it execs from constants, a notebook's
    cells), collecting its steps."""

    def __init__(self, tree: ast.Module, source: str, rules: SourceRules,
                 topics: frozenset[str], debugging: bool):
        self.rules, self.topics, self.debugging = rules, topics, debugging
        table = _module_attributes()
        self.modules, self.submodules, self.unresolved = (table.modules, table.submodules,
                                                          table.unresolved)
        self.steps: dict[tuple[int, str], Step] = {}
        self.cells = _cell_lines(source)
        self.wrappers: set[int] = set()  # ids of the exec/compile/globals of embedded code
        trees = [(tree, None)] + _embedded(tree, self.wrappers)
        self.aliases: dict[str, str] = {}
        for t, _ in trees:
            for node in ast.walk(t):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    add_aliases(node, self.aliases)
        self.bound = set().union(*(_bound_names(t) for t, _ in trees))
        self.own_attributes = set().union(*(_own_attributes(t) for t, _ in trees))
        self._alias_assignments(tree)
        for t, label in trees:
            self._walk(t, label)

    # -- the module's own names ---------------------------------------------------------------

    def _alias_assignments(self, tree: ast.Module) -> None:
        """`F = torch.nn.functional` at module level, the only binding of `F`: an alias."""
        counts: dict[str, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                counts[node.id] = counts.get(node.id, 0) + 1
            elif isinstance(node, ast.arg):
                counts[node.arg] = counts.get(node.arg, 0) + 1
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and counts.get(node.targets[0].id) == 1
                    and node.targets[0].id not in self.aliases
                    and (full := self._resolve(node.value)) and self._module_of(full)):
                self.aliases[node.targets[0].id] = full
                self.wrappers.add(id(node.value))  # not a module used as a value

    # -- resolving names ----------------------------------------------------------------------

    def _resolve(self, node: ast.AST) -> str | None:
        """The dotted name an expression stands for when it starts at an import alias
        (`F.relu` -> `torch.nn.functional.relu`), else None."""
        chain = dotted(node)
        if not chain or chain[0] not in self.aliases:
            return None
        return ".".join([self.aliases[chain[0]], *chain[1:]])

    def _module_allowed(self, module: str) -> bool:
        return (module == FUTURE or module in self.topics or self.rules.allows_import(module)
                or self.debugging and module in DEBUGGING_MODULES)

    def _module_of(self, full: str) -> str | None:
        return module_of(full, self.topics)

    # -- the walk ------------------------------------------------------------------------------

    def _step(self, node: ast.AST, text: str, kind: str, label: str | None) -> None:
        line = getattr(node, "lineno", 0)
        place = label or self.cells.get(line) or f"line {line}"
        key = (line if label is None else hash(label) + line, text)
        self.steps.setdefault(key, Step(line, place, text, kind))

    def _walk(self, tree: ast.AST, label: str | None) -> None:
        parents: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        for node in _own_nodes(tree, self.wrappers):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self._check_import(node, a.name, label)
            elif isinstance(node, ast.ImportFrom):
                self._check_import_from(node, label)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self._check_defined(node, node.name, label)
            elif isinstance(node, ast.Name):
                self._check_name(node, parents, label)
            elif isinstance(node, ast.Attribute):
                self._check_attribute(node, parents, label)

    def _check_import(self, node: ast.AST, module: str, label: str | None) -> None:
        if module != FUTURE and _private(module):
            self._step(node, f"`import {module}`: a private module", "private", label)
            return
        if self._module_allowed(module):
            return
        text = f"`import {module}`: {module} is not among the modules a submission may import"
        if "." not in module and module_of(module) is None:  # a helper file of theirs?
            text += (f" (if {module}.py is a file of yours: only the course's topic files are "
                     f"graded, so copy the code you need from {module}.py into this file)")
        self._step(node, text, "import", label)

    def _check_import_from(self, node: ast.ImportFrom, label: str | None) -> None:
        module = node.module or ""
        if node.level:
            self._step(node, "a relative import: a submission is one module per topic",
                       "import", label)
            return
        if not self._module_allowed(module) or _private(module):
            self._check_import(node, module, label)
            return
        for a in node.names:
            full = f"{module}.{a.name}"
            if a.name == "*":
                self._step(node, f"`from {module} import *`: name what you use", "import", label)
            elif a.name.startswith("_") and module != FUTURE:
                self._step(node, f"`{full}`: a private name of {module}", "private", label)
            elif (held := self._module_of(full)) is not None and not self._module_allowed(held):
                self._step(node, f"`{full}`: names the module {held}, which a submission may "
                           "not use", "module", label)
            elif self._refused(full):
                self._step(node, f"`{full}` reaches around the rules of the exercise", "refused",
                           label)

    def _refused(self, full: str) -> bool:
        return any(full == r or full.startswith(r + ".") for r in self.rules.refused)

    def _check_defined(self, node: ast.AST, name: str, label: str | None) -> None:
        if _dunder(name) and name not in DATA_MODEL | MODULE_DUNDERS:
            self._step(node, f"defines `{name}`, a hook into Python's machinery that no "
                       "exercise needs", "dunder", label)

    def _check_name(self, node: ast.Name, parents: dict[int, ast.AST], label: str | None
                    ) -> None:
        name = node.id
        if name in REACHING_BUILTINS:
            if not (self.debugging and name in DEBUGGING_BUILTINS):
                self._step(node, f"`{name}`: reaches objects by a computed name or runs "
                           "code from text", "builtin", label)
        elif name in SHADOWABLE_BUILTINS and isinstance(node.ctx, ast.Load) and (
                name not in self.bound):
            self._step(node, f"`{name}()`: graded code reads no files or input", "builtin",
                       label)
        elif _dunder(name) and name not in DATA_MODEL | MODULE_DUNDERS:
            self._step(node, f"`{name}`: part of Python's machinery", "dunder", label)
        elif (name.startswith("_") and isinstance(node.ctx, ast.Load)
              and name not in self.bound and name not in MODULE_DUNDERS):
            self._step(node, f"`{name}`: a private name the module does not define",
                       "private", label)
        elif isinstance(node.ctx, ast.Load) and name in self.aliases:
            self._check_module_value(node, parents, label)

    def _check_module_value(self, node: ast.expr, parents: dict[int, ast.AST],
                            label: str | None) -> None:
        """A module named anywhere but as the base of an attribute (`t = torch`, `f(np)`)."""
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node or id(node) in \
                self.wrappers:
            return
        full = self._resolve(node)
        if full is not None and self._module_of(full) is not None:
            self._step(node, f"`{ast.unparse(node)}`, a module, used as a value: use its "
                       "functions by name (`torch.exp(X)`)", "module-value", label)

    def _check_attribute(self, node: ast.Attribute, parents: dict[int, ast.AST],
                         label: str | None) -> None:
        attr = node.attr
        full = self._resolve(node)
        base = self._resolve(node.value)
        if _dunder(attr):
            if attr not in DATA_MODEL:
                self._step(node, f"`.{attr}`: part of Python's machinery, not a data-model "
                           "method", "dunder", label)
            return
        if attr.startswith("_"):
            if base is not None or attr not in self.own_attributes:
                owner = f"of {base}" if base else "the module does not define"
                self._step(node, f"`.{attr}`: a private name {owner}", "private", label)
            return
        if attr in interpreter_attributes():
            self._step(node, f"`.{attr}`: the interpreter's internals (frames, code)",
                       "internal", label)
            return
        if isinstance(node.ctx, ast.Store | ast.Del) and base is not None:
            self._step(node, f"`{full}` = ...: changes another module's objects", "store",
                       label)
            return
        if full is None:
            if attr in self.unresolved and attr not in self.own_attributes:
                self._step(node, f"`.{attr}` names a module a submission may not use",
                           "module", label)
            return
        if self._refused(full):
            self._step(node, f"`{full}` reaches around the rules of the exercise", "refused",
                       label)
        elif (held := self._module_of(full)) is not None:
            if not self._module_allowed(held):
                self._step(node, f"`{full}` names the module {held}, which a submission may "
                           "not use", "module", label)
            else:
                self._check_module_value(node, parents, label)
        elif attr in self.unresolved:  # on a module the table does not hold: its name decides
            self._step(node, f"`{full}` names a module a submission may not use", "module",
                       label)


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _own_nodes(tree: ast.AST, skip: set[int]) -> Iterator[ast.AST]:
    """Every node of `tree` but the embedded code's wrappers (scanned as modules of their
    own) and the constant code inside them."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if id(node) in skip and isinstance(node, ast.Call):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the module binds anywhere: assignments, parameters, definitions, imports,
    `except ... as`, `global`/`nonlocal`, match captures."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _own_attributes(tree: ast.AST) -> set[str]:
    """Attribute names the module defines itself: set on an object (`self._cache = ...`) or
    defined in a class's body (a `_helper` method, a class attribute)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(item.name)
                elif isinstance(item, ast.Assign | ast.AnnAssign):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _embedded(tree: ast.AST, wrappers: set[int]) -> list[tuple[ast.Module, str | None]]:
    """The modules `exec`-ed from constants anywhere in `tree` (and in them), each with its
    label; the ids of their exec calls go into `wrappers`."""
    found: list[tuple[ast.Module, str | None]] = []
    todo = [tree]
    while todo:
        for node in ast.walk(todo.pop()):
            if (embedded := compiled_cell(node)) is None:
                continue
            code, label = embedded
            wrappers.add(id(node))
            try:
                parsed = ast.parse(code)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue  # it raises when run, as the cell would have
            found.append((parsed, label.rpartition(", ")[2] or label))
            todo.append(parsed)
    return found


CELL_MARKER = re.compile(r"^# cell (\d+)")


def _cell_lines(source: str) -> dict[int, str]:
    """Line -> "cell N" in a module made from a notebook (`grader.notebooks`); empty for a
    `.py` file."""
    places: dict[int, str] = {}
    cell = None
    for number, line in enumerate(source.splitlines(), start=1):
        if match := CELL_MARKER.match(line):
            cell = f"cell {match.group(1)}"
        if cell:
            places[number] = cell
    return places


@functools.lru_cache(maxsize=16)
def steps_outside(source: str, rules: SourceRules, topics: frozenset[str] = frozenset(),
                  debugging: bool = False) -> tuple[Step, ...]:
    """Each place where `source` steps outside the allow-list, in line order. `topics`: the
    course's topic modules (importable by each other); `debugging`: `grade --in-process`,
    where `breakpoint()` and `import pdb` are the student's. Raises SourceTooLarge past
    MAX_SOURCE_CHARS; a module that does not parse has no steps (its tests report the syntax
    error)."""
    tree = parse(source)
    if tree is None:
        return ()
    found = _Scan(tree, source, rules, topics, debugging).steps.values()
    return tuple(sorted(found, key=lambda s: (s.place != f"line {s.line}", s.line, s.text)))


def costing(source: str, rules: SourceRules, topics: Iterable[str], allowed: Iterable[str] = (),
            debugging: bool = False) -> tuple[Step, ...]:
    """`steps_outside` less the kinds or texts course.toml's `allow` names for the topic
    (`"*"` allows everything: a course for testing other layers)."""
    allow = tuple(allowed)
    if "*" in allow:
        return ()
    return tuple(s for s in steps_outside(source, rules, frozenset(topics), debugging)
                 if not any(a == s.kind or a in s.text for a in allow))


MAX_SHOWN = 12  # steps listed in a message; the report's flags hold every one


def message(module: str, steps: Sequence[Step]) -> str:
    """What a student reads on each test of a module that steps outside."""
    shown = "; ".join(map(str, steps[:MAX_SHOWN]))
    more = f"; and {len(steps) - MAX_SHOWN} more" if len(steps) > MAX_SHOWN else ""
    return (f"{module} steps outside what a submission may contain ({shown}{more}). Graded "
            "code runs beside the grader's checks, so a module that could reach around them "
            "earns nothing for any of its functions. Nothing in this course needs these: use "
            "torch's public operations and the modules listed in the README.")

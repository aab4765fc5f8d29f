"""Reading a submission's source in the grader (never running it): forbidden calls named in a
function's body, and Python loops where the exercise asks for vectorised code.

A function is scanned together with the module-level helpers it calls, so moving
`torch.cdist` into `_helper()` is still seen, and found however it is bound: a `def`, a class,
or a top-level assignment (`pick = _pick_loop`, `softmax = lambda X: ...`), also inside a
top-level `if`/`try`/`with` (each binding of a name counts).

The grader's work is bounded whatever the source: a source over `MAX_SOURCE_CHARS` is not
scanned at all (`SourceTooLarge`; `grader.submission` refuses such a file before it is
graded), and a module is parsed and walked once (`_scan`, cached by its text) into tables of
its top-level definitions. Queries then walk the call graph between definitions, visiting each
at most once: a forbidden name is traced back from its users once for the whole module, loops
forward from one function. A module of thousands of functions that all call each other costs
one parse and a few linear walks, not a parse and a walk per function.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from grader.sandbox.forbidden import canonical

MAX_SOURCE_CHARS = 1_000_000  # a solution is a few kB; past this the source is not read
LOOP_NODES: dict[type[ast.AST], str] = {
    ast.For: "a for loop", ast.While: "a while loop", ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.AsyncFor: "a for loop"}
LOOP_CALLS = ("map", "reduce", "starmap")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class SourceTooLarge(ValueError):
    """A module too large to scan (the grader's work on one submission is bounded)."""

    def __init__(self, chars: int):
        super().__init__(f"the module is {chars / 1e6:.1f} MB of text; the grader reads "
                         f"modules up to {MAX_SOURCE_CHARS / 1e6:g} MB (a solution is a few kB)")


class _Span(NamedTuple):
    """Where a definition sits in the source (what `ast.get_source_segment` reads)."""

    lineno: int
    col_offset: int
    end_lineno: int
    end_col_offset: int


@dataclass
class _Definition:
    """What one top-level name's bindings use (a def or class, or an assignment's value),
    gathered in one walk of each."""

    span: _Span  # of its first binding
    is_function: bool  # a def (or an assignment: it may hold any callable), not a class
    calls: set[str] = field(default_factory=set)  # other top-level definitions it names
    matmul: bool = False  # uses the @ operator
    loops: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class _Module:
    """A parsed module: its definitions, who reads which dotted name, who calls whom, and the
    forbidden names worked out so far."""

    definitions: dict[str, _Definition]
    users: dict[str, set[str]]  # dotted name (import aliases resolved) -> definitions reading it
    callers: dict[str, set[str]]  # definition -> the definitions that name it
    _reaching: dict[tuple[str, frozenset[str]], set[str]] = field(default_factory=dict)

    def reachable(self, function: str) -> list[_Definition]:
        """The function's definition plus every top-level definition it reaches by name."""
        seen: set[str] = set()
        todo = deque([function])
        found = []
        while todo:
            name = todo.popleft()
            if name in seen or name not in self.definitions:
                continue
            seen.add(name)
            found.append(self.definitions[name])
            todo.extend(self.definitions[name].calls - seen)
        return found

    def reaching(self, forbidden: str, stop: frozenset[str] = frozenset()) -> set[str]:
        """The definitions that use `forbidden` (a course.toml name or pattern, or `@`) or
        reach one that does: its users, then a walk back along the calls, once per name for
        the whole module rather than once per function. The walk does not pass through a
        definition in `stop` (another contract function, whose own use it is)."""
        key = (forbidden, stop)
        if key not in self._reaching:
            pattern = canonical(forbidden)
            if pattern == "@":
                todo = [d for d, definition in self.definitions.items() if definition.matmul]
            else:
                match = re.compile(fnmatch.translate(pattern)).match
                todo = [d for name, users in self.users.items() if match(name) for d in users]
            seen = set(todo)
            while todo:
                name = todo.pop()
                if name in stop:
                    continue
                fresh = self.callers[name] - seen
                seen |= fresh
                todo.extend(fresh)
            self._reaching[key] = seen
        return self._reaching[key]


def _nodes(root: ast.AST) -> Iterator[ast.AST]:
    """Every node under `root` (itself included), like `ast.walk` without the Load/Store
    markers, and faster: after parsing, this walk is most of a scan's cost."""
    todo: list[object] = [root]
    while todo:
        node = todo.pop()
        if not isinstance(node, ast.AST) or isinstance(node, ast.expr_context):
            continue  # a name in a list (`global x`), a missing default, a Load marker
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                todo.extend(value)
            elif isinstance(value, ast.AST):
                todo.append(value)


def add_aliases(node: ast.Import | ast.ImportFrom, aliases: dict[str, str]) -> None:
    """Local name -> dotted origin, from one import (`F` -> `torch.nn.functional`)."""
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                aliases[a.asname] = a.name
            else:
                aliases[a.name.split(".")[0]] = a.name.split(".")[0]
    elif node.module and node.level == 0:
        for a in node.names:
            aliases[a.asname or a.name] = f"{node.module}.{a.name}"


def dotted(node: ast.AST) -> list[str] | None:
    """`F.softmax` -> ['F', 'softmax']; a chain on an expression starts with '?'."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    if parts:
        return ["?", *reversed(parts)]
    return None


def _full_name(chain: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    """The dotted name a reference stands for (`F.softmax` -> `torch.nn.functional.softmax`);
    a method on a tensor-valued expression counts as `torch.Tensor.<method>`."""
    if chain[0] in aliases:
        return ".".join([aliases[chain[0]], *chain[1:]])
    if len(chain) >= 2:
        return "torch.Tensor." + chain[-1]
    return None


def _walk_definition(node: ast.AST, top_level: set[str], aliases: dict[str, str],
                     found: _Definition) -> set[tuple[str, ...]]:
    """One walk of a binding (a def, a class, an assigned value) into `found`: what it uses,
    with its references as raw chains (`F`, `softmax`) to resolve once every import of the
    module is known."""
    chains: set[tuple[str, ...]] = set()
    for inner in _nodes(node):
        if isinstance(inner, ast.Name):
            chains.add((inner.id,))
            if inner.id in top_level:
                found.calls.add(inner.id)
        elif isinstance(inner, ast.Attribute) and (chain := dotted(inner)):
            chains.add(tuple(chain))
        elif isinstance(inner, ast.BinOp | ast.AugAssign) and isinstance(inner.op, ast.MatMult):
            found.matmul = True
        elif (loop := LOOP_NODES.get(type(inner))) and isinstance(inner, ast.stmt | ast.expr):
            found.loops.append((loop, inner.lineno))
        elif isinstance(inner, ast.Call) and (call := dotted(inner.func)) and (
                call[-1] in LOOP_CALLS):
            found.loops.append((f"{call[-1]}()", inner.lineno))
        elif isinstance(inner, ast.Import | ast.ImportFrom):
            add_aliases(inner, aliases)
    return chains


BLOCKS = (ast.If, ast.Try, ast.TryStar, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor,
          ast.While, ast.Match)


def _bindings(body: list[ast.stmt]) -> Iterator[tuple[str, ast.stmt, ast.AST]]:
    """(name, the statement, what to walk) for each top-level binding of a name: defs and
    classes, and assignments to plain names (the assigned value), looking into top-level
    blocks (`if`, `try`, `with`...) but not into functions or classes."""
    todo: list[ast.stmt] = list(reversed(body))
    while todo:
        node = todo.pop()
        if isinstance(node, DEFINITIONS):
            yield node.name, node, node
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, node, node.value
        elif isinstance(node, BLOCKS):
            children = [getattr(node, f, []) for f in ("body", "orelse", "finalbody")]
            children += [h.body for h in getattr(node, "handlers", [])]
            children += [c.body for c in getattr(node, "cases", [])]
            todo.extend(reversed([s for block in children for s in block]))


@functools.lru_cache(maxsize=8)
def parse(source: str) -> ast.Module | None:
    """The module's tree, parsed once per source text for every scan of it (this one and
    `grader.scan.allowlist`); None when it does not parse (its tests report the syntax error).
    Raises SourceTooLarge past MAX_SOURCE_CHARS. Callers only read the tree."""
    if len(source) > MAX_SOURCE_CHARS:
        raise SourceTooLarge(len(source))
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@functools.lru_cache(maxsize=8)
def _scan(source: str) -> _Module:
    """The module's definitions, walked once per source text; a module that does not parse
    has none."""
    tree = parse(source)
    if tree is None:
        return _Module({}, {}, {})
    bindings = list(_bindings(tree.body))
    top_level = {name for name, _, _ in bindings}
    aliases: dict[str, str] = {}  # from every import in the module, wherever it is
    for inner in _nodes(tree):
        if isinstance(inner, ast.Import | ast.ImportFrom):
            add_aliases(inner, aliases)
    walked: dict[str, tuple[_Definition, set[tuple[str, ...]]]] = {}
    for name, statement, value in bindings:
        if name not in walked:
            walked[name] = (_Definition(_Span(
                statement.lineno, statement.col_offset,
                statement.end_lineno or statement.lineno, statement.end_col_offset or 0),
                not isinstance(statement, ast.ClassDef)), set())
        definition, chains = walked[name]
        chains |= _walk_definition(value, top_level, aliases, definition)
    users: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {name: set() for name in walked}
    for name, (definition, chains) in walked.items():
        for chain in chains:
            if (full := _full_name(chain, aliases)) is not None:
                users.setdefault(full, set()).add(name)
        for callee in definition.calls:
            callers[callee].add(name)
    return _Module({name: definition for name, (definition, _) in walked.items()}, users,
                   callers)


def forbidden_in_source(source: str, function: str, names: Iterable[str],
                        others: Iterable[str] = ()) -> list[str]:
    """The course.toml names (in their order) whose use appears in `function` or in the
    helpers it calls, not counting uses inside the `others` (the contract's other functions:
    `softmax_regression` calling a `softmax` that uses `F.softmax` does not write it itself).
    Raises SourceTooLarge for a source over MAX_SOURCE_CHARS."""
    module = _scan(source)
    stop = frozenset(others) - {function}
    return [n for n in dict.fromkeys(names) if function in module.reaching(n, stop)]


def contract_callees(source: str, function: str, contract: Iterable[str]) -> list[str]:
    """The contract's other functions that `function` reaches by name (itself or through
    helpers), in contract order: those a wrong one of can make `function`'s tests fail."""
    reached = {d.span for d in _scan(source).reachable(function)}
    definitions = _scan(source).definitions
    return [name for name in contract if name != function and name in definitions
            and definitions[name].span in reached]


def python_loops(source: str, function: str) -> list[tuple[str, int]]:
    """(kind, line) of each Python-level loop in `function` and the helpers it calls;
    `map`/`functools.reduce` over data count too. Raises SourceTooLarge as above."""
    loops = [loop for d in _scan(source).reachable(function) for loop in d.loops]
    return sorted(loops, key=lambda k: k[1])


def function_source(source: str, function: str) -> str | None:
    """The text of a top-level function's first binding, or None when the module does not
    bind it."""
    definition = _scan(source).definitions.get(function)
    if definition is None:
        return None
    # the span keeps no reference to the tree: a node that holds only its position
    return ast.get_source_segment(source, ast.Pass(**definition.span._asdict()))


def callers(source: str) -> dict[str, set[str]]:
    """Top-level definition -> the top-level definitions that name it."""
    return _scan(source).callers


def function_names(source: str) -> list[str]:
    """Names of the module's top-level functions, however bound (a def or an assignment)."""
    return [name for name, d in _scan(source).definitions.items() if d.is_function]

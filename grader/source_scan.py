"""Reading a submission's source in the grader (never running it): forbidden calls named in a
function's body, and Python loops where the exercise asks for vectorised code.

A function is scanned together with the module-level helpers it calls, so moving
`torch.cdist` into `_helper()` is still seen.
"""

from __future__ import annotations

import ast
import fnmatch

from grader.forbidden import canonical


def _module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, from the module's imports (`F` -> `torch.nn.functional`)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _functions(tree: ast.Module) -> dict[str, ast.AST]:
    return {n.name: n for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _reachable(tree: ast.Module, function: str) -> list[ast.AST]:
    """The function's node plus every module-level function or class it reaches by name."""
    defs = _functions(tree)
    seen, todo = [], [function]
    while todo:
        name = todo.pop()
        node = defs.get(name)
        if node is None or node in seen:
            continue
        seen.append(node)
        todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defs)
    return seen


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    if parts:
        return ["?", *reversed(parts)]
    return None


def forbidden_in_source(source: str, function: str, names: list[str]) -> list[str]:
    """The course.toml names whose use appears in `function` (or helpers it calls)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    aliases = _module_aliases(tree)
    patterns = [(n, canonical(n)) for n in names]
    found: list[str] = []

    def hit(name: str) -> None:
        if name not in found:
            found.append(name)

    for fn in _reachable(tree, function):
        for node in ast.walk(fn):
            if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.MatMult):
                if "@" in names:
                    hit("@")
            if not isinstance(node, ast.Attribute | ast.Name):
                continue
            chain = _dotted(node)
            if not chain:
                continue
            root = chain[0]
            if root in aliases:
                full = ".".join([aliases[root], *chain[1:]])
            elif len(chain) >= 2:
                full = "torch.Tensor." + chain[-1]  # a method on a tensor-valued expression
            else:
                continue
            for reported, pattern in patterns:
                if pattern != "@" and fnmatch.fnmatchcase(full, pattern):
                    hit(reported)
    return found


LOOP_NODES = {ast.For: "a for loop", ast.While: "a while loop", ast.ListComp: "a comprehension",
              ast.GeneratorExp: "a generator expression", ast.SetComp: "a comprehension",
              ast.DictComp: "a comprehension", ast.AsyncFor: "a for loop"}


def python_loops(source: str, function: str) -> list[tuple[str, int]]:
    """(kind, line) of each Python-level loop in `function` and the helpers it calls;
    `map`/`functools.reduce` over data count too."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    loops = []
    for fn in _reachable(tree, function):
        for node in ast.walk(fn):
            kind = LOOP_NODES.get(type(node))
            if kind is None and isinstance(node, ast.Call):
                chain = _dotted(node.func) or []
                if chain and chain[-1] in ("map", "reduce", "starmap"):
                    kind = f"{chain[-1]}()"
            if kind:
                loops.append((kind, node.lineno))
    return sorted(loops, key=lambda k: k[1])


def function_source(source: str, function: str) -> str | None:
    """The text of a top-level function, or None when the module does not define it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    node = _functions(tree).get(function)
    return ast.get_source_segment(source, node) if node is not None else None


def function_names(source: str) -> list[str]:
    """Names of the module's top-level functions."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]

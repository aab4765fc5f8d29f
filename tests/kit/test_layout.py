"""The house's layout (DEVELOPERS.md, "Layout"): grader/'s modules import one another without a
circle, function-level imports included; only the command line reaches the instructor's code;
the sandbox's modules stand on their own; only the instructor's code reaches the kit's tests."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.kit.variants import KIT_ROOT

GRADER = KIT_ROOT / "grader"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(KIT_ROOT).with_suffix("").parts).removesuffix(".__init__")


MODULES = {module_name(p): p for p in sorted(GRADER.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the imports under `if TYPE_CHECKING:` (never run)."""
    return {n.lineno for node in ast.walk(tree) if isinstance(node, ast.If)
            and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for stmt in node.body for n in ast.walk(stmt)
            if isinstance(n, ast.Import | ast.ImportFrom)}


def imports_of(name: str) -> set[str]:
    """The modules importing `name` runs (at any depth of its code), as dotted names:
    `from a import b` is a.b when that is a module, else a."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                      for a in node.names}
    return found - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles() -> list[list[str]]:
    """Each import circle among grader's modules once (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(GRAPH[v] & MODULES.keys()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return parts


def test_the_import_graph_is_read_right():
    """Guards the guard: the graph sees top-level, function-level and `from pkg import mod`
    imports, and leaves TYPE_CHECKING imports out."""
    assert "grader.instructor.batch" in GRAPH["grader.instructor.commands"]  # in a function
    assert "grader.sandbox.wire" in GRAPH["grader.sandbox.server"]  # from grader.sandbox import
    assert "grader.stopped" not in GRAPH["grader.instructor.tasks"]  # TYPE_CHECKING only


def test_no_import_circle_in_grader():
    assert _cycles() == []


def test_only_the_command_line_reaches_the_instructors_code():
    """The student kit leaves grader/instructor/ out; nothing it ships may import it (the
    command line offers the instructor's commands only where they exist)."""
    outside = {m for m in MODULES if not m.startswith("grader.instructor")}
    reaching = {m for m in outside for i in GRAPH[m] if i.startswith("grader.instructor")}
    assert reaching <= {"grader.cli", "grader.nbexecute"}  # nbexecute: a shim, not shipped


def test_the_sandbox_stands_on_its_own():
    """What runs beside student code (grader/sandbox/) needs only the course, the failures it
    reports and itself: no harness, report, scan or instructor module is there to be found or
    patched."""
    allowed = ("grader.sandbox", "grader.course", "grader.text", "grader.failures")
    leaks = {f"{m} -> {i}" for m in MODULES if m.startswith("grader.sandbox")
             for i in GRAPH[m] if i.startswith("grader.") and not i.startswith(allowed)}
    assert leaks == set()


def test_only_the_instructors_code_imports_the_kits_tests():
    reaching = {m for m in MODULES for i in GRAPH[m] if i == "tests" or i.startswith("tests.")}
    assert {m for m in reaching if not m.startswith("grader.instructor")} == set()

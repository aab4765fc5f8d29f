"""Submissions built from the reference with some functions rewritten: a known mistake (must
lose points, with a message that names it) or a correct solution written differently (must get
full marks)."""

from __future__ import annotations

import ast
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from grader.course import KIT_ROOT


@dataclass(frozen=True)
class Variant:
    topic: str
    name: str
    source: str
    expect: str | None = None  # a mistake: text a lost test's message must contain

    @property
    def id(self) -> str:
        return f"{self.topic}-{self.name}"


def edited(topic: str, name: str, *edits: tuple[str, str], expect: str | None = None
           ) -> Variant:
    """A variant that is the reference's function with `edits` made to it, each `(old, new)`
    with `old` occurring exactly once in solutions/<topic>.py and inside one top-level
    function: the one line a mistake changes, not a copy of the whole function."""
    reference = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
    tree = ast.parse(reference)
    functions = {ast.get_source_segment(reference, n) for n in tree.body
                 if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    text = None
    for old, new in edits:
        count = reference.count(old)
        if count != 1:
            raise ValueError(f"{topic} {name}: {old!r} occurs {count} times in the reference")
        owner = next((f for f in functions if old in f), None)
        if owner is None or (text is not None and old not in text):
            raise ValueError(f"{topic} {name}: the edits must lie in one top-level function")
        text = (text or owner).replace(old, new)
    return Variant(topic, name, text or "", expect)


def replace_definitions(module_source: str, replacement: str) -> str:
    """`module_source` with each top-level def/class in `replacement` put in place of the
    same-named one (or appended when new); other replacement statements go first."""
    new_tree = ast.parse(textwrap.dedent(replacement))
    lines = module_source.splitlines(keepends=True)
    old_tree = ast.parse(module_source)
    spans = {n.name: (n.lineno - 1 - len(n.decorator_list), n.end_lineno) for n in old_tree.body
             if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    new_src = textwrap.dedent(replacement)
    preamble, appended = [], []
    for node in new_tree.body:
        text = ast.get_source_segment(new_src, node, padded=True)
        if getattr(node, "decorator_list", None):
            first = node.decorator_list[0]
            text = "\n".join(new_src.splitlines()[first.lineno - 1:node.end_lineno])
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in spans:
            start, end = spans[node.name]
            lines[start:end] = [text + "\n"] + [""] * (end - start - 1)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            appended.append(text + "\n")
        else:
            preamble.append(text + "\n")
    return "".join(preamble) + "".join(lines) + "\n" + "\n".join(appended)


def build_submission(variant: Variant, root: Path) -> Path:
    """A folder with every reference module, the variant's topic rewritten."""
    target = root / variant.id
    target.mkdir(parents=True, exist_ok=True)
    for f in (KIT_ROOT / "solutions").glob("*.py"):
        shutil.copy(f, target / f.name)
    module = target / f"{variant.topic}.py"
    module.write_text(replace_definitions(module.read_text(), variant.source))
    return target

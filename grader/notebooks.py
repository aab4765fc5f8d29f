"""Notebooks, read as the grader reads them: the code cells of a submitted notebook become the
module the worker imports, and the names that tie a notebook's cells of checks to a topic's
functions (`METADATA_KEY`, `group_of`). The instructor's side, a topic's reference made into
an nbgrader source notebook, is `grader.instructor.nbgrader_course`.

As in a kernel, one cell's failure does not stop the rest: a cell that does not parse
is dropped (the functions it defined raise an explanation when called), and statements other
than imports and definitions are guarded so a cell that raises at import costs only what it
would have defined. Definitions stay top-level text, so the source scans (forbidden calls,
Python loops) read them as in a `.py` submission. IPython magics and `!` lines are stripped.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from typing import Any

from grader.sandbox.jsonbound import check_json

WHOLE_TOPIC = None  # the group of tests that are about no single function
METADATA_KEY = "torchdrill"  # notebook metadata: the topic and its functions, for grouping tests
DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef  # a node of DEF_NODES


# --------------------------------------------------------------------------- tests by function


def public_names(source: str) -> list[str]:
    """The module's top-level functions and classes a student writes, in order."""
    return [n.name for n in ast.parse(source).body
            if isinstance(n, DEF_NODES) and not n.name.startswith("_")]


def group_of(test_name: str, functions: Iterable[str]) -> str | None:
    """The function a test is about: the longest name `f` with `test_<f>` or `test_<f>_...`
    as the test's name (case-insensitive, so `test_accumulator_add` is `Accumulator`'s), or
    WHOLE_TOPIC when none fits."""
    rest = test_name.split("[", 1)[0].removeprefix("test_").lower()
    fits = [f for f in functions if rest == f.lower() or rest.startswith(f.lower() + "_")]
    return max(fits, key=len) if fits else WHOLE_TOPIC


# --------------------------------------------------------------------------- module -> notebook


def _end(node: ast.stmt, lines: list[str]) -> int:
    """The statement's last line, with the indented comments that follow it (such as a
    function's closing `### END SOLUTION`)."""
    last = end = node.end_lineno or node.lineno  # ast.parse always sets end_lineno
    while end < len(lines) and (not lines[end].strip() or lines[end][0].isspace()):
        end += 1
    while end > last and not lines[end - 1].strip():
        end -= 1
    return end


def module_chunks(source: str) -> list[tuple[Definition | None, str]]:
    """The module split into chunks of text: each top-level def/class on its own (with the
    comments above it), the statements between them together. The module docstring is left
    out (it becomes the notebook's introduction)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    start = _end(body.pop(0), lines) if ast.get_docstring(tree) is not None else 0
    chunks: list[tuple[Definition | None, str]] = []
    for node in body:
        end = _end(node, lines)
        text = "\n".join(lines[start:end])
        start = end
        if isinstance(node, DEF_NODES) or not chunks or chunks[-1][0] is not None:
            chunks.append((node if isinstance(node, DEF_NODES) else None, text))
        else:
            chunks[-1] = (None, chunks[-1][1] + "\n" + text)
    return [(node, text.strip("\n")) for node, text in chunks if text.strip()]


def signature(node: Definition) -> str:
    """`softmax(X: torch.Tensor) -> torch.Tensor`, or `class Accumulator`: a cell's heading."""
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{node.name}({ast.unparse(node.args)}){returns}"


STUDENT_INSTRUCTIONS = """\
## How this notebook works

Write your code where a cell says `# YOUR CODE HERE`, in place of `raise NotImplementedError()`,
and keep the functions' names and signatures. After each function comes a cell of checks: it
grades this notebook **as saved** (save it first) with the public tests, running your code in
torchdrill's sandbox, and prints what went wrong and why. Cells of your own to try things out
are welcome. Before you hand it in: restart the kernel and run every cell."""


def student_notebook(topic: str, source: str, given: Iterable[str] = ()) -> dict[str, Any]:
    """A notebook (nbformat 4 JSON) of a topic's stub `source` for a student's own Jupyter:
    the module docstring as its introduction, each function's docstring and code, and after
    each a cell of checks that grades the saved notebook with the public tests
    (`grader.nbcheck.check`), but for the `given` helpers (course.toml), which no test grades."""
    tree = ast.parse(source)
    heading, _, intro = (ast.get_docstring(tree) or topic).strip().partition("\n")
    cells = [_markdown_cell(f"# {heading.rstrip('.')}\n\n{intro.strip()}".strip()),
             _markdown_cell(STUDENT_INSTRUCTIONS)]
    for node, text in module_chunks(source):
        if node is not None:
            cells.append(_markdown_cell("\n\n".join(filter(None, [
                f"## `{signature(node)}`", ast.get_docstring(node)]))))
        cells.append(_code_cell(text))
        if node is not None and not node.name.startswith("_") and node.name not in given:
            cells.append(_code_cell(f"from grader import nbcheck\n\n"
                                    f"nbcheck.check({topic!r}, {node.name!r})"))
    cells.append(_code_cell(f"from grader import nbcheck\n\nnbcheck.check({topic!r}, None)"))
    return {"nbformat": 4, "nbformat_minor": 4, "cells": cells, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"},
        "language_info": {"name": "python"},
        METADATA_KEY: {"topic": topic, "functions": public_names(source)}}}


def _markdown_cell(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code_cell(text: str) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [],
            "execution_count": None}


# --------------------------------------------------------------------------- notebook -> module


# A notebook's JSON, measured before it is parsed (grader.sandbox.jsonbound): 32 MB of `[]`
# would be 10 million lists. A notebook of long outputs has some thousands of values.
MAX_NOTEBOOK_VALUES = 1_000_000
MAX_NOTEBOOK_DEPTH = 64


class NotebookError(ValueError):
    """The file is not a notebook Jupyter could open."""


def read_notebook(data: bytes, name: str) -> dict[str, Any]:
    """A notebook from its bytes, as nbformat 4 JSON, or NotebookError with what was wrong.
    Format 4 is read as plain JSON: importing nbformat (jsonschema and its format checkers)
    costs ~1.8 s, once per grading process. Older formats are converted by nbformat."""
    try:
        check_json(data, MAX_NOTEBOOK_VALUES, MAX_NOTEBOOK_DEPTH)  # before json builds it
        nb = json.loads(data.decode("utf-8"))
        if isinstance(nb, dict) and nb.get("nbformat") != 4:
            import nbformat

            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        raise NotebookError(f"{name} is not UTF-8 text") from None
    except Exception as e:  # JSON, schema and version errors of many types
        raise NotebookError(f"{name} is not a notebook Jupyter can open "
                            f"({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{name} has no list of cells")
    if not all(isinstance(cell, dict) for cell in nb["cells"]):
        raise NotebookError(f"{name} has a cell that is not a JSON object")
    return nb


def is_test_cell(cell: dict[str, Any]) -> bool:
    """A cell of checks: an nbgrader grade cell that is not a solution, or any cell that
    calls `grader.nbcheck` (a check copied without its metadata). Its code is never part of
    the student's module."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return True
    return bool(re.search(r"^\s*(from\s+grader\s+import\s+nbcheck|import\s+grader\.nbcheck)",
                          _text(cell.get("source", "")), re.MULTILINE))


def _text(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
MAGIC_LINE = re.compile(r"^\s*([%!]|[\w.]+\?{1,2}\s*$)|^[^#'\"]*=\s*[%!]")


def _strip_magics(source: str) -> str | None:
    """The Python in a cell with IPython syntax: line magics, `!` commands and `name?` help
    lines become `pass`; a cell magic keeps its body only when that body is Python
    (`%%time`). None: the cell is not Python at all (`%%bash`, `%%writefile` ...)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in PYTHON_CELL_MAGICS:
            return None
        lines[0] = "pass"  # keeps the cell's line numbers
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass" if MAGIC_LINE.match(line) else line
        for line in lines)


DEFINED = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, DEF_NODES):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(n.id for n in ast.walk(node)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return names


def _why(raw: str, error: SyntaxError, index: int, name: str) -> str:
    first = next((line.strip() for line in raw.splitlines() if line.strip()), "")
    return (f"cell {index} of {name} (the one starting `{first[:60]}`) has a syntax error at "
            f"its line {error.lineno}: {error.msg}. That cell could not run, so this function "
            "was never defined; fix the cell and run it.")


def _stubs(names: list[str], why: str, label: str, lineno: int | None) -> str:
    """Stand-ins for the functions of a cell that does not parse: calling one raises `why`
    from the cell's line of the error, so a report's "(line N of ...)" points there."""
    code = "\n" * ((lineno or 1) - 1) + "\n".join(
        f"def {n}(*args, **kwargs): raise SyntaxError({why!r})" for n in names)
    return f"exec(compile({code!r}, {label!r}, 'exec'), globals())"


def _kind(nodes: list[ast.stmt]) -> str:
    if len(nodes) == 1 and isinstance(nodes[0], DEF_NODES):
        return "definition"
    if all(isinstance(n, ast.Import | ast.ImportFrom) for n in nodes):
        return "import"
    return "statement"


def _units(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(kind, first line, last line) of the cell's statements, statements that share a line
    kept together; the comments above a statement belong to it."""
    units: list[tuple[list[ast.stmt], int]] = []  # (statements, last line)
    for node in tree.body:
        first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        last = node.end_lineno or node.lineno  # ast.parse always sets end_lineno
        if units and first <= units[-1][1]:
            units[-1] = (units[-1][0] + [node], max(units[-1][1], last))
        else:
            units.append(([node], last))
    starts = [1] + [end + 1 for _, end in units[:-1]]
    return [(_kind(nodes), start, end) for (nodes, end), start in zip(units, starts, strict=True)]


def _guarded_import(text: str) -> str:
    indented = "\n".join("    " + line if line.strip() else line for line in text.splitlines())
    return f"try:\n{indented}\nexcept Exception:  # as in a kernel: the names stay undefined\n" \
           "    pass"


def _guarded_statements(text: str, first_line: int, label: str) -> str:
    padded = "\n" * (first_line - 1) + text + "\n"
    return (f"try:  # a failing statement costs only what it would have defined\n"
            f"    exec(compile({padded!r}, {label!r}, 'exec'), globals())\n"
            "except (Exception, SystemExit):\n    pass")


def _cell_module_code(source: str, tree: ast.Module, label: str) -> tuple[list[str], list[str]]:
    """(future imports, code) for one parsed cell."""
    lines = source.splitlines()
    runs: list[tuple[str, int, int]] = []
    for kind, start, end in _units(tree):  # consecutive statements stop at the first failure
        if kind == "statement" and runs and runs[-1][0] == "statement":
            runs[-1] = (kind, runs[-1][1], end)
        else:
            runs.append((kind, start, end))
    futures, code = [], []
    for kind, start, end in runs:
        text = "\n".join(lines[start - 1:end])
        if kind == "import" and "__future__" in text:
            futures.append(text.strip())
        elif kind == "definition":
            code.append(text.strip("\n"))
        elif kind == "import":
            code.append(_guarded_import(text.strip("\n")))
        else:
            code.append(_guarded_statements(text, start, label))
    return futures, code


def module_source(nb: dict[str, Any], name: str) -> str:
    """The module a notebook's code cells make, for the worker to import (see the module
    docstring for what happens to cells that fail)."""
    futures: list[str] = []
    parts: list[str] = []
    defined: set[str] = set()
    for index, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") != "code" or is_test_cell(cell):
            continue
        raw = _text(cell.get("source", ""))
        label = f"{name}, cell {index}"
        try:
            source = raw
            tree = ast.parse(source)
        except SyntaxError:
            stripped = _strip_magics(raw)
            if stripped is None:
                continue
            source = stripped
            try:
                tree = ast.parse(source)
            except SyntaxError as e:
                names = [n for n in dict.fromkeys(DEFINED.findall(raw)) if n not in defined]
                if names:
                    parts.append(f"# cell {index}: does not parse\n"
                                 + _stubs(names, _why(raw, e, index, name), label, e.lineno))
                defined.update(names)
                continue
        cell_futures, code = _cell_module_code(source, tree, label)
        futures += [f for f in cell_futures if f not in futures]
        if code:
            parts.append(f"# cell {index}\n" + "\n\n".join(code))
        defined |= _defined_names(tree)
    header = [repr(f"The code cells of {name}, as one module.")] + futures  # the docstring
    return "\n".join(header) + "\n\n\n" + "\n\n\n".join(parts) + "\n"

"""Notebooks for the nbgrader track, both ways.

Solution module -> notebook: a topic's reference (`solutions/<topic>.py`) becomes an nbgrader
source notebook: markdown cells from its docstrings, one solution cell per function (nbgrader
strips the `### BEGIN SOLUTION` regions, as `grader.instructor.sync` does for `exercises/`), and after each
function an autograded test cell worth the points of that function's tests. The cell calls
`grader.nbcheck`, which grades the saved notebook with our sandboxed grader; the hidden part of
the cell (between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`) adds the hidden tests.

Notebook -> module: the code cells of a submitted notebook become the module the worker
imports. As in a kernel, one cell's failure does not stop the rest: a cell that does not parse
is dropped (the functions it defined raise an explanation when called), and statements other
than imports and definitions are guarded so a cell that raises at import costs only what it
would have defined. Definitions stay top-level text, so the source scans (forbidden calls,
Python loops) read them as in a `.py` submission. IPython magics and `!` lines are stripped.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.course import Topic
from grader.instructor.sync import BEGIN

if TYPE_CHECKING:
    from nbformat import NotebookNode

NBGRADER_SCHEMA = 3
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
WHOLE_TOPIC = None  # the group of tests that are about no single function
METADATA_KEY = "torchdrill"  # notebook metadata: the topic and its functions, for grouping tests
DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@dataclass(frozen=True)
class CourseTest:
    """One collected test: its name (`test_<function>_<what>[<case>]`), suite and points."""

    name: str
    visibility: str  # "public" | "hidden"
    points: float


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


def group_tests(tests: Iterable[CourseTest], functions: list[str]) -> dict[str | None,
                                                                              list[CourseTest]]:
    """Tests by the function they are about, functions in module order, WHOLE_TOPIC last."""
    groups: dict[str | None, list[CourseTest]] = {f: [] for f in functions}
    groups[WHOLE_TOPIC] = []
    for t in tests:
        groups[group_of(t.name, functions)].append(t)
    return {k: v for k, v in groups.items() if v}


# --------------------------------------------------------------------------- module -> notebook


def _nbgrader(grade_id: str, *, solution: bool = False, points: float | None = None) -> dict:
    meta = {"grade": points is not None, "solution": solution, "locked": points is not None,
            "task": False, "grade_id": grade_id, "schema_version": NBGRADER_SCHEMA}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _points(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _n_points(value: float) -> str:
    return f"{_points(value)} point{'' if value == 1 else 's'}"


def _end(node: ast.stmt, lines: list[str]) -> int:
    """The statement's last line, with the indented comments that follow it (such as a
    function's closing `### END SOLUTION`)."""
    end = node.end_lineno
    while end < len(lines) and (not lines[end].strip() or lines[end][0].isspace()):
        end += 1
    while end > node.end_lineno and not lines[end - 1].strip():
        end -= 1
    return end


def _cells_of_module(source: str) -> list[tuple[ast.stmt | None, str]]:
    """The module split into chunks of text: each top-level def/class on its own (with the
    comments above it), the statements between them together. The module docstring is left
    out (it becomes the notebook's introduction)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    start = _end(body.pop(0), lines) if ast.get_docstring(tree) is not None else 0
    chunks: list[tuple[ast.stmt | None, str]] = []
    for node in body:
        end = _end(node, lines)
        text = "\n".join(lines[start:end])
        start = end
        if isinstance(node, DEF_NODES) or not chunks or chunks[-1][0] is not None:
            chunks.append((node if isinstance(node, DEF_NODES) else None, text))
        else:
            chunks[-1] = (None, chunks[-1][1] + "\n" + text)
    return [(node, text.strip("\n")) for node, text in chunks if text.strip()]


def _signature(node: ast.stmt) -> str:
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{node.name}({ast.unparse(node.args)}){returns}"


def _markdown(*parts: str | None, forbidden: Iterable[str] = (), where: str = "here") -> str:
    """Markdown from docstrings and the like, with the calls not allowed `where`."""
    names = list(forbidden)
    if names:
        parts += (f"Not allowed {where} (the grader watches for them): "
                  + ", ".join(f"`{n}`" for n in names) + ".",)
    return "\n\n".join(p for p in parts if p)


def _test_cell_source(topic: str, function: str | None, tests: list[CourseTest]) -> str:
    public = sum(t.points for t in tests if t.visibility == "public")
    total = sum(t.points for t in tests)
    about = f"`{function}`" if function else "the topic as a whole"
    run = (f"Here the public checks run ({_n_points(public)}); when your instructor grades,"
           if public else "No public checks for it here: test it yourself. When your "
           "instructor grades,")
    lines = [f"# Checks for {about}, worth {_n_points(total)}. Save the notebook first: this",
             "# grades the saved file with torchdrill's grader, which runs your code in a sandbox.",
             *(f"# {line}" for line in textwrap.wrap(
                 f"{run} hidden checks of the same code count too.", 90)),
             "from grader import nbcheck", "",
             f"nbcheck.check({topic!r}, {function!r})"]
    if public < total:
        lines += [HIDDEN_BEGIN,
                  f"nbcheck.check({topic!r}, {function!r}, hidden=True, points={_points(total)})",
                  HIDDEN_END]
    return "\n".join(lines)


INSTRUCTIONS = """\
## How this notebook works

Write your code where a cell says `# YOUR CODE HERE`, in place of `raise NotImplementedError()`.
Keep the names and signatures of the functions: the grader calls them. You may add cells of
your own to try things out; a cell of yours that fails does not cost you points, but a function
that is not defined when the notebook runs from top to bottom earns nothing.

After each function comes a cell of checks. It grades this notebook **as saved** (save it
first), running your code in a sandbox, and prints what went wrong and why; its last line is
the points it gave. When your instructor grades, hidden checks of the same functions count too,
so passing the public ones is a start, not the finish: test your functions on inputs of your
own (other shapes, float64, very large or very negative numbers).

Before you submit: restart the kernel and run all cells, so you know the notebook works on its
own."""


def solution_notebook(topic: Topic, source: str, tests: list[CourseTest]) -> NotebookNode:
    """The nbgrader source notebook for `topic`, from its solution module's text and its
    collected tests."""
    import nbformat

    tree = ast.parse(source)
    doc = (ast.get_docstring(tree) or topic.title).strip()
    heading, _, intro = doc.partition("\n")
    cells = [nbformat.v4.new_markdown_cell(_markdown(f"# {heading.rstrip('.')}", intro.strip())),
             nbformat.v4.new_markdown_cell(_markdown(INSTRUCTIONS, forbidden=topic.forbidden,
                                                     where="anywhere in this topic"))]
    groups = group_tests(tests, public_names(source))
    for node, text in _cells_of_module(source):
        name = node.name if node is not None else f"cell{len(cells) + 1}"
        meta = _nbgrader(f"{name}_code", solution=True) if BEGIN in text else {}
        if node is None:
            cells.append(nbformat.v4.new_code_cell(text, metadata=meta))
            continue
        forbidden = [f for f in topic.forbidden_for(name) if f not in topic.forbidden]
        cells.append(nbformat.v4.new_markdown_cell(_markdown(
            f"## `{_signature(node)}`", ast.get_docstring(node), forbidden=forbidden)))
        cells.append(nbformat.v4.new_code_cell(text, metadata=meta))
        if name in groups:
            cells.append(_test_cell(topic.name, name, groups[name]))
    if WHOLE_TOPIC in groups:
        cells.append(nbformat.v4.new_markdown_cell(
            "## Putting it together\n\nThese checks use several of your functions at once."))
        cells.append(_test_cell(topic.name, WHOLE_TOPIC, groups[WHOLE_TOPIC]))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC, "language_info": {"name": "python"},
        METADATA_KEY: {"topic": topic.name, "functions": public_names(source)}})
    nbformat.validate(nb)
    return nb


def _test_cell(topic: str, function: str | None, tests: list[CourseTest]) -> NotebookNode:
    import nbformat

    grade_id = f"test_{function}" if function else "test__topic"
    return nbformat.v4.new_code_cell(
        _test_cell_source(topic, function, tests),
        metadata=_nbgrader(grade_id, points=_points(sum(t.points for t in tests))))


# --------------------------------------------------------------------------- notebook -> module


class NotebookError(ValueError):
    """The file is not a notebook Jupyter could open."""


def read_notebook(data: bytes, name: str) -> dict[str, Any]:
    """A notebook from its bytes, as nbformat 4 JSON, or NotebookError with what was wrong.
    Format 4 is read as plain JSON: importing nbformat (jsonschema and its format checkers)
    costs ~1.8 s, once per grading process. Older formats are converted by nbformat."""
    try:
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
        if units and first <= units[-1][1]:
            units[-1] = (units[-1][0] + [node], max(units[-1][1], node.end_lineno))
        else:
            units.append(([node], node.end_lineno))
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
            source = _strip_magics(raw)
            if source is None:
                continue
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

"""Notebooks both ways: each solution module becomes a valid nbgrader source notebook whose
stubs are the exercises' and whose cells of checks carry the tests' points; a submitted
notebook becomes a module in which one broken or failing cell costs only what it defines; a
folder of notebooks is a submission; and the cells of checks never write to stderr."""

from __future__ import annotations

import ast
import json
import warnings

import nbformat
import pytest

from grader import nbcheck
from grader.course import load_course
from grader.grade import grade
from grader.instructor.nbgrader_course import (
    HIDDEN_BEGIN,
    HIDDEN_END,
    CourseTest,
    solution_notebook,
)
from grader.instructor.release import collect_tests
from grader.instructor.sync import BEGIN, END, expected_stubs, strip_solutions
from grader.notebooks import METADATA_KEY, WHOLE_TOPIC, group_of, module_source, public_names
from grader.report.formats import topic_functions
from grader.scan.source import function_names, function_source
from grader.submission import load_submission
from tests.kit.variants import KIT_ROOT

COURSE = load_course()
TOPICS = [t.name for t in COURSE.topics if (KIT_ROOT / "solutions" / f"{t.name}.py").exists()]


@pytest.fixture(scope="module")
def course_tests() -> dict[str, list[CourseTest]]:
    return collect_tests(TOPICS)


def source_notebook(topic: str, tests: list[CourseTest] = ()) -> nbformat.NotebookNode:
    text = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
    return solution_notebook(COURSE.topic(topic), text, list(tests))


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_cells(nb) -> list:
    return [c for c in nb.cells if nbgrader_meta(c).get("solution")]


def check_cells(nb) -> list:
    return [c for c in nb.cells if nbgrader_meta(c).get("grade")]


def student_notebook(nb, replace: dict[str, str] | None = None, extra: list[tuple[int, str]] = ()):
    """A copy of a notebook as a student would submit it: solution cells whose function is in
    `replace` get that text; `extra` code cells are inserted at the given positions."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in solution_cells(nb):
        name = nbgrader_meta(cell)["grade_id"].removesuffix("_code")
        if replace and name in replace:
            cell.source = replace[name]
    for position, text in sorted(extra, reverse=True):
        nb.cells.insert(position, nbformat.v4.new_code_cell(text))
    return nb


def run_module(nb, name: str = "softmax.ipynb") -> dict:
    namespace: dict = {"__name__": "student_module"}
    exec(compile(module_source(nb, name), name, "exec"), namespace)
    return namespace


def cell_index(nb, function: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if nbgrader_meta(c).get("grade_id") == f"{function}_code")


# --------------------------------------------------------------------------- solution -> notebook


@pytest.mark.parametrize("topic", TOPICS)
def test_source_notebook_is_a_valid_nbgrader_notebook(topic, course_tests):
    tests = course_tests.get(topic, [])
    nb = source_notebook(topic, tests)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec["name"] == "python3"
    assert nb.metadata[METADATA_KEY] == {"topic": topic, "functions": public_names(
        (KIT_ROOT / "solutions" / f"{topic}.py").read_text())}
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in [*solution_cells(nb), *check_cells(nb)]:
        meta = nbgrader_meta(cell)
        assert meta["schema_version"] == 3 and cell.cell_type == "code"
        assert meta["solution"] != meta["grade"]
    for cell in solution_cells(nb):
        assert BEGIN in cell.source and END in cell.source
        assert cell.source.rstrip().endswith(END)
    assert sum(nbgrader_meta(c)["points"] for c in check_cells(nb)) == sum(t.points for t in tests)
    functions = public_names((KIT_ROOT / "solutions" / f"{topic}.py").read_text())
    for cell in check_cells(nb):
        meta = nbgrader_meta(cell)
        function = meta["grade_id"].removeprefix("test_")
        group = [t for t in tests if group_of(t.name, functions)
                 == (WHOLE_TOPIC if function == "_topic" else function)]
        assert meta["points"] == sum(t.points for t in group) > 0 and meta["locked"]
        visible, _, rest = cell.source.partition(HIDDEN_BEGIN)
        assert "hidden=True" not in visible
        if any(t.visibility == "hidden" for t in group):
            assert HIDDEN_END in rest and "hidden=True" in rest
        else:
            assert not rest


@pytest.mark.parametrize("topic", TOPICS)
def test_markdown_comes_from_the_docstrings(topic):
    text = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
    tree = ast.parse(text)
    markdown = "\n".join(c.source for c in source_notebook(topic).cells
                         if c.cell_type == "markdown")
    docs = [ast.get_docstring(tree)] + [ast.get_docstring(n) for n in tree.body
                                         if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    for doc in filter(None, docs):
        assert doc.strip().splitlines()[-1] in markdown


@pytest.mark.parametrize("topic", TOPICS)
def test_notebook_stubs_are_the_exercises(topic):
    """Stripping the solution regions of the notebook's cells (nbgrader's rule) gives each
    function exactly as exercises/ has it."""
    exercise = expected_stubs()[f"{topic}.py"]
    cells = solution_cells(source_notebook(topic))
    assert cells
    for cell in cells:
        name = nbgrader_meta(cell)["grade_id"].removesuffix("_code")
        assert strip_solutions(cell.source).strip() == function_source(exercise, name).strip()


def test_tests_are_grouped_by_the_function_they_name():
    functions = ["cross_entropy", "cross_entropy_from_logits", "Accumulator", "accuracy",
                 "evaluate_accuracy"]
    assert group_of("test_cross_entropy_matches", functions) == "cross_entropy"
    assert group_of("test_cross_entropy_from_logits_huge[3]", functions) == \
        "cross_entropy_from_logits"
    assert group_of("test_accumulator_adds", functions) == "Accumulator"
    assert group_of("test_evaluate_accuracy_mode", functions) == "evaluate_accuracy"
    assert group_of("test_accuracy", functions) == "accuracy"
    assert group_of("test_end_to_end", functions) is WHOLE_TOPIC
    assert group_of("test_accuracyish", functions) is WHOLE_TOPIC


# --------------------------------------------------------------------------- notebook -> module


@pytest.mark.parametrize("topic", TOPICS)
def test_reference_notebook_makes_the_reference_module(topic):
    nb = source_notebook(topic)
    module = module_source(nb, f"{topic}.ipynb")
    functions = public_names((KIT_ROOT / "solutions" / f"{topic}.py").read_text())
    namespace = run_module(nb, f"{topic}.ipynb")
    assert all(callable(namespace[f]) for f in functions)
    # definitions stay top-level text, so the source scans read them as in a .py file
    defined = set(function_names(module)) | {n.name for n in ast.parse(module).body
                                             if isinstance(n, ast.ClassDef)}
    assert set(functions) <= defined


def test_cells_of_checks_are_not_part_of_the_module(course_tests):
    nb = source_notebook("softmax", course_tests["softmax"])
    nb.cells.append(nbformat.v4.new_code_cell("from grader import nbcheck\nnbcheck.check('x')"))
    module = module_source(nb, "softmax.ipynb")
    assert "nbcheck" not in module and check_cells(nb)


def test_a_cell_that_does_not_parse_costs_only_its_functions():
    import torch

    nb = source_notebook("softmax")
    broken = "def logsumexp(X):\n    return X.max(1)  +\n"
    namespace = run_module(student_notebook(nb, {"logsumexp": broken}))
    X = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(namespace["softmax"](X), torch.softmax(X, 1))
    cell = cell_index(nb, "logsumexp") + 1
    with pytest.raises(SyntaxError, match=rf"cell {cell} of softmax.ipynb .* syntax error") as e:
        namespace["logsumexp"](X)
    frame = e.traceback[-1]  # reports say where: the cell, at the line of the error
    assert (frame.frame.code.raw.co_filename, frame.lineno + 1) == (
        f"softmax.ipynb, cell {cell}", 2)


def test_cells_that_raise_at_import_cost_nothing_else():
    import torch

    nb = source_notebook("softmax")
    after = cell_index(nb, "softmax") + 1
    namespace = run_module(student_notebook(nb, extra=[
        (after, "softmax(torch.ones(2, 3)) / undefined_name"),
        (after, "import d2l_is_not_installed\nfrom torchvision_nope import x"),
        (after, "import sys\nsys.exit(1)"),
        (after, "def helper(x):\n    return x + 1\n\nraise ValueError('exploring')\nDONE = 1"),
        (1, "softmax(torch.zeros(2, 2))  # called before it is defined: NameError"),
    ]))
    X = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    assert torch.allclose(namespace["log_softmax"](X), torch.log_softmax(X, 1))
    assert namespace["helper"](1) == 2 and "DONE" not in namespace


def test_magics_and_shell_lines_are_stripped():
    nb = source_notebook("softmax")
    namespace = run_module(student_notebook(nb, extra=[
        (2, "%matplotlib inline\n!pip install d2l\nfiles = !ls\ntorch.softmax?\nY = 2"),
        (2, "%%time\nX = 3"),
        (2, "%%bash\necho this is not python"),
        (2, "%%writefile notes.py\nraise SystemExit('never runs')"),
    ]))
    assert namespace["X"] == 3 and namespace["Y"] == 2 and callable(namespace["softmax"])


def test_definitions_follow_kernel_order():
    """A broken cell does not undo an earlier definition; a later definition replaces one."""
    nb = source_notebook("softmax")
    after = cell_index(nb, "softmax") + 1
    namespace = run_module(student_notebook(nb, extra=[
        (after + 1, "def softmax(X):\n    return 'later'"),
        (after, "def softmax(X) return 'broken'"),
    ]))
    assert namespace["softmax"](None) == "later"
    namespace = run_module(student_notebook(nb, extra=[(after, "def softmax(X) broken")]))
    assert namespace["softmax"].__doc__.startswith("Row-wise softmax")


def test_strings_futures_and_shared_lines_survive():
    text = 'TEXT = """first\n  second\n%not a magic"""'
    nb = source_notebook("softmax")
    namespace = run_module(student_notebook(nb, extra=[
        (3, "from __future__ import annotations\nimport math; SQRT2 = math.sqrt(2)"),
        (3, text),
    ]))
    assert namespace["TEXT"] == "first\n  second\n%not a magic"
    assert abs(namespace["SQRT2"] - 2 ** 0.5) < 1e-12


def test_statements_keep_their_cell_and_line_in_tracebacks():
    nb = source_notebook("softmax")
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n\n\nboom = lambda: 1 / 0"))
    namespace = run_module(nb)
    with pytest.raises(ZeroDivisionError) as e:
        namespace["boom"]()
    frame = e.traceback[-1]
    assert (frame.frame.code.raw.co_filename, frame.lineno + 1) == (
        f"softmax.ipynb, cell {len(nb.cells)}", 4)


# --------------------------------------------------------------------------- submissions


def write_notebook(path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_a_folder_of_notebooks_is_a_submission(tmp_path):
    nb = source_notebook("softmax")
    write_notebook(tmp_path / "flat" / "softmax.ipynb", nb)
    write_notebook(tmp_path / "nested" / "softmax" / "softmax.ipynb", nb)
    write_notebook(tmp_path / "nested" / "softmax" / ".ipynb_checkpoints" /
                   "softmax-checkpoint.ipynb", nb)
    write_notebook(tmp_path / "nested" / "scratch" / "other.ipynb", nb)
    for folder in ("flat", "nested"):
        sub = load_submission(tmp_path / folder)
        assert list(sub.sources) == ["softmax"] and not sub.problems
        filename, text = sub.sources["softmax"]
        assert filename.endswith("softmax.ipynb") and "def softmax(" in text
    write_notebook(tmp_path / "both" / "softmax.ipynb", nb)
    (tmp_path / "both" / "softmax.py").write_text("def softmax(X):\n    return 'py'\n")
    assert "'py'" in load_submission(tmp_path / "both").source("softmax")
    assert load_submission(tmp_path / "flat" / "softmax.ipynb").sources


def test_a_notebook_that_does_not_parse_costs_its_topic_only(tmp_path):
    write_notebook(tmp_path / "softmax.ipynb", source_notebook("softmax"))
    (tmp_path / "tensor_ops.ipynb").write_text('{"cells": [')
    (tmp_path / "autograd.ipynb").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "sgd.ipynb").write_text("[]")
    (tmp_path / "mlp.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "cells": [1]}')
    sub = load_submission(tmp_path)
    assert list(sub.sources) == ["softmax"]
    assert "not a notebook" in sub.problems["tensor_ops"]
    assert "not UTF-8" in sub.problems["autograd"]
    assert "has no list of cells" in sub.problems["sgd"]
    assert "not a JSON object" in sub.problems["mlp"]


def test_an_old_format_notebook_is_converted(tmp_path):
    import nbformat.v3 as v3

    cell = v3.new_code_cell(input="def relu(X):\n    return X.clamp(min=0)\n")
    (tmp_path / "mlp.ipynb").write_text(v3.writes_json(
        v3.new_notebook(worksheets=[v3.new_worksheet(cells=[cell])])))
    sub = load_submission(tmp_path)
    assert not sub.problems and "def relu(X):" in sub.source("mlp")


def test_the_grader_grades_notebooks(tmp_path):
    nb = source_notebook("softmax")
    write_notebook(tmp_path / "alice" / "softmax" / "softmax.ipynb", nb)
    report = grade(tmp_path / "alice", ["softmax"], "public")
    assert report["score"] == report["max_score"] > 0, report["topics"]
    write_notebook(tmp_path / "bob" / "softmax.ipynb",
                   student_notebook(nb, {"softmax": "def softmax(X) oops"}))
    report = grade(tmp_path / "bob", ["softmax"], "public")
    tests = report["topics"][0]["tests"]
    functions = topic_functions("softmax")
    broken = [t for t in tests if group_of(t["name"], functions) in ("softmax",
                                                                      "softmax_regression")]
    assert broken and all(t["score"] == 0 and "syntax error" in t["message"] for t in broken)
    # as in a kernel, the cell that does not parse costs its own functions and their callers
    assert all(t["score"] == t["max_score"] for t in tests if t not in broken)
    assert 0 < report["score"] < report["max_score"]


# --------------------------------------------------------------------------- nbcheck


def fake_report(tests: list[tuple[str, str, float, float, str]]) -> dict:
    return {"topics": [{"name": "softmax", "tests": [
        {"name": n, "visibility": v, "score": s, "max_score": m,
         "outcome": "passed" if s == m else "failed", "message": msg,
         "hint": f"what {n} checks"} for n, v, s, m, msg in tests]}]}


@pytest.fixture
def checked_notebook(tmp_path, monkeypatch):
    """A softmax.ipynb in the working folder, graded by a stand-in that warns and writes to
    stderr, as torch does."""
    write_notebook(tmp_path / "softmax.ipynb", source_notebook("softmax"))
    monkeypatch.chdir(tmp_path)
    calls = []

    def noisy_grade(topic, name, data):
        import sys

        calls.append(name)
        warnings.warn("a UserWarning torch might print", UserWarning, stacklevel=1)
        print("and a line on stderr", file=sys.stderr)
        return fake_report([
            ("test_softmax_small", "public", 1, 1, ""),
            ("test_softmax_secret_property", "hidden", 0, 4, "rows sum to 2"),
            ("test_softmax_other", "hidden", 3, 3, ""),
            ("test_logsumexp_value", "hidden", 0, 2, "overflow"),
        ])

    monkeypatch.setattr(nbcheck, "_grade", noisy_grade)
    monkeypatch.setattr(nbcheck, "_reports", {})
    return calls


def test_check_scores_one_function_without_writing_to_stderr(checked_notebook, capsys):
    assert nbcheck.check("softmax", "softmax") == 1.0
    assert nbcheck.check("softmax", "softmax", hidden=True, points=8) == 4.0
    assert nbcheck.check("softmax", "logsumexp", hidden=True, points=2) == 0.0
    out, err = capsys.readouterr()
    assert err == "" and checked_notebook == ["softmax.ipynb"]  # graded once per content
    assert "rows sum to 2" in out and "what test_softmax_secret_property checks" in out
    assert "test_softmax_secret_property (" not in out  # hidden tests are not named
    assert "1 of 1 points from the public checks" in out and "4 of 8 points in all" in out


def test_check_refuses_to_score_with_the_wrong_tests(checked_notebook, monkeypatch):
    with pytest.raises(RuntimeError, match="tests changed"):
        nbcheck.check("softmax", "softmax", hidden=True, points=5)
    nbcheck._reports.clear()
    monkeypatch.setattr(nbcheck, "_grade", lambda *a: fake_report(
        [("test_softmax_small", "public", 1, 1, "")]))
    with pytest.raises(RuntimeError, match="hidden tests of softmax are not on this machine"):
        nbcheck.check("softmax", "softmax", hidden=True, points=8)


def test_check_needs_the_saved_course_notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="softmax.ipynb"):
        nbcheck.check("softmax", "softmax")
    nb = source_notebook("softmax")
    del nb.metadata[METADATA_KEY]
    write_notebook(tmp_path / "softmax.ipynb", nb)
    with pytest.raises(RuntimeError, match="not a notebook of the torchdrill course"):
        nbcheck.check("softmax", "softmax")

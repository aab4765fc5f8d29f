"""The conventions x functions matrix (tests/kit/convention_matrix.toml, issue #22) is whole: a
column for every function of the contract (the reference's public names), a cell for every
convention in every column, each naming hidden tests that exist or saying why the convention
does not apply, and every convention broken by MISTAKE variants that exist. So a new function
or convention cannot land untested. A topic not in course.toml yet (one being built) is
skipped until it is there, and then needs its columns."""

from __future__ import annotations

import ast
import copy
import importlib
import tomllib
from typing import Any

import pytest

from grader.course import load_course
from grader.notebooks import public_names
from tests.kit.variants import KIT_ROOT

MATRIX_FILE = KIT_ROOT / "tests" / "kit" / "convention_matrix.toml"
NOT_APPLICABLE = "n/a:"

COURSE = load_course()


def load_matrix() -> dict[str, Any]:
    with MATRIX_FILE.open("rb") as f:
        return tomllib.load(f)


MATRIX = load_matrix()
TOPICS = sorted(set(COURSE.names) | set(MATRIX.get("cells", {})))


def hidden_tests(topic: str) -> set[str]:
    """The test functions of tests/hidden/test_<topic>.py (none when it does not exist)."""
    path = KIT_ROOT / "tests" / "hidden" / f"test_{topic}.py"
    if not path.exists():
        return set()
    return {n.name for n in ast.parse(path.read_text()).body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def contract_functions(topic: str) -> list[str]:
    """The functions (and classes) the contract has for `topic`: the reference's public names."""
    return public_names((KIT_ROOT / "solutions" / f"{topic}.py").read_text())


def mistake_ids(topic: str) -> set[str]:
    """`topic-name` of every MISTAKE variant of the topic."""
    module = importlib.import_module(f"tests.kit.variants_{topic}")
    return {v.id for v in module.MISTAKES}


def cell_problems(matrix: dict[str, Any], topic: str, tests: set[str],
                  functions: list[str]) -> list[str]:
    """Every hole in `topic`'s columns: a function without a column, a column without a
    function, a convention without a cell, an empty cell, a test that does not exist, an n/a
    without a reason."""
    conventions = matrix.get("conventions", {})
    reasons = matrix.get("reasons", {})
    columns = matrix.get("cells", {}).get(topic, {})
    problems = [f"{topic}.{f}: a function of the contract with no column"
                for f in functions if f not in columns]
    problems += [f"{topic}.{f}: a column for no function of solutions/{topic}.py"
                 for f in columns if f not in functions]
    for function, cells in columns.items():
        where = f"{topic}.{function}"
        problems += [f"{where}: no cell for convention {c!r}" for c in conventions
                     if c not in cells]
        problems += [f"{where}: a cell for {c!r}, which is no convention" for c in cells
                     if c not in conventions]
        for convention, cell in cells.items():
            problems += [f"{where}.{convention}: {p}" for p in cell_value_problems(
                cell, tests, reasons)]
    return problems


def cell_value_problems(cell: Any, tests: set[str], reasons: dict[str, str]) -> list[str]:
    """What is wrong with one cell: a test name, a list of them, or `n/a: <why>` (a key of
    [reasons] or a sentence)."""
    if isinstance(cell, str) and cell.startswith(NOT_APPLICABLE):
        why = cell.removeprefix(NOT_APPLICABLE).strip()
        if not why:
            return ["n/a without a reason"]
        if " " not in why and why not in reasons:
            return [f"n/a for {why!r}, which is not a key of [reasons]"]
        return []
    names = [cell] if isinstance(cell, str) else cell
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n for n in names):
        return [f"empty or malformed cell {cell!r}: name a hidden test, or n/a: <why>"]
    return [f"no hidden test {n!r}" for n in names if n not in tests]


def convention_problems(matrix: dict[str, Any], mistakes: dict[str, set[str]]) -> list[str]:
    """Every convention states its rule and names MISTAKE variants that exist (`mistakes`:
    topic -> ids, for the topics in the course; a variant of another topic is not checked
    yet); every reason is used."""
    problems = []
    for name, convention in matrix.get("conventions", {}).items():
        if not str(convention.get("rule", "")).strip():
            problems.append(f"convention {name!r} states no rule")
        ids = convention.get("mistakes") or []
        if not ids:
            problems.append(f"convention {name!r} names no MISTAKE variant that breaks it")
        for variant in ids:
            topic = variant.split("-", 1)[0]
            if topic in mistakes and variant not in mistakes[topic]:
                problems.append(f"convention {name!r}: no MISTAKE variant {variant!r} in "
                                f"tests/kit/variants_{topic}.py")
    used = {cell.removeprefix(NOT_APPLICABLE).strip()
            for columns in matrix.get("cells", {}).values() for cells in columns.values()
            for cell in cells.values() if isinstance(cell, str)}
    problems += [f"reason {key!r} is used by no cell" for key in matrix.get("reasons", {})
                 if key not in used]
    return problems


@pytest.mark.parametrize("topic", TOPICS)
def test_every_function_has_a_cell_for_every_convention(topic):
    if topic not in COURSE.names:
        pytest.skip(f"{topic} is not in course.toml yet: its columns are checked once it is")
    problems = cell_problems(MATRIX, topic, hidden_tests(topic), contract_functions(topic))
    assert not problems, "\n".join(problems)


def test_every_convention_is_broken_by_mistakes_that_exist():
    mistakes = {topic: mistake_ids(topic) for topic in COURSE.names}
    problems = convention_problems(MATRIX, mistakes)
    assert not problems, "\n".join(problems)


def test_every_convention_is_tested_somewhere():
    """A row of n/a only would be a convention nothing tries."""
    tested = {convention for topic in COURSE.names
              for cells in MATRIX["cells"].get(topic, {}).values()
              for convention, cell in cells.items()
              if not (isinstance(cell, str) and cell.startswith(NOT_APPLICABLE))}
    assert set(MATRIX["conventions"]) <= tested, set(MATRIX["conventions"]) - tested


def test_the_checks_find_each_kind_of_hole():
    """Break a copy of the matrix in each way the checks guard against and see them fail."""
    topic = "softmax"
    tests, functions = hidden_tests(topic), contract_functions(topic)
    assert not cell_problems(MATRIX, topic, tests, functions)

    def broken(change) -> list[str]:
        matrix = copy.deepcopy(MATRIX)
        change(matrix, matrix["cells"][topic])
        return cell_problems(matrix, topic, tests, functions) + convention_problems(
            matrix, {topic: mistake_ids(topic)})

    def set_cell(value):
        return lambda m, cols: cols["softmax"].__setitem__("values", value)

    cases = {
        "with no column": lambda m, cols: cols.pop("logsumexp"),
        "no cell for convention 'values'": lambda m, cols: cols["softmax"].pop("values"),
        "which is no convention": lambda m, cols: cols["softmax"].__setitem__("x", "n/a: y z"),
        "a column for no function": lambda m, cols: cols.__setitem__("sofmax", {}),
        "no hidden test 'test_softmax_nothing'": set_cell("test_softmax_nothing"),
        "empty or malformed cell ''": set_cell(""),
        "empty or malformed cell []": set_cell([]),
        "n/a without a reason": set_cell("n/a:"),
        "not a key of [reasons]": set_cell("n/a: no-such-reason"),
        "names no MISTAKE variant": lambda m, cols: m["conventions"]["values"].__setitem__(
            "mistakes", []),
        "no MISTAKE variant 'softmax-nothing'": lambda m, cols: m["conventions"]["values"][
            "mistakes"].append("softmax-nothing"),
        "states no rule": lambda m, cols: m["conventions"]["values"].__setitem__("rule", ""),
        "is used by no cell": lambda m, cols: m["reasons"].__setitem__("unused", "why"),
    }
    for expected, change in cases.items():
        problems = broken(change)
        assert any(expected in p for p in problems), (expected, problems)

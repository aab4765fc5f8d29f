"""course.toml agrees with the tests and with torch: topic points are the sum of the tests'
points, every test has points and a hint, and every forbidden name means something."""

from __future__ import annotations

import ast

import pytest

from grader.course import load_course
from grader.forbidden import resolve
from tests.kit.variants import KIT_ROOT

COURSE = load_course()


def course_tests(topic: str) -> list[tuple[str, ast.FunctionDef]]:
    """(suite, test function) for every test of a topic."""
    found = []
    for suite in ("public", "hidden"):
        path = KIT_ROOT / "tests" / suite / f"test_{topic}.py"
        if path.exists():
            tree = ast.parse(path.read_text())
            found += [(suite, n) for n in tree.body
                      if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return found


def points_of(fn: ast.FunctionDef) -> float | None:
    for d in fn.decorator_list:
        if (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                and d.func.attr == "points"):
            return float(ast.literal_eval(d.args[0]))
    return None


WRITTEN = [t.name for t in COURSE.topics if course_tests(t.name)]


def test_every_topic_has_tests():
    assert WRITTEN == COURSE.names


@pytest.mark.parametrize("topic", WRITTEN)
def test_points_add_up(topic):
    tests = course_tests(topic)
    missing = [fn.name for _, fn in tests if points_of(fn) is None]
    assert not missing, f"tests without @pytest.mark.points: {missing}"
    assert sum(points_of(fn) for _, fn in tests) == COURSE.topic(topic).points


@pytest.mark.parametrize("topic", WRITTEN)
def test_every_test_has_a_hint(topic):
    assert [fn.name for _, fn in course_tests(topic) if not ast.get_docstring(fn)] == []


@pytest.mark.parametrize("name", sorted(COURSE.all_forbidden()))
def test_forbidden_names_resolve(name):
    assert resolve(name), f"{name} in course.toml names nothing in torch"


def test_topics_have_solutions_and_stubs():
    for topic in COURSE.names:
        assert (KIT_ROOT / "solutions" / f"{topic}.py").exists(), topic
        assert (KIT_ROOT / "exercises" / f"{topic}.py").exists(), topic

"""course.toml agrees with the tests and with torch: topic points are the sum of the tests'
points (GPU tests included, whatever [gpu] tests says), every test has points and a hint, and
every forbidden name means something."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from grader.course import load_course
from grader.sandbox.forbidden import resolve
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(15)  # rough seconds; see tests/kit/conftest.py

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


WRITTEN = [t.name for t in COURSE.topics if course_tests(t.name)]

COLLECT = """
import json, sys, pytest
class Points:
    items = []
    deselected = []
    def pytest_deselected(self, items):
        self.deselected += list(items)
    def pytest_collection_finish(self, session):
        self.items = [*session.items, *self.deselected]
p = Points()
code = pytest.main(["--collect-only", "-p", "no:terminal", "-p", "no:cacheprovider",
                    "--in-process", "tests/public", "tests/hidden"], plugins=[p])
print(json.dumps([(i.path.stem.removeprefix("test_"), i.nodeid,
                   m.args[0] if (m := i.get_closest_marker("points")) else None)
                  for i in p.items]))
sys.exit(code)
"""


@pytest.fixture(scope="module")
def collected_points() -> dict[str, list[tuple[str, float | None]]]:
    """topic -> [(test id, points)] for every collected test, parametrized ones counted once
    per case, as the grader scores them; GPU tests a course omits (deselected) included."""
    run = subprocess.run([sys.executable, "-c", COLLECT], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found: dict[str, list] = {}
    for topic, nodeid, points in json.loads(run.stdout.strip().splitlines()[-1]):
        found.setdefault(topic, []).append((nodeid, points))
    return found


def test_every_topic_has_tests():
    assert WRITTEN == COURSE.names


@pytest.mark.parametrize("topic", WRITTEN)
def test_points_add_up(topic, collected_points):
    tests = collected_points[topic]
    missing = [nodeid for nodeid, points in tests if points is None]
    assert not missing, f"tests without @pytest.mark.points: {missing}"
    total = sum(points for _, points in tests)
    assert total == COURSE.topic(topic).points, (
        f"{topic}: the tests are worth {total:g} points, course.toml says "
        f"{COURSE.topic(topic).points:g}")


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

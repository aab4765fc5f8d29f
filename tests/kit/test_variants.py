"""Every known mistake loses points with a message that names it; every correct solution
written differently from the reference gets full marks. Variants live in variants_<topic>.py;
all are graded on one process pool (one worker template per process)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import textwrap

import pytest

from grader.instructor.batch import Task, grade_locally
from tests.kit.public_preview import PREVIEW_GOAL, caught_in_public
from tests.kit.variants import KIT_ROOT, Variant, build_submission, edited

pytestmark = pytest.mark.heavy(180)  # rough seconds; see tests/kit/conftest.py

JOBS = os.cpu_count() or 1

TOPICS = sorted(p.stem.removeprefix("variants_")
                for p in (KIT_ROOT / "tests" / "kit").glob("variants_*.py"))


def variants_of(topic: str) -> tuple[list[Variant], list[Variant]]:
    module = importlib.import_module(f"tests.kit.variants_{topic}")
    return module.MISTAKES, module.CORRECT


ALL = [(kind, v) for t in TOPICS for kind, vs in zip(("mistake", "correct"), variants_of(t),
                                                     strict=True) for v in vs]


def keyword_for(variant: Variant) -> str | None:
    """A mistake is graded on the tests of the functions it rewrites (pytest -k), which are the
    tests that must name it; a correct variant on its whole topic, to show nothing is lost."""
    tree = ast.parse(textwrap.dedent(variant.source))
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not (variant.expect and names):
        return None
    module = f"test_{variant.topic}.py"  # every test of the file carries it as a keyword, so
    # `sgd` in sgd.py selects by `test_sgd_` (test_sgd_updates_in_place), not `test_sgd`
    return " or ".join(f"test_{n}_" if f"test_{n}" in module else f"test_{n}" for n in names)


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict[str, dict]:
    """variant id -> report; all variants graded on one process pool, as a class is."""
    root = tmp_path_factory.mktemp("variants")
    tasks = []
    for _, variant in ALL:
        entry = build_submission(variant, root / "in")
        tasks.append(Task(variant.id, str(entry), str(root / "out" / variant.id),
                          (variant.topic,), "all", None, "", keyword_for(variant)))
    errors = {task.student: error for task, _, error in grade_locally(tasks, JOBS) if error}
    assert not errors, errors
    return {v.id: json.loads((root / "out" / v.id / "report.json").read_text()) for _, v in ALL}


def lost(report: dict) -> list[dict]:
    return [t for topic in report["topics"] for t in topic["tests"] if t["score"] < t["max_score"]]


@pytest.mark.parametrize("kind,variant", ALL, ids=[f"{k}-{v.id}" for k, v in ALL])
def test_variant(graded, kind, variant):
    report = graded[variant.id]
    assert report["max_score"] > 0, "the topic's tests did not run"
    if kind == "correct":
        assert report["score"] == report["max_score"], (
            "a correct solution lost points: "
            + "; ".join(f"{t['name']}: {t['message']}" for t in lost(report)))
        return
    assert report["score"] < report["max_score"], "the mistake got full marks"
    messages = [t["message"] for t in lost(report)]
    assert any(variant.expect.lower() in m.lower() for m in messages), (
        f"no lost test names the mistake ({variant.expect!r}); messages: {messages}")


def test_an_edit_names_one_place_of_the_reference():
    """`edited` refuses an `old` text that is missing or ambiguous, or edits of two functions."""
    with pytest.raises(ValueError, match="0 times"):
        edited("softmax", "x", ("no such line", ""))
    with pytest.raises(ValueError, match="times"):
        edited("softmax", "x", ("return", "return"))
    with pytest.raises(ValueError, match="one top-level function"):
        edited("mlp", "x", ("def relu(", "def relu("), ("def train_mlp(", "def train_mlp("))
    variant = edited("mlp", "x", ("def relu(", "def relu("))
    assert variant.source.startswith("def relu(") and "def train_mlp" not in variant.source


def test_the_public_suite_previews_the_grade(graded):
    """A student's own `make grade` runs the public tests only: of the known mistakes, at least
    PREVIEW_GOAL already lose a public test there, so local feedback is a fair preview of the
    grade (`python -m tests.kit.public_preview` names the ones it misses)."""
    mistakes = [v for kind, v in ALL if kind == "mistake"]
    missed = [v.id for v in mistakes if not caught_in_public(graded[v.id])]
    share = 1 - len(missed) / len(mistakes)
    assert share >= PREVIEW_GOAL, (
        f"the public suite catches {share:.0%} of the known mistakes; missed: {missed}")

"""Every known mistake loses points with a message that names it; every correct solution
written differently from the reference gets full marks. Variants live in variants_<topic>.py;
each topic's are graded in one batch run (one worker template)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from tests.kit.variants import KIT_ROOT, Variant, build_submission

TOPICS = sorted(p.stem.removeprefix("variants_")
                for p in (KIT_ROOT / "tests" / "kit").glob("variants_*.py"))


def variants_of(topic: str) -> tuple[list[Variant], list[Variant]]:
    module = importlib.import_module(f"tests.kit.variants_{topic}")
    return module.MISTAKES, module.CORRECT


ALL = [(kind, v) for t in TOPICS for kind, vs in zip(("mistake", "correct"), variants_of(t),
                                                     strict=True) for v in vs]


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict[str, dict]:
    """variant id -> report, grading each topic's variants in one batch run."""
    reports = {}
    for topic in TOPICS:
        mistakes, correct = variants_of(topic)
        root = tmp_path_factory.mktemp(f"variants-{topic}")
        for v in mistakes + correct:
            build_submission(v, root / "in")
        out = root / "out"
        subprocess.run([sys.executable, "-m", "grader", "batch", str(root / "in"), "--out",
                        str(out), "--topics", topic, "--suite", "all"], check=True,
                       cwd=KIT_ROOT, capture_output=True, text=True)
        for v in mistakes + correct:
            reports[v.id] = json.loads((out / v.id / "report.json").read_text())
    return reports


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

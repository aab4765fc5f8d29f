"""How many examples each hidden hypothesis test needs to catch the mistakes of the variants
suite, measured: every mistake variant is graded as tests/kit/test_variants.py grades it (on the
tests of the functions it rewrites), every correct variant and the reference on the whole topic,
one after another on one worker template, with a pytest plugin that counts the calls of each
hypothesis test's inner function (`item.obj.hypothesis.inner_test`, the hook hypothesis offers
plugins). An example is one call that is not rejected by `assume`; explicit `@example` cases
run first and count too. The grading profile does not shrink, so a test stops at its first
failing example (and calls it once more to report it).

    .venv/bin/python -m tests.kit.examples_needed [--topics a,b] [--json OUT]
    .venv/bin/python -m tests.kit.examples_needed --diff BEFORE.json AFTER.json

Per hidden hypothesis test: its max_examples and explicit examples, the largest 1-based index
of the first failing example over the mistakes it catches (its failure names the mistake, as the
variants suite requires) and which. Per mistake: the smallest index over the tests that catch it
(one is enough for its verdict). Per topic: the examples the reference runs. `--diff` compares
two runs' verdicts and lost tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis.errors import UnsatisfiedAssumption

from grader.course import KIT_ROOT
from grader.grade import grade
from grader.sandbox.client import Template
from tests.kit.test_variants import TOPICS, keyword_for, variants_of
from tests.kit.variants import Variant, build_submission


@dataclass
class Count:
    """One hypothesis test's run: examples until it stopped, and its first failing one."""

    max_examples: int
    explicit: int
    examples: int = 0  # calls not rejected by assume()
    calls: int = 0  # every call, rejected ones and the replay of a failure included
    first_failure: int | None = None  # 1-based, among examples


class ExampleCounter:
    """A pytest plugin: a Count per hypothesis test of the run, by test name."""

    def __init__(self) -> None:
        self.counts: dict[str, Count] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item) -> Iterator[None]:
        hyp = getattr(item.obj, "hypothesis", None)
        if hyp is None:
            return (yield)
        count = self.counts[item.name] = Count(
            item.obj._hypothesis_internal_use_settings.max_examples,
            len(getattr(item.obj, "hypothesis_explicit_examples", ())))
        inner = hyp.inner_test

        def counted(*args, **kwargs):
            count.calls += 1
            try:
                result = inner(*args, **kwargs)
            except UnsatisfiedAssumption:
                raise
            except BaseException:
                if count.first_failure is None:
                    count.examples += 1
                    count.first_failure = count.examples
                raise
            if count.first_failure is None:
                count.examples += 1
            return result

        hyp.inner_test = counted  # the function is shared by every run: put it back after
        try:
            return (yield)
        finally:
            hyp.inner_test = inner


def run_one(template: Template, entry: Path, topic: str, keyword: str | None,
            expect: str | None) -> dict[str, Any]:
    """One grade: per test, its Count (hypothesis tests), whether it lost points and whether
    its message names `expect`; and the verdict as the variants suite decides it."""
    counter = ExampleCounter()
    report = grade(entry, [topic], "all", None, template=template, keyword=keyword,
                   plugins=[counter])
    tests: dict[str, dict[str, Any]] = {}
    for t in (t for topic_ in report["topics"] for t in topic_["tests"]):
        lost = t["score"] < t["max_score"]
        count = counter.counts.get(t["name"])
        tests[t["name"]] = {
            "hidden": t["visibility"] == "hidden", "lost": lost,
            "names_mistake": bool(lost and expect and expect.lower() in t["message"].lower()),
            **(asdict(count) if count else {})}
    caught = any(t["names_mistake"] for t in tests.values())
    ok = caught if expect else report["score"] == report["max_score"] > 0
    return {"topic": topic, "expect": expect, "ok": ok, "tests": tests}


def measure(topics: list[str]) -> dict[str, dict[str, Any]]:
    """variant id (or `<topic>-reference`) -> run_one's result."""
    runs: dict[str, dict[str, Any]] = {}
    template = Template()
    try:
        with tempfile.TemporaryDirectory(prefix="examples-needed-") as root:
            for topic in topics:
                mistakes, correct = variants_of(topic)
                runs[f"{topic}-reference"] = run_one(
                    template, KIT_ROOT / "solutions", topic, None, None)
                for variant in [*mistakes, *correct]:
                    runs[variant.id] = graded(template, variant, Path(root))
                    print(f"{variant.id}: {'ok' if runs[variant.id]['ok'] else 'WRONG VERDICT'}",
                          file=sys.stderr, flush=True)
    finally:
        template.close()
    return runs


def graded(template: Template, variant: Variant, root: Path) -> dict[str, Any]:
    entry = build_submission(variant, root)
    return run_one(template, entry, variant.topic, keyword_for(variant), variant.expect)


def index_of(test: dict[str, Any]) -> int:
    """The example a lost test failed at: 1 for a test without hypothesis, or one that lost
    without failing (a forbidden call is seen at the first)."""
    return test.get("first_failure") or 1


def summary(runs: dict[str, dict[str, Any]]) -> str:
    lines = []
    catches: dict[tuple[str, str], list[tuple[int, str]]] = {}  # (topic, test) -> (index, id)
    limits: dict[tuple[str, str], tuple[int, int]] = {}
    for vid, run in runs.items():
        for name, t in run["tests"].items():
            if "max_examples" in t and t["hidden"]:
                limits[run["topic"], name] = (t["max_examples"], t["explicit"])
                if t["names_mistake"]:
                    catches.setdefault((run["topic"], name), []).append((index_of(t), vid))
    lines.append("per hidden hypothesis test: max_examples, explicit, largest index needed, "
                 "by mistake (index)")
    for key in sorted(limits):
        found = sorted(catches.get(key, []), reverse=True)
        worst = str(found[0][0]) if found else "-"
        lines.append(f"  {key[0]}::{key[1]}: {limits[key][0]}, {limits[key][1]}, {worst}; "
                     + " ".join(f"{v.split('-', 1)[1]}({i})" for i, v in found))
    lines.append("per mistake: smallest index over the tests that catch it (tests)")
    for vid, run in runs.items():
        if not run["expect"]:
            continue
        found = sorted((index_of(t), name) for name, t in run["tests"].items()
                       if t["names_mistake"])
        best = found[0][0] if found else "NOT CAUGHT"
        lines.append(f"  {vid}: {best} ({', '.join(f'{n}:{i}' for i, n in found)})")
    lines.append("examples the reference runs, per topic (calls with replays and rejections)")
    for vid, run in runs.items():
        if vid.endswith("-reference"):
            ts = [t for t in run["tests"].values() if "examples" in t]
            lines.append(f"  {run['topic']}: {sum(t['examples'] for t in ts)} "
                         f"({sum(t['calls'] for t in ts)})")
    wrong = [vid for vid, run in runs.items() if not run["ok"]]
    lines.append(f"wrong verdicts: {', '.join(wrong) or 'none'}")
    return "\n".join(lines)


def diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> str:
    """Verdicts that changed, and each variant's lost tests that changed."""
    lines = []
    for vid in sorted(before.keys() & after.keys()):
        b, a = before[vid], after[vid]
        if b["ok"] != a["ok"]:
            lines.append(f"{vid}: verdict {'ok' if b['ok'] else 'wrong'} -> "
                         f"{'ok' if a['ok'] else 'WRONG'}")
        lost_b = {n for n, t in b["tests"].items() if t["lost"]}
        lost_a = {n for n, t in a["tests"].items() if t["lost"]}
        if lost_b != lost_a:
            lines.append(f"{vid}: no longer lost {sorted(lost_b - lost_a)}, "
                         f"newly lost {sorted(lost_a - lost_b)}")
    missing = sorted(before.keys() ^ after.keys())
    if missing:
        lines.append(f"in one run only: {', '.join(missing)}")
    return "\n".join(lines) or "same verdicts and lost tests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kit.examples_needed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", help="comma-separated topics (default: all with variants)")
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"),
                        help="compare two --json files instead of measuring")
    args = parser.parse_args(argv)
    if args.diff:
        before, after = (json.loads(Path(p).read_text()) for p in args.diff)
        print(diff(before, after))
        return 0
    runs = measure(args.topics.split(",") if args.topics else TOPICS)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1) + "\n")
    print(summary(runs))
    return 0 if all(run["ok"] for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

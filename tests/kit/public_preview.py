"""How fair a preview of the grade the public suite is (#23): of the known mistakes
(`variants_<topic>.MISTAKES`), the share a student's own `make grade` (public tests only)
already catches. `python -m tests.kit.public_preview [topic ...]` grades them with the public
suite alone and names the mistakes it misses; `test_variants` measures the same share from its
reports, where each lost test says whether it is public."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from grader.instructor.batch import Task, grade_locally
from tests.kit.variants import Variant, build_submission

PREVIEW_GOAL = 0.8  # the share of known mistakes the public suite must catch


def caught_in_public(report: dict) -> bool:
    """Whether a public test of the report lost points."""
    return any(t["visibility"] == "public" and t["score"] < t["max_score"]
               for topic in report["topics"] for t in topic["tests"])


def public_reports(variants: list[Variant], root: Path) -> dict[str, dict]:
    """variant id -> its report, graded on the public tests of its topic only."""
    tasks = [Task(v.id, str(build_submission(v, root / "in")), str(root / "out" / v.id),
                  (v.topic,), "public", None, "") for v in variants]
    errors = {t.student: e for t, _, e in grade_locally(tasks, os.cpu_count() or 1) if e}
    if errors:
        raise RuntimeError(errors)
    return {v.id: json.loads((root / "out" / v.id / "report.json").read_text())
            for v in variants}


def main(topics: list[str]) -> int:
    from tests.kit.test_variants import TOPICS, variants_of

    mistakes = [v for t in topics or TOPICS for v in variants_of(t)[0]]
    with tempfile.TemporaryDirectory(prefix="preview-", dir=Path.cwd()) as root:
        reports = public_reports(mistakes, Path(root))
    missed = [v.id for v in mistakes if not caught_in_public(reports[v.id])]
    for variant in missed:
        print(f"missed: {variant}")
    share = 1 - len(missed) / max(len(mistakes), 1)
    print(f"public suite catches {len(mistakes) - len(missed)}/{len(mistakes)} = {share:.0%} "
          f"(goal {PREVIEW_GOAL:.0%})")
    return 0 if share >= PREVIEW_GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

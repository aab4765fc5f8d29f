"""`make bench`: what grading costs.

For each topic, the reference is graded with the full suite twice per round: through the
sandboxed worker (as students are graded) and with the same requests served in this process
(`--in-process`: the same copies in and out, no second process, sandbox or socket). Their
difference is what the sandboxed worker costs per submission; the sandboxed time is the hidden
suite's cost per submission. Worker startup is amortised as in a batch (one
template per run); for scale, the cost of importing torch in a fresh process is shown too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from grader.cli import default_suite, grade, test_files
from grader.course import KIT_ROOT, load_course
from grader.workers import Template

OVERHEAD_TARGET_MS = 50.0
SUITE_TARGET_S = 60.0


def _timed(fn, *args, **kwargs) -> tuple[dict, float]:
    start = time.perf_counter()
    report = fn(*args, **kwargs)
    return report, time.perf_counter() - start


def torch_import_s() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--topics", help="comma-separated (default: every topic with tests)")
    parser.add_argument("--submission", default=str(KIT_ROOT / "solutions"))
    args = parser.parse_args(argv)
    course = load_course()
    suite = default_suite()
    topics = args.topics.split(",") if args.topics else [
        t for t in course.names if test_files([t], suite)]
    template = Template()
    print(f"grading {Path(args.submission).name} with the {suite} suite")
    print(f"{'topic':<14}{'sandboxed s':>12}{'in-process s':>13}{'difference ms':>15}  score")
    try:
        grade(args.submission, topics[:1], suite, template=template, course=course)  # warm-up
        for topic in topics:
            report, s = _timed(grade, args.submission, [topic], suite, template=template,
                               course=course)
            _, d = _timed(grade, args.submission, [topic], suite, in_process=True, course=course)
            print(f"{topic:<14}{s:>12.2f}{d:>13.2f}{(s - d) * 1000:>15.0f}  "
                  f"{report['score']:g}/{report['max_score']:g}")
        sandboxed, in_process = [], []
        for _ in range(args.rounds):
            sandboxed.append(_timed(grade, args.submission, topics, suite, template=template,
                                    course=course)[1])
            in_process.append(_timed(grade, args.submission, topics, suite, in_process=True,
                                 course=course)[1])
    finally:
        template.close()
    s, d = statistics.median(sandboxed), statistics.median(in_process)
    overhead_ms = (s - d) * 1000
    print(f"\nwhole submission ({len(topics)} topics), median of {args.rounds} rounds:")
    print(f"  sandboxed {s:.2f} s, same requests in-process {d:.2f} s")
    print(f"  suite time per submission: {s:.1f} s (target under {SUITE_TARGET_S:.0f} s)")
    print(f"  sandboxed worker's overhead per submission: {overhead_ms:.0f} ms "
          f"(target under {OVERHEAD_TARGET_MS:.0f} ms)")
    print(f"for scale, importing torch in a fresh process: {torch_import_s():.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

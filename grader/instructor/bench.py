"""`make bench`: what grading costs.

For each topic, the reference is graded with the full suite twice per round: through the
sandboxed worker (as students are graded) and with the same requests served in this process
(`--in-process`: the same copies in and out, no second process, sandbox or socket), both on
one thread. Their difference is what the sandboxed worker costs per submission; the sandboxed
time is the hidden suite's cost per submission. Worker startup is amortised as in a batch (one
template per run). The overhead is then split into what every submission pays once (a test
session, a worker's start, the reports) and what every call into student code pays (one round
trip to the worker); for scale, the cost of importing torch in a fresh process is shown too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import torch

from grader.course import KIT_ROOT, Course, load_course
from grader.grade import default_suite, grade, test_files
from grader.handle import Session
from grader.report.formats import write_reports
from grader.report.schema import Report
from grader.sandbox.client import LocalWorker, Template, WorkerConnection
from grader.submission import load_submission

OVERHEAD_TARGET_MS = 50.0
SUITE_TARGET_S = 60.0

P = ParamSpec("P")
R = TypeVar("R")


def _timed(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(_timed(fn)[1] for _ in range(runs)) * 1000


def fixed_costs_ms(submission: str, topics: list[str], suite: str, template: Template,
                   course: Course, report: Report, runs: int = 5) -> dict[str, float]:
    """What one submission pays once, whatever its tests: a test session that selects no
    test (pytest's start, collection, the report built), a worker started and answering, and
    its four report files (those of `report`) written."""

    def session() -> None:
        grade(submission, topics, suite, template=template, course=course,
              keyword="no_test_has_this_name")

    def worker() -> None:
        s = Session(load_submission(submission), course, template)
        s._worker().request({"op": "release", "refs": []}, 60, [], None)
        s.close()

    with tempfile.TemporaryDirectory() as out:
        return {"test session": _median_ms(session, runs),
                "worker start": _median_ms(worker, runs),
                "reports": _median_ms(lambda: write_reports(report, Path(out)), runs)}


def round_trip_ms(submission: str, template: Template, course: Course,
                  calls: int = 2000) -> tuple[float, float]:
    """(sandboxed, in-process) milliseconds of the smallest request, a worker's whole cost
    per call into student code beyond the call itself."""
    s = Session(load_submission(submission), course, template)
    request = {"op": "release", "refs": []}

    def per_call_ms(worker: WorkerConnection | LocalWorker) -> float:
        return _median_ms(lambda: [worker.request(request, 60, [], None)
                                   for _ in range(calls)], 3) / calls

    try:
        return per_call_ms(s._worker()), per_call_ms(LocalWorker(s.config))
    finally:
        s.close()


def torch_import_s() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--topics", help="comma-separated (default: every topic with tests)")
    parser.add_argument("--submission", default=str(KIT_ROOT / "solutions"))
    args = parser.parse_args(argv)
    course = load_course()
    suite = default_suite()
    topics = args.topics.split(",") if args.topics else [
        t for t in course.names if test_files([t], suite)]
    template = Template()
    torch.set_num_threads(template.threads)  # in-process runs on the worker's threads
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
            report, s = _timed(grade, args.submission, topics, suite, template=template,
                               course=course)
            sandboxed.append(s)
            in_process.append(_timed(grade, args.submission, topics, suite, in_process=True,
                                     course=course)[1])
        fixed = fixed_costs_ms(args.submission, topics, suite, template, course, report)
        trip = round_trip_ms(args.submission, template, course)
    finally:
        template.close()
    s, d = statistics.median(sandboxed), statistics.median(in_process)
    overhead_ms = (s - d) * 1000
    print(f"\nwhole submission ({len(topics)} topics), median of {args.rounds} rounds:")
    print(f"  sandboxed {s:.2f} s, same requests in-process {d:.2f} s")
    print(f"  suite time per submission: {s:.1f} s (target under {SUITE_TARGET_S:.0f} s)")
    print(f"  sandboxed worker's overhead per submission: {overhead_ms:.0f} ms "
          f"(target under {OVERHEAD_TARGET_MS:.0f} ms)")
    print("what grading itself costs, besides the tests' own work:")
    print(f"  once per submission: {sum(fixed.values()):.0f} ms ("
          + ", ".join(f"{k} {v:.0f} ms" for k, v in fixed.items()) + ")")
    print(f"  on every call into student code: {trip[0]:.3f} ms, a round trip to the sandboxed "
          f"worker\n    ({trip[1]:.3f} ms of it is the wire's copying, also paid in-process)")
    print(f"for scale, importing torch in a fresh process: {torch_import_s():.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

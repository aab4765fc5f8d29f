"""`python -m grader` (also `torchdrill`): grade a submission, keep stubs in sync."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from grader.course import KIT_ROOT, Course, load_course
from grader.instructor.batch import grading_budget, run_batch
from grader.instructor.sync import sync
from grader.plugin import Grading
from grader.report.formats import write_reports
from grader.report.scoring import build_report
from grader.report.table import render_table
from grader.sandbox.client import Template
from grader.stopped import TestPlan, Watchdog, stopped_report
from grader.submission import Submission

SUITES = ("public", "hidden", "all")

# A grading run loads only the plugins it needs: a score must not depend on which pytest
# plugins are installed where it runs (pytest-randomly would reorder and reseed), and each
# plugin left out saves time in every one of a class's test sessions.
PYTEST_PLUGINS = ["--disable-plugin-autoload", "-p", "_hypothesis_pytestplugin"] + [
    arg for name in ("cacheprovider", "unraisableexception", "logging", "junitxml", "doctest",
                     "pastebin", "stepwise", "legacypath", "tmpdir", "monkeypatch",
                     "setuponly", "setupplan", "recwarn")
    for arg in ("-p", f"no:{name}")]


def default_suite() -> str:
    return "all" if (KIT_ROOT / "tests" / "hidden").is_dir() else "public"


def test_files(topics: list[str], suite: str) -> list[Path]:
    """The course's test files for these topics and suite, in course order."""
    suites = ("public", "hidden") if suite == "all" else (suite,)
    return [p for t in topics for s in suites
            if (p := KIT_ROOT / "tests" / s / f"test_{t}.py").exists()]


def grade(path: str | Path | Submission, topics: list[str] | None = None, suite: str | None = None,
          out_dir: str | Path | None = None, in_process: bool = False,
          template: Template | None = None, course: Course | None = None,
          verbose: bool = False, keyword: str | None = None, plan: TestPlan | None = None,
          timeout_s: float | None = None) -> dict:
    """Grade one submission; write its reports to `out_dir` (if given) and return the report.
    `keyword`: only the tests whose names match this pytest `-k` expression. `plan` notes the
    tests collected. `timeout_s`: wall clock for all of it (main thread only); past it the
    run stops and the report says that grading was stopped."""
    course = course or load_course()
    topics = topics or course.names
    suite = suite or default_suite()
    files = test_files(topics, suite)
    grading = Grading(path, course, template, in_process,
                      str(Path(out_dir).resolve()) if out_dir else None)
    plan = plan or TestPlan()
    report = None
    try:
        quiet = ["-p", "no:terminal"]  # the report's table replaces pytest's output
        loud = ["-q", "--no-header", "--tb=no", "-rN"]
        args = [*map(str, files), f"--rootdir={KIT_ROOT}", "-c", str(KIT_ROOT / "pyproject.toml"),
                *PYTEST_PLUGINS, "-W", "ignore::pytest.PytestAssertRewriteWarning",
                *(loud if verbose else quiet), *(["-k", keyword] if keyword else [])]
        with Watchdog(timeout_s) as watchdog:
            code = pytest.main(args, plugins=[grading, plan])
            if not watchdog.fired:
                if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) or (
                        code == pytest.ExitCode.INTERRUPTED):
                    raise RuntimeError(f"the test run did not complete (pytest exit code "
                                       f"{code})\n" + "\n".join(filter(None, [
                                           grading.session.fatal, *grading.collection_errors])))
                report = build_report(grading.records, course, topics, grading.submission,
                                      grading.session.isolation, grading.session.flags,
                                      grading.not_counted)
        if report is None:  # the watchdog stopped it
            report = stopped_report(course, topics, grading.submission.name, timeout_s,
                                    plan.records, plan.not_counted)
    finally:
        grading.close()
    if out_dir is not None:
        write_reports(report, Path(out_dir))
    return report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one submission (a folder of <topic>.py files)")
    g.add_argument("path", nargs="?", default=str(KIT_ROOT / "exercises"))
    g.add_argument("--topics", help="comma-separated topics (default: all)")
    g.add_argument("--suite", choices=SUITES, help="public, hidden or all (default: all "
                   "where tests/hidden exists)")
    g.add_argument("--out", help="where to write the reports (default: grading/<name>)")
    g.add_argument("--in-process", action="store_true",
                   help="run your code in this process, for a debugger (no sandbox)")
    g.add_argument("-v", "--verbose", action="store_true", help="show pytest's progress")
    b = sub.add_parser("batch", help="grade every student in DIR (a sub-folder or .zip each)")
    b.add_argument("dir")
    b.add_argument("--out", required=True, help="each student's reports go to "
                   "OUT/students/<student>/, the gradebook and class page to OUT/")
    for q in (g, b):
        q.add_argument("--call-timeout", type=float,
                       help="seconds one call into student code may take (default: course.toml)")
        q.add_argument("--student-timeout", type=float, metavar="SECONDS",
                       help="seconds grading one submission may take in all; past them it is "
                       "stopped and the report says so (default: course.toml "
                       "grading_timeout_s; grade --in-process: none)")
        q.add_argument("-k", dest="keyword", metavar="EXPR",
                       help="only tests whose names match EXPR, as pytest -k (e.g. logsumexp)")
    b.add_argument("--topics", help="comma-separated topics (default: all)")
    b.add_argument("--suite", choices=SUITES)
    b.add_argument("--jobs", type=int, help="submissions graded at once (default: all cores)")
    b.add_argument("--executor", choices=("local", "dask"), default="local")
    b.add_argument("--scheduler", help="Dask scheduler address, with --executor dask")
    r = sub.add_parser("release", help="write the student kit and the nbgrader course")
    r.add_argument("--out", default="release", help="folder to write (default: release/)")
    s = sub.add_parser("sync", help="regenerate exercises/ from solutions/")
    s.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")
    return p


def main(argv: list[str] | None = None, template: Template | None = None) -> int:
    """The command line; `template`: a worker template already started, for `grade`."""
    args = _parser().parse_args(argv)
    if args.command == "sync":
        drift = sync(check=args.check)
        if args.check and drift:
            print("exercises/ is out of date with solutions/: " + ", ".join(drift)
                  + "\nrun `python -m grader sync` and commit the result.", file=sys.stderr)
            return 1
        print("exercises/ is in sync with solutions/" if not drift else
              "regenerated: " + ", ".join(drift))
        return 0
    if args.command == "release":
        from grader.instructor.release import release

        release(Path(args.out))
        return 0
    course = load_course()
    if args.call_timeout:
        course = course.with_call_timeout(args.call_timeout)
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else None
    for t in topics or []:
        course.topic(t)
    if args.command == "batch":
        if args.executor == "dask" and not args.scheduler:
            print("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.1:8786)",
                  file=sys.stderr)
            return 2
        failed = run_batch(Path(args.dir), Path(args.out), course, topics, args.suite,
                           args.jobs, args.executor, args.scheduler, args.call_timeout,
                           keyword=args.keyword, student_timeout=args.student_timeout)
        return 1 if failed else 0
    path = Path(args.path)
    out = Path(args.out) if args.out else Path("grading") / path.resolve().name
    suite = args.suite or default_suite()
    timeout = None if args.in_process else grading_budget(course, args.student_timeout)
    report = grade(path, topics, suite, out, args.in_process, template=template, course=course,
                   verbose=args.verbose, keyword=args.keyword, timeout_s=timeout)
    render_table(report)
    print(f"reports written to {out}/ (report.json, report.md, report.html, results.json)")
    if suite == "public":
        print("Only the public tests ran here; the hidden tests will count too when your "
              "instructor grades.")
    return 0

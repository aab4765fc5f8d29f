"""Grading one submission: its topics' test files run by pytest with the grading plugin,
within a wall-clock budget, into a report (and its files, when asked). The command line, the
batch and the bench all grade through `grade`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from grader.course import KIT_ROOT, Course, load_course
from grader.failures import GraderError
from grader.plugin import Grading
from grader.report.formats import write_reports
from grader.report.schema import Report
from grader.report.scoring import build_report
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
          timeout_s: float | None = None, plugins: Sequence[object] = ()) -> Report:
    """Grade one submission; write its reports to `out_dir` (if given) and return the report.
    `keyword`: only the tests whose names match this pytest `-k` expression. `plan` notes the
    tests collected. `timeout_s`: wall clock for all of it (main thread only); past it the
    run stops and the report says that grading was stopped. `plugins`: more pytest plugins for
    the run (a measurement's). A failure of the grader itself
    (`grading.grader_errors`) raises GraderError: no report, rather than one that blames the
    student."""
    course = course or load_course()
    topics = topics or course.names
    suite = suite or default_suite()
    files = test_files(topics, suite)
    grading = Grading(path, course, template, in_process,
                      str(Path(out_dir).resolve()) if out_dir else None)
    plan = plan or TestPlan()
    report: Report | None = None
    try:
        quiet = ["-p", "no:terminal"]  # the report's table replaces pytest's output
        loud = ["-q", "--no-header", "--tb=no", "-rN"]
        args = [*map(str, files), f"--rootdir={KIT_ROOT}", "-c", str(KIT_ROOT / "pyproject.toml"),
                *PYTEST_PLUGINS, "-W", "ignore::pytest.PytestAssertRewriteWarning",
                *(loud if verbose else quiet), *(["-k", keyword] if keyword else [])]
        with Watchdog(timeout_s) as watchdog:
            code = pytest.main(args, plugins=[grading, plan, *plugins])
            if not watchdog.fired:
                if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR) or (
                        code == pytest.ExitCode.INTERRUPTED):
                    raise RuntimeError(f"the test run did not complete (pytest exit code "
                                       f"{code})\n" + "\n".join(filter(None, [
                                           grading.session.fatal, *grading.collection_errors])))
                if grading.grader_errors:
                    raise GraderError(
                        f"the grader itself failed on {len(grading.grader_errors)} test(s); no "
                        "score was given, since it would count a grader bug as the student's lost "
                        "points. Report this to the course's developers:\n"
                        + "\n".join(grading.grader_errors))
                report = build_report(grading.records, course, topics, grading.submission,
                                      grading.session.isolation, grading.session.flags,
                                      grading.not_counted)
        if report is None:  # the watchdog stopped it, which it does only given a budget
            assert timeout_s is not None
            report = stopped_report(course, topics, grading.submission.name, timeout_s,
                                    plan.records, plan.not_counted)
    finally:
        grading.close()
    if out_dir is not None:
        write_reports(report, Path(out_dir))
    return report


def grading_budget(course: Course, student_timeout: float | None = None) -> float:
    """Seconds of wall clock grading one student may take in all (course.toml's
    `grading_timeout_s` unless given)."""
    return student_timeout or float(course.limits["grading_timeout_s"])

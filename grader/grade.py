"""Grading one submission: its topics' test files run by pytest with the grading plugin,
within a wall-clock budget, into a report (and its files, when asked). The command line, the
batch and the bench all grade through `grade`."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from grader.budgets import Timings, topic_cost
from grader.course import KIT_ROOT, Course, load_course
from grader.failures import GraderError
from grader.forked import Forked
from grader.plugin import Grading
from grader.report.formats import write_reports
from grader.report.schema import Flag, GradedTestRecord, NotCounted, Report
from grader.report.scoring import build_report
from grader.sandbox.client import Template
from grader.stopped import TestPlan, Watchdog, stopped_report
from grader.submission import Submission, load_submission

SUITES = ("public", "hidden", "all")
QUIET = ["-p", "no:terminal"]  # the report's table replaces pytest's output
# --in-process is the student's own debugging: what their code prints reaches the terminal, and
# breakpoint() is plain pdb on it (pytest's own pdb wrapper needs its terminal plugin)
DEBUGGING = ["--capture=no", "-p", "no:debugging"]

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


@dataclass
class Part:
    """What one test session found, for some of a submission's topics."""

    records: list[GradedTestRecord]
    not_counted: list[NotCounted]
    flags: list[Flag]
    isolation: list[str]
    grader_errors: list[str]
    problems: str  # why the session did not complete ("" when it did)
    timings: Timings


def run_session(submission: Submission, course: Course, topics: list[str], suite: str,
                template: Template | None, in_process: bool, out_dir: str | None,
                verbose: bool, keyword: str | None, plan: TestPlan,
                plugins: Sequence[object] = ()) -> Part:
    """One pytest session over these topics' tests, with the grading plugin."""
    grading = Grading(submission, course, template, in_process, out_dir, course.threads)
    loud = ["-q", "--no-header", "--tb=no", "-rN"]
    args = [*_pytest_args(topics, suite), *(loud if verbose else QUIET),
            *(["-k", keyword] if keyword else []), *(DEBUGGING if in_process else [])]
    try:
        code = pytest.main(args, plugins=[grading, plan, *plugins])
    finally:
        grading.close()
    failed = code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR,
                      pytest.ExitCode.INTERRUPTED)
    problems = f"the test run did not complete (pytest exit code {code})\n" + "\n".join(
        filter(None, [grading.session.fatal, *grading.collection_errors])) if failed else ""
    return Part(grading.records, grading.not_counted, grading.session.flags,
                grading.session.isolation, grading.grader_errors, problems, grading.timings)


def _pytest_args(topics: list[str], suite: str) -> list[str]:
    """pytest's command line for these topics' test files, the grading plugins only."""
    return [*map(str, test_files(topics, suite)), f"--rootdir={KIT_ROOT}",
            "-c", str(KIT_ROOT / "pyproject.toml"), *PYTEST_PLUGINS,
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]


def import_test_modules(submission: Submission, course: Course, topics: list[str], suite: str,
                        template: Template, keyword: str | None = None) -> None:
    """pytest's collection of these topics' tests in this process, before it forks its test
    sessions: each session then finds the test modules imported (assertion rewriting and all,
    as a batch's next student finds them), instead of every session importing them on its own
    while the worker template is still starting. The selected tests' grader-side data
    (`prefetch` marks: MNIST as the grader reads it, the reference's training curves on it)
    is computed here too, once for all sessions, while the template is still importing what
    its workers need."""
    grading = Grading(submission, course, template, threads=course.threads)
    try:
        pytest.main([*_pytest_args(topics, suite), *QUIET, "--collect-only",
                     *(["-k", keyword] if keyword else [])], plugins=[grading])
    finally:
        grading.close()
    for fetch in grading.prefetch:
        with contextlib.suppress(Exception):  # a speed-up only: the test meets the error
            fetch()


def topic_shares(topics: list[str], suite: str, jobs: int) -> list[list[str]]:
    """The topics split into at most `jobs` shares of about equal cost (the reference's
    measured test time, `grader.budgets`; the number of tests where never measured), each
    in course order."""
    costs = {t: topic_cost(test_files([t], suite)) for t in topics}
    shares: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(topics))))]
    for t in sorted(topics, key=lambda t: -costs[t]):  # the costliest first, to the lightest
        min(shares, key=lambda share: sum(costs[x] for x in share)).append(t)
    return [sorted(share, key=topics.index) for share in shares if share]


def freeze_long_lived() -> None:
    """Hide every object alive now (torch, pytest, the test modules) from the garbage
    collector, once per process: each full collection then skips them (0.2 s each, about one
    per test session) and a forked session's pages stay shared. Once, so that a batch's
    grading process does not freeze what one student's grading left behind."""
    if gc.get_freeze_count() == 0:
        gc.freeze()


def grade(path: str | Path | Submission, topics: list[str] | None = None, suite: str | None = None,
          out_dir: str | Path | None = None, in_process: bool = False,
          template: Template | None = None, course: Course | None = None,
          verbose: bool = False, keyword: str | None = None, plan: TestPlan | None = None,
          timeout_s: float | None = None, plugins: Sequence[object] = (), jobs: int = 1,
          timings: Timings | None = None) -> Report:
    """Grade one submission; write its reports to `out_dir` (if given) and return the report.
    `keyword`: only the tests whose names match this pytest -k expression. `plan` notes the
    tests collected. `timeout_s`: wall clock for all of it (main thread only); past it the
    run stops and the report says that grading was stopped. `plugins`: more pytest plugins
    for the run (a measurement's). `jobs`: test sessions at once, each on a share of the
    topics in a forked copy of this process, sandboxed and with a worker of its own (not with
    --in-process, -v or plugins, which live in this process). `timings`: filled with each
    test's seconds (`grader.budgets`). A failure of the grader itself (`grading.grader_errors`)
    raises GraderError: no report, rather than one that blames the student."""
    course = course or load_course()
    topics = topics or course.names
    suite = suite or default_suite()
    submission = path if isinstance(path, Submission) else load_submission(path)
    torch.set_num_threads(course.threads)  # before any fork (grader.forked)
    own_template = Template(course.threads) if template is None and not in_process else None
    template = template or own_template
    # Forked sessions only on one thread: OpenMP is not fork-safe, and a copy forked after its
    # parent ran a parallel operation (importing the test modules may, and so does any session
    # this process ran before) hangs on its first (`grader.forked`).
    parallel = template is not None and not verbose and not plugins and course.threads == 1
    shares = topic_shares(topics, suite, jobs if parallel else 1)
    if template is not None and len(shares) > 1:  # once here, not in each forked session
        import_test_modules(submission, course, topics, suite, template, keyword)
    freeze_long_lived()
    out = str(Path(out_dir).resolve()) if out_dir else None
    plan = plan or TestPlan()
    children: list[Forked] = []
    report: Report | None = None
    try:
        with Watchdog(timeout_s) as watchdog:
            for share in shares[1:]:
                children.append(Forked(functools.partial(
                    _forked_session, submission, course, share, suite, template, out, keyword)))
            parts = [run_session(submission, course, shares[0], suite, template, in_process,
                                 out, verbose, keyword, plan, plugins)]
            if not watchdog.fired:
                parts += [child.result() for child in children]
                report = _report(parts, course, topics, submission, timings)
        if report is None:  # the watchdog stopped it, which it does only given a budget
            assert timeout_s is not None
            for child in children:
                child.drain()
                for records, not_counted in child.messages:
                    plan.records += records
                    plan.not_counted += not_counted
            report = stopped_report(course, topics, submission.name, timeout_s,
                                    plan.records, plan.not_counted)
    finally:
        for child in children:
            child.stop()
        if own_template is not None:
            own_template.close()
    if out_dir is not None:
        write_reports(report, Path(out_dir))
    return report


def _forked_session(submission: Submission, course: Course, topics: list[str], suite: str,
                    template: Template | None, out_dir: str | None, keyword: str | None,
                    send: Callable[[object], None]) -> Part:
    """`run_session` in a forked copy (`grader.forked`): it tells the parent the tests it
    collected at once, which the parent needs if its budget runs out."""
    plan = TestPlan(lambda p: send((p.records, p.not_counted)))
    return run_session(submission, course, topics, suite, template, False, out_dir, False,
                       keyword, plan)


def _report(parts: list[Part], course: Course, topics: list[str], submission: Submission,
            timings: Timings | None) -> Report:
    """The report of a run whose sessions all completed; RuntimeError or GraderError when one
    did not, or when the grader itself failed on a test."""
    problems = [p.problems for p in parts if p.problems]
    if problems:
        raise RuntimeError("\n".join(problems))
    grader_errors = [e for p in parts for e in p.grader_errors]
    if grader_errors:
        raise GraderError(
            f"the grader itself failed on {len(grader_errors)} test(s); no score was given, "
            "since it would count a grader bug as the student's lost points. Report this to "
            "the course's developers:\n" + "\n".join(grader_errors))
    if timings is not None:
        for p in parts:
            timings.update(p.timings)
    isolation = next((p.isolation for p in parts if p.isolation), [])
    return build_report([r for p in parts for r in p.records], course, topics, submission,
                        isolation, [f for p in parts for f in p.flags],
                        [n for p in parts for n in p.not_counted])


def grading_budget(course: Course, student_timeout: float | None = None) -> float:
    """Seconds of wall clock grading one student may take in all (course.toml's
    `grading_timeout_s` unless given)."""
    return student_timeout or float(course.limits["grading_timeout_s"])

"""The pytest plugin that grades: the `student` fixture, the `points` and `gpu` markers, the
hypothesis profile used under grading, and one record per test with its outcome.

Loaded by `tests/conftest.py`, so `pytest tests/public --submission exercises` works too; the
grader CLI passes a `Grading` object that carries a shared worker template and the results.

A training test attaches its curves to its report entry with `record_curve` (the student's
beside the reference's, computed in the grader): numbers only, drawn when report.html is
written, never while tests run.

A test that ends in a `GraderError` (`grader.failures`: the grader failed, not the student) is
not scored: it gets no record, so the report is never built as if the student lost its
points, and `Grading.grader_errors` lists it ("<test id>: <message>") for `grader.grade` to
refuse the run. Only the grader's own process raises one, on its own data or on a failure it
reproduced (see `grader.handle`), so a submission cannot cause one on purpose.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from grader.budgets import Timings, budget_of, record, reference_time
from grader.checks import RecognisedMistake
from grader.course import KIT_ROOT, Course, GpuTests, load_course
from grader.failures import GraderError, StudentCrashed, StudentFailure, StudentTimedOut
from grader.handle import Session, Student, hidden_paths, reference_module
from grader.notebooks import group_of
from grader.report.formats import topic_functions
from grader.report.schema import (
    Curve,
    CurveSeries,
    Flag,
    GradedTestRecord,
    NotCounted,
    Outcome,
    ServedRecord,
    Visibility,
)
from grader.sandbox.client import Template
from grader.scan.source import SourceTooLarge, contract_callees
from grader.submission import Submission, load_submission

settings.register_profile(
    "grading", derandomize=True, deadline=None, database=None, print_blob=False,
    max_examples=6, suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate))  # no shrinking: the first failure is reported
settings.register_profile(
    "thorough", derandomize=False, deadline=None, max_examples=300,
    suppress_health_check=list(HealthCheck))

MAX_MESSAGE = 1500
MAX_CURVE_POINTS = 500  # per series: an epoch or a step each
MAX_CURVE_SERIES = 4
_running: Grading | None = None  # the grading run whose test this process is running


class Grading:
    """One submission's grading run: its session and the record of every test."""

    def __init__(self, submission: str | Path | Submission, course: Course | None = None,
                 template: Template | None = None, in_process: bool = False,
                 out_dir: str | None = None, threads: int = 1):
        self.course = course or load_course()
        self.submission = submission if isinstance(submission, Submission) else \
            load_submission(submission)
        self.own_template = Template(threads) if template is None and not in_process else None
        self.template = template or self.own_template  # None: student code runs in-process
        hidden = hidden_paths(out_dir, [str(self.submission.path)])
        self.session = Session(self.submission, self.course, None if in_process else
                               self.template, hidden, threads)
        self.records: list[GradedTestRecord] = []
        self.not_counted: list[NotCounted] = []  # skipped tests (a GPU test without a GPU)
        self.collection_errors: list[str] = []
        self.grader_errors: list[str] = []  # "<test id>: <message>" of tests the grader failed
        self.timings: Timings = {}  # each test's seconds, as grader.budgets keeps them
        self.curve: Curve | None = None  # what the running test recorded (`record_curve`)
        # test id -> the callees it passed with, and its first failure: (excinfo, hits, output)
        self.served: dict[str, tuple[list[str], pytest.ExceptionInfo, list[Flag], str]] = {}
        self.unserved: dict[str, list[str]] = {}  # test id -> the callees it could not be served
        self.prefetch: list[Callable[[], object]] = []  # the selected tests' `prefetch` marks

    def close(self) -> None:
        global _running
        if _running is self:
            _running = None
        self.session.close()
        if self.own_template is not None:
            self.own_template.close()

    # -- pytest hooks ------------------------------------------------------------------------

    @pytest.fixture
    def student(self, request) -> Student:
        """The submission's functions for the topic of this test module (test_<topic>.py)."""
        global _running
        _running, self.curve = self, None
        topic = self.course.topic(topic_of(request.node))
        node = request.node
        reference_s = reference_time(node.path, getattr(node, "originalname", node.name))
        self.session.begin_test(node.nodeid, budget_of(self.course, reference_s))
        return Student(self.session, topic)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        """A test of a function that calls the contract's other functions, failed: once more
        with the grader's values of those (`Session.substitute`). Passing then, the function
        is right and its callee is what is wrong: the test counts, and says so."""
        try:
            return (yield)
        except Exception as failure:
            if not self._passes_with_right_callees(item, failure):
                raise
            return None

    def _passes_with_right_callees(self, item, failure: BaseException) -> bool:
        """Only functions are served (a class's objects would carry the reference's code into
        the worker), and only where this kit has the reference: the student kit's tests keep
        the callees for `settle_served` to name."""
        e = _leaf(failure)
        if isinstance(e, StudentTimedOut | StudentCrashed) or not isinstance(
                e, AssertionError | StudentFailure) or grader_error_in(failure):
            return False
        callees = self._callees(item)
        if not (KIT_ROOT / "solutions" / f"{topic_of(item)}.py").is_file():
            self.unserved[item.nodeid] = callees  # the student kit: said, never served
            return False
        callees = [c for c in callees if inspect.isfunction(
            getattr(reference_module(topic_of(item)), c, None))]
        if not callees:
            return False
        session = self.session
        first = (session.test_hits, session._seen_hits, session.test_output)
        node = item
        session.begin_test(node.nodeid, budget_of(self.course, reference_time(
            node.path, getattr(node, "originalname", node.name))))
        session.substitute = tuple(callees)
        session.close()  # a fresh worker: nothing the first run left in the module's state
        try:
            item.runtest()
        except Exception:
            session.test_hits, session._seen_hits, session.test_output = first
            return False
        finally:
            session.substitute = ()
        self.served[item.nodeid] = (callees, pytest.ExceptionInfo.from_exception(failure),
                                    *first[::2])
        return True

    def _callees(self, item) -> list[str]:
        """The contract's functions the test's function reaches (which of them can be served
        is `_passes_with_right_callees`'s to decide)."""
        topic = topic_of(item)
        source = self.submission.source(topic)
        if not source:
            return []
        contract = topic_functions(topic)
        function = group_of(item.name, contract)
        try:
            return contract_callees(source, function, contract) if function else []
        except SourceTooLarge:
            return []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            failure = grader_error_of(call.excinfo)
            if failure is not None:  # the grader's failure: recorded, never scored
                self.grader_errors.append(f"{item.nodeid}: {failure}"[:MAX_MESSAGE])
            elif not report.skipped:
                self.records.append(self._record(item, call, report))
                record(self.timings, item.path, getattr(item, "originalname", item.name),
                       self.session.test_used_s, call.duration)
            else:
                self.not_counted.append(not_counted_entry(item, _skip_reason(report)))
        if call.when == "call":
            self.curve = None  # recorded by this test, kept only in its record
        return report

    def pytest_collection_finish(self, session) -> None:
        """The grader-side data the selected tests read (their `prefetch` marks), for
        `grader.grade.import_test_modules` to compute once."""
        for item in session.items:
            for mark in item.iter_markers("prefetch"):
                self.prefetch += [fn for fn in mark.args if fn not in self.prefetch]

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    def _record(self, item, call, report) -> GradedTestRecord:
        record = self._record_of(item, call.excinfo, self.session.test_hits,
                                 self.session.test_output, call.duration)
        if self.curve is not None:
            record["curve"], self.curve = self.curve, None
        if item.nodeid in self.unserved:  # named if one of them is wrong (`settle_served`)
            cast(ServedRecord, record)["calls"] = self.unserved.pop(item.nodeid)
        if item.nodeid in self.served:  # kept only if a callee is wrong (`settle_served`)
            served, excinfo, hits, output = self.served.pop(item.nodeid)
            record["served"] = served
            record["message"] = served_message(record["name"], served)
            cast(ServedRecord, record)["unserved"] = self._record_of(item, excinfo, hits,
                                                                     output, call.duration)
        return record

    def _record_of(self, item, excinfo, hits: list[Flag], output: str,
                   duration: float) -> GradedTestRecord:
        """The test's record from how it ended (`excinfo`: None when it passed)."""
        outcome, message = outcome_of(excinfo, hits)
        points = points_of(item)
        record: GradedTestRecord = {
            "topic": topic_of(item), "name": item.name,
            "visibility": visibility_of(item),
            "score": points if outcome == "passed" else 0.0, "max_score": points,
            "outcome": outcome, "message": message[:MAX_MESSAGE],
            "mistake": mistake_of(excinfo, outcome), "hint": hint_of(item),
            "duration_s": round(duration, 4),
        }
        if outcome != "passed" and output:
            record["output"] = printed(output, record["visibility"])
        return record


def printed(text: str, visibility: str) -> str:
    """What a failed test's report entry says the student's code printed: the text (capped by
    the session) for a public test; for a hidden test only how much, since a print of the
    arguments would show a hidden test's inputs."""
    if visibility == "public":
        return text
    lines = text.count("\n") + (not text.endswith("\n"))
    return (f"(your code printed {lines} line{'s' if lines != 1 else ''} here; a hidden "
            "test's inputs are not shown: print inside a public test or your own example)")


def record_curve(title: str, x_label: str, x: Sequence[float],
                 series: Sequence[tuple[str, Sequence[object], Sequence[object]]]) -> None:
    """Attach curves to the running test's report entry: `series` holds (name, the student's
    values, the reference's values) per quantity, the first the one a class page compares.
    Values that are not finite numbers become None; a series is cut to MAX_CURVE_POINTS. Does
    nothing outside a grading run (a test run by hand)."""
    if _running is None:
        return
    kept: list[CurveSeries] = [{"name": name, "yours": _points(yours), "reference":
                                _points(reference)} for name, yours, reference in
                               series[:MAX_CURVE_SERIES]]
    _running.curve = {"title": title, "x_label": x_label,
                      "x": [v for v in _points(x) if v is not None], "series": kept}


def _points(values: Sequence[object]) -> list[float | None]:
    """Numbers as a curve keeps them: finite floats, None for anything else."""
    out: list[float | None] = []
    for v in list(values)[:MAX_CURVE_POINTS]:
        number = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        out.append(number if number is not None and math.isfinite(number) else None)
    return out


def topic_of(item) -> str:
    return Path(str(item.path)).stem.removeprefix("test_")


def visibility_of(item) -> Visibility:
    """`hidden` for a test of tests/hidden/, else `public`."""
    return "hidden" if "hidden" in Path(str(item.path)).parts else "public"


def not_counted_entry(item, reason: str) -> NotCounted:
    """The report's `not_counted` entry of a test this machine skips."""
    return {"topic": topic_of(item), "name": item.name, "points": points_of(item),
            "reason": reason}


def points_of(item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker else 0.0


def hint_of(item) -> str:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _leaf(e: BaseException) -> BaseException:
    """The first real error inside hypothesis' exception groups."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


def served_message(test: str, served: list[str]) -> str:
    """What a test that passed with the grader's values of `served` says."""
    names = ", ".join(f"`{n}`" for n in served)
    return (f"passed with a right {names} in place of yours: the function this test checks is "
            f"right, and failed only through {names}, whose own tests say what to fix")


def grader_error_of(excinfo) -> GraderError | None:
    """The GraderError a test ended in, if it did (see `grader_error_in`)."""
    return None if excinfo is None else grader_error_in(excinfo.value)


def grader_error_in(error: BaseException) -> GraderError | None:
    """The GraderError in `error`: anywhere in hypothesis' groups too, since one example's
    grader failure makes the test's verdict unsound whatever the others did."""
    todo = [error]
    while todo:
        e = todo.pop(0)
        if isinstance(e, GraderError):
            return e
        if isinstance(e, BaseExceptionGroup):
            todo += list(e.exceptions)
    return None


def outcome_of(excinfo, hits: list[Flag]) -> tuple[Outcome, str]:
    """(outcome, message) for a finished test."""
    if hits:
        calls = sorted({f"{h['call']} (in {h['function']})" for h in hits})
        return "forbidden", ("your code called " + ", ".join(calls) + ": not allowed in this "
                             "exercise, so this test earns nothing. Use the basic operations "
                             "of the section instead.")
    if excinfo is None:
        return "passed", ""
    e = _leaf(excinfo.value)
    if isinstance(e, StudentFailure):
        return e.outcome, str(e)
    if isinstance(e, AssertionError):
        return "failed", _assertion_text(e)
    if isinstance(e, pytest.skip.Exception):
        return "passed", ""
    return "error", f"the test could not check your result: {type(e).__name__}: {e}"


def mistake_of(excinfo, outcome: Outcome) -> str | None:
    """The recognised mistake a failed test ended in (`grader.checks.RecognisedMistake`), in
    its own words, or None: the report groups the tests one mistake cost."""
    if outcome != "failed" or excinfo is None:
        return None
    e = _leaf(excinfo.value)
    return e.mistake[:MAX_MESSAGE] if isinstance(e, RecognisedMistake) else None


def _assertion_text(e: AssertionError) -> str:
    lines = str(e).splitlines()
    kept = []
    for line in lines:
        if line.startswith("assert ") or line.startswith("AssertionError"):
            break
        kept.append(line)
    return "\n".join(kept).strip() or "the result is wrong"


# -- module-level hooks (active whenever the plugin is loaded) -------------------------------


def pytest_addoption(parser) -> None:
    group = parser.getgroup("torchdrill")
    group.addoption("--submission", default=None,
                    help="folder of the student's <topic>.py files (default: exercises/)")
    group.addoption("--in-process", action="store_true",
                    help="run student code in this process (for debugging; no sandbox)")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "points(n): points this test is worth")
    config.addinivalue_line("markers", "gpu: needs a CUDA device; course.toml [gpu] tests says "
                            "whether it counts (skipped where no CUDA exists)")
    config.addinivalue_line("markers", "prefetch(*functions): cached, argument-free functions "
                            "whose grader-side data or oracle the test reads (one function: "
                            "pytest.mark.prefetch.with_args(fn)); a grade that forks its test "
                            "sessions calls them once before it forks, while the worker "
                            "template is still loading")
    settings.load_profile("grading")
    if not hasattr(config.option, "tbstyle"):  # pytest's terminal is off: the report shows
        config.option.tbstyle = "native"  # messages, and long tracebacks cost 0.1 s a failure
    if any(isinstance(p, Grading) for p in config.pluginmanager.get_plugins()):
        return
    if not _collects_course_tests(config):
        return
    submission = config.getoption("--submission") or str(KIT_ROOT / "exercises")
    grading = Grading(submission, in_process=config.getoption("--in-process"))
    config.pluginmanager.register(grading, "torchdrill-grading")
    config.add_cleanup(grading.close)


def _collects_course_tests(config) -> bool:
    args = [str(a) for a in config.args]
    return any("public" in a or "hidden" in a for a in args)


# Why a GPU test is skipped on a machine without CUDA, by course.toml's [gpu] tests.
GPU_SKIPPED: dict[GpuTests, str] = {
    "where-cuda": "needs a CUDA device",
    "counted": "needs a CUDA device; THIS COURSE COUNTS ITS GPU TESTS ([gpu] tests = "
               "\"counted\" in course.toml): the grade of record comes from a machine with "
               "CUDA, where they count",
}


def gpu_tests_of(config) -> GpuTests:
    """The run's GPU setting: its Grading's course, else course.toml (as `Grading` loads it)."""
    for p in config.pluginmanager.get_plugins():
        if isinstance(p, Grading):
            return p.course.gpu_tests
    return load_course().gpu_tests


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """GPU tests of a course that omits them are deselected: never run, in no maximum, not
    listed as not counted (they are not part of the course)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and gpu_tests_of(config) == "omitted":
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        setting = gpu_tests_of(item.config)
        pytest.skip(GPU_SKIPPED.get(setting, GPU_SKIPPED["where-cuda"]))

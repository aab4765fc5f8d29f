"""A student's grading that ran past its wall-clock budget: the alarm that stops it in this
process (`grade`), the tests the run had collected, and the report of a stopped run, in which
every test is lost with outcome `timeout`.

A submission can make the grader's own work slow (floods of data to check, a huge module to scan) as
well as its calls; the per-call limits bound only the calls. `grader batch` kills the grader process
of a student past the budget (`grader.instructor.pool`); `grader grade` stops its own test session
with `Watchdog`. Either way the student gets a report saying grading was stopped.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

import pytest

from grader import plugin
from grader.course import Course
from grader.report.schema import GradedTestRecord, NotCounted, Outcome, Report
from grader.report.scoring import build_report
from grader.submission import Submission

if TYPE_CHECKING:  # pytest names its Exit only as `pytest.exit.Exception`, not a static type
    from _pytest.outcomes import Exit
else:
    Exit = pytest.exit.Exception

REFIRE_S = 10.0  # the alarm rings again if something swallowed its first stop


class GradingStopped(Exit):
    """Raised by the alarm. A pytest Exit, so pytest ends the session wherever it is (tests,
    fixtures and hypothesis let it through)."""


class Watchdog:
    """Stops this process's grading `seconds` of wall clock after entering (SIGALRM, so only
    in the main thread); None never stops. Leaving the block disarms it and swallows its stop;
    `fired` says whether it rang."""

    def __init__(self, seconds: float | None):
        self.seconds, self.fired = seconds, False

    def __enter__(self) -> Watchdog:
        if self.seconds:
            self._previous = signal.signal(signal.SIGALRM, self._ring)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, REFIRE_S)
        return self

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        self.fired = True
        raise GradingStopped(f"grading took longer than {self.seconds:g} s",
                             returncode=pytest.ExitCode.INTERRUPTED)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
        return kind is not None and issubclass(kind, GradingStopped)


class TestPlan:
    """A pytest plugin that notes, once collection is done, the tests the run will count, as
    records of lost tests, and the tests this machine skips (as the report's `not_counted`);
    `on_collected` hears of it at once (a batch's grader process tells its coordinator)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, on_collected: Callable[[TestPlan], None] | None = None):
        self.records: list[GradedTestRecord] = []
        self.not_counted: list[NotCounted] = []
        self.on_collected = on_collected

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            try:
                plugin.pytest_runtest_setup(item)  # the plugin's own rule for skipping
            except pytest.skip.Exception as e:
                self.not_counted.append(plugin.not_counted_entry(item, e.msg or ""))
                continue
            self.records.append({
                "topic": plugin.topic_of(item), "name": item.name,
                "visibility": plugin.visibility_of(item),
                "score": 0.0, "max_score": plugin.points_of(item), "outcome": "timeout",
                "message": "", "mistake": None, "hint": plugin.hint_of(item),
                "duration_s": 0.0})
        if self.on_collected:
            self.on_collected(self)


def stopped_message(seconds: float) -> str:
    return (f"grading this submission took longer than {seconds:g} s in all and was stopped, "
            "so none of its tests earned points: something in it made grading far too slow "
            "(an endless flood of output or calls, a huge module). Ask your instructor.")


def stopped_report(course: Course, topics: list[str], student: str, seconds: float,
                   planned: list[GradedTestRecord], not_counted: list[NotCounted],
                   message: str | None = None, outcome: Outcome = "timeout") -> Report:
    """The report of a student whose grading was stopped after `seconds` (or for another
    reason, which `message` gives): every planned test lost with `outcome`, so the maximum is
    the course's. Stopped before its tests were collected, each topic stands as one lost
    test worth the topic's points. The submission's source is not scanned again (that may be
    what was slow)."""
    message = message or stopped_message(seconds)
    records: list[GradedTestRecord] = [
        {**r, "outcome": outcome, "message": message} for r in planned] or [
        {"topic": t, "name": "grading", "visibility": "public", "score": 0.0,
         "max_score": course.topic(t).points, "outcome": outcome, "message": message,
         "mistake": None, "hint": "", "duration_s": 0.0} for t in topics]
    return build_report(records, course, topics, Submission(student, Path(student)), [], [],
                        not_counted)

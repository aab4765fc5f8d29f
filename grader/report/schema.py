"""The report's schema as typed records, and the one table of test outcomes.

A report is JSON: `grader.report.scoring` builds it from the plugin's records,
`grader.report.formats` writes it (report.json, and Gradescope's results.json from it), and
`grader.nbcheck`, `grader.instructor.class_report` and a batch's resume read it back. The
records are TypedDicts, so a report stays a plain dict at run time (written and read by `json`
as it is, indexed by key) while mypy checks every module that builds or reads one against the
definitions here. DEVELOPERS.md ("The report") describes the same fields in words, and
tests/kit/test_schema.py checks real reports against these records.

`OUTCOMES` is the only place that says what each outcome a test can end with is called and
how it is shown: the label of every report format, the terminal table's style, the few words
a notebook's cell of checks prints, report.html's colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

# -- report.json -----------------------------------------------------------------------------

Outcome = Literal["passed", "failed", "error", "timeout", "forbidden", "not_implemented"]
Visibility = Literal["public", "hidden"]  # a test of tests/public/ or of tests/hidden/
How = Literal["runtime", "source"]  # a forbidden call made while grading, or written in source
# What the submission held for a topic: an attempt, or one of the empty and broken kinds a
# class page keeps apart from its pass rates (no file of it, or nothing of the submission
# readable; the stub itself; a file of it the grader could not read; one that does not parse;
# one refused by the source allow-list).
TopicState = Literal["attempted", "missing", "stub", "unreadable", "syntax_error", "refused"]


class CurveSeries(TypedDict):
    """One quantity of a curve, point by point: the student's and the reference's on the same
    data (None where a value was not a finite number)."""

    name: str  # "test accuracy"
    yours: list[float | None]
    reference: list[float | None]


class Curve(TypedDict):
    """A training test's curves, recorded by the test (`grader.plugin.record_curve`) and
    drawn only in report.html; the first series is the one a class page compares."""

    title: str  # what was trained on what data
    x_label: str  # "epoch", "step"
    x: list[float]
    series: list[CurveSeries]


class _GradedTest(TypedDict):
    """One test of a topic: its points, how it ended and what the student is told."""

    name: str
    visibility: Visibility
    score: float
    max_score: float
    outcome: Outcome
    message: str  # what went wrong ("" when it passed)
    mistake: str | None  # the recognised mistake the message names, in its own words, or None
    hint: str  # what the test checks: the first paragraph of its docstring
    duration_s: float


class GradedTest(_GradedTest, total=False):
    """A test as the report lists it: a training test may add its curves, and a test that did
    not pass what the student's code printed (keys that are absent, not null, elsewhere)."""

    curve: Curve
    output: str  # a public test's printed text, capped; a hidden test's, only how much
    served: list[str]  # contract functions the grader served for it to pass (`plugin`)


class GradedTestRecord(GradedTest):
    """What the plugin records per test (and `grader.stopped` plans): a test with its topic,
    which `scoring.build_report` takes out when it groups the tests by topic."""

    topic: str


class ServedRecord(GradedTestRecord, total=False):
    """A record that passed only with the grader's values of its callees (`served`) keeps how
    it first failed: `scoring.settle_served` puts that back when no callee lost a test. Where
    no reference can serve them (the student kit), a failed test keeps the callees it `calls`,
    for `settle_served` to name a wrong one."""

    unserved: GradedTestRecord
    calls: list[str]  # a failed test's callees where no reference serves them (student kit)


class TopicEntry(TypedDict):
    """One topic of the report, in course order; only topics with tests that ran."""

    name: str
    title: str
    score: float
    max_score: float
    state: TopicState
    tests: list[GradedTest]


class Flag(TypedDict):
    """A forbidden call: made while grading (`runtime`, the test that reached it is lost) or
    only written in the function's source (`source`, a warning)."""

    topic: str
    function: str
    call: str
    how: How


class NotCounted(TypedDict):
    """A test this machine skipped (a GPU test without CUDA): left out of `max_score`."""

    topic: str
    name: str
    points: float
    reason: str


class NotGraded(TypedDict):
    """A file of the submission that did not reach the grader; `reason` names the file."""

    file: str
    reason: str


class Environment(TypedDict):
    """Where a report was graded, so a student's own report and the instructor's can be
    compared line by line (`grader.report.environment`)."""

    course_hash: str  # course.toml, the grader, torchdrill and the public tests
    hidden_tests_hash: str | None  # tests/hidden, where this kit has them (None: a student's)
    python: str
    torch: str
    device: str  # "cpu", or the CUDA devices
    cuda: str  # CUDA's version and devices, or why it is not available
    tf32: str  # whether float32 matmuls and convolutions may round to TF32
    threads: int  # torch threads of the grader and of each worker
    seeds: str  # how every random draw is fixed
    data: str  # the MNIST the training tests used: real files (where) or generated digits


class LatePenalty(TypedDict):
    """Points a topic lost for being handed in after its deadline (`grader batch` with
    course.toml's [late] and [deadlines]); the tests' scores stay as graded."""

    topic: str
    submitted_at: str  # ISO 8601 with its UTC offset
    deadline: str  # the deadline that applied, the student's extension included
    extension_hours: float
    hours_late: float
    penalty: float  # the share of the topic's score taken off, 0 to the course's cap
    points: float  # the points taken off
    rule: str  # the course's rule, as the student reads it ("10% per day or part of one, ...")


class Report(TypedDict):
    """report.json: one submission's grade."""

    submission: str
    kit_version: str
    graded_at: str  # ISO 8601, UTC, to the second
    isolation: list[str]  # the sandbox steps the worker achieved
    score: float
    max_score: float
    topics: list[TopicEntry]
    flags: list[Flag]
    not_counted: list[NotCounted]
    files_not_graded: list[NotGraded]
    environment: Environment
    late: list[LatePenalty]  # `score` is before these; the final score is after them


# -- Gradescope's results.json ---------------------------------------------------------------

GradescopeStatus = Literal["passed", "failed"]
GradescopeVisibility = Literal["hidden", "after_due_date", "after_published", "visible"]


class GradescopeTest(TypedDict):
    """One test of Gradescope's autograder specification (results.json's `tests`)."""

    name: str
    number: str  # "2.5": the topic's place in the course, the test's in the topic
    score: float
    max_score: float
    status: GradescopeStatus
    output: str
    visibility: GradescopeVisibility
    tags: list[str]  # the topic and the test's suite


class GradescopeResults(TypedDict):
    score: float  # after any late penalty
    execution_time: int
    output: str
    visibility: GradescopeVisibility  # of the whole result
    stdout_visibility: GradescopeVisibility  # of run_autograder's own output
    tests: list[GradescopeTest]


# -- outcomes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeInfo:
    """How the report shows one outcome."""

    label: str  # in report.md, report.html, results.json and the terminal table
    style: str  # the label's rich style in the terminal table
    check_text: str  # the few words a notebook's cell of checks prints for a lost test
    waiting: bool = False  # the test waits for a function not written yet: listed once
    # per function as a to-do, apart from the tests to fix, and never among the most failed
    html_border: str | None = None  # report.html's border for a lost test (None: red)


OUTCOMES: dict[Outcome, OutcomeInfo] = {
    "passed": OutcomeInfo("passed", "green", "passed"),
    "failed": OutcomeInfo("wrong result", "red", "wrong result"),
    "error": OutcomeInfo("raised an error", "red", "error"),
    "timeout": OutcomeInfo("ran out of time", "magenta", "too slow", html_border="#7b1fa2"),
    "forbidden": OutcomeInfo("used a forbidden call", "bold red", "forbidden call",
                             html_border="#d35400"),
    "not_implemented": OutcomeInfo("not written yet", "cyan", "not written yet", waiting=True),
}


def waiting(test: GradedTest) -> bool:
    """Whether the test waits for a function the student has not written yet."""
    return OUTCOMES[test["outcome"]].waiting

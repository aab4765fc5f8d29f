"""From per-test records to the report (the schema in DEVELOPERS.md).

Each topic says what the submission held for it (`state`): an attempt, or an empty or broken
one (no file, the stub itself, a file the grader could not read, one that does not parse, one
the source allow-list refused), which a class page keeps apart from its pass rates. The report
records where it was graded (`grader.report.environment`); late penalties are a batch's to add
(`late`, empty here).

Every text in the report passes through `grader.text.clean_text` here, where the report is
built, so the table, Markdown, HTML and Gradescope's json all show a submission's text (its
messages, file names, printed output) without the control characters and escape codes it
may carry.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Sequence
from typing import Any, cast

from grader.course import Course
from grader.notebooks import group_of
from grader.report.environment import environment
from grader.report.formats import topic_functions
from grader.report.schema import (
    Flag,
    GradedTest,
    GradedTestRecord,
    NotCounted,
    Report,
    ServedRecord,
    TopicEntry,
    TopicState,
    waiting,
)
from grader.scan import allowlist
from grader.scan.source import SourceTooLarge, forbidden_in_source, function_names, parse
from grader.submission import Submission
from grader.text import clean_text


def kit_version() -> str:
    try:
        return importlib.metadata.version("torchdrill")
    except importlib.metadata.PackageNotFoundError:
        from grader import __version__

        return __version__


MAX_SOURCE_FLAGS = 200  # a module of thousands of functions does not make a report of them


def source_flags(submission: Submission, course: Course, topics: list[str]) -> list[Flag]:
    """Forbidden calls named in the source of each of the contract's functions or the helpers
    only it reaches, never those another contract function writes (reported; the runtime
    check scores), at most MAX_SOURCE_FLAGS."""
    flags: list[Flag] = []
    for name in topics:
        topic, source = course.topic(name), submission.source(name)
        if not source:
            continue
        contract = topic_functions(name)
        try:  # the contract's functions, however the submission binds them
            functions = [f for f in function_names(source) if f in contract]
        except SourceTooLarge:  # not scanned; `load_submission` refuses such a file anyway
            continue
        for function in functions:
            for call in forbidden_in_source(source, function,
                                            list(topic.forbidden_for(function)), contract):
                flags.append({"topic": name, "function": function, "call": call,
                              "how": "source"})
    return flags[:MAX_SOURCE_FLAGS]


def build_report(records: Sequence[GradedTestRecord], course: Course, topics: list[str],
                 submission: Submission, isolation: list[str],
                 runtime_flags: Sequence[Flag], not_counted: Sequence[NotCounted] = ()
                 ) -> Report:
    """The report for one submission: topics in course order, totals, flags, the files that
    were not graded; every text cleaned of control characters."""
    records = settle_served(records)
    report_topics: list[TopicEntry] = []
    for name in topics:
        tests = [_without_topic(r) for r in records if r["topic"] == name]
        if not tests:
            continue
        report_topics.append({
            "name": name, "title": course.topic(name).title,
            "score": round(sum(t["score"] for t in tests), 4),
            "max_score": round(sum(t["max_score"] for t in tests), 4),
            "state": topic_state(name, submission, course, tests,
                                 debugging="in-process" in isolation),
            "tests": tests,
        })
    report: Report = {
        "submission": submission.name,
        "kit_version": kit_version(),
        "graded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "isolation": isolation,
        "score": round(sum(t["score"] for t in report_topics), 4),
        "max_score": round(sum(t["max_score"] for t in report_topics), 4),
        "topics": report_topics,
        "flags": [*runtime_flags, *source_flags(submission, course, topics)],
        "not_counted": list(not_counted),
        "files_not_graded": submission.not_graded,
        "environment": environment(course),
        "late": [],
    }
    return cast(Report, _clean(report))  # the same keys and value types, texts cleaned


def settle_served(records: Sequence[GradedTestRecord]) -> list[GradedTestRecord]:
    """The records with every `served` pass settled: it counts where a callee it was served
    lost a test of its own here (the callee is what is wrong); where every callee passed, the
    function's own mistake shows only with the callees it calls, and the test's first failure
    (`unserved`) stands."""
    wrong = {(r["topic"], group_of(r["name"], topic_functions(r["topic"])))
             for r in records if r["score"] < r["max_score"] and "served" not in r}
    settled: list[GradedTestRecord] = []
    for record in records:
        calls = cast(ServedRecord, record).get("calls")
        if calls is not None:
            record = cast(GradedTestRecord, {k: v for k, v in record.items() if k != "calls"})
            callee = next((f for f in calls if (record["topic"], f) in wrong), None)
            if callee is not None:
                record["message"] += unserved_note(callee)
        first = cast(ServedRecord, record).get("unserved")
        if first is None:
            settled.append(record)
            continue
        kept = {k: v for k, v in record.items() if k != "unserved"}
        right = not any((record["topic"], f) in wrong for f in record.get("served", ()))
        settled.append(first if right else cast(GradedTestRecord, kept))
    return settled


def unserved_note(callee: str) -> str:
    """What a failed test adds where a contract function it calls is wrong and no reference
    can stand in for it (the student kit): the grade runs it with a right one."""
    return (f"\n(It calls `{callee}`, which fails tests of its own: fix `{callee}` first. "
            f"When your instructor grades, this test runs with a right `{callee}` in place of "
            "yours, so only a mistake of its own would cost it.)")


def topic_state(name: str, submission: Submission, course: Course, tests: list[GradedTest],
                debugging: bool = False) -> TopicState:
    """What the submission held for the topic: `attempted`, or which kind of empty or broken
    (`debugging`: `grade --in-process`, where the allow-list lets `breakpoint()` be)."""
    if name in submission.problems:  # the same problem for every topic: nothing was read
        whole = not submission.sources and len(set(submission.problems.values())) == 1 and \
            set(submission.problems) >= set(course.names)
        return "missing" if whole else "unreadable"
    source = submission.source(name)
    if source is None:  # no file; or a stopped run, which has no sources and lost every test
        return "missing" if tests and all(map(waiting, tests)) else "attempted"
    try:
        if parse(source) is None:
            return "syntax_error"
        if allowlist.costing(source, course.source, course.names, course.topic(name).allow,
                             debugging):
            return "refused"
    except SourceTooLarge:  # `load_submission` refuses such a file: a problem, above
        return "unreadable"
    return "stub" if tests and all(map(waiting, tests)) else "attempted"


def _without_topic(record: GradedTestRecord) -> GradedTest:
    """The test as the report lists it under its topic (the record less its `topic`)."""
    test: GradedTest = {"name": record["name"], "visibility": record["visibility"],
                        "score": record["score"], "max_score": record["max_score"],
                        "outcome": record["outcome"], "message": record["message"],
                        "mistake": record.get("mistake"), "hint": record["hint"],
                        "duration_s": record["duration_s"]}
    if "curve" in record:
        test["curve"] = record["curve"]
    if "output" in record:
        test["output"] = record["output"]
    if "served" in record:
        test["served"] = record["served"]
    return test


def _clean(value: Any) -> Any:
    """`value` with `clean_text` applied to every string in it, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value

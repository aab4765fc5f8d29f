"""From per-test records to the report (the schema in DEVELOPERS.md)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata

from grader.course import Course
from grader.source_scan import forbidden_in_source, function_names
from grader.submission import Submission


def kit_version() -> str:
    try:
        return importlib.metadata.version("torchdrill")
    except importlib.metadata.PackageNotFoundError:
        from grader import __version__

        return __version__


def source_flags(submission: Submission, course: Course, topics: list[str]) -> list[dict]:
    """Forbidden calls named in each function's source (reported; the runtime check scores)."""
    flags = []
    for name in topics:
        topic, source = course.topic(name), submission.source(name)
        if not source:
            continue
        for function in function_names(source):
            for call in forbidden_in_source(source, function, list(topic.forbidden_for(function))):
                flags.append({"topic": name, "function": function, "call": call,
                              "how": "source"})
    return flags


def build_report(records: list[dict], course: Course, topics: list[str],
                 submission: Submission, isolation: list[str],
                 runtime_flags: list[dict], not_counted: list[dict] = ()) -> dict:
    """The report for one submission: topics in course order, totals, flags."""
    report_topics = []
    for name in topics:
        tests = [{k: v for k, v in r.items() if k != "topic"} for r in records
                 if r["topic"] == name]
        if not tests:
            continue
        report_topics.append({
            "name": name, "title": course.topic(name).title,
            "score": round(sum(t["score"] for t in tests), 4),
            "max_score": round(sum(t["max_score"] for t in tests), 4),
            "tests": tests,
        })
    return {
        "submission": submission.name,
        "kit_version": kit_version(),
        "graded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "isolation": isolation,
        "score": round(sum(t["score"] for t in report_topics), 4),
        "max_score": round(sum(t["max_score"] for t in report_topics), 4),
        "topics": report_topics,
        "flags": runtime_flags + source_flags(submission, course, topics),
        "not_counted": list(not_counted),
    }

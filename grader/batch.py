"""Grading many submissions: every entry of a folder is one student (a folder of .py files),
graded in turn with one shared worker template, each report written as soon as it is done."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from grader.course import Course
from grader.reports import summary_line, write_reports
from grader.workers import Template


def entries(root: Path) -> list[Path]:
    """The students in `root`: its sub-folders, by name."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade_all(root: Path, out: Path, course: Course, topics: list[str] | None,
              suite: str | None, grade: Callable[..., dict]) -> list[dict]:
    """Grade each entry of `root` into `out/<entry>/`; return the reports in order."""
    template = Template()
    reports = []
    try:
        for entry in entries(root):
            report = grade(entry, topics, suite, None, template=template, course=course)
            write_reports(report, out / entry.name)
            print(f"{entry.name}: {summary_line(report)}", file=sys.stderr)
            reports.append(report)
    finally:
        template.close()
    return reports

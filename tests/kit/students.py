"""A Student handle on a submission folder, for kit tests that call student code directly
(as a course test does through its fixture), worker or in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.course import load_course
from grader.handle import Student
from grader.plugin import Grading
from tests.kit.permissive import permissive


@contextmanager
def student_of(folder: Path, topic: str, *, in_process: bool = False,
               call_timeout: float = 10, test: str = "t") -> Iterator[Student]:
    """`topic`'s functions in `folder`, each call limited to `call_timeout` s, inside a begun
    test; closed after, and the topic's module forgotten, so that in-process the next folder's
    module of the same name is not this one. The course allows every step outside the source
    allow-list: these tests attack the handle, the worker and the wire (test_allowlist.py
    attacks the allow-list)."""
    course = permissive(load_course()).with_call_timeout(call_timeout)
    grading = Grading(folder, course, in_process=in_process)
    try:
        grading.session.begin_test(test)
        yield Student(grading.session, course.topic(topic))
    finally:
        grading.close()
        sys.modules.pop(topic, None)

"""A course that allows every step outside the source allow-list, for kit tests that attack
another layer (the sandbox, the audit hook, the dispatcher guard, the grader's caps) with code
the source scan would otherwise stop before it runs (`grader.scan.allowlist`)."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from grader.course import Course, load_course
from tests.kit.variants import KIT_ROOT


def permissive_course_file(folder: Path) -> Path:
    """A copy of course.toml in `folder` whose every topic says `allow = ["*"]`."""
    text = (KIT_ROOT / "course.toml").read_text()
    text = re.sub(r'(\[\[topics\]\]\nname = "[^"]+"\n)', r'\1allow = ["*"]\n', text)
    path = folder / "permissive-course.toml"
    path.write_text(text)
    return path


def permissive_course(folder: Path) -> Course:
    return load_course(permissive_course_file(folder))


def permissive(course: Course) -> Course:
    """`course` with every topic allowing every step outside the source allow-list."""
    return replace(course, topics=tuple(replace(t, allow=("*",)) for t in course.topics))


def permissive_env(folder: Path) -> dict[str, str]:
    """The environment for a grader subprocess that grades against that course."""
    return {**os.environ, "TORCHDRILL_COURSE": str(permissive_course_file(folder))}

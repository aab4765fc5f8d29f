"""Deadlines and late penalties (grader/instructor/deadlines.py): times are explicit about their
zone (a time without a UTC offset is an error that says where it was and how to write it),
nbgrader's timestamp.txt is read in its own format, the rule counts each unit begun up to its
cap, and an extension moves the deadline. test_term.py grades a class with them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from grader.instructor.deadlines import (
    DeadlineError,
    Deadlines,
    LateRule,
    load_deadlines,
    nbgrader_time,
    nbgrader_times,
    parse_time,
    penalties,
    read_times,
)
from grader.instructor.roster import Student
from tests.kit.variants import KIT_ROOT

TOPICS = ["softmax", "mlp"]
RULE = "[late]\nper = \"day\"\npenalty = 0.1\ncap = 0.3\n"
UTC = dt.UTC


def course_file(tmp_path, text: str):
    path = tmp_path / "course.toml"
    path.write_text((KIT_ROOT / "course.toml").read_text() + text)
    return path


def test_a_time_without_an_offset_is_an_error_that_says_how(tmp_path):
    path = course_file(tmp_path, RULE + "[deadlines]\nsoftmax = \"2025-10-06T23:59:00\"\n")
    with pytest.raises(DeadlineError, match=r"\[deadlines\] softmax in .*no UTC offset.*"
                                            r"2025-10-06T23:59:00\+02:00"):
        load_deadlines(TOPICS, path)
    times = tmp_path / "times.csv"
    times.write_text("student,topic,submitted_at\nalice,softmax,2025-10-06 12:00\n")
    with pytest.raises(DeadlineError, match=r"times.csv, line 2: .*no UTC offset"):
        read_times(times, TOPICS)


def test_deadlines_need_a_rule_and_known_topics(tmp_path):
    with pytest.raises(DeadlineError, match="needs a \\[late\\] rule"):
        load_deadlines(TOPICS, course_file(tmp_path, "[deadlines]\nsoftmax = \"2025-10-06Z\"\n"))
    with pytest.raises(DeadlineError, match="topics the course does not have: sofmax"):
        load_deadlines(TOPICS, course_file(
            tmp_path, RULE + "[deadlines]\nsofmax = \"2025-10-06T00:00:00Z\"\n"))
    with pytest.raises(DeadlineError, match="per is"):
        load_deadlines(TOPICS, course_file(tmp_path, "[late]\nper = \"week\"\npenalty = 0.1\n"))


def test_the_batch_refuses_a_naive_deadline_before_grading(tmp_path):
    path = course_file(tmp_path, RULE + "[deadlines]\nsoftmax = \"2025-10-06 23:59\"\n")
    (tmp_path / "class").mkdir()
    run = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "class"),
                          "--out", str(tmp_path / "out")], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "TORCHDRILL_COURSE": str(path)})
    assert run.returncode == 2
    assert "no UTC offset" in run.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, expected", [
    ("2025-10-06 21:59:00.123456 UTC", dt.datetime(2025, 10, 6, 21, 59, 0, 123456, UTC)),
    ("2025-10-06 23:59:00.000000 +0200", dt.datetime(2025, 10, 6, 21, 59, tzinfo=UTC)),
    ("2025-10-06 23:59:00 Europe/Berlin", dt.datetime(2025, 10, 6, 21, 59, tzinfo=UTC)),
    ("2025-10-06T23:59:00+02:00", dt.datetime(2025, 10, 6, 21, 59, tzinfo=UTC)),
])
def test_nbgrader_timestamps_in_their_formats(text, expected):
    assert nbgrader_time(text, "timestamp.txt") == expected


@pytest.mark.parametrize("text", ["2025-10-06 23:59:00.000000 CEST", "2025-10-06 23:59:00"])
def test_an_nbgrader_timestamp_without_a_clear_zone_is_an_error(text):
    with pytest.raises(DeadlineError, match="timestamp.txt"):
        nbgrader_time(text, "timestamp.txt")


def test_timestamps_are_read_from_nbgrader_folders_without_following_links(tmp_path):
    (tmp_path / "alice" / "softmax").mkdir(parents=True)
    (tmp_path / "alice" / "softmax" / "timestamp.txt").write_text("2025-10-06 10:00:00 UTC")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "timestamp.txt").write_text("2020-01-01 00:00:00 UTC")
    (tmp_path / "alice" / "mlp").symlink_to(tmp_path / "elsewhere")
    assert nbgrader_times(tmp_path / "alice", TOPICS) == {
        "softmax": dt.datetime(2025, 10, 6, 10, tzinfo=UTC)}


def report(score: float = 10.0, state: str = "attempted") -> dict:
    return {"topics": [{"name": "softmax", "score": score, "max_score": 10.0, "state": state,
                        "tests": []}], "late": []}


DUE = Deadlines(LateRule("day", 0.1, 0.3), {"softmax": dt.datetime(2025, 10, 6, 22, tzinfo=UTC)})


@pytest.mark.parametrize("hours_late, share", [(0, 0.0), (0.01, 0.1), (24, 0.1), (24.5, 0.2),
                                               (1000, 0.3)])
def test_each_day_begun_costs_its_share_up_to_the_cap(hours_late, share):
    when = DUE.due["softmax"] + dt.timedelta(hours=hours_late)
    found, _ = penalties(report(), {"softmax": when}, DUE, None)
    assert sum(p["penalty"] for p in found) == pytest.approx(share)
    assert sum(p["points"] for p in found) == pytest.approx(10.0 * share)


def test_an_extension_moves_the_deadline():
    when = DUE.due["softmax"] + dt.timedelta(hours=30)
    student = Student("alice", extensions={"": 24.0, "softmax": 48.0})
    assert penalties(report(), {"softmax": when}, DUE, student)[0] == []
    student = Student("alice", extensions={"": 24.0})
    (late,), _ = penalties(report(), {"softmax": when}, DUE, student)
    assert late["hours_late"] == 6 and late["extension_hours"] == 24
    assert late["deadline"] == "2025-10-07T22:00:00+00:00"


def test_no_time_is_noted_and_nothing_handed_in_is_never_late():
    assert penalties(report(), {}, DUE, None) == ([], [
        "softmax: no submission time, not checked for lateness"])
    assert penalties(report(state="missing"), {}, DUE, None) == ([], [])


def test_parse_time_keeps_the_offset():
    assert parse_time("2025-10-06T23:59:00Z", "x").utcoffset() == dt.timedelta(0)

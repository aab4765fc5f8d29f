"""Late penalties in a batch: course.toml's deadlines and rule, the roster's extensions and each
student's submission time.

course.toml:

    [late]
    per = "day"       # or "hour": the unit of lateness, each one begun counting whole
    penalty = 0.1     # the share of a topic's score taken off per unit
    cap = 0.5         # at most this share
    [deadlines]
    softmax = "2025-10-06T23:59:00+02:00"

Times are ISO 8601 with a UTC offset (`Z` for UTC): a time without one could mean any zone,
so it is an error, named with where it was found. A submission's time comes from the
instructor's CSV (`--times`: columns student, topic, submitted_at; an empty topic means every
topic), else from the `timestamp.txt` nbgrader writes into `submitted/<student>/<topic>/`
(its default format, `2025-10-06 14:03:12.123456 UTC`, or with a numeric offset or an IANA
zone name). A topic with a deadline and no known time is not penalised and the gradebook
says so. A penalty takes its share of the points the topic earned; the tests' scores stay as
graded, and the report, the gradebook and the exports show both.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import stat
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.course import COURSE_FILE
from grader.instructor.roster import Student
from grader.report.schema import LatePenalty, Report
from grader.submission import OPEN_FLAGS

NBGRADER_TIMESTAMP = "timestamp.txt"
MAX_TIMESTAMP_BYTES = 200
UNIT_HOURS = {"hour": 1.0, "day": 24.0}
# nbgrader's default: "%Y-%m-%d %H:%M:%S.%f %Z" (its zone's name last, UTC by default)
NBGRADER_FORMAT = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(\S*)$")


class DeadlineError(ValueError):
    """A deadline, rule or time cannot be used as written; the message says where and how."""


@dataclass(frozen=True)
class LateRule:
    """[late]: `penalty` of a topic's score per `per` begun, at most `cap`."""

    per: Literal["hour", "day"]
    penalty: float
    cap: float

    def share(self, hours_late: float) -> float:
        units = math.ceil(hours_late / UNIT_HOURS[self.per] - 1e-9)
        return min(self.cap, units * self.penalty)

    @property
    def text(self) -> str:
        return (f"the course takes {self.penalty:.0%} per {self.per} or part of one, "
                f"at most {self.cap:.0%}")


@dataclass(frozen=True)
class Deadlines:
    """course.toml's [deadlines] (aware times by topic) and [late]."""

    rule: LateRule | None = None
    due: dict[str, dt.datetime] = field(default_factory=dict)


def parse_time(text: str, where: str) -> dt.datetime:
    """An ISO 8601 time with its UTC offset; DeadlineError names `where` otherwise."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise DeadlineError(f"{where}: {text!r} is not an ISO 8601 time such as "
                            "2025-10-06T23:59:00+02:00") from None
    if when.tzinfo is None:
        raise DeadlineError(f"{where}: {text!r} has no UTC offset, so it could be any time "
                            "zone's; write it with one, e.g. 2025-10-06T23:59:00+02:00, or Z "
                            "for UTC")
    return when


def load_deadlines(topics: list[str], path: Path = COURSE_FILE) -> Deadlines:
    """course.toml's deadlines and rule, checked: known topics, aware times, a rule that
    makes sense, and a rule wherever there are deadlines."""
    data = tomllib.loads(path.read_text())
    late, given = data.get("late"), data.get("deadlines", {})
    rule = None
    if late is not None:
        per, penalty, cap = late.get("per"), late.get("penalty"), late.get("cap", 1.0)
        if per not in UNIT_HOURS or not all(isinstance(x, int | float) and 0 <= x <= 1
                                            for x in (penalty, cap)):
            raise DeadlineError(f"[late] in {path}: per is \"hour\" or \"day\", penalty and "
                                "cap are shares from 0 to 1 (penalty = 0.1 takes 10% per "
                                f"unit); found per={per!r}, penalty={penalty!r}, cap={cap!r}")
        rule = LateRule(per, float(penalty), float(cap))
    unknown = sorted(set(given) - set(topics))
    if unknown:
        raise DeadlineError(f"[deadlines] in {path} names topics the course does not have: "
                            f"{', '.join(unknown)}")
    if given and rule is None:
        raise DeadlineError(f"[deadlines] in {path} needs a [late] rule (per, penalty, cap)")
    return Deadlines(rule, {t: parse_time(str(v), f"[deadlines] {t} in {path}")
                            for t, v in given.items()})


def nbgrader_time(text: str, where: str) -> dt.datetime:
    """A time as nbgrader's timestamp.txt holds it: ISO 8601 with an offset, or a date and
    time followed by UTC, a numeric offset or an IANA zone; an abbreviation such as CEST (which
    could be several zones) or no zone is a DeadlineError."""
    text = text.strip()
    match = NBGRADER_FORMAT.match(text)
    if not match:
        return parse_time(text, where)
    moment, zone = match.groups()
    if not zone:
        return parse_time(moment, where)
    if zone.upper() in ("UTC", "GMT", "Z"):
        return dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC)
    if re.fullmatch(r"[+-]\d\d:?\d\d", zone):
        return parse_time(moment + zone[:3] + ":" + zone[-2:], where)
    try:
        return dt.datetime.fromisoformat(moment).replace(tzinfo=zoneinfo.ZoneInfo(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DeadlineError(f"{where}: {text!r} names its time zone as {zone!r}, which is not "
                            "an IANA zone (Europe/Berlin) or an offset: set nbgrader's "
                            "Exchange.timestamp_format to end in %z, or give the times in a "
                            "CSV with --times") from None


def _read_small(folder: Path, *names: str) -> str | None:
    """The text of `folder/names...`, each step opened without following a link, a regular
    file of at most MAX_TIMESTAMP_BYTES (the folder is the student's); None when absent."""
    fds = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for name in names[:-1]:
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                               os.O_CLOEXEC, dir_fd=fds[-1]))
        fds.append(os.open(names[-1], OPEN_FLAGS, dir_fd=fds[-1]))
        if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
            return None
        return os.read(fds[-1], MAX_TIMESTAMP_BYTES + 1)[:MAX_TIMESTAMP_BYTES].decode(
            "utf-8", "replace")
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


def nbgrader_times(entry: Path, topics: list[str]) -> dict[str, dt.datetime]:
    """Per topic, the time nbgrader recorded in `<entry>/<topic>/timestamp.txt`."""
    times = {}
    if entry.is_dir():
        for topic in topics:
            text = _read_small(entry, topic, NBGRADER_TIMESTAMP)
            if text is not None:
                times[topic] = nbgrader_time(text, str(entry / topic / NBGRADER_TIMESTAMP))
    return times


def read_times(path: Path, topics: list[str]) -> dict[str, dict[str, dt.datetime]]:
    """The instructor's CSV of submission times: student -> topic -> time."""
    times: dict[str, dict[str, dt.datetime]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"student", "submitted_at"} <= set(reader.fieldnames or ()):
            raise DeadlineError(f"{path}: the columns are student, topic (empty: every topic) "
                                "and submitted_at (ISO 8601 with a UTC offset)")
        for line, row in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            topic = (row.get("topic") or "").strip()
            if topic and topic not in topics:
                raise DeadlineError(f"{where}: no topic {topic!r} in the course")
            when = parse_time(row.get("submitted_at") or "", where)
            for t in [topic] if topic else topics:
                times.setdefault((row.get("student") or "").strip(), {})[t] = when
    return times


def penalties(report: Report, times: dict[str, dt.datetime], deadlines: Deadlines,
              student: Student | None) -> tuple[list[LatePenalty], list[str]]:
    """The report's late penalties, and what the gradebook notes (a topic handed in with a
    deadline and no known time)."""
    found: list[LatePenalty] = []
    notes: list[str] = []
    if deadlines.rule is None:
        return found, notes
    for topic in report["topics"]:
        name = topic["name"]
        if name not in deadlines.due or topic.get("state") == "missing":
            continue
        when = times.get(name)
        if when is None:
            notes.append(f"{name}: no submission time, not checked for lateness")
            continue
        extension = student.extension_hours(name) if student else 0.0
        due = deadlines.due[name] + dt.timedelta(hours=extension)
        hours = (when - due).total_seconds() / 3600
        if hours <= 0:
            continue
        share = deadlines.rule.share(hours)
        found.append({"topic": name, "submitted_at": when.isoformat(),
                      "deadline": due.isoformat(), "extension_hours": extension,
                      "hours_late": round(hours, 2), "penalty": share,
                      "points": round(topic["score"] * share, 4),
                      "rule": deadlines.rule.text})
    return found, notes

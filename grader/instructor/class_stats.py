"""What the class got wrong, counted from the students' reports (the class page shows it).

Only attempts count: a topic whose file is missing, is the stub itself, could not be read,
does not parse or was refused by the source allow-list (the report's `state`) is left out of
the pass rates, the mistakes and the most-failed tests, and listed on its own, so a class
where half never started a topic does not read as a class that failed it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import NamedTuple, TypedDict

from grader.report.schema import Outcome, Report, TopicEntry, TopicState, waiting

# How the class page and the gradebook name each kind of empty or broken topic.
STATE_LABELS: dict[TopicState, str] = {
    "missing": "nothing of it reached the grader", "stub": "the stub, unchanged",
    "unreadable": "its file could not be read",
    "syntax_error": "does not parse", "refused": "refused by the source allow-list"}


def state_of(topic: TopicEntry) -> TopicState:
    """The topic's state (a report from before states were recorded: an attempt)."""
    return topic.get("state", "attempted")


def attempted(students: Mapping[str, Report]) -> Iterator[tuple[str, TopicEntry]]:
    """(student, topic) for every topic a student attempted."""
    for student, report in sorted(students.items()):
        for topic in report["topics"]:
            if state_of(topic) == "attempted":
                yield student, topic


def empty_or_broken(report: Report) -> list[tuple[str, str]]:
    """(topic, what it was) for each of the report's topics that was not an attempt."""
    return [(t["name"], STATE_LABELS[state]) for t in report["topics"]
            if (state := state_of(t)) != "attempted"]


class PassRate(NamedTuple):
    topic: str
    test: str
    passed: int
    attempted: int  # students who attempted the topic and ran this test
    left_out: int  # students whose topic was empty or broken


def pass_rates(students: Mapping[str, Report]) -> list[PassRate]:
    """Each test's passes among the students who attempted its topic, in course order."""
    passed: Counter[tuple[str, str]] = Counter()
    ran: Counter[tuple[str, str]] = Counter()
    left_out: Counter[str] = Counter()
    order: dict[tuple[str, str], None] = {}
    for report in students.values():
        for topic in report["topics"]:
            if state_of(topic) != "attempted":
                left_out[topic["name"]] += 1
                continue
            for test in topic["tests"]:
                key = (topic["name"], test["name"])
                order[key] = None
                ran[key] += 1
                passed[key] += test["outcome"] == "passed" and test["score"] >= test["max_score"]
    return [PassRate(t, n, passed[(t, n)], ran[(t, n)], left_out[t]) for t, n in order]


class Mistake(NamedTuple):
    topic: str
    mistake: str
    students: list[str]
    attempted: int  # students who attempted the topic


def mistakes(students: Mapping[str, Report]) -> list[Mistake]:
    """Each recognised mistake (a test's `mistake`) with the students who made it, by topic
    in course order, the most common first."""
    who: dict[tuple[str, str], set[str]] = defaultdict(set)
    tried: Counter[str] = Counter()
    topics: dict[str, None] = {}
    for student, topic in attempted(students):
        tried[topic["name"]] += 1
        topics[topic["name"]] = None
        for test in topic["tests"]:
            if test.get("mistake"):
                who[(topic["name"], str(test["mistake"]))].add(student)
    found = [Mistake(t, m, sorted(s), tried[t]) for (t, m), s in who.items()]
    order = list(topics)
    return sorted(found, key=lambda m: (order.index(m.topic), -len(m.students), m.mistake))


class FailedTest(TypedDict):
    """A test that cost `students` students points, with their most common message."""

    topic: str
    test: str
    students: int
    message: str


def most_failed(students: Mapping[str, Report], limit: int = 15) -> list[FailedTest]:
    """Tests that cost the most students points among those who attempted the topic (not the
    functions left unwritten), each with its most common message."""
    lost: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, topic in attempted(students):
        for test in topic["tests"]:
            if test["score"] < test["max_score"] and not waiting(test):
                lost[(topic["name"], test["name"])].append(test["message"])
    ranked = sorted(lost.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    return [{"topic": t, "test": n, "students": len(msgs),
             "message": Counter(msgs).most_common(1)[0][0]} for (t, n), msgs in ranked]


def outcomes(report: Report) -> Counter[Outcome]:
    return Counter(test["outcome"] for topic in report["topics"] for test in topic["tests"])


class CurveFinals(NamedTuple):
    """A training test's headline quantity after training: each attempting student's final
    value as their code reported it, and the reference's (the most common, where students
    started from different states)."""

    topic: str
    test: str
    quantity: str
    finals: list[float]
    reference: float | None


def _last(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def curve_finals(students: Mapping[str, Report]) -> list[CurveFinals]:
    """Per training test, the spread of final values across the class."""
    found: dict[tuple[str, str], tuple[str, list[float], Counter[float]]] = {}
    for _, topic in attempted(students):
        for test in topic["tests"]:
            curve = test.get("curve")
            if not curve or not curve["series"]:
                continue
            headline = curve["series"][0]
            entry = found.setdefault((topic["name"], test["name"]),
                                     (headline["name"], [], Counter()))
            if (mine := _last(headline["yours"])) is not None:
                entry[1].append(mine)
            if (theirs := _last(headline["reference"])) is not None:
                entry[2][theirs] += 1
    return [CurveFinals(t, n, q, finals, refs.most_common(1)[0][0] if refs else None)
            for (t, n), (q, finals, refs) in found.items()]

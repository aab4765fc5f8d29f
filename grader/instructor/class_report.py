"""The class at a glance, from every student's report: `gradebook.csv` (one row per student)
and `index.html` (score histograms per topic, the most-failed tests with their messages,
forbidden-call flags, timeouts and crashes, the pairs of students whose code is similar linked
to a side-by-side view in `similarity/`, and each student's score linked to their report in
`students/<student>/`), with matplotlib figures embedded in the page. Everything from a
report is cleaned (`grader.text.clean_text`: no control characters, invisible ones shown
escaped) and escaped on the page: a student's name is text, never markup. In the gradebook, a
cell that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, a tab or a carriage
return first) is led by a single quote, as OWASP advises against CSV injection."""

from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypedDict
from urllib.parse import quote

from grader.atomic import write_atomic
from grader.instructor.similarity import ClassSimilarity
from grader.report.schema import GradedTest, Outcome, Report, waiting
from grader.text import clean_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BAR_COLOR = "#3b6ea8"
SHARE_COLOR = "#d9822b"  # the similarity bars on the class page
STUDENTS = "students"  # the folder beside the class page that holds each student's reports
MAX_PAIRS_SHOWN = 200  # the class page lists the most similar pairs; the rest are counted
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def topic_names(reports: list[Report]) -> list[str]:
    names: list[str] = []
    for r in reports:
        for t in r["topics"]:
            if t["name"] not in names:
                names.append(t["name"])
    return names


def _tests(report: Report) -> Iterator[tuple[str, GradedTest]]:
    for topic in report["topics"]:
        for test in topic["tests"]:
            yield topic["name"], test


def gradebook_rows(students: Mapping[str, Report], similarity: Mapping[str, float] | None = None,
                   notes: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """One row per student, by id: per-topic scores, total, flags, timeouts and crashes, their
    highest similarity to a classmate's code of one topic (0 to 1) and what the batch noted of
    them; a student without a report has only their note (why they were not graded)."""
    notes = notes or {}
    names = topic_names(list(students.values()))
    rows: list[dict[str, object]] = []
    for student in sorted({*students, *notes}):
        r = students.get(student)
        if r is None:
            rows.append({"student": student, "note": notes[student] or "not graded"})
            continue
        scores = {t["name"]: t["score"] for t in r["topics"]}
        outcomes = Counter[Outcome](test["outcome"] for _, test in _tests(r))
        flags = sorted({f"{f['topic']}.{f['function']}: {f['call']}" for f in r["flags"]})
        rows.append({"student": student, **{n: scores.get(n, 0.0) for n in names},
                     "total": r["score"], "max_score": r["max_score"],
                     "flags": "; ".join(flags), "timeouts": outcomes["timeout"],
                     "errors": outcomes["error"],
                     "max_similarity": round((similarity or {}).get(student, 0.0), 3),
                     "note": notes.get(student, "")})
    return rows


# A cell a spreadsheet would read as a formula (OWASP's CSV injection): it begins with one of
# these. Such a cell is written after a single quote, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A value as a CSV cell the kit writes: text cleaned (`clean_text`) and, where it would
    begin a formula, led by a single quote; numbers as they are."""
    if not isinstance(value, str):
        return value
    text = clean_text(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def gradebook_csv(students: Mapping[str, Report], similarity: Mapping[str, float] | None = None,
                  notes: Mapping[str, str] | None = None) -> str:
    rows = gradebook_rows(students, similarity, notes)
    fields = ["student", *topic_names(list(students.values())), "total", "max_score", "flags",
              "timeouts", "errors", "max_similarity", "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


class FailedTest(TypedDict):
    """A test that cost `students` students points, with their most common message."""

    topic: str
    test: str
    students: int
    message: str


def most_failed(reports: list[Report], limit: int = 15) -> list[FailedTest]:
    """Tests that cost the most students points, each with its most common message."""
    lost: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in reports:
        for topic, test in _tests(r):
            if test["score"] < test["max_score"] and not waiting(test):
                lost[(topic, test["name"])].append(test["message"])
    ranked = sorted(lost.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    return [{"topic": t, "test": n, "students": len(msgs),
             "message": Counter(msgs).most_common(1)[0][0]} for (t, n), msgs in ranked]


def _figure_png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def histograms(reports: list[Report]) -> str:
    """One score histogram per topic and one for the total, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("total", [r["score"] for r in reports], max(r["max_score"] for r in reports))]
    for name in topic_names(reports):
        scores = [t["score"] for r in reports for t in r["topics"] if t["name"] == name]
        top = max(t["max_score"] for r in reports for t in r["topics"] if t["name"] == name)
        panels.append((name, scores, top))
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, (name, scores, top) in zip(axes.flat, panels, strict=False):
        ax.hist(scores, bins=min(20, max(5, int(top) or 1)), range=(0, top or 1),
                color=BAR_COLOR)
        ax.set_title(f"{name} (max {top:g})", fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    png = _figure_png(fig)
    plt.close(fig)
    return png


class Link(NamedTuple):
    """A table cell that links to a page beside the class page."""

    text: str
    href: str


class Share(NamedTuple):
    """A table cell that shows a share (0 to 1) as a bar and a percentage."""

    value: float


def _e(text: object) -> str:
    """Text on the page: cleaned (`clean_text`) and escaped, never markup."""
    return html.escape(clean_text(str(text)))


def _cell(value: object) -> str:
    if isinstance(value, Share):
        width = round(100 * min(max(value.value, 0.0), 1.0))
        return f'<span class=bar style="width:{width}px"></span> {value.value:.0%}'
    if isinstance(value, Link):
        return f'<a href="{html.escape(quote(value.href))}">{_e(value.text)}</a>'
    return _e(value)


def _table(headers: list[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f"<p class=empty>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f0f3f7}
.empty{color:#666}img{max-width:100%}.stats span{margin-right:2em}
""" + f".bar{{display:inline-block;height:10px;background:{SHARE_COLOR};vertical-align:middle}}"


def class_page(students: Mapping[str, Report], title: str,
               similar: ClassSimilarity | None = None,
               notes: Mapping[str, str] | None = None) -> str:
    """The page for these reports, by student id (each score links to the report in the
    student's folder), with the pairs of similar code, each linked to its side-by-side page,
    and what the batch noted of a student (why they were not graded, how their id was made)."""
    notes = notes or {}
    reports = list(students.values())
    totals = [r["score"] for r in reports]
    top = max((r["max_score"] for r in reports), default=0)
    troubles = [[r["submission"], topic, t["name"], t["outcome"], t["message"][:300]]
                for r in sorted(reports, key=lambda r: r["submission"])
                for topic, t in _tests(r) if t["outcome"] == "timeout"
                or (t["outcome"] == "error" and "died" in t["message"])]
    flags = [[r["submission"], f["topic"], f["function"], f["call"], f["how"]]
             for r in sorted(reports, key=lambda r: r["submission"]) for f in r["flags"]]
    failed = [[f["topic"], f["test"], f["students"], f["message"][:400]]
              for f in most_failed(reports)]
    scores = [[student, Link(f"{r['score']:g} / {r['max_score']:g}",
                             f"{STUDENTS}/{student}/report.html")
               if (r := students.get(student)) else "not graded", notes.get(student, "")]
              for student in sorted({*students, *notes})]
    similar = similar or ClassSimilarity([], {}, {})
    pairs = [[p.topic, p.a, p.b, Share(p.similarity), p.shared,
              Link("side by side", similar.pages[p])] for p in similar.pairs if p in similar.pages]
    more = len(similar.pairs) - len(pairs)
    figure = (f'<img alt="score histograms per topic" src="data:image/png;base64,'
              f'{histograms(reports)}">' if reports else "")
    stats = (f"<p class=stats><span>{len(reports)} students</span>"
             f"<span>mean {statistics.mean(totals):.1f} / {top:g}</span>"
             f"<span>median {statistics.median(totals):g} / {top:g}</span></p>"
             if reports else "<p class=empty>No reports yet.</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{_e(title)}</title><style>{CSS}</style></head><body>
<h1>{_e(title)}</h1>{stats}
<h2>Scores</h2>{figure}
<h2>Most-failed tests</h2>{_table(["topic", "test", "students", "most common message"], failed,
                                  "No test lost points.")}
<h2>Forbidden calls</h2>{_table(["student", "topic", "function", "call", "how"], flags,
                                "No forbidden calls.")}
<h2>Timeouts and crashes</h2>{_table(["student", "topic", "test", "outcome", "message"],
                                     troubles, "No timeouts or crashes.")}
<h2>Similar code</h2><p>Pairs of students where this share of one's code of a topic is found
in the other's (names replaced, the released stub left out); a reason to read both, not proof.
</p>{_table(["topic", "student", "student", "similarity", "shared", "compare"], pairs,
            "No pair of students above the course's threshold.")}{
    f"<p>and {more} more pairs.</p>" if more > 0 else ""}
<h2>Students</h2>{_table(["student", "score", "note"], scores, "No students.")}
</body></html>
"""


def write_class_report(students: Mapping[str, Report], out: Path, title: str,
                       similar: ClassSimilarity | None = None,
                       notes: Mapping[str, str] | None = None) -> None:
    """Write `gradebook.csv` and `index.html` for these reports, keyed by the student's id (the
    folder under `OUT/students/` that holds each), with the batch's `notes` on students
    (atomically)."""
    highest = similar.highest if similar else None
    write_atomic(out / "gradebook.csv", gradebook_csv(students, highest, notes))
    write_atomic(out / "index.html", class_page(students, title, similar, notes))

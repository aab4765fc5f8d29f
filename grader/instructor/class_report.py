"""The class at a glance, from every student's report: `gradebook.csv` (one row per student)
and `index.html`: score histograms per topic; what the class got wrong (each recognised
mistake with the students who made it, each test's pass rate, the most-failed tests, all among
the students who attempted the topic: empty and broken submissions are listed apart, see
`grader.instructor.class_stats`); flags per student (forbidden calls, timeouts, similarity,
lateness); the last regrade's changes; the spread of training curves' final values; the pairs
of students whose code is similar linked to a side-by-side view in `similarity/`; each
student's score linked to their report in `students/<student>/`. matplotlib figures are
embedded in the page. Everything from a report is cleaned (`grader.text.clean_text`: no control
characters, invisible ones shown escaped) and escaped on the page: a student's name is text,
never markup. In the gradebook, a cell that a spreadsheet would take for a formula (`=`, `+`,
`-`, `@`, a tab or a carriage return first) is led by a single quote, as OWASP advises against
CSV injection.

The gradebook's columns: `student`; one per topic (its score as graded); `total`,
`max_score`; where the course has deadlines, `<topic>_penalised` and `total_penalised` (after
the late penalty) and `late` (what was late, by how much, and topics with no known submission
time); `empty_or_broken` (each topic that was no attempt, and why); `flags` (forbidden calls),
`timeouts`, `errors`, `max_similarity` (0 to 1); `note` (what the batch noted: how the id was
made, why a student was not graded).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

from grader.atomic import write_atomic
from grader.instructor.class_stats import (
    curve_finals,
    empty_or_broken,
    mistakes,
    most_failed,
    outcomes,
    pass_rates,
)
from grader.instructor.similarity import ClassSimilarity
from grader.report.formats import final_score, points
from grader.report.schema import Report
from grader.text import clean_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from grader.instructor.history import Change

BAR_COLOR = "#3b6ea8"
SHARE_COLOR = "#d9822b"  # the similarity bars on the class page
MISTAKE_COLOR = "#8e24aa"  # the share of a topic's students who made a recognised mistake
PASS_COLOR = "#2e7d32"  # a test's pass rate
REFERENCE_COLOR = "#d9822b"
STUDENTS = "students"  # the folder beside the class page that holds each student's reports
MAX_PAIRS_SHOWN = 200  # the class page lists the most similar pairs; the rest are counted
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass
class ClassNotes:
    """What the page and the gradebook say of the class besides the reports: what the batch
    noted of a student (their id, why they were not graded), lateness the reports cannot say
    (a topic with no known submission time), whether the course has deadlines, and the last
    regrade's changes."""

    notes: Mapping[str, str] = field(default_factory=dict)
    late: Mapping[str, list[str]] = field(default_factory=dict)
    deadlines: bool = False
    changes: Sequence[Change] = ()


def topic_names(reports: list[Report]) -> list[str]:
    names: list[str] = []
    for r in reports:
        for t in r["topics"]:
            if t["name"] not in names:
                names.append(t["name"])
    return names


def late_text(report: Report, extra: Sequence[str] = ()) -> str:
    """The gradebook's `late` cell: each late topic, then what could not be checked."""
    late = [f"{p['topic']}: {p['hours_late']:g} h late, -{p['penalty']:.0%} "
            f"(-{points(p['points'])})" for p in report.get("late") or []]
    return "; ".join([*late, *extra])


def gradebook_rows(students: Mapping[str, Report], similarity: Mapping[str, float] | None = None,
                   notes: Mapping[str, str] | None = None, *, late: Mapping[str, list[str]] |
                   None = None, deadlines: bool = False) -> list[dict[str, object]]:
    """One row per student, by id (the module's doc names the columns); a student without a
    report has only their note (why they were not graded)."""
    notes, late = notes or {}, late or {}
    names = topic_names(list(students.values()))
    rows: list[dict[str, object]] = []
    for student in sorted({*students, *notes}):
        r = students.get(student)
        if r is None:
            rows.append({"student": student, "note": notes[student] or "not graded"})
            continue
        scores = {t["name"]: t["score"] for t in r["topics"]}
        row: dict[str, object] = {"student": student, **{n: scores.get(n, 0.0) for n in names},
                                  "total": r["score"], "max_score": r["max_score"]}
        if deadlines:
            taken = {p["topic"]: p["points"] for p in r.get("late") or []}
            row |= {f"{n}_penalised": round(scores.get(n, 0.0) - taken.get(n, 0.0), 4)
                    for n in names}
            row |= {"total_penalised": final_score(r), "late": late_text(r, late.get(student, []))}
        counts = outcomes(r)
        row |= {"empty_or_broken": "; ".join(f"{t}: {why}" for t, why in empty_or_broken(r)),
                "flags": "; ".join(sorted({f"{f['topic']}.{f['function']}: {f['call']}"
                                           for f in r["flags"]})),
                "timeouts": counts["timeout"], "errors": counts["error"],
                "max_similarity": round((similarity or {}).get(student, 0.0), 3),
                "note": notes.get(student, "")}
        rows.append(row)
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


def csv_value(cell: str) -> str:
    """A cell the kit wrote, read back: the quote `csv_cell` put before a formula removed."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def gradebook_csv(students: Mapping[str, Report], similarity: Mapping[str, float] | None = None,
                  notes: Mapping[str, str] | None = None, *, late: Mapping[str, list[str]] |
                  None = None, deadlines: bool = False) -> str:
    rows = gradebook_rows(students, similarity, notes, late=late, deadlines=deadlines)
    names = topic_names(list(students.values()))
    penalised = [*(f"{n}_penalised" for n in names), "total_penalised", "late"] \
        if deadlines else []
    fields = ["student", *names, "total", "max_score", *penalised, "empty_or_broken", "flags",
              "timeouts", "errors", "max_similarity", "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


# -- figures ---------------------------------------------------------------------------------


def _figure_png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _grid(n: int, cols: int = 4) -> tuple[Figure, list]:
    from matplotlib.figure import Figure

    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.axis("off")
    return fig, axes


def histograms(reports: list[Report]) -> str:
    """One score histogram per topic and one for the total, as a base64 PNG."""
    panels = [("total", [r["score"] for r in reports], max(r["max_score"] for r in reports))]
    for name in topic_names(reports):
        scores = [t["score"] for r in reports for t in r["topics"] if t["name"] == name]
        top = max(t["max_score"] for r in reports for t in r["topics"] if t["name"] == name)
        panels.append((name, scores, top))
    fig, axes = _grid(len(panels))
    for ax, (name, scores, top) in zip(axes, panels, strict=False):
        ax.hist(scores, bins=min(20, max(5, int(top) or 1)), range=(0, top or 1),
                color=BAR_COLOR)
        ax.set_title(f"{name} (max {top:g})", fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)


def curves_spread(students: Mapping[str, Report]) -> str | None:
    """Per training test, a histogram of the students' final values (as their code reported
    them) with the reference's marked, as a base64 PNG; None without training curves."""
    finals = [f for f in curve_finals(students) if f.finals]
    if not finals:
        return None
    fig, axes = _grid(len(finals), cols=3)
    for ax, f in zip(axes, finals, strict=False):
        ax.hist(f.finals, bins=20, color=BAR_COLOR)
        if f.reference is not None:
            ax.axvline(f.reference, color=REFERENCE_COLOR, linestyle="--", label="reference")
            ax.legend(fontsize=7)
        ax.set_title(f"{f.topic}: {f.test}", fontsize=8)
        ax.set_xlabel(f"final {f.quantity}", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)


# -- the page --------------------------------------------------------------------------------


class Link(NamedTuple):
    """A table cell that links to a page beside the class page."""

    text: str
    href: str


class Links(NamedTuple):
    """A table cell of several links."""

    links: list[Link]


class Share(NamedTuple):
    """A table cell that shows a share (0 to 1) as a bar and a percentage."""

    value: float
    color: str = SHARE_COLOR


def _e(text: object) -> str:
    """Text on the page: cleaned (`clean_text`) and escaped, never markup."""
    return html.escape(clean_text(str(text)))


def _cell(value: object) -> str:
    if isinstance(value, Share):
        width = round(100 * min(max(value.value, 0.0), 1.0))
        return (f'<span class=bar style="width:{width}px;background:{value.color}"></span> '
                f"{value.value:.0%}")
    if isinstance(value, Link):
        return f'<a href="{html.escape(quote(value.href))}">{_e(value.text)}</a>'
    if isinstance(value, Links):
        return ", ".join(map(_cell, value.links))
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
.bar{display:inline-block;height:10px;vertical-align:middle}
"""


def _report_link(student: str, text: str, page: str = "report.html") -> Link:
    return Link(text, f"{STUDENTS}/{student}/{page}")


def _mistake_rows(students: Mapping[str, Report]) -> list[list[object]]:
    return [[m.topic, m.mistake, f"{len(m.students)} of {m.attempted}",
             Share(len(m.students) / max(1, m.attempted), MISTAKE_COLOR),
             Links([_report_link(s, s) for s in m.students])] for m in mistakes(students)]


def _pass_rows(students: Mapping[str, Report]) -> list[list[object]]:
    return [[r.topic, r.test, Share(r.passed / max(1, r.attempted), PASS_COLOR),
             f"{r.passed} of {r.attempted}", r.left_out or ""] for r in pass_rates(students)]


def _flag_rows(students: Mapping[str, Report], similar: ClassSimilarity,
               notes: ClassNotes) -> list[list[object]]:
    """A row per student with any flag; similarity where they are in a pair listed."""
    paired = {s for p in similar.pairs for s in (p.a, p.b)}
    rows: list[list[object]] = []
    for student, r in sorted(students.items()):
        counts = outcomes(r)
        forbidden = sorted({f"{f['topic']}.{f['function']}: {f['call']}" for f in r["flags"]})
        similarity = f"{similar.highest.get(student, 0.0):.2f}" if student in paired else ""
        late = late_text(r, notes.late.get(student, []))
        broken = "; ".join(f"{t}: {why}" for t, why in empty_or_broken(r))
        if forbidden or counts["timeout"] or similarity or late or broken:
            rows.append([_report_link(student, student), "; ".join(forbidden),
                         counts["timeout"] or "", similarity, late, broken])
    return rows


def _change_rows(changes: Sequence[Change]) -> list[list[object]]:
    return [[c["student"], _report_link(c["student"], points(c["before"]),
                                        f"{c['earlier']}/report.html"),
             _report_link(c["student"], points(c["after"])),
             f"{'+' if c['change'] > 0 else ''}{points(c['change'])} of {points(c['max_score'])}",
             "; ".join(c["tests"])] for c in changes]


def class_page(students: Mapping[str, Report], title: str,
               similar: ClassSimilarity | None = None,
               notes: Mapping[str, str] | None = None, extra: ClassNotes | None = None) -> str:
    """The page for these reports, by student id (each score links to the report in the
    student's folder), with what the class got wrong, the flags per student, the last
    regrade's changes, the pairs of similar code, each linked to its side-by-side page, and
    what the batch noted of a student (why they were not graded, how their id was made)."""
    extra = extra or ClassNotes(notes or {})
    notes = extra.notes
    reports = list(students.values())
    totals = [r["score"] for r in reports]
    top = max((r["max_score"] for r in reports), default=0)
    troubles = [[r["submission"], topic["name"], t["name"], t["outcome"], t["message"][:300]]
                for r in sorted(reports, key=lambda r: r["submission"])
                for topic in r["topics"] for t in topic["tests"] if t["outcome"] == "timeout"
                or (t["outcome"] == "error" and "died" in t["message"])]
    flags = [[r["submission"], f["topic"], f["function"], f["call"], f["how"]]
             for r in sorted(reports, key=lambda r: r["submission"]) for f in r["flags"]]
    failed = [[f["topic"], f["test"], f["students"], f["message"][:400]]
              for f in most_failed(students)]
    broken = [[_report_link(s, s), topic, why] for s, r in sorted(students.items())
              for topic, why in empty_or_broken(r)]
    scores = [[student, _report_link(student, f"{r['score']:g} / {r['max_score']:g}")
               if (r := students.get(student)) else "not graded", notes.get(student, "")]
              for student in sorted({*students, *notes})]
    similar = similar or ClassSimilarity([], {}, {})
    pairs = [[p.topic, p.a, p.b, Share(p.similarity), p.shared,
              Link("side by side", similar.pages[p])] for p in similar.pairs if p in similar.pages]
    more = len(similar.pairs) - len(pairs)
    figure = (f'<img alt="score histograms per topic" src="data:image/png;base64,'
              f'{histograms(reports)}">' if reports else "")
    spread = curves_spread(students)
    curves = (f'<h2>Training curves: final values</h2><p>Each training test\'s final value '
              "as the students' code reported it; the dashed line is the reference's, trained "
              'by the grader on the same data.</p><img alt="final values of training curves" '
              f'src="data:image/png;base64,{spread}">' if spread else "")
    changes = ("<h2>Regrade: who moved</h2><p>Since each student's earlier report (final "
               "scores, late penalties included; the earlier report is linked).</p>"
               + _table(["student", "before", "after", "change", "tests that moved"],
                        _change_rows(extra.changes), "")) if extra.changes else ""
    stats = (f"<p class=stats><span>{len(reports)} students</span>"
             f"<span>mean {statistics.mean(totals):.1f} / {top:g}</span>"
             f"<span>median {statistics.median(totals):g} / {top:g}</span></p>"
             if reports else "<p class=empty>No reports yet.</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{_e(title)}</title><style>{CSS}</style></head><body>
<h1>{_e(title)}</h1>{stats}
<h2>Scores</h2>{figure}
<h2>What the class got wrong</h2><p>Among the students who attempted each topic: empty and
broken submissions are left out and listed below.</p>
<h3>Recognised mistakes</h3>{_table(["topic", "mistake", "students", "share", "who"],
                                    _mistake_rows(students), "No recognised mistake.")}
<h3>Pass rate per test</h3>{_table(["topic", "test", "pass rate", "passed",
                                    "left out (empty or broken)"], _pass_rows(students),
                                   "No tests ran.")}
<h3>Most-failed tests</h3>{_table(["topic", "test", "students", "most common message"], failed,
                                  "No test lost points.")}
<h3>Empty and broken submissions</h3>{_table(["student", "topic", "what it was"], broken,
                                             "Every topic handed in was an attempt.")}
{changes}
<h2>Flags per student</h2>{_table(["student", "forbidden calls", "timeouts", "similarity",
                                   "late", "empty or broken"],
                                  _flag_rows(students, similar, extra), "No flags.")}
<h2>Forbidden calls</h2>{_table(["student", "topic", "function", "call", "how"], flags,
                                "No forbidden calls.")}
<h2>Timeouts and crashes</h2>{_table(["student", "topic", "test", "outcome", "message"],
                                     troubles, "No timeouts or crashes.")}
{curves}
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
                       notes: Mapping[str, str] | None = None,
                       extra: ClassNotes | None = None) -> None:
    """Write `gradebook.csv` and `index.html` for these reports, keyed by the student's id (the
    folder under `OUT/students/` that holds each), with the batch's `notes` on students
    (atomically)."""
    extra = extra or ClassNotes(notes or {})
    highest = similar.highest if similar else None
    write_atomic(out / "gradebook.csv", gradebook_csv(students, highest, extra.notes,
                                                      late=extra.late,
                                                      deadlines=extra.deadlines))
    write_atomic(out / "index.html", class_page(students, title, similar, extra.notes, extra))

"""A report (`schema.Report`, saved as report.json) in the other formats: Markdown, a self-contained
HTML page and Gradescope's results.json; `write_reports` writes them all, report.json last.

Tests whose function is not written yet are grouped apart from the ones to fix, so a fresh
stub's report reads as a to-do list rather than a wall of failures. The tests to fix are grouped
by the function they are about (`grader.notebooks.group_of`, by the topic's functions in the
stub's order), and each function's group leads with its diagnosis: every recognised mistake
(a test's `mistake`) once, and every message lost tests share word for word once, each with
the tests and points it cost; the details of those tests then refer to it.

Every format ends with where the report was graded (`grader.report.environment`) and says what
a late penalty took off (`late`, added by a batch). report.html draws a training test's curves
(the student's beside the reference's) as inline SVG, drawn by `grader.report.svgchart`.
Gradescope's visibility of each test follows course.toml's [gradescope].
"""

from __future__ import annotations

import functools
import html
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from grader.atomic import fsync_dir, write_atomic, write_json_atomic
from grader.course import COURSE_FILE, KIT_ROOT
from grader.notebooks import WHOLE_TOPIC, group_of, public_names
from grader.report.environment import environment_lines
from grader.report.schema import (
    OUTCOMES,
    Curve,
    GradedTest,
    GradescopeResults,
    GradescopeTest,
    GradescopeVisibility,
    How,
    Report,
    TopicEntry,
    waiting,
)
from grader.report.svgchart import line_charts

PRINTED = "What your code printed"  # under a test that did not pass (`GradedTest.output`)
HOW_LABELS: dict[How, str] = {"runtime": "called while grading",
                              "source": "written in the source"}
FLAGS_ADVICE = ("A forbidden call does the exercise's work for you, so a test that reaches one "
                "earns nothing; one only written in the source is a warning. Rebuild the result "
                "from the section's basic operations.")
# Gradescope's visibility: of each test by its suite, of the whole result and of
# run_autograder's output; course.toml's [gradescope] may set each (public, hidden, result,
# stdout).
GRADESCOPE_VISIBILITY: dict[str, GradescopeVisibility] = {
    "public": "visible", "hidden": "after_published", "result": "visible", "stdout": "hidden"}
GRADESCOPE_VISIBILITIES: tuple[GradescopeVisibility, ...] = (
    "hidden", "after_due_date", "after_published", "visible")
BAR_WIDTH = 20
CURVE_COLORS = ("#1f6fb2", "#d9822b")  # the student's line, the reference's


class MergedFlag(TypedDict):
    """The flags of one topic, function and call as one entry: every way it was seen."""

    topic: str
    function: str
    call: str
    how: list[How]


# -- what every format shows -----------------------------------------------------------------


def points(x: float) -> str:
    """A score the way people write it: 12, 1.5, 0.33."""
    return f"{round(float(x), 2):g}"


def score_of(item: Report | TopicEntry | GradedTest) -> str:
    """`score/max_score` of a report, topic or test."""
    return f"{points(item['score'])}/{points(item['max_score'])}"


def missed(test: GradedTest) -> bool:
    """Whether a test lost points or did not pass (a 0-point test can still teach)."""
    return test["outcome"] != "passed" or test["score"] < test["max_score"]


def not_written(topic: TopicEntry) -> list[GradedTest]:
    """The topic's tests that wait for a function the student has not written yet."""
    return [t for t in topic["tests"] if waiting(t)]


def passed(topic: TopicEntry) -> list[GradedTest]:
    return [t for t in topic["tests"] if not missed(t)]


def unique(texts: Iterable[str]) -> list[str]:
    """The non-empty texts, each once, in order (one message per unwritten function)."""
    return list(dict.fromkeys(t for t in texts if t))


def fraction(topic: TopicEntry) -> float:
    """The share of a topic's points earned; a 0-point topic counts as done if nothing missed."""
    if topic["max_score"] > 0:
        return min(1.0, max(0.0, topic["score"] / topic["max_score"]))
    return 0.0 if any(missed(t) for t in topic["tests"]) else 1.0


def text_bar(share: float, width: int = BAR_WIDTH, full: str = "█", empty: str = "░") -> str:
    filled = round(share * width)
    return full * filled + empty * (width - filled)


def label(test: GradedTest) -> str:
    return OUTCOMES[test["outcome"]].label


def display_name(test: GradedTest) -> str:
    """The test's name, marked when it is one of the hidden tests."""
    return test["name"] + (" (hidden)" if test["visibility"] == "hidden" else "")


def merged_flags(report: Report) -> list[MergedFlag]:
    """The flags with one entry per topic, function and call; `how` becomes a list."""
    merged: dict[tuple[str, str, str], MergedFlag] = {}
    for flag in report.get("flags", []):
        entry = merged.setdefault((flag["topic"], flag["function"], flag["call"]),
                                  {**flag, "how": []})
        if flag["how"] not in entry["how"]:
            entry["how"].append(flag["how"])
    return list(merged.values())


def flag_text(flag: MergedFlag) -> str:
    """One merged flag as a sentence: which call, in which function, how it was seen."""
    how = " and ".join(HOW_LABELS.get(h, h) for h in flag["how"])
    return f"{flag['call']} in {flag['function']} ({flag['topic']}): {how}"


def not_graded_texts(report: Report) -> list[str]:
    """A sentence per file of the submission that was not graded, each naming its file."""
    return [f["reason"] for f in report.get("files_not_graded") or []]


def isolation_text(report: Report) -> str:
    steps = report.get("isolation") or []
    return "Isolation: " + (", ".join(steps) if steps else "none (no sandbox recorded)")


def not_counted_text(report: Report) -> str:
    """Tests this machine skipped, left out of the maximum: `Not counted: 3 tests (6 points) …`."""
    skipped = report.get("not_counted") or []
    if not skipped:
        return ""
    total = sum(t["points"] for t in skipped)
    reasons = sorted({t["reason"] for t in skipped})
    noun = "test" if len(skipped) == 1 else "tests"
    return (f"Not counted: {len(skipped)} {noun} ({points(total)} points) skipped on this "
            f"machine ({'; '.join(reasons)}); the total leaves them out.")


def final_score(report: Report) -> float:
    """The score after any late penalty (`score` is before it)."""
    return round(report["score"] - sum(p["points"] for p in report.get("late") or []), 4)


def late_texts(report: Report) -> list[str]:
    """A sentence per late topic: when it came, its deadline, the rule, what it cost."""
    return [f"{p['topic']} was handed in {p['hours_late']:.1f} hours after its deadline "
            f"({p['submitted_at']}; deadline {p['deadline']}"
            + (f", your extension of {p['extension_hours']:g} hours included" if
               p["extension_hours"] else "")
            + f"): {p['rule']}, so {p['penalty']:.0%} of its score, {points(p['points'])} "
            "points, is taken off." for p in report.get("late") or []]


def total_text(report: Report) -> str:
    """`12/30`, or `12/30, 9/30 after the late penalty`."""
    if not report.get("late"):
        return score_of(report)
    return (f"{score_of(report)}, {points(final_score(report))}/{points(report['max_score'])} "
            "after the late penalty")


def environment_text(report: Report) -> list[str]:
    """The environment block's lines, led by what they are."""
    lines = environment_lines(report["kit_version"], report.get("environment"))
    return [f"Graded with: {lines[0]}", *lines[1:]] if lines else []


def summary_line(report: Report) -> str:
    """Every topic's score and the total on one line: `softmax 12/30 · total 12/30`."""
    parts = [f"{t['name']} {score_of(t)}" for t in report["topics"]]
    return " · ".join([*parts, f"total {total_text(report)}"])


def waiting_text(tests: list[GradedTest]) -> str:
    """What unwritten functions hold back: `3 tests (5 points) waiting`."""
    total = sum(t["max_score"] for t in tests)
    noun = "test" if len(tests) == 1 else "tests"
    return f"{len(tests)} {noun} ({points(total)} points) waiting"


# -- by function, the diagnosis first --------------------------------------------------------


@functools.cache
def topic_functions(topic: str) -> tuple[str, ...]:
    """The topic's functions and classes in the contract's order, read (never run) from its
    stub `exercises/<topic>.py`, which the repository and the student kit both hold (the
    reference where no stub is); none for a topic without either."""
    if not re.fullmatch(r"\w+", topic):
        return ()
    for folder in ("exercises", "solutions"):
        try:
            return tuple(public_names((KIT_ROOT / folder / f"{topic}.py").read_text()))
        except (OSError, SyntaxError, ValueError):
            continue
    return ()


def lost_points(test: GradedTest) -> float:
    return max(0.0, float(test["max_score"]) - float(test["score"]))


@dataclass(eq=False)
class Diagnosis:
    """One thing that went wrong in a function's tests, said once: a recognised mistake (the
    tests' `mistake`), or a message two or more lost tests share word for word."""

    number: int  # 1, 2, ... within its function; the tests' details refer to it
    text: str
    recognised: bool
    tests: list[GradedTest]  # every test it cost: those that named it and, for the one
    likely: list[GradedTest] = field(default_factory=list)  # recognised mistake of a
    # function, its other wrong results (which these tests name as likely its doing)

    @property
    def lost(self) -> float:
        return sum(lost_points(t) for t in self.tests)


MODULE = "<the module>"  # a FunctionFix of every function at once (`_module_wide`)


@dataclass(eq=False)
class FunctionFix:
    """The tests to fix of one function (None: of the topic as a whole), led by what went
    wrong in them; `score` and `max_score` are over all the function's tests."""

    topic: str
    function: str | None
    score: float
    max_score: float
    tests: list[GradedTest]
    diagnoses: list[Diagnosis]

    @property
    def title(self) -> str:
        """`softmax.softmax`: the topic's module and the function."""
        if self.function is MODULE:
            return f"{self.topic}, the whole module"
        return (f"{self.topic}.{self.function}" if self.function is not WHOLE_TOPIC
                else f"{self.topic}, the topic as a whole")

    @property
    def score_text(self) -> str:
        return f"{points(self.score)}/{points(self.max_score)}"


def diagnose(tests: list[GradedTest]) -> list[Diagnosis]:
    """What went wrong in these lost tests (one function's), each thing once: every
    recognised mistake, then every message two or more of the others share; each kind
    costliest first. Where one mistake is recognised, it costs every wrong result of the
    function, also those whose test did not name it (a nan for large logits is the missing
    max subtraction another test named): a mistake's cost is all it took."""
    groups: dict[tuple[bool, str], list[GradedTest]] = {}
    for test in tests:
        mistake = test.get("mistake")
        key = (True, mistake) if mistake else (False, test["message"])
        if key[1]:
            groups.setdefault(key, []).append(test)
    recognised = [key for key in groups if key[0]]
    likely: list[GradedTest] = []
    if len(recognised) == 1:  # one known mistake: a wrong result it did not name is its too
        for key, group in list(groups.items()):
            if not key[0]:
                likely += [t for t in group if t["outcome"] == "failed"]
                groups[key] = [t for t in group if t["outcome"] != "failed"]
        likely += [t for t in tests if not t["message"] and t["outcome"] == "failed"]
        groups[recognised[0]] += likely
    kept = [(key, group) for key, group in groups.items() if key[0] or len(group) > 1]
    kept.sort(key=lambda item: (not item[0][0], -sum(map(lost_points, item[1])),
                                -len(item[1])))  # stable: else in the tests' order
    return [Diagnosis(number, text, key_recognised, group,
                      likely if key_recognised else [])
            for number, ((key_recognised, text), group) in enumerate(kept, 1)]


def function_fixes(topic: TopicEntry) -> list[FunctionFix]:
    """The topic's tests to fix by function, in the stub's order, the topic's own tests last.
    A failure that every lost test of two or more functions shares word for word is the
    module's (a syntax error, an import that failed, a file outside the allow-list): it comes
    first, once, as the fix of the whole module, not once per function."""
    functions = topic_functions(topic["name"])
    by_function: dict[str | None, list[GradedTest]] = {f: [] for f in (*functions, WHOLE_TOPIC)}
    for test in topic["tests"]:
        by_function[group_of(test["name"], functions)].append(test)
    fixes = []
    module_wide = _module_wide(by_function)
    if module_wide:
        fixes.append(FunctionFix(topic["name"], MODULE,
                                 round(sum(t["score"] for t in module_wide), 4),
                                 round(sum(t["max_score"] for t in module_wide), 4),
                                 module_wide, diagnose(module_wide)))
        by_function = {f: [t for t in tests if t not in module_wide]
                       for f, tests in by_function.items()}
    for function, tests in by_function.items():
        if fix := [t for t in tests if missed(t) and not waiting(t)]:  # not the unwritten
            fixes.append(FunctionFix(topic["name"], function,
                                     round(sum(t["score"] for t in tests), 4),
                                     round(sum(t["max_score"] for t in tests), 4),
                                     fix, diagnose(fix)))
    return fixes


def served_texts(topic: TopicEntry) -> list[str]:
    """A line per function whose tests passed only with the grader's values of the contract
    functions it calls (`GradedTest.served`): it is right, and the fix is in those."""
    functions = topic_functions(topic["name"])
    served: dict[tuple[str, tuple[str, ...]], int] = {}
    for test in topic["tests"]:
        if test.get("served"):
            key = (group_of(test["name"], functions) or topic["name"],
                   tuple(test.get("served", ())))
            served[key] = served.get(key, 0) + 1
    return [f"{function}: {_count(n, 'test')} passed with a right "
            f"{', '.join(callees)} in place of yours. {function} itself is right; fix "
            f"{', '.join(callees)} (above) and they pass as written."
            for (function, callees), n in served.items()]


def _module_wide(by_function: dict[str | None, list[GradedTest]]) -> list[GradedTest]:
    """The lost tests of the functions whose every lost test has one and the same message, when
    two or more functions share it (a failure of the module, not of a function)."""
    shared: dict[str, list[str | None]] = {}
    for function, tests in by_function.items():
        lost = [t for t in tests if missed(t) and not waiting(t)]
        messages = {t["message"] for t in lost}
        if len(messages) == 1 and (message := messages.pop()):
            shared.setdefault(message, []).append(function)
    for owners in shared.values():
        if len(owners) > 1:
            return [t for f in owners for t in by_function[f] if missed(t) and not waiting(t)]
    return []


def _count(n: float, noun: str) -> str:
    return f"{points(n)} {noun}{'' if n == 1 else 's'}"


def cost_text(diagnosis: Diagnosis) -> str:
    """`cost 8 tests, 12 points`."""
    return (f"cost {_count(len(diagnosis.tests), 'test')}, "
            f"{_count(diagnosis.lost, 'point')}")


def diagnosis_text(diagnosis: Diagnosis) -> str:
    """One line of a diagnosis: `1. <the mistake> — cost 8 tests, 12 points`."""
    return f"{diagnosis.number}. {diagnosis.text} — {cost_text(diagnosis)}"


def detail_message(test: GradedTest, diagnoses: Sequence[Diagnosis]) -> str:
    """The test's message in its details: what one of the diagnoses above says is referred
    to, not said again (`softmax(X) for X (3, 5): see 1 above`)."""
    message = test["message"] or "(no message)"
    diagnosis = next((d for d in diagnoses if any(t is test for t in d.tests)), None)
    if diagnosis is None:
        return message
    reference = f"see {diagnosis.number} above"
    if any(t is test for t in diagnosis.likely):
        return f"{message} (likely the mistake of {diagnosis.number} above)"
    if not diagnosis.recognised:
        return f"the same message as {diagnosis.number} above"
    if message.endswith(diagnosis.text):
        return message[:len(message) - len(diagnosis.text)] + reference
    return message


# -- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def _md(text: str) -> str:
    """One line of literal text: Markdown and HTML syntax in it is shown, not interpreted."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_block(text: str) -> str:
    """Verbatim text in a fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def to_markdown(report: Report) -> str:
    """The report as Markdown: overview table, forbidden calls, then a section per topic."""
    parts = [
        f"# Grade report: {_md(report['submission'])}",
        f"**Total: {_md(total_text(report))}** · kit {_md(report['kit_version'])} · "
        f"graded {_md(report['graded_at'])}",
        _md_overview(report),
    ]
    if late_texts(report):
        parts.append("\n".join(["## Late", "", *(f"- {_md(t)}" for t in late_texts(report))]))
    if report.get("flags"):
        parts.append(_md_flags(report))
    if not_graded_texts(report):
        parts.append(_md_not_graded(report))
    parts += [_md_topic(t) for t in report["topics"]]
    parts += ["---", *filter(None, [_md(not_counted_text(report))]), _md(isolation_text(report))]
    if env := environment_text(report):
        parts.append("  \n".join(map(_md, env)))
    return "\n\n".join(parts) + "\n"


def _md_overview(report: Report) -> str:
    rows = ["| Topic | Score | Progress |", "| --- | ---: | --- |"]
    rows += [f"| {_md(t['title'])} | {score_of(t)} | {text_bar(fraction(t))} |"
             for t in report["topics"]]
    return "\n".join(rows)


def _md_flags(report: Report) -> str:
    lines = ["## Forbidden calls", ""]
    lines += [f"- {_md(flag_text(f))}" for f in merged_flags(report)]
    return "\n".join([*lines, "", _md(FLAGS_ADVICE)])


def _md_not_graded(report: Report) -> str:
    lines = [f"- {_md(t)}" for t in not_graded_texts(report)]
    return "\n".join(["## Files not graded", "", *lines])


def _md_topic(topic: TopicEntry) -> str:
    parts = [f"## {_md(topic['title'])}: {score_of(topic)}",
             f"Topic {_md(topic['name'])} · {text_bar(fraction(topic))}"]
    for fix in function_fixes(topic):
        parts.append(f"### To fix: {_md(fix.title)} · {fix.score_text}")
        if fix.diagnoses:
            parts.append("\n".join(f"{d.number}. **{_md(d.text)}** — {cost_text(d)}"
                                    for d in fix.diagnoses))
        parts += [_md_test(t, detail_message(t, fix.diagnoses)) for t in fix.tests]
    if todo := not_written(topic):
        parts += ["### Not written yet", _md_todo(todo)]
    if ok := passed(topic):
        parts.append(f"Passed: {len(ok)} of {len(topic['tests'])} tests.")
    parts += [_md(text) for text in served_texts(topic)]
    return "\n\n".join(parts)


def _md_test(test: GradedTest, message: str) -> str:
    lines = [f"#### {_md(display_name(test))} · {_md(label(test))} · {score_of(test)}",
             _md_block(message)]
    if test["hint"]:
        lines.append(f"*What it checks:* {_md(test['hint'])}")
    if test.get("output"):
        lines += [f"*{PRINTED}:*", _md_block(test.get("output", ""))]
    return "\n\n".join(lines)


def _md_todo(tests: list[GradedTest]) -> str:
    lines = [f"- {_md(m)}" for m in unique(t["message"] for t in tests)]
    lines += ["", f"{waiting_text(tests)}; once written, they check:", ""]
    lines += [f"- {_md(t['name'])}: {_md(t['hint'])}" if t["hint"] else f"- {_md(t['name'])}"
              for t in tests]
    return "\n".join(lines)


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body { font: 16px/1.5 system-ui, sans-serif; color: #1d1d1f; background: #f6f6f4; margin: 0; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { margin-bottom: .25rem; } h2 { margin: 0; font-size: 1.25rem; }
.meta, .name, .isolation { color: #666; font-size: .9rem; }
.total { font-size: 1.5rem; font-weight: 600; }
section { background: #fff; border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0;
  box-shadow: 0 1px 3px rgba(0, 0, 0, .08); }
section > header { display: flex; justify-content: space-between; align-items: baseline; }
.score { font-weight: 600; white-space: nowrap; }
.bar { background: #e4e4e0; border-radius: 4px; height: .6rem; margin: .5rem 0; }
.fill { height: 100%; border-radius: 4px; }
.done { background: #2e7d32; } .partial { background: #e6a100; } .none { background: #b0b0aa; }
article { border-left: 4px solid #c0392b; padding: .25rem .75rem; margin: .75rem 0; }
""" + " ".join(f"article.{name} {{ border-color: {info.html_border}; }}"
               for name, info in OUTCOMES.items() if info.html_border) + """
h4 { margin: 0; font-size: 1rem; }
.badge, .tag, .pts { font-size: .8rem; border-radius: 3px; padding: 0 .35rem; }
.badge { background: #fbe9e7; color: #8e2a1c; } .tag { background: #eee; color: #555; }
.pts { color: #555; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f3f0; padding: .5rem;
  border-radius: 4px; font-size: .85rem; }
.hint { color: #444; font-size: .9rem; margin: .25rem 0; }
.todo { background: #eef4fb; border-radius: 6px; padding: .5rem .75rem; margin: .75rem 0; }
h3 .pts { font-weight: normal; }
.diagnosis { background: #fff8e1; border-radius: 6px; padding: .5rem .75rem; margin: .5rem 0;
  list-style: none; } .diagnosis .cost { color: #555; white-space: nowrap; }
.flags { border: 2px solid #d35400; } .not-graded { border: 2px solid #e6a100; }
.late { border: 2px solid #7b1fa2; } .curves svg { max-width: 100%; height: auto; }
.environment { color: #666; font-size: .8rem; }
details summary { cursor: pointer; color: #444; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def to_html(report: Report) -> str:
    """The report as one self-contained page: inline CSS, no script, nothing fetched."""
    body = [_html_header(report)]
    if late_texts(report):
        items = "".join(f"<li>{_e(t)}</li>" for t in late_texts(report))
        body.append(f'<section class="late"><h2>Late</h2><ul>{items}</ul></section>')
    if report.get("flags"):
        body.append(_html_flags(report))
    if not_graded_texts(report):
        body.append(_html_not_graded(report))
    body += [_html_topic(t) for t in report["topics"]]
    if not_counted_text(report):
        body.append(f'<p class="isolation">{_e(not_counted_text(report))}</p>')
    body.append(f'<p class="isolation">{_e(isolation_text(report))}</p>')
    if env := environment_text(report):
        body.append('<p class="environment">' + "<br>".join(map(_e, env)) + "</p>")
    return "\n".join([
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Grade report: {_e(report['submission'])}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body><main>",
        *body,
        "</main></body>",
        "</html>",
    ]) + "\n"


def _html_header(report: Report) -> str:
    return (f"<header><h1>Grade report: {_e(report['submission'])}</h1>"
            f'<p class="meta">kit {_e(report["kit_version"])} · graded '
            f'{_e(report["graded_at"])}</p>'
            f'<p class="total">Total: {_e(total_text(report))}</p>'
            f'<p class="summary">{_e(summary_line(report))}</p></header>')


def _html_bar(share: float) -> str:
    kind = "done" if share >= 1 else "partial" if share > 0 else "none"
    return (f'<div class="bar" role="img" aria-label="{share:.0%} of the points">'
            f'<div class="fill {kind}" style="width: {share * 100:.1f}%"></div></div>')


def _html_flags(report: Report) -> str:
    items = "".join(f"<li>{_e(flag_text(f))}</li>" for f in merged_flags(report))
    return (f'<section class="flags"><h2>Forbidden calls</h2><ul>{items}</ul>'
            f"<p>{_e(FLAGS_ADVICE)}</p></section>")


def _html_not_graded(report: Report) -> str:
    items = "".join(f"<li>{_e(t)}</li>" for t in not_graded_texts(report))
    return f'<section class="not-graded"><h2>Files not graded</h2><ul>{items}</ul></section>'


def _html_topic(topic: TopicEntry) -> str:
    parts = [f'<section class="topic" id="topic-{_e(topic["name"])}">',
             f'<header><h2>{_e(topic["title"])}</h2>'
             f'<span class="score">{_e(score_of(topic))}</span></header>',
             _html_bar(fraction(topic)),
             f'<p class="name">topic <code>{_e(topic["name"])}</code></p>']
    parts += [_html_curve(t["curve"]) for t in topic["tests"] if "curve" in t]
    for fix in function_fixes(topic):
        parts.append(f"<h3>To fix: <code>{_e(fix.title)}</code> "
                     f'<span class="pts">{_e(fix.score_text)}</span></h3>')
        if fix.diagnoses:
            items = "".join(f"<li>{_e(d.number)}. <strong>{_e(d.text)}</strong> "
                            f'<span class="cost">— {_e(cost_text(d))}</span></li>'
                            for d in fix.diagnoses)
            parts.append(f'<ul class="diagnosis">{items}</ul>')
        parts += [_html_test(t, detail_message(t, fix.diagnoses)) for t in fix.tests]
    if todo := not_written(topic):
        parts.append(_html_todo(todo))
    if ok := passed(topic):
        names = "".join(f"<li><code>{_e(t['name'])}</code></li>" for t in ok)
        parts.append(f"<details><summary>Passed: {len(ok)} of {len(topic['tests'])} tests"
                     f"</summary><ul>{names}</ul></details>")
    parts += [f'<p class="hint">{_e(text)}</p>' for text in served_texts(topic)]
    parts.append("</section>")
    return "\n".join(parts)


def _html_test(test: GradedTest, message: str) -> str:
    hidden = ' <span class="tag">hidden</span>' if test["visibility"] == "hidden" else ""
    hint = (f'<p class="hint"><strong>What it checks:</strong> {_e(test["hint"])}</p>'
            if test["hint"] else "")
    output = (f'<p class="hint"><strong>{PRINTED}:</strong></p><pre>{_e(test["output"])}</pre>'
              if test.get("output") else "")
    return (f'<article class="{_e(test["outcome"])}"><h4><code>{_e(test["name"])}</code> '
            f'<span class="badge">{_e(label(test))}</span>{hidden} '
            f'<span class="pts">{_e(score_of(test))}</span></h4>'
            f"<pre>{_e(message)}</pre>{hint}{output}</article>")


def _html_curve(curve: Curve) -> str:
    return (f'<figure class="curves">{curve_svg(curve)}<figcaption>{_e(curve["title"])}: '
            "yours as your code reported it (solid) and the reference's, trained by the grader "
            "from the same starting point on the same data (dashed).</figcaption></figure>")


def curve_svg(curve: Curve) -> str:
    """The curve's series side by side, the student's (solid) beside the reference's (dashed),
    as inline SVG (`grader.report.svgchart`)."""
    return line_charts([
        (s["name"], curve["x_label"], curve["x"],
         [("yours", CURVE_COLORS[0], False, s["yours"]),
          ("reference", CURVE_COLORS[1], True, s["reference"])])
        for s in curve["series"]])


def _html_todo(tests: list[GradedTest]) -> str:
    messages = "".join(f"<p>{_e(m)}</p>" for m in unique(t["message"] for t in tests))
    items = "".join(_html_waiting_item(t) for t in tests)
    return (f'<div class="todo"><h3>Not written yet</h3>{messages}<details><summary>'
            f"{_e(waiting_text(tests))}: what they check</summary><ul>{items}</ul></details>"
            "</div>")


def _html_waiting_item(test: GradedTest) -> str:
    hint = f": {_e(test['hint'])}" if test["hint"] else ""
    return f"<li><code>{_e(test['name'])}</code>{hint}</li>"


# -- Gradescope ------------------------------------------------------------------------------


@functools.cache
def gradescope_visibility() -> dict[str, GradescopeVisibility]:
    """GRADESCOPE_VISIBILITY with what course.toml's [gradescope] sets (checked)."""
    given = tomllib.loads(COURSE_FILE.read_text()).get("gradescope", {})
    chosen = {**GRADESCOPE_VISIBILITY}
    for key, value in given.items():
        if key not in GRADESCOPE_VISIBILITY or value not in GRADESCOPE_VISIBILITIES:
            raise ValueError(f"[gradescope] {key} = {value!r} in {COURSE_FILE}: the keys are "
                             f"{', '.join(GRADESCOPE_VISIBILITY)}, each one of "
                             f"{', '.join(GRADESCOPE_VISIBILITIES)}")
        chosen[key] = value
    return chosen


def to_gradescope(report: Report) -> GradescopeResults:
    """Gradescope's results.json (its autograder specification): a test per test, numbered
    topic.test and tagged with its topic and suite; visibility as course.toml says (hidden
    tests show once grades are published); the score after any late penalty."""
    seen = gradescope_visibility()
    tests = [_gradescope_test(topic, t, f"{i}.{j}", seen[t["visibility"]])
             for i, topic in enumerate(report["topics"], 1)
             for j, t in enumerate(topic["tests"], 1)]
    seconds = sum(t["duration_s"] for topic in report["topics"] for t in topic["tests"])
    return {"score": float(final_score(report)), "execution_time": math.ceil(seconds),
            "output": _gradescope_summary(report), "visibility": seen["result"],
            "stdout_visibility": seen["stdout"], "tests": tests}


def _gradescope_test(topic: TopicEntry, test: GradedTest, number: str,
                     visibility: GradescopeVisibility) -> GradescopeTest:
    checks = f"What it checks: {test['hint']}" if test["hint"] else ""
    if not missed(test):
        verdict = "passed"
    elif waiting(test):
        verdict = test["message"] or label(test)
    else:
        verdict = f"{label(test)}: {test['message']}"
    printed = f"{PRINTED}:\n{test['output']}" if test.get("output") else ""
    output = "\n\n".join(filter(None, [verdict, checks, printed]))
    return {
        "name": f"{topic['name']}: {test['name']}",
        "number": number,
        "score": float(test["score"]),
        "max_score": float(test["max_score"]),
        "status": "failed" if missed(test) else "passed",
        "output": output,
        "visibility": visibility,
        "tags": [topic["name"], test["visibility"]],
    }


def _gradescope_summary(report: Report) -> str:
    lines = [summary_line(report)]
    waiting = sum(len(not_written(t)) for t in report["topics"])
    if waiting:
        lines.append(f"{waiting} tests wait for functions you have not written yet.")
    lines += [f"{fix.title}: {d.text} — {cost_text(d)}" for topic in report["topics"]
              for fix in function_fixes(topic) for d in fix.diagnoses]
    lines += [f"Forbidden: {flag_text(f)}" for f in merged_flags(report)]
    lines += [f"Not graded: {t}" for t in not_graded_texts(report)]
    lines += [f"Late: {t}" for t in late_texts(report)]
    return "\n".join(filter(None, [*lines, not_counted_text(report), isolation_text(report),
                                    *environment_text(report)]))


# -- writing ---------------------------------------------------------------------------------


def write_reports(report: Report, out_dir: str | Path) -> list[Path]:
    """Write report.md, report.html, results.json and then report.json into `out_dir`.

    Everything is rendered first and a stale report.json removed before anything is written,
    so report.json exists only beside a complete, matching set.
    """
    out = Path(out_dir)
    markdown, page, gradescope = to_markdown(report), to_html(report), to_gradescope(report)
    final = out / "report.json"
    if final.exists():
        final.unlink()
        fsync_dir(out)
    return [write_atomic(out / "report.md", markdown),
            write_atomic(out / "report.html", page),
            write_json_atomic(out / "results.json", gradescope),
            write_json_atomic(final, report)]

"""The grade in a terminal: a row per topic, the tests that lost points by function, each
function's diagnosis (every recognised mistake or shared message once, with what it cost)
before its tests and what went wrong in each, then forbidden calls, any late penalty, the total
and, last, where it was graded. Student
text is printed as plain Text, never as rich markup, and the output stays readable in CI logs
where stdout is not a terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.report.formats import (
    FLAGS_ADVICE,
    PRINTED,
    FunctionFix,
    detail_message,
    diagnosis_text,
    display_name,
    environment_text,
    flag_text,
    fraction,
    function_fixes,
    isolation_text,
    label,
    late_texts,
    merged_flags,
    not_counted_text,
    not_graded_texts,
    not_written,
    score_of,
    served_texts,
    summary_line,
    text_bar,
    total_text,
    unique,
    waiting_text,
)
from grader.report.schema import OUTCOMES, GradedTest, Report

__all__ = ["default_console", "render_table", "summary_line"]

FALLBACK_WIDTH = 100


def default_console() -> Console:
    """A console on stdout, 100 columns wide when stdout is not a terminal (CI logs, pipes)."""
    console = Console()
    return console if console.is_terminal else Console(width=FALLBACK_WIDTH)


def render_table(report: Report, console: Console | None = None) -> None:
    """Print the report: topics, tests to fix, functions not written yet, flags, files not
    graded, total."""
    console = console or default_console()
    console.print(_topics_table(report, console))
    if fixes := [fix for topic in report["topics"] for fix in function_fixes(topic)]:
        console.print(Text("To fix", style="bold"))
        for fix in fixes:
            console.print(_diagnosis_text(fix))
            console.print(_fix_table(fix))
    for text in (t for topic in report["topics"] for t in served_texts(topic)):
        console.print(Text(text, style="green"))
    if todo := _not_written_text(report):
        console.print(todo, end="")
    if report.get("flags"):
        console.print(_flags_text(report))
    if not_graded_texts(report):
        console.print(_not_graded_text(report))
    for late in late_texts(report):
        console.print(Text(f"Late: {late}", style="magenta"))
    console.print(Text(f"Total {total_text(report)}", style="bold"))
    if not_counted_text(report):
        console.print(Text(not_counted_text(report), style="dim"))
    console.print(Text(isolation_text(report), style="dim"))
    for line in environment_text(report):
        console.print(Text(line, style="dim"))


def _bar(share: float, console: Console) -> Text:
    """A text bar; plain ASCII where the console cannot encode block characters."""
    full, empty = ("#", "-") if console.options.ascii_only else ("█", "░")
    style = "green" if share >= 1 else "yellow" if share > 0 else "dim"
    return Text(text_bar(share, full=full, empty=empty), style=style)


def _topics_table(report: Report, console: Console) -> Table:
    table = Table(title=Text(f"Grade report: {report['submission']}", style="bold"),
                  title_justify="left")
    table.add_column("Topic")
    table.add_column("Score", justify="right")
    table.add_column("Progress", no_wrap=True)
    for topic in report["topics"]:
        name = Text.assemble(topic["title"], ("  " + topic["name"], "dim"))
        table.add_row(name, Text(score_of(topic)), _bar(fraction(topic), console))
    return table


def _diagnosis_text(fix: FunctionFix) -> Text:
    """The function and its score, then each diagnosis on a line of its own."""
    text = Text.assemble((fix.title, "bold"), "  ", fix.score_text)
    for diagnosis in fix.diagnoses:
        text.append("\n  ")
        text.append(diagnosis_text(diagnosis), style="yellow")
    return text


def _fix_table(fix: FunctionFix) -> Table:
    table = Table(show_lines=True)
    for column in ("Test", "Outcome", "Points"):
        table.add_column(column, overflow="fold")
    table.add_column("What went wrong (and what the test checks)", ratio=1)
    for test in fix.tests:
        table.add_row(Text(display_name(test)),
                      Text(label(test), style=OUTCOMES[test["outcome"]].style),
                      Text(score_of(test)),
                      _what_went_wrong(test, detail_message(test, fix.diagnoses)))
    return table


def _what_went_wrong(test: GradedTest, message: str) -> Text:
    text = Text(message)
    if test["hint"]:
        text.append("\n" + test["hint"], style="dim")
    if test.get("output"):
        text.append(f"\n{PRINTED}:\n{_head(test.get('output', ''))}", style="italic")
    return text


SHOWN_LINES = 5  # of what a test's code printed, in the terminal (the reports keep more)


def _head(text: str) -> str:
    """The first SHOWN_LINES lines of `text`, saying how many more the reports hold."""
    lines = text.rstrip("\n").split("\n")
    more = len(lines) - SHOWN_LINES
    return "\n".join(lines[:SHOWN_LINES]) + (f"\n... {more} more lines in report.md"
                                             if more > 0 else "")


def _not_written_text(report: Report) -> Text | None:
    """One calm line per topic with unwritten functions, instead of a red row per test."""
    waiting = [(topic, tests) for topic in report["topics"] if (tests := not_written(topic))]
    if not waiting:
        return None
    text = Text("Not written yet\n", style="bold cyan")
    for topic, tests in waiting:
        messages = " ".join(unique(t["message"] for t in tests))
        text.append(f"  {topic['name']}: {messages}")
        text.append(f" {waiting_text(tests)}.\n", style="dim")
    return text


def _flags_text(report: Report) -> Text:
    text = Text("Forbidden calls\n", style="bold red")
    for flag in merged_flags(report):
        text.append(f"  {flag_text(flag)}\n")
    text.append(FLAGS_ADVICE, style="dim")
    return text


def _not_graded_text(report: Report) -> Text:
    text = Text("Files not graded", style="bold yellow")
    for line in not_graded_texts(report):
        text.append(f"\n  {line}")
    return text

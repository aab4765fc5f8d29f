"""`python -m grader` (also `torchdrill`): the command line, argparse only. `grade` is every
kit's command; `batch`, `release` and `sync` are the instructor's (`grader.instructor.commands`)
and exist only where the instructor code does, never in the student kit."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grader.course import KIT_ROOT, Course, load_course
from grader.failures import GraderError
from grader.grade import SUITES, default_suite, grade, grading_budget
from grader.report.table import render_table
from grader.sandbox.client import Template


def has_instructor_commands() -> bool:
    """The instructor's code is beside this module (the repository, not the student kit)."""
    return (Path(__file__).parent / "instructor" / "commands.py").is_file()


def add_grading_options(p: argparse.ArgumentParser) -> None:
    """What any command that grades takes: topics, suite, time limits, a -k filter."""
    p.add_argument("--topics", help="comma-separated topics (default: all)")
    p.add_argument("--suite", choices=SUITES, help="public, hidden or all (default: all "
                   "where tests/hidden exists)")
    p.add_argument("--call-timeout", type=float,
                   help="seconds one call into student code may take, instead of each "
                   "test's budget from the reference's time (default: course.toml)")
    p.add_argument("--student-timeout", type=float, metavar="SECONDS",
                   help="seconds grading one submission may take in all; past them it is "
                   "stopped and the report says so (default: course.toml grading_timeout_s; "
                   "grade --in-process: none)")
    p.add_argument("-k", dest="keyword", metavar="EXPR",
                   help="only tests whose names match EXPR, as pytest -k (e.g. logsumexp)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one submission (a folder of <topic>.py files)")
    g.add_argument("path", nargs="?", default=str(KIT_ROOT / "exercises"))
    add_grading_options(g)
    g.add_argument("--out", help="where to write the reports (default: grading/<name>)")
    g.add_argument("--in-process", action="store_true",
                   help="run your code in this process, for a debugger (no sandbox)")
    g.add_argument("-v", "--verbose", action="store_true", help="show pytest's progress")
    # Also on a busy machine: each session is one more process in the scheduler's fair share
    # (`make bench`: two sessions beside two CPU-bound processes were faster than one).
    g.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                   help="test sessions at once, each on a share of the topics in a process of "
                   "its own (default: the cores this process may run on)")
    n = sub.add_parser("notebook", help="open a topic's exercise as a Jupyter notebook")
    n.add_argument("topic")
    n.add_argument("--folder", default=str(KIT_ROOT / "notebooks"),
                   help="where the notebooks are kept (default: notebooks/)")
    n.add_argument("--no-open", action="store_true", help="write it, do not start Jupyter")
    if has_instructor_commands():
        from grader.instructor import commands  # only here: a grade must not wait for it

        commands.add_parsers(sub, add_grading_options)
    return p


def course_of(args: argparse.Namespace) -> tuple[Course, list[str] | None]:
    """course.toml with the command's call timeout, and the topics asked for (checked)."""
    course = load_course()
    if args.call_timeout:
        course = course.with_call_timeout(args.call_timeout)
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else None
    try:
        for t in topics or []:
            course.topic(t)
    except KeyError as e:  # a usage error, said as argparse says one
        print(f"python -m grader {args.command}: error: {e.args[0]}", file=sys.stderr)
        raise SystemExit(2) from None
    return course, topics


def main(argv: list[str] | None = None, template: Template | None = None) -> int:
    """The command line; `template`: a worker template already started, for `grade`."""
    args = _parser().parse_args(argv)
    if args.command == "notebook":
        return notebook(args)
    if args.command != "grade":
        from grader.instructor import commands

        return commands.run(args, course_of)
    course, topics = course_of(args)
    path = Path(args.path)
    out = Path(args.out) if args.out else Path("grading") / path.resolve().name
    suite = args.suite or default_suite()
    timeout = None if args.in_process else grading_budget(course, args.student_timeout)
    try:
        report = grade(path, topics, suite, out, args.in_process, template=template,
                       course=course, verbose=args.verbose, keyword=args.keyword,
                       timeout_s=timeout, jobs=max(1, args.jobs))
    except GraderError as e:
        print(f"grading {path} stopped: {e}", file=sys.stderr)
        return 3
    render_table(report)
    print(f"reports written to {out}/ (report.json, report.md, report.html, results.json)")
    if suite == "public":
        print("Only the public tests ran here; the hidden tests will count too when your "
              "instructor grades.")
    return 0


def notebook(args: argparse.Namespace) -> int:
    """`notebook TOPIC`: the topic's exercise as `notebooks/<topic>.ipynb`, written from its
    stub the first time only (never over a student's notebook), then opened in Jupyter with
    this Python, whose kernel can import the grader its cells of checks call."""
    import json

    from grader.notebooks import student_notebook

    course, _ = course_of(argparse.Namespace(command="notebook", call_timeout=None,
                                             topics=args.topic))
    path = Path(args.folder) / f"{args.topic}.ipynb"
    if path.exists():
        print(f"{path} exists: your work in it is kept as it is")
    else:
        stub = (KIT_ROOT / "exercises" / f"{args.topic}.py").read_text()
        path.parent.mkdir(parents=True, exist_ok=True)
        notebook = student_notebook(args.topic, stub, course.topic(args.topic).given)
        path.write_text(json.dumps(notebook, indent=1) + "\n")
        print(f"wrote {path}: the notebook of exercises/{args.topic}.py (that file is "
              "separate: grade one or the other)")
    if args.no_open:
        return 0
    os.execv(sys.executable, [sys.executable, "-m", "notebook", str(path)])

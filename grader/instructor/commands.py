"""The instructor's commands of `python -m grader`: `batch` (a class), `export` (the gradebook
for Canvas or Moodle), `gradescope` (the autograder zip), `release` (the student kit and the
nbgrader course), `nbgrader` (nbgrader itself on a released course, with no environment
activated) and `sync` (exercises/ from solutions/). `grader.cli` adds them where this package
exists; the student kit leaves it out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from grader.course import KIT_ROOT, Course, load_course

CourseOf = Callable[[argparse.Namespace], tuple[Course, "list[str] | None"]]


def add_parsers(sub: argparse._SubParsersAction,
                add_grading_options: Callable[[argparse.ArgumentParser], None]) -> None:
    b = sub.add_parser("batch", help="grade every student in DIR (a sub-folder or .zip each)")
    b.add_argument("dir")
    b.add_argument("--out", required=True, help="each student's reports go to "
                   "OUT/students/<student>/, the gradebook and class page to OUT/")
    add_grading_options(b)
    b.add_argument("--jobs", type=int, help="submissions graded at once (default: all cores)")
    b.add_argument("--executor", choices=("local", "dask"), default="local")
    b.add_argument("--scheduler", help="Dask scheduler address, with --executor dask")
    b.add_argument("--roster", help="the class roster CSV (student, LMS identities, "
                   "extension_hours): extensions of course.toml's [deadlines]")
    b.add_argument("--times", help="a CSV of submission times (student, topic, submitted_at "
                   "in ISO 8601 with a UTC offset), instead of nbgrader's timestamp.txt")
    e = sub.add_parser("export", help="the gradebook as a Canvas or Moodle grade import CSV")
    lms = e.add_mutually_exclusive_group(required=True)
    lms.add_argument("--canvas", action="store_const", const="canvas", dest="lms")
    lms.add_argument("--moodle", action="store_const", const="moodle", dest="lms")
    e.add_argument("--roster", required=True, help="the class roster CSV: each student's "
                   "submission id and LMS identities")
    e.add_argument("--gradebook", default="grading/class/gradebook.csv",
                   help="gradebook.csv of a batch (default: grading/class/gradebook.csv)")
    e.add_argument("--out", help="the CSV to write (default: canvas.csv or moodle.csv beside "
                   "the gradebook)")
    e.add_argument("--moodle-id", choices=("email", "idnumber", "username"),
                   help="the roster column Moodle identifies users by (default: the first "
                   "the roster has)")
    g = sub.add_parser("gradescope", help="write Gradescope's autograder zip")
    g.add_argument("--out", default="autograder.zip")
    g.add_argument("--topics", help="comma-separated topics it grades (default: all), e.g. "
                   "one Gradescope assignment per topic")
    r = sub.add_parser("release", help="write the student kit and the nbgrader course")
    r.add_argument("--out", default="release", help="folder to write (default: release/)")
    n = sub.add_parser("nbgrader", help="run nbgrader on a released course with this Python "
                       "(no environment to activate), e.g. nbgrader generate_assignment softmax",
                       description="Runs `nbgrader ARGS` in the course folder with this "
                       "Python's bin/ on PATH and the course's own Jupyter configuration.")
    n.add_argument("--course", metavar="DIR", help="the nbgrader course folder (default: this "
                   "folder when it holds nbgrader_config.py, else the kit's release/nbgrader)")
    n.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="nbgrader's command and its arguments")
    s = sub.add_parser("sync", help="regenerate exercises/ from solutions/ and measure the "
                       "reference's time per test (tests/*/reference_times.json)")
    s.add_argument("--check", action="store_true", help="fail if exercises/ is out of date or "
                   "a test has no reference time")
    s.add_argument("--times", action="store_true", help="measure the reference's times again "
                   "(done anyway for tests that have none)")


def run(args: argparse.Namespace, course_of: CourseOf) -> int:
    """Run the instructor's command `args.command`; the exit status."""
    if args.command == "sync":
        return _sync(args.check, args.times)
    if args.command == "release":
        from grader.instructor.release import release

        release(Path(args.out))
        return 0
    if args.command == "nbgrader":
        return _nbgrader(args.course, args.args)
    if args.command == "export":
        return _export(args)
    if args.command == "gradescope":
        from grader.instructor.gradescope import build_autograder

        topics = [t.strip() for t in args.topics.split(",")] if args.topics else None
        try:
            print(f"wrote {build_autograder(Path(args.out), topics)}")
        except KeyError as e:
            print(f"python -m grader gradescope: error: {e.args[0]}", file=sys.stderr)
            return 2
        return 0
    if args.executor == "dask" and not args.scheduler:
        print("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.1:8786)",
              file=sys.stderr)
        return 2
    from grader.instructor.batch import gpu_refusal, run_batch

    course, topics = course_of(args)
    refusal = gpu_refusal(course, topics, args.executor)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    try:
        failed = run_batch(Path(args.dir), Path(args.out), course, topics, args.suite,
                           args.jobs, args.executor, args.scheduler, args.call_timeout,
                           keyword=args.keyword, student_timeout=args.student_timeout,
                           roster=Path(args.roster) if args.roster else None,
                           times=Path(args.times) if args.times else None)
    except (ValueError, OSError) as e:  # a deadline, roster or times file that cannot be used
        print(f"python -m grader batch: error: {e}", file=sys.stderr)
        return 2
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    """`export`: the gradebook for an LMS; who is left out goes beside it and is counted."""
    from grader.course import load_course
    from grader.instructor.export import export, read_gradebook, write_export
    from grader.instructor.roster import read_roster

    gradebook = Path(args.gradebook)
    out = Path(args.out) if args.out else gradebook.with_name(f"{args.lms}.csv")
    try:
        result = export(read_gradebook(gradebook), read_roster(Path(args.roster)),
                        load_course(), args.lms, args.moodle_id)
    except (ValueError, OSError) as e:
        print(f"python -m grader export: error: {e}", file=sys.stderr)
        return 2
    unmatched = write_export(result, out)
    print(f"wrote {out}")
    if unmatched:
        print(f"{len(result.unmatched)} not in it (no roster entry, no LMS identity, or no "
              f"submission): listed in {unmatched}", file=sys.stderr)
    return 0


def course_folder(given: str | None) -> Path:
    """The nbgrader course to run on: `given`, else this folder when it holds
    nbgrader_config.py, else the kit's release/nbgrader."""
    if given:
        return Path(given)
    here = Path.cwd()
    return here if (here / "nbgrader_config.py").is_file() else KIT_ROOT / "release" / "nbgrader"


def _nbgrader(given: str | None, args: list[str]) -> int:
    from grader.instructor.nbgrader_course import run_nbgrader

    course = course_folder(given).resolve()
    if not (course / "nbgrader_config.py").is_file():
        print(f"{course} is not an nbgrader course (no nbgrader_config.py): run `make release` "
              "(or `python -m grader release`) first, or name one with --course DIR.",
              file=sys.stderr)
        return 2
    args = args[1:] if args[:1] == ["--"] else args
    return run_nbgrader(course, *args, capture=False).returncode


def _sync(check: bool, times: bool) -> int:
    import os

    from grader.budgets import unmeasured
    from grader.instructor.sync import (
        STRICT_ENV,
        measure_reference,
        student_work_advice,
        suite_files,
        sync,
        sync_module_attributes,
        write_times,
    )

    result = sync(check=check)
    missing = unmeasured(suite_files())
    names = load_course().names
    orphans = [f"tests/{f.parent.name}/{f.name}" for f in suite_files()
               if f.stem.removeprefix("test_") not in names]
    if orphans:  # never measured (no grade runs them): a topic missing from course.toml
        print("test files of no topic in course.toml: " + ", ".join(orphans), file=sys.stderr)
        return 1
    stale = sync_module_attributes(check)
    if result.student_work:
        print(student_work_advice(result.student_work), file=sys.stderr)
    strict = bool(os.environ.get(STRICT_ENV)) and bool(result.student_work)
    if check and (result.drift or missing or stale or strict):
        if result.drift:
            print("exercises/ is out of date with solutions/: " + ", ".join(result.drift),
                  file=sys.stderr)
        if stale:
            print("grader/scan/module_attributes.json is out of date with course.toml's "
                  "[source] imports or the installed modules", file=sys.stderr)
        if missing:
            print("tests without a reference time: " + ", ".join(missing), file=sys.stderr)
        if strict:
            print(f"{STRICT_ENV} is set (CI): exercises/ must hold the generated stubs only",
                  file=sys.stderr)
        if result.drift or missing or stale:
            print("`python -m grader sync` updates them (it never overwrites your own work in "
                  "exercises/); commit the result.", file=sys.stderr)
        return 1
    print("exercises/ is in sync with solutions/" if not result.drift else
          "regenerated: " + ", ".join(result.drift))
    if stale and not check:
        print("wrote grader/scan/module_attributes.json (what the allowed modules hold)")
    if not check and (times or missing):
        print("measuring the reference's time per test (best on an idle machine)...")
        write_times(measure_reference())
        print("wrote tests/public/reference_times.json and tests/hidden/reference_times.json")
    elif not check and result.drift:
        print("solutions changed: measure their time again on an idle machine with "
              "`python -m grader sync --times`.")
    return 0

"""`make bench`, first part: what `python -m grader grade` costs as a student or instructor
runs it, a whole process each time, in units of a fresh `import torch` timed in the same run.

Each speed-up is shown before and after, in the same run, with the setting that switches it:
- the reference, all topics: one test session at a time (`--jobs 1`) against one per core;
- the same on torch's default threads (course.toml `threads` = the cores) against one thread;
- the same again while two other CPU-bound processes run: one session against the default
  (`--jobs`: one per core, which also takes more of the scheduler's fair share);
- a softmax whose every function loops forever, and one that loops when imported: each test's
  calls limited by the time budget from the reference's measured time (course.toml
  `test_floor_s`, `test_multiplier`) against the per-call limit alone (the course without
  them, as before: `call_timeout_s`, a quarter of it after a timeout). The "before" side is
  timed on one looping function (four take four times as long), and not at all for the
  import, whose every function paid the per-call limit (minutes).
The targets (issue 15) are printed beside the figures; the bench never fails on them. Below
them, the floor of a reference grade on this machine: no grade can end before its worker
template has imported what student code needs (torch, then torch._dynamo and torch.fx's
symbolic shapes, one chain of imports), nor before the cores have run all of its processes'
CPU time (measured from /proc/stat, all processes: run it on an idle machine).
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.course import COURSE_FILE, KIT_ROOT

CORES = len(os.sched_getaffinity(0))
LOOP = "    while True:\n        pass\n"
TARGETS = {"reference": 3.0, "reference, two CPU-bound processes running": 6.0,
           "softmax looping in every function": 4.0}


def looping(source: str, functions: set[str] | None = None) -> str:
    """`source` with an endless loop as the first statement of each top-level function (or
    of those named)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    starts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and (functions is None or node.name in functions):
            first = node.body[0]
            docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            starts.append(first.end_lineno if docstring and first.end_lineno else
                          first.lineno - 1)
    for at in sorted(starts, reverse=True):
        lines.insert(at, LOOP)
    return "".join(lines)


def course_file(folder: Path, name: str, *, threads: int | None = None,
                budgets: bool = True) -> Path:
    """course.toml with another `threads`, or without the per-test budgets."""
    text = COURSE_FILE.read_text()
    if threads is not None:
        text = re.sub(r"(?m)^threads = \d+", f"threads = {threads}", text)
    if not budgets:
        text = re.sub(r"(?m)^test_(floor_s|multiplier) = .*$", "", text)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


TEMPLATE_CHAIN = "import torch._dynamo, torch.fx.experimental.symbolic_shapes"


def busy_cpu_s() -> float | None:
    """Seconds of CPU every process of this machine has used since boot (/proc/stat), or None
    where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def floor_s(chain_s: float, cpu_s: float, cores: int) -> float:
    """The least wall clock a grade can take: its template's chain of imports, or its CPU
    time spread over every core, whichever is longer."""
    return max(chain_s, cpu_s / cores)


def seconds(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=KIT_ROOT, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def grade_s(path: Path, *options: str, course: Path | None = None, out: Path) -> float:
    env = {"TORCHDRILL_COURSE": str(course)} if course else None
    return seconds([sys.executable, "-m", "grader", "grade", str(path), "--out", str(out),
                    *options], env)


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """`processes` other CPU-bound processes running meanwhile."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(processes)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.bench_grade",
                                     description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median)")
    args = parser.parse_args(argv)
    reference = KIT_ROOT / "solutions"
    source = (reference / "softmax.py").read_text()
    with tempfile.TemporaryDirectory(prefix="torchdrill-bench-") as tmp:
        work = Path(tmp)
        out = work / "out"
        loops, import_loop, one_loop = work / "loops", work / "import-loop", work / "one-loop"
        for folder, text in ((loops, looping(source)),
                             (import_loop, "while True:\n    pass\n" + source),
                             (one_loop, looping(source, {"log_softmax"}))):
            folder.mkdir()
            (folder / "softmax.py").write_text(text)
        many_threads = course_file(work, "threads", threads=CORES)
        per_call = course_file(work, "per-call", budgets=False)
        softmax = ("--topics", "softmax")

        def median(fn) -> float:
            return statistics.median(fn() for _ in range(args.runs))

        imports = median(lambda: seconds([sys.executable, "-c", "import torch"]))
        chain = median(lambda: seconds([sys.executable, "-c", TEMPLATE_CHAIN]))
        cpu: list[float] = []

        def timed_reference() -> float:
            before = busy_cpu_s()
            wall = grade_s(reference, out=out)
            if before is not None and (now := busy_cpu_s()) is not None:
                cpu.append(now - before)
            return wall

        after = median(timed_reference)  # the default: one session a core
        rows: list[tuple[str, str, float, str, float]] = [
            ("reference", "one session (--jobs 1)",
             median(lambda: grade_s(reference, "--jobs", "1", out=out)),
             f"{CORES} sessions", after),
            ("reference", f"torch on {CORES} threads",
             median(lambda: grade_s(reference, course=many_threads, out=out)),
             "1 thread", after)]
        with busy(2):  # each session is one more process in the scheduler's fair share
            rows.append(("reference, two CPU-bound processes running", "--jobs 1",
                         median(lambda: grade_s(reference, "--jobs", "1", out=out)),
                         f"{CORES} sessions", median(lambda: grade_s(reference, out=out))))
        rows += [
            ("softmax looping in every function", "per-call limit (1 function)",
             grade_s(one_loop, *softmax, course=per_call, out=out), "test budgets",
             median(lambda: grade_s(loops, *softmax, out=out))),
            ("softmax looping when imported", "(per-call limit: 4 x 25 s)", math.nan,
             "one limit", median(lambda: grade_s(import_loop, *softmax, out=out)))]
    print(f"python -m grader grade, whole process, median of {args.runs} runs, {CORES} cores; "
          f"x: in fresh `import torch`s ({imports:.2f} s)")
    print(f"{'':<44}{'before':<30}{'':>12}  {'after':<14}{'':>12}  target")
    for name, setting_before, before, setting_after, after_s in rows:
        target = TARGETS.get(name) if setting_after != "1 thread" else None
        print(f"{name:<44}{setting_before:<30}{before:>5.1f} s {before / imports:>4.1f}x  "
              f"{setting_after:<14}{after_s:>5.1f} s {after_s / imports:>4.1f}x"
              + (f"  {target:g}x" if target else ""))
    if cpu:
        used = statistics.median(cpu)
        floor = floor_s(chain, used, CORES)
        print(f"floor of a reference grade: {floor:.1f} s, {floor / imports:.1f}x (the "
              f"template's imports {chain:.2f} s; all processes' CPU {used:.1f} s over "
              f"{CORES} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

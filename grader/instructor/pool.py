"""The grader processes of a local `grader batch`, owned by the batch so that nothing
outlives it.

Each grader process is started from the coordinator's main thread and at once asks the kernel
to kill it when the coordinator is gone (PR_SET_PDEATHSIG; then it checks that its parent is
still the coordinator, which may have died before the request). Its worker template dies with
it in turn, and the template's workers with the template: a `kill -9` of the batch leaves no
process behind. A process receives tasks over a socket pair, grades each with
`grader.instructor.batch.grade_task` and answers with the report.

The coordinator keeps a wall-clock budget per task: a task past it has its grader process
killed (its process group, the template with it) and comes back as stopped, with the tests its
run had collected. A grader process that dies is replaced and its task tried once more.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from grader.course import KIT_ROOT
from grader.report.schema import GradedTestRecord, NotCounted, Report
from grader.sandbox.client import STARTUP_TIMEOUT_S

MAX_TRIES = 2  # a task whose grader process dies is tried once more
MAX_FAILED_STARTS = 3  # grader processes that die before serving: the machine is at fault
CLOSE_TIMEOUT_S = 10.0


class PoolFailed(RuntimeError):
    """Grader processes cannot start: nothing can be graded (the grader's fault)."""


@dataclass
class Outcome:
    """What became of one task: its `report`, the `error` that kept it from being graded, or
    `stopped` past its budget, with the tests the run had `planned` and those `not_counted`."""

    task: Any
    report: Report | None = None
    error: str | None = None
    stopped: bool = False
    planned: list[GradedTestRecord] = field(default_factory=list)
    not_counted: list[NotCounted] = field(default_factory=list)


class GraderProcess:
    """One grader process (`python -m grader.instructor.pool`), in its own process group."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.instructor.pool", str(theirs.fileno()),
             str(os.getpid())],
            pass_fds=[theirs.fileno()], cwd=str(KIT_ROOT), stdin=subprocess.DEVNULL,
            process_group=0)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.task: Any = None
        self.since = time.monotonic()  # started, or given its task
        self.planned: list[GradedTestRecord] = []
        self.not_counted: list[NotCounted] = []

    def give(self, task: Any) -> None:
        """Send it a task (a process that just died is found out by the next receive)."""
        with contextlib.suppress(OSError):
            self.conn.send(task)
        self.task, self.since = task, time.monotonic()
        self.planned, self.not_counted = [], []

    def deadline(self, budget_s: float) -> float:
        """When it is overdue: its task's budget, its start-up time, or never while idle."""
        if self.task is not None:
            return self.since + budget_s
        return math.inf if self.ready else self.since + STARTUP_TIMEOUT_S

    def kill(self) -> None:
        """Kill the process group (the template with it) and reap the process."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.conn.close()

    def close(self) -> None:
        """Let the process finish on its own (end of input), or kill it."""
        self.conn.close()
        try:
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()


def run_tasks(tasks: list, jobs: int, budget_s: float) -> Iterator[Outcome]:
    """Grade `tasks` on up to `jobs` grader processes, each task within `budget_s` seconds;
    yield each outcome as it comes. Every process is gone when the iteration ends."""
    todo, tries = deque(tasks), Counter[Any]()
    procs: list[GraderProcess] = []
    failed_starts = 0
    try:
        while todo or any(p.task is not None for p in procs):
            busy = sum(p.task is not None for p in procs)
            for p in [p for p in procs if p.ready and p.task is None and not todo]:
                procs.remove(p)  # no work left for it: free its memory now
                p.close()
            while len(procs) < min(jobs, busy + len(todo)):
                procs.append(GraderProcess())
            for p in procs:
                if p.ready and p.task is None and todo:
                    p.give(todo.popleft())
            soonest = min(p.deadline(budget_s) for p in procs)
            timeout = None if soonest == math.inf else max(0.0, soonest - time.monotonic())
            for conn in wait([p.conn for p in procs], timeout):
                p = next(p for p in procs if p.conn is conn)
                message = _recv(p.conn)
                if message is not None:
                    yield from _receive(p, message)
                    continue
                procs.remove(p)  # it died
                p.kill()
                failed_starts += not p.ready
                if failed_starts >= MAX_FAILED_STARTS:
                    raise PoolFailed("grader processes die as they start (see the output above)")
                if p.task is not None:
                    tries[p.task] += 1
                    if tries[p.task] < MAX_TRIES:
                        todo.appendleft(p.task)
                    else:
                        yield Outcome(p.task, error="its grader process died twice")
            now = time.monotonic()
            for p in [p for p in procs if p.deadline(budget_s) <= now]:
                procs.remove(p)
                p.kill()
                if p.task is None:
                    raise PoolFailed(f"a grader process did not start within "
                                     f"{STARTUP_TIMEOUT_S:.0f} s")
                yield Outcome(p.task, stopped=True, planned=p.planned,
                              not_counted=p.not_counted)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    for p in procs:
        p.close()


def _recv(conn: Connection) -> tuple | None:
    """The next message, or None when the process has died."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _receive(p: GraderProcess, message: tuple) -> Iterator[Outcome]:
    kind, *rest = message
    if kind == "ready":
        p.ready = True
    elif kind == "plan":
        p.planned, p.not_counted = rest
    else:
        task, p.task = p.task, None
        yield Outcome(task, report=rest[0]) if kind == "done" else Outcome(task, error=rest[0])


# -- in a grader process -----------------------------------------------------------------------


def serve(fd: int, coordinator: int) -> None:
    """A grader process: die with the coordinator, start the worker template, then grade
    tasks until the coordinator closes the connection."""
    from grader.sandbox.isolation import die_with_parent

    die_with_parent()
    if os.getppid() != coordinator:  # it died before the request: nobody would kill us
        os._exit(0)
    conn = Connection(fd)
    from grader.instructor.tasks import grade_task, template_once
    from grader.stopped import TestPlan

    template = template_once()
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        plan = TestPlan(lambda p: conn.send(("plan", p.records, p.not_counted)))
        try:
            conn.send(("done", grade_task(task, plan)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))
    template.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))

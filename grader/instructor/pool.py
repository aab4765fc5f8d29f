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

A grader process's memory is capped too (`memory_cap_mb`: course.toml's [limits]
grader_memory_mb, else memory_mb, what a worker may use): whatever a student's worker sends,
the grader holds at most about as much as the worker could. Where the grader runs as root with
a memory cgroup, each grader process moves itself into a cgroup of its own once its worker
template has started (the template and the workers keep theirs), and the coordinator hears of
a kill for memory from the cgroup's events: that task comes back as `out_of_memory` and is not
tried again. A cgroup, not RLIMIT_AS: an address-space limit counts reservations, and torch's
CUDA build reserves far more than it uses once CUDA is initialised. Without a cgroup and
without CUDA, RLIMIT_AS caps the grader process instead (its address space when it started,
3.3 GB with torch 2.14's CUDA build imported, plus the cap), and a MemoryError that ends a task
is reported the same way. The cap is per grader process, which grades one student at a time;
one whose peak memory has grown by half its cap is replaced before its next task.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
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

from grader.course import KIT_ROOT, Course
from grader.report.schema import GradedTestRecord, NotCounted, Report
from grader.sandbox import cgroups
from grader.sandbox.client import STARTUP_TIMEOUT_S

MAX_TRIES = 2  # a task whose grader process dies is tried once more
MAX_FAILED_STARTS = 3  # grader processes that die before serving: the machine is at fault
CLOSE_TIMEOUT_S = 10.0
MAX_GRADER_TASKS = 4096  # threads and processes of a grader process's cgroup (pytest, torch)


class PoolFailed(RuntimeError):
    """Grader processes cannot start: nothing can be graded (the grader's fault)."""


@dataclass
class Outcome:
    """What became of one task: its `report`, the `error` that kept it from being graded,
    `stopped` past its budget or `out_of_memory` past its memory cap, with the tests the run
    had `planned` and those `not_counted`."""

    task: Any
    report: Report | None = None
    error: str | None = None
    stopped: bool = False
    out_of_memory: bool = False
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
        self.worn = False  # it has kept too much of its memory cap: replace it when idle
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

    def kill(self) -> bool:
        """Kill the process group (the template with it) and reap the process; whether the
        kernel had killed it for its memory."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.conn.close()
        return self._release()

    def close(self) -> None:
        """Let the process finish on its own (end of input), or kill it."""
        self.conn.close()
        try:
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
        else:
            self._release()

    def _release(self) -> bool:
        """Remove the dead process's cgroup (if it made one); whether it was killed for its
        memory."""
        name = str(self.proc.pid)
        killed = cgroups.oom_killed(name)
        cgroups.remove(name)
        return killed


def run_tasks(tasks: list, jobs: int, budget_s: float) -> Iterator[Outcome]:
    """Grade `tasks` on up to `jobs` grader processes, each task within `budget_s` seconds;
    yield each outcome as it comes. Every process is gone when the iteration ends."""
    todo, tries = deque(tasks), Counter[Any]()
    procs: list[GraderProcess] = []
    failed_starts = 0
    try:
        while todo or any(p.task is not None for p in procs):
            busy = sum(p.task is not None for p in procs)
            for p in [p for p in procs if p.ready and p.task is None and (p.worn or not todo)]:
                procs.remove(p)  # no work left for it, or worn: free its memory now
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
                out_of_memory = p.kill()
                failed_starts += not p.ready
                if failed_starts >= MAX_FAILED_STARTS:
                    raise PoolFailed("grader processes die as they start (see the output above)")
                if p.task is not None and out_of_memory:  # it would only die again
                    yield _lost(p, out_of_memory=True)
                elif p.task is not None:
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
                yield _lost(p, out_of_memory=False)
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


def _lost(p: GraderProcess, out_of_memory: bool) -> Outcome:
    """The outcome of the task `p` was on when it was stopped past its budget, or killed for
    its memory: the tests its run had planned."""
    return Outcome(p.task, stopped=not out_of_memory, out_of_memory=out_of_memory,
                   planned=p.planned, not_counted=p.not_counted)


def _receive(p: GraderProcess, message: tuple) -> Iterator[Outcome]:
    kind, *rest = message
    if kind == "ready":
        p.ready = True
    elif kind == "plan":
        p.planned, p.not_counted = rest
    elif kind == "out_of_memory":
        outcome, p.task = _lost(p, out_of_memory=True), None
        yield outcome
    else:
        (result, p.worn), (task, p.task) = rest, (p.task, None)
        yield Outcome(task, report=result) if kind == "done" else Outcome(task, error=result)


# -- in a grader process -----------------------------------------------------------------------


def memory_cap_mb(course: Course) -> int:
    """What a grader process may add to its memory while grading one student: course.toml's
    [limits] grader_memory_mb, or memory_mb (a worker's own allowance)."""
    return int(course.limits.get("grader_memory_mb", course.limits["memory_mb"]))


def cap_memory(megabytes: int) -> str:
    """Cap this grader process's memory to `megabytes` more than it holds now; returns how
    ("cgroup", "rlimit", or "none" where neither can: no cgroup, and CUDA reserves address
    space)."""
    if os.geteuid() == 0:
        try:
            if "cgroup-memory" in cgroups.join(str(os.getpid()), megabytes << 20,
                                               MAX_GRADER_TASKS):
                return "cgroup"
        except OSError:
            pass
    import torch

    if torch.cuda.is_available():
        return "none"
    from grader.sandbox.isolation import _vm_size_bytes

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = _vm_size_bytes() + (megabytes << 20)
    resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY
                                            else min(soft, hard), hard))
    return "rlimit"


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10


def serve(fd: int, coordinator: int) -> None:
    """A grader process: die with the coordinator, start the worker template, cap its own
    memory, then grade tasks until the coordinator closes the connection. With each result it
    says whether it is worn: its peak memory has grown by half its cap since it started (the
    pool then starts a fresh one for the next task)."""
    from grader.sandbox.isolation import die_with_parent

    die_with_parent()
    if os.getppid() != coordinator:  # it died before the request: nobody would kill us
        os._exit(0)
    conn = Connection(fd)
    from grader.course import load_course
    from grader.instructor.tasks import grade_task, template_once
    from grader.stopped import TestPlan

    template = template_once()
    cap = memory_cap_mb(load_course()) << 20
    cap_memory(cap >> 20)
    conn.send(("ready",))
    start = _peak_bytes()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        plan = TestPlan(lambda p: conn.send(("plan", p.records, p.not_counted)))
        result: tuple[str, Report | str]
        try:
            result = ("done", grade_task(task, plan))
        except MemoryError:  # under RLIMIT_AS: what it held is gone; start afresh
            conn.send(("out_of_memory",))
            break
        except Exception as e:
            result = ("error", f"{type(e).__name__}: {e}")
        conn.send((*result, _peak_bytes() - start > cap // 2))
    template.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))

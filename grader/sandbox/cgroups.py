"""Aggregate limits for a worker's whole process tree: memory, number of tasks and a CPU share,
with cgroup v2 where the machine has it and the v1 controllers otherwise.

Rlimits bind one process each: four children of 1 GB hold 4 GB under a 3 GB RLIMIT_AS. A
cgroup bounds the tree. Each worker gets its own cgroup, a sibling of every other worker's
under the grader's cgroup, so equal CPU weights mean one student's busy processes cannot starve
a concurrent student. The worker joins its cgroup itself, before any student code runs; the
grader removes it once the worker is dead (`remove`), and sweeps any left by a killed grader.
A batch's grader process caps its own memory with a cgroup of its own the same way
(`grader.instructor.pool`), and its coordinator asks whether it was killed for it (`oom_killed`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "torchdrill-w"
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
MEMORY_EVENTS = {"v2": "memory.events", "memory": "memory.oom_control"}


def _own_paths() -> dict[str, str]:
    """controller ('' for the v2 hierarchy) -> this process's cgroup path in it."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    return paths


def _v2_mount() -> Path | None:
    for candidate in (ROOT, ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


def _parents() -> dict[str, Path]:
    """Where worker cgroups are made: per v1 controller, or {'v2': dir} when the v2 hierarchy
    offers memory, pids and cpu to this process's cgroup."""
    own = _own_paths()
    v2 = _v2_mount()
    if v2 is not None and "" in own:
        parent = v2 / own[""].lstrip("/")
        offered = set((parent / "cgroup.controllers").read_text().split()) \
            if (parent / "cgroup.controllers").exists() else set()
        if {"memory", "pids", "cpu"} <= offered:
            return {"v2": parent}
    return {c: ROOT / c / own[c].lstrip("/") for c in V1_CONTROLLERS
            if c in own and (ROOT / c).is_dir()}


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def join(name: str, memory_bytes: int, max_tasks: int) -> list[str]:
    """Create this worker's cgroup(s), set the limits and move this process in; returns the
    isolation steps in force ('cgroup-memory', 'cgroup-pids', 'cgroup-cpu')."""
    done = []
    parents = _parents()
    if "v2" in parents:
        parent = parents["v2"]
        with contextlib.suppress(OSError):
            _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
        group = parent / f"{PREFIX}{name}"
        group.mkdir(exist_ok=True)
        _write(group / "memory.max", str(memory_bytes))
        with contextlib.suppress(OSError):
            _write(group / "memory.swap.max", "0")
        _write(group / "pids.max", str(max_tasks))
        _write(group / "cpu.weight", "100")
        _write(group / "cgroup.procs", str(os.getpid()))
        return ["cgroup-memory", "cgroup-pids", "cgroup-cpu"]
    settings = {"memory": [("memory.limit_in_bytes", str(memory_bytes))],
                "pids": [("pids.max", str(max_tasks))],
                "cpu": [("cpu.shares", "1024")], "cpuacct": []}
    for controller, parent in parents.items():
        group = parent / f"{PREFIX}{name}"
        try:
            group.mkdir(exist_ok=True)
            for file, value in settings[controller]:
                _write(group / file, value)
            _write(group / "cgroup.procs", str(os.getpid()))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        if controller != "cpuacct":  # accounting (`cpu_clock`), not a limit
            done.append(f"cgroup-{controller}")
    return done


def remove(name: str, wait_s: float = 1.0) -> None:
    """Remove a dead worker's cgroup(s); its processes may take a moment to be reaped."""
    groups = [p / f"{PREFIX}{name}" for p in _parents().values()]
    deadline = time.monotonic() + wait_s
    for group in groups:
        while group.exists():
            try:
                group.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)


class CpuClock:
    """The CPU seconds a worker's cgroup has used, as the kernel counts them (a loaded machine
    does not stretch them as it stretches the wall clock), read through a file kept open: a
    read costs microseconds, once or twice per request."""

    def __init__(self, fd: int, v2: bool):
        self.fd, self.v2 = fd, v2

    def seconds(self) -> float:
        text = os.pread(self.fd, 4096, 0).decode()
        if not self.v2:
            return int(text) / 1e9  # cpuacct.usage: nanoseconds
        usage = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        return int(usage["usage_usec"]) / 1e6  # cpu.stat

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def cpu_clock(name: str) -> CpuClock | None:
    """This worker's CpuClock (v2's cpu.stat, v1's cpuacct.usage), or None where neither can
    be read."""
    parents = _parents()
    for key, file in (("v2", "cpu.stat"), ("cpuacct", "cpuacct.usage")):
        if key in parents:
            try:
                clock = CpuClock(os.open(parents[key] / f"{PREFIX}{name}" / file, os.O_RDONLY),
                                 key == "v2")
            except OSError:
                return None
            try:
                clock.seconds()
            except (OSError, KeyError, ValueError):
                clock.close()
                return None
            return clock
    return None


def oom_killed(name: str) -> bool:
    """Whether the kernel killed a process of this cgroup for its memory limit (the
    `oom_kill` count of memory.events in v2, of memory.oom_control in v1)."""
    for controller, parent in _parents().items():
        if controller not in MEMORY_EVENTS:
            continue
        try:
            text = (parent / f"{PREFIX}{name}" / MEMORY_EVENTS[controller]).read_text()
        except OSError:
            continue
        counts = dict(line.split(maxsplit=1) for line in text.splitlines() if " " in line)
        if counts.get("oom_kill", "0").strip() != "0":
            return True
    return False


def sweep() -> None:
    """Remove worker cgroups left by a grader that was killed: those whose worker process is
    gone (a cgroup still in use cannot be removed anyway)."""
    with contextlib.suppress(OSError):
        for parent in _parents().values():
            for group in parent.glob(f"{PREFIX}*"):
                pid = group.name[len(PREFIX):]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    with contextlib.suppress(OSError):
                        group.rmdir()

"""How many cores other work keeps busy now, for `grade`'s default `--jobs`: the machine's
busy time (/proc/stat) over a window of our own start-up, less what our own processes used
in it (/proc/<pid>/stat). The load average, used before, is a minute's decaying mean: it
counted the last grading run as if it still ran, and a student's second `make grade` in a
row got one test session instead of one per core."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """Busy CPU seconds since boot, of the machine and of some processes, and when."""

    at: float
    busy_s: float
    own_s: dict[int, float]


def _machine_busy_s() -> float:
    """All cores' busy seconds (user, nice, system, irq, softirq, steal) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_S


def _process_s(pid: int) -> float | None:
    """A process's CPU seconds (user + system) so far; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


def sample(pids: tuple[int, ...] = ()) -> CpuSample | None:
    """Now, for this process and `pids`; None where /proc cannot tell (not Linux)."""
    try:
        busy = _machine_busy_s()
    except (OSError, ValueError):
        return None
    own = {pid: s for pid in (os.getpid(), *pids) if (s := _process_s(pid)) is not None}
    return CpuSample(time.monotonic(), busy, own)


def cores_used_by_others(since: CpuSample, pids: tuple[int, ...] = ()) -> float | None:
    """Cores that processes other than this one and `pids` kept busy since `since`, on
    average; None when the window is too short to tell (under 0.2 s) or /proc cannot."""
    now = sample(pids)
    if now is None or now.at - since.at < 0.2:
        return None
    own = sum(now.own_s[p] - since.own_s.get(p, 0.0) for p in now.own_s)
    return max(0.0, (now.busy_s - since.busy_s - own) / (now.at - since.at))

"""`grade`'s default --jobs: cores other work keeps busy now, measured over our own start-up
(grader.cpu_load), our own processes not counted."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from grader import cpu_load


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.fixture
def hog():
    """Another CPU-bound process, as a classmate's grading or a training run would be."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)  # started and spinning
    yield proc
    proc.kill()
    proc.wait()


def test_other_work_counts_and_ours_does_not(hog):
    start = cpu_load.sample((hog.pid,))
    assert start is not None
    _spin(0.8)  # our own work: never counted
    others = cpu_load.cores_used_by_others(start)
    ours = cpu_load.cores_used_by_others(start, (hog.pid,))
    assert others is not None and ours is not None
    assert others >= 0.4, f"a CPU-bound process kept {others:.2f} cores busy, by this count"
    assert ours <= others - 0.3, (
        f"the same process counted as ours still leaves {ours:.2f} cores of other work "
        f"(not ours: {others:.2f})")


def test_a_window_too_short_tells_nothing():
    start = cpu_load.sample()
    assert start is not None
    assert cpu_load.cores_used_by_others(start) is None

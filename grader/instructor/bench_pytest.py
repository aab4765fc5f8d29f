"""`make bench`'s per-student pytest side: each student graded by a fresh
`python -m pytest tests/public/test_<topic>.py tests/hidden/test_<topic>.py --submission DIR -q`
from the kit, one after another, as a per-student CI job would run it.

`tests/conftest.py` loads the grading plugin (`grader.plugin`), so that is our grader with its
sandbox, one pytest process (and one torch import, one worker template) per student. pytest's
own pass/fail is not the score: a test whose student code made a forbidden call passes as
pytest sees it, and the plugin records it as `forbidden`, 0 points. So this module is also a
pytest plugin (`-p grader.instructor.bench_pytest`) that writes the plugin's records to the
file that RECORDS_ENV names at the end of the session: the score is theirs, as the report's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grader.course import KIT_ROOT

RECORDS_ENV = "TORCHDRILL_BENCH_RECORDS"


def pytest_sessionfinish(session) -> None:
    path = os.environ.get(RECORDS_ENV)
    if not path:
        return
    from grader.plugin import Grading

    for plugin in session.config.pluginmanager.get_plugins():
        if isinstance(plugin, Grading):
            Path(path).write_text(json.dumps({"records": plugin.records,
                                              "grader_errors": plugin.grader_errors,
                                              "collection_errors": plugin.collection_errors}))


def command(topic: str, submission: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", f"tests/public/test_{topic}.py",
            f"tests/hidden/test_{topic}.py", "--submission", str(submission), "-q",
            "-p", "grader.instructor.bench_pytest"]


def grade_each(topic: str, submissions: dict[str, Path], out: Path
               ) -> tuple[float, dict[str, list[dict]]]:
    """(seconds for the whole class, student -> the plugin's records), one pytest at a time."""
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for student, folder in submissions.items():
        path = out / f"{student}.json"
        run = subprocess.run(command(topic, folder), cwd=KIT_ROOT, capture_output=True,
                             text=True, env={**os.environ, RECORDS_ENV: str(path)})
        (out / f"{student}.log").write_text(run.stdout + run.stderr)
        if run.returncode not in (0, 1) or not path.exists():
            raise SystemExit(f"pytest on {student} failed (exit {run.returncode}):\n"
                             f"{(run.stdout + run.stderr)[-3000:]}")
        data = json.loads(path.read_text())
        if data["grader_errors"] or data["collection_errors"]:
            raise SystemExit(f"pytest on {student}: {data}"[:3000])
        records[student] = data["records"]
    return time.perf_counter() - start, records

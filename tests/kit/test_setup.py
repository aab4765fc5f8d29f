"""Setting up: the first `make` checks the Python version before anything is installed, and
says what to do in one line."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.kit.variants import KIT_ROOT

FAKE_PYTHON = """#!/bin/sh
# a Python 3.12 for the Makefile: the real interpreter reporting another version
exec {python} -c 'import sys; sys.version_info = (3, 12, 1, "final", 0); \
sys.argv = sys.argv[1:]; exec(compile(open(sys.argv[0]).read(), sys.argv[0], "exec"))' "$@"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_wrong_python_is_named_in_one_line_before_anything_is_installed(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    run = subprocess.run(["make", "-s", "setup", f"PYTHON={fake}", f"VENV={venv}"],
                         cwd=KIT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if "Python" in line]
    assert lines and "needs Python 3.11" in lines[0] and "is 3.12" in lines[0], run.stderr
    assert "make grade PYTHON=" in lines[0]
    assert not venv.exists()  # nothing was created or installed


def test_the_right_python_passes_silently():
    run = subprocess.run([sys.executable, str(KIT_ROOT / "grader" / "python_check.py")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout == run.stderr == ""

"""Every command the READMEs show runs as written from a fresh clone with nothing activated:
each `make` line as make's dry run (the target exists and its recipe expands), each
`.venv/bin/python ...` line as its `--help` (the command or script exists), and no bare
`python ...`, which fails without an activated venv."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit.variants import KIT_ROOT

PAGES = ["README.md", "docs/course-author.md", "docs/internals.md", "datasets/README.md"]
SHELL = ("", "sh", "bash", "shell")  # a fenced block's info string that means commands


def commands(page: str) -> list[str]:
    """The command lines of a page's untagged (or shell) fenced blocks, comments dropped."""
    found: list[str] = []
    fence: str | None = None  # the info string of the block we are in
    for raw in (KIT_ROOT / page).read_text().splitlines():
        line = raw.strip()
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence in SHELL:
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


ALL = [(page, line) for page in PAGES for line in commands(page)]


def test_the_readmes_show_commands():
    assert {page for page, _ in ALL} >= {"README.md", "docs/course-author.md"}


@pytest.mark.parametrize("page, line", ALL, ids=[f"{p}: {c}" for p, c in ALL])
def test_a_readme_command_runs_as_written(page, line):
    words = shlex.split(line)
    assert words[0] in ("make", ".venv/bin/python"), (
        f"{page} shows `{line}`: every command must run from a fresh clone with nothing "
        "activated (a make target, or .venv/bin/python -m ...)")
    if words[0] == "make":
        run = subprocess.run(["make", "-n", *words[1:]], cwd=KIT_ROOT, capture_output=True,
                             text=True, timeout=60)
    elif words[1:3] == ["-m", "grader"]:
        run = subprocess.run([sys.executable, "-m", "grader", words[3], "--help"],
                             cwd=KIT_ROOT, capture_output=True, text=True, timeout=120)
    else:  # a script of the kit's
        assert (KIT_ROOT / words[1]).is_file(), line
        run = subprocess.run([sys.executable, words[1], "--help"], cwd=KIT_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{page}: `{line}`\n{run.stdout[-1500:]}{run.stderr[-1500:]}"


def test_docs_links_point_at_pages_that_exist():
    for page in ["README.md", *PAGES[1:3]]:
        text = (KIT_ROOT / page).read_text()
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", text):
            assert (KIT_ROOT / page).parent.joinpath(target).resolve().is_file(), (page, target)
    assert Path(KIT_ROOT / "docs" / "course-author.md").is_file()

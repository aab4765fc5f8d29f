"""`python -m grader`. For `grade`, the worker template is a fork of this process taken right
after it imports torch, before it reads the course, its tests or the submission: one import of
torch serves both (grader.sandbox.client.Template._fork_here)."""

import os
import sys


def cache_bytecode() -> None:
    """Where PYTHONDONTWRITEBYTECODE (or -B) keeps bytecode out of the source tree, keep this
    process's in the kit's virtual environment instead (`.venv/pycache`, sys.pycache_prefix):
    compiling the grader and its tests (assertion rewriting included) again on every run cost
    about a second before the first test. Outside a virtual environment nothing changes. Called
    after the template's fork, so neither it nor a worker writes any."""
    if sys.flags.dont_write_bytecode and sys.prefix != sys.base_prefix:
        sys.pycache_prefix = os.path.join(sys.prefix, "pycache")
        sys.dont_write_bytecode = False


if __name__ == "__main__":  # not when multiprocessing's spawn re-imports this module
    from grader.sandbox.client import Template

    sandboxed_grade = sys.argv[1:2] == ["grade"] and "--in-process" not in sys.argv[2:]
    if sandboxed_grade:
        import torch  # noqa: F401 - what the template needs; the fork below shares it
    template = Template(fork=True) if sandboxed_grade else None
    cache_bytecode()

    from grader.cli import main

    try:
        code = main(template=template)
    finally:
        if template is not None:
            template.close()
    if sandboxed_grade:  # reports are written (atomically): skip tearing torch down (~0.5 s)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)

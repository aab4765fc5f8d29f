"""`python -m grader`. For `grade`, the worker template is started before anything imports
torch here, so the two processes import it at the same time."""

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports this module
    import os
    import sys

    from grader.sandbox.client import Template

    sandboxed_grade = sys.argv[1:2] == ["grade"] and "--in-process" not in sys.argv[2:]
    template = Template() if sandboxed_grade else None

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

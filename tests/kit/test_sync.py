"""exercises/ is generated from solutions/ and stays in sync; stubs keep the teaching text and
lose every line of solution code."""

from __future__ import annotations

import ast
import shutil

import pytest

from grader.instructor.sync import (
    MarkerError,
    SyncResult,
    expected_stubs,
    strip_solutions,
    student_work_advice,
    sync,
)
from tests.kit.variants import KIT_ROOT

SOLUTION = '''"""Module doc."""

import torch


def f(X):
    """Doc kept."""
    ### BEGIN SOLUTION
    secret = X * 2
    return secret
    ### END SOLUTION


class A:
    def g(self):
        ### BEGIN SOLUTION
        return 1
        ### END SOLUTION
'''


def test_strip_keeps_docstrings_and_indents_the_stub():
    stub = strip_solutions(SOLUTION)
    assert "secret" not in stub and "return 1" not in stub
    assert '"""Doc kept."""' in stub and '"""Module doc."""' in stub
    assert "    # YOUR CODE HERE\n    raise NotImplementedError()\n" in stub
    assert "        raise NotImplementedError()\n" in stub
    ast.parse(stub)


@pytest.mark.parametrize("text", [
    "### BEGIN SOLUTION\nx = 1\n",
    "x = 1\n### END SOLUTION\n",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
])
def test_unbalanced_markers_are_errors(text):
    with pytest.raises(MarkerError):
        strip_solutions(text)


def test_exercises_are_in_sync():
    assert sync(check=True) == SyncResult([], []), "run `python -m grader sync`"


def test_what_the_allowed_modules_hold_is_up_to_date():
    """The source allow-list's table of module-valued attributes is computed from the allowed
    modules themselves (in a fresh interpreter) and kept current like the stubs."""
    from grader.instructor.sync import sync_module_attributes

    assert not sync_module_attributes(check=True), "run `python -m grader sync`"


def test_stubs_contain_no_solution_code():
    for name, stub in expected_stubs().items():
        solution = (KIT_ROOT / "solutions" / name).read_text()
        inside, hidden = False, []
        for line in solution.splitlines():
            if line.strip() == "### BEGIN SOLUTION":
                inside = True
            elif line.strip() == "### END SOLUTION":
                inside = False
            elif inside and len(line.strip()) > 12:
                hidden.append(line.strip())
        stub_lines = {line.strip() for line in stub.splitlines()}
        leaked = [line for line in hidden if line in stub_lines]
        assert not leaked, f"{name}: solution lines left in the stub: {leaked}"
        assert "### BEGIN SOLUTION" not in stub


def _kit_copy(tmp_path):
    shutil.copytree(KIT_ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(KIT_ROOT / "exercises", tmp_path / "exercises")
    return tmp_path


def test_check_finds_drift_and_refuses_to_check_nothing(tmp_path):
    """`sync --check` compares against the kit's own solutions/ (a check against an empty
    folder would pass whatever exercises/ holds)."""
    root = _kit_copy(tmp_path)
    assert sync(check=True, root=root) == SyncResult([], [])
    solution = root / "solutions" / "softmax.py"
    solution.write_text(solution.read_text().replace('"""', '"""Changed. ', 1))
    assert sync(check=True, root=root) == SyncResult(["softmax.py"], [])
    with pytest.raises(FileNotFoundError, match="no solution modules"):
        sync(check=True, root=root / "exercises")


def test_sync_never_overwrites_a_students_work(tmp_path):
    """A student filled in softmax.py and ran sync (as `make test` once told them to): their
    work stays, the stale stub beside it is brought up to date, and the advice keeps work."""
    root = _kit_copy(tmp_path)
    mine = root / "exercises" / "softmax.py"
    work = mine.read_text().replace("raise NotImplementedError()", "return X.exp()", 1)
    mine.write_text(work)
    for name in ("softmax.py", "sgd.py"):  # both solutions change: new stubs are due
        solution = root / "solutions" / name
        solution.write_text(solution.read_text().replace('"""', '"""Changed. ', 1))
    assert sync(check=True, root=root) == SyncResult(["sgd.py"], ["softmax.py"])
    assert sync(root=root) == SyncResult(["sgd.py"], ["softmax.py"])
    assert mine.read_text() == work
    assert (root / "exercises" / "sgd.py").read_text().startswith('"""Changed. ')
    assert sync(check=True, root=root) == SyncResult([], ["softmax.py"])
    advice = student_work_advice(["softmax.py"])
    assert "your own work" in advice and "mv exercises/softmax.py" in advice
    mine.unlink()  # once the work is kept elsewhere, the stub comes back
    assert sync(root=root) == SyncResult(["softmax.py"], [])

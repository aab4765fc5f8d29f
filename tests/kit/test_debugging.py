"""A student's first debugging session: under `grade --in-process` (their own machine) what
their code prints reaches the terminal, and `breakpoint()` or `pdb.set_trace()` stops in their
function at a real pdb prompt, driven here through a pseudo-terminal as a student types."""

from __future__ import annotations

import sys

import pexpect
import pytest

from tests.kit.variants import KIT_ROOT

SOLUTION = (KIT_ROOT / "solutions" / "softmax.py").read_text()


@pytest.mark.parametrize("stop", ["breakpoint()", "import pdb; pdb.set_trace()"])
def test_pdb_stops_in_the_students_function_and_prints_reach_the_terminal(tmp_path, stop):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "softmax.py").write_text(SOLUTION.replace(
        "    ### BEGIN SOLUTION\n",
        f"    ### BEGIN SOLUTION\n    print('looking at', tuple(X.shape))\n    {stop}\n", 1))
    child = pexpect.spawn(sys.executable, ["-m", "grader", "grade", str(tmp_path / "sub"),
                                           "--topics", "softmax", "--in-process",
                                           "--out", str(tmp_path / "out"),
                                           "-k", "test_softmax_small_example"],
                          cwd=str(KIT_ROOT), encoding="utf-8", timeout=240)
    try:
        child.expect(r"looking at \(2, 3\)")  # the student's print, on the terminal
        child.expect(r"\(Pdb\) ")
        assert "softmax.py" in child.before  # stopped in the student's file
        child.sendline("p X.sum().item()")
        child.expect(r"6\.0")  # X of the small example: [[1, 2, 3], [0, 0, 0]]
        child.expect(r"\(Pdb\) ")
        child.sendline("c")
        child.expect("Total 1/1")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0

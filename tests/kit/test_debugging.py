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


def test_what_a_failing_test_printed_is_in_every_report(tmp_path):
    """In normal grading (sandboxed) what the student's code printed during a test that did
    not pass is under that test in the reports, capped; a hidden test says only how much (a
    print of its arguments would show its inputs); a passing test carries nothing."""
    import json
    import subprocess

    source = SOLUTION.replace("    ### BEGIN SOLUTION\n",
                              "    ### BEGIN SOLUTION\n    print('softmax got', tuple(X.shape))\n"
                              "    print('x' * 5000)\n", 1)
    wrong = source.replace("X_shifted = X - X.max(dim=1, keepdim=True).values", "X_shifted = X")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "softmax.py").write_text(wrong)
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "sub"),
                          "--topics", "softmax", "--out", str(tmp_path / "out"), "-k",
                          "test_softmax_large_logits or test_softmax_matches_torch or "
                          "test_logsumexp"], cwd=KIT_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    tests = {t["name"]: t for t in json.loads((tmp_path / "out" / "report.json").read_text())
             ["topics"][0]["tests"]}
    public, hidden = tests["test_softmax_large_logits"], tests["test_softmax_matches_torch"]
    assert public["output"].startswith("softmax got (2, 2)") and len(public["output"]) <= 2000
    assert "inputs are not shown" in hidden["output"] and "softmax got" not in hidden["output"]
    assert all("output" not in t for t in tests.values() if t["outcome"] == "passed")
    for name in ("report.md", "report.html", "results.json"):
        assert "softmax got (2, 2)" in (tmp_path / "out" / name).read_text(), name
    assert "softmax got (2, 2)" in run.stdout  # the terminal table shows its first lines

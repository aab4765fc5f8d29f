"""`make notebook TOPIC=softmax`: a student's own Jupyter notebook of an exercise, written from
its stub once (never over their work) and graded by its cells of checks in the kit's kernel."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from grader.budgets import functions_in
from grader.course import load_course
from grader.notebooks import group_of, module_chunks, module_source, public_names, student_notebook
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(30)


def _write(folder):
    return subprocess.run([sys.executable, "-m", "grader", "notebook", "softmax", "--folder",
                           str(folder), "--no-open"], cwd=KIT_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_the_notebook_is_written_once_and_its_checks_grade_it(tmp_path):
    assert _write(tmp_path).returncode == 0
    path = tmp_path / "softmax.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    stub = (KIT_ROOT / "exercises" / "softmax.py").read_text()
    assert "raise NotImplementedError()" in module_source(nb, "softmax.ipynb")
    # the student writes softmax; their notebook is never written over
    solution = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    start = solution.index("def softmax(")
    mine = solution[start:solution.index("\ndef ", start + 1)].strip()
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def softmax(" in c.source)
    cell.source = mine
    nbformat.write(nb, path)
    again = _write(tmp_path)
    assert "kept as it is" in again.stdout and nbformat.read(path, 4).cells == nb.cells
    assert stub.count("raise NotImplementedError()") > 1
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {c.source.splitlines()[-1]: "".join(o.get("text", "") for o in c.outputs)
               for c in nb.cells if c.cell_type == "code" and "nbcheck.check" in c.source}
    assert "points from the public checks" in outputs["nbcheck.check('softmax', 'softmax')"]
    assert "✗" not in outputs["nbcheck.check('softmax', 'softmax')"]  # written: passes
    assert all(outputs.values()), outputs  # every cell of checks said something


def test_make_notebook_names_the_topic():
    run = subprocess.run(["make", "-s", "-n", "notebook"], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=60)
    plan = subprocess.run(["make", "-s", "-n", "notebook", "TOPIC=softmax"], cwd=KIT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert "usage: make notebook TOPIC=" in run.stdout + run.stderr
    assert "-m grader notebook softmax" in plan.stdout, plan.stdout


def test_a_given_helper_gets_no_cell_of_checks():
    """conv's `as_pair` is complete in the stub and no test grades it: the notebook told the
    student "the hidden checks grade it". Each `given` name of course.toml is such a helper:
    defined in the stub, without solution markers, and no test is about it."""
    course = load_course()
    given = {t.name: t.given for t in course.topics if t.given}
    assert given.get("conv") == ("as_pair",)
    for topic, names in given.items():
        stub = (KIT_ROOT / "exercises" / f"{topic}.py").read_text()
        solution = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
        functions = public_names(stub)
        tests = [name for suite in ("public", "hidden")
                 for name in functions_in(KIT_ROOT / "tests" / suite / f"test_{topic}.py")]
        for name in names:
            assert name in functions, (topic, name)
            chunk = next(text for node, text in module_chunks(solution)
                         if node is not None and node.name == name)
            assert "BEGIN SOLUTION" not in chunk, (topic, name)
            assert [t for t in tests if group_of(t, functions) == name] == [], (topic, name)
        cells = [c["source"] for c in student_notebook(topic, stub, names)["cells"]]
        checked = {c.split("nbcheck.check(")[1] for c in cells if "nbcheck.check(" in c}
        assert not any(f"{name!r}" in c for c in checked for name in names), checked
        assert any(f"{topic!r}, {functions[-1]!r})" in c for c in checked), checked


MINIMA = {(0.0, 0.0): (3.0, 2.0), (-1.0, 0.0): (-2.805118, 3.131312),
          (-4.0, 0.0): (-3.779310, -3.283186), (4.0, 0.0): (3.584428, -1.848126)}


def run_as_main(folder: str) -> str:
    code = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); "
            "runpy.run_path(sys.argv[1] + '/optim.py', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code, str(KIT_ROOT / folder)], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_the_optim_notebook_shows_the_four_minima_once_written():
    """optim's last cell (`if __name__ == "__main__":`, which grading never runs) prints the
    minimum Adam reaches from each of the notes' starting points and draws the surface and a
    path; in the stub it says what to write first instead of failing."""
    found = {}
    for line in run_as_main("solutions").splitlines():
        start, _, rest = line.removeprefix("from ").partition(": x = ")
        found[tuple(ast.literal_eval(start))] = ast.literal_eval(rest.partition(", f(x)")[0])
    assert set(found) == set(MINIMA)
    for start, minimum in MINIMA.items():
        assert all(abs(a - b) < 1e-3 for a, b in zip(found[start], minimum, strict=True)), start
    assert "appear here once himmelblau" in run_as_main("exercises")

"""`make notebook TOPIC=softmax`: a student's own Jupyter notebook of an exercise, written from
its stub once (never over their work) and graded by its cells of checks in the kit's kernel."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from grader.notebooks import module_source
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

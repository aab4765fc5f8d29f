"""`python -m grader release`: the student kit holds what a student needs and nothing of the
reference or the hidden tests, works from a copy in a fresh folder, and the nbgrader course
has a notebook per topic; a release that fails leaves the previous one whole."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import grader.instructor.release as release_module
from grader.course import load_course
from grader.instructor.sync import BEGIN, END
from grader.nbcheck import GPU_METADATA_KEY
from tests.kit.variants import KIT_ROOT, replace_definitions

pytestmark = pytest.mark.heavy(25)  # rough seconds; see tests/kit/conftest.py

COURSE = load_course()
TOPICS = [t.name for t in COURSE.topics if (KIT_ROOT / "solutions" / f"{t.name}.py").exists()]
PY = sys.executable


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "release"
    run = subprocess.run([PY, "-m", "grader", "release", "--out", str(out)], cwd=KIT_ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def lines_of(paths) -> set[str]:
    return {line.strip() for p in paths for line in p.read_text(errors="replace").splitlines()}


# --------------------------------------------------------------------------- the student kit


def test_student_kit_has_what_a_student_needs(released):
    kit = released / "student"
    assert {p.name for p in kit.iterdir()} == {
        "exercises", "tests", "grader", "torchdrill", "datasets", "Makefile", "pyproject.toml",
        "README.md", "course.toml"}
    assert {p.name for p in (kit / "tests").iterdir()} == {"__init__.py", "conftest.py",
                                                           "public"}
    assert {p.name for p in (kit / "datasets").iterdir()} >= {"README.md", "fetch.py"}
    assert not (kit / "datasets" / "data").exists()
    assert {p.stem for p in (kit / "exercises").glob("*.py")} == {
        p.stem for p in (KIT_ROOT / "solutions").glob("*.py")}
    assert not [p for p in kit.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    readme = (kit / "README.md").read_text()
    assert "make grade" in readme and "hidden tests" in readme
    assert all(f"`{t}`" in readme for t in TOPICS)


def test_student_kit_holds_no_reference_code_or_hidden_test(released):
    """Every line that exists only in the reference solutions' marked regions or in the hidden
    tests is absent from every file of the kit, and so is every hidden test's name."""
    public_sources = [p for tree in ("tests/public", "grader", "torchdrill", "datasets")
                      for p in release_module.student_files(tree) if p.suffix in (".py", ".md")]
    public = lines_of(public_sources)
    secret: dict[str, str] = {}
    for path in sorted((KIT_ROOT / "solutions").glob("*.py")):
        inside = False
        for line in path.read_text().splitlines():
            inside = (inside or line.strip() == BEGIN) and line.strip() != END
            if inside and line.strip() not in (BEGIN, ""):
                secret.setdefault(line.strip(), f"solutions/{path.name}")
    hidden_names = set()
    for path in sorted((KIT_ROOT / "tests" / "hidden").glob("test_*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                if node.name.startswith("test_"):
                    hidden_names.add(node.name)
                body = node.body[1:] if ast.get_docstring(node) else node.body
                for stmt in body:
                    for line in lines[stmt.lineno - 1:stmt.end_lineno]:
                        secret.setdefault(line.strip(), f"tests/hidden/{path.name}")
    secret = {line: where for line, where in secret.items()
              if line and not line.startswith("#") and line not in public}
    public_names = {n for p in (KIT_ROOT / "tests" / "public").glob("test_*.py")
                    for n in re.findall(r"def (test_\w+)", p.read_text())}
    names = re.compile(r"\b(" + "|".join(sorted(hidden_names - public_names)) + r")\b")
    assert secret and hidden_names - public_names
    leaks = []
    for path in files_under(released / "student"):
        text = path.read_text(errors="replace")
        leaks += [f"{path}: {line.strip()!r} from {secret[line.strip()]}"
                  for line in text.splitlines() if line.strip() in secret]
        leaks += [f"{path}: hidden test {m.group(0)}" for m in names.finditer(text)]
    assert leaks == []


def test_student_kit_holds_no_instructor_code(released):
    """The kit's grader is the repository's minus the instructor's code; every module of it
    imports in the kit on its own (nothing reaches for grader.instructor, nbgrader or the kit's
    tests), and the instructor's commands are not offered there."""
    kit = released / "student"
    shipped = {p.relative_to(kit) for p in files_under(kit / "grader")}
    assert shipped == {p.relative_to(KIT_ROOT) for p in release_module.student_files("grader")}
    assert not [p for p in shipped if p.parts[1] == "instructor" or p.name == "nbexecute.py"]
    modules = [".".join(p.with_suffix("").parts).removesuffix(".__init__") for p in shipped
               if p.suffix == ".py" and p.name != "__main__.py"]
    assert "grader.grade" in modules and "grader.sandbox.server" in modules
    script = ("import importlib, sys\n"
              "for m in sys.argv[1:]:\n"
              "    importlib.import_module(m)\n"
              "bad = sorted(m for m in sys.modules if m.startswith(('grader.instructor', "
              "'nbgrader', 'tests.kit', 'tests.hidden')))\n"
              "assert not bad, bad\n")
    env = {**os.environ, "PYTHONPATH": str(kit)}
    run = subprocess.run([PY, "-P", "-c", script, *modules], cwd=kit, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    batch = subprocess.run([PY, "-P", "-m", "grader", "batch", "x", "--out", "y"], cwd=kit,
                           env=env, capture_output=True, text=True)
    assert batch.returncode == 2 and "invalid choice: 'batch'" in batch.stderr, batch.stderr


def test_student_kit_grades_from_a_fresh_copy(released, tmp_path):
    """`make grade` in a copy of the kit, with the kit's own grader (the venv's Python stands
    in for the .venv the Makefile would create), grades with the public tests and says that
    hidden tests will count too."""
    kit = tmp_path / "kit"
    shutil.copytree(released / "student", kit)
    env = {**os.environ, "PYTHONPATH": str(kit)}
    where = subprocess.run([PY, "-c", "import grader, torchdrill; print(grader.__file__); "
                            "print(torchdrill.__file__)"], cwd=kit, env=env,
                           capture_output=True, text=True)
    assert [Path(p).parent.parent for p in where.stdout.split()] == [kit, kit], where.stderr
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make does not reinstall
    finished = tmp_path / "finished"
    finished.mkdir()
    shutil.copy(KIT_ROOT / "solutions" / "softmax.py", finished / "softmax.py")
    for submission, full in (("exercises", False), (str(finished), True)):
        run = subprocess.run(["make", "grade", f"PY={PY}", f"STAMP={stamp}", "TOPICS=softmax",
                              f"SUBMISSION={submission}"], cwd=kit, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert "the hidden tests will count too" in run.stdout
        report = json.loads((kit / "grading" / Path(submission).name / "report.json").read_text())
        assert {t["visibility"] for topic in report["topics"] for t in topic["tests"]} == {
            "public"}
        assert report["max_score"] > 0
        assert report["score"] == (report["max_score"] if full else 0)
    dry = subprocess.run(["make", "-n", "grade"], cwd=kit, capture_output=True, text=True)
    assert "-m pip install" in dry.stdout and "-e ." in dry.stdout
    assert ".venv/bin/python -m grader grade exercises --suite public" in dry.stdout


WRONG_DIM = """
def softmax(X):
    X_exp = torch.exp(X - X.max(dim=0, keepdim=True).values)
    return X_exp / X_exp.sum(dim=0, keepdim=True)
"""


def readme_block(marker: str) -> list[str]:
    """The lines of the README's code block after `<!-- marker`."""
    text = (KIT_ROOT / "README.md").read_text()
    start = text.index("```text\n", text.index(f"<!-- {marker}")) + 8
    return text[start:text.index("\n```", start)].splitlines()


def test_the_readme_shows_what_the_student_kit_prints(released, tmp_path):
    """The README's example of `make grade` is what the released kit prints for a softmax
    over the wrong dim (lines cut where it says `…`): the mistake named by public tests in the
    hidden tests' words, and softmax_regression pointed to softmax, which the student kit
    cannot serve (it has no reference)."""
    kit = tmp_path / "kit"
    shutil.copytree(released / "student", kit)
    exercise = kit / "exercises" / "softmax.py"
    exercise.write_text(replace_definitions(
        (KIT_ROOT / "solutions" / "softmax.py").read_text(), WRONG_DIM))
    stamp = tmp_path / "installed"
    stamp.touch()
    run = subprocess.run(["make", "grade", f"PY={PY}", f"STAMP={stamp}", "TOPICS=softmax"],
                         cwd=kit, env={**os.environ, "PYTHONPATH": str(kit), "COLUMNS": "100"},
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    printed = [line.rstrip() for line in run.stdout.splitlines()]
    at = 0
    for line in readme_block("student-grade"):
        if line == "…":
            continue
        assert line in printed[at:], f"the README shows {line!r}; the kit printed:\n{run.stdout}"
        at = printed.index(line, at) + 1


# --------------------------------------------------------------------------- the nbgrader course


def test_nbgrader_course_has_a_notebook_per_topic(released):
    course = released / "nbgrader"
    config = (course / "nbgrader_config.py").read_text()
    ast.parse(config)
    assert "c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))" in config
    assert f'c.CourseDirectory.course_id = "{COURSE.name}"' in config
    assert {p.name for p in (course / "source").iterdir()} == set(TOPICS)
    for topic in TOPICS:
        nb = nbformat.read(course / "source" / topic / f"{topic}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert any(c.metadata.get("nbgrader", {}).get("solution") for c in nb.cells)
        assert nb.metadata[GPU_METADATA_KEY]["tests"] == COURSE.gpu_tests
    readme = (course / "README.md").read_text()
    assert f'[gpu] tests = "{COURSE.gpu_tests}"' in readme  # the setting the notebooks follow
    assert 'make nbgrader ARGS="autograde softmax"' in readme
    assert "no environment activated" in readme
    assert "grader.instructor.nbsteps.GradeInSandbox" in config


# --------------------------------------------------------------------------- all or nothing


def test_a_failed_release_leaves_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.setattr(release_module, "collect_tests", lambda topics: {})
    out = tmp_path / "release"
    release_module.release(out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(release_module, "write_nbgrader_course", broken)
    with pytest.raises(OSError, match="disk full"):
        release_module.release(out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    with pytest.raises(OSError, match="disk full"):
        release_module.release(tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]

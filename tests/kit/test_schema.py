"""The report's schema (grader/report/schema.py): a report written by a real grading run, and
its results.json, hold exactly the keys and value types of the TypedDicts; every outcome the
grader can give a test is in the one table of outcomes, and no other module restates it."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from rich.style import Style

from grader.course import load_course
from grader.report import schema
from grader.report.schema import OUTCOMES, GradescopeResults, Report
from grader.stopped import stopped_report
from tests.kit.variants import KIT_ROOT, replace_definitions

GRADER = KIT_ROOT / "grader"
OUTCOME_NAMES = set(typing.get_args(schema.Outcome))

# -- a validator from the TypedDicts ---------------------------------------------------------


def validate(value: object, hint: object, path: str = "report") -> None:
    """Raise AssertionError, naming the path, where `value` does not match the type `hint`:
    a TypedDict's keys exactly (none missing, none extra) and each value's type, recursively;
    Literal values, lists, unions; a float may be an int (as for mypy), never a bool."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if typing.is_typeddict(hint):
        assert isinstance(value, dict), f"{path}: {type(value).__name__}, not an object"
        assert isinstance(hint, type)
        hints = typing.get_type_hints(hint)
        required, allowed = hint.__required_keys__, set(hints)
        assert not (missing := required - value.keys()), f"{path}: missing {sorted(missing)}"
        assert not (extra := value.keys() - allowed), f"{path}: unknown keys {sorted(extra)}"
        for key, item in value.items():
            validate(item, hints[key], f"{path}.{key}")
    elif origin is list:
        assert isinstance(value, list), f"{path}: {type(value).__name__}, not a list"
        for i, item in enumerate(value):
            validate(item, args[0], f"{path}[{i}]")
    elif origin is typing.Literal:
        assert value in args, f"{path}: {value!r} is none of {args}"
    elif origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                validate(value, option, path)
                return
            except AssertionError as e:
                errors.append(str(e))
        raise AssertionError(" / ".join(errors))
    elif hint is type(None):
        assert value is None, f"{path}: {value!r}, not null"
    elif hint is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), \
            f"{path}: {value!r}, not a number"
    elif hint in (int, str, bool):
        assert isinstance(hint, type)
        assert type(value) is hint, f"{path}: {value!r}, not {hint.__name__}"
    else:
        raise TypeError(f"{path}: the validator does not know the type {hint!r}")


# -- a real grading run ----------------------------------------------------------------------

SOFTMAX = """
import torch


def softmax(X):
    return torch.softmax(X, dim=1)  # forbidden: flagged as called and as written
"""
TENSOR_OPS = """
def arange_grid(rows, cols):
    return torch.zeros(rows, cols)  # a wrong result


def row_normalize(A):
    while True:  # runs out of time
        pass


def pairwise_sq_dists(X, Y):
    raise ValueError("an error of the student's")


def frobenius_norm(A):
    raise NotImplementedError()
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[dict, dict]:
    """report.json and results.json of a submission whose tests end every way a test can
    (the reference's other functions pass), with a file that is not graded."""
    root = tmp_path_factory.mktemp("schema")
    sub, out = root / "sub", root / "out"
    sub.mkdir()
    (sub / "softmax.py").write_text(SOFTMAX)
    reference = (KIT_ROOT / "solutions" / "tensor_ops.py").read_text()
    (sub / "tensor_ops.py").write_text(replace_definitions(reference, TENSOR_OPS))
    (sub / "helpers.py").write_text("X = 1\n")
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(sub), "--out", str(out),
                          "--topics", "softmax,tensor_ops", "--suite", "public",
                          "--call-timeout", "1"], cwd=KIT_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return (json.loads((out / "report.json").read_text(encoding="utf-8")),
            json.loads((out / "results.json").read_text(encoding="utf-8")))


def test_a_real_report_matches_the_schema(graded):
    report, results = graded
    validate(report, Report)
    validate(results, GradescopeResults, "results")
    outcomes = {t["outcome"] for topic in report["topics"] for t in topic["tests"]}
    assert outcomes == OUTCOME_NAMES, "the run should end tests in every outcome"
    assert {f["how"] for f in report["flags"]} == {"runtime", "source"}
    assert [f["file"] for f in report["files_not_graded"]] == ["helpers.py"]


def test_a_stopped_report_matches_the_schema():
    course = load_course()
    planned = [{"topic": "softmax", "name": "test_softmax_small_example",
                "visibility": "public", "score": 0.0, "max_score": 1.0, "outcome": "timeout",
                "message": "", "mistake": None, "hint": "what it checks",
                "duration_s": 0.0}]
    not_counted = [{"topic": "gpu_training", "name": "test_on_gpu", "points": 2.0,
                    "reason": "needs a CUDA device"}]
    for plan in (planned, []):
        report = stopped_report(course, ["softmax"], "alice", 60.0, plan, not_counted)
        validate(json.loads(json.dumps(report)), Report)


BREAKAGES = [
    ("a bogus key in a test", lambda r: r["topics"][0]["tests"][0].update(bogus=1),
     r"report\.topics\[0\]\.tests\[0\]: unknown keys \['bogus'\]"),
    ("a bogus key in the report", lambda r: r.update(bogus=[]), r"report: unknown keys"),
    ("a missing key", lambda r: r["topics"][0].pop("title"), r"topics\[0\]: missing \['title'\]"),
    ("an outcome not in the schema", lambda r: r["topics"][0]["tests"][0].update(
        outcome="timout"), r"tests\[0\]\.outcome: 'timout' is none of"),
    ("a score as text", lambda r: r.update(score="43"), r"report\.score: '43', not a number"),
    ("a flag seen an unknown way", lambda r: r["flags"][0].update(how="runtim"),
     r"flags\[0\]\.how"),
    ("a list that is not one", lambda r: r.update(isolation="rlimits"),
     r"report\.isolation: str, not a list"),
    ("a message that is not text", lambda r: r["topics"][0]["tests"][0].update(message=None),
     r"message: None, not str"),
    ("a mistake that is not text or null",
     lambda r: r["topics"][0]["tests"][0].update(mistake=["wrong dim"]), r"mistake: "),
    ("a test without its mistake", lambda r: r["topics"][0]["tests"][0].pop("mistake"),
     r"tests\[0\]: missing \['mistake'\]"),
]


@pytest.mark.parametrize(("what", "breakage", "error"), BREAKAGES,
                         ids=[b[0] for b in BREAKAGES])
def test_the_validator_catches_what_the_schema_does_not_allow(graded, what, breakage, error):
    """Guards the guard: the same real report, broken one way, fails validation."""
    report = copy.deepcopy(graded[0])
    breakage(report)
    with pytest.raises(AssertionError, match=error):
        validate(report, Report)


# -- the one table of outcomes ---------------------------------------------------------------


def _grader_sources() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text()) for p in sorted(GRADER.rglob("*.py"))
            if p != GRADER / "report" / "schema.py"}


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def produced_outcomes() -> dict[str, set[str]]:
    """Outcome -> where the grader's source gives a test that outcome: a failure class's
    `outcome = "..."`, a `return "...", message` of the plugin's `outcome_of`, and a record
    built with `"outcome": "..."` (a stopped run's)."""
    found: dict[str, set[str]] = {}
    for path, tree in _grader_sources().items():
        where = str(path.relative_to(KIT_ROOT))
        for node in ast.walk(tree):
            names: list[str | None] = []
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and any(
                            isinstance(t, ast.Name) and t.id == "outcome" for t in stmt.targets):
                        names.append(_string(stmt.value))
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                            and stmt.target.id == "outcome":
                        names.append(_string(stmt.value))
            elif isinstance(node, ast.FunctionDef) and node.name == "outcome_of":
                names += [_string(r.value.elts[0]) for r in ast.walk(node)
                          if isinstance(r, ast.Return) and isinstance(r.value, ast.Tuple)]
            elif isinstance(node, ast.Dict):
                names += [_string(v) for k, v in zip(node.keys, node.values, strict=True)
                          if _string(k) == "outcome"]
            for name in filter(None, names):
                found.setdefault(name, set()).add(where)
    return found


def test_the_outcome_type_and_the_table_agree():
    assert set(OUTCOMES) == OUTCOME_NAMES


def test_every_outcome_the_grader_gives_is_in_the_table():
    produced = produced_outcomes()
    unknown = {name: sorted(where) for name, where in produced.items() if name not in OUTCOMES}
    assert unknown == {}, "outcomes missing from grader/report/schema.py's OUTCOMES"
    # guards the guard: the scan sees the plugin and the failure classes, and the table has
    # no outcome nothing gives
    assert set(produced) == OUTCOME_NAMES
    assert any("plugin.py" in where for where in produced["failed"])


def test_every_failure_class_has_an_outcome_of_the_table():
    import importlib

    roots = {getattr(importlib.import_module(m), "StudentFailure", None)
             for m in ("grader.handle", "grader.plugin")}  # wherever the classes live
    classes, todo = [], [cls for cls in roots if cls is not None]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo += cls.__subclasses__()
    assert len(classes) > 3
    assert {cls.__name__: cls.outcome for cls in classes
            if cls.outcome not in OUTCOMES} == {}


def test_every_outcome_has_its_texts():
    for name, info in OUTCOMES.items():
        assert info.label and info.check_text, name
        Style.parse(info.style)  # a style rich can print
        assert info.html_border is None or re.fullmatch(r"#[0-9a-f]{6}", info.html_border)
    assert [name for name, info in OUTCOMES.items() if info.waiting] == ["not_implemented"]


def test_no_other_module_restates_the_outcome_table():
    """A dict keyed by outcome names anywhere in grader/ but schema.py is a second table."""
    tables = [f"{path.relative_to(KIT_ROOT)}:{node.lineno}"
              for path, tree in _grader_sources().items() for node in ast.walk(tree)
              if isinstance(node, ast.Dict)
              and len({_string(k) for k in node.keys} & OUTCOME_NAMES) >= 2]
    assert tables == []


def test_developers_md_names_every_key_of_the_report():
    text = (KIT_ROOT / "DEVELOPERS.md").read_text()
    section = text[text.index("## The report"):]
    records = [Report, schema.TopicEntry, schema.GradedTest, schema.Flag, schema.NotCounted,
               schema.NotGraded]
    keys = {key for record in records for key in typing.get_type_hints(record)}
    assert {key for key in keys if f"`{key}`" not in section} == set()

"""The class's similarity report (grader.instructor.similarity): a student who copied a
classmate's code, renaming its variables and reordering its functions, is found; students who
filled the same stubs each their own way are not; the side-by-side page is escaped text."""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys

import pytest

from grader.instructor.similarity import highest, side_by_side, similar_pairs
from grader.instructor.sync import expected_stubs
from tests.kit.variants import KIT_ROOT, replace_definitions

STUB = expected_stubs()["softmax.py"]
ALICE = (KIT_ROOT / "solutions" / "softmax.py").read_text()
BOB = replace_definitions(ALICE, '''
def softmax(X):
    shifted = X - X.amax(1, keepdim=True)
    num = shifted.exp()
    den = num.sum(1).unsqueeze(1)
    return num / den


def logsumexp(X):
    top = X.amax(dim=1)
    return top + (X - top[:, None]).exp().sum(dim=1).log()


def log_softmax(X):
    return X - logsumexp(X)[:, None]


def softmax_regression(X, W, b):
    logits = X.flatten(1) @ W
    return softmax(logits + b)
''')


def renamed_and_reordered(source: str) -> str:
    """Alice's code as a copier hands it in: other variable names, functions in reverse."""
    for old, new in (("X_shifted", "Z"), ("X_exp", "E"), ("m = ", "big = "), ("(m + ", "(big + "),
                     ("X - m", "X - big")):
        assert old in source
        source = source.replace(old, new)
    module = ast.parse(source)
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    module.body = [n for n in module.body if n not in functions] + functions[::-1]
    return ast.unparse(module)


CAROL = renamed_and_reordered(ALICE)


def test_a_renamed_reordered_copy_is_flagged_and_independent_work_is_not():
    pairs = similar_pairs("softmax", {"alice": ALICE, "bob": BOB, "carol": CAROL}, STUB, 0.6)
    assert [(p.a, p.b) for p in pairs] == [("alice", "carol")], pairs
    assert pairs[0].similarity > 0.7 and pairs[0].shared >= 10
    assert highest(pairs) == {"alice": pairs[0].similarity, "carol": pairs[0].similarity}


def test_the_released_stub_is_boilerplate():
    """Two students who hand in the stub unchanged (or keep its docstrings) share nothing."""
    assert similar_pairs("softmax", {"a": STUB, "b": STUB}, STUB, 0.0, 0) == []
    with_docstrings = {"a": ALICE, "b": BOB}
    assert similar_pairs("softmax", with_docstrings, STUB, 0.0, 0) == []


def test_the_side_by_side_page_is_text():
    """A student's name and code never become markup on the page."""
    evil = CAROL + '\n\ndef f():\n    return "</pre><script>alert(1)</script>"\n'
    code = {"alice": ALICE, "<b>eve</b>": evil}
    [pair] = similar_pairs("softmax", code, STUB, 0.6)
    page = side_by_side(pair, code[pair.a], code[pair.b], STUB)
    assert "<script>" not in page and "<b>eve</b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;eve&lt;/b&gt;" in page
    assert page.count("<mark>") >= 2  # shared code is marked on both sides


@pytest.mark.heavy(40)
def test_a_batch_lists_the_copy_and_links_its_side_by_side(tmp_path):
    """Through `grader batch`: the class page lists alice and carol (a renamed, reordered copy),
    never bob (his own code), with a link to their side-by-side page; the gradebook has each
    student's highest similarity."""
    for name, code in (("alice", ALICE), ("bob", BOB), ("carol", CAROL)):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "softmax.py").write_text(code)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "grader", "batch", str(tmp_path / "class"),
                          "--out", str(out), "--topics", "softmax", "-k",
                          "test_softmax_small_example"], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    page = (out / "index.html").read_text()
    section = page[page.index("<h2>Similar code</h2>"):page.index("<h2>Students</h2>")]
    assert "alice" in section and "carol" in section and "bob" not in section
    assert section.count('href="similarity/') == 1
    side = (out / "similarity" / "1.html").read_text()
    assert "alice" in side and "carol" in side and "<mark>" in side
    with open(out / "gradebook.csv") as f:
        rows = {r["student"]: float(r["max_similarity"]) for r in csv.DictReader(f)}
    assert rows["alice"] == rows["carol"] > 0.7 and rows["bob"] == 0.0


def test_the_same_class_gets_the_same_pairs_in_every_process():
    """Fingerprints hash the same in every process: copydetect's own use Python's `hash`, which
    PYTHONHASHSEED changes, and a pair near the threshold came and went between runs."""
    script = ("import sys; sys.path.insert(0, '.')\n"
              "from tests.kit.test_similarity import ALICE, BOB, CAROL, STUB\n"
              "from grader.instructor.similarity import similar_pairs\n"
              "print(similar_pairs('softmax', {'a': ALICE, 'b': BOB, 'c': CAROL}, STUB, 0.0))")
    seen = {subprocess.run([sys.executable, "-c", script], cwd=KIT_ROOT, text=True, check=True,
                           capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "3")}
    assert len(seen) == 1, seen

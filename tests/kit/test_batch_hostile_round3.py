"""What one student's entry in a class folder can do to `grader batch`, round 3: a folder
nested deeper than Python recurses, a sparse file of a terabyte, names that are not UTF-8, a
folder and a zip of the same name, a name that is a spreadsheet formula, invisible characters
that reorder text, a reply that floods the grader's memory, and a grading that outgrows the
grader's memory cap. Each crashed the whole batch, overwrote a classmate, or reached the
instructor's screen; now the class is graded, its files are written, and each hostile student
gets a report (or a note) that says what was wrong.

Every entry is built here, in a temporary folder; every run grades one softmax test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import unicodedata
import uuid
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from grader.instructor.batch import entries, fingerprint
from grader.instructor.class_report import FORMULA_STARTS, gradebook_csv
from grader.report.table import render_table
from grader.submission import load_submission
from grader.text import clean_text, safe_name
from tests.kit.test_batch_hostile import SOLUTION, messages, report, run_batch
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(120)  # rough seconds; see tests/kit/conftest.py

STUB = (KIT_ROOT / "exercises" / "softmax.py").read_text()
LINE = "    X_shifted = X - X.max"  # a line of the reference's softmax, to put code before
DEPTH = 1100  # deeper than Python's recursion limit
TERABYTE = 1 << 40
BIDI = "\u202e\u2066\u200b\ufeff"  # an override, an isolate, a zero-width space, a BOM
CAFE = os.fsdecode(b"caf\xe9")  # a name in Latin-1, not UTF-8
FORMULA = '=HYPERLINK("http:",1+2)'
BIDI_NAME = f"bob{BIDI[0]}evil{BIDI[2]}"
RAISES_BIDI = SOLUTION.replace(LINE, f"    raise ValueError('wrong {BIDI} answer')\n{LINE}")
FLOODS = SOLUTION.replace(LINE, "    return [{}] * 2_000_000\n" + LINE)


def student(root: Path, name: str, code: str = SOLUTION) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "softmax.py").write_text(code)
    return folder


def nest(folder: Path, depth: int) -> None:
    """Folders `d/d/d/...` `depth` deep, made through file descriptors (a path that long is
    past what one system call takes)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def sparse(path: Path, size: int = TERABYTE) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def remove(path: Path) -> None:
    """rm -rf: shutil.rmtree, and so pytest's own clean-up, recurses once per level."""
    subprocess.run(["rm", "-rf", str(path)], check=True)


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """The class, graded twice (the second run must grade no one again)."""
    root = tmp_path_factory.mktemp("hostile3")
    cls = root / "in"
    student(cls, "good")
    nest(student(cls, "deep"), DEPTH)
    big = student(cls, "sparse")
    sparse(big / "data.bin")
    sparse(big / "cross_entropy.py")  # a topic's file: refused by its size, never read
    (student(cls, CAFE) / os.fsdecode(b"na\xefve.py")).write_text("x = 1\n")
    student(cls, "alice")
    with zipfile.ZipFile(cls / "alice.zip", "w") as zf:
        zf.writestr("softmax.py", STUB)
    student(cls, FORMULA)
    student(cls, BIDI_NAME, RAISES_BIDI)
    student(cls, "floods", FLOODS)
    mark = uuid.uuid4().hex
    options = ("--jobs", "2", "--call-timeout", "600")
    run = run_batch(cls, root / "out", mark, *options)
    rerun = run_batch(cls, root / "out", mark, *options)
    yield root / "out", run, rerun
    remove(cls / "deep")


STUDENTS = ["good", "deep", "sparse", safe_name(CAFE), "alice", "alice.zip", FORMULA,
            safe_name(BIDI_NAME), "floods"]


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_every_student_is_graded_whatever_a_classmate_hands_in(hostile_class):
    out, run, _ = hostile_class
    assert run.returncode == 0, run.stderr[-3000:]
    for name in STUDENTS:
        assert (out / "students" / name / "report.json").exists(), name
    full = report(out, "good")["max_score"]
    for name in ("good", "deep", "sparse", safe_name(CAFE), "alice", FORMULA):
        assert report(out, name)["score"] == full > 0, name
    assert (out / "index.html").exists() and len(gradebook(out)) == len(STUDENTS)


def test_a_huge_topic_file_is_refused_by_its_size_unread(hostile_class):
    out, _, _ = hostile_class
    refused = {f["file"]: f["reason"] for f in report(out, "sparse")["files_not_graded"]}
    assert "1099511.6 MB" in refused["cross_entropy.py"]
    assert "data.bin" not in refused  # not a code file: never looked at


def test_names_that_are_not_utf8_are_shown_escaped(hostile_class):
    out, run, _ = hostile_class
    r = report(out, "caf\\xe9")
    assert r["submission"] == "caf\\xe9"
    assert [f["file"] for f in r["files_not_graded"]] == ["na\\xefve.py"]
    assert "caf\\xe9" in gradebook(out) and "caf\\xe9: softmax" in run.stderr + run.stdout
    assert "not UTF-8" in gradebook(out)["caf\\xe9"]["note"]


def test_a_folder_and_a_zip_of_one_name_are_two_students(hostile_class):
    out, _, _ = hostile_class
    assert report(out, "alice")["score"] > 0 and report(out, "alice.zip")["score"] == 0
    rows = gradebook(out)
    assert "alice.zip" in rows["alice"]["note"] and "alice/" in rows["alice.zip"]["note"]
    page = (out / "index.html").read_text()
    assert "the class folder also holds alice.zip" in page


def test_a_name_that_is_a_formula_is_text_in_the_gradebook(hostile_class):
    out, _, _ = hostile_class
    with open(out / "gradebook.csv", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert "'" + FORMULA in cells
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]


def invisible_in(text: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in text if c in BIDI or 0xD800 <= ord(c) <= 0xDFFF})


def test_invisible_characters_are_escaped_in_every_format(hostile_class):
    """A student's name and their error message carry a bidi override, an isolate, a
    zero-width space and a BOM: every file the batch writes (reports, Gradescope's json, the
    class page, the gradebook, the side-by-side pages of similar code), the console and the
    terminal table show them as `\\u202e`, never as characters that reorder what is read."""
    out, run, _ = hostile_class
    written = [p for p in out.rglob("*") if p.is_file() and p.name != ".fingerprint"]
    assert any(p.parent.name == "similarity" for p in written)
    for path in written:
        text = path.read_text()
        if path.suffix == ".json":
            text = json.dumps(json.loads(text), ensure_ascii=False)
        assert not invisible_in(text), f"{path.relative_to(out)}: {invisible_in(text)}"
    assert not invisible_in(run.stdout + run.stderr)
    bidi = report(out, safe_name(BIDI_NAME))
    assert "wrong \\u202e\\u2066\\u200b\\ufeff answer" in messages(bidi)
    console = Console(file=io.StringIO(), width=200)
    render_table(bidi, console)
    table = console.file.getvalue()
    assert "bob\\u202eevil\\u200b" in table and not invisible_in(table)
    assert "bob\\u202eevil\\u200b" in (out / "index.html").read_text()
    markdown = (out / "students" / safe_name(BIDI_NAME) / "report.md").read_text()
    assert "bob\\\\u202eevil" in markdown  # Markdown's escape of a backslash


def test_a_reply_too_large_to_decode_is_the_students_own_failure(hostile_class):
    out, _, _ = hostile_class
    r = report(out, "floods")
    assert r["score"] == 0 and "return a tensor" in messages(r)


def test_an_unchanged_class_is_not_graded_again(hostile_class):
    _, _, rerun = hostile_class
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(STUDENTS)} unchanged since their report, 0 to grade" in rerun.stderr


# -- the grader process's memory ------------------------------------------------------------------

HOGS_GRADER = SOLUTION.replace(LINE, "    return torch.zeros(40_000_000)\n" + LINE)  # 160 MB


@pytest.mark.skipif(os.geteuid() != 0, reason="the grader process's cgroup needs root")
def test_a_grading_that_outgrows_the_graders_memory_is_reported(tmp_path):
    """With course.toml's grader_memory_mb at 250, a student whose result is a 160 MB tensor
    (which the grader receives, then copies) is stopped and told so; the class goes on."""
    course, n = re.subn(r"(?m)^grader_memory_mb = \d+", "grader_memory_mb = 250",
                        (KIT_ROOT / "course.toml").read_text())
    assert n == 1
    (tmp_path / "course.toml").write_text(course)
    student(tmp_path / "in", "good")
    student(tmp_path / "in", "hogs", HOGS_GRADER)
    run = subprocess.run(
        [sys.executable, "-m", "grader", "batch", str(tmp_path / "in"), "--out",
         str(tmp_path / "out"), "--topics", "softmax", "-k", "test_softmax_small_example",
         "--jobs", "2", "--call-timeout", "600"], cwd=KIT_ROOT, capture_output=True, text=True,
        timeout=600, env={**os.environ, "TORCHDRILL_COURSE": str(tmp_path / "course.toml")})
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "out"
    assert report(out, "good")["score"] == report(out, "good")["max_score"] > 0
    hog = report(out, "hogs")
    assert hog["score"] == 0 and hog["max_score"] == report(out, "good")["max_score"]
    assert "more than 250 MB of the grader's own memory" in messages(hog)


ADDRESS_SPACE_CAP = """
import os
from grader.instructor import pool
os.geteuid = lambda: 1000  # as for a grader that is not root: no cgroup of its own
print(pool.cap_memory(200))
try:
    junk = bytearray(400 << 20)
    print("not capped")
except MemoryError:
    print("capped")
"""


def test_without_a_cgroup_the_grader_is_capped_by_its_address_space():
    """Where the grader cannot have a cgroup (not root) and has no CUDA, RLIMIT_AS caps it:
    the cap counts from the address space it has when capped (torch's CUDA build reserves 3
    GB on import), so 400 MB more fail under a cap of 200."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA reserves address space: the grader is capped by a cgroup or not at all")
    run = subprocess.run([sys.executable, "-c", ADDRESS_SPACE_CAP], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["rlimit", "capped"], run.stderr[-2000:]


# -- the pieces, one by one -----------------------------------------------------------------------


def test_every_invisible_character_is_escaped():
    """The set `clean_text` escapes is Unicode's own (format characters, line and paragraph
    separators), derived here from unicodedata rather than remembered, and bytes that are
    not UTF-8 read as `\\xNN`."""
    invisible = "".join(chr(c) for c in range(sys.maxunicode + 1)
                        if unicodedata.category(chr(c)) in ("Cf", "Zl", "Zp"))
    shown = clean_text(invisible)
    assert not [c for c in shown if unicodedata.category(c) in ("Cf", "Zl", "Zp")]
    assert shown.count("\\") == len(invisible)
    assert clean_text("a\u202eb") == "a\\u202eb" and clean_text(CAFE) == "caf\\xe9"
    assert clean_text("plain é text\twith\nlines") == "plain é text\twith\nlines"


@pytest.mark.parametrize("a,b", [
    (CAFE, "caf\\xe9"), ("a\u202e", "a\\u202e"), ("a\x1b", "a\\u001b"), ("a\\", "a\\\\"),
])
def test_different_names_never_show_the_same(a, b):
    assert safe_name(a) != safe_name(b)
    assert "\\" not in safe_name("plain name é")


def test_ids_of_a_folder_and_zips_that_share_names(tmp_path):
    """`b/`, `b.zip` and `b.zip.zip` ask for `b`, `b` and `b.zip`: each gets an id of its own,
    the same on every run."""
    (tmp_path / "b").mkdir()
    for name in ("b.zip", "b.zip.zip", "c.zip"):
        (tmp_path / name).write_bytes(b"")
    found = entries(tmp_path)
    assert [(e.student, e.path.name) for e in found] == [
        ("b", "b"), ("b.zip", "b.zip"), ("b.zip.zip", "b.zip.zip"), ("c", "c.zip")]
    assert all(e.note for e in found[:3]) and not found[3].note
    assert entries(tmp_path) == found


def test_a_long_escaped_name_is_a_folder_name_still(tmp_path):
    name = "\u202e" * 80  # 240 bytes of UTF-8, 480 escaped
    (tmp_path / name).mkdir()
    (student_id,) = [e.student for e in entries(tmp_path)]
    assert len(os.fsencode(student_id)) <= 255 and student_id.startswith("\\u202e")


def test_fingerprint_is_what_grading_reads(tmp_path):
    """A file the grader never reads (data, a folder deep below) changes no fingerprint; a
    topic's file does."""
    folder = student(tmp_path, "s")
    before = fingerprint(load_submission(folder), "kit", ())
    sparse(folder / "data.bin")
    nest(folder, DEPTH)
    try:
        assert fingerprint(load_submission(folder), "kit", ()) == before
        (folder / "softmax.py").write_text(SOLUTION + "\n# changed\n")
        assert fingerprint(load_submission(folder), "kit", ()) != before
    finally:
        remove(folder)


def test_gradebook_cells_never_begin_a_formula():
    """OWASP's rule: a cell beginning with = + - @, a tab or a carriage return is led by a
    single quote, in names, flags and notes alike."""
    starts = ["=SUM(A1)", "+1", "-1", "@x", "\tx", "\rx"]
    reports = {s: {"submission": s, "score": 0.0, "max_score": 1.0, "topics": [],
                   "flags": [{"topic": "t", "function": "f", "call": s, "how": "source"}]}
               for s in starts}
    text = gradebook_csv(reports, None, {s: s for s in starts})  # type: ignore[arg-type]
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert "'=SUM(A1)" in cells and "'-1" in cells


def test_a_notebook_flood_is_refused_before_it_is_parsed(tmp_path):
    """4 MB of `{},{},...` as a notebook's cells would be 1.3 million dicts in the grader (and
    in the batch's coordinator, which reads every submission): refused unparsed, as the
    student's problem."""
    (tmp_path / "softmax.ipynb").write_bytes(b'{"cells": [' + b"{}," * 1_400_000 + b"{}]}")
    problem = load_submission(tmp_path).problems["softmax"]
    assert "softmax.ipynb" in problem and "more than 1,000,000 values" in problem

"""Hostile submissions earn nothing, grading goes on after each, and none changes the kit.

Each entry below is a softmax.py that tries to cheat or to break the grader and otherwise
returns zeros; they are graded in one batch together with a correct submission graded last.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.kit.permissive import permissive_env
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(70)  # rough seconds; see tests/kit/conftest.py

ZEROS = '''
def softmax(X):
    return torch.zeros_like(X)

def logsumexp(X):
    return torch.zeros(X.shape[0], dtype=X.dtype)

def log_softmax(X):
    return torch.zeros_like(X)

def softmax_regression(X, W, b):
    return torch.zeros(X.shape[0], W.shape[1], dtype=X.dtype)
'''

HOSTILE = {
    "patch_allclose": '''
import torch, torch.testing
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
''' + ZEROS,
    "eq_always_true": '''
import torch

class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def allclose(self, *a, **k):
        return True

class Anything:
    def __eq__(self, other):
        return True
    shape = property(lambda self: (0,))

def softmax(X):
    return torch.zeros_like(X).as_subclass(Liar)

def logsumexp(X):
    return Anything()

def log_softmax(X):
    return Anything()

def softmax_regression(X, W, b):
    return Anything()
''',
    "sys_exit_at_import": "import sys\nimport torch\nsys.exit(0)\n" + ZEROS,
    "os_exit_in_call": "import os\nimport torch\n" + ZEROS.replace(
        "    return", "    os._exit(3)\n    return"),
    "infinite_loop": "import torch\n" + ZEROS.replace("    return", "    while True:\n"
                                                       "        pass\n    return"),
    "memory_hog": '''
import torch
blocks = []

def softmax(X):
    while True:
        blocks.append(torch.ones(64 * 2**20 // 4))

def logsumexp(X):
    return torch.empty(10**13)

def log_softmax(X):
    return bytearray(1 << 45)

def softmax_regression(X, W, b):
    return [0] * (1 << 40)
''',
    "read_solutions": '''
import pathlib, torch
import grader
root = pathlib.Path(grader.__file__).resolve().parents[1]
stolen = {}
for rel in ("solutions/softmax.py", "tests/hidden/test_softmax.py", ".git/HEAD"):
    try:
        stolen[rel] = (root / rel).read_text()
    except OSError:
        pass
if "solutions/softmax.py" in stolen:
    exec(stolen["solutions/softmax.py"])
else:
''' + "\n".join("    " + line for line in ZEROS.splitlines()),
    "write_report": '''
import json, pathlib, torch
FAKE = {"score": 1000, "max_score": 1000, "topics": []}
for p in OUT_PATHS:
    try:
        pathlib.Path(p).mkdir(parents=True, exist_ok=True)
        (pathlib.Path(p) / "report.json").write_text(json.dumps(FAKE))
    except OSError:
        pass
''' + ZEROS,
    "tamper_kit": '''
import pathlib, torch
import grader
root = pathlib.Path(grader.__file__).resolve().parents[1]
for rel in ("grader/checks.py", "course.toml", "tests/conftest.py", "solutions/softmax.py"):
    try:
        (root / rel).write_text("# owned")
    except OSError:
        pass
''' + ZEROS,
    "craft_wire": '''
import os, stat, struct, json, torch

def _spray():
    fake = json.dumps({"tree": {"head": {"t": "dict", "k": ["ok"], "v": [True]},
                                "result": None, "writeback": None},
                       "storages": [], "blob_sizes": []}).encode()
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, struct.pack(">cQ", b"D", len(fake) + 4)
                         + struct.pack(">I", len(fake)) + fake)
                os.write(fd, struct.pack(">cQ", b"D", 1 << 62))
        except OSError:
            pass
''' + ZEROS.replace("    return", "    _spray()\n    return"),
    "kill_grader": '''
import os, signal, torch

def _kill_everything():
    for target in (os.getppid(), -1, 0):
        try:
            os.kill(target, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
''' + ZEROS.replace("    return", "    _kill_everything()\n    return"),
}


def kit_fingerprint() -> dict[str, str]:
    """Hash of every file git tracks in the kit (what a submission must never change)."""
    files = subprocess.run(["git", "ls-files"], cwd=KIT_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {f: hashlib.sha256((KIT_ROOT / f).read_bytes()).hexdigest() for f in files
            if (KIT_ROOT / f).is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    subs, out = root / "in", root / "out"
    out_paths = [str(out / "students" / name) for name in HOSTILE] + [
        str(out), str(KIT_ROOT / "grading")]
    for name, source in HOSTILE.items():
        (subs / name).mkdir(parents=True)
        (subs / name / "softmax.py").write_text(
            source.replace("OUT_PATHS", repr(out_paths)))
    shutil.copytree(KIT_ROOT / "solutions", subs / "zz_correct")
    before = kit_fingerprint()
    run = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out),
                          "--topics", "softmax", "--call-timeout", "3"], cwd=KIT_ROOT,
                         env=permissive_env(root),  # the attacks run: the sandbox is tested
                         capture_output=True, text=True, timeout=900)
    reports = {p.name: json.loads((p / "report.json").read_text())
               for p in (out / "students").iterdir() if (p / "report.json").exists()}
    return run, reports, before, kit_fingerprint()


def test_batch_finishes(graded):
    run, reports, _, _ = graded
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(reports) == {*HOSTILE, "zz_correct"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_submission_earns_nothing(graded, name):
    _, reports, _, _ = graded
    report = reports[name]
    assert report["max_score"] > 0
    assert report["score"] == 0, [t for topic in report["topics"] for t in topic["tests"]
                                  if t["score"] > 0]


def test_outcomes_say_what_happened(graded):
    _, reports, _, _ = graded

    def outcomes(name):
        return {t["outcome"] for topic in reports[name]["topics"] for t in topic["tests"]}

    def messages(name):
        return " ".join(t["message"] for topic in reports[name]["topics"] for t in topic["tests"])

    assert "timeout" in outcomes("infinite_loop")
    assert "error" in outcomes("os_exit_in_call") and "died" in messages("os_exit_in_call")
    assert "sys.exit()" in messages("sys_exit_at_import")
    assert "memory" in messages("memory_hog").lower()


def test_grading_goes_on_after_hostile_submissions(graded):
    _, reports, _, _ = graded
    assert reports["zz_correct"]["score"] == reports["zz_correct"]["max_score"] > 0


def test_kit_files_unchanged(graded):
    _, _, before, after = graded
    assert before == after


def test_worker_was_isolated(graded):
    _, reports, _, _ = graded
    isolation = set(reports["zz_correct"]["isolation"])
    assert {"network-namespace", "unprivileged", "rlimits"} <= isolation
    # as root (CI, a grading server) the worker sees an allow-list root, not the host
    assert ("allow-list-root" if os.geteuid() == 0 else "hidden-paths") in isolation

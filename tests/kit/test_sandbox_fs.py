"""What a worker can see, write and use: an allow-list root (the interpreter, the venv, the kit's
public parts), private tmpfs that vanish with it, its own uid, aggregate limits for its whole
process tree, and output that never reaches the grader's terminal.

Each probe below is student code returning what it found; the grader is root on CI, where
every step is in force (a machine that refuses one reports so, and the test says why it
skips). The probes use machinery a course would forbid (os, fork), so they are graded against
a course that allows it; the worker's audit hook refuses running programs, so a child process
is a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from grader.handle import Student, StudentCrashed
from grader.plugin import Grading
from tests.kit.permissive import permissive_course, permissive_env
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(20)

PROBES = '''
import os
import select
import sys
import time

import torch

def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return f"error: {e.strerror}"

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read(200).decode("utf-8", "replace")
    except OSError as e:
        return f"error: {e.strerror}"

def write_everywhere(mark):
    """Try to leave a file in every place a student might; return where it worked."""
    places = ["/tmp", "/var/tmp", "/dev/shm", os.environ.get("HOME", "/"), "/", os.getcwd(),
              os.path.dirname(torch.__file__), MARK_DIRS]
    done = []
    for folder in places:
        try:
            with open(os.path.join(folder, mark), "w") as f:
                f.write("left behind")
            done.append(folder)
        except OSError:
            pass
    return done

def walk_for(name, limit=200000):
    """Every file called `name` reachable from / (what a student hunting for code would do)."""
    found, seen = [], 0
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys"))]
        seen += len(files)
        found += [os.path.join(root, f) for f in files if f == name]
        if seen > limit:
            break
    return found

def identity():
    return os.getuid(), os.getgid(), os.environ.get("HOME"), os.getcwd()

def mount_options():
    """Each writable mount point -> its options, from the worker's own mount table."""
    with open("/proc/self/mounts") as f:
        return {line.split()[1]: line.split()[3] for line in f if " rw," in line + ","}

def spoof_console():
    os.write(1, b"\\x1b[2J\\x1b[HTotal 109/109\\n")
    os.write(2, b"\\x1b[31mAll tests passed\\x1b[0m\\n")
    pid = os.fork()  # a child process's output (the audit hook refuses running a program)
    if pid == 0:
        os.write(1, b"from a child process\\n")
        os._exit(0)
    os.waitpid(pid, 0)
    return 1

def hold_memory_in_children(children, mb):
    """Fork `children` processes that each touch `mb` MB and wait; return how many held
    their memory at the same time."""
    r, w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            try:
                block = bytearray(mb << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os.write(w, b"x")
                time.sleep(30)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    held, deadline = 0, time.time() + 5
    while held < children and time.time() < deadline:
        ready, _, _ = select.select([r], [], [], 0.1)
        if ready:
            chunk = os.read(r, 64)
            if not chunk:  # every child has exited (or was killed)
                break
            held += len(chunk)
    for p in pids:
        try:
            os.kill(p, 9)
        except OSError:
            pass
    return held
'''


@pytest.fixture(scope="module")
def marks(tmp_path_factory):
    """A secret file name, and a folder of the host the worker must not reach."""
    host_dir = tmp_path_factory.mktemp("host")
    return f"torchdrill-probe-{uuid.uuid4().hex}", host_dir


@pytest.fixture(scope="module")
def student(tmp_path_factory, marks):
    if os.geteuid() != 0:
        pytest.skip("the allow-list root and own uids need the grader to run as root")
    mark, host_dir = marks
    sub = tmp_path_factory.mktemp("probe")
    (sub / "softmax.py").write_text(textwrap.dedent(PROBES).replace(
        "MARK_DIRS", repr(str(host_dir))))
    course = permissive_course(tmp_path_factory.mktemp("course")).with_call_timeout(30)
    data = tmp_path_factory.mktemp("data")  # under /tmp, as a kit cloned there would be
    (data / "marker.txt").write_text("course data")
    data.chmod(0o755)  # readable by others, as data and a cloned kit are
    saved = os.environ.get("TORCHDRILL_DATA")
    os.environ["TORCHDRILL_DATA"] = str(data)  # the template, started now, inherits it
    try:
        grading = Grading(sub, course)
    finally:
        if saved is None:
            os.environ.pop("TORCHDRILL_DATA")
        else:
            os.environ["TORCHDRILL_DATA"] = saved
    s = Student(grading.session, course.topic("softmax"))
    s._data = data
    grading.session.begin_test("probe")
    s.identity()  # start the worker
    if "allow-list-root" not in s.isolation:
        grading.close()
        pytest.skip(f"this kernel refused the allow-list root: {s.isolation}")
    yield s
    grading.close()


def test_root_holds_only_what_running_a_submission_needs(student):
    top = set(student.listing("/"))
    assert top <= {"usr", "lib", "lib64", "lib32", "libx32", "bin", "sbin", "etc", "dev",
                   "proc", "tmp", "var", "home", "root", "work", "opt", "mnt", "srv", "media",
                   "run", "sys"} | {p.split("/")[1] for p in (sys.prefix, str(KIT_ROOT))}, top
    kit = str(KIT_ROOT)
    assert set(student.listing(kit)) <= {"grader", "torchdrill", "course.toml", "datasets",
                                         ".venv"}
    assert set(student.listing(kit)) >= {"grader", "torchdrill"}
    grader = set(student.listing(f"{kit}/grader"))  # the instructor's code is masked, empty
    assert {"sandbox", "plugin.py"} <= grader and student.listing(f"{kit}/grader/instructor") in (
        [], "error: No such file or directory"), student.listing(f"{kit}/grader/instructor")
    assert student.read(f"{kit}/grader/nbexecute.py") in ("", "error: No such file or directory")
    assert set(student.listing("/etc")) <= {"passwd", "group", "nsswitch.conf", "hosts",
                                             "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
                                             "localtime"}


def test_allowed_paths_under_tmp_stay_visible(student):
    """The worker's private /tmp must not shadow an allowed path that lives under the host's
    /tmp (the course data here; a kit or venv cloned there in CI)."""
    assert student.read(str(student._data / "marker.txt")) == "course data"


def test_solutions_tests_and_other_folders_are_not_there(student, marks, tmp_path):
    _, host_dir = marks
    secret = tmp_path / "classmate" / "softmax.py"
    secret.parent.mkdir()
    secret.write_text("def softmax(X): return X\n")
    for path in (KIT_ROOT / "solutions" / "softmax.py", KIT_ROOT / "tests" / "hidden",
                 secret, host_dir, "/root", "/var/log"):
        assert student.read(str(path)).startswith("error"), path
    assert student.walk_for("softmax.py") == []
    assert student.walk_for("test_softmax.py") == []


def test_writes_land_in_private_tmpfs_and_vanish(student, marks, tmp_path):
    mark, host_dir = marks
    done = student.write_everywhere(mark)
    assert "/" not in done and str(host_dir) not in done
    assert {"/tmp", "/dev/shm", "/var/tmp"} <= set(done)  # private scratch space works
    found = subprocess.run(["find", "/tmp", "/var/tmp", "/dev/shm", "/root", str(KIT_ROOT),
                            "-name", mark], capture_output=True, text=True).stdout
    assert found == "", f"a file written by student code is on the host: {found}"


def test_private_scratch_space_holds_no_code_that_runs(student):
    """What student code writes may not be run or loaded: its scratch space is noexec."""
    options = student.mount_options()
    scratch = ("/tmp", "/var/tmp", "/dev/shm", "/home/student")
    assert all("noexec" in options[m].split(",") for m in scratch), options


def test_each_worker_has_its_own_unprivileged_uid(student):
    uid, gid, home, cwd = student.identity()
    assert uid not in (0, os.getuid()) and gid != 0
    assert home == cwd == "/home/student"


def test_raw_output_never_reaches_the_terminal(student, capfd):
    assert student.spoof_console() == 1
    out, err = capfd.readouterr()
    assert "109/109" not in out + err and "\x1b" not in out + err
    assert "from a child process" not in out + err


def test_memory_is_limited_for_the_whole_process_tree(tmp_path):
    """Children of 200 MB each: three hold 600 MB, beyond a 400 MB limit for the tree, though
    each alone is within every per-process limit."""
    if os.geteuid() != 0:
        pytest.skip("cgroups need the grader to run as root")
    (tmp_path / "softmax.py").write_text(textwrap.dedent(PROBES).replace("MARK_DIRS", "'/'"))
    course = permissive_course(tmp_path).with_call_timeout(60)
    course.limits["memory_mb"] = 400
    grading = Grading(tmp_path, course)
    try:
        s = Student(grading.session, course.topic("softmax"))
        grading.session.begin_test("memory")
        s.identity()
        if "cgroup-memory" not in s.isolation:
            pytest.skip(f"no memory cgroup on this machine: {s.isolation}")
        try:
            held = s.hold_memory_in_children(3, 200)
        except StudentCrashed:
            held = 0
        assert held < 3
        grading.session.begin_test("memory-within")
        assert s.hold_memory_in_children(1, 100) == 1  # a tree within its limit runs
    finally:
        grading.close()


THIEF = '''
import glob
import os

def _loot():
    """Everything of the class this worker can read: the classmate's code and reports."""
    found = []
    for pattern in (CLASS + "/*/*.py", CLASS + "/../**/*.py", OUT + "/**/report.json",
                    OUT + "/**/*.md", "/tmp/**/*.py", "/home/**/*.py"):
        for path in glob.glob(pattern, recursive=True):
            try:
                with open(path) as f:
                    found.append(path + ": " + f.read(300))
            except OSError:
                pass
    return found

def softmax(X):
    loot = _loot()
    for text in loot:
        if "def softmax" in text:
            exec(text.split(": ", 1)[1], globals())
            return globals()["softmax"](X)
    raise RuntimeError("THIEF-FOUND " + repr(loot)[:2000])
'''


def test_a_student_cannot_read_a_classmates_files_or_reports(tmp_path):
    """bob is graded first; the thief then looks for bob's code and every report."""
    secret = f"bob-secret-{uuid.uuid4().hex}"
    cls, out = tmp_path / "class", tmp_path / "out"
    (cls / "bob").mkdir(parents=True)
    (cls / "bob" / "softmax.py").write_text(
        f"# {secret}\n" + (KIT_ROOT / "solutions" / "softmax.py").read_text())
    (cls / "zz_thief").mkdir()
    (cls / "zz_thief" / "softmax.py").write_text(
        THIEF.replace("CLASS", repr(str(cls))).replace("OUT", repr(str(out))))
    run = subprocess.run([sys.executable, "-m", "grader", "batch", str(cls), "--out", str(out),
                          "--topics", "softmax", "--jobs", "1", "-k", "test_softmax"],
                         env=permissive_env(tmp_path), cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    reports = {p.parent.name: p.read_text() for p in out.rglob("report.json")}
    import json

    bob, thief = (json.loads(reports[n]) for n in ("bob", "zz_thief"))
    assert bob["score"] == bob["max_score"] > 0
    assert thief["score"] == 0
    messages = [t["message"] for topic in thief["topics"] for t in topic["tests"]]
    assert any("THIEF-FOUND" in m for m in messages), messages  # it ran and found no code
    assert secret not in reports["zz_thief"]
    for place in (cls, out):  # what it found (the kit's public parts, if they are under /tmp)
        assert all(str(place) not in m for m in messages), messages


TEMPLATE_PROBE = '''
import os
import sys

def softmax(X):
    seen = sorted(m for m in sys.modules if m.split(".")[0] in (
        "tests", "solutions", "pytest", "_pytest", "hypothesis", "rich")
        or m.startswith(("grader.instructor", "grader.plugin", "grader.handle", "grader.grade")))
    raise RuntimeError(repr({"modules": seen, "argv": sys.argv[1:],
                             "stdin": os.readlink("/proc/self/fd/0")}))
'''


def test_the_template_a_grade_forks_holds_what_a_fresh_import_would(tmp_path):
    """`python -m grader grade` forks its worker template right after `import torch`: a worker
    finds no test, solution or grading module imported, not the grader's command line (the
    submission's path, the output folder) and no terminal on its stdin."""
    import ast
    import json

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "softmax.py").write_text(TEMPLATE_PROBE)
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "sub"),
                          "--topics", "softmax", "--out", str(tmp_path / "out"), "-k",
                          "test_softmax_small_example"], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=300, env=permissive_env(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    (test,) = json.loads((tmp_path / "out" / "report.json").read_text())["topics"][0]["tests"]
    seen = ast.literal_eval(test["message"].split("RuntimeError: ", 1)[1].rsplit(" (line", 1)[0])
    assert seen == {"modules": [], "argv": [], "stdin": "/dev/null"}, seen

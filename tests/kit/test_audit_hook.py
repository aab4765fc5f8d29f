"""The worker's audit hook (grader/sandbox/audit.py): each class of reaching around Python's
walls fails the call as forbidden with a runtime flag, whether or not the student's code
catches the refusal, and correct code that uses the libraries' first-use paths (namedtuple,
typing, matplotlib, DataLoader workers, torch's warnings, a notebook that plots and loads
MNIST) keeps every point.

The attacks run against a course that allows all machinery (tests/kit/permissive.py), so that
the source scan does not stop them first: the hook alone is tested.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
from nbformat import v4, writes

from grader.course import load_course
from grader.failures import ForbiddenCall, StudentFailure
from grader.grade import grade
from grader.handle import Student
from grader.notebooks import module_source
from grader.plugin import Grading, outcome_of
from grader.sandbox.client import Template
from grader.sandbox.execute import submission_code
from tests.kit.permissive import permissive_course
from tests.kit.test_notebooks import source_notebook, student_notebook

pytestmark = pytest.mark.heavy(60)  # rough seconds; see tests/kit/conftest.py

SOFTMAX = '''
import functools

import torch

def _softmax(X):
    E = (X - X.max(1, keepdim=True).values).exp()
    return E / E.sum(1, keepdim=True)
'''

# function body -> what the flag names. Each body tries its attack inside a try/except
# BaseException, so the call returns a correct result whatever the hook does.
ATTACKS = {
    "traceback_frame": ('''
    try:
        1 / 0
    except ZeroDivisionError as e:
        e.__traceback__.tb_frame.f_back.f_globals["dispatch_guard"]._Armed.keep = False
''', "tb_frame"),
    "getframe": ('''
    torch.sys._getframe(1).f_globals["dispatch_guard"]._Armed.keep = False
''', "sys._getframe"),
    "generator_frame": ('''
    g = (x for x in [1])
    g.gi_frame.f_back
''', "gi_frame"),
    "code_object": ('''
    code = (lambda: 0).__code__
''', "__code__"),
    "gc_referrers": ('''
    gc = torch.sys.modules["gc"]
    gc.get_referrers(torch.softmax)
''', "gc.get_referrers"),
    "gc_objects": ('''
    torch.sys.modules["gc"].get_objects()
''', "gc.get_objects"),
    "import_statement_new": ('''
    import pydoc
    pydoc.locate("grader.sandbox.dispatch_guard")._Armed.keep = False
''', "import pydoc"),
    "import_from_a_package": ('''
    from torch.utils import cpp_extension
''', "import torch.utils.cpp_extension"),
    "import_module_call": ('''
    torch.importlib.import_module("pydoc")
''', "import pydoc"),
    "builtin_import_call": ('''
    __import__("code")
''', "import code"),
    "eval_string": ('''
    eval("torch.sys")
''', "compile"),
    "exec_string": ('''
    exec("import torch")
''', "compile"),
    "compile_as_the_submission": ('''
    compile("x = 1", __file__, "exec")
''', "compile"),
    "string_annotation": ('''
    def f(x: "torch.sys.modules"):
        pass
    torch.sys.modules["typing"].get_type_hints(f)
''', "exec"),
    "ctypes_memory": ('''
    ctypes = torch.sys.modules["ctypes"]
    ctypes.string_at(id(X), 8)
''', "ctypes.string_at"),
    "ctypes_library": ('''
    torch.ctypes.CDLL(None)
''', "ctypes.dlopen"),
    "subprocess": ('''
    torch.sys.modules["subprocess"].run(["true"])
''', "subprocess.Popen"),
    "os_system": ('''
    torch.os.system("true")
''', "os.system"),
    "socket": ('''
    torch.sys.modules["socket"].socket()
''', "socket.__new__"),
    "pickle_global": ('''
    torch.sys.modules["pickle"].loads(b"cgrader.sandbox.dispatch_guard\\n_Armed\\n.")
''', "pickle.find_class"),
    "exec_in_a_thread": ('''
    t = torch.sys.modules["threading"].Thread(target=exec, args=("import torch",))
    t.start()
    t.join()
''', "compile"),
    "unpickle_in_a_thread": ('''
    t = torch.sys.modules["threading"].Thread(target=torch.sys.modules["pickle"].loads,
                                              args=(b"cgrader.sandbox.dispatch_guard\\n_Armed\\n.",))
    t.start()
    t.join()
''', "pickle.find_class"),
    "finalizer_exec": ('''
    class Later:
        __del__ = functools.partial(exec, "import torch")
    Later()
''', "compile"),
    "audit_hook_of_its_own": ('''
    torch.sys.addaudithook(lambda event, args: None)
''', "sys.addaudithook"),
    "trace": ('''
    torch.sys.settrace(None)
''', "sys.settrace"),
    "input": ('''
    input()
''', "builtins.input"),
    "library_from_a_written_file": ('''
    with open("/tmp/x.so", "wb") as f:
        f.write(b"\\x7fELF")
    torch.ops.load_library("/tmp/x.so")
''', "loading /tmp/x.so"),
    "code_from_a_written_file": ('''
    path = "/tmp/mlp.py"
    with open(path, "w") as f:
        f.write("import torch\\n")
    torch.sys.path.insert(0, "/tmp")
    import mlp
''', "loading /tmp/"),
}

# a Dataset whose items, pickled back by a DataLoader worker, call eval in the worker itself
PICKLED_EVAL = '''
class _Evil:
    def __reduce__(self):
        return (eval, ("torch.sys",))

class _Items(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return _Evil()

def softmax(X):
    try:
        for _ in torch.utils.data.DataLoader(_Items(), batch_size=None, num_workers=1):
            pass
    except BaseException:
        pass
    return _softmax(X)
'''

HONEST = SOFTMAX + '''
import collections
import copy
import math
import random
import time
import typing

import numpy as np

Pair = collections.namedtuple("Pair", "a b")
T = typing.TypeVar("T")


class Point(typing.NamedTuple):
    x: float
    y: float


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


@functools.lru_cache(maxsize=None)
def _scale(n: int) -> float:
    return math.sqrt(n) / math.sqrt(n)


class _Buggy:
    def __del__(self):  # Python prints the error, importing what it needs from C
        raise ValueError("a bug in a finalizer")


def _batches(X):
    yield from torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X), batch_size=2,
                                           num_workers=2)


def softmax(X):
    start = time.perf_counter()
    import matplotlib.pyplot as plt
    from torchdrill import plot

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    fig.savefig("/tmp/fig.png")
    plot.plot(torch.arange(3.0), [torch.arange(3.0) ** 2], "x", "y").figure.savefig("p.png")
    rows = [b[0] for b in _batches(X)]
    assert torch.equal(torch.cat(rows), X)
    torch.tensor(X)  # torch warns from C++: the warning reads this file's lines
    print(Pair(1, 2), Point(1.0, 2.0), copy.deepcopy([X]), random.random(), np.ones(2))
    y = Square.apply(X.detach().requires_grad_()).sum()
    y.backward()
    _Buggy()
    print("took", time.perf_counter() - start)
    return _softmax(X) * _scale(4)
'''


@pytest.fixture(scope="module")
def template():
    shared = Template()
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def permissive(tmp_path_factory):
    return permissive_course(tmp_path_factory.mktemp("course"))


def call(folder: Path, source: str, template, course, function: str = "softmax",
         topic: str = "softmax", *args):
    """(result, the StudentFailure it raised or None, the test's hits, the flags) of one call
    into `source` as `folder`/`topic`.py, graded against `course` in a sandboxed worker."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{topic}.py").write_text(source)
    grading = Grading(folder, course, template=template)
    try:
        grading.session.begin_test("t")
        student = Student(grading.session, course.topic(topic))
        try:
            result, error = student.call(function, *(args or (torch.randn(3, 4),))), None
        except StudentFailure as e:
            result, error = None, e
        return result, error, grading.session.test_hits, grading.session.flags
    finally:
        grading.close()


def assert_refused(hits: list, flags: list, call_name: str) -> None:
    """The test fails as forbidden, and the submission is flagged at run time, for
    `call_name`."""
    assert outcome_of(None, hits)[0] == "forbidden", hits
    assert any(call_name in h["call"] for h in hits), hits
    assert any(call_name in f["call"] and f["how"] == "runtime" for f in flags), flags


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_in_a_call_is_refused_and_flagged(name, tmp_path, template, permissive):
    body, call_name = ATTACKS[name]
    source = SOFTMAX + "\ndef softmax(X):\n    try:" + body.replace("\n    ", "\n        ") + \
        "    except BaseException:\n        pass\n    return _softmax(X)\n"
    result, error, hits, flags = call(tmp_path, source, template, permissive)
    assert error is None, error  # the student caught the refusal...
    assert result is not None
    assert_refused(hits, flags, call_name)  # ...and the test is lost all the same


def test_an_uncaught_refusal_fails_the_call_as_forbidden(tmp_path, template, permissive):
    source = SOFTMAX + "\ndef softmax(X):\n    eval('1')\n    return _softmax(X)\n"
    _, error, hits, flags = call(tmp_path, source, template, permissive)
    assert isinstance(error, ForbiddenCall), error
    assert "compiling or running code from a string" in str(error)
    assert_refused(hits, flags, "compile")


def test_a_pickled_eval_from_a_dataloader_worker_is_refused(tmp_path, template, permissive):
    _, _, hits, flags = call(tmp_path, SOFTMAX + PICKLED_EVAL, template, permissive)
    assert_refused(hits, flags, "pickle.find_class(builtins.eval)")


def test_an_attack_at_import_costs_every_function(tmp_path, template, permissive):
    source = SOFTMAX + '''
try:
    1 / 0
except ZeroDivisionError as e:
    e.__traceback__.tb_frame.f_globals

def softmax(X):
    return _softmax(X)

def log_softmax(X):
    return _softmax(X).log()
'''
    for function in ("softmax", "log_softmax"):
        _, error, hits, flags = call(tmp_path / function, source, template, permissive,
                                     function)
        assert isinstance(error, ForbiddenCall), error
        assert "when it was imported" in str(error)
        assert_refused(hits, flags, "tb_frame")
        assert {f["function"] for f in flags} >= {function}


def test_an_object_left_in_the_worker_is_judged_when_it_runs(tmp_path, template, permissive):
    """A generator made by one call runs its body on later requests, student code all the
    same."""
    source = SOFTMAX + '''
def batches(X):
    yield X
    try:
        torch.sys._getframe()
    except BaseException:
        pass
    yield X
'''
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "softmax.py").write_text(source)
    grading = Grading(folder, permissive, template=template)
    try:
        grading.session.begin_test("t")
        student = Student(grading.session, permissive.topic("softmax"))
        generator = student.batches(torch.ones(2, 2))
        next(generator)
        assert grading.session.test_hits == []
        next(generator)
        assert_refused(grading.session.test_hits, grading.session.flags, "sys._getframe")
    finally:
        grading.close()


def test_correct_code_on_first_use_paths_is_not_refused(tmp_path, template, permissive):
    X = torch.randn(4, 5)
    result, error, hits, flags = call(tmp_path, HONEST, template, permissive, "softmax",
                                      "softmax", X)
    assert error is None, error
    assert hits == [] and flags == []
    assert torch.allclose(result, torch.softmax(X, 1))


def test_a_notebook_that_plots_loads_data_and_times_itself_keeps_full_marks(tmp_path,
                                                                           template):
    cells = [
        (1, "import time\nt0 = time.time()\nimport matplotlib.pyplot as plt\nimport torch\n"
            "from torchdrill import data as ddata\nfrom torchdrill import plot as dplot"),
        (2, "x = torch.arange(0, 3, 0.1)\n"
            "ax = dplot.plot(x, [x ** 3 - 1 / x, 4 * x - 4], 'x', 'f(x)', legend=['f', 't'])\n"
            "ax.figure.savefig('plot.png')\nfig, axes = plt.subplots(1, 2)\n"
            "axes[0].plot([1, 2, 3], [3, 1, 2])\naxes[1].imshow(torch.rand(8, 8).numpy())\n"
            "fig.savefig('fig.png')\nplt.show()\nprint('plotted', time.time() - t0)"),
        (3, "train_iter, test_iter, source = ddata.load_mnist_or_synthetic(256)\n"
            "X, y = next(iter(train_iter))\nprint(source, X.shape, y[:5])\n"
            "dplot.show_images(X[:8, 0], 2, 4)\n"
            "anim = dplot.Animator(xlabel='epoch', xlim=[1, 3], legend=['a', 'b'])\n"
            "for e in range(3):\n    anim.add(e + 1, (0.5, 0.6))\n"
            "took = time.time() - t0"),
        (4, "def plot_report():\n    return [X.shape[0], len(anim.X[0]), took > 0]"),
    ]
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "softmax.ipynb").write_text(writes(student_notebook(source_notebook("softmax"),
                                                                  extra=cells)))
    course = load_course()
    report = grade(folder, ["softmax"], "all", template=template, course=course)
    assert report["score"] == report["max_score"] > 0, report["topics"]
    assert report["flags"] == []
    grading = Grading(folder, course, template=template)
    try:  # the extra cells ran: a failing cell would only have cost what it defines
        grading.session.begin_test("t")
        assert Student(grading.session, course.topic("softmax")).plot_report() == [256, 3, True]
        assert grading.session.test_hits == []
    finally:
        grading.close()


def test_in_process_grading_installs_no_hook(tmp_path, permissive):
    """`--in-process` is the student's own machine: a hook would bind their debugger and
    test runner for good."""
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "softmax.py").write_text(SOFTMAX + '''
import sys

def softmax(X):
    eval("1")
    sys._getframe()
    return _softmax(X)
''')
    grading = Grading(folder, permissive, in_process=True)
    try:
        grading.session.begin_test("t")
        Student(grading.session, permissive.topic("softmax")).softmax(torch.ones(2, 2))
        assert grading.session.test_hits == []
    finally:
        grading.close()
        sys.modules.pop("softmax", None)


def test_only_the_converters_cells_count_as_the_submissions_code():
    """A notebook's statements are compiled from constants the converter writes at the
    module's top level; the same call inside a student's own definition is not one of them."""
    sneaky = "def f():\n    exec(compile('import os', 'softmax.ipynb, cell 9', 'exec'), {})"
    nb = v4.new_notebook(cells=[v4.new_code_cell("x = 1"), v4.new_code_cell(sneaky)])
    text = module_source(nb, "softmax.ipynb")
    compiled = submission_code({"softmax": ("/sub/softmax.ipynb", text)})
    labels = {label for label, _ in compiled}
    assert ("/sub/softmax.ipynb", text.encode()) in compiled
    assert any(label.endswith(", cell 1") for label in labels)
    assert "softmax.ipynb, cell 9" not in labels
    assert ast.parse(text)  # the module the worker imports

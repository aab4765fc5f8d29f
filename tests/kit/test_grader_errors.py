"""The grader's own failures are never a student's lost point, and nothing a student's code can
do is scored as the grader's failure (`grader.failures`):

- a bug in our argument comparison is a GraderError, recorded apart and not scored;
- an argument a student leaves as something no comparison can read (a tensor subclass, a freed
  storage), or a torch the student tampered with in the worker, is the student's failure;
- what a worker claims about the grader's own code is checked in the grader before it counts;
- a message's "(line N of file)" is the submission's line, never torch's, the standard
  library's or torchdrill's.
"""

from __future__ import annotations

import json
import sys
import textwrap

import nbformat
import pytest
import torch

from grader.course import load_course
from grader.failures import ArgumentChanged, GraderError, StudentCrashed, StudentRaised
from grader.grade import PYTEST_PLUGINS, grade
from grader.grade import test_files as course_test_files
from grader.handle import Student, _apply_writeback, _changed_arguments, _grader_step
from grader.plugin import Grading, grader_error_of
from grader.sandbox import server
from grader.sandbox.server import _largest_difference
from tests.kit.students import student_of
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(25)  # rough seconds; see tests/kit/conftest.py

SOURCE = '''
import json
import random

import torch
from torchdrill import data


class Hostile(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError("a subclass that refuses every operation")


def touch(X):
    X.mul_(1.0)  # a new version of X, the same values: the comparison runs
    return X.sum().item()


def retype(X):
    X.__class__ = Hostile
    return 1.0


def regrad(X):
    X.grad = torch.zeros_like(X).as_subclass(Hostile)
    return 1.0


def free(X):
    X.set_(torch.ones(2))  # a storage of its own, which can be resized (the wire's cannot)
    X.untyped_storage().resize_(0)
    return 1.0


def tamper(X):
    def broken(*args, **kwargs):
        raise RuntimeError("torch tampered with")
    torch.Tensor.isnan = broken  # what the grader's comparison uses, in the worker
    X.zero_()
    return 1.0


def divide(X):
    return X / 0 + 1 / 0  # line 45


def labels_of_nothing(X):
    return data.get_fashion_mnist_labels(None)  # line 49


def pick_from_nothing(X):
    return random.choice([])  # line 53


def parse(X):
    return json.loads("{")  # line 57


def split_badly(X):
    return torch.split(X, [1, 1, 1, 1], dim=0)  # line 61
'''


def lines(source: str) -> dict[str, int]:
    """`# line N` comments, checked: the function's name -> N."""
    found = {}
    for number, line in enumerate(source.splitlines(), start=1):
        if "# line " in line:
            assert int(line.rsplit("# line ", 1)[1]) == number, line
            found[line.split("  # line")[0].split("(")[0].strip()] = number
    return found


@pytest.fixture(scope="module", params=["worker", "in-process"])
def student(request, tmp_path_factory):
    sub = tmp_path_factory.mktemp("sub")
    (sub / "sgd.py").write_text(textwrap.dedent(SOURCE))
    with student_of(sub, "sgd", in_process=request.param == "in-process") as s:
        yield s


def fresh(student: Student, test: str) -> Student:
    student._session.begin_test(test)  # a crash fails only the test it happened in
    return student


# --------------------------------------------------------------------------- grader bugs


def bug(old, new):
    """A bug in our comparison that shows on one input only: test_softmax_small_example's X."""
    if tuple(old.shape) == (2, 3):
        raise RuntimeError("a bug in the grader's comparison")
    return _largest_difference(old, new)


def test_a_bug_in_the_argument_comparison_is_a_grader_error(student, monkeypatch):
    """It raised in the worker and was swallowed: every argument read as unchanged, and for
    in-place arguments nothing came back ("params not updated", the student's lost point).
    In-process the same function is the worker's and the grader's: a real bug fails in both."""
    if student._session.template is not None:
        pytest.skip("the bug is patched into this process: the in-process worker")
    monkeypatch.setattr(server, "_largest_difference", bug)
    with pytest.raises(GraderError, match=r"comparing touch's argument #1 .* failed in the "
                       r"worker and again in the grader: RuntimeError: a bug in the grader"):
        fresh(student, "bug").touch(torch.ones(2, 3))


def test_a_request_that_cannot_be_sent_is_a_grader_error(student):
    """A test that hands the worker what cannot travel (a lambda) is the test's bug: it was the
    student's "error" ("the test could not check your result")."""
    with pytest.raises(GraderError, match="the request for 'touch' cannot be sent"):
        fresh(student, "unpicklable").touch(lambda: 1)


def test_a_grader_error_is_recorded_apart_and_never_scored(tmp_path, monkeypatch):
    """Through the plugin: the test is in `grader_errors` (its id and the message) and has no
    record, so no report shows it as the student's lost point."""
    reference = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    (tmp_path / "softmax.py").write_text(reference + textwrap.dedent('''

        _softmax = softmax


        def softmax(X):
            if X.shape == (2, 3):  # test_softmax_small_example's X only
                X.mul_(1.0)
            return _softmax(X)
        '''))
    monkeypatch.setattr(server, "_largest_difference", bug)
    grading = Grading(tmp_path, load_course(), in_process=True)
    try:
        code = pytest.main([*map(str, course_test_files(["softmax"], "public")),
                            f"--rootdir={KIT_ROOT}", "-c", str(KIT_ROOT / "pyproject.toml"),
                            *PYTEST_PLUGINS, "-p", "no:terminal",
                            "-k", "test_softmax_small_example or test_softmax_large_logits"],
                           plugins=[grading])
    finally:
        grading.close()
        sys.modules.pop("softmax", None)
    assert code == pytest.ExitCode.TESTS_FAILED
    (error,) = grading.grader_errors
    assert error.startswith("tests/public/test_softmax.py::test_softmax_small_example: ")
    assert "a bug in the grader's comparison" in error
    assert [(r["name"], r["outcome"]) for r in grading.records] == [
        ("test_softmax_large_logits", "passed")]


def test_a_plain_update_that_cannot_be_written_back_is_a_grader_error():
    """New values of the same dtype and shape that the caller's tensor refuses (here a test's
    inference tensor): nothing the student did, so not their lost point."""
    with torch.inference_mode():
        p = torch.zeros(2)
    with pytest.raises(GraderError, match=r"writing the new values of params\[0\] back from sgd "
                       r"failed: RuntimeError: Inplace update to inference tensor"):
        _apply_writeback("sgd", [p], [[0, torch.ones(2), False, False, None]],
                         [["params[0]", True]])


def test_one_examples_grader_error_makes_the_test_the_graders():
    """Hypothesis groups the failures of several examples; any GraderError among them takes
    the test out of the score."""
    failure = GraderError("ours")
    group = ExceptionGroup("examples", [AssertionError("theirs"),
                                        ExceptionGroup("more", [failure])])
    assert grader_error_of(pytest.ExceptionInfo.from_exc_info(
        (type(group), group, None))) is failure
    assert grader_error_of(None) is None


# --------------------------------------------------------------------------- the student's doing


def test_an_argument_turned_into_a_tensor_subclass_is_changed(student):
    """Our comparison ran the subclass's code and raised; it was swallowed (in a sandboxed
    worker the reply then crashed it)."""
    with pytest.raises(ArgumentChanged, match=r"retype changed its argument #1 in place \(its "
                       r"type\): #1 was turned into a Hostile"):
        fresh(student, "retype").retype(torch.ones(2))


def test_a_grad_turned_into_a_tensor_subclass_is_changed(student):
    with pytest.raises(ArgumentChanged, match=r"regrad changed its argument #1 in place \(the "
                       r"type of its \.grad\): #1\.grad was turned into a Hostile"):
        fresh(student, "regrad").regrad(torch.ones(2))


def test_a_freed_storage_is_changed_not_read(student):
    """Reading it read freed memory: the worker crashed (the grader, in-process)."""
    if student._session.template is None:
        pytest.skip("the old behaviour is a crash: not in the grader's own process")
    with pytest.raises(ArgumentChanged, match=r"free changed its argument #1 in place \(its "
                       r"storage\): the storage under #1 was resized or freed"):
        fresh(student, "free").free(torch.ones(2))


def test_a_torch_tampered_with_in_the_worker_is_no_grader_error(tmp_path):
    """The worker's comparison raises, so it sends both states; the grader compares them in its
    own process and finds the change the tampering hid (it was swallowed: no change). A worker
    of its own: the tampering lasts as long as the worker (in-process it would break the
    grader's own torch)."""
    (tmp_path / "sgd.py").write_text(textwrap.dedent(SOURCE))
    with student_of(tmp_path, "sgd", test="tamper") as student, pytest.raises(
            ArgumentChanged, match=r"tamper changed its argument #1 in place \(its values\)"):
        student.tamper(torch.ones(2))


def test_a_worker_that_claims_a_grader_failure_is_not_believed():
    """A lying worker's reports of our failures are checked here before they count: a step the
    grader runs without failure is the student's, states that are not data are no change, and
    states the comparison cannot read (meta tensors) are a change."""
    request = {"forbidden": ["torch.softmax"], "arguments": [["X", False]]}
    for step in ("setup", "arguments", "nonsense"):
        claim = {"kind": "grader", "step": step, "type": "RuntimeError", "message": "claimed"}
        failure = _grader_step("softmax", claim, request, [torch.ones(2)])
        assert isinstance(failure, StudentCrashed), failure
        assert "though it works in the grader" in str(failure)
    garbage = [None, {"name": "X"}, {"name": "X", "before": {"values": 1}, "after": {}},
               {"name": "X", "before": {"values": torch.ones(1), "stride": ["1"],
                                        "requires_grad": False, "grad": None},
                "after": {"values": torch.ones(1), "stride": [1], "requires_grad": False,
                          "grad": None}}]
    assert _changed_arguments("softmax", [], None, garbage) is None
    meta = {"values": torch.ones(2, device="meta"), "stride": [1], "requires_grad": False,
            "grad": None}
    changed = _changed_arguments("softmax", [], {"function": "data_iter", "unchecked": [
        {"name": "features", "before": meta, "after": meta}]})
    assert "data_iter changed its argument features in place after it returned, through the " \
        "object it returned (its device)" in str(changed)


def test_the_grader_reproduces_its_own_failing_step():
    """A step that fails in the grader too is the grader's."""
    request = {"forbidden": ["torch.no_such_function_in_torch.x"], "arguments": []}
    claim = {"kind": "grader", "step": "setup", "type": "ModuleNotFoundError", "message": "?"}
    failure = _grader_step("softmax", claim, request, [])
    assert isinstance(failure, GraderError), failure


# --------------------------------------------------------------------------- whose line


def test_an_error_shows_the_students_line(student):
    where = lines(SOURCE)
    with pytest.raises(StudentRaised, match=rf"divide raised ZeroDivisionError: division by "
                       rf"zero \(line {where['return X / 0 + 1 / 0']} of sgd\.py\)$"):
        fresh(student, "divide").divide(torch.ones(2))


@pytest.mark.parametrize("function,error,line", [
    ("labels_of_nothing", "TypeError", "return data.get_fashion_mnist_labels"),  # torchdrill
    ("pick_from_nothing", "IndexError", "return random.choice"),  # the standard library
    ("parse", "JSONDecodeError", "return json.loads"),  # the standard library
    ("split_badly", "RuntimeError", "return torch.split"),  # torch's own Python code
])
def test_an_error_inside_a_library_shows_the_students_call(student, function, error, line):
    """Frames of torchdrill and the standard library counted as the student's: the message
    said "(line 32 of callables.py)", "(line 378 of random.py)"."""
    with pytest.raises(StudentRaised) as e:
        getattr(fresh(student, function), function)(torch.ones(2, 2))
    message = str(e.value)
    assert message.startswith(f"{function} raised {error}: "), message
    assert message.endswith(f" (line {lines(SOURCE)[line]} of sgd.py)"), message


def test_a_notebook_cells_statements_are_the_students(tmp_path):
    """A notebook cell's statements run under the label `<notebook>, cell N`: the student's."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch"),
                nbformat.v4.new_code_cell("x = 1\n\nboom = lambda X: X / 0 + 1 / 0")]
    (tmp_path / "softmax").mkdir()  # in a folder of its own: the label is softmax/softmax.ipynb
    (tmp_path / "softmax" / "softmax.ipynb").write_text(json.dumps(nb))
    with student_of(tmp_path, "softmax", in_process=True, test="nb") as student, pytest.raises(
            StudentRaised, match=r"\(line 3 of softmax\.ipynb, cell 2\)$"):
        student.boom(torch.ones(1))


def test_grade_gives_no_score_when_the_grader_failed(tmp_path, monkeypatch):
    """`grade` raises GraderError naming the test instead of writing a report that counts the
    grader's bug as the student's lost points."""
    (tmp_path / "softmax.py").write_text((KIT_ROOT / "solutions" / "softmax.py").read_text()
                                         + "\n\n_softmax = softmax\n\n\ndef softmax(X):\n"
                                         "    X.mul_(1.0)\n    return _softmax(X)\n")
    monkeypatch.setattr(server, "_largest_difference", bug)
    out = tmp_path / "out"
    try:
        with pytest.raises(GraderError, match=r"(?s)failed on 1 test.*test_softmax_small_example"):
            grade(tmp_path, ["softmax"], "public", out, in_process=True,
                  keyword="test_softmax_small_example")
    finally:
        sys.modules.pop("softmax", None)
    assert not (out / "report.json").exists()

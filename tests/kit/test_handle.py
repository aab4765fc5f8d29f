"""The student handle behaves as if the submission ran in the test's process: in-place updates
the contract allows, views, gradients, remote objects, fake CUDA devices, and failures that
become outcomes."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sys
import textwrap
import threading
import time

import pytest
import torch

from grader.course import KIT_ROOT
from grader.failures import (
    ArgumentChanged,
    ForbiddenCall,
    NotDifferentiable,
    NotImplementedByStudent,
    StudentCrashed,
    StudentRaised,
    StudentTimedOut,
)
from grader.handle import RemoteRef
from grader.sandbox.lazy import WORKER_LAZY_MODULES
from tests.kit.students import student_of

SOURCE = '''
import os
import time
import torch

def sgd(params, lr, batch_size):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad / batch_size
            p.grad.zero_()

def mark(x):
    x.requires_grad_(True)
    return x.sum().item()

def flat(X):
    return X.view(-1)

def square(x):
    return x * x

def detached(x):
    return (x * 2).detach()

def make_net():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)

def count_up(n):
    for i in range(n):
        yield torch.tensor([i])

def mode(net):
    return net.training

def devices():
    return torch.cuda.device_count(), torch.cuda.is_available()

def hang():
    while True:
        pass

def spin(n):
    while True:
        n += 1

def crash():
    os.abort()

def work(cpu_s):
    start = time.process_time()
    while time.process_time() - start < cpu_s:
        pass
    return cpu_s

def nap(s):
    time.sleep(s)

def shout():
    print("x" * 10_000_000)
    return 1

def broken():
    return 1 / 0

def todo():
    raise NotImplementedError

def gradient_descent(lr):
    return lambda p: torch.optim.SGD([p], lr=lr)
'''


@pytest.fixture(scope="module", params=["worker", "in-process"])
def student(request, tmp_path_factory):
    sub = tmp_path_factory.mktemp("sub")
    (sub / "sgd.py").write_text(textwrap.dedent(SOURCE))
    # course.toml: sgd's params in place
    with student_of(sub, "sgd", in_process=request.param == "in-process", call_timeout=2) as s:
        yield s


def test_in_place_updates_the_contract_allows_reach_the_caller(student):
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.full((3,), 2.0)
    student.sgd([w], 0.5, 2)
    assert torch.equal(w.detach(), torch.full((3,), 0.5))
    assert torch.equal(w.grad, torch.zeros(3))


def test_any_other_change_fails_and_stays_in_the_worker(student):
    x = torch.ones(2)
    with pytest.raises(ArgumentChanged, match=r"mark changed its argument #1 in place "
                       r"\(whether it requires grad\)"):
        student.mark(x)
    assert not x.requires_grad


def test_view_of_an_argument_shares_the_callers_storage(student):
    X = torch.arange(6.0).reshape(2, 3)
    v = student.flat(X)
    assert v.data_ptr() == X.data_ptr()
    v[4] = -1.0
    assert X[1, 1] == -1.0


def test_gradient_through_student_code(student):
    x = torch.tensor([1.0, -2.0, 3.0])
    assert torch.equal(student.gradient("square", x), 2 * x)
    v = torch.tensor([1.0, 0.5, 2.0])
    assert torch.equal(student.gradient("square", x, grad_output=v), 2 * x * v)
    assert not x.requires_grad


def test_detached_output_is_reported(student):
    with pytest.raises(NotDifferentiable, match="not connected"):
        student.gradient("detached", torch.ones(2))


def test_remote_module(student):
    net = student.make_net()
    X = torch.randn(4, 3)
    expected = torch.nn.Linear(3, 2)
    expected.load_state_dict(net.state_dict())
    assert torch.allclose(net(X), expected(X))
    net.eval()
    assert student.mode(net) is False and net.training is False
    assert [k for k in net.state_dict()] == ["weight", "bias"]
    if isinstance(net, RemoteRef):
        assert "Linear" in repr(net)


def test_an_object_keeps_the_forbidden_calls_of_the_function_that_made_it(student):
    """course.toml forbids torch.optim in sgd's gradient_descent: in what it returns too (a
    layer's forward is guarded as the class that built it)."""
    step = student.gradient_descent(0.1)
    with pytest.raises(ForbiddenCall, match="torch.optim.SGD is not allowed"):
        step(torch.zeros(1, requires_grad=True))


def test_remote_generator(student):
    assert [int(t) for t in student.count_up(3)] == [0, 1, 2]


def test_fake_cuda(student):
    with student.fake_cuda(2):
        assert student.devices() == (2, True)
    with student.fake_cuda(0):
        assert student.devices() == (0, False)


def test_failures_become_outcomes(student):
    with pytest.raises(StudentRaised, match="ZeroDivisionError"):
        student.broken()
    with pytest.raises(NotImplementedByStudent):
        student.todo()
    with pytest.raises(NotImplementedByStudent, match="defines no `nothing`"):
        student.nothing()
    assert student.shout() == 1


def test_hang_and_crash_fail_only_that_call(student):
    if student._session.template is None:
        pytest.skip("no time limits in-process")
    with pytest.raises(StudentTimedOut):
        student.hang()
    student._session.begin_test("next")
    assert torch.equal(student.square(torch.tensor([3.0])), torch.tensor([9.0]))
    with pytest.raises(StudentCrashed):
        student.crash()
    student._session.begin_test("after-crash")
    assert torch.equal(student.square(torch.tensor([2.0])), torch.tensor([4.0]))


def test_a_function_that_hung_gets_a_quarter_of_the_time_then_no_more_calls(student):
    """An infinite loop costs 2 s + 0.5 s here (20 s + 5 s under course.toml), not 2 x 2 s."""
    if student._session.template is None:
        pytest.skip("no time limits in-process")
    with pytest.raises(StudentTimedOut, match="within 2 s"):
        student.spin(0)
    student._session.begin_test("second")
    with pytest.raises(StudentTimedOut, match="within 0.5 s"):
        student.spin(1)
    student._session.begin_test("third")
    with pytest.raises(StudentTimedOut, match="not run again"):
        student.spin(2)


def _paused(pgid: int, after_s: float, for_s: float) -> threading.Thread:
    """A thread that stops the process group `after_s` into the call and lets it go on
    `for_s` later: a worker that other processes kept off the CPU that long."""
    def pause() -> None:
        time.sleep(after_s)
        os.killpg(pgid, signal.SIGSTOP)
        time.sleep(for_s)
        os.killpg(pgid, signal.SIGCONT)
    thread = threading.Thread(target=pause)
    thread.start()
    return thread


def test_a_worker_starved_of_cpu_is_not_stopped_for_the_time_it_waited(student):
    """On a loaded machine (a class graded on every core, other jobs), a correct function that
    needs 0.25 s of CPU within its test's 1 s gets it, however long it waits for the
    CPU; one that sleeps is still stopped, at 8 times its time."""
    session = student._session
    if session.template is None:
        pytest.skip("no time limits in-process")
    session.begin_test("warm")
    student.square(torch.tensor([1.0]))  # the worker starts outside the timed call
    worker = session._worker()
    if worker.cpu is None:
        pytest.skip("no cgroup CPU accounting here: the wall clock is the worker's time")
    session.begin_test("starved", budget_s=1.0)
    pause = _paused(worker.outer_pid, 0.05, 1.1)  # within the fixture's 2 s per call
    began = time.perf_counter()
    try:
        assert student.work(0.25) == 0.25
    finally:
        pause.join()
    assert time.perf_counter() - began > 1.1
    session.begin_test("asleep", budget_s=0.25)
    began = time.perf_counter()
    with pytest.raises(StudentTimedOut):
        student.nap(60)
    assert time.perf_counter() - began < 8 * 0.25 + 1.5


def test_a_dead_template_is_restarted(student):
    session = student._session
    if session.template is None:
        pytest.skip("no template in-process")
    os.kill(session.template.pid, signal.SIGKILL)
    os.waitpid(session.template.pid, 0)
    session.close()
    session.begin_test("after-template-died")
    assert torch.equal(student.square(torch.tensor([5.0])), torch.tensor([25.0]))


def test_the_template_preloads_what_torch_imports_lazily():
    """Else every worker pays for them (~1.3 s) on its first backward or optimizer step."""
    for name in WORKER_LAZY_MODULES:
        importlib.import_module(name)  # a torch upgrade that moves one fails here, not silently


def test_a_template_that_cannot_start_stops_grading_and_fails_no_test(tmp_path, monkeypatch):
    """The grader's own failure must not cost the student points: no report, a clear error."""
    from grader.cli import grade

    (tmp_path / "softmax.py").write_text((KIT_ROOT / "solutions" / "softmax.py").read_text())
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    with pytest.raises(RuntimeError, match="worker template failed to start"):
        grade(tmp_path, ["softmax"], "public", tmp_path / "out")
    assert not (tmp_path / "out" / "report.json").exists()

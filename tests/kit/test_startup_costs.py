"""What a grading process pays before and beside its tests. Its bytecode is cached also where
PYTHONDONTWRITEBYTECODE is set (in the kit's virtual environment, not beside the sources). The
grader's tests run in the grading process, where each lazy import of torch's costs every graded
submission: never autograd with a grad_outputs tensor (torch.fx's symbolic
shapes with sympy, 0.3 to 0.6 s; `tests.hidden._vjp.vjp` gives the same numbers) and never a
torch.optim optimizer (torch._dynamo, about 1 s; the oracles take their steps by formula). The
worker, which runs student code, has both imported before it forks (grader.sandbox.lazy)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit.variants import KIT_ROOT

TEST_FILES = sorted((KIT_ROOT / "tests" / "hidden").glob("*.py")) + sorted(
    (KIT_ROOT / "tests" / "public").glob("*.py"))


def costly_calls(tree: ast.AST) -> list[str]:
    """The calls in `tree` that import sympy or torch._dynamo when run."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg for k in node.keywords}
        if (name.endswith("autograd.grad") and (len(node.args) > 2 or "grad_outputs" in keywords)
                or name.endswith(".backward") and (node.args or "gradient" in keywords)):
            found.append(f"line {node.lineno}: {ast.unparse(node)} (a grad_outputs tensor)")
        elif name.startswith(("torch.optim.", "optim.")) and name.rpartition(".")[2][:1].isupper():
            found.append(f"line {node.lineno}: {ast.unparse(node)} (a torch.optim optimizer)")
    return found


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_tests_make_no_call_that_imports_sympy_or_dynamo(path):
    found = costly_calls(ast.parse(path.read_text()))
    assert not found, f"{path.name}: " + "; ".join(found)


def test_the_check_sees_each_costly_call():
    src = ("torch.autograd.grad(y, x, v)\ntorch.autograd.grad(y, x, grad_outputs=v)\n"
           "y.backward(v)\ntorch.optim.SGD([p], lr=0.1)\nfrom torch import optim\n"
           "optim.Adam([p])\ntorch.autograd.grad(y.sum(), x)\ny.sum().backward()\n"
           "torch.optim.lr_scheduler\n")
    assert len(costly_calls(ast.parse(src))) == 5


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the kit's Python is not a venv")
def test_bytecode_is_cached_in_the_venv_where_the_environment_forbids_it_beside_sources(
        tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "solutions", "--topics",
                          "softmax", "--suite", "public", "--out", str(tmp_path)],
                         cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    mirror = Path(sys.prefix, "pycache", *KIT_ROOT.resolve().parts[1:])
    assert list((mirror / "grader").glob("grade.cpython-*.pyc")), sorted(mirror.rglob("*"))[:20]
    assert list((mirror / "tests" / "public").glob("test_softmax.cpython-*-pytest-*.pyc"))


def test_long_lived_objects_are_frozen_once_per_process():
    """grade() hides what is alive before its first session from the collector, and only
    then: a batch's grading process does not freeze each student's leftovers."""
    code = ("import gc\nfrom grader.grade import freeze_long_lived\n"
            "freeze_long_lived(); first = gc.get_freeze_count()\n"
            "keep = [[i] for i in range(10000)]\n"
            "freeze_long_lived(); print(first, gc.get_freeze_count())\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=KIT_ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    first, second = map(int, run.stdout.split())
    assert first > 100_000 and second == first, run.stdout


PREFETCH = """
import sys
from grader.course import load_course
from grader.grade import import_test_modules
from grader.sandbox.client import Template
from grader.submission import load_submission
from tests.hidden._training import REFERENCE_CURVES, grader_mnist
from tests.hidden.test_conv import lenet_mnist
template = Template()
try:
    import_test_modules(load_submission("solutions"), load_course(),
                        ["mlp", "gpu_training", "conv", "softmax"], "hidden", template, sys.argv[1])
finally:
    template.close()
print(grader_mnist.cache_info().currsize, len(REFERENCE_CURVES), lenet_mnist.cache_info().currsize)
"""


@pytest.mark.parametrize(("keyword", "fetched"), [("learns_mnist", "1 2 1"),
                                                  ("train_mlp_learns", "1 1 0"),
                                                  ("softmax", "0 0 0")])
def test_a_forked_grade_computes_the_selected_tests_grader_data_before_it_forks(keyword,
                                                                               fetched):
    """The MNIST tests mark what the grader computes for them as `prefetch`: its copy of
    MNIST, the reference's training curves on it (train_mlp, train_gpu) and LeNet's batches.
    Computed before the sessions fork, while the template still loads, each is computed once
    for all of them, and only when such a test is selected."""
    run = subprocess.run([sys.executable, "-c", PREFETCH, keyword], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-3:] == fetched.split(), run.stdout


def test_train_gpus_prefetched_curve_starts_where_the_reference_does():
    """The prefetched train_gpu curve is the one its test reads for a train_gpu that draws its
    Xavier weights as the reference does (the same digest of the initial state); another
    draw order only misses the cache, and its test trains the reference itself."""
    import copy

    import torch
    from torch import nn

    from solutions.gpu_training import train_gpu
    from tests.hidden import test_gpu_training as t
    from tests.hidden._training import LEARNING_WIDTHS, make_net, state_key, xavier_state

    template = make_net(t.MNIST_NET_SEED, LEARNING_WIDTHS)
    with torch.random.fork_rng():  # the test's first run, with lr = 0
        torch.manual_seed(t.MNIST_INIT_SEED)
        net = nn.Sequential(*copy.deepcopy(template))
        train_gpu(net, t.INIT_PROBE, t.INIT_PROBE, 1, 0.0, torch.device("cpu"))
    assert state_key(net.state_dict()) == state_key(xavier_state(template, t.MNIST_INIT_SEED))
    assert state_key(net.state_dict()) != state_key(template.state_dict())

"""Machinery the grader cannot check costs the functions that use it: found in the source of a
function, its helpers and the module's top-level code, never in the reference or a variant."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from grader.course import load_course
from grader.scan.machinery import costing, machinery
from tests.kit.variants import KIT_ROOT, replace_definitions

CLEAN = '''
import math
import torch
import torch.nn.functional as F
from torch import nn

def softmax(X):
    X_exp = torch.exp(X - X.max(1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self._steps = 0
'''


@pytest.mark.parametrize("snippet, reason", [
    ("import torch\ndef f(X):\n    return torch._softmax(X, 1, False)\n", "private API"),
    ("import torch\ndef f(X):\n    return torch.ops.aten._softmax(X, 1, False)\n", "torch.ops"),
    ("import torch._C as C\ndef f(X):\n    return X\n", "private API"),
    ("import torch\ndef f(X):\n    with torch._C.DisableTorchFunction():\n        return X\n",
     "private API"),
    ("import torch\ndef f(X):\n    return torch.jit.script(g)(X)\n", "torch.jit"),
    ("from torch.library import Library\ndef f(X):\n    return X\n", "torch.library"),
    ("import threading\ndef f(X):\n    return X\n", "threading"),
    ("def f(X):\n    import ctypes\n    return X\n", "ctypes"),
    ("def f(X):\n    import gc\n    return X\n", "gc"),
    ("import importlib\ndef f(X):\n    return importlib.import_module('torch')\n", "importlib"),
    ("def f(X):\n    return exec('1')\n", "exec()"),
    ("import torch\ndef f(X, n):\n    return getattr(torch, n)(X)\n", "computed name"),
    ("import torch\ndef f(X):\n    return getattr(torch, '_softmax')(X, 1, False)\n", "private"),
    ("import grader.sandbox.forbidden\ndef f(X):\n    return X\n", "grader"),
    ("import subprocess\ndef f(X):\n    return X\n", "subprocess"),
    ("import os\ndef f(X):\n    os.system('true')\n    return X\n", "os.system"),
    ("import sys\ndef f(X):\n    return sys.modules['torch']\n", "sys.modules"),
    ("def f(X):\n    return f.__globals__\n", "__globals__"),
    ("import sys\ndef f(X):\n    return vars(sys)['modules']\n", "vars()"),
    ("import sys\ndef f(X, m):\n    return m._Armed.library\n", "private attribute"),
    ("import operator, sys\ndef f(X):\n    return operator.attrgetter('modules')(sys)\n",
     "computed attribute access"),
    ("from operator import methodcaller\ndef f(X):\n    return methodcaller('exp')(X)\n",
     "computed attribute access"),
    ("import sys\ndef f(X, n):\n    g = getattr\n    return g(sys, n)\n", "as a value"),
    ("import pkgutil\ndef f(X):\n    return pkgutil.resolve_name('torch')\n", "pkgutil"),
    ("import inspect\ndef f(X):\n    return inspect.getmembers(X)\n", "inspect"),
    ("import pickle\ndef f(X):\n    return pickle.loads(X)\n", "pickle"),
])
def test_machinery_is_found(snippet, reason):
    found = machinery(snippet)
    assert "f" in found and any(reason in r for r in found["f"]), found


def test_machinery_reaches_callers_and_module_level_code_reaches_all():
    source = CLEAN + '''
def _helper(X):
    import ctypes
    return X

def uses_helper(X):
    return _helper(X)
'''
    found = machinery(source)
    assert set(found) == {"_helper", "uses_helper"}
    assert machinery("import threading\n" + CLEAN).keys() == {"softmax"}


def test_plain_torch_is_not_machinery():
    assert machinery(CLEAN) == {}


def test_course_allow_list_lifts_a_cost():
    source = "import threading\ndef f(X):\n    return X\n"
    assert costing(source, ["threading"]) == {}
    assert costing(source, []) == {"f": ("threading",)}


def test_reference_and_variants_use_no_machinery():
    for path in sorted((KIT_ROOT / "solutions").glob("*.py")):
        assert machinery(path.read_text()) == {}, path.name
    for topic in load_course().names:
        try:
            module = importlib.import_module(f"tests.kit.variants_{topic}")
        except ModuleNotFoundError:
            continue
        reference = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
        for variant in [*module.MISTAKES, *module.CORRECT]:
            assert machinery(replace_definitions(reference, variant.source)) == {}, variant.name


def test_machinery_costs_only_the_function_that_uses_it(tmp_path):
    """softmax is right but imports ctypes; logsumexp is right and clean."""
    reference = (KIT_ROOT / "solutions" / "softmax.py").read_text()
    source = replace_definitions(reference, '''
def softmax(X):
    import ctypes
    X_exp = torch.exp(X - X.max(1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)
''')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "softmax.py").write_text(source)
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "sub"),
                          "--topics", "softmax", "--out", str(tmp_path / "out"),
                          "-k", "test_softmax_small or logsumexp_matches or softmax_matches"],
                         cwd=KIT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    tests = {t["name"]: t for topic in report["topics"] for t in topic["tests"]}
    softmax = [t for name, t in tests.items() if name.startswith("test_softmax")]
    assert softmax and all(t["outcome"] == "forbidden" and "ctypes" in t["message"]
                           for t in softmax), softmax
    assert all(t["score"] == t["max_score"] for name, t in tests.items()
               if name.startswith("test_logsumexp")), tests
    assert {"topic": "softmax", "function": "softmax", "call": "ctypes",
            "how": "source"} in report["flags"]


def test_a_notebooks_cell_wrapper_is_read_not_flagged():
    """grader.notebooks runs a statement cell as exec(compile("<cell>", ...)): the wrapper is
    ours, the cell's code is the student's and is read like the rest of the module."""
    from grader.notebooks import _guarded_statements

    quiet = CLEAN + _guarded_statements("print('hello')\n", 1, "cell 3") + "\n"
    assert machinery(quiet) == {}
    loud = CLEAN + _guarded_statements("import ctypes\n", 1, "cell 4") + "\n"
    assert machinery(loud) == {"softmax": ("ctypes",)}

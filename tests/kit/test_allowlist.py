"""A submission's source is an allow-list (course.toml [source]): every way the third round of
attacks reached the grader's guards is a step outside it, found at every scope however the
graded functions are bound; the reference, every variant and a notebook's honest habits
(plotting, printing, timing itself) are not."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

from grader.course import load_course
from grader.scan.allowlist import costing, interpreter_attributes, message, steps_outside
from grader.scan.source import function_names, python_loops
from tests.kit.variants import KIT_ROOT, replace_definitions

COURSE = load_course()
TOPICS = frozenset(COURSE.names)


def steps(source: str, debugging: bool = False) -> list[str]:
    return [f"{s.kind}: {s.text}" for s in steps_outside(textwrap.dedent(source), COURSE.source,
                                                          TOPICS, debugging)]


HONEST = '''
"""A notebook's honest habits, as the course notes write them."""
from __future__ import annotations

import copy
import math
import random
import time
from collections import OrderedDict
from typing import Callable, Iterator, Optional

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import cm
from torch import nn
from torch.utils import data

from softmax import softmax
from torchdrill import plot
from torchdrill.plot import plot_history

F2 = torch.nn.functional


def relu(input: torch.Tensor) -> torch.Tensor:
    return torch.maximum(input, torch.zeros_like(input))


class Accumulator:
    def __init__(self, n: int):
        self._data = [0.0] * n

    def __getitem__(self, i: int) -> float:
        return self._data[i]

    def __len__(self) -> int:
        return len(self._data)

    def _reset(self) -> None:
        self._data = [0.0] * len(self)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(OrderedDict([("lin", nn.Linear(4, 2)), ("act", nn.ReLU())]))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return F2.softmax(self.body(X), dim=1)


def _helper(X, fn: Optional[Callable] = None):
    return X if fn is None else fn(X)


start = time.perf_counter()
net = Net()
for m in net.modules():
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
X = torch.randn(3, 4)
print(f"{time.perf_counter() - start:.3f} s", torch.__version__, relu.__name__)
fig, ax = plt.subplots()
ax.plot(np.arange(3), X[:, 0].numpy(), label="x")
ax.text(0, 0, "origin")
ax.legend()
plt.show()
best = copy.deepcopy(net.state_dict())
print(math.pi, random.random(), softmax(X).sum(1), cm.viridis, data.DataLoader)

if __name__ == "__main__":
    print(__name__, __doc__)
'''


def test_honest_habits_step_nowhere():
    assert steps(HONEST) == []


def test_reference_variants_and_stubs_step_nowhere():
    for folder in ("solutions", "exercises"):
        for path in sorted((KIT_ROOT / folder).glob("*.py")):
            assert steps(path.read_text()) == [], path
    for topic in COURSE.names:
        module = importlib.import_module(f"tests.kit.variants_{topic}")
        reference = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
        for variant in [*module.MISTAKES, *module.CORRECT]:
            assert steps(replace_definitions(reference, variant.source)) == [], variant.name


@pytest.mark.parametrize("snippet, kind", [
    # functions bound any other way, with module-level code reaching the guard
    ("import sys\nsoftmax = lambda X: X\nsys.modules['grader.sandbox.dispatch_guard']\n",
     "import"),
    ("import torch\ndef _impl(X):\n    return torch._softmax(X, 1, False)\nsoftmax = _impl\n",
     "private"),
    ("class softmax:\n    def __new__(cls, X):\n        return X\n", "dunder"),
    # the names the scan did not know
    ("import torch\ndef f(X):\n    return getattr(torch, 'sys').modules\n", "builtin"),
    ("import torch\ndef f(X):\n    t = torch\n    return t.exp(X)\n", "module-value"),
    ("import torch\nt = [torch][0]\n", "module-value"),
    ("def f(X):\n    try:\n        1 / 0\n    except Exception as e:\n"
     "        return e.__traceback__.tb_frame.f_back.f_globals\n", "dunder"),
    ("def f(X):\n    g = (x for x in [X])\n    return g.gi_frame.f_back\n", "internal"),
    ("import pydoc\ndef f(X):\n    return pydoc.locate('grader.sandbox.dispatch_guard')\n",
     "import"),
    ("from torch.package import PackageImporter\n", "import"),
    ("import torch\ndef f(X):\n    return torch.package.PackageImporter\n", "module"),
    ("from unittest import mock\n", "import"),
    ("import typing\ndef f(X: 'sys.modules'):\n    return typing.get_type_hints(f)\n",
     "refused"),
    ("from typing import get_type_hints\n", "refused"),
    # plain public attributes that hold a module outside the list
    ("import torch\ndef f(X):\n    return torch.sys.modules\n", "module"),
    ("import torch\ndef f(X):\n    return torch.os.system\n", "module"),
    ("import torch\ndef f(X):\n    return torch.importlib.import_module\n", "module"),
    ("import torch.nn.functional as F\ndef f(X):\n    return F.importlib\n", "module"),
    ("import torch\ndef f(X, m):\n    return m.sys.modules\n", "module"),
    # modules the kit's own public modules hold
    ("from torchdrill import data\ndef f(X):\n    return data.os.system('true')\n", "module"),
    ("import torchdrill.plot as p\ndef f(X):\n    return p.sys.modules\n", "module"),
    # the tests' own helpers: sgd_epochs is a training loop
    ("from torchdrill.callables import sgd_epochs\n", "import"),
    ("from torchdrill import callables\n", "module"),
    ("import torchdrill.callables as cf\n", "import"),
    ("import torchdrill\ndef f(net, it):\n"
     "    return torchdrill.callables.sgd_epochs(net, it, 1, 0.1)\n", "module"),
    ("import torch.nn._reduction\n", "private"),
    ("from torch.nn import _reduction\n", "private"),
    ("import torch.utils\ndef f(X):\n    return torch.utils.cpp_extension.load_inline\n",
     "module"),  # a submodule never imported where the scan runs
    # torch's private and compiler APIs
    ("import torch\ndef f(X):\n    return torch.ops.aten._softmax(X, 1, False)\n", "module"),
    ("import torch\ndef f(X):\n    with torch._C.DisableTorchFunction():\n        return X\n",
     "private"),
    ("import torch._C as C\n", "private"),
    ("import torch\ndef f(X):\n    return torch.jit.script(f)\n", "module"),
    ("import torch\nf = torch.compile(lambda X: X.softmax(1))\n", "refused"),
    ("from torch.library import Library\n", "import"),
    # builtins that reach around
    ("def f(X):\n    return eval('X')\n", "builtin"),
    ("def f(X):\n    exec('1')\n", "builtin"),
    ("def f(X):\n    return vars()\n", "builtin"),
    ("def f(X):\n    return globals()['f']\n", "builtin"),
    ("def f(X):\n    return __import__('sys')\n", "builtin"),
    ("def f(X):\n    return __builtins__\n", "dunder"),
    ("def f(X):\n    return open('/etc/passwd').read()\n", "builtin"),
    ("def f(X):\n    breakpoint()\n", "builtin"),
    ("def f(X, g=getattr):\n    return g(X, 'T')\n", "builtin"),
    ("def f(X):\n    return X.__class__.__mro__\n", "dunder"),
    ("def f(X):\n    return f.__globals__\n", "dunder"),
    # other modules, and changing them
    ("import threading\n", "import"),
    ("def f(X):\n    import ctypes\n    return X\n", "import"),
    ("import grader.sandbox.dispatch_guard\n", "import"),
    ("from .softmax import softmax\n", "import"),
    ("from torch import *\n", "import"),
    ("import torch\ntorch.softmax = lambda X, dim: X\n", "store"),
    ("import torch\nclass T(torch.Tensor):\n    @classmethod\n"
     "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return 0\n",
     "dunder"),
    ("def __getattr__(name):\n    return name\n", "dunder"),
    ("import torch\ndef f(X):\n    return X._base\n", "private"),
])
def test_each_step_outside_is_found(snippet, kind):
    found = steps(snippet)
    assert any(s.startswith(kind + ":") for s in found), found


@pytest.mark.parametrize("source", ["def f(X):\n    breakpoint()\n    return X\n",
                                    "def f(X):\n    import pdb; pdb.set_trace()\n    return X\n"])
def test_a_debugger_is_the_students_own_when_debugging_in_process(source):
    assert steps(source, debugging=True) == []
    assert steps(source) != []


def test_every_step_is_reported_with_its_place():
    source = "import os\nimport torch\n\ndef f(X):\n    return torch._C\n"
    found = steps_outside(source, COURSE.source, TOPICS)
    assert [(s.place, s.kind) for s in found] == [("line 1", "import"), ("line 5", "private")]
    text = message("softmax.py", found)
    assert "line 1: `import os`" in text and "line 5: `._C`" in text, text


def test_a_notebooks_cells_are_read_and_placed_by_cell():
    """grader.notebooks runs a statement cell as exec(compile("<cell>", ...), globals()): the
    wrapper is ours, the cell's code is the student's and is checked like the rest."""
    from grader.notebooks import module_source

    cells = [{"cell_type": "code", "source": "import torch\nprint(torch.ones(2))"},
             {"cell_type": "code", "source": "%matplotlib inline\nimport matplotlib.pyplot as plt"},
             {"cell_type": "code", "source": "import sys\nsys.modules.clear()"}]
    source = module_source({"cells": cells}, "softmax.ipynb")
    found = steps_outside(source, COURSE.source, TOPICS)
    assert [(s.place, s.kind) for s in found] == [("cell 3", "import")], found


def test_a_topic_may_allow_a_kind_of_step():
    source = "import threading\ndef f(X):\n    return X\n"
    assert costing(source, COURSE.source, TOPICS, ["import"]) == ()
    assert costing(source, COURSE.source, TOPICS, ["*"]) == ()
    assert [s.kind for s in costing(source, COURSE.source, TOPICS, [])] == ["import"]


def test_what_the_allowed_modules_hold_is_read_from_them():
    import torch

    from grader.scan.allowlist import _module_attributes

    table = _module_attributes()
    modules, unresolved = table.modules, table.unresolved
    assert "cpp_extension" in table.submodules["torch.utils"]  # imported or not
    assert modules["torch"]["sys"] == "sys" and modules["torch"]["jit"] == "torch.jit"
    assert torch.nn.functional.importlib.__name__ == modules["torch.nn.functional"]["importlib"]
    assert {"sys", "os", "importlib", "jit", "inspect"} <= unresolved
    assert not {"modules", "text", "legend", "data", "grad", "T"} & unresolved  # honest names


def test_interpreter_internals_are_read_from_the_interpreter():
    assert {"f_back", "f_globals", "tb_frame", "gi_frame", "co_code", "cell_contents"} <= (
        interpreter_attributes())


def test_functions_are_found_however_bound():
    source = textwrap.dedent('''
        import torch

        def _pick_loop(Y_hat, y):
            return torch.stack([Y_hat[i, y[i]] for i in range(len(y))])

        pick = _pick_loop
        softmax = lambda X: torch.stack([row.exp() / row.exp().sum() for row in X])
        try:
            def one_hot(y, n):
                return torch.stack([torch.arange(n) == v for v in y]).float()
        except Exception:
            pass
        ''')
    assert {"pick", "softmax", "one_hot"} <= set(function_names(source))
    for function in ("pick", "softmax", "one_hot"):
        assert python_loops(source, function), function


@pytest.mark.parametrize("topic, source, lost", [
    ("softmax", '''
import sys
import torch

def _row_softmax(X):
    return torch.softmax(X, dim=1)

softmax = lambda X: _row_softmax(X)
for name in list(sys.modules):
    if name.endswith("dispatch_guard"):
        sys.modules[name].disarm()
''', "test_softmax"),
    ("tensor_ops", '''
import torch

def _pick_loop(Y_hat, y):
    return torch.stack([Y_hat[i, y[i]] for i in range(len(y))])

pick = _pick_loop
''', "test_pick_no_python_loops"),
])
def test_the_round_three_attacks_lose_their_points(tmp_path, topic, source, lost):
    """A lambda-bound softmax whose module disarms the guard (43/43 before), and a looping
    `pick` bound by alias (66/66 before), graded from a temp folder."""
    reference = (KIT_ROOT / "solutions" / f"{topic}.py").read_text()
    submission = tmp_path / "sub"
    submission.mkdir()
    (submission / f"{topic}.py").write_text(replace_definitions(reference, source))
    run = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--topics",
                          topic, "--out", str(tmp_path / "out"), "-k", lost],
                         cwd=KIT_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    tests = [t for entry in report["topics"] for t in entry["tests"]]
    assert tests and all(t["score"] < t["max_score"] for t in tests), tests
    if topic == "softmax":
        assert all(t["outcome"] == "forbidden" and "`import sys`" in t["message"]
                   for t in tests), tests[0]
        assert any(f["function"] == "softmax (the module)" and "`import sys`" in f["call"]
                   and f["how"] == "source" for f in report["flags"]), report["flags"]
    else:
        assert all("loop" in t["message"] for t in tests), tests[0]

"""Forbidden calls are caught at the dispatcher however student code reaches them: private
aliases, `torch.ops`, equivalents (a CTC loss, a quantized kernel in another namespace),
threads, TorchScript, a disabled Python mode, a patched grader. Each softmax.py below computes
softmax with a forbidden operator by one such route; graded on the softmax function's tests,
each earns nothing. The course they are graded against allows every step outside the source
allow-list, so that the code runs and the dispatcher alone is tested (the source scan would
stop most of them first: test_allowlist.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.kit.permissive import permissive_env
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(50)

CHEATS = {
    "disable_torch_function": '''
import torch

def softmax(X):
    with torch._C.DisableTorchFunction():
        return torch.softmax(X, 1)
''',
    "private_alias": '''
import torch

def softmax(X):
    return torch._softmax(X, 1, False)
''',
    "torch_ops": '''
import torch

def softmax(X):
    return torch.ops.aten._softmax.default(X, 1, False)
''',
    "softmin_equivalent": '''
import torch
import torch.nn.functional as F

def softmax(X):
    return F.softmin(-X, dim=1)
''',
    "logcumsumexp_equivalent": '''
import torch

def softmax(X):
    return torch.exp(X - torch.logcumsumexp(X, 1)[:, -1:])
''',
    "attention_equivalent": '''
import torch
import torch.nn.functional as F

def softmax(X):
    eye = torch.eye(X.shape[1], dtype=X.dtype)
    q = X[None]
    return F.scaled_dot_product_attention(q, eye[None], eye[None], scale=1.0)[0]
''',
    "ctc_loss_equivalent": '''
import math
import torch
import torch.nn.functional as F

def softmax(X):
    # a CTC loss sums its alignments in log space: with X[i, t] the label's log-probability at
    # every other step and -inf between, row i's loss is exactly -logsumexp(X[i])
    n, q = X.shape
    log_probs = torch.zeros(2 * q, n, 2, dtype=X.dtype)
    log_probs[0::2, :, 1] = X.T
    log_probs[1::2, :, 1] = -math.inf
    labels = torch.ones(n, 1, dtype=torch.long)
    loss = F.ctc_loss(log_probs, labels, torch.full((n,), 2 * q), torch.ones(n, dtype=torch.long),
                      reduction="none")
    return torch.exp(X + loss[:, None])
''',
    "safe_softmax": '''
import torch

def softmax(X):
    return torch.ops.aten._safe_softmax(X, 1)
''',
    "quantized_qnnpack": '''
import torch

def softmax(X):
    torch.backends.quantized.engine = "qnnpack"
    span = float(X.abs().max()) or 1.0
    qX = torch.quantize_per_tensor(X.float(), 2 * span / 255, 128, torch.quint8)
    return torch.ops.quantized.softmax(qX, 1, 1 / 256, 0).dequantize().to(X.dtype)
''',
    "thread_at_import": '''
import queue
import threading
import torch

_in, _out = queue.Queue(), queue.Queue()

def _serve():
    while True:
        X = _in.get()
        try:
            _out.put(torch.softmax(X, 1))
        except BaseException as e:
            _out.put(e)

threading.Thread(target=_serve, daemon=True).start()

def softmax(X):
    _in.put(X)
    result = _out.get()
    if isinstance(result, BaseException):
        raise result
    return result
''',
    "patched_grader": '''
import torch
import grader.sandbox.forbidden as gf

gf._record = lambda *args, **kwargs: None

def softmax(X):
    return torch.softmax(X, 1)
''',
    "torchscript_at_import": '''
import torch

_cu = torch.jit.CompilationUnit(
    "def f(X: torch.Tensor) -> torch.Tensor:\\n    return torch.softmax(X, 1)\\n")
_traced = torch.jit.trace(lambda X: torch.softmax(X, 1), torch.randn(2, 3))

def softmax(X):
    return _cu.f(X) if X.shape[0] % 2 else _traced(X)
''',
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the batch below grades sandboxed workers, which this check needs")
    root = tmp_path_factory.mktemp("cheats")
    subs, out = root / "in", root / "out"
    for name, source in CHEATS.items():
        (subs / name).mkdir(parents=True)
        (subs / name / "softmax.py").write_text(source)
    run = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--out", str(out),
                          "--topics", "softmax", "-k", "test_softmax_ and not regression",
                          "--call-timeout", "20"], env=permissive_env(root),
                         cwd=KIT_ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return {p.parent.name: json.loads(p.read_text()) for p in out.rglob("report.json")}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_cheat_earns_nothing(graded, name):
    report = graded[name]
    tests = [t for topic in report["topics"] for t in topic["tests"]]
    assert len(tests) >= 10 and report["max_score"] > 0
    assert report["score"] == 0, [(t["name"], t["outcome"]) for t in tests if t["score"]]
    assert any(t["outcome"] == "forbidden" for t in tests), [t["message"] for t in tests][:3]
    assert any(f["how"] == "runtime" for f in report["flags"]), report["flags"]

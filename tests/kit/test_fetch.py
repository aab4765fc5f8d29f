"""`make data` offline changes nothing: torchvision makes its folders before it downloads, and
a failed download must not leave them (an empty `MNIST/raw` once hid the fallback data)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.kit.variants import KIT_ROOT

OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


def _fetch(root):
    env = {**os.environ, **OFFLINE}  # a closed port: refused at once, as on an offline machine
    return subprocess.run([sys.executable, "datasets/fetch.py", "mnist", "--root", str(root)],
                          cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=300)


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_an_offline_fetch_leaves_the_data_root_as_it_was(tmp_path):
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"kept")
    before = _tree(root)
    run = _fetch(root)
    assert run.returncode == 1 and "could not get MNIST" in run.stderr, run.stderr
    assert _tree(root) == before
    assert (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes() == b"kept"


def test_an_offline_fetch_into_a_new_root_creates_nothing(tmp_path):
    run = _fetch(tmp_path / "new")
    assert run.returncode == 1 and not (tmp_path / "new").exists(), run.stderr

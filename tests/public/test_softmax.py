"""Public checks for softmax regression (§3.4, §3.6, §3.7): read them, run them, then make
them pass. The hidden tests check the same functions on many more inputs."""

import pytest
import torch

from grader.checks import assert_close, expect_tensor


@pytest.mark.points(1)
def test_softmax_small_example(student):
    """softmax of [[1, 2, 3]] is exp(x) / sum(exp(x)) (§3.4.1)."""
    X = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = torch.exp(X) / torch.exp(X).sum(1, keepdim=True)
    assert_close(student.softmax(X), expected, "softmax([[1, 2, 3], [0, 0, 0]])")


@pytest.mark.points(1)
def test_softmax_large_logits(student):
    """Logits of 1000 must not overflow: subtract each row's max first (§3.7)."""
    X = torch.tensor([[1000.0, 1001.0], [-1000.0, -1000.0]])
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=(2, 2))
    # float32 rounds 1000 - logsumexp to about 1e-4, so allow what float32 allows at 1e3
    assert_close(out, torch.tensor([[0.2689414, 0.7310586], [0.5, 0.5]]), "softmax(X)",
                 scale=1001.0)

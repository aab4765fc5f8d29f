"""Public checks for training on an accelerator (§5.6, §7.6): read them, run them, then make
them pass. They run on any machine: `student.fake_cuda(n)` makes torch report n GPUs to your
code, and training runs with device=torch.device("cpu"). The hidden tests check much more,
and check on a real GPU where the grading machine has one."""

import pytest
import torch
from torch import nn

from grader.checks import expect_float


@pytest.mark.points(1)
def test_try_gpu_without_and_with_gpus(student):
    """try_gpu(i) is torch.device(f'cuda:{i}') when GPU i exists, else torch.device('cpu')
    (§5.6.1)."""
    with student.fake_cuda(0):
        assert student.try_gpu() == torch.device("cpu"), "with no GPU, try_gpu() is the CPU"
    with student.fake_cuda(2):
        assert student.try_gpu() == torch.device("cuda:0"), "with 2 GPUs, try_gpu() is cuda:0"
        assert student.try_gpu(1) == torch.device("cuda:1"), "try_gpu(1) is cuda:1"
        assert student.try_gpu(2) == torch.device("cpu"), "with 2 GPUs, try_gpu(2) is the CPU"


@pytest.mark.points(1)
def test_try_all_gpus(student):
    """try_all_gpus() lists every GPU, or [cpu] when there is none (§5.6.1)."""
    with student.fake_cuda(0):
        assert student.try_all_gpus() == [torch.device("cpu")]
    with student.fake_cuda(2):
        assert student.try_all_gpus() == [torch.device("cuda:0"), torch.device("cuda:1")]


def tiny_data():
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g))
            for n in (8, 8, 4)]


@pytest.mark.points(1)
def test_evaluate_accuracy_gpu_on_cpu(student):
    """evaluate_accuracy_gpu returns the fraction of examples classified correctly; here on
    the CPU, the device of the net's parameters (§7.6.1)."""
    data = tiny_data()
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        expected = sum(float((net(X).argmax(1) == y).sum()) for X, y in data) / 20
    acc = expect_float(student.evaluate_accuracy_gpu(student.remote(nn.Sequential, *net), data),
                       "evaluate_accuracy_gpu(net, data)")
    assert abs(acc - expected) < 1e-6, f"accuracy {acc}, expected {expected}"


@pytest.mark.points(1)
def test_train_gpu_on_cpu(student):
    """train_gpu(net, train_iter, test_iter, num_epochs, lr, torch.device('cpu')) trains on
    the CPU and returns one float per epoch in 'train_loss', 'train_acc' and 'test_acc'
    (§7.6.1)."""
    data = tiny_data()
    net = student.remote(nn.Sequential, nn.Flatten(), nn.Linear(16, 8), nn.ReLU(),
                         nn.Linear(8, 3))
    history = student.train_gpu(net, data, data, 2, 0.1, torch.device("cpu"))
    assert isinstance(history, dict), "train_gpu should return a dict"
    for key in ("train_loss", "train_acc", "test_acc"):
        assert key in history and len(history[key]) == 2, f"history[{key!r}] needs 2 entries"
        for v in history[key]:
            expect_float(v, f"history[{key!r}]")

"""Public checks for training on an accelerator (§5.6, §7.6): read them, run them, then make
them pass. They run on any machine: `student.fake_cuda(n)` makes torch report n GPUs to your
code, and training runs with device=torch.device("cpu"). The hidden tests check much more,
and check on a real GPU where the grading machine has one.

Two tools show device mistakes without a GPU. With `fake_cuda(1)` a machine reports a GPU, so
code that moves data to 'cuda:0' (or to try_gpu()) when it was asked to use the CPU fails. And
`torchdrill.callables.HostBatches` hands over batches that act as if they lived on another
device than the net until `X.to(device)` moves them, so a batch used without moving fails as
it would on a GPU. When a result matches a mistake students often make, the message names it:
the mistakes are in `_mistakes_gpu_training.py` beside this file, those of a training loop in
`_mistakes_mlp.py` (train_gpu takes the steps train_mlp takes) and what every topic shares in
`_conventions.py` (the hidden tests say the same).
"""

import pytest
import torch
from torch import nn

from grader.checks import expect_float, hints_on_error
from tests.public._conventions import DATA_ITERATOR_HINTS, expect_exact_float
from tests.public._mistakes_gpu_training import (
    CPU,
    DEVICE_HINTS,
    EVAL_ALWAYS_BACK_TO_TRAINING,
    EVAL_IN_TRAINING_MODE,
    EVAL_LEFT_IN_EVAL_MODE,
    EVAL_NEVER_CALLED_NET,
    MOVE_HINTS,
    ON_GPU_BY_MISTAKE,
    SEEDED_INSIDE,
    TRAIN_GPU_EXAMPLE,
    bias_changed_message,
    check_accuracy,
    dead_relu_example,
    eval_graph_message,
    expect_device,
    expect_device_list,
    expect_moved,
    graph_calls,
    graph_log,
    train_twice,
    try_gpu_mistakes,
    xavier_message,
)
from tests.public._mistakes_mlp import (
    check_reported_accuracy,
    check_test_acc,
    check_train_acc,
    check_train_loss,
    check_trained_state,
    expect_history,
    training_mode_message,
)
from torchdrill.callables import HostBatches, OneShotBatches

# --------------------------------------------------------------------------- try_gpu


@pytest.mark.points(1)
def test_try_gpu_without_and_with_gpus(student):
    """try_gpu(i) is torch.device(f'cuda:{i}') when GPU i exists, else torch.device('cpu'):
    with no GPU always the CPU, with 2 GPUs cuda:0 and cuda:1, and the CPU for i = 2
    (§5.6.1)."""
    with student.fake_cuda(0):
        expect_device(student.try_gpu(), CPU, "try_gpu() with no GPU", try_gpu_mistakes(0, 0))
    with student.fake_cuda(2):
        for i, expected in ((0, "cuda:0"), (1, "cuda:1"), (2, "cpu")):
            expect_device(student.try_gpu(i), torch.device(expected), f"try_gpu({i}) with 2 GPUs",
                          try_gpu_mistakes(2, i))


@pytest.mark.points(1)
def test_try_all_gpus(student):
    """try_all_gpus() lists every GPU, or [cpu] when there is none (§5.6.1)."""
    with student.fake_cuda(0):
        expect_device_list(student.try_all_gpus(), [CPU], "try_all_gpus() with no GPU")
    with student.fake_cuda(2):
        expect_device_list(student.try_all_gpus(), [torch.device("cuda:0"),
                                                    torch.device("cuda:1")],
                           "try_all_gpus() with 2 GPUs")


# --------------------------------------------------------------------------- evaluate_accuracy_gpu

SIZES = (8, 8, 4)  # batches of unequal size: the last one is smaller


def tiny_data(sizes=SIZES, seed: int = 0, classes: int = 3):
    """Batches (X (b, 1, 4, 4), y (b,)) of the given sizes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, classes, (n,), generator=g))
            for n in sizes]


def tiny_net(seed: int, *middle: nn.Module, hidden: int = 8, classes: int = 3) -> nn.Sequential:
    """Flatten, Linear(16, hidden), *middle, ReLU, Linear(hidden, classes), its parameters drawn
    from `seed` (built here, then copied to your code with student.remote)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(16, hidden), *middle, nn.ReLU(),
                             nn.Linear(hidden, classes))


def correct(net: nn.Module, data) -> int:
    """How many examples of `data` the grader's copy `net` classifies correctly, as it is."""
    with torch.no_grad():
        return sum(int((net(X).argmax(1) == y).sum()) for X, y in data)


@pytest.mark.points(1)
def test_evaluate_accuracy_gpu_on_cpu(student):
    """evaluate_accuracy_gpu returns the fraction of examples classified correctly, over all
    batches (of 8, 8 and 4 examples): count correct predictions and divide by the number of
    examples; here on the CPU, the device of the net's parameters (§7.6.1)."""
    data, net = tiny_data(), tiny_net(1)
    acc = expect_float(student.evaluate_accuracy_gpu(student.remote(nn.Sequential, *net), data),
                       "evaluate_accuracy_gpu(net, data)")
    per_batch = sum(correct(net, [b]) / len(b[1]) for b in data) / len(data)
    check_accuracy(acc, correct(net, data), SIZES, per_batch=per_batch)


@pytest.mark.points(1)
def test_evaluate_accuracy_gpu_default_device_is_the_nets(student):
    """With device=None, evaluate_accuracy_gpu uses the device of the net's parameters (here
    the CPU) even on a machine that reports a GPU: next(net.parameters()).device, not
    try_gpu(), not 'cuda:0' (§7.6.1)."""
    data, net = tiny_data(), tiny_net(2)
    remote_net = student.remote(nn.Sequential, *net)
    with student.fake_cuda(1), hints_on_error(DEVICE_HINTS):
        acc = expect_float(student.evaluate_accuracy_gpu(remote_net, data),
                           "evaluate_accuracy_gpu(net on the CPU, data) with a GPU reported")
    check_accuracy(acc, correct(net, data), SIZES)


@pytest.mark.points(2)
def test_evaluate_accuracy_gpu_eval_mode_no_grad(student):
    """evaluate_accuracy_gpu evaluates in evaluation mode (net.eval(): here a BatchNorm layer
    then uses its running statistics and counts no batch) without recording an autograd graph
    (torch.no_grad()), and leaves the net in the mode it found: training mode stays training
    mode, evaluation mode stays evaluation mode (net.train(was_training)) (§5.6, §7.6.1)."""
    data, net = tiny_data(), tiny_net(3, nn.BatchNorm1d(8))
    remote_net = student.remote(nn.Sequential, *net)  # in training mode, as a new net is
    log = graph_log(student, remote_net[4])
    with hints_on_error(DEVICE_HINTS):
        acc = expect_float(student.evaluate_accuracy_gpu(remote_net, data, CPU),
                           "evaluate_accuracy_gpu(net, data, cpu)")
    assert int(remote_net.state_dict()["2.num_batches_tracked"]) == 0, EVAL_IN_TRAINING_MODE
    with_grad, without = graph_calls(log)
    assert not with_grad, eval_graph_message(with_grad)
    assert without, EVAL_NEVER_CALLED_NET
    net.eval()
    check_accuracy(acc, correct(net, data), SIZES)
    assert remote_net.training, EVAL_LEFT_IN_EVAL_MODE
    remote_net.eval()
    with hints_on_error(DEVICE_HINTS):
        student.evaluate_accuracy_gpu(remote_net, data, CPU)
    assert not remote_net.training, EVAL_ALWAYS_BACK_TO_TRAINING


@pytest.mark.points(1)
def test_evaluate_accuracy_gpu_moves_every_batch(student):
    """evaluate_accuracy_gpu moves each batch X and its labels y to the device (the `device`
    argument, or the net's when it is None) before using them: X, y = X.to(device),
    y.to(device). The test's batches act as if they were on another device until moved
    (§5.6.2, §7.6.1)."""
    data, net = tiny_data(), tiny_net(4)
    remote_net = student.remote(nn.Sequential, *net)
    for device in (CPU, None):
        host = student.remote(HostBatches, data)
        what = f"evaluate_accuracy_gpu(net, data_iter, {device})"
        with hints_on_error({**MOVE_HINTS, **DEVICE_HINTS}):
            acc = expect_float(student.evaluate_accuracy_gpu(remote_net, host, device), what)
        expect_moved(host, what)
        check_accuracy(acc, correct(net, data), SIZES)


@pytest.mark.points(1)
def test_evaluate_accuracy_gpu_one_shot_iterator(student):
    """data_iter may be a one-shot iterator, as a generator is: evaluate_accuracy_gpu reads it
    once, counting the examples (y.numel()) and the correct predictions in the same loop, with
    no first pass to count and no len(), and returns the fraction as a Python float
    (§7.6.1)."""
    data, net = tiny_data(), tiny_net(5)
    with hints_on_error({**DATA_ITERATOR_HINTS, **DEVICE_HINTS}):
        result = student.evaluate_accuracy_gpu(student.remote(nn.Sequential, *net),
                                               student.remote(OneShotBatches, data), CPU)
    acc = expect_exact_float(result, "evaluate_accuracy_gpu(net, a one-shot data_iter, cpu)")
    check_accuracy(acc, correct(net, data), SIZES)


# --------------------------------------------------------------------------- train_gpu


@pytest.mark.points(1)
def test_train_gpu_on_cpu(student):
    """train_gpu(net, train_iter, test_iter, num_epochs, lr, torch.device('cpu')) trains on
    the CPU and returns one float per epoch in 'train_loss', 'train_acc' and 'test_acc'
    (§7.6.1)."""
    data = tiny_data()
    net = student.remote(nn.Sequential, nn.Flatten(), nn.Linear(16, 8), nn.ReLU(),
                         nn.Linear(8, 3))
    with hints_on_error({**DATA_ITERATOR_HINTS, **DEVICE_HINTS}):
        history = student.train_gpu(net, data, data, 2, 0.1, CPU)
    expect_history(history, 2, "train_gpu")


# a net with a Conv2d and two Linear layers, on batches of 2 x 6 x 6 images; its weights with
# their (fan_in, fan_out): a Conv2d's fans count the kernel's positions
XAVIER_LAYERS = (("0.weight", "the Conv2d layer's weight", 2 * 9, 16 * 9),
                 ("3.weight", "the first Linear layer's weight", 256, 64),
                 ("5.weight", "the last Linear layer's weight", 64, 5))


@pytest.mark.points(2)
def test_train_gpu_xavier_initialisation(student):
    """Before training, train_gpu draws the weight of every nn.Linear and nn.Conv2d layer
    uniformly from [-a, a], a = sqrt(6 / (fan_in + fan_out)) (nn.init.xavier_uniform_; for
    a Conv2d, fan_in = in_channels * kh * kw, fan_out = out_channels * kh * kw), and leaves
    the biases as the net was built. Seen after a run with lr = 0, which trains nothing
    (§5.4.2.2, §7.6.1)."""
    with torch.random.fork_rng():
        torch.manual_seed(6)
        net = nn.Sequential(nn.Conv2d(2, 16, kernel_size=3), nn.ReLU(), nn.Flatten(),
                            nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 5))
    before = net.state_dict()
    remote_net = student.remote(nn.Sequential, *net)
    g = torch.Generator().manual_seed(7)
    data = [(torch.rand(4, 2, 6, 6, generator=g), torch.tensor([0, 1, 2, 4]))]
    with hints_on_error(DEVICE_HINTS):
        student.train_gpu(remote_net, data, data, 1, 0.0, CPU)
    state = remote_net.state_dict()
    for key, name, fan_in, fan_out in XAVIER_LAYERS:
        message = xavier_message(name, state[key], fan_in, fan_out, before[key])
        assert message is None, message
        bias = key.replace("weight", "bias")
        assert torch.equal(state[bias], before[bias]), bias_changed_message(bias)


@pytest.mark.points(1)
def test_train_gpu_initialises_each_call(student):
    """Each call of train_gpu draws new Xavier weights from torch's random generator (no
    torch.manual_seed inside train_gpu): two calls on copies of one net, with lr = 0, start
    from different weights (§7.6.1)."""
    weights = []
    for _ in range(2):
        remote_net = student.remote(nn.Sequential, *tiny_net(8))
        with hints_on_error(DEVICE_HINTS):
            student.train_gpu(remote_net, tiny_data((4,)), tiny_data((4,)), 1, 0.0, CPU)
        weights.append(remote_net.state_dict()["1.weight"])
    assert not torch.equal(weights[0], weights[1]), SEEDED_INSIDE


@pytest.mark.points(1)
def test_train_gpu_uses_the_device_argument(student):
    """train_gpu(..., device=cpu) trains on the CPU even where torch reports a GPU: the net and
    every batch go to `device`, never to a hard-coded 'cuda:0' or try_gpu() (§5.6.2)."""
    remote_net = student.remote(nn.Sequential, *tiny_net(9))
    data = tiny_data((8, 4))
    with student.fake_cuda(1), hints_on_error(DEVICE_HINTS):
        student.train_gpu(remote_net, data, data, 1, 0.1, CPU)
    for key, value in remote_net.state_dict().items():
        assert value.device == CPU, (f"after train_gpu(..., device=cpu) the net's {key!r} is on "
                                     f"{value.device}: {ON_GPU_BY_MISTAKE}")


@pytest.mark.points(1)
def test_train_gpu_moves_every_batch(student):
    """train_gpu moves every training batch X and its labels y to `device` before using them
    (X, y = X.to(device), y.to(device)), and evaluates the test batches the same way. The
    test's batches act as if they were on another device until moved (§5.6.2, §7.6.1)."""
    remote_net = student.remote(nn.Sequential, *tiny_net(10))
    train_host = student.remote(HostBatches, tiny_data((8, 8, 5), 11))
    test_host = student.remote(HostBatches, tiny_data((6, 4), 12))
    with hints_on_error({**MOVE_HINTS, **DEVICE_HINTS}):
        student.train_gpu(remote_net, train_host, test_host, 2, 0.1, CPU)
    expect_moved(train_host, "train_gpu's training batches")
    expect_moved(test_host, "train_gpu's test batches")


@pytest.mark.points(2)
def test_train_gpu_takes_the_sgd_steps(student):
    """From its Xavier initialisation (seen by a first run with lr = 0 from the same random
    state), train_gpu takes one SGD step with lr = 0.5 on the *mean* cross-entropy of each
    batch (nn.CrossEntropyLoss's default), in order, zeroing the gradients before each
    backward (optimizer.zero_grad()), for 2 epochs; its history reports, per epoch, the mean
    loss per training example and the accuracy the trained net measures on the test batches
    (§7.6.1). The net's first biases are -10, so its hidden ReLUs give 0 whatever Xavier
    draws: only the last layer's bias learns, the same way from every initialisation, and
    the test knows where the steps lead. The last test accuracy is checked first against the
    trained net's, measured here from its parameters: a history reports what the net it
    trained measures."""
    example = TRAIN_GPU_EXAMPLE
    net, train_data, test_data = dead_relu_example(example)
    epochs, lr = example["num_epochs"], example["lr"]
    init, final, history = train_twice(student, net, train_data, test_data, epochs, lr)
    got = expect_history(history, epochs, "train_gpu")
    check_reported_accuracy(got, net, final, test_data, "train_gpu")
    check_trained_state(final, init, {**init, **example["state"]}, lr, "train_gpu",
                        lambda: {message: {**init, **state}
                                 for message, state in example["mistakes"].items()})
    for e in range(epochs):
        check_train_loss(got, example["facts"], e, train_data)
        check_train_acc(got, example["facts"], e)
        check_test_acc(got, example["facts"], e)


@pytest.mark.points(1)
def test_train_gpu_sets_training_mode_each_epoch(student):
    """train_gpu trains in training mode and evaluates in evaluation mode: net.train() at the
    start of every epoch, before its first batch (the net may arrive in evaluation mode, and
    evaluating switches it there), as D2L's train_ch6 does, and evaluate_accuracy_gpu for the
    test set. Seen through a BatchNorm layer, which counts the batches it sees in training
    mode: 2 epochs of 3 batches are 6 (§7.6.1)."""
    remote_net = student.remote(nn.Sequential, *tiny_net(16, nn.BatchNorm1d(8)))
    remote_net.eval()
    with hints_on_error(DEVICE_HINTS):
        student.train_gpu(remote_net, tiny_data((8, 8, 5), 17), tiny_data((6, 4), 18), 2, 0.1,
                          CPU)
    tracked = int(remote_net.state_dict()["2.num_batches_tracked"])
    message = training_mode_message(tracked, 6, 3, "train_ch6", "§7.6.1")
    assert message is None, message

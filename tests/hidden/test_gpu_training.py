"""Hidden tests for training on an accelerator (§5.6, §7.6).

Most of these run on any machine. `with student.fake_cuda(n)` makes torch in the worker report
n GPUs (count and availability only: no GPU memory), which is enough for try_gpu and
try_all_gpus and shows code that moves data to a GPU although it was asked to use the CPU.
evaluate_accuracy_gpu and train_gpu are checked on the CPU (device=torch.device("cpu")):

- train_gpu's Xavier initialisation statistically, on layers large enough for a precise
  sample standard deviation, and against the bound sqrt(6 / (fan_in + fan_out));
- its SGD steps exactly: the worker's random generator is seeded, train_gpu runs once with
  lr=0 (its steps then change nothing, so the parameters it returns are its initialisation),
  is seeded again and runs with the real lr; the second run starts from the same
  initialisation, and the test repeats its steps here;
- evaluation mode through a BatchNorm layer (it counts the batches it sees in training mode)
  and the absence of an autograd graph through a forward pre-hook that prints the last
  layer's input into an io.StringIO in the worker (a tensor built by autograd prints with
  `grad_fn=`).

Device moves are checked on any machine: the tests hand over torchdrill.callables.HostBatches,
whose tensors act as if they lived on another device than the net until `.to(device)` moves
them, so a batch X or labels y left behind raise (naming the tensor) as they would on a GPU.
A net handed over in evaluation mode must train in training mode (net.train() at the start of
every epoch, as D2L's train_ch6 does). The MNIST run's history is checked against what the
grader measures itself (tests/hidden/_training.py).

Tests marked `gpu` run only where CUDA exists: everything must land on the GPU and agree with
the CPU within float32 tolerance.

What a test says when it recognises a mistake (and how it recognises it) is in
tests/public/_mistakes_gpu_training.py, which the public tests share; what mlp's tests share
with these stays in tests/hidden/_training.py.
"""

from __future__ import annotations

import ast
import copy

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from grader.checks import expect_float, hints_on_error
from tests.hidden import _strategies as tds
from tests.hidden._conventions import DATA_ITERATOR_HINTS, expect_exact_float
from tests.hidden._probes import logged_calls
from tests.hidden._training import (
    LEARNING_BATCH,
    LEARNING_EPOCHS,
    LEARNING_WIDTHS,
    batches,
    check_evaluation_modes,
    check_learning,
    check_test_acc,
    check_train_acc,
    check_train_loss,
    count_correct,
    expect_history,
    expect_trained_state,
    grader_mnist,
    make_net,
    mode_probe_net,
    reference_curve,
    training_mode_message,
    training_setups,
    with_state,
    worker_mnist,
    xavier_state,
)
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
    bias_changed_message,
    check_accuracy,
    eval_graph_message,
    expect_device,
    expect_device_list,
    expect_moved,
    train_twice,
    try_gpu_mistakes,
    xavier_message,
)
from torchdrill.callables import HostBatches, OneShotBatches, ReiterableBatches

# --------------------------------------------------------------------------- try_gpu


@pytest.mark.points(2)
def test_try_gpu_without_gpus(student):
    """With no GPU (torch.cuda.device_count() == 0) try_gpu() and try_gpu(1) return
    torch.device('cpu'): never a hard-coded 'cuda:0' (§5.6.1)."""
    with student.fake_cuda(0):
        for i in (0, 1, 3):
            expect_device(student.try_gpu(i), CPU, f"try_gpu({i}) with no GPU",
                          try_gpu_mistakes(0, i))
        expect_device(student.try_gpu(), CPU, "try_gpu() with no GPU", try_gpu_mistakes(0, 0))


@pytest.mark.points(2)
def test_try_gpu_with_two_gpus(student):
    """With 2 GPUs, try_gpu() is cuda:0, try_gpu(1) is cuda:1 and try_gpu(2) is the CPU
    (GPUs are numbered from 0) (§5.6.1)."""
    with student.fake_cuda(2):
        expect_device(student.try_gpu(), torch.device("cuda:0"), "try_gpu() with 2 GPUs")
        for i, expected in ((0, "cuda:0"), (1, "cuda:1"), (2, "cpu"), (7, "cpu")):
            expect_device(student.try_gpu(i), torch.device(expected),
                          f"try_gpu({i}) with 2 GPUs", try_gpu_mistakes(2, i))


@pytest.mark.points(2)
@given(count=st.integers(0, 4), i=st.integers(0, 5))
@tds.max_examples(at_most=15)
def test_try_gpu_any_count(student, count, i):
    """try_gpu(i) is cuda:i when torch reports more than i GPUs and the CPU otherwise, for
    0 to 4 GPUs (§5.6.1)."""
    expected = torch.device(f"cuda:{i}") if i < count else CPU
    with student.fake_cuda(count):
        expect_device(student.try_gpu(i), expected, f"try_gpu({i}) with {count} GPU(s)",
                      try_gpu_mistakes(count, i))


@pytest.mark.points(2)
@given(count=st.integers(0, 4))
@example(count=2)
@tds.max_examples(at_most=5)
def test_try_all_gpus_for_each_count(student, count):
    """try_all_gpus() lists cuda:0 ... cuda:{n-1} for n GPUs, and [cpu] when there is none
    (§5.6.1)."""
    expected = [torch.device(f"cuda:{i}") for i in range(count)] or [CPU]
    with student.fake_cuda(count):
        expect_device_list(student.try_all_gpus(), expected, f"try_all_gpus() with {count} "
                           "GPU(s)")


@pytest.mark.points(1)
def test_try_gpu_on_this_machine(student):
    """Without pretending: try_gpu() and try_all_gpus() describe the devices this machine
    really has (the CPU where there is no GPU) (§5.6.1)."""
    count = torch.cuda.device_count()
    expect_device(student.try_gpu(), torch.device("cuda:0") if count else CPU, "try_gpu()",
                  try_gpu_mistakes(count, 0))
    expect_device_list(student.try_all_gpus(),
                       [torch.device(f"cuda:{i}") for i in range(count)] or [CPU],
                       "try_all_gpus()")


# --------------------------------------------------------------------------- helpers

# the nets these tests build (tests.hidden._training.make_net): 16 inputs (batches of 1x4x4
# images), 12 hidden units, 5 classes; the probe of evaluation modes has 24 hidden units
PROBE_WIDTHS = (16, 24, 5)


# --------------------------------------------------------------------------- evaluate_accuracy_gpu


@st.composite
def evaluation_setups(draw):
    sizes = draw(st.sampled_from([(7,), (8, 8, 3), (5, 10), (4, 4, 4, 1)]))
    return sizes, draw(st.integers(0, 2**16)), draw(st.booleans())


@pytest.mark.points(3)
@given(setup=evaluation_setups())
@tds.max_examples(at_most=10)
def test_evaluate_accuracy_gpu_counts_correct_predictions(student, setup):
    """evaluate_accuracy_gpu(net, data_iter, device) is the number of examples classified
    correctly (argmax of the logits == y) over all batches divided by the number of examples,
    when the last batch is smaller too; device cpu, given or defaulting to the net's (§7.6.1)."""
    sizes, seed, pass_device = setup
    net = make_net(seed)
    data = batches(sizes, seed + 1)
    remote_net = student.remote(nn.Sequential, *net)
    with hints_on_error(DEVICE_HINTS):
        if pass_device:
            result = student.evaluate_accuracy_gpu(remote_net, data, CPU)
        else:
            result = student.evaluate_accuracy_gpu(remote_net, data)
    acc = expect_float(result, "evaluate_accuracy_gpu(net, data_iter)")
    right, unsure = count_correct(net, data)
    per_batch = sum(count_correct(net, [b])[0] / len(b[1]) for b in data) / len(data)
    check_accuracy(acc, right, sizes, unsure, per_batch)


@pytest.mark.points(3)
def test_evaluate_accuracy_gpu_eval_mode_no_grad(student):
    """evaluate_accuracy_gpu evaluates in evaluation mode (no dropout; BatchNorm's running
    statistics) without building an autograd graph (torch.no_grad()), and afterwards the net
    is in the mode it was in before: training mode stays training mode, evaluation mode stays
    evaluation mode (§5.6, §7.6.1)."""
    net, remote_net, log = mode_probe_net(student, 5, PROBE_WIDTHS)
    data = batches((20, 20, 13), 6)
    with hints_on_error(DEVICE_HINTS):
        acc = expect_float(student.evaluate_accuracy_gpu(remote_net, data, CPU),
                           "evaluate_accuracy_gpu(net, data_iter, cpu)")
    if int(remote_net.state_dict()["2.num_batches_tracked"]) > 0:
        raise AssertionError(EVAL_IN_TRAINING_MODE)
    with_grad, without = logged_calls(log)
    if with_grad:
        raise AssertionError(eval_graph_message(with_grad))
    if not without:
        raise AssertionError(EVAL_NEVER_CALLED_NET)
    net.eval()
    right, unsure = count_correct(net, data)
    n = sum(len(y) for _, y in data)
    if abs(acc - right / n) > 1e-6 + unsure / n:
        raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, but in evaluation mode "
                             f"the net classifies {right / n:.6g} of the examples correctly.")
    if not remote_net.training or not remote_net[4].training:
        raise AssertionError(EVAL_LEFT_IN_EVAL_MODE)
    remote_net.eval()
    with hints_on_error(DEVICE_HINTS):
        student.evaluate_accuracy_gpu(remote_net, data, CPU)
    if remote_net.training or remote_net[4].training:
        raise AssertionError(EVAL_ALWAYS_BACK_TO_TRAINING)


@pytest.mark.points(2)
def test_evaluate_accuracy_gpu_default_device_is_the_nets(student):
    """With device=None, evaluate_accuracy_gpu uses the device of the net's parameters (here
    the CPU), even on a machine that reports a GPU: not try_gpu(), not 'cuda' (§7.6.1)."""
    net = make_net(9)
    data = batches((6, 6), 10)
    remote_net = student.remote(nn.Sequential, *net)
    with student.fake_cuda(1), hints_on_error(DEVICE_HINTS):
        acc = expect_float(student.evaluate_accuracy_gpu(remote_net, data),
                           "evaluate_accuracy_gpu(net, data_iter)")
    right, unsure = count_correct(net, data)
    if abs(acc - right / 12) > 1e-6 + unsure / 12:
        raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, expected "
                             f"{right / 12:.6g}.")


@pytest.mark.points(2)
def test_evaluate_accuracy_gpu_moves_every_batch(student):
    """evaluate_accuracy_gpu moves each batch X and its labels y to the device (the `device`
    argument, or the net's when it is None) before using them. Checked without a GPU: the
    test's batches behave as if they were on another device than the net until they are
    moved with .to(device) (§5.6.2, §7.6.1)."""
    net = make_net(95)
    data = batches((8, 8, 3), 96)
    remote_net = student.remote(nn.Sequential, *net)
    right, unsure = count_correct(net, data)
    n = sum(len(y) for _, y in data)
    for device in (CPU, None):
        host = student.remote(HostBatches, data)
        with hints_on_error({**MOVE_HINTS, **DEVICE_HINTS}):
            acc = expect_float(student.evaluate_accuracy_gpu(remote_net, host, device),
                               f"evaluate_accuracy_gpu(net, data_iter, {device})")
        expect_moved(host, f"evaluate_accuracy_gpu(net, data_iter, {device})")
        if abs(acc - right / n) > 1e-6 + unsure / n:
            raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, but the net "
                                 f"classifies {right / n:.6g} of the examples correctly.")


@pytest.mark.points(2)
@given(sizes=st.sampled_from([(7,), (8, 8, 3), (5, 10)]), seed=st.integers(0, 2**16))
@tds.max_examples(at_most=3)
def test_evaluate_accuracy_gpu_one_shot_iterator(student, sizes, seed):
    """data_iter may be a one-shot iterator, as a generator is: evaluate_accuracy_gpu reads it
    once (counting the examples and the correct predictions in the same loop) and returns the
    fraction as a Python float (§7.6.1)."""
    net = make_net(seed)
    data = batches(sizes, seed + 1)
    remote_net = student.remote(nn.Sequential, *net)
    with hints_on_error({**DATA_ITERATOR_HINTS, **DEVICE_HINTS}):
        result = student.evaluate_accuracy_gpu(remote_net, student.remote(OneShotBatches, data),
                                               CPU)
    what = "evaluate_accuracy_gpu(net, a one-shot data_iter, cpu)"
    acc = expect_exact_float(result, what)
    right, unsure = count_correct(net, data)
    n = sum(sizes)
    if abs(acc - right / n) > 1e-6 + unsure / n:
        raise AssertionError(f"{what} is {acc:.6g}, but the net classifies {right / n:.6g} of "
                             "the examples correctly.")


# --------------------------------------------------------------------------- train_gpu: init


XAVIER_LAYERS = (("0.weight", "the Conv2d layer's weight", 4 * 25, 32 * 25),
                 ("3.weight", "the first Linear layer's weight", 128, 1024),
                 ("5.weight", "the last Linear layer's weight", 1024, 10))


def xavier_net() -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(31)
        return nn.Sequential(nn.Conv2d(4, 32, kernel_size=5), nn.ReLU(), nn.Flatten(),
                             nn.Linear(128, 1024), nn.ReLU(), nn.Linear(1024, 10))


@pytest.mark.points(3)
def test_train_gpu_xavier_initialisation(student):
    """Before training, train_gpu draws the weight of every nn.Linear and nn.Conv2d layer
    uniformly from [-a, a] with a = sqrt(6 / (fan_in + fan_out)) (nn.init.xavier_uniform_;
    for a Conv2d, fan_in = in_channels * kh * kw and fan_out = out_channels * kh * kw), and
    leaves the biases as the net was built (§5.4.2.2, §7.6.1)."""
    net = xavier_net()
    before = net.state_dict()
    remote_net = student.remote(nn.Sequential, *net)
    data = batches((6,), 32, shape=(4, 6, 6), classes=10)
    with hints_on_error(DEVICE_HINTS):
        student.train_gpu(remote_net, data, data, 1, 0.0, CPU)
    state = remote_net.state_dict()
    for key, name, fan_in, fan_out in XAVIER_LAYERS:
        message = xavier_message(name, state[key], fan_in, fan_out, before[key])
        if message:
            raise AssertionError(message)
    for key, _, _, _ in XAVIER_LAYERS:
        bias = key.replace("weight", "bias")
        if not torch.equal(state[bias], before[bias]):
            raise AssertionError(bias_changed_message(bias))


@pytest.mark.points(1)
def test_train_gpu_initialises_each_call(student):
    """Each call of train_gpu draws new Xavier weights from torch's random generator (no fixed
    seed inside train_gpu): two calls on copies of one net start from different weights."""
    finals = []
    for _ in range(2):
        remote_net = student.remote(nn.Sequential, *make_net(3))
        with hints_on_error(DEVICE_HINTS):
            student.train_gpu(remote_net, batches((4,), 4), batches((4,), 5), 1, 0.0, CPU)
        finals.append(remote_net.state_dict()["1.weight"])
    if torch.equal(finals[0], finals[1]):
        raise AssertionError(SEEDED_INSIDE)


# --------------------------------------------------------------------------- train_gpu: steps


@pytest.mark.points(4)
@given(setup=training_setups(lrs=(0.1, 0.5, 1.0)))
@tds.max_examples(at_most=5)
def test_train_gpu_takes_the_sgd_steps(student, setup):
    """After its Xavier initialisation, train_gpu(net, train_iter, test_iter, num_epochs, lr,
    cpu) takes one torch.optim.SGD step with lr on the mean cross-entropy of each batch, in
    the order train_iter yields them, gradients zeroed before each backward, for 1 to 3
    epochs and batches of unequal size (§7.6.1)."""
    net = make_net(setup["seed"])
    train_data = batches(setup["train_sizes"], setup["seed"] + 1)
    test_data = batches(setup["test_sizes"], setup["seed"] + 2)
    init, final, history = train_twice(student, net, train_data, test_data,
                                       setup["num_epochs"], setup["lr"])
    expect_history(history, setup["num_epochs"], "train_gpu")
    expect_trained_state(final, with_state(net, init), train_data, test_data,
                         setup["num_epochs"], setup["lr"], "train_gpu")


@pytest.mark.points(2)
@given(setup=training_setups(lrs=(0.1, 0.5, 1.0)))
@tds.max_examples(at_most=5)
def test_train_gpu_history(student, setup):
    """train_gpu's history holds, per epoch, the mean cross-entropy per training example, the
    fraction of training examples classified correctly and the fraction of test examples
    classified correctly after the epoch, as floats (§7.6.1)."""
    net = make_net(setup["seed"])
    train_data = batches(setup["train_sizes"], setup["seed"] + 1)
    test_data = batches(setup["test_sizes"], setup["seed"] + 2)
    init, final, history = train_twice(student, net, train_data, test_data,
                                       setup["num_epochs"], setup["lr"])
    got = expect_history(history, setup["num_epochs"], "train_gpu")
    facts = expect_trained_state(final, with_state(net, init), train_data, test_data,
                                 setup["num_epochs"], setup["lr"], "train_gpu")
    for e in range(setup["num_epochs"]):
        check_train_loss(got, facts, e, train_data)
        check_train_acc(got, facts, e)
        check_test_acc(got, facts, e)


@pytest.mark.points(2)
def test_train_gpu_evaluates_in_eval_mode_without_graph(student):
    """train_gpu trains in training mode and evaluates in evaluation mode without an autograd
    graph (evaluate_accuracy_gpu), switching back to training mode for the next epoch; the
    reported test accuracy is the trained net's, in evaluation mode (§7.6.1). Checked on a
    net with Dropout and BatchNorm."""
    num_epochs, train_sizes, test_sizes = 2, (16, 16, 10), (20, 20, 9)
    net, remote_net, log = mode_probe_net(student, 41, PROBE_WIDTHS)
    train_data, test_data = batches(train_sizes, 42), batches(test_sizes, 43)
    with hints_on_error(DEVICE_HINTS):
        history = expect_history(student.train_gpu(remote_net, train_data, test_data,
                                                   num_epochs, 0.1, CPU), num_epochs,
                                 "train_gpu")
    check_evaluation_modes(history, remote_net.state_dict(), net, log, num_epochs, train_sizes,
                           test_data, "§7.6.1")


@pytest.mark.points(2)
def test_train_gpu_uses_the_device_argument(student):
    """train_gpu(..., device=cpu) trains on the CPU even where torch reports a GPU: the net and
    every batch go to `device`, never to a hard-coded 'cuda:0' or try_gpu() (§5.6.2)."""
    net = make_net(51)
    data = batches((8, 8), 52)
    remote_net = student.remote(nn.Sequential, *net)
    with student.fake_cuda(1), hints_on_error(DEVICE_HINTS):
        history = student.train_gpu(remote_net, data, data, 1, 0.1, CPU)
    expect_history(history, 1, "train_gpu")
    for key, value in remote_net.state_dict().items():
        if value.device != CPU:
            raise AssertionError(f"after train_gpu(..., device=cpu) the net's {key!r} is on "
                                 f"{value.device}: {ON_GPU_BY_MISTAKE}")


@pytest.mark.points(2)
def test_train_gpu_moves_every_batch(student):
    """train_gpu moves every training batch X and its labels y to `device` before using them,
    and evaluates the test set the same way. Checked without a GPU: the test's batches behave
    as if they were on another device than the net until they are moved with .to(device)
    (§5.6.2, §7.6.1)."""
    net = make_net(55)
    train_data, test_data = batches((8, 8, 5), 56), batches((6, 4), 57)
    remote_net = student.remote(nn.Sequential, *net)
    train_host = student.remote(HostBatches, train_data)
    test_host = student.remote(HostBatches, test_data)
    with hints_on_error({**MOVE_HINTS, **DEVICE_HINTS}):
        history = student.train_gpu(remote_net, train_host, test_host, 2, 0.1, CPU)
    expect_moved(train_host, "train_gpu's training batches")
    expect_moved(test_host, "train_gpu's test batches")
    expect_history(history, 2, "train_gpu")


@pytest.mark.points(1)
def test_train_gpu_sets_training_mode_each_epoch(student):
    """train_gpu calls net.train() at the start of every epoch, as D2L's train_ch6 does: a
    net handed over in evaluation mode trains in training mode from its first step, and
    again after each evaluation (§7.6.1). Checked on a net with BatchNorm."""
    net = make_net(45, PROBE_WIDTHS, extra=(nn.BatchNorm1d(24),))
    remote_net = student.remote(nn.Sequential, *net)
    remote_net.eval()
    train_sizes = (12, 12, 7)
    with hints_on_error(DEVICE_HINTS):
        student.train_gpu(remote_net, batches(train_sizes, 46), batches((10, 5), 47), 2, 0.1,
                          CPU)
    tracked = int(remote_net.state_dict()["2.num_batches_tracked"])
    message = training_mode_message(tracked, 2 * len(train_sizes), len(train_sizes),
                                    "train_ch6", "§7.6.1")
    if message:
        raise AssertionError(message)


@pytest.mark.points(1)
def test_train_gpu_any_reiterable_data(student):
    """train_iter and test_iter may be any re-iterable of (X, y) batches, here one with no
    len() and no .dataset (a new pass on every iter(), as a DataLoader): train_gpu takes the
    same SGD steps and counts the examples from the batches, y.numel() (§7.6.1)."""
    net = make_net(65)
    train_data, test_data = batches((8, 8, 5), 66), batches((6, 4), 67)
    states, history = [], None
    for lr in (0.0, 0.5):  # lr = 0 shows the Xavier initialisation it trains from
        student.remote(torch.random.manual_seed, 6565)
        remote_net = student.remote(nn.Sequential, *copy.deepcopy(net))
        with hints_on_error({**DATA_ITERATOR_HINTS, **DEVICE_HINTS}):
            history = student.train_gpu(remote_net, student.remote(ReiterableBatches, train_data),
                                        student.remote(ReiterableBatches, test_data), 2, lr, CPU)
        states.append(remote_net.state_dict())
    got = expect_history(history, 2, "train_gpu")
    facts = expect_trained_state(states[1], with_state(net, states[0]), train_data, test_data,
                                 2, 0.5, "train_gpu")
    for e in range(2):
        check_train_loss(got, facts, e, train_data)
        check_test_acc(got, facts, e)


MNIST_NET_SEED, MNIST_INIT_SEED, MNIST_LR = 61, 6161, 0.3  # test_train_gpu_learns_mnist's
# the batch of its first run, with lr = 0: the net after it shows the initialisation drawn
INIT_PROBE = batches((4,), 62, shape=(1, 28, 28), classes=10)


def mnist_reference_curve() -> dict:
    """The reference's curve for test_train_gpu_learns_mnist, from the Xavier weights the
    reference's train_gpu draws: computed before the test sessions fork (`prefetch`), once
    for all of them. A train_gpu that draws its weights in another order starts elsewhere,
    and its test trains the reference from there itself."""
    template = make_net(MNIST_NET_SEED, LEARNING_WIDTHS)
    return reference_curve(template, xavier_state(template, MNIST_INIT_SEED), MNIST_LR,
                           LEARNING_BATCH, LEARNING_EPOCHS)


@pytest.mark.points(2)
@pytest.mark.prefetch(grader_mnist, mnist_reference_curve)
def test_train_gpu_learns_mnist(student):
    """An MLP (784-128-10) trained by train_gpu on the CPU for 2 epochs, batch size 64,
    lr 0.3, reaches the test accuracy such a net reaches: above 85% on MNIST (above 60% on
    generated digits where the MNIST files are missing), measured by the grader from the
    trained net's parameters on its own copy of the test set; the history must report that
    same accuracy after the last epoch, and the first epoch's mean training loss of its SGD
    steps from its Xavier initialisation (§7.6)."""
    template = make_net(MNIST_NET_SEED, LEARNING_WIDTHS)
    train_iter, test_iter, source = worker_mnist(student, LEARNING_BATCH)
    # train_gpu draws its Xavier weights from torch's generator: learn them from a run with
    # lr=0 on one small batch, then train from the same random state
    nets = []
    for train, test, epochs, lr in ((INIT_PROBE, INIT_PROBE, 1, 0.0),
                                    (train_iter, test_iter, LEARNING_EPOCHS, MNIST_LR)):
        student.remote(torch.random.manual_seed, MNIST_INIT_SEED)
        nets.append(student.remote(nn.Sequential, *copy.deepcopy(template)))
        with hints_on_error(DEVICE_HINTS):
            history = student.train_gpu(nets[-1], train, test, epochs, lr, CPU)
    history = expect_history(history, LEARNING_EPOCHS, "train_gpu")
    check_learning("train_gpu", history, template, nets[0].state_dict(), nets[1].state_dict(),
                   MNIST_LR, LEARNING_BATCH, source)


def hard_coded_devices(source: str, function: str) -> list[int]:
    """Lines of `function` that name a GPU in a string ('cuda', 'cuda:0') used as a device,
    or call `.cuda()`; comparisons such as `device.type == 'cuda'` are fine."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function),
              None)
    if fn is None:
        return []
    parents = {id(child): node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}

    def used_as_device(node: ast.AST) -> bool:
        parent = parents.get(id(node))
        while isinstance(parent, ast.IfExp | ast.BoolOp):  # 'cuda' if ... else 'cpu'
            node, parent = parent, parents.get(id(parent))
        if isinstance(parent, ast.keyword):
            return parent.arg == "device"
        if isinstance(parent, ast.Assign | ast.AnnAssign | ast.AugAssign):
            return True  # device = "cuda:0"
        if isinstance(parent, ast.Call) and node in parent.args:
            func = parent.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            return name in ("device", "to")  # torch.device("cuda"), X.to("cuda:0")
        return False

    lines = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.split(":")[0] == "cuda" and used_as_device(node):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "cuda":
            lines.append(node.lineno)
    return sorted(set(lines))


@pytest.mark.points(1)
def test_no_hard_coded_gpu(student):
    """evaluate_accuracy_gpu and train_gpu work on the device they are given (or the net's):
    their code names no GPU itself ('cuda', 'cuda:0', .cuda()), so they run on machines
    without one (§5.6)."""
    data = batches((4,), 91)
    # both must run on the CPU first (an unwritten one fails here)
    with hints_on_error(DEVICE_HINTS):
        student.evaluate_accuracy_gpu(student.remote(nn.Sequential, *make_net(92)), data, CPU)
        student.train_gpu(student.remote(nn.Sequential, *make_net(93)), data, data, 1, 0.1, CPU)
    source = student.source() or ""
    for function in ("evaluate_accuracy_gpu", "train_gpu"):
        lines = hard_coded_devices(source, function)
        if lines:
            raise AssertionError(f"{function} names a GPU in its code (line {lines[0]}): a "
                                 "hard-coded 'cuda:0' fails on a machine without a GPU. Use "
                                 "the device argument (evaluate_accuracy_gpu: the net's "
                                 "device, next(net.parameters()).device, when it is None).")


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_try_gpu_finds_the_gpus(student):
    """On a machine with GPUs, try_gpu() is cuda:0 and try_all_gpus() lists every GPU
    (§5.6.1)."""
    count = torch.cuda.device_count()
    expect_device(student.try_gpu(), torch.device("cuda:0"), "try_gpu()")
    expect_device(student.try_gpu(count), CPU, f"try_gpu({count}) with {count} GPU(s)",
                  try_gpu_mistakes(count, count))
    expect_device_list(student.try_all_gpus(), [torch.device(f"cuda:{i}") for i in range(count)],
                       "try_all_gpus()")


@pytest.mark.gpu
@pytest.mark.points(2)
def test_gpu_evaluate_on_the_gpu(student):
    """With the net on the GPU and the batches on the CPU, evaluate_accuracy_gpu moves each
    batch to the net's device (device=None) or to `device`, computes the accuracy there, and
    agrees with the CPU (§7.6.1)."""
    net = make_net(71)
    data = batches((16, 16, 5), 72)
    remote_net = student.remote(nn.Sequential, *net)
    remote_net.to(torch.device("cuda:0"))
    right, unsure = count_correct(net, data)
    n = sum(len(y) for _, y in data)
    for device in (None, torch.device("cuda:0")):
        with hints_on_error(DEVICE_HINTS):
            acc = expect_float(student.evaluate_accuracy_gpu(remote_net, data, device),
                               f"evaluate_accuracy_gpu(net on cuda:0, data, {device})")
        if abs(acc - right / n) > 1e-6 + unsure / n:
            raise AssertionError(f"on the GPU evaluate_accuracy_gpu returned {acc:.6g}, on the "
                                 f"CPU the net classifies {right / n:.6g} correctly.")
    for key, value in remote_net.state_dict().items():
        if value.device.type != "cuda":
            raise AssertionError(f"evaluate_accuracy_gpu moved the net's {key!r} to "
                                 f"{value.device}: leave the net where it is.")


@pytest.mark.gpu
@pytest.mark.points(3)
def test_gpu_train_on_the_gpu(student):
    """train_gpu(..., device=cuda:0) moves the net and every batch to the GPU, leaves the net
    there, and takes the same SGD steps as on the CPU (within float32 rounding) (§7.6.1)."""
    gpu = torch.device("cuda:0")
    net = make_net(81)
    train_data, test_data = batches((8, 8, 5), 82), batches((6, 4), 83)
    init, final, history = train_twice(student, net, train_data, test_data, 2, 0.5, gpu)
    for key, value in final.items():
        if value.device.type != "cuda":
            raise AssertionError(f"after train_gpu(..., device=cuda:0) the net's {key!r} is on "
                                 f"{value.device}: move the net with net.to(device) and leave "
                                 "it there.")
    expect_history(history, 2, "train_gpu")
    expect_trained_state(final, with_state(net, init), train_data, test_data, 2, 0.5,
                         "train_gpu", atol=1e-4)

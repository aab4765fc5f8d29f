"""The mistakes the gpu_training tests recognise, and what they say about each: the public tests
(test_gpu_training.py beside this file) and the hidden ones both import it, so a mistake gets
the same message wherever a test sees it.

Most device mistakes show on a machine without a GPU too: `student.fake_cuda(n)` makes torch
report n GPUs to the code under test (a move to one of them then fails, and DEVICE_HINTS names
the likely cause), and torchdrill.callables.HostBatches hands over batches that act as if they
lived on another device than the net until `.to(device)` moves them (`expect_moved`).
"""

from __future__ import annotations

import copy
import functools
import io
import math

import torch
from torch import nn

from grader.checks import hints_on_error, max_abs
from tests.public._conventions import DATA_ITERATOR_HINTS
from tests.public._mistakes_mlp import NO_ZERO_GRAD_STEPS, SUM_LOSS_STEPS, training_example

CPU = torch.device("cpu")

# --------------------------------------------------------------------------- devices

ON_GPU_BY_MISTAKE = (
    "your code tried to use a GPU although it was asked to work on the CPU (device=cpu, or a "
    "net whose parameters are on the CPU): move the net and every batch to the `device` "
    "argument (or to the net's device when it is None), never to a hard-coded 'cuda:0' or "
    "try_gpu() (§5.6.2).")
MIXED_DEVICES = (
    "tensors on two devices met in one operation: move each batch X and y to the net's device "
    "with X.to(device), y.to(device) before using them (§5.6.2).")

# errors of moving data to a missing GPU, or of mixing devices, and the likely mistake
DEVICE_HINTS = {
    **dict.fromkeys(("NVIDIA driver", "not compiled with CUDA", "CUDA driver", "no CUDA GPUs",
                     "cuda runtime error", "CUDA error"), ON_GPU_BY_MISTAKE),
    **dict.fromkeys(("same device", "Expected all tensors"), MIXED_DEVICES),
}


def try_gpu_mistakes(count: int, i: int) -> dict[str, torch.device]:
    """try_gpu(i)'s wrong answers with `count` GPUs, by the mistake that gives each."""
    mistakes = {}
    if i > 0 and count > 0:
        mistakes["the index i was ignored: try_gpu(i) is GPU number i, "
                 "torch.device(f'cuda:{i}') (§5.6.1)."] = torch.device("cuda:0")
    if count == 0:
        mistakes["torch reports no GPU here, so the answer is the CPU: check "
                 "torch.cuda.device_count() instead of assuming a GPU (§5.6.1)."] = \
            torch.device(f"cuda:{i}")
    elif i >= count:
        mistakes[f"with {count} GPU(s) only cuda:0 to cuda:{count - 1} exist: return the CPU "
                 f"when i >= torch.cuda.device_count() (an off-by-one?)."] = \
            torch.device(f"cuda:{i}")
    return mistakes


def expect_device(value, expected: torch.device, what: str, mistakes: dict | None = None):
    """`value` is the torch.device `expected`; a wrong one that `mistakes` maps a message to
    fails with that message."""
    if isinstance(value, str):
        raise AssertionError(f"{what} returned the string {value!r}: return a torch.device "
                             f"(torch.device({value!r})), as §5.6.1 does.")
    if not isinstance(value, torch.device):
        raise AssertionError(f"{what} should return a torch.device, but it returned "
                             f"{type(value).__name__} {value!r}.")
    if value != expected:
        for message, wrong in (mistakes or {}).items():
            if value == wrong:
                raise AssertionError(f"{what} returned {value}, expected {expected}: {message}")
        raise AssertionError(f"{what} returned {value}, expected {expected}.")


def expect_device_list(value, expected: list[torch.device], what: str) -> None:
    """`value` is the list of torch.devices `expected`, naming an empty list for no GPU and a
    missing last GPU."""
    if not isinstance(value, list | tuple):
        raise AssertionError(f"{what} should return a list of torch.device, but it returned "
                             f"{type(value).__name__} {value!r}.")
    for d in value:
        if isinstance(d, str):
            raise AssertionError(f"{what} contains the string {d!r}: return torch.device "
                                 "objects.")
    if list(value) != expected:
        hint = ""
        if not value and expected == [CPU]:
            hint = " With no GPU return [torch.device('cpu')], not an empty list (§5.6.1)."
        elif len(value) == len(expected) - 1:
            hint = " One GPU is missing: range(torch.cuda.device_count()) covers them all."
        raise AssertionError(f"{what} returned {list(value)}, expected {expected}.{hint}")


LEFT_BEHIND = "stayed on the CPU while the net is on the device"
MOVE_HINTS = {LEFT_BEHIND: "this test's batches behave as CPU batches do when the net is on a "
              "GPU, where the same code raises 'Expected all tensors to be on the same device': "
              "move each X and y with .to(device) as soon as the loop yields them (§5.6.2)."}


def expect_moved(host, what: str) -> None:
    """Fail when the run used a tensor of `host` (HostBatches in the worker) without moving
    it, even if the error it raised was caught."""
    left = list(host.left_behind)
    if left:
        raise AssertionError(f"{what}: {left[0]} {LEFT_BEHIND}: it was used without "
                             "X.to(device) / y.to(device). Move every batch and its labels "
                             "to the device (§5.6.2).")


# --------------------------------------------------------------------------- evaluation

EVAL_IN_TRAINING_MODE = ("BatchNorm saw batches in training mode during evaluate_accuracy_gpu: "
                         "call net.eval() before evaluating (§7.6.1).")
EVAL_NEVER_CALLED_NET = "evaluate_accuracy_gpu never called the net."
EVAL_LEFT_IN_EVAL_MODE = (
    "the net was in training mode before evaluate_accuracy_gpu and is in evaluation mode after "
    "it: remember net.training before net.eval() and restore it with "
    "net.train(was_training).")
EVAL_ALWAYS_BACK_TO_TRAINING = (
    "the net was in evaluation mode before evaluate_accuracy_gpu and is in training mode after "
    "it: restore the mode it was in (net.train(was_training)), do not always switch to "
    "training.")


def eval_graph_message(with_grad: int) -> str:
    """The message for forward passes of evaluate_accuracy_gpu that built an autograd graph."""
    return (f"{with_grad} forward passes of evaluate_accuracy_gpu built an autograd graph: "
            "evaluate inside `with torch.no_grad():` (§5.6).")


def check_accuracy(acc: float, right: float, sizes, unsure: int = 0,
                   per_batch: float | None = None) -> None:
    """evaluate_accuracy_gpu's `acc` against `right` correct predictions over batches of
    `sizes` (`unsure` of them decided by rounding), naming the count returned as it is and the
    plain average of the batches' accuracies (`per_batch`)."""
    n = sum(sizes)
    if abs(acc - right / n) <= 1e-6 + unsure / n:
        return
    if math.isclose(acc, right, abs_tol=unsure + 1e-6) and right != right / n:
        raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, the number of correct "
                             f"predictions: divide by the number of examples ({n}) to get a "
                             "fraction.")
    if per_batch is not None and abs(acc - per_batch) <= 1e-6 and \
            abs(per_batch - right / n) > 1e-6:
        raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, the average of the "
                             f"batches' accuracies; batches differ in size ({list(sizes)}), so "
                             "count correct predictions over all batches and divide by the "
                             f"number of examples: {right / n:.6g} (§3.6.5).")
    raise AssertionError(f"evaluate_accuracy_gpu returned {acc:.6g}, but the net classifies "
                         f"{right:.0f} of {n} examples correctly ({right / n:.6g}).")


def graph_log(student, module):
    """Record, in the worker, whether each call of the worker-side `module` ran with autograd
    recording: a forward hook prints the call's output into a StringIO there, and an output
    made with autograd on prints `grad_fn=`. Read it with `graph_calls`."""
    log = student.remote(io.StringIO)
    module.register_forward_hook(functools.partial(print, "<call>", file=log))
    return log


def graph_calls(log) -> tuple[int, int]:
    """(calls of the module that built a graph, calls that did not) in a `graph_log`."""
    records = log.getvalue().split("<call>")[1:]
    with_grad = sum("grad_fn=" in r for r in records)
    return with_grad, len(records) - with_grad


# --------------------------------------------------------------------------- initialisation

SEEDED_INSIDE = ("two calls of train_gpu produced the same initial weights: do not seed the "
                 "random generator inside train_gpu.")


def bias_changed_message(bias: str) -> str:
    return (f"train_gpu changed the bias {bias!r} before training (lr = 0): Xavier "
            "initialisation is for the weights only, the biases stay as the net was built "
            "(no nn.init.zeros_(m.bias)) (§7.6.1).")


def xavier_message(name: str, W: torch.Tensor, fan_in: int, fan_out: int,
                   before: torch.Tensor) -> str | None:
    """None if W looks like xavier_uniform_ draws; else what it looks like."""
    W = W.detach().double()
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    std, target = float(W.std()), bound / math.sqrt(3)
    n = W.numel()
    rel = max(0.05, 6 * math.sqrt(0.8 / (4 * n)))  # 6 standard errors of a uniform sample std
    if torch.equal(W, before.double()):
        return (f"{name} still holds the weights the net came with: train_gpu must initialise "
                "the weight of every nn.Linear and nn.Conv2d layer with "
                "nn.init.xavier_uniform_ (net.apply(init_weights)) (§7.6.1).")
    largest = max_abs(W)
    if largest > bound * (1 + 1e-5):
        normal_std = math.sqrt(2.0 / (fan_in + fan_out))
        if abs(std - normal_std) <= rel * normal_std:
            return (f"{name} has entries up to {largest:.4g}, beyond Xavier's bound "
                    f"sqrt(6 / (fan_in + fan_out)) = {bound:.4g}, with the spread of "
                    "xavier_normal_: use nn.init.xavier_uniform_.")
        return (f"{name} has entries up to {largest:.4g}, beyond Xavier's bound "
                f"sqrt(6 / ({fan_in} + {fan_out})) = {bound:.4g}: use "
                "nn.init.xavier_uniform_ (§5.4.2.2).")
    if abs(std - target) > rel * target:
        return (f"{name}'s entries have standard deviation {std:.4g}, but Xavier-uniform "
                f"draws from [-{bound:.4g}, {bound:.4g}] have {target:.4g}: use "
                "nn.init.xavier_uniform_ (§5.4.2.2).")
    if abs(float(W.mean())) > 6 * target / math.sqrt(n):
        return f"{name}'s entries do not have mean 0: use nn.init.xavier_uniform_."
    return None


# --------------------------------------------------------------------------- training


def train_twice(student, net, train_data, test_data, num_epochs, lr, device=CPU, seed=1234):
    """Run train_gpu with lr=0 to learn its initialisation, then, from the same random state,
    with the real lr. Returns (initial state, final state, history)."""
    states = []
    history = None
    for rate, epochs in ((0.0, 1), (lr, num_epochs)):
        student.remote(torch.random.manual_seed, seed)
        remote_net = student.remote(nn.Sequential, *copy.deepcopy(net))
        with hints_on_error({**DATA_ITERATOR_HINTS, **DEVICE_HINTS}):
            history = student.train_gpu(remote_net, train_data, test_data, epochs, rate, device)
        states.append(remote_net.state_dict())
    return states[0], states[1], history


def dead_relu_example(example: dict) -> tuple[nn.Sequential, list, list]:
    """The net and batches of TRAIN_GPU_EXAMPLE (training_example), the net's first biases set
    to example["first_bias"], below anything its hidden units' weighted sums reach (inputs in
    [0, 1), Xavier weights of Linear(16, 8) within 0.5): every hidden ReLU gives 0 whatever
    weights train_gpu draws, so the logits are the last layer's bias, and only that bias
    learns, along the same path from every initialisation."""
    net, train_data, test_data = training_example(example)
    with torch.no_grad():
        net[1].bias.fill_(example["first_bias"])
    return net, train_data, test_data


# train_gpu's steps on dead_relu_example's net: the last layer's bias after them (the other
# parameters keep train_gpu's Xavier draws and the biases as built), with, under "mistakes",
# the bias the wrong loops give, and the history's facts (as in the tables of
# _mistakes_mlp.py). The instructor's kit repeats the steps with its hidden oracle and checks
# every number.
TRAIN_GPU_EXAMPLE = {
    "seed": 13, "widths": (16, 8, 3), "shape": (1, 4, 4), "classes": 3, "first_bias": -10.0,
    "train_sizes": (8, 8, 5), "test_sizes": (4, 3), "num_epochs": 2, "lr": 0.5,
    "state": {"3.bias": torch.tensor([0.3452072, -0.33754212, -0.04241477])},
    "mistakes": {NO_ZERO_GRAD_STEPS: {"3.bias": torch.tensor([0.9590464, -1.6346042, 0.6408079])},
                 SUM_LOSS_STEPS: {"3.bias": torch.tensor([0.94802487, -0.52974945, -0.45302486])}},
    "facts": {
        "loss": [1.1796479395457677, 1.0770494795980907],
        "loss_unweighted": [1.1724010705947876, 1.0659167567888896],
        "acc": [0.2857142857142857, 0.47619047619047616],
        "acc_ambiguous": [0.0, 0.0],
        "acc_after": [0.47619047619047616, 0.47619047619047616],
        "loss_after": [1.0692298298790341, 1.0263111704871768],
        "test_acc": [0.5714285714285714, 0.5714285714285714],
        "test_ambiguous": [0.0, 0.0],
        "train_ambiguous": [0.0, 0.0],
    },
}

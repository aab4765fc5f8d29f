"""The mistakes of multilayer perceptrons (§4.1-4.3) the tests recognise, and what they say
about each: the public tests (test_mlp.py) and the instructor's hidden tests check with these
same functions, so a mistake reads the same wherever it is caught. The tests of gpu_training
share the training checks, with the words that name the D2L function and section passed in;
what every topic shares (a Python float, a history that matches the net it trained) is in
`_conventions.py` beside this file.

`check_*` and `expect_*` functions raise an AssertionError that names the mistake. What the
forward pass and a training loop must give for the public tests' inputs is written out below
as numbers (`*_EXAMPLE` tables, with what each named mistake gives), worked out by the
instructor's hidden oracles, which the instructor's kit checks every number against.

A training loop is checked step by step on a small net the test builds from a state it knows
(`make_net`) and batches of fixed order (`batches`): `check_trained_state` compares the trained
parameters with the state the SGD steps give and names the usual wrong loops,
`check_train_loss`, `check_train_acc` and `check_test_acc` compare the history with every
correct way of reporting it. How the net was run is seen without trusting anything the
submission reports: a BatchNorm layer counts the forward passes made in training mode
(`num_batches_tracked`), and a forward pre-hook (`forward_log`: `print` into an `io.StringIO` in
the worker) logs the input of the last layer on every call, which prints with `grad_fn=...`
when autograd was on (`check_evaluation_modes`, `training_mode_message`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import io
import itertools
import math
import operator
from collections.abc import Callable

import torch
from torch import nn

from grader.checks import assert_close, describe, expect_tensor, max_abs
from tests.public._conventions import check_measured_accuracy, expect_exact_float

# --------------------------------------------------------------------------- relu

RELU_ON_OUTPUT = ("ReLU was applied to the output logits too: the output layer has no "
                  "activation (logits may be negative; softmax comes later, in the loss) (§4.2.2)")

NO_HIDDEN_RELU = ("the hidden layer has no nonlinearity: without relu(X W1 + b1) the two layers "
                  "collapse into one linear model (§4.1.1.3)")

RELU_BEFORE_BIAS = "relu was applied before adding b1: the hidden layer is relu(X W1 + b1)."
NO_BIASES = "the biases were not added: O = relu(X W1 + b1) W2 + b2."

FLATTEN_HINTS = {
    "is invalid for input of size": "flatten each example to W1.shape[0] numbers "
    "(X.reshape(-1, W1.shape[0])), not a hard-coded 784.",
    "view size is not compatible": "X may be non-contiguous: flatten it with reshape, not view.",
}


def relu_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "relu(x) is max(x, 0), but your function returned |x|.": X.abs(),
        "relu keeps the positive entries and zeroes the negative ones; yours does the "
        "opposite (min(x, 0)?).": torch.minimum(X, torch.zeros_like(X)),
        "relu returned X unchanged: negative entries must become 0.": X,
    }


def expect_relu_tensor(out, X: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) and (
            isinstance(out, tuple | list) or "return_types" in repr(out)):
        raise AssertionError(
            f"{what} should be a tensor shaped like X, but it is {describe(out)}: "
            "torch.max(X, 0) reduces over dimension 0 and returns (values, indices). Compare "
            "with a tensor of zeros instead: torch.maximum(X, torch.zeros_like(X)).")
    expect_tensor(out, what)
    if tuple(out.shape) != tuple(X.shape):
        raise AssertionError(
            f"{what} has shape {tuple(out.shape)} but X has shape {tuple(X.shape)}: relu is "
            "elementwise (did you reduce with torch.max(X, 0) instead of comparing with "
            "torch.zeros_like(X)?)")
    return out


# --------------------------------------------------------------------------- init_mlp_params


def leaf_flags(student, *args) -> list[bool]:
    """`[p.is_leaf for p in init_mlp_params(*args)]`, evaluated in the worker: a tensor
    reaches the grader as data, and data does not say whether it was a leaf. The call is
    wrapped in lazy iterators (`map`, `chain`) so the parameters never leave the worker."""
    module = student.remote(importlib.import_module, "mlp")
    results = student.remote(map, module.init_mlp_params, *([a] for a in args))
    params = student.remote(itertools.chain.from_iterable, results)
    return student.remote(list, student.remote(map, operator.attrgetter("is_leaf"), params))


def expect_params(params, num_inputs: int, num_hiddens: int, num_outputs: int):
    what = f"init_mlp_params({num_inputs}, {num_hiddens}, {num_outputs})"
    if not isinstance(params, list | tuple) or len(params) != 4:
        raise AssertionError(f"{what} should return a list [W1, b1, W2, b2], but it returned "
                             f"{len(params) if isinstance(params, list | tuple) else params!r}"
                             f"{' items' if isinstance(params, list | tuple) else ''}.")
    shapes = [(num_inputs, num_hiddens), (num_hiddens,), (num_hiddens, num_outputs),
              (num_outputs,)]
    for name, p, shape in zip(("W1", "b1", "W2", "b2"), params, shapes, strict=True):
        p = expect_tensor(p, f"{name} of {what}")
        if tuple(p.shape) != shape:
            hint = (" (W1 is (num_inputs, num_hiddens) so that X @ W1 works, not the "
                    "(out, in) layout of nn.Linear)" if tuple(p.shape) == shape[::-1] else "")
            raise AssertionError(f"{name} of {what} has shape {tuple(p.shape)} but should have "
                                 f"shape {shape}{hint}.")
        expect_tensor(p, f"{name} of {what}", dtype=torch.float32)
    return params


def check_requires_grad(params) -> None:
    for name, p in zip(("W1", "b1", "W2", "b2"), params, strict=True):
        if not p.requires_grad:
            raise AssertionError(f"{name} does not require gradients: create it with "
                                 "requires_grad=True (or as nn.Parameter), or training cannot "
                                 "update it (§4.2.1).")


def check_leaves(flags: list[bool]) -> None:
    """`flags` from leaf_flags(): each parameter is a leaf."""
    for name, leaf in zip(("W1", "b1", "W2", "b2"), flags, strict=True):
        if not leaf:
            raise AssertionError(
                f"{name} is not a leaf tensor: it was computed from another tensor that "
                "requires gradients (e.g. torch.randn(..., requires_grad=True) * scale), so "
                "backward() leaves its .grad empty. Scale first, then call .requires_grad_() "
                "or wrap it in nn.Parameter (§4.2.1).")


def check_biases_zero(params) -> None:
    for name, b in (("b1", params[1]), ("b2", params[3])):
        if bool((b != 0).any()):
            raise AssertionError(f"{name} should start at 0 (torch.zeros), but it holds values "
                                 f"up to {max_abs(b):.3g}.")


def weight_scale_message(name: str, W: torch.Tensor, fan_in: int, fan_out: int) -> str | None:
    """None if W looks like N(0, 2 / fan_in) draws; else what it looks like instead."""
    W = W.detach()
    target = math.sqrt(2.0 / fan_in)
    std = float(W.double().std())
    mean = float(W.double().mean())
    n = W.numel()
    close = lambda s, rel: abs(std - s) <= rel * s  # noqa: E731
    rel = max(0.04, 6.0 / math.sqrt(2 * n))  # six standard errors of a sample std, at least 4 %
    if close(target, rel):
        if abs(mean) > 6 * target / math.sqrt(n):
            return (f"{name}'s entries have mean {mean:.3g}, far from 0: draw them from "
                    "torch.randn (mean 0).")
        beyond = float((W.double().abs() > 2 * std).double().mean())
        if beyond < 0.02:
            return (f"{name}'s entries look uniformly distributed ({beyond:.1%} beyond two "
                    "standard deviations; a normal distribution has 4.6%): draw them with "
                    "torch.randn.")
        return None
    known = [
        (1.0, "torch.randn without scaling: multiply by sqrt(2 / fan_in)"),
        (0.01, "0.01 * torch.randn (the scale of §4.2.1's first version); this exercise asks "
               "for Kaiming initialisation, sqrt(2 / fan_in)"),
        (2.0 / fan_in, "scaled by 2 / fan_in, the variance: multiply by its square root, "
                       "sqrt(2 / fan_in)"),
        (math.sqrt(1.0 / fan_in), "scaled by sqrt(1 / fan_in): Kaiming initialisation for ReLU "
                                  "layers uses sqrt(2 / fan_in)"),
        (math.sqrt(2.0 / fan_out), "scaled by sqrt(2 / fan_out): fan_in is the number of the "
                                   "layer's inputs, W.shape[0]"),
        (math.sqrt(2.0 / (fan_in + fan_out)), "Xavier's scale sqrt(2 / (fan_in + fan_out)); "
                                              "this exercise asks for sqrt(2 / fan_in)"),
    ]
    for scale, why in known:
        if close(scale, rel) and not close(target, 2 * rel):
            return f"{name}'s entries have standard deviation {std:.4g}, as with {why}."
    return (f"{name}'s entries have standard deviation {std:.4g}, but Kaiming initialisation "
            f"gives sqrt(2 / fan_in) = sqrt(2 / {fan_in}) = {target:.4g}.")


# --------------------------------------------------------------------------- mlp_forward


# A table per public test of the forward pass: its inputs, the right logits relu(X W1 + b1) W2 +
# b2 (worked out in float64, in X's dtype), the scale of their rounding and, under "mistakes",
# what each known wrong forward pass gives (listed even where it gives the right answer for
# these inputs). The instructor's kit checks every number against the hidden oracles.

MLP_FORWARD_EXAMPLE = {
    "X": torch.tensor([[1.0, 2.0], [-1.0, 0.5]]),
    "params": [torch.tensor([[1.0, -1.0], [0.5, 1.0]]), torch.tensor([0.0, -0.5]),
               torch.tensor([[2.0], [-1.0]]), torch.tensor([-3.0])],
    # hidden: [[2, 0.5], [-0.75, 1.0]] -> relu -> [[2, 0.5], [0, 1]]; output: [[0.5], [-4]]
    "expected": torch.tensor([[0.5], [-4.0]]),
    "mistakes": {RELU_ON_OUTPUT: torch.tensor([[0.5], [0.0]]),
                 NO_HIDDEN_RELU: torch.tensor([[0.5], [-5.5]]),
                 RELU_BEFORE_BIAS: torch.tensor([[0.5], [-4.0]]),
                 NO_BIASES: torch.tensor([[3.0], [-1.5]])},
}


def images_example_inputs(example: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """X, three float64 "images" (2, 2, 3) stored transposed (not contiguous), and params for
    12 inputs, 5 hidden units and 3 outputs, drawn from the table's seed."""
    g = torch.Generator().manual_seed(example["seed"])
    X = (torch.randn(3, 3, 2, 2, generator=g, dtype=torch.float64) * 2).permute(0, 2, 3, 1)
    params = [torch.randn(shape, generator=g, dtype=torch.float64) * scale
              for shape, scale in (((12, 5), 0.3), ((5,), 0.5), ((5, 3), 1.0), ((3,), 0.5))]
    return X, params


MLP_FORWARD_IMAGES_EXAMPLE = {
    "seed": 0,
    "expected": torch.tensor([
        [-0.3810408081319927, -2.2573336070378365, 2.811494568551368],
        [-0.9427537165128056, 1.2820000179008981, -0.037018960244440846],
        [-0.1014231448616812, 1.1903801760971726, 1.9182907705653824]], dtype=torch.float64),
    "scale": 34.18033101448224,
    "mistakes": {
        RELU_ON_OUTPUT: torch.tensor([
            [0.0, 0.0, 2.811494568551368], [0.0, 1.2820000179008981, 0.0],
            [0.0, 1.1903801760971726, 1.9182907705653824]], dtype=torch.float64),
        NO_HIDDEN_RELU: torch.tensor([
            [-0.8424953124925587, -7.743795221461991, 2.3664601693769507],
            [-3.9889231426581917, -1.1747311093180222, -5.213719658077098],
            [-0.600914035443611, 1.2693010020365083, 1.5539145280998237]], dtype=torch.float64),
        RELU_BEFORE_BIAS: torch.tensor([
            [-0.3611307843452426, -2.2836720070254604, 2.6524069474784318],
            [-1.4616750263400857, 1.2014150632863343, -0.49973372202629274],
            [-0.07273613872247499, 1.174147694015359, 1.94336121752871]], dtype=torch.float64),
        NO_BIASES: torch.tensor([
            [-0.1309671795307059, -1.8491734833941147, 2.4110527481092854],
            [-1.2315114215255485, 1.6359135869176806, -0.7410879213954398],
            [0.15742746609206182, 1.6086462176467047, 1.7020070181595637]], dtype=torch.float64),
    },
}


def build_example_inputs(example: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """X and [W1 (in, h), b1, W2 (h, out), b2] for a build_mlp(*sizes) net, drawn from the
    table's seed: N(0, magnitude**2) parameters, X of N(0, 9) entries, transposed in its last
    two dimensions (not contiguous) where the table says so."""
    g = torch.Generator().manual_seed(example["seed"])
    n_in, n_h, n_out = example["sizes"]
    params = [torch.randn(shape, generator=g) * example["magnitude"]
              for shape in ((n_in, n_h), (n_h,), (n_h, n_out), (n_out,))]
    X = torch.randn(example["X_shape"], generator=g) * 3
    return (X.transpose(-2, -1) if example["transposed"] else X), params


BUILD_MLP_EXAMPLE = {
    "seed": 4, "sizes": (12, 7, 5), "magnitude": 0.5, "X_shape": (4, 12), "transposed": False,
    "expected": torch.tensor([
        [-1.0929863, -0.7244038, 1.4374222, -1.1222342, 1.0865309],
        [2.0100186, -7.0057764, 3.8888612, 2.3401673, -0.44681472],
        [-0.8598132, -4.099026, 1.0775778, 0.53911966, -0.6783033],
        [0.6703107, -5.188787, 1.8807812, -1.7127812, 2.2708476]]),
    "scale": 50.507276626053624,
    "mistakes": {
        RELU_ON_OUTPUT: torch.tensor([
            [0.0, 0.0, 1.4374222, 0.0, 1.0865309], [2.0100186, 0.0, 3.8888612, 2.3401673, 0.0],
            [0.0, 0.0, 1.0775778, 0.53911966, 0.0], [0.6703107, 0.0, 1.8807812, 0.0, 2.2708476]]),
        NO_HIDDEN_RELU: torch.tensor([
            [-4.099077, 4.581969, -0.7921604, -8.274659, 5.0638285],
            [3.2065976, 3.4930036, 16.927042, -1.6780115, 14.250329],
            [-1.3204278, -1.3745589, -1.1236621, -6.4321904, 1.0524129],
            [1.1652734, 1.6980343, 4.76829, -0.9305635, 7.3032517]]),
        RELU_BEFORE_BIAS: torch.tensor([
            [-0.9511207, -0.7289078, 1.299204, -0.9046238, 0.84736174],
            [2.1938233, -6.850455, 3.493102, 2.45861, -0.52850974],
            [-0.6437346, -4.1231413, 0.66826355, 1.0943078, -1.0882185],
            [0.8535673, -5.0197873, 1.4717326, -1.5811027, 2.1817608]]),
        NO_BIASES: torch.tensor([
            [-0.81656015, -0.7669966, 1.5364918, -1.5410942, 0.7845601],
            [2.328384, -6.8885436, 3.7303898, 1.8221396, -0.5913114],
            [-0.50917405, -4.16123, 0.90555125, 0.45783734, -1.15102],
            [0.9881278, -5.057876, 1.7090204, -2.2175732, 2.1189592]]),
    },
}

BUILD_MLP_IMAGES_EXAMPLE = {
    "seed": 5, "sizes": (784, 256, 10), "magnitude": 0.02, "X_shape": (2, 1, 28, 28),
    "transposed": True,
    "expected": torch.tensor([
        [0.8182428, -0.17307517, -0.9422126, 0.4058113, -0.44453517, -0.3555043, -0.093400255,
         0.8533531, -0.32669023, 0.43527448],
        [0.35344854, 0.35557643, -0.41044527, 0.48177397, 0.032439295, 0.21712092, -0.26141775,
         0.687552, 0.426751, 0.60242814]]),
    "scale": 132.63409654269597,
    "mistakes": {
        RELU_ON_OUTPUT: torch.tensor([
            [0.8182428, 0.0, 0.0, 0.4058113, 0.0, 0.0, 0.0, 0.8533531, 0.0, 0.43527448],
            [0.35344854, 0.35557643, 0.0, 0.48177397, 0.032439295, 0.21712092, 0.0, 0.687552,
             0.426751, 0.60242814]]),
        NO_HIDDEN_RELU: torch.tensor([
            [0.8906633, -0.5066311, -0.6572889, 0.17307258, 0.006014437, -0.37809306,
             0.09966739, 0.3445291, -0.17597239, 0.74915034],
            [-0.05681654, 0.30191973, 0.013581537, 0.619606, 0.11897347, 0.20299906,
             -0.07641546, 0.31635314, 0.9317418, 0.8938162]]),
        RELU_BEFORE_BIAS: torch.tensor([
            [0.8237468, -0.16928062, -0.9370165, 0.40397266, -0.44270343, -0.3579408,
             -0.09554951, 0.8610689, -0.3273696, 0.4343578],
            [0.3551672, 0.35907072, -0.4132514, 0.47944182, 0.033942804, 0.21932217,
             -0.25866583, 0.69470966, 0.42840445, 0.59764415]]),
        NO_BIASES: torch.tensor([
            [0.82053804, -0.18776712, -0.9564884, 0.42654532, -0.45114723, -0.37404865,
             -0.09444096, 0.8667672, -0.35332578, 0.41720036],
            [0.35195845, 0.34058422, -0.43272328, 0.50201446, 0.025499016, 0.20321432,
             -0.25755727, 0.7004079, 0.40244827, 0.5804868]]),
    },
}




# --------------------------------------------------------------------------- build_mlp

# what torch raises when build_mlp's net gets images it does not flatten, or was built for
# 784 inputs whatever its arguments
FLATTEN_FIRST_HINTS = {"cannot be multiplied": "images (n, 1, 28, 28) must be flattened first: "
                       "start the net with nn.Flatten() (§4.3)."}
OWN_SIZES_HINTS = {"cannot be multiplied": "build_mlp(12, 7, 5) must build its layers from its "
                   "arguments (Linear(num_inputs, num_hiddens), ...), not from 784, 256 and 10."}


LAYER_NAMES = ("W1", "b1", "W2", "b2")


def layer_slots(state: dict, num_inputs: int, num_hiddens: int, num_outputs: int
                ) -> dict[str, tuple[str, bool]] | None:
    """Where a one-hidden-layer MLP's state_dict holds W1 (in, h), b1, W2 (h, out) and b2,
    whatever the layout: name -> (key, whether the key holds the transpose, nn.Linear's
    (out, in)); None if the parameters do not have those shapes."""
    found: dict[str, tuple[str, bool]] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        shape = tuple(value.shape)
        if shape in ((num_hiddens, num_inputs), (num_inputs, num_hiddens)) and "W1" not in found:
            found["W1"] = (key, shape != (num_inputs, num_hiddens))
        elif shape in ((num_outputs, num_hiddens), (num_hiddens, num_outputs)) \
                and "W2" not in found:
            found["W2"] = (key, shape != (num_hiddens, num_outputs))
        elif shape == (num_hiddens,) and "b1" not in found:
            found["b1"] = (key, False)
        elif shape == (num_outputs,) and "b2" not in found:
            found["b2"] = (key, False)
    return found if len(found) == 4 else None


def find_layers(state: dict, num_inputs: int, num_hiddens: int, num_outputs: int):
    """[W1 (in, h), b1, W2 (h, out), b2] from a state_dict, whatever the layout; None if the
    parameters do not have the shapes of a one-hidden-layer MLP."""
    slots = layer_slots(state, num_inputs, num_hiddens, num_outputs)
    if slots is None:
        return None
    return [state[key].T if transposed else state[key]
            for key, transposed in (slots[name] for name in LAYER_NAMES)]


def with_layers(state: dict, params: list[torch.Tensor], sizes: tuple[int, int, int]
                ) -> dict | None:
    """`state` (a one-hidden-layer MLP's state_dict) with [W1, b1, W2, b2] = `params` in place
    of its own, each in the layout the net keeps it in; None if the shapes do not fit."""
    slots = layer_slots(state, *sizes)
    if slots is None:
        return None
    new = dict(state)
    for name, p in zip(LAYER_NAMES, params, strict=True):
        key, transposed = slots[name]
        new[key] = p.T.contiguous() if transposed else p
    return new


# --------------------------------------------------------------------------- nets and batches


def with_state(net: torch.nn.Module, state: dict) -> torch.nn.Module:
    net = copy.deepcopy(net)
    net.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return net


def training_example(example: dict) -> tuple[nn.Sequential, list, list]:
    """The net (make_net) and the training and test batches (batches) of a training table
    (TRAIN_STEPS_EXAMPLE, ...): the net drawn from its seed, the batches from the next two."""
    seed, shape, classes = example["seed"], example["shape"], example["classes"]
    return (make_net(seed, example["widths"]),
            batches(example["train_sizes"], seed + 1, shape, classes),
            batches(example["test_sizes"], seed + 2, shape, classes))


def make_net(seed: int, widths: tuple[int, int, int] = (16, 12, 5),
             extra: tuple = ()) -> nn.Sequential:
    """Flatten, Linear(d, h), *extra, ReLU, Linear(h, q) for widths (d, h, q), with parameters
    drawn from `seed`: a net whose every parameter the test knows (built here, then copied to
    the worker with student.remote(nn.Sequential, *net))."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        d, h, q = widths
        return nn.Sequential(nn.Flatten(), nn.Linear(d, h), *extra, nn.ReLU(), nn.Linear(h, q))


def batches(sizes, seed: int, shape=(1, 4, 4), classes: int = 5
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches (X (b, *shape) in [0, 1], y (b,) int64 below `classes`) of the given sizes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(b, *shape, generator=g), torch.randint(0, classes, (b,), generator=g))
            for b in sizes]


def mode_probe_net(student, seed: int, widths: tuple[int, int, int]):
    """Flatten, Linear, BatchNorm, ReLU, Dropout, Linear built in the worker, its last layer's
    input logged (tests.hidden._probes): BatchNorm counts training-mode batches
    (`2.num_batches_tracked`), Dropout and BatchNorm behave differently in the two modes.
    Returns (the grader's copy, the worker's net, the log)."""
    net = make_net(seed, widths, extra=(nn.BatchNorm1d(widths[1]),))
    net.insert(4, nn.Dropout(0.5))
    remote_net = student.remote(nn.Sequential, *net)
    return net, remote_net, forward_log(student, remote_net[5])


# --------------------------------------------------------------------------- counting


def ambiguous(logits: torch.Tensor) -> int:
    """Examples whose two top logits are so close that rounding may decide the prediction."""
    if logits.shape[1] < 2:
        return 0
    top = logits.detach().topk(2, dim=1).values
    return int(((top[:, 0] - top[:, 1]) < 1e-4 * (1 + top[:, 0].abs())).sum())


def batch_counts(y_hat: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    """(correct predictions, examples rounding may decide) of one batch's logits."""
    return float((y_hat.argmax(1) == y).sum()), ambiguous(y_hat)


def count_correct(net: nn.Module, data) -> tuple[float, int]:
    """(correct predictions, examples rounding may decide) of `net` as it is (its mode is left
    alone) on the batches `data`."""
    correct, unsure = 0.0, 0
    with torch.no_grad():
        for X, y in data:
            right, close = batch_counts(net(X), y)
            correct, unsure = correct + right, unsure + close
    return correct, unsure


# --------------------------------------------------------------------------- the SGD steps

NO_ZERO_GRAD_STEPS = (
    "the gradients were never zeroed, so each step used the sum of all earlier gradients: "
    "call optimizer.zero_grad() (or net.zero_grad()) before every loss.backward() "
    "(§3.6.5).")
SUM_LOSS_STEPS = (
    "each step used the summed loss of the batch: take the mean cross-entropy (the default "
    "reduction of nn.CrossEntropyLoss), as the learning rate assumes (§3.6.5).")


def check_trained_state(final: dict, init: dict, expected: dict, lr: float, what: str,
                        mistakes: Callable[[], dict[str, dict]] = dict,
                        atol: float = 2e-5) -> None:
    """Compare the trained net's state_dict `final` with `expected`, the state one SGD step
    per batch takes the net to from `init`; a parameter that matches what a known wrong loop
    gives (`mistakes()`: message -> that loop's state, asked for only when needed) names it.

    The tolerance grows with the parameters' magnitude and with the steps' size:
    atol * (max|parameter| + max(1, 10 lr)), the larger of the two rules the mlp and
    gpu_training tests had before they shared this one."""
    for name, want in expected.items():
        if name not in final:
            raise AssertionError(f"the net lost its parameter {name!r} during training.")
        if not (isinstance(want, torch.Tensor) and want.is_floating_point()):
            continue
        got = final[name].detach().cpu()
        if torch.equal(got, init[name]) and not torch.equal(want, init[name]):
            raise AssertionError(
                f"the parameter {name!r} did not change during training: call "
                "optimizer.zero_grad() before loss.backward() (not between backward and "
                "step), then optimizer.step() on every batch (§3.6.5).")
        tol = atol * (max_abs(want) + max(1.0, 10 * lr))
        if not _close(got, want, tol):
            for message, state in mistakes().items():
                if _close(got, state[name], tol):
                    raise AssertionError(f"the parameters after training: {message}")
        assert_close(got, want, f"parameter {name!r} after {what}'s steps", atol=tol)


def _close(got: torch.Tensor, want: torch.Tensor, tol: float) -> bool:
    return bool(torch.isclose(got.double(), want.double(), rtol=0, atol=tol).all())


# A table per public training test: the net and batches (training_example: make_net(seed,
# widths), batches of images `shape` and `classes` labels), the epochs and the learning rate, and
# what a correct loop gives: the trained state (float32) with, under "mistakes", the states the
# wrong loops give, or the history's facts (per epoch: the mean loss per example during the
# epoch and after it, the plain mean of the batches' losses, the training accuracy during and
# after it, the test accuracy, and the fractions of examples rounding may decide). The
# instructor's kit repeats the steps with its hidden oracle and checks every number.

TRAIN_STEPS_EXAMPLE = {
    "seed": 3, "widths": (6, 4, 3), "shape": (1, 2, 3), "classes": 3,
    "train_sizes": (8, 8, 5), "test_sizes": (6, 4), "num_epochs": 2, "lr": 0.3,
    "state": {
        "1.weight": torch.tensor([
            [-0.40476716, -0.3220513, -0.1748589, -0.38623977, -0.023176778, -0.35916355],
            [0.22207338, 0.21097882, 0.09020638, 0.32267487, -0.03282537, 0.24811456],
            [-0.28590372, -0.08045038, -0.36401302, -0.03314548, -0.26486722, 0.3667563],
            [0.24546078, 0.31145507, 0.13181816, -0.23405062, 0.40105644, -0.40870082]]),
        "1.bias": torch.tensor([-0.2605627, -0.24369738, -0.16922325, 0.1119047]),
        "3.weight": torch.tensor([
            [-0.37874472, -0.39230838, -0.23912036, 0.3462482],
            [-0.3606379, -0.38288155, -0.4333542, -0.22275664],
            [-0.13137406, -0.5541379, -0.23409379, -0.05474346]]),
        "3.bias": torch.tensor([0.21494608, -0.042655393, -0.2182407]),
    },
    "mistakes": {
        NO_ZERO_GRAD_STEPS: {
            "1.weight": torch.tensor([
                [-0.40476716, -0.3220513, -0.1748589, -0.38623977, -0.023176778, -0.35916355],
                [0.21612856, 0.22546443, 0.1112262, 0.3334338, -0.032840032, 0.2513014],
                [-0.28590372, -0.08045038, -0.36401302, -0.03314548, -0.26486722, 0.3667563],
                [0.14388716, 0.30598664, 0.12742402, -0.274923, 0.46186763, -0.42823657]]),
            "1.bias": torch.tensor([-0.2605627, -0.24483085, -0.16922325, 0.15548867]),
            "3.weight": torch.tensor([
                [-0.37874472, -0.45049393, -0.23912036, 0.3771259],
                [-0.3606379, -0.1689616, -0.4333542, -0.1633785],
                [-0.13137406, -0.7098724, -0.23409379, -0.14499922]]),
            "3.bias": torch.tensor([0.42715138, 0.092757896, -0.5658594]),
        },
        SUM_LOSS_STEPS: {
            "1.weight": torch.tensor([
                [-0.40476716, -0.3220513, -0.1748589, -0.38623977, -0.023176778, -0.35916355],
                [0.07864449, 0.015533751, -0.04222191, 0.1997224, -0.25267118, 0.18283805],
                [-0.28590372, -0.08045038, -0.36401302, -0.03314548, -0.26486722, 0.3667563],
                [0.048470225, 0.12506798, -0.05752501, -0.4781244, 0.22848609, -0.49297768]]),
            "1.bias": torch.tensor([-0.2605627, -0.55440444, -0.16922325, -0.1783197]),
            "3.weight": torch.tensor([
                [-0.37874472, -0.41459495, -0.23912036, 0.09937806],
                [-0.3606379, -0.21842916, -0.4333542, -0.011433247],
                [-0.13137406, -0.69630384, -0.23409379, -0.019196684]]),
            "3.bias": torch.tensor([0.71255344, -0.2330815, -0.525422]),
        },
    },
}

TRAIN_HISTORY_EXAMPLE = {
    "seed": 7, "widths": (16, 12, 5), "shape": (1, 4, 4), "classes": 5,
    "train_sizes": (8, 8, 5), "test_sizes": (6, 3), "num_epochs": 2, "lr": 0.3,
    "facts": {
        "loss": [1.6011498371760051, 1.5820223490397136],
        "loss_unweighted": [1.6025417645772297, 1.5851736863454182],
        "acc": [0.19047619047619047, 0.23809523809523808],
        "acc_ambiguous": [0.0, 0.0],
        "acc_after": [0.19047619047619047, 0.19047619047619047],
        "loss_after": [1.5755041213262648, 1.560274214971633],
        "test_acc": [0.2222222222222222, 0.2222222222222222],
        "test_ambiguous": [0.0, 0.0],
        "train_ambiguous": [0.0, 0.0],
    },
}


# --------------------------------------------------------------------------- the history

HISTORY_FLOAT = ("append float(...) of each epoch's metric to the history, not a tensor (a "
                 "kept loss tensor holds its whole autograd graph)")


def expect_history(history, num_epochs: int, what: str) -> dict[str, list[float]]:
    """The history `what` returned, checked to be {train_loss, train_acc, test_acc: one
    Python float per epoch}, the accuracies in [0, 1]. Each value is a Python float exactly:
    neither a tensor nor an int (expect_exact_float)."""
    if not isinstance(history, dict):
        raise AssertionError(f"{what} should return a dict with keys 'train_loss', 'train_acc' "
                             f"and 'test_acc', but it returned a {type(history).__name__}.")
    missing = {"train_loss", "train_acc", "test_acc"} - set(history)
    if missing:
        raise AssertionError(f"{what}'s history has no {sorted(missing)} (keys: "
                             f"{sorted(map(str, history))}).")
    out = {}
    for key in ("train_loss", "train_acc", "test_acc"):
        values = history[key]
        if not isinstance(values, list | tuple) or len(values) != num_epochs:
            n = len(values) if isinstance(values, list | tuple) else type(values).__name__
            raise AssertionError(f"history['{key}'] should be a list of {num_epochs} floats, "
                                 f"one per epoch, but it is {n}.")
        out[key] = [expect_exact_float(v, f"history['{key}'][{i}]", HISTORY_FLOAT)
                    for i, v in enumerate(values)]
        if key != "train_loss":
            for i, v in enumerate(out[key]):
                if not 0.0 <= v <= 1.0:
                    raise AssertionError(
                        f"history['{key}'][{i}] is {v:.6g}: accuracies are fractions in "
                        "[0, 1]. Divide the number of correct predictions by the number of "
                        "examples.")
    return out


def check_train_loss(got: dict, facts: dict, e: int, train_data) -> None:
    """history['train_loss'][e]: the mean cross-entropy per training example during epoch e
    (or after it), naming the plain average of the batches' losses and the epoch's total."""
    loss = got["train_loss"][e]
    if any(math.isclose(loss, facts[k][e], rel_tol=1e-4, abs_tol=1e-6)
           for k in ("loss", "loss_after")):
        return
    n = sum(len(y) for _, y in train_data)
    if math.isclose(loss, facts["loss_unweighted"][e], rel_tol=1e-4) and \
            not math.isclose(facts["loss"][e], facts["loss_unweighted"][e], rel_tol=1e-4):
        raise AssertionError(
            f"history['train_loss'][{e}] is the plain average of the batches' mean losses; "
            "batches differ in size, so weight each by its size (add loss * len(y), divide by "
            "the number of examples).")
    if math.isclose(loss, facts["loss"][e] * n, rel_tol=1e-4):
        raise AssertionError(f"history['train_loss'][{e}] is the total loss of the epoch: "
                             "divide by the number of training examples.")
    raise AssertionError(f"history['train_loss'][{e}] is {loss:.6g}, but the mean "
                         f"cross-entropy per training example in epoch {e} was "
                         f"{facts['loss'][e]:.6g} (weight each batch's mean loss by its size).")


def check_train_acc(got: dict, facts: dict, e: int) -> None:
    """history['train_acc'][e]: the fraction of training examples classified correctly during
    epoch e (or after it), up to the examples rounding may decide."""
    acc = got["train_acc"][e]
    if abs(acc - facts["acc"][e]) <= 1e-6 + facts["acc_ambiguous"][e] or \
            abs(acc - facts["acc_after"][e]) <= 1e-6 + facts["train_ambiguous"][e]:
        return
    raise AssertionError(f"history['train_acc'][{e}] is {acc:.6g}, but the fraction of "
                         f"training examples classified correctly in epoch {e} was "
                         f"{facts['acc'][e]:.6g} (argmax of the logits == y).")


def check_test_acc(got: dict, facts: dict, e: int) -> None:
    """history['test_acc'][e]: the fraction of the test examples classified correctly after
    epoch e, over all test batches."""
    acc, want = got["test_acc"][e], facts["test_acc"][e]
    if abs(acc - want) > 1e-6 + facts["test_ambiguous"][e]:
        raise AssertionError(f"history['test_acc'][{e}] is {acc:.6g}, but after epoch {e} the "
                             f"net classifies {want:.6g} of the test examples correctly: count "
                             "correct predictions over all test batches and divide by the "
                             "number of test examples.")


def check_reported_accuracy(history: dict, net: nn.Module, state: dict, test_data,
                            what: str) -> float:
    """history['test_acc'][-1] against the accuracy of the trained net, measured here: `net` is
    the grader's copy of its architecture, `state` the trained net's state_dict, `test_data`
    the test batches. A history made up (or measured on another net) does not match it
    (check_measured_accuracy). Returns the measured accuracy."""
    trained = with_state(net, state).eval()
    counts = [count_correct(trained, [batch]) for batch in test_data]
    sizes = [len(y) for _, y in test_data]
    n = sum(sizes)
    per_batch = sum(right / size for (right, _), size in zip(counts, sizes, strict=True))
    measured = sum(right for right, _ in counts) / n
    check_measured_accuracy(history["test_acc"][-1], measured,
                            sum(unsure for _, unsure in counts) / n, what,
                            per_batch=per_batch / len(sizes))
    return measured


# --------------------------------------------------------------------------- modes


def forward_log(student, module):
    """Log every call of the worker-side `module`: a forward pre-hook prints its input into a
    StringIO in the worker. Returns that StringIO (read it with .getvalue())."""
    log = student.remote(io.StringIO)
    module.register_forward_pre_hook(functools.partial(print, "<call>", file=log))
    return log


def logged_calls(log) -> tuple[int, int]:
    """(calls whose input was built with autograd on, calls without)."""
    records = log.getvalue().split("<call>")[1:]
    with_grad = sum("grad_fn=" in r for r in records)
    return with_grad, len(records) - with_grad


def check_evaluation_modes(history: dict, state: dict, net: nn.Module, log, num_epochs: int,
                           train_sizes, test_data, section: str) -> None:
    """After training mode_probe_net()'s net (handed over in training mode) for `num_epochs`
    on batches of `train_sizes`: every step, and only the steps, ran in training mode, no
    forward pass outside them built a graph, the test set was evaluated after every epoch,
    and history['test_acc'][-1] is the trained net's accuracy in evaluation mode. `state` is
    the trained net's state_dict, `net` the grader's copy of the net, `log` its last layer's
    logged inputs."""
    steps = num_epochs * len(train_sizes)
    tracked = int(state["2.num_batches_tracked"])
    if tracked > steps:
        raise AssertionError(f"the net ran {tracked} batches in training mode, but training has "
                             f"only {steps}: the test set was evaluated in training mode. Call "
                             "net.eval() before evaluating (dropout off, BatchNorm's running "
                             f"statistics) ({section}).")
    if tracked < steps:
        raise AssertionError(f"only {tracked} of the {steps} training steps ran in training "
                             "mode: call net.train() at the start of every epoch (evaluation "
                             "switched the net to eval mode).")
    with_grad, without = logged_calls(log)
    if with_grad > steps:
        raise AssertionError(
            f"{with_grad - steps} forward passes outside training built an autograd graph: "
            "evaluate inside `with torch.no_grad():` (§5.6).")
    net = with_state(net, state)
    net.eval()
    right, unsure = count_correct(net, test_data)
    n_test = sum(len(y) for _, y in test_data)
    if abs(history["test_acc"][-1] - right / n_test) > 1e-6 + unsure / n_test:
        raise AssertionError(f"history['test_acc'][-1] is {history['test_acc'][-1]:.6g}, but "
                             f"the trained net classifies {right / n_test:.6g} of the test set "
                             "correctly in evaluation mode: evaluate after the epoch's "
                             "training, with net.eval().")
    if without < num_epochs * len(test_data):
        raise AssertionError("the test set was not evaluated after every epoch.")


def training_mode_message(tracked: int, steps: int, per_epoch: int, loop: str,
                          section: str) -> str | None:
    """What the BatchNorm's count of training-mode batches says, for a net handed over in
    evaluation mode and trained by a loop like D2L's `loop` (of `section`); None when every
    step, and only the steps, ran in training mode."""
    if tracked > steps:
        return (f"the net ran {tracked} batches in training mode, but training has only "
                f"{steps}: the test set was evaluated in training mode. Call net.eval() before "
                f"evaluating ({section}).")
    if tracked == steps - per_epoch:
        return ("the net arrived in evaluation mode (net.eval()) and the first epoch trained "
                "in it: call net.train() at the start of every epoch, before its first batch, "
                f"as D2L's {loop} does, not only after evaluating ({section}).")
    if tracked < steps:
        return (f"only {tracked} of the {steps} training steps ran in training mode (the net "
                "arrived in evaluation mode): call net.train() at the start of every epoch "
                f"({section}).")
    return None

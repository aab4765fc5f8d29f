"""The public tables of conv, mlp and gpu_training against the hidden oracles.

The public tests cannot use learn_kernel's steps, the book's LeNet, the MLP's forward pass or
the SGD steps of train_mlp and train_gpu (tests/public/ ships to students, and those are the
exercises' answers), so they read literal tables (`*_EXAMPLE` in
tests/public/_mistakes_conv.py, _mistakes_mlp.py and _mistakes_gpu_training.py): inputs (or
the seeds they are drawn from), the right answers and what each named mistake gives. Every
number of every table is recomputed here from the hidden oracles (tests/hidden/_oracles_conv.py,
tests/hidden/_oracles_mlp.py) for the table's own inputs, and each table names the same
mistakes, in the same order, as the hidden recogniser, so the two cannot drift apart.

A table's number may differ from this machine's by rounding (other threads, other BLAS), never
by more than a small fraction of the tolerance the public test gives a correct answer: the
checks below allow a sixteenth of it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from grader.checks import max_abs, tolerance
from tests.hidden import _oracles_conv as OC
from tests.hidden import _oracles_mlp as OM
from tests.kit.tables import assert_literal, assert_mistakes
from tests.public import _mistakes_conv as C
from tests.public import _mistakes_gpu_training as G
from tests.public import _mistakes_mlp as M

SHARE = 1 / 16  # of a public test's tolerance, what a table may differ from the oracle by


# --------------------------------------------------------------------------- conv


@pytest.mark.parametrize("name", ["LEARN_KERNEL_EXAMPLE", "LEARN_KERNEL_FLOAT64_EXAMPLE"])
def test_learn_kernel_tables(name):
    example = getattr(C, name)
    X, Y = C.edge_problem(example["dtype"])
    expected, scale, mistakes = OC.learn_kernel_expectations(
        X, Y, example["kernel"], example["num_epochs"], example["lr"])
    assert math.isclose(example["scale"], scale, rel_tol=1e-9), (name, scale)
    atol = SHARE * tolerance(example["dtype"], scale)
    assert_literal(example["expected"], expected, name, atol)
    assert_mistakes(example["mistakes"], mistakes, name, atol)


def test_lenet_table():
    example = C.LENET_EXAMPLE
    params, X = C.lenet_example_inputs(example)
    assert [tuple(p.shape) for p in params] == C.LENET_SHAPES
    expected, mistakes = OC.lenet_outputs([(str(i), p) for i, p in enumerate(params)], X)
    # test_lenet_layers' tolerance
    atol = SHARE * tolerance(torch.float32, 100 * max(1.0, max_abs(expected)))
    assert_literal(example["expected"], expected, "LENET_EXAMPLE", atol)
    assert_mistakes(example["mistakes"], mistakes, "LENET_EXAMPLE", atol)


# --------------------------------------------------------------------------- mlp's forward pass


def forward_inputs(name: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    example = getattr(M, name)
    if name == "MLP_FORWARD_EXAMPLE":
        return example["X"], example["params"]
    if name == "MLP_FORWARD_IMAGES_EXAMPLE":
        return M.images_example_inputs(example)
    return M.build_example_inputs(example)  # BUILD_MLP_*


@pytest.mark.parametrize("name", ["MLP_FORWARD_EXAMPLE", "MLP_FORWARD_IMAGES_EXAMPLE",
                                  "BUILD_MLP_EXAMPLE", "BUILD_MLP_IMAGES_EXAMPLE"])
def test_mlp_forward_tables(name):
    example = getattr(M, name)
    X, params = forward_inputs(name)
    if name == "BUILD_MLP_IMAGES_EXAMPLE":
        assert not X.is_contiguous()
    scale = OM.mlp_scale(X, params)
    if "scale" in example:  # the small example's test uses assert_close's default scale
        assert math.isclose(example["scale"], scale, rel_tol=1e-9), (name, scale)
    atol = SHARE * tolerance(X.dtype, scale)
    assert_literal(example["expected"], OM.oracle_mlp(X, params), name, atol)
    assert_mistakes(example["mistakes"], OM.forward_mistakes(X, params), name, atol)


def test_with_layers_puts_the_parameters_in_the_nets_layout():
    """What test_build_mlp_small_net_computes_the_mlp loads: the table's parameters, in
    nn.Linear's (out, in) layout, read back by find_layers as they were."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 5))
    _, params = M.build_example_inputs(M.BUILD_MLP_EXAMPLE)
    net.load_state_dict(M.with_layers(net.state_dict(), params, (12, 7, 5)))
    for got, want in zip(M.find_layers(net.state_dict(), 12, 7, 5), params, strict=True):
        assert torch.equal(got, want)


# --------------------------------------------------------------------------- training


def state_atol(state: dict, lr: float) -> float:
    """A share of check_trained_state's tolerance for the largest parameter of `state`."""
    return SHARE * 2e-5 * (max_abs(*(v for v in state.values() if v.is_floating_point()))
                           + max(1.0, 10 * lr))


def assert_state(literal: dict, computed: dict, what: str, atol: float) -> None:
    assert list(literal) == [k for k in literal if k in computed], (what, list(literal))
    for key, value in literal.items():
        assert_literal(value, computed[key], f"{what}, {key}", atol)


def assert_facts(literal: dict, computed: dict, what: str) -> None:
    """The history's facts: every key, each value within rounding (the public checks allow
    1e-4 of a loss, and an accuracy to within the examples rounding may decide)."""
    assert list(literal) == list(computed), what
    for key, values in computed.items():
        assert len(literal[key]) == len(values), (what, key)
        for got, want in zip(literal[key], values, strict=True):
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9), (what, key, got, want)


def test_train_steps_table():
    example = M.TRAIN_STEPS_EXAMPLE
    net, train_data, test_data = M.training_example(example)
    epochs, lr = example["num_epochs"], example["lr"]
    state, _ = OM.reference_training(net, train_data, test_data, epochs, lr)
    floats = [k for k, v in state.items() if v.is_floating_point()]
    assert list(example["state"]) == floats
    atol = state_atol(state, lr)
    assert_state(example["state"], state, "TRAIN_STEPS_EXAMPLE", atol)
    mistakes = OM.mistaken_states(net, train_data, test_data, epochs, lr)
    assert list(example["mistakes"]) == list(mistakes)
    for message, wrong in mistakes.items():
        assert list(example["mistakes"][message]) == floats
        assert_state(example["mistakes"][message], wrong,
                     f"TRAIN_STEPS_EXAMPLE, mistake {message[:40]!r}", atol)


def test_train_history_table():
    example = M.TRAIN_HISTORY_EXAMPLE
    net, train_data, test_data = M.training_example(example)
    _, facts = OM.reference_training(net, train_data, test_data, example["num_epochs"],
                                     example["lr"])
    assert_facts(example["facts"], facts, "TRAIN_HISTORY_EXAMPLE")


def xavier_start(net: nn.Sequential, seed: int) -> nn.Sequential:
    """`net` with train_gpu's Xavier-uniform weights, drawn from `seed`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for layer in net:
            if type(layer) is nn.Linear:
                nn.init.xavier_uniform_(layer.weight)
    return net


def test_train_gpu_table_holds_for_every_initialisation():
    """dead_relu_example's hidden units stay off for any Xavier draw (inputs in [0, 1), so a
    hidden unit's weighted sum is below 16 * Xavier's bound), and from two initialisations
    the steps change only the table's parameters, to the table's values; the other
    parameters keep the initialisation, as the public test assumes."""
    example = G.TRAIN_GPU_EXAMPLE
    fan_in, fan_out = example["widths"][:2]
    assert fan_in * math.sqrt(6 / (fan_in + fan_out)) + example["first_bias"] < 0
    epochs, lr = example["num_epochs"], example["lr"]
    for seed in (0, 1234):
        net, train_data, test_data = G.dead_relu_example(example)
        start = xavier_start(net, seed)
        init = start.state_dict()
        state, facts = OM.reference_training(start, train_data, test_data, epochs, lr)
        atol = state_atol(state, lr)
        what = f"TRAIN_GPU_EXAMPLE from seed {seed}"
        computed = {"": state, **OM.mistaken_states(start, train_data, test_data, epochs, lr)}
        tables = {"": example["state"], **example["mistakes"]}
        assert list(tables) == list(computed), what
        for message, table in tables.items():
            assert_state(table, computed[message], f"{what}, {message[:40]!r}", atol)
            assert all(torch.equal(v, init[k]) for k, v in computed[message].items()
                       if k not in table), (what, message[:40])
        assert_facts(example["facts"], facts, what)


def test_every_table_is_checked():
    """A table added to a public module without a check here fails."""
    checked = {C: {"LEARN_KERNEL_EXAMPLE", "LEARN_KERNEL_FLOAT64_EXAMPLE", "LENET_EXAMPLE"},
               M: {"MLP_FORWARD_EXAMPLE", "MLP_FORWARD_IMAGES_EXAMPLE", "BUILD_MLP_EXAMPLE",
                   "BUILD_MLP_IMAGES_EXAMPLE", "TRAIN_STEPS_EXAMPLE", "TRAIN_HISTORY_EXAMPLE"},
               G: {"TRAIN_GPU_EXAMPLE"}}
    for module, names in checked.items():
        assert {n for n in vars(module) if n.endswith("_EXAMPLE")} == names, module.__name__

"""Public checks for the optimization algorithms (§11.3-11.10) and Himmelblau's function: read
them, run them, then make them pass. The hidden tests check the same functions on many more
inputs (float64, several parameters, many steps, tiny gradients).

The update functions get their arguments as your code would in a training loop: `params` is a
`torchdrill.callables.Parameters` list (leaf tensors holding a `.grad`, as after `backward()`),
`states` a `torchdrill.callables.States` list and `hyperparams` a
`torchdrill.callables.Hyperparams` dict. They stay in the process that runs your code, which
changes them in place, and the test reads them afterwards.

Each test's inputs, the numbers it expects and what each mistake it names gives for those
inputs are a table in `_mistakes_optim.py` beside this file (`HIMMELBLAU_POINTS_EXAMPLE`,
`MOMENTUM_EXAMPLE`, ...), worked out from the formulas of the section. When a result matches
one of those mistakes, the message names it (the hidden tests say the same).
"""

import pytest
import torch

from grader.checks import assert_close, expect_python_float, expect_tensor, hints_on_error
from tests.public._mistakes_optim import (
    ADAGRAD_EXAMPLE,
    ADAGRAD_STATE,
    ADAM_EXAMPLE,
    ADAM_STATE,
    DESCEND_ATTACHED,
    DESCEND_EXAMPLE,
    DESCEND_FUNCTION_EXAMPLE,
    FIND_MINIMUM_EXAMPLE,
    HIMMELBLAU_GRID_EXAMPLE,
    HIMMELBLAU_INDEX_HINTS,
    HIMMELBLAU_POINTS_EXAMPLE,
    MOMENTUM_EXAMPLE,
    MOMENTUM_STATE,
    RMSPROP_EXAMPLE,
    RMSPROP_STATE,
    UPDATE_HINTS,
    adam_t_message,
    check_step,
    check_zero_states,
    descend_hyperparams_message,
    run_steps,
)
from torchdrill import callables

F64 = torch.float64


def run_update(student, function: str, values, grads, states, hyperparams) -> list[dict]:
    """run_steps with the hints for errors an update raises (a KeyError for eps, a step
    recorded in the graph)."""
    with hints_on_error(UPDATE_HINTS):
        return run_steps(student, function, values, grads, states, hyperparams)


# --------------------------------------------------------------------------- himmelblau


@pytest.mark.points(1)
def test_himmelblau_at_three_points(student):
    """himmelblau at one point (2,) is a 0-d tensor: 170 at (0, 0), 0 at the minimum (3, 2); a
    batch of points (n, 2) gives (n,), one value per point (the last axis holds the
    coordinates)."""
    example = HIMMELBLAU_POINTS_EXAMPLE
    with hints_on_error(HIMMELBLAU_INDEX_HINTS):
        one = student.himmelblau(example["point"])
    expect_tensor(one, "himmelblau([0, 0])", shape=())
    assert_close(one, example["at_point"], "himmelblau([0, 0])")
    assert_close(student.himmelblau(example["x"]), example["expected"],
                 "himmelblau of the points (0, 0), (3, 2), (1, -1)",
                 mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_himmelblau_transposed_grid(student):
    """A grid of points (h, w, 2) gives (h, w), one value per point; here the grid is a
    transposed tensor (non-contiguous), as `X.transpose(0, 1)` makes: `.view` refuses it, so
    reshape with `.reshape` (or index x[..., 0] and x[..., 1] directly) (the course notes,
    §2.1.3)."""
    example = HIMMELBLAU_GRID_EXAMPLE
    with hints_on_error(HIMMELBLAU_INDEX_HINTS):
        got = student.himmelblau(example["x"])
    assert_close(got, example["expected"], "himmelblau of a (2, 3, 2) grid of points",
                 mistakes=example["mistakes"])


# --------------------------------------------------------------------------- init_*_states

TWO_PARAMETERS = "two float64 parameters of shape (3, 2), as in a training loop"


def two_parameters() -> list[torch.Tensor]:
    return [torch.ones(3, 2, dtype=F64, requires_grad=True),
            torch.full((3, 2), -2.0, dtype=F64, requires_grad=True)]


@pytest.mark.points(1)
def test_init_momentum_states_two_parameters(student):
    """init_momentum_states(params) gives one zero tensor per parameter with its shape and
    dtype (float64 here: torch.zeros_like(p)), each its own tensor (§11.6.5)."""
    params = two_parameters()
    check_zero_states(student.init_momentum_states(params), params, "init_momentum_states",
                      False)


@pytest.mark.points(1)
def test_init_adagrad_states_two_parameters(student):
    """init_adagrad_states(params) gives one zero tensor per parameter with its shape and
    dtype, each its own tensor (§11.7.5)."""
    params = two_parameters()
    check_zero_states(student.init_adagrad_states(params), params, "init_adagrad_states", False)


@pytest.mark.points(1)
def test_init_rmsprop_states_two_parameters(student):
    """init_rmsprop_states(params) gives one zero tensor per parameter with its shape and
    dtype, each its own tensor: [torch.zeros_like(params[0])] * 2 is one tensor twice
    (§11.8.2)."""
    params = two_parameters()
    check_zero_states(student.init_rmsprop_states(params), params, "init_rmsprop_states", False)


@pytest.mark.points(1)
def test_init_adam_states_two_parameters(student):
    """init_adam_states(params) gives one pair (v, s) of zero tensors per parameter, with its
    shape and dtype, v and s two separate tensors (one zeros tensor used for both would make
    every update of v change s) (§11.10.2)."""
    params = two_parameters()
    check_zero_states(student.init_adam_states(params), params, "init_adam_states", True)


# --------------------------------------------------------------------------- the updates


@pytest.mark.points(2)
def test_sgd_momentum_two_steps(student):
    """Two momentum steps with lr = 0.1, momentum = 0.9 from p = [1, -2], gradients [2, 0.5]
    then [1, -1]: the velocity builds up in place (v = [2, 0.5], then [2.8, -0.55]), p goes to
    [0.8, -2.05] then [0.52, -1.995], and p.grad is zeroed (§11.6.5)."""
    example = MOMENTUM_EXAMPLE
    seen = run_update(student, "sgd_momentum", [example["p"]], [[g] for g in example["grads"]],
                      [example["v"]], dict(example["hyperparams"]))
    before = example["v"]
    for k, (record, step) in enumerate(zip(seen, example["steps"], strict=True)):
        p, v = step["expected"]
        check_step(record, [p], [v], [before], f"sgd_momentum (step {k + 1})",
                   lambda i, wrong=step["mistakes"]: wrong, MOMENTUM_STATE)
        before = v


def run_one_update(student, function: str, example: dict, state_message: str) -> dict:
    """One call of `function` on the parameters, gradients, states and hyperparameters of
    `example`, checked against its table; what the test saw."""
    (step,) = run_update(student, function, example["params"], [example["grads"]],
                         example["states"], dict(example["hyperparams"]))
    check_step(step, example["expected_params"], example["expected_states"], example["states"],
               function, example["mistakes"].__getitem__, state_message)
    return step


@pytest.mark.points(2)
def test_adagrad_tiny_gradients(student):
    """AdaGrad with lr = 0.01 from w = [1, 1, 1], b = [1] and s = 0, gradients [1e-4, -1e-3,
    0.5] and [0]: s = g**2 and eps = 1e-6 goes inside the square root, so the first entry of w
    moves by only about 1e-3, and b, whose gradient is 0, does not move (no nan) (§11.7.5)."""
    run_one_update(student, "adagrad", ADAGRAD_EXAMPLE, ADAGRAD_STATE)


@pytest.mark.points(2)
def test_rmsprop_tiny_gradients(student):
    """RMSProp with lr = 0.01, gamma = 0.9 from w = [1, 1, 1], b = [1] and s = 0, gradients
    [1e-4, -1e-3, 0.5] and [0]: s = 0.1 g**2 (gamma weighs the old s) and eps = 1e-6 inside
    the square root; b, whose gradient is 0, does not move (§11.8.2)."""
    run_one_update(student, "rmsprop", RMSPROP_EXAMPLE, RMSPROP_STATE)


@pytest.mark.points(2)
def test_adam_first_step_two_parameters(student):
    """Adam's first step (t = 1, lr = 0.1) on w = [1, -1] and b = [0.5] with gradients
    [0.2, -3] and [1e-3]: with the bias corrections every entry moves by about lr against its
    gradient's sign, both parameters use t = 1, w's v is 0.1 g = [0.02, -0.3] and its s
    0.001 g**2, and afterwards hyperparams['t'] is 2 (§11.10.2)."""
    step = run_one_update(student, "adam", ADAM_EXAMPLE, ADAM_STATE)
    message = adam_t_message(step["hyperparams"]["t"], 1, 2)
    assert message is None, message


# --------------------------------------------------------------------------- descend


def run_descend(student, example: dict):
    """descend(f, x0, counting_update, [zeros], {'lr': lr, 't': 1}, num_steps) with `example`'s
    f, x0, lr and num_steps: the path and the caller's hyperparams afterwards."""
    x0 = example["x0"]
    states = student.remote(callables.optimizer_states, [torch.zeros_like(x0)])
    hyperparams = student.remote(callables.Hyperparams, {"lr": example["lr"], "t": 1})
    path = student.descend(example["f"], x0, callables.counting_update, states, hyperparams,
                           example["num_steps"])
    return path, hyperparams.data


@pytest.mark.points(2)
def test_descend_two_steps(student):
    """descend(shifted_quadratic, x0 = [0, 1], counting_update, [zeros], {'lr': 0.1, 't': 1},
    2) returns the path (3, 2), x0 first, detached, with each step's own gradient (the update
    leaves x.grad alone, so the gradients must not pile up), leaves x0 alone, and the update's
    hyperparams['t'] ends at 3: the update gets the caller's states and hyperparams (§11.3)."""
    example = DESCEND_EXAMPLE
    path, hyperparams = run_descend(student, example)
    message = descend_hyperparams_message(hyperparams["t"], example["num_steps"])
    assert message is None, message
    assert_close(path, example["expected"], "the path of descend", mistakes=example["mistakes"])
    assert not path.requires_grad, DESCEND_ATTACHED


@pytest.mark.points(1)
def test_descend_custom_function(student):
    """descend on f = shifted_quadratic_by_function, sum((x - 3)**2) computed by a custom
    torch.autograd.Function, from a 2-D x0 [[0, 1], [4, -1]] with lr = 0.05 for 3 steps:
    backward() (or torch.autograd.grad) differentiates it, torch.func.grad refuses it
    (§2.5, §11.3)."""
    example = DESCEND_FUNCTION_EXAMPLE
    path, _ = run_descend(student, example)
    assert_close(path, example["expected"], "the path of descend (4, 2, 2)",
                 mistakes=example["mistakes"])


# --------------------------------------------------------------------------- find_minimum


@pytest.mark.points(1)
def test_find_minimum_from_the_origin(student):
    """Adam with lr = 0.05 for 300 steps from (0, 0), the gradient zeroed before every
    backward, reaches Himmelblau's minimum (3, 2) and returns f there as a Python float (the
    course notes)."""
    example = FIND_MINIMUM_EXAMPLE
    x, f_x = student.find_minimum(example["x0"], lr=example["lr"],
                                  num_steps=example["num_steps"])
    expect_tensor(x, "x", shape=(2,), dtype=torch.float32)
    assert_close(x, example["expected"], "the minimum found from (0, 0)", atol=1e-3,
                 mistakes=example["mistakes"])
    assert expect_python_float(f_x, "f_x") < 1e-6, f"f_x = {f_x} at the minimum, not about 0"

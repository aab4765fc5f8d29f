"""Public checks for the optimization algorithms (§11.3-11.10) and Himmelblau's function: read
them, run them, then make them pass. The hidden tests check the same functions on many more
inputs (float64, several parameters, many steps, tiny gradients).

The update functions get their arguments as your code would in a training loop: `params` is a
`torchdrill.callables.Parameters` list (leaf tensors holding a `.grad`, as after `backward()`),
`states` a `torchdrill.callables.States` list and `hyperparams` a
`torchdrill.callables.Hyperparams` dict. They stay in the process that runs your code, which
changes them in place, and the test reads them afterwards. Expected numbers below were worked
out from the formulas of the section.

When a result matches a mistake students often make, the message names it: the mistakes, and
what each one computes, are in `_mistakes_optim.py` beside this file (the hidden tests say the
same).
"""

import pytest
import torch

from grader.checks import (
    assert_close,
    expect_python_float,
    expect_tensor,
    hints_on_error,
    in_dtype,
)
from tests.public._mistakes_optim import (
    ADAGRAD_STATE,
    ADAM_STATE,
    DESCEND_ATTACHED,
    HIMMELBLAU_INDEX_HINTS,
    MOMENTUM_STATE,
    RMSPROP_STATE,
    UPDATE_HINTS,
    adagrad_mistakes,
    adam_mistakes,
    adam_t_message,
    check_step,
    check_zero_states,
    descend_hyperparams_message,
    descend_mistakes,
    find_minimum_mistakes,
    himmelblau_mistakes,
    momentum_mistakes,
    rmsprop_mistakes,
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
    with hints_on_error(HIMMELBLAU_INDEX_HINTS):
        one = student.himmelblau(torch.tensor([0.0, 0.0]))
    expect_tensor(one, "himmelblau([0, 0])", shape=())
    assert_close(one, torch.tensor(170.0), "himmelblau([0, 0])")
    points = torch.tensor([[0.0, 0.0], [3.0, 2.0], [1.0, -1.0]])
    assert_close(student.himmelblau(points), torch.tensor([170.0, 0.0, 146.0]),
                 "himmelblau of the points (0, 0), (3, 2), (1, -1)",
                 mistakes=himmelblau_mistakes(points))


@pytest.mark.points(1)
def test_himmelblau_transposed_grid(student):
    """A grid of points (h, w, 2) gives (h, w), one value per point; here the grid is a
    transposed tensor (non-contiguous), as `X.transpose(0, 1)` makes: `.view` refuses it, so
    reshape with `.reshape` (or index x[..., 0] and x[..., 1] directly) (the course notes,
    §2.1.3)."""
    rows = torch.tensor([[[0.0, 0.0], [3.0, 2.0]], [[1.0, -1.0], [-1.0, 0.0]],
                         [[2.0, 1.0], [0.0, 2.0]]])
    grid = rows.transpose(0, 1)  # (2, 3, 2): grid[i, j] is rows[j, i]
    with hints_on_error(HIMMELBLAU_INDEX_HINTS):
        got = student.himmelblau(grid)
    # f(0, 0) = 170, f(1, -1) = 146, f(2, 1) = 52; f(3, 2) = 0, f(-1, 0) = 164, f(0, 2) = 90
    assert_close(got, torch.tensor([[170.0, 146.0, 52.0], [0.0, 164.0, 90.0]]),
                 "himmelblau of a (2, 3, 2) grid of points", mistakes=himmelblau_mistakes(grid))


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
    p0, v0 = torch.tensor([1.0, -2.0]), torch.zeros(2)
    g1, g2 = torch.tensor([2.0, 0.5]), torch.tensor([1.0, -1.0])
    p1, v1 = torch.tensor([0.8, -2.05]), torch.tensor([2.0, 0.5])
    first, second = run_update(student, "sgd_momentum", [p0], [[g1], [g2]], [v0],
                               {"lr": 0.1, "momentum": 0.9})
    for seen, p, g, v, want_p, want_v, what in (
            (first, p0, g1, v0, p1, v1, "sgd_momentum (step 1)"),
            (second, p1, g2, v1, torch.tensor([0.52, -1.995]), torch.tensor([2.8, -0.55]),
             "sgd_momentum (step 2)")):
        wrong = in_dtype(momentum_mistakes(p.double(), g.double(), v.double(), 0.1, 0.9),
                         torch.float32)
        check_step(seen, [want_p], [want_v], [v], what, lambda i, wrong=wrong: wrong,
                   MOMENTUM_STATE)


# gradients of two parameters for adagrad and rmsprop: tiny entries, where eps = 1e-6 inside
# or outside the square root changes the step, a large one, and a zero one (b), where a step
# without eps would be 0 / 0
W_GRAD, B_GRAD = torch.tensor([1e-4, -1e-3, 0.5]), torch.tensor([0.0])


@pytest.mark.points(2)
def test_adagrad_tiny_gradients(student):
    """AdaGrad with lr = 0.01 from w = [1, 1, 1], b = [1] and s = 0, gradients [1e-4, -1e-3,
    0.5] and [0]: s = g**2 and eps = 1e-6 goes inside the square root, so the first entry of w
    moves by only about 1e-3, and b, whose gradient is 0, does not move (no nan) (§11.7.5)."""
    (step,) = run_update(student, "adagrad", [torch.ones(3), torch.ones(1)],
                         [[W_GRAD, B_GRAD]], [torch.zeros(3), torch.zeros(1)], {"lr": 0.01})
    wrong = [in_dtype(adagrad_mistakes(torch.ones(i, dtype=F64), g.double(),
                                       torch.zeros(i, dtype=F64), 0.01), torch.float32)
             for i, g in ((3, W_GRAD), (1, B_GRAD))]
    check_step(step, [torch.tensor([0.999004963, 1.00707107, 0.99000002]), torch.ones(1)],
               [torch.tensor([1e-8, 1e-6, 0.25]), torch.zeros(1)],
               [torch.zeros(3), torch.zeros(1)], "adagrad", wrong.__getitem__, ADAGRAD_STATE)


@pytest.mark.points(2)
def test_rmsprop_tiny_gradients(student):
    """RMSProp with lr = 0.01, gamma = 0.9 from w = [1, 1, 1], b = [1] and s = 0, gradients
    [1e-4, -1e-3, 0.5] and [0]: s = 0.1 g**2 (gamma weighs the old s) and eps = 1e-6 inside
    the square root; b, whose gradient is 0, does not move (§11.8.2)."""
    (step,) = run_update(student, "rmsprop", [torch.ones(3), torch.ones(1)],
                         [[W_GRAD, B_GRAD]], [torch.zeros(3), torch.zeros(1)],
                         {"lr": 0.01, "gamma": 0.9})
    wrong = [in_dtype(rmsprop_mistakes(torch.ones(i, dtype=F64), g.double(),
                                       torch.zeros(i, dtype=F64), 0.01, 0.9), torch.float32)
             for i, g in ((3, W_GRAD), (1, B_GRAD))]
    check_step(step, [torch.tensor([0.9990005, 1.00953463, 0.968377856]), torch.ones(1)],
               [torch.tensor([1e-9, 1e-7, 0.025]), torch.zeros(1)],
               [torch.zeros(3), torch.zeros(1)], "rmsprop", wrong.__getitem__, RMSPROP_STATE)


@pytest.mark.points(2)
def test_adam_first_step_two_parameters(student):
    """Adam's first step (t = 1, lr = 0.1) on w = [1, -1] and b = [0.5] with gradients
    [0.2, -3] and [1e-3]: with the bias corrections every entry moves by about lr against its
    gradient's sign, both parameters use t = 1, w's v is 0.1 g = [0.02, -0.3] and its s
    0.001 g**2, and afterwards hyperparams['t'] is 2 (§11.10.2)."""
    values, grads = [torch.tensor([1.0, -1.0]), torch.tensor([0.5])], [torch.tensor([0.2, -3.0]),
                                                                      torch.tensor([1e-3])]
    zeros = [(torch.zeros(2), torch.zeros(2)), (torch.zeros(1), torch.zeros(1))]
    (step,) = run_update(student, "adam", values, [grads], zeros, {"lr": 0.1, "t": 1})
    wrong = [in_dtype(adam_mistakes(p.double(), g.double(), (v.double(), s.double()), 0.1, 1, i),
                      torch.float32)
             for i, (p, g, (v, s)) in enumerate(zip(values, grads, zeros, strict=True))]
    check_step(step, [torch.tensor([0.9000005, -0.900000033]), torch.tensor([0.4000999])],
               [(torch.tensor([0.02, -0.3]), torch.tensor([4e-5, 9e-3])),
                (torch.tensor([1e-4]), torch.tensor([1e-9]))],
               zeros, "adam", wrong.__getitem__, ADAM_STATE)
    message = adam_t_message(step["hyperparams"]["t"], 1, 2)
    assert message is None, message


# --------------------------------------------------------------------------- descend


def run_descend(student, f, x0: torch.Tensor, lr: float, num_steps: int):
    """descend(f, x0, counting_update, [zeros], {'lr': lr, 't': 1}, num_steps): the path and
    the caller's hyperparams afterwards."""
    states = student.remote(callables.optimizer_states, [torch.zeros_like(x0)])
    hyperparams = student.remote(callables.Hyperparams, {"lr": lr, "t": 1})
    path = student.descend(f, x0, callables.counting_update, states, hyperparams, num_steps)
    return path, hyperparams.data


@pytest.mark.points(2)
def test_descend_two_steps(student):
    """descend(shifted_quadratic, x0 = [0, 1], counting_update, [zeros], {'lr': 0.1, 't': 1},
    2) returns the path (3, 2), x0 first, detached, with each step's own gradient (the update
    leaves x.grad alone, so the gradients must not pile up), leaves x0 alone, and the update's
    hyperparams['t'] ends at 3: the update gets the caller's states and hyperparams (§11.3)."""
    x0 = torch.tensor([0.0, 1.0])
    path, hyperparams = run_descend(student, callables.shifted_quadratic, x0, 0.1, 2)
    message = descend_hyperparams_message(hyperparams["t"], 2)
    assert message is None, message
    # gradient 2 (x - 3): step 1 g = [-6, -4], s = g, x -= 0.1 * 2g / 1 -> [1.2, 1.8];
    # step 2 g = [-3.6, -2.4], s = [-9.6, -6.4], x -= 0.1 * (g + s) / 2 -> [1.86, 2.24]
    expected = torch.tensor([[0.0, 1.0], [1.2, 1.8], [1.86, 2.24]])
    assert_close(path, expected, "the path of descend",
                 mistakes=descend_mistakes(callables.shifted_quadratic, x0, 0.1, 2))
    assert not path.requires_grad, DESCEND_ATTACHED


@pytest.mark.points(1)
def test_descend_custom_function(student):
    """descend on f = shifted_quadratic_by_function, sum((x - 3)**2) computed by a custom
    torch.autograd.Function, from a 2-D x0 [[0, 1], [4, -1]] with lr = 0.05 for 3 steps:
    backward() (or torch.autograd.grad) differentiates it, torch.func.grad refuses it
    (§2.5, §11.3)."""
    x0 = torch.tensor([[0.0, 1.0], [4.0, -1.0]])
    f = callables.shifted_quadratic_by_function
    path, _ = run_descend(student, f, x0, 0.05, 3)
    expected = torch.tensor([[[0.0, 1.0], [4.0, -1.0]], [[0.6, 1.4], [3.8, -0.2]],
                             [[0.99, 1.66], [3.67, 0.32]],
                             [[1.304, 1.8693333], [3.5653333, 0.7386667]]])
    assert_close(path, expected, "the path of descend (4, 2, 2)",
                 mistakes=descend_mistakes(f, x0, 0.05, 3))


# --------------------------------------------------------------------------- find_minimum


@pytest.mark.points(1)
def test_find_minimum_from_the_origin(student):
    """Adam with lr = 0.05 for 300 steps from (0, 0), the gradient zeroed before every
    backward, reaches Himmelblau's minimum (3, 2) and returns f there as a Python float (the
    course notes)."""
    x0 = torch.tensor([0.0, 0.0])
    x, f_x = student.find_minimum(x0, lr=0.05, num_steps=300)
    expect_tensor(x, "x", shape=(2,), dtype=torch.float32)
    assert_close(x, torch.tensor([3.0, 2.0]), "the minimum found from (0, 0)", atol=1e-3,
                 mistakes=find_minimum_mistakes(x0, 0.05, 300))
    assert expect_python_float(f_x, "f_x") < 1e-6, f"f_x = {f_x} at the minimum, not about 0"

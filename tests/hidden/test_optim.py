"""Hidden tests for the optimization algorithms (§11.3-11.10) and Himmelblau's function.

Oracles are the section's formulas computed here in float64 (tests/hidden/_optimizers.py,
whose flags also give the recognised mistakes' results, named with the messages of
tests/public/_mistakes_optim.py; not torch.optim, whose first optimizer imports torch._dynamo
into the grading process), and for `find_minimum` torch.optim.Adam's own steps, taken here.
The update functions get worker-side `Parameters`, `States` and `Hyperparams`
(torchdrill.callables), which they change in place as in one process; the test reads them back
after every call (`run_steps`). Gradients are drawn with entries of every size, zero and 1e-4
included, where eps inside or outside the square root, or no eps, changes the step.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.checks import (
    assert_close,
    expect_tensor,
    hints_on_error,
)
from grader.plugin import record_curve
from tests.hidden import _optimizers as O
from tests.hidden import _strategies as tds
from tests.hidden._conventions import (
    CUSTOM_FUNCTION_HINTS,
    GPU,
    NON_CONTIGUOUS_HINTS,
    expect_exact_float,
    expect_on_gpu,
)
from tests.hidden._optimizers import (
    adagrad_mistakes,
    adam_mistakes,
    descend_mistakes,
    find_minimum_mistakes,
    himmelblau_in_dtype,
    himmelblau_mistakes,
    momentum_mistakes,
    rmsprop_mistakes,
)
from tests.public._mistakes_optim import (
    ADAGRAD_STATE,
    ADAM_STATE,
    DESCEND_ATTACHED,
    HIMMELBLAU_INDEX_HINTS,
    MOMENTUM_STATE,
    RMSPROP_STATE,
    UPDATE_HINTS,
    adam_t_message,
    check_step,
    check_zero_states,
    descend_hyperparams_message,
    run_steps,
)
from torchdrill import callables as cf

MINIMA = {(0.0, 0.0): (3.0, 2.0), (-1.0, 0.0): (-2.805118, 3.131312),
          (-4.0, 0.0): (-3.779310, -3.283186), (4.0, 0.0): (3.584428, -1.848126)}
HIMMELBLAU_HINTS = {**NON_CONTIGUOUS_HINTS, **HIMMELBLAU_INDEX_HINTS}

# --------------------------------------------------------------------------- himmelblau


def himmelblau64(x: torch.Tensor) -> torch.Tensor:
    return himmelblau_in_dtype(x.double())


def himmelblau_gradient64(x: torch.Tensor) -> torch.Tensor:
    x0, x1 = x.double()[..., 0], x.double()[..., 1]
    a, b = x0 ** 2 + x1 - 11, x0 + x1 ** 2 - 7
    return torch.stack([4 * x0 * a + 2 * b, 2 * a + 4 * x1 * b], dim=-1)


@st.composite
def points(draw):
    batch = draw(st.sampled_from([(), (5,), (1,), (3, 4)]))
    return draw(tds.tensors((*batch, 2), magnitude=draw(st.sampled_from([1.0, 3.0, 6.0])),
                            distribution="uniform"))


@pytest.mark.points(3)
@given(x=points())
@example(x=torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
@example(x=torch.tensor([2.5, -1.5], dtype=torch.float64))
@example(x=tds.with_layout(tds.random_tensor((3, 4, 2), 3, magnitude=3.0), "transposed"))
def test_himmelblau_values(student, x):
    """himmelblau(x) for x of shape (2,), (n, 2) and (h, w, 2), float32 and float64,
    contiguous or not (a transposed grid too): one value per point, shape x.shape[:-1], in x's
    dtype."""
    expected = himmelblau64(x).to(x.dtype)
    rows = himmelblau_mistakes(x)
    with hints_on_error(HIMMELBLAU_HINTS):
        got = student.himmelblau(x)
    assert_close(got, expected, f"himmelblau(x) for x {tuple(x.shape)}",
                 scale=float(expected.abs().max()) if expected.numel() else 1.0, mistakes=rows)


@pytest.mark.points(1)
def test_himmelblau_minima(student):
    """Himmelblau's function is 0 at its four minima (3, 2), (-2.805118, 3.131312),
    (-3.779310, -3.283186) and (3.584428, -1.848126) (float64)."""
    minima = torch.tensor(list(MINIMA.values()), dtype=torch.float64)
    values = expect_tensor(student.himmelblau(minima), "himmelblau at the four minima",
                           shape=(4,), dtype=torch.float64)
    assert float(values.abs().max()) < 1e-9, (
        f"himmelblau at the four minima is {values.tolist()}, not about 0.")


@pytest.mark.points(2)
@given(x=points())
def test_himmelblau_gradient(student, x):
    """Autograd reaches x through himmelblau: the gradient of sum(himmelblau(x)) is
    [4 x0 (x0**2 + x1 - 11) + 2 (x0 + x1**2 - 7), 2 (x0**2 + x1 - 11) + 4 x1 (x0 + x1**2 - 7)]
    at every point."""
    expected = himmelblau_gradient64(x).to(x.dtype)
    grad_output = torch.ones(x.shape[:-1], dtype=x.dtype)
    assert_close(student.gradient("himmelblau", x, grad_output=grad_output), expected,
                 "the gradient of himmelblau", scale=float(expected.abs().max()) + 1)


# --------------------------------------------------------------------------- init_*_states

PARAM_SHAPES = [(3,), (2, 2), (1,), (4, 1), (5,), (2, 3)]


@st.composite
def parameter_lists(draw):
    """1 to 3 parameters (leaves that require grad, as in training), one dtype, any layout."""
    dtype = draw(tds.dtypes())
    shapes = draw(st.permutations(PARAM_SHAPES))[:draw(st.integers(1, 3))]
    return [draw(tds.tensors(s, dtype=dtype)).requires_grad_(True) for s in shapes]


@pytest.mark.points(2)
@given(params=parameter_lists())
@example(params=[torch.ones(3, dtype=torch.float64, requires_grad=True),
                 torch.ones(3, dtype=torch.float64, requires_grad=True)])
def test_init_momentum_states_zeros(student, params):
    """init_momentum_states(params) gives one zero tensor per parameter with its shape and
    dtype, each its own tensor, for 1 to 3 parameters, float32 and float64 (§11.6.5)."""
    check_zero_states(student.init_momentum_states(params), params, "init_momentum_states",
                      False)


@pytest.mark.points(2)
@given(params=parameter_lists())
@example(params=[torch.ones(3, dtype=torch.float64, requires_grad=True),
                 torch.ones(3, dtype=torch.float64, requires_grad=True)])
def test_init_adagrad_states_zeros(student, params):
    """init_adagrad_states(params) gives one zero tensor per parameter with its shape and
    dtype, each its own tensor (§11.7.5)."""
    check_zero_states(student.init_adagrad_states(params), params, "init_adagrad_states", False)


@pytest.mark.points(2)
@given(params=parameter_lists())
@example(params=[torch.ones(3, dtype=torch.float64, requires_grad=True),
                 torch.ones(3, dtype=torch.float64, requires_grad=True)])
def test_init_rmsprop_states_zeros(student, params):
    """init_rmsprop_states(params) gives one zero tensor per parameter with its shape and
    dtype, each its own tensor (§11.8.2)."""
    check_zero_states(student.init_rmsprop_states(params), params, "init_rmsprop_states", False)


@pytest.mark.points(2)
@given(params=parameter_lists())
@example(params=[torch.ones(3, dtype=torch.float64, requires_grad=True),
                 torch.ones(3, dtype=torch.float64, requires_grad=True)])
def test_init_adam_states_pairs(student, params):
    """init_adam_states(params) gives one pair (v, s) of zero tensors per parameter with its
    shape and dtype, v and s separate tensors (§11.10.2)."""
    check_zero_states(student.init_adam_states(params), params, "init_adam_states", True)


# --------------------------------------------------------------------------- update functions

GRADIENT_SIZES = torch.tensor([0.0, 1e-4, 1e-3, 0.1, 1.0, 5.0], dtype=torch.float64)


def gradient(shape, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Entries of every size: 0, 1e-4, 1e-3 (where eps decides the step), 0.1, 1 and 5, with
    random signs; the first entry is 1e-4 in size, the last 0 when there are two or more."""
    g = torch.Generator().manual_seed(seed)
    sizes = GRADIENT_SIZES[torch.randint(0, len(GRADIENT_SIZES), shape, generator=g)]
    grad = (sizes * torch.randn(shape, generator=g, dtype=torch.float64).sign()).reshape(-1)
    grad[0] = 1e-4
    if grad.numel() > 1:
        grad[-1] = 0.0
    return grad.reshape(shape).to(dtype)


@st.composite
def update_problems(draw, steps: int):
    """Parameters, one list of gradients per step, a learning rate and a seed for the
    starting states."""
    dtype = draw(tds.dtypes())
    shapes = draw(st.permutations(PARAM_SHAPES))[:draw(st.integers(1, 3))]
    values = [draw(tds.tensors(s, dtype=dtype, layout="contiguous")) for s in shapes]
    seed = draw(st.integers(0, 2**20))
    grads = [[gradient(s, seed + 10 * k + i, dtype) for i, s in enumerate(shapes)]
             for k in range(steps)]
    return values, grads, draw(st.sampled_from([0.01, 0.1, 0.5])), seed


def start_states(values, seed: int, kind: str, zero: bool):
    """Starting states for the update `kind`: zeros, or what some earlier steps would have left
    (any velocity; nonnegative sums of squares; Adam's v and s of one earlier gradient)."""
    g = torch.Generator().manual_seed(seed + 7)
    out = []
    for v in values:
        prev = torch.randn(v.shape, generator=g, dtype=torch.float64) * (0.0 if zero else 1.0)
        if kind == "momentum":
            out.append(prev.to(v.dtype))
        elif kind == "squares":
            out.append((prev * prev).to(v.dtype))
        else:
            out.append((((1 - O.BETA1) * prev).to(v.dtype),
                        ((1 - O.BETA2) * prev * prev).to(v.dtype)))
    return out


def run_and_check(student, function: str, values, grads, states, hyperparams, oracle,
                  mistakes_for, state_message: str) -> list[dict]:
    """Run `function` for len(grads) steps and check every step against `oracle(p, g, state,
    hyperparams, step)`; `mistakes_for(p, g, state, step)` gives the named wrong results."""
    with hints_on_error(UPDATE_HINTS):
        seen = run_steps(student, function, values, grads, states, hyperparams)
    dtype = values[0].dtype
    params = [v.double() for v in values]
    now = [tuple(x.double() for x in s) if isinstance(s, tuple) else s.double() for s in states]
    for k, (step_grads, record) in enumerate(zip(grads, seen, strict=True)):
        new = [oracle(p, g.double(), s, k) for p, g, s in zip(params, step_grads, now,
                                                               strict=True)]
        wrong = [mistakes_for(p, g.double(), s, k, i) for i, (p, g, s) in
                 enumerate(zip(params, step_grads, now, strict=True))]
        before = now
        params, now = [n[0] for n in new], [n[1] for n in new]
        check_step(record, [p.to(dtype) for p in params], [_cast(s, dtype) for s in now],
                   [_cast(s, dtype) for s in before], f"{function} (step {k + 1})",
                   lambda i, wrong=wrong: {m: w.to(dtype) for m, w in wrong[i].items()},
                   state_message)
    return seen


def _cast(state, dtype: torch.dtype):
    return tuple(x.to(dtype) for x in state) if isinstance(state, tuple) else state.to(dtype)


def run_momentum(student, problem, steps_from_zero: bool, momentum: float):
    values, grads, lr, seed = problem
    states = start_states(values, seed, "momentum", steps_from_zero)
    return run_and_check(
        student, "sgd_momentum", values, grads, states, {"lr": lr, "momentum": momentum},
        lambda p, g, v, k: O.momentum_step(p, g, v, lr, momentum),
        lambda p, g, v, k, i: momentum_mistakes(p, g, v, lr, momentum),
        MOMENTUM_STATE)


@pytest.mark.points(4)
@given(problem=update_problems(steps=1), momentum=st.sampled_from([0.5, 0.9]))
def test_sgd_momentum_one_step(student, problem, momentum):
    """One sgd_momentum call from a nonzero velocity: v = momentum * v + g and p -= lr * v for
    1 to 3 parameters of several shapes, float32 and float64; p.grad zeroed; None returned
    (§11.6.5)."""
    run_momentum(student, problem, False, momentum)


@pytest.mark.points(3)
@given(problem=update_problems(steps=3), momentum=st.sampled_from([0.5, 0.9]))
@tds.max_examples(at_most=3)
def test_sgd_momentum_builds_velocity(student, problem, momentum):
    """Three sgd_momentum calls from zero velocities, a new gradient each time: the velocity
    changes in place and builds up over the steps (§11.6.5)."""
    run_momentum(student, problem, True, momentum)


def run_adagrad(student, problem, from_zero: bool):
    values, grads, lr, seed = problem
    states = start_states(values, seed, "squares", from_zero)
    return run_and_check(student, "adagrad", values, grads, states, {"lr": lr},
                         lambda p, g, s, k: O.adagrad_step(p, g, s, lr),
                         lambda p, g, s, k, i: adagrad_mistakes(p, g, s, lr), ADAGRAD_STATE)


@pytest.mark.points(4)
@given(problem=update_problems(steps=1))
def test_adagrad_one_step(student, problem):
    """One adagrad call from nonzero sums of squares: s += g**2 and p -= lr * g / sqrt(s +
    1e-6), eps inside the square root, for gradients of every size (zero and 1e-4 included),
    1 to 3 parameters, float32 and float64; p.grad zeroed (§11.7.5)."""
    run_adagrad(student, problem, False)


@pytest.mark.points(3)
@given(problem=update_problems(steps=3))
@tds.max_examples(at_most=3)
def test_adagrad_accumulates(student, problem):
    """Three adagrad calls from zero states: s changes in place and sums every step's squared
    gradient (§11.7.5)."""
    run_adagrad(student, problem, True)


def run_rmsprop(student, problem, from_zero: bool, gamma: float):
    values, grads, lr, seed = problem
    states = start_states(values, seed, "squares", from_zero)
    return run_and_check(
        student, "rmsprop", values, grads, states, {"lr": lr, "gamma": gamma},
        lambda p, g, s, k: O.rmsprop_step(p, g, s, lr, gamma),
        lambda p, g, s, k, i: rmsprop_mistakes(p, g, s, lr, gamma), RMSPROP_STATE)


@pytest.mark.points(4)
@given(problem=update_problems(steps=1), gamma=st.sampled_from([0.9, 0.99]))
def test_rmsprop_one_step(student, problem, gamma):
    """One rmsprop call from nonzero averages: s = gamma s + (1 - gamma) g**2 and p -= lr * g /
    sqrt(s + 1e-6), for gradients of every size, 1 to 3 parameters, float32 and float64;
    p.grad zeroed (§11.8.2)."""
    run_rmsprop(student, problem, False, gamma)


@pytest.mark.points(3)
@given(problem=update_problems(steps=3), gamma=st.sampled_from([0.9, 0.99]))
@tds.max_examples(at_most=3)
def test_rmsprop_running_average(student, problem, gamma):
    """Three rmsprop calls from zero states: s changes in place as a running average of the
    squared gradients (§11.8.2)."""
    run_rmsprop(student, problem, True, gamma)


def run_adam(student, problem, t0: int, from_zero: bool) -> list[dict]:
    values, grads, lr, seed = problem
    states = start_states(values, seed, "adam", from_zero)
    seen = run_and_check(
        student, "adam", values, grads, states, {"lr": lr, "t": t0},
        lambda p, g, vs, k: O.adam_step(p, g, *vs, lr, t0 + k),
        lambda p, g, vs, k, i: adam_mistakes(p, g, vs, lr, t0 + k, i), ADAM_STATE)
    for k, record in enumerate(seen):
        message = adam_t_message(record["hyperparams"].get("t"), t0 + k, len(values), k + 1)
        if message:
            raise AssertionError(message)
    return seen


@pytest.mark.points(4)
@given(problem=update_problems(steps=1), t=st.integers(1, 30))
@example(problem=([torch.tensor([1.0, -1.0]), torch.tensor([0.5])],
                  [[torch.tensor([0.2, -3.0]), torch.tensor([1e-3])]], 0.1, 0), t=1)
def test_adam_one_step(student, problem, t):
    """One adam call at step t from nonzero states: the moments, their bias corrections with
    this t for every parameter, eps = 1e-6 outside the square root, for gradients of every
    size, 1 to 3 parameters, float32 and float64; p.grad zeroed; hyperparams['t'] goes up by
    one (§11.10.2)."""
    run_adam(student, problem, t, False)


@pytest.mark.points(3)
@given(problem=update_problems(steps=3))
@tds.max_examples(at_most=3)
def test_adam_three_steps(student, problem):
    """Three adam calls from zero states and t = 1: v and s change in place, and t counts the
    calls, 1, 2, 3, once per call however many parameters (§11.10.2)."""
    run_adam(student, problem, 1, True)


# --------------------------------------------------------------------------- descend

DESCENT_FUNCTIONS = {
    "shifted_quadratic": (cf.shifted_quadratic, [0.01, 0.05, 0.1]),
    # a custom torch.autograd.Function, as a callable may be: backward() supports it
    "shifted_quadratic_by_function": (cf.shifted_quadratic_by_function, [0.01, 0.05, 0.1]),
    "sum_of_squares": (cf.sum_of_squares, [0.01, 0.1]),
    "square_of_sum_plus_quartic": (cf.square_of_sum_plus_quartic, [0.01, 0.03]),
}


@st.composite
def descend_inputs(draw):
    name = draw(st.sampled_from(tuple(DESCENT_FUNCTIONS)))
    size = draw(st.integers(1, 4))
    x0 = draw(tds.tensors(draw(st.sampled_from([(size,), (size, 2)])), distribution="uniform"))
    return name, x0, draw(st.sampled_from(DESCENT_FUNCTIONS[name][1])), draw(st.integers(0, 6))


def run_descend(student, name: str, x0: torch.Tensor, lr: float, num_steps: int):
    states = student.remote(cf.optimizer_states, [torch.zeros_like(x0)])
    hyperparams = student.remote(cf.Hyperparams, {"lr": lr, "t": 1})
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        path = student.descend(DESCENT_FUNCTIONS[name][0], x0, cf.counting_update, states,
                               hyperparams, num_steps)
    return path, states.entries, hyperparams.data


@pytest.mark.points(4)
@given(inputs=descend_inputs())
@example(inputs=("sum_of_squares", tds.random_tensor((3, 2), 5, distribution="uniform"), 0.1, 3))
@example(inputs=("shifted_quadratic_by_function", tds.random_tensor((4,), 6, torch.float64),
                 0.05, 2))
def test_descend_path(student, inputs):
    """descend(f, x0, counting_update, states, hyperparams, num_steps) returns the iterates
    (num_steps + 1, *x0.shape), x0 first, each step with its own gradient (the update leaves
    x.grad alone), detached, in x0's dtype, for 1-D and 2-D x0 and 0 to 6 steps; f may be a
    custom torch.autograd.Function, which backward() differentiates (§11.3)."""
    name, x0, lr, num_steps = inputs
    f = DESCENT_FUNCTIONS[name][0]
    expected, _, size = O.counting_path(f, x0, lr, num_steps)
    mistakes = descend_mistakes(f, x0, lr, num_steps)
    path, _, _ = run_descend(student, name, x0, lr, num_steps)
    expect_tensor(path, "the path", dtype=x0.dtype)
    assert_close(path, expected.to(x0.dtype), f"descend({name}, x0 {tuple(x0.shape)}, "
                 f"lr={lr}, num_steps={num_steps})", scale=4 * size + 1, mistakes=mistakes)
    if path.requires_grad:
        raise AssertionError(DESCEND_ATTACHED)


@pytest.mark.points(2)
@given(inputs=descend_inputs())
@tds.max_examples(at_most=3)
def test_descend_changes_states_and_hyperparams(student, inputs):
    """descend passes the caller's states and hyperparams themselves to every update, which
    changes them in place: after num_steps steps of counting_update, hyperparams['t'] is
    num_steps + 1 and the state holds the sum of the gradients (§11.3)."""
    name, x0, lr, num_steps = inputs
    num_steps = max(num_steps, 1)
    _, total, size = O.counting_path(DESCENT_FUNCTIONS[name][0], x0, lr, num_steps)
    _, states, hyperparams = run_descend(student, name, x0, lr, num_steps)
    message = descend_hyperparams_message(hyperparams.get("t"), num_steps)
    if message:
        raise AssertionError(message)
    assert_close(states[0], total.to(x0.dtype), "the caller's state after descend",
                 scale=4 * size + 1)


@pytest.mark.points(1)
@given(inputs=descend_inputs())
@tds.max_examples(at_most=3)
def test_descend_leaves_x0_alone(student, inputs):
    """x0 keeps its values, gets no .grad and keeps requires_grad False: descend on a copy,
    x0.detach().clone().requires_grad_(True) (§11.3)."""
    name, x0, lr, num_steps = inputs
    run_descend(student, name, x0, lr, max(num_steps, 1))  # the handle fails a change to x0


@pytest.mark.points(1)
def test_descend_plain_gradient_descent(student):
    """With gradient_descent_update, descend on the Rosenbrock function from [-0.5, 0.5]
    (float64, lr = 1e-3, 50 steps) follows plain gradient descent (§11.3)."""
    x0 = torch.tensor([-0.5, 0.5], dtype=torch.float64)
    states = student.remote(cf.optimizer_states, [torch.zeros_like(x0)])
    hyperparams = student.remote(cf.Hyperparams, {"lr": 1e-3})
    path = student.descend(cf.rosenbrock, x0, cf.gradient_descent_update, states, hyperparams,
                           50)
    x, expected = x0.clone().requires_grad_(True), [x0.clone()]
    for _ in range(50):
        (g,) = torch.autograd.grad(cf.rosenbrock(x), x)
        x = (x - 1e-3 * g).detach().requires_grad_(True)
        expected.append(x.detach())
    record_descent_curve("descend on the Rosenbrock function from [-0.5, 0.5], lr 1e-3", path,
                         torch.stack(expected), cf.rosenbrock)
    assert_close(path, torch.stack(expected), "descend(rosenbrock, [-0.5, 0.5], "
                 "gradient_descent_update, lr=1e-3, 50 steps)", atol=1e-9)


def record_descent_curve(title: str, path, expected: torch.Tensor, f) -> None:
    """f along the student's path beside the reference's, for report.html's plot (no curve of
    the student's where the path is not a tensor of the reference's shape)."""
    yours = ([float(f(x)) for x in path.detach().double()]
             if isinstance(path, torch.Tensor) and path.shape == expected.shape else [])
    record_curve(title, "step", list(range(len(expected))),
                 [("f(x)", yours, [float(f(x)) for x in expected])])


# --------------------------------------------------------------------------- find_minimum


def check_result(result, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise AssertionError("find_minimum should return a pair (x, f_x).")
    x, f_x = result
    expect_tensor(x, "x", shape=(2,), dtype=dtype)
    if x.requires_grad:
        raise AssertionError("x is attached to autograd: return x.detach().")
    return x, expect_exact_float(f_x, "f_x", "return float(himmelblau(x))")


@pytest.mark.points(3)
def test_find_minimum_reaches_the_four_minima(student):
    """Adam with lr = 0.05 for 300 steps from (0, 0), (-1, 0), (-4, 0) and (4, 0) reaches the
    minima (3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186) and (3.584428, -1.848126),
    with f_x = himmelblau(x) there, about 0 (the course notes)."""
    for start, minimum in MINIMA.items():
        x, f_x = check_result(student.find_minimum(torch.tensor(start), lr=0.05, num_steps=300),
                              torch.float32)
        assert_close(x, torch.tensor(minimum), f"the minimum found from {start}", atol=1e-3)
        if not (abs(f_x - float(himmelblau64(x))) <= 1e-5 and f_x < 1e-6):
            raise AssertionError(f"f_x is {f_x} at x = {x.tolist()}, where himmelblau is "
                                 f"{float(himmelblau64(x)):.3g}: return himmelblau at the "
                                 "returned x, after the last step.")


@st.composite
def minimum_inputs(draw):
    x0 = draw(tds.tensors((2,), magnitude=5.0, distribution="uniform"))
    return x0, draw(st.sampled_from([0.01, 0.1, 0.3])), draw(st.integers(1, 30))


@pytest.mark.points(3)
@given(inputs=minimum_inputs())
def test_find_minimum_takes_adam_steps(student, inputs):
    """find_minimum(x0, lr, num_steps) takes torch.optim.Adam's steps with that lr on
    himmelblau, zeroing the gradient before every backward: after 1 to 30 steps from a random
    start (x0 float32 or float64, contiguous or not), x is where torch.optim.Adam([x], lr=lr)
    gets it, in x0's dtype, and f_x = himmelblau(x), a Python float."""
    x0, lr, num_steps = inputs
    expected = O.adam_path(himmelblau_in_dtype, x0, lr, num_steps)
    mistakes = find_minimum_mistakes(x0, lr, num_steps)
    x, f_x = check_result(student.find_minimum(x0, lr=lr, num_steps=num_steps), x0.dtype)
    assert_close(x, expected, f"x after {num_steps} Adam steps with lr={lr} from "
                 f"{[round(v, 4) for v in x0.tolist()]}", atol=1e-4 * (1 + num_steps * lr),
                 mistakes=mistakes)
    if not math.isclose(f_x, float(himmelblau64(x)), rel_tol=1e-5, abs_tol=1e-5):
        raise AssertionError(f"f_x is {f_x}, but himmelblau at the returned x is "
                             f"{float(himmelblau64(x)):.6g}: compute it at the final x.")


@pytest.mark.points(1)
def test_find_minimum_leaves_x0_alone(student):
    """x0 keeps its values and gets no .grad: Adam runs on a copy (the course notes)."""
    student.find_minimum(torch.tensor([-1.0, 0.0]), lr=0.1, num_steps=5)  # the handle checks


# --------------------------------------------------------------------------- on a real GPU


def flat_states(states) -> list:
    """Every tensor of a list of states, Adam's pairs opened."""
    return [t for entry in states for t in (entry if isinstance(entry, tuple | list)
                                            else (entry,))]


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """For float64 parameters on the GPU, every init_*_states makes float64 zero states there,
    every update leaves the parameters and states there, and himmelblau, descend's path and
    find_minimum's x stay there: torch.zeros_like(p), never the default device (§11)."""
    values = [tds.random_tensor(shape, 70 + i, torch.float64).to(GPU)
              for i, shape in enumerate(((2, 3), (4,)))]
    for function in ("init_momentum_states", "init_adagrad_states", "init_rmsprop_states",
                     "init_adam_states"):
        states = student.call(function, values)
        check_zero_states(states, values, function, function == "init_adam_states")
        expect_on_gpu(flat_states(states), f"{function}(params) for float64 params on {GPU}")
    one_step = [[torch.full_like(v, 0.5) for v in values]]
    zeros = [torch.zeros_like(v) for v in values]
    for function, states, hyperparams in (
            ("sgd_momentum", zeros, {"lr": 0.1, "momentum": 0.9}),
            ("adagrad", zeros, {"lr": 0.1}),
            ("rmsprop", zeros, {"lr": 0.1, "gamma": 0.9}),
            ("adam", [(z, z.clone()) for z in zeros], {"lr": 0.1, "t": 1})):
        with hints_on_error(UPDATE_HINTS):
            (seen,) = run_steps(student, function, values, one_step, states, hyperparams)
        expect_on_gpu(list(seen["params"]), f"the parameters after {function} on {GPU}")
        expect_on_gpu(flat_states(seen["states"]), f"the states after {function} on {GPU}")
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64).to(GPU)
    expect_on_gpu(student.himmelblau(x), f"himmelblau(x) for x on {GPU}")
    states = student.remote(cf.optimizer_states, [torch.zeros_like(x)])
    hyperparams = student.remote(cf.Hyperparams, {"lr": 0.01, "t": 1})
    expect_on_gpu(student.descend(cf.shifted_quadratic, x, cf.counting_update, states,
                                  hyperparams, 3), f"descend's path for x0 on {GPU}")
    point, _ = student.find_minimum(x[0].float(), lr=0.1, num_steps=3)
    expect_on_gpu(point, f"find_minimum's x for x0 on {GPU}")

"""Hidden tests for the optimization algorithms (§11.3-11.10) and Himmelblau's function.

Oracles are the section's formulas computed here in float64 (tests/hidden/_optimizers.py; not
torch.optim, whose first optimizer imports torch._dynamo into the grading process), and for
`find_minimum` torch.optim.Adam's own steps, taken here. The update functions get worker-side
`Parameters`, `States` and `Hyperparams` (torchdrill.callables), which they change in place as
in one process; the test reads them back after every call (`run_steps`). Gradients are drawn
with entries of every size, zero and 1e-4 included, where eps inside or outside the square
root, or no eps, changes the step.
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
    max_abs,
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
from tests.public.test_optim import (
    ADAM_NO_BIAS_CORRECTION,
    ADAM_T_NOT_INCREASED,
    ADAM_T_PER_PARAMETER,
    ADAM_T_TOO_LARGE,
    DESCEND_ACCUMULATES,
    DESCEND_STORES_X,
    EPS_OUTSIDE,
    NO_EPS,
    NOT_ZEROED,
    run_steps,
    state_not_kept,
    zeroed,
)
from torchdrill import callables as cf

MINIMA = {(0.0, 0.0): (3.0, 2.0), (-1.0, 0.0): (-2.805118, 3.131312),
          (-4.0, 0.0): (-3.779310, -3.283186), (4.0, 0.0): (3.584428, -1.848126)}
UPDATE_HINTS = {
    "KeyError": "eps, beta1 and beta2 are constants of the function (eps = 1e-6, beta1 = 0.9, "
    "beta2 = 0.999), not keys of hyperparams: the tests pass only lr and momentum, gamma or t.",
    "leaf Variable that requires grad": "an update records nothing in the graph: change the "
    "parameters (and states) inside `with torch.no_grad():`, as topic 3's sgd does.",
}
HIMMELBLAU_HINTS = {
    **NON_CONTIGUOUS_HINTS,
    "too many indices": "x may be one point of shape (2,) (or a grid (h, w, 2)): index the "
    "coordinates on the last axis, x[..., 0] and x[..., 1], which works for every shape.",
}

# --------------------------------------------------------------------------- himmelblau


def himmelblau_in_dtype(x: torch.Tensor) -> torch.Tensor:
    """himmelblau in x's own dtype (find_minimum's oracle rounds as the submission does)."""
    return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2


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
    rows = {}
    if x.dim() >= 2 and x.shape[0] >= 2:
        rows["the rows were taken for coordinates: x[0] is the first point of a batch; index "
             "the last axis, x[..., 0] and x[..., 1]."] = (
            (x[0].double() ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2).to(x.dtype)
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


def check_zero_states(states, params, what: str, pairs: bool) -> None:
    """`states` holds one zero tensor (or pair) per parameter, with its shape and dtype, each
    its own memory: writing into one entry leaves every other entry zero."""
    if not isinstance(states, list | tuple) or len(states) != len(params):
        raise AssertionError(f"{what} should be a list with one entry per parameter "
                             f"({len(params)}), but it is {type(states).__name__}"
                             f"{f' of {len(states)}' if isinstance(states, list | tuple) else ''}.")
    tensors = []
    for i, (entry, p) in enumerate(zip(states, params, strict=True)):
        if pairs:
            if not isinstance(entry, tuple | list) or len(entry) != 2:
                raise AssertionError(f"{what}[{i}] should be a pair (v, s) of tensors.")
            named = [(f"{what}[{i}][0] (v)", entry[0]), (f"{what}[{i}][1] (s)", entry[1])]
        else:
            named = [(f"{what}[{i}]", entry)]
        for name, t in named:
            expect_tensor(t, name, shape=p.shape, dtype=p.dtype)
            if bool(t.detach().any()):
                raise AssertionError(f"{name} should start at zero (torch.zeros_like(p)).")
            tensors.append((name, t))
    for name, t in tensors:
        with torch.no_grad():
            t.fill_(1)
        shared = [other for other, u in tensors if u is not t and bool(u.detach().any())]
        if shared:
            raise AssertionError(f"{name} shares its memory with {shared[0]}: make each state "
                                 "its own tensor (one torch.zeros_like(p) each), or one update "
                                 "writes into another's state.")
        with torch.no_grad():
            t.fill_(0)


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


def step_scale(*tensors: torch.Tensor) -> float:
    return 4 * max(1.0, max_abs(*tensors))


def check_step(seen: dict, expected_params, expected_states, before_states, what: str,
               mistakes_of, state_message: str) -> None:
    """The parameters and states after one call against the oracle's; a state left as it was
    is the "rebound" mistake, a gradient left behind the "not zeroed" one."""
    params, states = seen["params"], seen["states"]
    if seen["result"] is not None:
        raise AssertionError(f"{what} returned {type(seen['result']).__name__}: an update works "
                             "in place and returns None.")
    for i, (p, want) in enumerate(zip(params, expected_params, strict=True)):
        expect_tensor(p, f"parameter {i}", shape=want.shape, dtype=want.dtype)
        assert_close(p.detach(), want, f"parameter {i} {tuple(want.shape)} after {what}",
                     scale=step_scale(want), mistakes=mistakes_of(i))
        if not zeroed(p):
            raise AssertionError(f"after {what}, parameter {i}: {NOT_ZEROED}")
    if not isinstance(states, list) or len(states) != len(expected_states):
        raise AssertionError(f"{what} changed the length of states: update each state in "
                             "place, never the list.")
    for i, (entry, want, old) in enumerate(zip(states, expected_states, before_states,
                                              strict=True)):
        pairs = isinstance(want, tuple)
        for j, (got, w, o) in enumerate(zip(entry, want, old, strict=True) if pairs
                                        else [(entry, want, old)]):
            name = f"the state {('v', 's')[j]} of parameter {i}" if pairs else (
                f"the state of parameter {i}")
            expect_tensor(got, name, shape=w.shape, dtype=w.dtype)
            assert_close(got, w, f"{name} after {what}", scale=step_scale(w),
                         mistakes={state_message: o})


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


def _finite(mistakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mistakes whose result is a number everywhere (a nan matches any nan)."""
    return {m: w for m, w in mistakes.items() if bool(torch.isfinite(w).all())}


MOMENTUM_STATE = state_not_kept("v", "momentum * v + p.grad")
ADAGRAD_STATE = state_not_kept("s", "s + p.grad**2")
RMSPROP_STATE = state_not_kept("s", "gamma * s + (1 - gamma) * p.grad**2")
ADAM_STATE = state_not_kept("v", "beta1 * v + (1 - beta1) * p.grad")


def run_momentum(student, problem, steps_from_zero: bool, momentum: float):
    values, grads, lr, seed = problem
    states = start_states(values, seed, "momentum", steps_from_zero)
    return run_and_check(
        student, "sgd_momentum", values, grads, states, {"lr": lr, "momentum": momentum},
        lambda p, g, v, k: O.momentum_step(p, g, v, lr, momentum),
        lambda p, g, v, k, i: {"the velocity was not scaled by momentum: v = momentum * v + "
                               "p.grad.": O.momentum_step(p, g, v, lr, 1.0)[0],
                               "p moved by lr * p.grad, not by lr * v: update v first, then "
                               "p -= lr * v.": p - lr * g},
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


def eps_mistakes(step, p, g, s) -> dict[str, torch.Tensor]:
    return _finite({EPS_OUTSIDE: step(p, g, s, eps_inside=False)[0],
                    NO_EPS: step(p, g, s, eps=0.0)[0]})


def run_adagrad(student, problem, from_zero: bool):
    values, grads, lr, seed = problem
    states = start_states(values, seed, "squares", from_zero)
    step = lambda p, g, s, **kw: O.adagrad_step(p, g, s, lr, **kw)  # noqa: E731
    return run_and_check(student, "adagrad", values, grads, states, {"lr": lr},
                         lambda p, g, s, k: step(p, g, s),
                         lambda p, g, s, k, i: eps_mistakes(step, p, g, s), ADAGRAD_STATE)


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
    step = lambda p, g, s, **kw: O.rmsprop_step(p, g, s, lr, gamma, **kw)  # noqa: E731
    return run_and_check(
        student, "rmsprop", values, grads, states, {"lr": lr, "gamma": gamma},
        lambda p, g, s, k: step(p, g, s),
        lambda p, g, s, k, i: {**eps_mistakes(step, p, g, s),
                               "gamma and 1 - gamma are swapped: s = gamma * s + (1 - gamma) "
                               "* g**2.": O.rmsprop_step(p, g, s, lr, 1 - gamma)[0]},
        RMSPROP_STATE)


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


def adam_mistakes(p, g, state, lr: float, t: int, i: int) -> dict[str, torch.Tensor]:
    """Adam's named wrong steps for parameter i: a parameter after the first one that used t +
    i is the "t per parameter" mistake (the first one was right)."""
    v, s = state
    wrong = {ADAM_T_PER_PARAMETER: O.adam_step(p, g, v, s, lr, t + i)[0]} if i else {}
    wrong |= {ADAM_NO_BIAS_CORRECTION: O.adam_step(p, g, v, s, lr, t, bias_correction=False)[0],
              ADAM_T_TOO_LARGE: O.adam_step(p, g, v, s, lr, t + 1)[0],
              "eps belongs outside the square root in Adam: sqrt(s_hat) + eps (§11.10.2).":
              O.adam_step(p, g, v, s, lr, t, eps_inside=True)[0]}
    return _finite(wrong)


def run_adam(student, problem, t0: int, from_zero: bool) -> list[dict]:
    values, grads, lr, seed = problem
    states = start_states(values, seed, "adam", from_zero)
    seen = run_and_check(
        student, "adam", values, grads, states, {"lr": lr, "t": t0},
        lambda p, g, vs, k: O.adam_step(p, g, *vs, lr, t0 + k),
        lambda p, g, vs, k, i: adam_mistakes(p, g, vs, lr, t0 + k, i), ADAM_STATE)
    for k, record in enumerate(seen):
        t = record["hyperparams"].get("t")
        if t != t0 + k + 1:
            raise AssertionError(
                f"after call {k + 1} (t = {t0 + k} before it), hyperparams['t'] is {t!r}, not "
                f"{t0 + k + 1}: " + (ADAM_T_NOT_INCREASED if t == t0 + k else
                                     ADAM_T_PER_PARAMETER if t == t0 + k + len(values) else
                                     "add 1 once per call, after the loop."))
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


def oracle_path(f, x0: torch.Tensor, lr: float, num_steps: int, fresh: bool = True):
    """descend's path with counting_update, in float64 (`fresh=False`: the gradients pile
    up), the final states and the sum of magnitudes rounding grows with."""
    x = x0.detach().double().clone().requires_grad_(True)
    states, hyperparams = [torch.zeros_like(x)], {"lr": lr, "t": 1}
    path, size = [x.detach().clone()], max_abs(x)
    for _ in range(num_steps):
        if fresh:
            x.grad = None
        f(x).backward()
        cf.counting_update([x], states, hyperparams)
        path.append(x.detach().clone())
        size += max_abs(x) + lr * max_abs(states[0])
    return torch.stack(path), states[0], size


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
    expected, _, size = oracle_path(f, x0, lr, num_steps)
    mistakes = {DESCEND_STORES_X: expected[-1:].expand_as(expected).to(x0.dtype),
                "the path should start with x0 and hold num_steps + 1 iterates.":
                expected[1:].to(x0.dtype)}
    if num_steps >= 2:
        mistakes[DESCEND_ACCUMULATES] = oracle_path(f, x0, lr, num_steps, False)[0].to(x0.dtype)
    path, _, _ = run_descend(student, name, x0, lr, num_steps)
    expect_tensor(path, "the path", dtype=x0.dtype)
    assert_close(path, expected.to(x0.dtype), f"descend({name}, x0 {tuple(x0.shape)}, "
                 f"lr={lr}, num_steps={num_steps})", scale=4 * size + 1, mistakes=mistakes)
    if path.requires_grad:
        raise AssertionError("the path is attached to autograd: return it detached (store "
                             "x.detach().clone() at every step).")


@pytest.mark.points(2)
@given(inputs=descend_inputs())
@tds.max_examples(at_most=3)
def test_descend_changes_states_and_hyperparams(student, inputs):
    """descend passes the caller's states and hyperparams themselves to every update, which
    changes them in place: after num_steps steps of counting_update, hyperparams['t'] is
    num_steps + 1 and the state holds the sum of the gradients (§11.3)."""
    name, x0, lr, num_steps = inputs
    num_steps = max(num_steps, 1)
    _, total, size = oracle_path(DESCENT_FUNCTIONS[name][0], x0, lr, num_steps)
    _, states, hyperparams = run_descend(student, name, x0, lr, num_steps)
    if hyperparams.get("t") != num_steps + 1:
        raise AssertionError(
            f"after {num_steps} steps the caller's hyperparams['t'] is {hyperparams.get('t')!r}, "
            f"not {num_steps + 1}: pass the caller's hyperparams and states to update as they "
            "are (no copies), so that what the update changes stays changed.")
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
    mistakes = {"the gradients accumulate: call optimizer.zero_grad() before each backward().":
                O.adam_path(himmelblau_in_dtype, x0, lr, num_steps, zero_grad=False)}
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

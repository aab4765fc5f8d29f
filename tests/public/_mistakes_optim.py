"""The mistakes the optim tests recognise, and what they say about each: the public tests
(test_optim.py beside this file) and the hidden ones both import the messages and checks here,
so a mistake gets the same message wherever a test sees it.

`grader.checks.assert_close(..., mistakes={message: wrong value})` names a mistake when a
wrong answer matches what that mistake gives. For the public tests' fixed inputs, the right
answers and what each mistake gives are written out below as numbers (a table per test,
`*_EXAMPLE`), worked out from the formulas of D2L chapter 11 (in float64, then rounded to
the float32 of the inputs); the instructor's kit checks every number against the oracles of
the hidden tests, so the two agree.
"""

from __future__ import annotations

import torch

from grader.checks import assert_close, expect_tensor, max_abs
from torchdrill import callables as cf

# --------------------------------------------------------------------------- messages

NOT_ZEROED = ("p.grad is not zero after the update: zero it (p.grad.zero_() or p.grad = "
              "None) as topic 3's sgd does, or the next backward() adds to it.")
EPS_OUTSIDE = ("eps is outside the square root (sqrt(s) + eps, as torch.optim puts it): the "
               "course follows the book and puts it inside, sqrt(s + eps) (§11.7.5, §11.8.2).")
NO_EPS = ("there is no eps: g / sqrt(s) is 0 / 0 = nan where the gradient and s are 0, and "
          "huge where they are tiny; divide by sqrt(s + eps) with eps = 1e-6.")
MOMENTUM_NOT_SCALED = ("the velocity was not scaled by momentum: v = momentum * v + p.grad.")
MOMENTUM_STEP_BY_GRAD = ("p moved by lr * p.grad, not by lr * v: update v first, then "
                         "p -= lr * v.")
RMSPROP_GAMMA_SWAPPED = ("gamma and 1 - gamma are swapped: s = gamma * s + (1 - gamma) * "
                         "g**2.")
ADAM_NO_BIAS_CORRECTION = ("this is Adam without bias correction: use v / (1 - beta1**t) and "
                           "s / (1 - beta2**t), which matter most in the first steps (§11.10.2).")
ADAM_T_TOO_LARGE = ("the bias correction used t + 1: t is this step's number, 1 on the first "
                    "call (t counted from 1, not 0); increase hyperparams['t'] after the update.")
ADAM_T_PER_PARAMETER = ("t went up once per parameter: every parameter of one call uses the "
                        "same t, and hyperparams['t'] += 1 comes once, after the loop.")
ADAM_T_NOT_INCREASED = ("hyperparams['t'] did not go up by one: add 1 after updating every "
                        "parameter, once per call (the next call is step t + 1).")
ADAM_EPS_INSIDE = "eps belongs outside the square root in Adam: sqrt(s_hat) + eps (§11.10.2)."
UPDATE_HINTS = {
    "KeyError": "eps, beta1 and beta2 are constants of the function (eps = 1e-6, beta1 = 0.9, "
    "beta2 = 0.999), not keys of hyperparams: the tests pass only lr and momentum, gamma or t.",
    "leaf Variable that requires grad": "an update records nothing in the graph: change the "
    "parameters (and states) inside `with torch.no_grad():`, as topic 3's sgd does.",
}

HIMMELBLAU_ROWS = ("the rows were taken for coordinates: x[0] is the first point of a batch; "
                   "index the last axis, x[..., 0] and x[..., 1].")
HIMMELBLAU_INDEX_HINTS = {
    "too many indices": "x may be one point of shape (2,) (or a grid (h, w, 2)): index the "
    "coordinates on the last axis, x[..., 0] and x[..., 1], which works for every shape.",
}

DESCEND_STORES_X = ("every row of the path is the last iterate: the path holds x itself, which "
                    "the update changes in place; store a copy of each iterate, "
                    "x.detach().clone().")
DESCEND_ACCUMULATES = ("the gradients accumulate across steps: backward() adds to x.grad, so "
                       "set x.grad = None (or zero it) before each backward().")
DESCEND_WITHOUT_X0 = "the path should start with x0 and hold num_steps + 1 iterates."
DESCEND_ATTACHED = ("the path is attached to autograd: return it detached (store "
                    "x.detach().clone() at every step).")

FIND_MINIMUM_ACCUMULATES = ("the gradients accumulate: call optimizer.zero_grad() before each "
                            "backward().")


def state_not_kept(state: str, formula: str) -> str:
    """The message for an update that rebinds its state instead of changing it in place."""
    return (f"the state did not build up over the steps: `{state} = {formula}` binds a new tensor "
            f"to the local name {state}, and the caller's state stays as it was. Change it in "
            f"place: `{state}[:] = {formula}` (§11.6.5).")


MOMENTUM_STATE = state_not_kept("v", "momentum * v + p.grad")
ADAGRAD_STATE = state_not_kept("s", "s + p.grad**2")
RMSPROP_STATE = state_not_kept("s", "gamma * s + (1 - gamma) * p.grad**2")
ADAM_STATE = state_not_kept("v", "beta1 * v + (1 - beta1) * p.grad")


def adam_t_message(t, before: int, num_params: int, call: int = 1) -> str | None:
    """What is wrong with hyperparams['t'] being `t` after adam's call number `call` on
    `num_params` parameters, which started at `before`; None when it is `before + 1`."""
    if t == before + 1:
        return None
    why = (ADAM_T_NOT_INCREASED if t == before else
           ADAM_T_PER_PARAMETER if t == before + num_params else
           "add 1 once per call, after the loop.")
    return (f"after call {call} (t = {before} before it), hyperparams['t'] is {t!r}, not "
            f"{before + 1}: {why}")


def descend_hyperparams_message(t, num_steps: int) -> str | None:
    """What is wrong with the caller's hyperparams['t'] being `t` after `num_steps` steps of
    descend with counting_update from t = 1; None when it is num_steps + 1."""
    if t == num_steps + 1:
        return None
    return (f"after {num_steps} steps the caller's hyperparams['t'] is {t!r}, not "
            f"{num_steps + 1}: pass the caller's hyperparams and states to update as they are "
            "(no copies), so that what the update changes stays changed.")


# --------------------------------------------------------------------------- the public tests
# A table per public test: its inputs, the right answer and, under "mistakes", what each mistake
# the test names gives for those inputs (float32, each number written with the digits that
# round to its float32 value). Where a mistake gives the right answer for these inputs (the
# first momentum step from v = 0, a parameter whose gradient is 0) it is listed all the same:
# it is caught at a later step or on the other parameter.

HIMMELBLAU_POINTS_EXAMPLE = {
    "point": torch.tensor([0.0, 0.0]),
    "at_point": torch.tensor(170.0),
    "x": torch.tensor([[0.0, 0.0], [3.0, 2.0], [1.0, -1.0]]),
    "expected": torch.tensor([170.0, 0.0, 146.0]),
    # x[0] and x[1] taken for the coordinates: the points (0, 3) and (0, 2)
    "mistakes": {HIMMELBLAU_ROWS: torch.tensor([68.0, 90.0])},
}

HIMMELBLAU_GRID_EXAMPLE = {
    # (2, 3, 2), transposed (not contiguous): x[i, j] is the point in row j, column i below
    "x": torch.tensor([[[0.0, 0.0], [3.0, 2.0]], [[1.0, -1.0], [-1.0, 0.0]],
                       [[2.0, 1.0], [0.0, 2.0]]]).transpose(0, 1),
    # f(0, 0) = 170, f(1, -1) = 146, f(2, 1) = 52; f(3, 2) = 0, f(-1, 0) = 164, f(0, 2) = 90
    "expected": torch.tensor([[170.0, 146.0, 52.0], [0.0, 164.0, 90.0]]),
    "mistakes": {HIMMELBLAU_ROWS: torch.tensor([[68.0, 90.0], [146.0, 164.0], [74.0, 68.0]])},
}

MOMENTUM_EXAMPLE = {
    "p": torch.tensor([1.0, -2.0]),
    "v": torch.zeros(2),
    "grads": [torch.tensor([2.0, 0.5]), torch.tensor([1.0, -1.0])],
    "hyperparams": {"lr": 0.1, "momentum": 0.9},
    "steps": [  # after each call: (p, v), and p after each mistake
        {"expected": (torch.tensor([0.8, -2.05]), torch.tensor([2.0, 0.5])),
         "mistakes": {MOMENTUM_NOT_SCALED: torch.tensor([0.8, -2.05]),
                      MOMENTUM_STEP_BY_GRAD: torch.tensor([0.8, -2.05])}},
        {"expected": (torch.tensor([0.52, -1.995]), torch.tensor([2.8, -0.55])),
         "mistakes": {MOMENTUM_NOT_SCALED: torch.tensor([0.5, -2.0]),
                      MOMENTUM_STEP_BY_GRAD: torch.tensor([0.7, -1.95])}},
    ],
}

# gradients of two parameters for adagrad and rmsprop: tiny entries, where eps = 1e-6 inside
# or outside the square root changes the step, a large one, and a zero one (b), where a step
# without eps would be 0 / 0 (that mistake gives nan there, which the test does not name)
ADAGRAD_EXAMPLE = {
    "params": [torch.ones(3), torch.ones(1)],
    "grads": [torch.tensor([1e-4, -1e-3, 0.5]), torch.tensor([0.0])],
    "states": [torch.zeros(3), torch.zeros(1)],
    "hyperparams": {"lr": 0.01},
    "expected_params": [torch.tensor([0.99900496, 1.007071, 0.99]), torch.tensor([1.0])],
    "expected_states": [torch.tensor([9.999999e-09, 1.0000001e-06, 0.25]), torch.tensor([0.0])],
    "mistakes": [  # per parameter
        {EPS_OUTSIDE: torch.tensor([0.990099, 1.00999, 0.99]),
         NO_EPS: torch.tensor([0.99, 1.01, 0.99])},
        {EPS_OUTSIDE: torch.tensor([1.0])},
    ],
}

RMSPROP_EXAMPLE = {
    "params": [torch.ones(3), torch.ones(1)],
    "grads": [torch.tensor([1e-4, -1e-3, 0.5]), torch.tensor([0.0])],
    "states": [torch.zeros(3), torch.zeros(1)],
    "hyperparams": {"lr": 0.01, "gamma": 0.9},
    "expected_params": [torch.tensor([0.9990005, 1.0095346, 0.9683778]), torch.tensor([1.0])],
    "expected_states": [torch.tensor([1e-09, 1.0000001e-07, 0.025]), torch.tensor([0.0])],
    "mistakes": [  # per parameter
        {EPS_OUTSIDE: torch.tensor([0.9693466, 1.0315231, 0.9683774]),
         NO_EPS: torch.tensor([0.96837723, 1.0316228, 0.96837723]),
         RMSPROP_GAMMA_SWAPPED: torch.tensor([0.9990045, 1.0072547, 0.9894591])},
        {EPS_OUTSIDE: torch.tensor([1.0]), RMSPROP_GAMMA_SWAPPED: torch.tensor([1.0])},
    ],
}

ADAM_EXAMPLE = {
    "params": [torch.tensor([1.0, -1.0]), torch.tensor([0.5])],
    "grads": [torch.tensor([0.2, -3.0]), torch.tensor([1e-3])],
    "states": [(torch.zeros(2), torch.zeros(2)), (torch.zeros(1), torch.zeros(1))],
    "hyperparams": {"lr": 0.1, "t": 1},
    "expected_params": [torch.tensor([0.9000005, -0.90000004]), torch.tensor([0.4000999])],
    "expected_states": [(torch.tensor([0.02, -0.3]), torch.tensor([4.0000003e-05, 0.009])),
                        (torch.tensor([0.000100000005]), torch.tensor([1.0000001e-09]))],
    "mistakes": [  # per parameter; the second one is where t per parameter shows (t = 2)
        {ADAM_NO_BIAS_CORRECTION: torch.tensor([0.6838222, -0.68377554]),
         ADAM_T_TOO_LARGE: torch.tensor([0.9255868, -0.92558634]),
         ADAM_EPS_INSIDE: torch.tensor([0.9000012, -0.9])},
        {ADAM_T_PER_PARAMETER: torch.tensor([0.42569137]),
         ADAM_NO_BIAS_CORRECTION: torch.tensor([0.1934657]),
         ADAM_T_TOO_LARGE: torch.tensor([0.42569137]),
         ADAM_EPS_INSIDE: torch.tensor([0.4292893])},
    ],
}

# descend with torchdrill.callables.counting_update from a zero state and t = 1
DESCEND_EXAMPLE = {
    "f": cf.shifted_quadratic,
    "x0": torch.tensor([0.0, 1.0]),
    "lr": 0.1,
    "num_steps": 2,
    # gradient 2 (x - 3): step 1 g = [-6, -4], s = g, x -= 0.1 * 2g / 1 -> [1.2, 1.8];
    # step 2 g = [-3.6, -2.4], s = [-9.6, -6.4], x -= 0.1 * (g + s) / 2 -> [1.86, 2.24]
    "expected": torch.tensor([[0.0, 1.0], [1.2, 1.8], [1.86, 2.24]]),
    "mistakes": {
        DESCEND_STORES_X: torch.tensor([[1.86, 2.24], [1.86, 2.24], [1.86, 2.24]]),
        DESCEND_WITHOUT_X0: torch.tensor([[1.2, 1.8], [1.86, 2.24]]),
        DESCEND_ACCUMULATES: torch.tensor([[0.0, 1.0], [1.2, 1.8], [2.46, 2.64]]),
    },
}

DESCEND_FUNCTION_EXAMPLE = {
    "f": cf.shifted_quadratic_by_function,
    "x0": torch.tensor([[0.0, 1.0], [4.0, -1.0]]),
    "lr": 0.05,
    "num_steps": 3,
    "expected": torch.tensor([[[0.0, 1.0], [4.0, -1.0]], [[0.6, 1.4], [3.8, -0.2]],
                              [[0.99, 1.66], [3.67, 0.32]],
                              [[1.304, 1.8693334], [3.5653334, 0.73866665]]]),
    "mistakes": {
        DESCEND_STORES_X: torch.tensor([[[1.304, 1.8693334], [3.5653334, 0.73866665]]] * 4),
        DESCEND_WITHOUT_X0: torch.tensor([[[0.6, 1.4], [3.8, -0.2]], [[0.99, 1.66], [3.67, 0.32]],
                                          [[1.304, 1.8693334], [3.5653334, 0.73866665]]]),
        DESCEND_ACCUMULATES: torch.tensor([[[0.0, 1.0], [4.0, -1.0]], [[0.6, 1.4], [3.8, -0.2]],
                                           [[1.29, 1.86], [3.57, 0.72]],
                                           [[2.044, 2.3626666], [3.3186667, 1.7253333]]]),
    },
}

FIND_MINIMUM_EXAMPLE = {
    "x0": torch.tensor([0.0, 0.0]),
    "lr": 0.05,
    "num_steps": 300,
    "expected": torch.tensor([3.0, 2.0]),  # the minimum, to atol 1e-3
    # where 300 Adam steps end when the gradients pile up (no zero_grad)
    "mistakes": {FIND_MINIMUM_ACCUMULATES: torch.tensor([0.58311915, -2.6443121])},
}

# --------------------------------------------------------------------------- running and checking


def run_steps(student, function: str, values: list[torch.Tensor],
              grads: list[list[torch.Tensor]], states: list, hyperparams: dict) -> list[dict]:
    """Call `function` once per list of gradients in `grads`, on parameters starting at
    `values`; after each call, what the test can see: the parameters (with their .grad), the
    states, the hyperparameters and what the call returned."""
    params = student.remote(cf.parameters_with_grads, values, grads[0])
    remote_states = student.remote(cf.optimizer_states, states)
    remote_hyperparams = student.remote(cf.Hyperparams, hyperparams)
    seen = []
    for k, step_grads in enumerate(grads):
        if k:
            student.remote(cf.set_grads, params, step_grads)
        result = student.call(function, params, remote_states, remote_hyperparams)
        seen.append({"params": params.originals, "states": remote_states.entries,
                     "hyperparams": remote_hyperparams.data, "result": result})
    return seen


def zeroed(p: torch.Tensor) -> bool:
    """Whether p's gradient was zeroed (`p.grad.zero_()` or `p.grad = None`)."""
    return p.grad is None or not bool(p.grad.any())


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

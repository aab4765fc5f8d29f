"""Public checks for the optimization algorithms (§11.3-11.10) and Himmelblau's function: read
them, run them, then make them pass. The hidden tests check the same functions on many more
inputs (float64, several parameters, many steps, tiny gradients).

The update functions get their arguments as your code would in a training loop: `params` is a
`torchdrill.callables.Parameters` list (leaf tensors holding a `.grad`, as after `backward()`),
`states` a `torchdrill.callables.States` list and `hyperparams` a
`torchdrill.callables.Hyperparams` dict. They stay in the process that runs your code, which
changes them in place, and the test reads them afterwards. Expected numbers below were worked
out from the formulas of the section.
"""

import pytest
import torch

from grader.checks import assert_close, expect_python_float, expect_tensor
from torchdrill import callables

# What the tests say when they recognise a mistake (the hidden tests say the same).
NOT_ZEROED = ("p.grad is not zero after the update: zero it (p.grad.zero_() or p.grad = "
              "None) as topic 3's sgd does, or the next backward() adds to it.")
EPS_OUTSIDE = ("eps is outside the square root (sqrt(s) + eps, as torch.optim puts it): the "
               "course follows the book and puts it inside, sqrt(s + eps) (§11.7.5, §11.8.2).")
NO_EPS = ("there is no eps: g / sqrt(s) is 0 / 0 = nan where the gradient and s are 0, and "
          "huge where they are tiny; divide by sqrt(s + eps) with eps = 1e-6.")
ADAM_NO_BIAS_CORRECTION = ("this is Adam without bias correction: use v / (1 - beta1**t) and "
                           "s / (1 - beta2**t), which matter most in the first steps (§11.10.2).")
ADAM_T_TOO_LARGE = ("the bias correction used t + 1: t is this step's number, 1 on the first "
                    "call (t counted from 1, not 0); increase hyperparams['t'] after the update.")
ADAM_T_PER_PARAMETER = ("t went up once per parameter: every parameter of one call uses the "
                        "same t, and hyperparams['t'] += 1 comes once, after the loop.")
ADAM_T_NOT_INCREASED = ("hyperparams['t'] did not go up by one: add 1 after updating every "
                        "parameter, once per call (the next call is step t + 1).")
DESCEND_STORES_X = ("every row of the path is the last iterate: the path holds x itself, which "
                    "the update changes in place; store a copy of each iterate, "
                    "x.detach().clone().")
DESCEND_ACCUMULATES = ("the gradients accumulate across steps: backward() adds to x.grad, so "
                       "set x.grad = None (or zero it) before each backward().")


def state_not_kept(state: str, formula: str) -> str:
    """The message for an update that rebinds its state instead of changing it in place."""
    return (f"the state did not build up over the steps: `{state} = {formula}` binds a new tensor "
            f"to the local name {state}, and the caller's state stays as it was. Change it in "
            f"place: `{state}[:] = {formula}` (§11.6.5).")


def run_steps(student, function: str, values: list[torch.Tensor],
              grads: list[list[torch.Tensor]], states: list, hyperparams: dict) -> list[dict]:
    """Call `function` once per list of gradients in `grads`, on parameters starting at
    `values`; after each call, what the test can see: the parameters (with their .grad), the
    states, the hyperparameters and what the call returned."""
    params = student.remote(callables.parameters_with_grads, values, grads[0])
    remote_states = student.remote(callables.optimizer_states, states)
    remote_hyperparams = student.remote(callables.Hyperparams, hyperparams)
    seen = []
    for k, step_grads in enumerate(grads):
        if k:
            student.remote(callables.set_grads, params, step_grads)
        result = student.call(function, params, remote_states, remote_hyperparams)
        seen.append({"params": params.originals, "states": remote_states.entries,
                     "hyperparams": remote_hyperparams.data, "result": result})
    return seen


def zeroed(p: torch.Tensor) -> bool:
    """Whether p's gradient was zeroed (`p.grad.zero_()` or `p.grad = None`)."""
    return p.grad is None or not bool(p.grad.any())


@pytest.mark.points(1)
def test_himmelblau_at_three_points(student):
    """himmelblau at one point (2,) is a 0-d tensor: 170 at (0, 0), 0 at the minimum (3, 2); a
    batch of points (n, 2) gives (n,), one value per point (the last axis holds the
    coordinates)."""
    expect_tensor(student.himmelblau(torch.tensor([0.0, 0.0])), "himmelblau([0, 0])", shape=())
    assert_close(student.himmelblau(torch.tensor([0.0, 0.0])), torch.tensor(170.0),
                 "himmelblau([0, 0])")
    points = torch.tensor([[0.0, 0.0], [3.0, 2.0], [1.0, -1.0]])
    assert_close(student.himmelblau(points), torch.tensor([170.0, 0.0, 146.0]),
                 "himmelblau of the points (0, 0), (3, 2), (1, -1)",
                 mistakes={"the rows were taken for coordinates: x[0] is the first point of a "
                           "batch; index the last axis, x[..., 0] and x[..., 1].":
                           torch.tensor([68.0, 90.0])})


@pytest.mark.points(1)
def test_init_adam_states_small(student):
    """init_adam_states([w, b]) gives one pair (v, s) of zero tensors per parameter, with its
    shape and dtype; init_momentum_states (and AdaGrad's and RMSProp's) one zero tensor per
    parameter, with its shape and dtype (float64 for w here)."""
    w, b = torch.ones(3, 2, dtype=torch.float64), torch.ones(2)
    states = student.init_adam_states([w, b])
    assert isinstance(states, list) and len(states) == 2, "one (v, s) pair per parameter"
    for (v, s), p in zip(states, (w, b), strict=True):
        for name, t in (("v", v), ("s", s)):
            expect_tensor(t, name, shape=p.shape, dtype=p.dtype)
            assert not bool(t.any()), f"{name} should start at zero"
    for function in ("init_momentum_states", "init_adagrad_states", "init_rmsprop_states"):
        states = student.call(function, [w, b])
        assert isinstance(states, list) and len(states) == 2, "one zero tensor per parameter"
        for i, (state, p) in enumerate(zip(states, (w, b), strict=True)):
            expect_tensor(state, f"{function}([w, b])[{i}]", shape=p.shape, dtype=p.dtype)


@pytest.mark.points(2)
def test_sgd_momentum_two_steps(student):
    """Two momentum steps with lr = 0.1, momentum = 0.9 from p = [1, -2], gradients [2, 0.5]
    then [1, -1]: the velocity builds up (v = [2, 0.5], then [2.8, -0.55]), p goes to
    [0.8, -2.05] then [0.52, -1.995], and p.grad is zeroed (§11.6.5)."""
    first, second = run_steps(student, "sgd_momentum", [torch.tensor([1.0, -2.0])],
                              [[torch.tensor([2.0, 0.5])], [torch.tensor([1.0, -1.0])]],
                              [torch.zeros(2)], {"lr": 0.1, "momentum": 0.9})
    assert_close(first["params"][0], torch.tensor([0.8, -2.05]), "p after the first step")
    assert zeroed(first["params"][0]), NOT_ZEROED
    assert_close(second["params"][0], torch.tensor([0.52, -1.995]), "p after the second step",
                 mistakes={state_not_kept("v", "momentum * v + p.grad"):
                           torch.tensor([0.7, -1.95])})
    assert_close(second["states"][0], torch.tensor([2.8, -0.55]), "the velocity after two steps")


@pytest.mark.points(2)
def test_adagrad_tiny_gradients(student):
    """AdaGrad with lr = 0.01 from p = [1, 1, 1], s = 0, gradients [1e-4, -1e-3, 0]: eps = 1e-6
    goes inside the square root, so the first entry moves by only about 1e-3, and a zero
    gradient moves nothing (no nan) (§11.7.5)."""
    (step,) = run_steps(student, "adagrad", [torch.ones(3)], [[torch.tensor([1e-4, -1e-3, 0.0])]],
                        [torch.zeros(3)], {"lr": 0.01})
    assert_close(step["params"][0], torch.tensor([0.999004963, 1.00707107, 1.0]),
                 "p after one step",
                 mistakes={EPS_OUTSIDE: torch.tensor([0.99009901, 1.00999001, 1.0]),
                           NO_EPS: torch.tensor([0.99, 1.01, float("nan")])})
    assert_close(step["states"][0], torch.tensor([1e-8, 1e-6, 0.0]), "s after one step",
                 atol=1e-12, rtol=1e-5,
                 mistakes={state_not_kept("s", "s + p.grad**2"): torch.zeros(3)})
    assert zeroed(step["params"][0]), NOT_ZEROED


@pytest.mark.points(2)
def test_rmsprop_tiny_gradients(student):
    """RMSProp with lr = 0.01, gamma = 0.9 from p = [1, 1, 1], s = 0, gradients [1e-4, -1e-3,
    0]: s = 0.1 g**2 and eps = 1e-6 inside the square root (§11.8.2)."""
    (step,) = run_steps(student, "rmsprop", [torch.ones(3)], [[torch.tensor([1e-4, -1e-3, 0.0])]],
                        [torch.zeros(3)], {"lr": 0.01, "gamma": 0.9})
    assert_close(step["params"][0], torch.tensor([0.9990005, 1.00953463, 1.0]),
                 "p after one step",
                 mistakes={EPS_OUTSIDE: torch.tensor([0.96934657, 1.03152309, 1.0]),
                           NO_EPS: torch.tensor([0.968377223, 1.03162278, float("nan")])})
    assert_close(step["states"][0], torch.tensor([1e-9, 1e-7, 0.0]), "s after one step",
                 atol=1e-12, rtol=1e-5,
                 mistakes={state_not_kept("s", "gamma * s + (1 - gamma) * p.grad**2"):
                           torch.zeros(3)})
    assert zeroed(step["params"][0]), NOT_ZEROED


@pytest.mark.points(2)
def test_adam_first_step_two_parameters(student):
    """Adam's first step (t = 1, lr = 0.1) on w = [1, -1] and b = [0.5] with gradients
    [0.2, -3] and [1e-3]: with the bias corrections every entry moves by about lr against its
    gradient's sign, both parameters use t = 1, w's v is 0.1 g = [0.02, -0.3], and afterwards
    hyperparams['t'] is 2 (§11.10.2)."""
    (step,) = run_steps(student, "adam", [torch.tensor([1.0, -1.0]), torch.tensor([0.5])],
                        [[torch.tensor([0.2, -3.0]), torch.tensor([1e-3])]],
                        [(torch.zeros(2), torch.zeros(2)), (torch.zeros(1), torch.zeros(1))],
                        {"lr": 0.1, "t": 1})
    w, b = step["params"]
    assert_close(w, torch.tensor([0.9000005, -0.900000033]), "w after one step",
                 mistakes={ADAM_NO_BIAS_CORRECTION: torch.tensor([0.683822226, -0.683775567]),
                           ADAM_T_TOO_LARGE: torch.tensor([0.925586844, -0.925586353])})
    assert_close(b, torch.tensor([0.4000999]), "b after one step",
                 mistakes={ADAM_T_PER_PARAMETER: torch.tensor([0.42569138])})
    (v, s), _ = step["states"]
    assert_close(v, torch.tensor([0.02, -0.3]), "w's state v after one step",
                 mistakes={state_not_kept("v", "beta1 * v + (1 - beta1) * p.grad"):
                           torch.zeros(2)})
    t = step["hyperparams"]["t"]
    assert t == 2, f"hyperparams['t'] is {t} after the first call, not 2: " + (
        ADAM_T_NOT_INCREASED if t == 1 else ADAM_T_PER_PARAMETER)


@pytest.mark.points(2)
def test_descend_two_steps(student):
    """descend(shifted_quadratic, x0 = [0, 1], counting_update, [zeros], {'lr': 0.1, 't': 1},
    2) returns the path (3, 2), x0 first, with each step's own gradient (the update leaves
    x.grad alone, so the gradients must not pile up), leaves x0 alone, and the update's
    hyperparams['t'] ends at 3 (§11.3)."""
    x0 = torch.tensor([0.0, 1.0])
    states = student.remote(callables.optimizer_states, [torch.zeros(2)])
    hyperparams = student.remote(callables.Hyperparams, {"lr": 0.1, "t": 1})
    path = student.descend(callables.shifted_quadratic, x0, callables.counting_update, states,
                           hyperparams, 2)
    # gradient 2 (x - 3): step 1 g = [-6, -4], s = g, x -= 0.1 * 2g / 1 -> [1.2, 1.8];
    # step 2 g = [-3.6, -2.4], s = [-9.6, -6.4], x -= 0.1 * (g + s) / 2 -> [1.86, 2.24]
    expected = torch.tensor([[0.0, 1.0], [1.2, 1.8], [1.86, 2.24]])
    assert_close(path, expected, "the path of descend",
                 mistakes={DESCEND_STORES_X: torch.tensor([[1.86, 2.24]] * 3),
                           DESCEND_ACCUMULATES: torch.tensor([[0.0, 1.0], [1.2, 1.8],
                                                              [2.46, 2.64]])})
    assert hyperparams.data["t"] == 3, "the update's hyperparams must be the caller's dict"


@pytest.mark.points(1)
def test_find_minimum_from_the_origin(student):
    """Adam with lr = 0.05 for 300 steps from (0, 0) reaches Himmelblau's minimum (3, 2) and
    returns f there as a Python float (the course notes)."""
    x, f_x = student.find_minimum(torch.tensor([0.0, 0.0]), lr=0.05, num_steps=300)
    expect_tensor(x, "x", shape=(2,), dtype=torch.float32)
    assert_close(x, torch.tensor([3.0, 2.0]), "the minimum found from (0, 0)", atol=1e-3)
    assert expect_python_float(f_x, "f_x") < 1e-6, f"f_x = {f_x} at the minimum, not about 0"

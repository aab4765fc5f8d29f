"""The mistakes the optim tests recognise, and what they say about each: the public tests
(test_optim.py beside this file) and the hidden ones both import it, so a mistake gets the same
message wherever a test sees it.

A recogniser returns `{message: what the mistake computes}` for the inputs of a test, which
`grader.checks.assert_close(..., mistakes=...)` compares a wrong answer with. To compute a
mistake's result it takes the steps of D2L chapter 11 as formulas (`momentum_step`,
`adagrad_step`, `rmsprop_step`, `adam_step`), with a flag for each mistake; the hidden tests
use the same formulas, flags off, as their oracles. torch.optim would serve where its formulas
agree with the contract (momentum, Adam), but constructing an optimizer imports torch._dynamo,
about a second of every grading process (grader/sandbox/lazy.py), so the grader takes the
steps itself. tests/kit/test_optimizer_oracles.py checks these against
torch.optim.SGD(momentum=...) and torch.optim.Adam, including `adam_path`'s claim to take
torch.optim.Adam's steps bit for bit.

A step takes a parameter, its gradient and its state and returns the new parameter and state
(new tensors: the exercise's update functions change theirs in place).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grader.checks import assert_close, expect_tensor, max_abs
from torchdrill import callables as cf

EPS = 1e-6  # the contract's eps of adagrad, rmsprop and adam
BETA1, BETA2 = 0.9, 0.999
TORCH_ADAM_EPS = 1e-8  # torch.optim.Adam's default, find_minimum's

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


# --------------------------------------------------------------------------- the steps


def momentum_step(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, lr: float,
                  momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """v = momentum * v + g; p -= lr * v (§11.6.5)."""
    v = momentum * v + g
    return p - lr * v, v


def adagrad_step(p: torch.Tensor, g: torch.Tensor, s: torch.Tensor, lr: float,
                 eps: float = EPS, eps_inside: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """s += g**2; p -= lr * g / sqrt(s + eps) (§11.7.5); `eps_inside=False`: torch.optim's
    sqrt(s) + eps."""
    s = s + g * g
    return p - lr * g / _root(s, eps, eps_inside), s


def rmsprop_step(p: torch.Tensor, g: torch.Tensor, s: torch.Tensor, lr: float, gamma: float,
                 eps: float = EPS, eps_inside: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """s = gamma * s + (1 - gamma) * g**2; p -= lr * g / sqrt(s + eps) (§11.8.2)."""
    s = gamma * s + (1 - gamma) * g * g
    return p - lr * g / _root(s, eps, eps_inside), s


def _root(s: torch.Tensor, eps: float, inside: bool) -> torch.Tensor:
    return torch.sqrt(s + eps) if inside else torch.sqrt(s) + eps


def adam_step(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, s: torch.Tensor, lr: float,
              t: int, eps: float = EPS, bias_correction: bool = True, eps_inside: bool = False
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """v = beta1 v + (1 - beta1) g; s = beta2 s + (1 - beta2) g**2;
    p -= lr * (v / (1 - beta1**t)) / (sqrt(s / (1 - beta2**t)) + eps) (§11.10.2)."""
    v = BETA1 * v + (1 - BETA1) * g
    s = BETA2 * s + (1 - BETA2) * g * g
    v_hat, s_hat = (v / (1 - BETA1 ** t), s / (1 - BETA2 ** t)) if bias_correction else (v, s)
    return p - lr * v_hat / _root(s_hat, eps, eps_inside), (v, s)


def adam_path(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, lr: float,
              num_steps: int, eps: float = TORCH_ADAM_EPS, zero_grad: bool = True
              ) -> torch.Tensor:
    """x after `num_steps` steps of torch.optim.Adam([x], lr=lr, eps=eps) on `f` from x0, in
    x0's dtype, with torch's own operations in torch's order (its single-tensor step), so
    float32 rounds as it does there; `zero_grad=False`: the gradients accumulate."""
    x = x0.detach().clone().requires_grad_(True)
    v, s = torch.zeros_like(x), torch.zeros_like(x)
    for step in range(1, num_steps + 1):
        if zero_grad:
            x.grad = None
        f(x).backward()
        grad = x.grad
        assert grad is not None
        with torch.no_grad():
            v.lerp_(grad, 1 - BETA1)
            s.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
            step_size = lr / (1 - BETA1 ** step)
            denom = (s.sqrt() / (1 - BETA2 ** step) ** 0.5).add_(eps)
            x.addcdiv_(v, denom, value=-step_size)
    return x.detach()


def himmelblau_in_dtype(x: torch.Tensor) -> torch.Tensor:
    """Himmelblau's function in x's own dtype: what find_minimum's Adam descends (its path
    rounds as the submission's does)."""
    return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2


def counting_path(f, x0: torch.Tensor, lr: float, num_steps: int, fresh: bool = True):
    """descend's path with torchdrill.callables.counting_update from zero states and t = 1,
    in float64 (`fresh=False`: the gradients pile up), the final state and the sum of
    magnitudes rounding grows with."""
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


# --------------------------------------------------------------------------- recognisers


def finite(mistakes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mistakes whose result is a number everywhere (a nan matches any nan)."""
    return {m: w for m, w in mistakes.items() if bool(torch.isfinite(w).all())}


def himmelblau_mistakes(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """himmelblau's wrong values for points `x` (..., 2): the first two rows of a batch taken
    for the two coordinates (in x's dtype, computed in float64)."""
    if x.dim() < 2 or x.shape[0] < 2:
        return {}
    return {HIMMELBLAU_ROWS: ((x[0].double() ** 2 + x[1] - 11) ** 2
                              + (x[0] + x[1] ** 2 - 7) ** 2).to(x.dtype)}


def momentum_mistakes(p, g, v, lr: float, momentum: float) -> dict[str, torch.Tensor]:
    """sgd_momentum's wrong parameters after one step from velocity v."""
    return {MOMENTUM_NOT_SCALED: momentum_step(p, g, v, lr, 1.0)[0],
            MOMENTUM_STEP_BY_GRAD: p - lr * g}


def eps_mistakes(step, p, g, s) -> dict[str, torch.Tensor]:
    """The wrong parameters of `step` (adagrad_step or rmsprop_step with its lr and gamma
    bound) with eps outside the square root, or no eps."""
    return finite({EPS_OUTSIDE: step(p, g, s, eps_inside=False)[0],
                   NO_EPS: step(p, g, s, eps=0.0)[0]})


def adagrad_mistakes(p, g, s, lr: float) -> dict[str, torch.Tensor]:
    """adagrad's wrong parameters after one step from the sums of squares s."""
    return eps_mistakes(lambda *a, **kw: adagrad_step(*a, lr, **kw), p, g, s)


def rmsprop_mistakes(p, g, s, lr: float, gamma: float) -> dict[str, torch.Tensor]:
    """rmsprop's wrong parameters after one step from the running averages s."""
    return {**eps_mistakes(lambda *a, **kw: rmsprop_step(*a, lr, gamma, **kw), p, g, s),
            RMSPROP_GAMMA_SWAPPED: rmsprop_step(p, g, s, lr, 1 - gamma)[0]}


def adam_mistakes(p, g, state, lr: float, t: int, i: int) -> dict[str, torch.Tensor]:
    """Adam's named wrong steps for parameter i: a parameter after the first one that used t +
    i is the "t per parameter" mistake (the first one was right)."""
    v, s = state
    wrong = {ADAM_T_PER_PARAMETER: adam_step(p, g, v, s, lr, t + i)[0]} if i else {}
    wrong |= {ADAM_NO_BIAS_CORRECTION: adam_step(p, g, v, s, lr, t, bias_correction=False)[0],
              ADAM_T_TOO_LARGE: adam_step(p, g, v, s, lr, t + 1)[0],
              ADAM_EPS_INSIDE: adam_step(p, g, v, s, lr, t, eps_inside=True)[0]}
    return finite(wrong)


def descend_mistakes(f, x0: torch.Tensor, lr: float, num_steps: int
                     ) -> dict[str, torch.Tensor]:
    """descend's wrong paths with counting_update (in x0's dtype): x itself stored at every
    step, x0 left out, the gradients piling up."""
    expected = counting_path(f, x0, lr, num_steps)[0]
    mistakes = {DESCEND_STORES_X: expected[-1:].expand_as(expected).to(x0.dtype),
                DESCEND_WITHOUT_X0: expected[1:].to(x0.dtype)}
    if num_steps >= 2:
        mistakes[DESCEND_ACCUMULATES] = counting_path(f, x0, lr, num_steps, False)[0].to(
            x0.dtype)
    return mistakes


def find_minimum_mistakes(x0: torch.Tensor, lr: float, num_steps: int
                          ) -> dict[str, torch.Tensor]:
    """find_minimum's wrong x: Adam's steps without zero_grad."""
    return {FIND_MINIMUM_ACCUMULATES: adam_path(himmelblau_in_dtype, x0, lr, num_steps,
                                                zero_grad=False)}


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

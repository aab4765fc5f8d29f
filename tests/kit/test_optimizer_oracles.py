"""The optim topic's oracles (the steps of tests/hidden/_optimizers.py) are the formulas
torch.optim computes where the contract agrees with it: SGD with momentum and Adam (eps = 1e-6)
step for step, and `adam_path` torch.optim.Adam's float32 path bit for bit. AdaGrad and RMSProp
with eps outside the square root (the mistake the tests name) are torch.optim's; the
contract's, eps inside, differ from them for tiny gradients. Checked here, in the kit, because
the grader's tests may not construct an optimizer: that imports torch._dynamo into every
grading process.

The public tests cannot use those formulas (tests/public/ ships to students, and a formula is
the exercise's answer), so they read literal tables (`*_EXAMPLE` in
tests/public/_mistakes_optim.py): their inputs, the right answers and what each named mistake
gives. Every number of every table is checked here against what the hidden oracles and
recognisers compute for the table's own inputs, and each table names the same mistakes, in
the same order, as the recogniser the hidden tests use, so the two cannot drift apart."""

from __future__ import annotations

import pytest
import torch

from tests.hidden import _optimizers as O
from tests.kit.tables import assert_literal, assert_mistakes
from tests.public import _mistakes_optim as P

STEPS = 5


def gradients(shape, steps: int = STEPS, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) * 10.0 ** -k
            for k in range(steps)]


def torch_path(make, p0: torch.Tensor, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """p after each step of the torch.optim optimizer `make([p])`, given the gradients."""
    p = p0.clone().requires_grad_(True)
    optimizer = make([p])
    path = []
    for grad in grads:
        p.grad = grad.clone()
        optimizer.step()
        path.append(p.detach().clone())
    return path


def formula_path(step, p0: torch.Tensor, grads: list[torch.Tensor], state) -> list[torch.Tensor]:
    p, path = p0, []
    for k, grad in enumerate(grads):
        p, state = step(p, grad, state, k + 1)
        path.append(p)
    return path


def assert_paths_equal(ours, theirs, atol: float = 1e-12) -> None:
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.allclose(a, b, rtol=0, atol=atol), (k, a, b)


def test_momentum_is_torch_sgd_with_momentum():
    """torch.optim.SGD's momentum buffer starts as the first gradient, which is v = 0 followed
    by v = momentum * v + g: the contract's form."""
    p0, grads = torch.randn(4, dtype=torch.float64), gradients(4)
    theirs = torch_path(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), p0, grads)
    ours = formula_path(lambda p, g, v, t: O.momentum_step(p, g, v, 0.1, 0.9), p0, grads,
                        torch.zeros(4, dtype=torch.float64))
    assert_paths_equal(ours, theirs)


def test_adam_is_torch_adam_with_eps_1e_6():
    p0, grads = torch.randn(3, 2, dtype=torch.float64), gradients((3, 2))
    theirs = torch_path(lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-6), p0, grads)
    zeros = torch.zeros(3, 2, dtype=torch.float64)
    ours = formula_path(lambda p, g, vs, t: O.adam_step(p, g, *vs, 0.01, t), p0, grads,
                        (zeros, zeros))
    assert_paths_equal(ours, theirs)


def test_adam_path_is_torch_adam_bit_for_bit():
    """find_minimum's oracle: torch.optim.Adam's float32 steps on Himmelblau, exactly."""
    def himmelblau(x):
        return (x[..., 0] ** 2 + x[..., 1] - 11) ** 2 + (x[..., 0] + x[..., 1] ** 2 - 7) ** 2

    x0 = torch.tensor([-1.3, 0.7])
    x = x0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=0.1)
    for _ in range(40):
        optimizer.zero_grad()
        himmelblau(x).backward()
        optimizer.step()
    assert torch.equal(O.adam_path(himmelblau, x0, 0.1, 40), x.detach())


def test_adagrad_and_rmsprop_of_torch_put_eps_outside():
    """torch.optim's AdaGrad and RMSProp are the flagged mistake `eps_inside=False`; for a
    gradient of 1e-4 the contract's step (eps inside) is about ten times smaller."""
    p0 = torch.ones(3, dtype=torch.float64)
    grads = [torch.tensor([1e-4, -1e-3, 0.5], dtype=torch.float64)] * 2
    zeros = torch.zeros(3, dtype=torch.float64)
    adagrad = torch_path(lambda ps: torch.optim.Adagrad(ps, lr=0.01, eps=1e-6), p0, grads)
    assert_paths_equal(formula_path(lambda p, g, s, t: O.adagrad_step(
        p, g, s, 0.01, eps_inside=False), p0, grads, zeros), adagrad)
    rmsprop = torch_path(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6), p0,
                         grads)
    assert_paths_equal(formula_path(lambda p, g, s, t: O.rmsprop_step(
        p, g, s, 0.01, 0.9, eps_inside=False), p0, grads, zeros), rmsprop)
    inside = O.adagrad_step(p0, grads[0], zeros, 0.01)[0]
    assert (1 - adagrad[0][0]) / (1 - inside[0]) > 9


# --------------------------------------------------------------------------- the public tables

def test_himmelblau_tables():
    for name in ("HIMMELBLAU_POINTS_EXAMPLE", "HIMMELBLAU_GRID_EXAMPLE"):
        example = getattr(P, name)
        x = example["x"]
        assert_literal(example["expected"], O.himmelblau_in_dtype(x.double()), name)
        assert_mistakes(example["mistakes"], O.himmelblau_mistakes(x), name)
    example = P.HIMMELBLAU_POINTS_EXAMPLE
    assert_literal(example["at_point"], O.himmelblau_in_dtype(example["point"].double()),
                   "HIMMELBLAU_POINTS_EXAMPLE at its point")
    assert not P.HIMMELBLAU_GRID_EXAMPLE["x"].is_contiguous()


def test_momentum_table():
    example = P.MOMENTUM_EXAMPLE
    lr, momentum = example["hyperparams"]["lr"], example["hyperparams"]["momentum"]
    p, v = example["p"].double(), example["v"].double()
    assert len(example["steps"]) == len(example["grads"])
    for k, (g, step) in enumerate(zip(example["grads"], example["steps"], strict=True)):
        what = f"MOMENTUM_EXAMPLE step {k + 1}"
        assert_mistakes(step["mistakes"], O.momentum_mistakes(p, g.double(), v, lr, momentum),
                        what)
        p, v = O.momentum_step(p, g.double(), v, lr, momentum)
        assert_literal(step["expected"][0], p, f"{what}, p")
        assert_literal(step["expected"][1], v, f"{what}, v")


def _pairs(state):
    return tuple(x.double() for x in state) if isinstance(state, tuple) else state.double()


@pytest.mark.parametrize("name", ["ADAGRAD_EXAMPLE", "RMSPROP_EXAMPLE", "ADAM_EXAMPLE"])
def test_one_update_tables(name):
    example = getattr(P, name)
    h = example["hyperparams"]
    step, mistakes = {
        "ADAGRAD_EXAMPLE": (lambda p, g, s: O.adagrad_step(p, g, s, h["lr"]),
                            lambda p, g, s, i: O.adagrad_mistakes(p, g, s, h["lr"])),
        "RMSPROP_EXAMPLE": (lambda p, g, s: O.rmsprop_step(p, g, s, h["lr"], h["gamma"]),
                            lambda p, g, s, i: O.rmsprop_mistakes(p, g, s, h["lr"], h["gamma"])),
        "ADAM_EXAMPLE": (lambda p, g, vs: O.adam_step(p, g, *vs, h["lr"], h["t"]),
                         lambda p, g, vs, i: O.adam_mistakes(p, g, vs, h["lr"], h["t"], i)),
    }[name]
    columns = (example["params"], example["grads"], example["states"],
               example["expected_params"], example["expected_states"], example["mistakes"])
    assert len({len(c) for c in columns}) == 1, name
    for i, (p, g, state, want_p, want_state, wrong) in enumerate(zip(*columns, strict=True)):
        what = f"{name} parameter {i}"
        args = (p.double(), g.double(), _pairs(state))
        assert_mistakes(wrong, mistakes(*args, i), what)
        new_p, new_state = step(*args)
        assert_literal(want_p, new_p, f"{what}, p")
        for j, (literal, value) in enumerate(zip(*(
                (x if isinstance(x, tuple) else (x,)) for x in (want_state, new_state)),
                strict=True)):
            assert_literal(literal, value, f"{what}, state {j}")


@pytest.mark.parametrize("name", ["DESCEND_EXAMPLE", "DESCEND_FUNCTION_EXAMPLE"])
def test_descend_tables(name):
    example = getattr(P, name)
    f, x0, lr, n = example["f"], example["x0"], example["lr"], example["num_steps"]
    assert_literal(example["expected"], O.counting_path(f, x0, lr, n)[0], name)
    assert_mistakes(example["mistakes"], O.descend_mistakes(f, x0, lr, n), name)


def test_find_minimum_table():
    """find_minimum's x is where torch.optim.Adam's float32 steps end; the table's expected is
    the minimum itself, within a tenth of the test's atol (1e-3) of those steps' end, and the
    mistake's x is checked to 1e-5, a hundredth of it (300 float32 steps)."""
    example = P.FIND_MINIMUM_EXAMPLE
    x0, lr, n = example["x0"], example["lr"], example["num_steps"]
    assert_literal(example["expected"], O.adam_path(O.himmelblau_in_dtype, x0, lr, n),
                   "FIND_MINIMUM_EXAMPLE", atol=1e-4)
    assert_mistakes(example["mistakes"], O.find_minimum_mistakes(x0, lr, n),
                    "FIND_MINIMUM_EXAMPLE", atol=1e-5)


def test_every_table_is_checked():
    """A table added to the public module without a check here fails."""
    checked = {"HIMMELBLAU_POINTS_EXAMPLE", "HIMMELBLAU_GRID_EXAMPLE", "MOMENTUM_EXAMPLE",
               "ADAGRAD_EXAMPLE", "RMSPROP_EXAMPLE", "ADAM_EXAMPLE", "DESCEND_EXAMPLE",
               "DESCEND_FUNCTION_EXAMPLE", "FIND_MINIMUM_EXAMPLE"}
    assert {n for n in dir(P) if n.endswith("_EXAMPLE")} == checked

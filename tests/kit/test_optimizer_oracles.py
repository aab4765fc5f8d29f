"""The optim topic's oracles (the steps of tests/public/_mistakes_optim.py) are the formulas
torch.optim computes where the contract agrees with it: SGD with momentum and Adam (eps = 1e-6)
step for step, and `adam_path` torch.optim.Adam's float32 path bit for bit. AdaGrad and RMSProp
with eps outside the square root (the mistake the tests name) are torch.optim's; the
contract's, eps inside, differ from them for tiny gradients. Checked here, in the kit, because
the grader's tests may not construct an optimizer: that imports torch._dynamo into every
grading process."""

from __future__ import annotations

import torch

from tests.public import _mistakes_optim as O

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

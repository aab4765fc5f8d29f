"""Optimization algorithms: momentum, AdaGrad, RMSProp and Adam (D2L §11.3-11.10).

Gradient descent (§11.3) steps against the gradient: x <- x - lr * grad f(x). The optimizers
of chapter 11 keep a *state* per parameter that changes the step:

    momentum (§11.6)   v = momentum * v + g;                    p -= lr * v
    AdaGrad  (§11.7)   s = s + g**2;                            p -= lr * g / sqrt(s + eps)
    RMSProp  (§11.8)   s = gamma * s + (1 - gamma) * g**2;      p -= lr * g / sqrt(s + eps)
    Adam     (§11.10)  v = beta1 * v + (1 - beta1) * g;  s = beta2 * s + (1 - beta2) * g**2
                       p -= lr * (v / (1 - beta1**t)) / (sqrt(s / (1 - beta2**t)) + eps)

where `g` is `p.grad`. As in the book, an update function is `update(params, states,
hyperparams)`: `params` a list of leaf tensors whose `.grad` is set, `states` the list that the
matching `init_*_states(params)` made, `hyperparams` a dict (`lr`, and `momentum`, `gamma` or
`t`). It changes every parameter and its state *in place*, inside `torch.no_grad()`, then zeroes
`p.grad`, as topic 3's `sgd` does. `v = momentum * v + g` on a local name makes a new tensor and
leaves the state where it was: write into the state (`v[:] = ...`, `v.mul_(...).add_(...)`).
The constants `eps = 1e-6`, `beta1 = 0.9` and `beta2 = 0.999` live in the functions, never in
`hyperparams`. AdaGrad and RMSProp put `eps` inside the square root, as the book does (torch.optim
puts it outside: for a tiny gradient the two differ by a factor of ten).

Himmelblau's function f(x, y) = (x**2 + y - 11)**2 + (x + y**2 - 7)**2 has four minima, all with
f = 0. Adam (`find_minimum`, lr=1e-3, 20000 steps, as in the course notes) finds one of them
from each of these starting points:

    start       minimum reached
    (0, 0)      (3.0, 2.0)
    (-1, 0)     (-2.805118, 3.131312)
    (-4, 0)     (-3.779310, -3.283186)
    (4, 0)      (3.584428, -1.848126)

`torchdrill.plot` draws them: `plot_surface(himmelblau)` (the notes' 3-d surface) and
`show_trace_2d(himmelblau, trace)`, a contour plot with the path of an optimizer (§11.3):

    from torchdrill.plot import plot_surface, show_trace_2d
    plot_surface(himmelblau)
    trace = descend(himmelblau, torch.tensor([-1.0, 0.0]), adam,
                    init_adam_states([torch.zeros(2)]), {"lr": 0.1, "t": 1}, 200)
    show_trace_2d(himmelblau, trace)

Only `find_minimum` may use `torch.optim`: everywhere else you write the step yourself.
"""

import torch


def himmelblau(x: torch.Tensor) -> torch.Tensor:
    """Himmelblau's function (the course notes): `(x0**2 + x1 - 11)**2 + (x0 + x1**2 - 7)**2`
    where `x0, x1 = x[..., 0], x[..., 1]`.

    `x` has shape `(..., 2)`: one point `(2,)` gives a 0-d tensor, a batch of points `(n, 2)`
    gives `(n,)`, a grid `(h, w, 2)` gives `(h, w)`. Keep x's dtype; autograd must reach x (no
    `.item()`, no new tensor from numbers). Hint: index the *last* axis (`x[..., 0]`); `x[0]`
    is the first row of a batch, not the first coordinate.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def init_momentum_states(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The velocities of momentum (§11.6.5): a list with one zero tensor per parameter, with
    that parameter's shape, dtype and device (`torch.zeros_like(p)`), each its own tensor."""
    # YOUR CODE HERE
    raise NotImplementedError()


def init_adagrad_states(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """AdaGrad's sums of squared gradients (§11.7.5): one zero tensor per parameter, as
    `init_momentum_states`."""
    # YOUR CODE HERE
    raise NotImplementedError()


def init_rmsprop_states(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """RMSProp's running averages of squared gradients (§11.8.2): one zero tensor per
    parameter, as `init_momentum_states`."""
    # YOUR CODE HERE
    raise NotImplementedError()


def init_adam_states(params: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Adam's two running averages (§11.10.2): a list with one pair `(v, s)` per parameter,
    both zero tensors with the parameter's shape, dtype and device, two separate tensors."""
    # YOUR CODE HERE
    raise NotImplementedError()


def sgd_momentum(params: list[torch.Tensor], states: list[torch.Tensor], hyperparams: dict
                 ) -> None:
    """One step of SGD with momentum (§11.6.5): for each parameter `p` and its velocity `v`,
    `v = momentum * v + g`, then `p -= lr * v`, then zero `p.grad` (g is `p.grad`;
    `hyperparams["lr"]`, `hyperparams["momentum"]`). Returns None.

    Update `v` in place (`v[:] = momentum * v + p.grad`): a new tensor bound to the name `v`
    is lost when the function returns, and the velocity never builds up. Do it all inside
    `with torch.no_grad():`.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def adagrad(params: list[torch.Tensor], states: list[torch.Tensor], hyperparams: dict) -> None:
    """One AdaGrad step (§11.7.5), `eps = 1e-6`: for each parameter `p` and its state `s`,
    `s += g**2`, then `p -= lr * g / sqrt(s + eps)`, then zero `p.grad`. Returns None.

    `eps` goes *inside* the square root, as in the book (`torch.optim.Adagrad` puts it outside;
    for a gradient of 1e-4 that makes the step ten times larger). Update `s` in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def rmsprop(params: list[torch.Tensor], states: list[torch.Tensor], hyperparams: dict) -> None:
    """One RMSProp step (§11.8.2), `eps = 1e-6`: for each parameter `p` and its state `s`,
    `s = gamma * s + (1 - gamma) * g**2`, then `p -= lr * g / sqrt(s + eps)`, then zero
    `p.grad` (`hyperparams["lr"]`, `hyperparams["gamma"]`). Returns None.

    As in `adagrad`, `eps` goes inside the square root and `s` is updated in place.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def adam(params: list[torch.Tensor], states: list[tuple[torch.Tensor, torch.Tensor]],
         hyperparams: dict) -> None:
    """One Adam step (§11.10.2), `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-6`, `t =
    hyperparams["t"]` (this step's number: 1 on the first call). For each parameter `p` and its
    states `(v, s)`:

        v = beta1 * v + (1 - beta1) * g;   s = beta2 * s + (1 - beta2) * g**2
        p -= lr * (v / (1 - beta1**t)) / (sqrt(s / (1 - beta2**t)) + eps)

    then zero `p.grad`. After *every* parameter is updated, `hyperparams["t"] += 1`, once per
    call: all parameters of one step share the same t. This is the step of
    `torch.optim.Adam(lr=lr, eps=1e-6)`. The bias corrections `1 - beta**t` matter most in the
    first steps, while v and s still lean towards their zero start. Returns None.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def descend(f, x0: torch.Tensor, update, states: list, hyperparams: dict,
            num_steps: int) -> torch.Tensor:
    """Run an optimizer on the scalar function `f` from `x0` (§11.3) and return its path: a
    tensor `(num_steps + 1, *x0.shape)` of the iterates, `x0` first, detached.

    Each step evaluates `f(x)`, backpropagates into `x.grad` holding only *this* step's
    gradient (set `x.grad = None` or zero it before `backward()`: backward adds to `.grad`),
    and calls `update([x], states, hyperparams)`, which changes `x`, `states` and
    `hyperparams` in place (the caller's `states` and `hyperparams` are meant to change).
    Work on a copy of x0 (`x0.detach().clone().requires_grad_(True)`), and store a copy of
    each iterate (`x.detach().clone()`): `x` itself changes at every step.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def find_minimum(x0: torch.Tensor, lr: float = 1e-3, num_steps: int = 20000):
    """Minimise `himmelblau` with Adam as the course notes do, and return `(x, f_x)`: x the
    final point `(2,)`, detached, and `f_x = himmelblau(x)` there as a Python float.

    The notes' loop, on a copy of x0 that requires grad (x0 itself is left alone):
    `optimizer = torch.optim.Adam([x], lr=lr)`, then `num_steps` times: `pred = himmelblau(x)`,
    `optimizer.zero_grad()`, `pred.backward()`, `optimizer.step()`. This is the one function
    of the topic that may use torch.optim.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


if __name__ == "__main__":  # in the notebook (the plots inline) or as a script; never when graded
    from torchdrill.plot import plot_surface, show_trace_2d

    try:
        for start in ([0.0, 0.0], [-1.0, 0.0], [-4.0, 0.0], [4.0, 0.0]):
            # the notes take lr=1e-3 for 20000 steps; lr=0.05 for 300 steps ends in the same place
            x, f_x = find_minimum(torch.tensor(start), lr=0.05, num_steps=300)
            print(f"from {start}: x = {[round(v, 6) for v in x.tolist()]}, f(x) = {f_x:.1e}")
        plot_surface(himmelblau)  # the notes' surface: four valleys, each a minimum, f = 0
        trace = descend(himmelblau, torch.tensor([-1.0, 0.0]), adam,
                        init_adam_states([torch.zeros(2)]), {"lr": 0.1, "t": 1}, 200)
        show_trace_2d(himmelblau, trace)  # Adam's path from (-1, 0), as in §11.3's figures
    except NotImplementedError:
        print("Himmelblau's four minima and Adam's path appear here once himmelblau, "
              "find_minimum, init_adam_states, adam and descend are written.")

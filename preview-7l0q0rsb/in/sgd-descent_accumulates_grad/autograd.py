"""Calculus and automatic differentiation (D2L §2.4, §2.5).

Two ways to get a derivative:

- Numerically (§2.4.1): the derivative is the limit of a difference quotient. The *central*
  difference (f(x + h) - f(x - h)) / (2h) has an error that shrinks like h**2; the forward
  difference (f(x + h) - f(x)) / h only like h. For a function of a tensor `x`, perturb one
  entry at a time to get each partial derivative: the gradient has the shape of `x`.
- By autograd (§2.5): mark a tensor with `requires_grad_(True)`, compute a scalar from it, and
  `backward()` (or `torch.autograd.grad`) fills in the gradient. For a non-scalar output `y`,
  autograd computes a vector-Jacobian product v^T J: `y.backward(v)` (§2.5.2).

Good habits these exercises check: leave the caller's tensors alone (work on
`x.detach().clone()`), do not let gradients pile up in someone else's `.grad`, and use
`.detach()` to cut a value out of the graph on purpose (§2.5.3).

The functions `f` the tests pass come from `torchdrill.callables`; import them to try your code.
"""

import torch


def numerical_derivative(f, x: float, h: float = 1e-5) -> float:
    """The derivative of a function of one float `f` at the float `x`, by the central difference
    (f(x + h) - f(x - h)) / (2h) (§2.4.1). Returns a Python float, never a 0-d tensor (convert
    with `float(...)`, as D2L does).

    Hint: the forward difference (f(x + h) - f(x)) / h is less accurate: its error grows like
    h * f''(x) / 2, the central one's like h**2 * f'''(x) / 6.
    """
    ### BEGIN SOLUTION
    return float((f(x + h) - f(x - h)) / (2 * h))
    ### END SOLUTION


def numerical_gradient(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The gradient of a scalar function `f` at the float64 tensor `x` (any shape), by central
    differences: entry i is (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), with e_i the tensor
    that is 1 at entry i and 0 elsewhere. Returns a tensor shaped like `x`, `x`'s dtype.

    `x` may be non-contiguous (a transposed matrix, a slice of a larger tensor): flatten a copy
    with `reshape` or `clone`, never `view` on `x`. The result only needs `x`'s shape and dtype,
    not its memory layout.

    `x` must be exactly unchanged afterwards (bit for bit). Work on a copy
    (`x.detach().clone()`); if you perturb entries in place, restore the saved value
    (`xc[i] = old`) rather than adding and subtracting eps, which leaves rounding errors behind.
    A Python loop over the entries is fine here. `f` returns a 0-d tensor (or a float).
    """
    ### BEGIN SOLUTION
    x_work = x.detach().clone().reshape(-1)
    grad = torch.zeros_like(x_work)
    for i in range(x_work.numel()):
        old = x_work[i].item()
        x_work[i] = old + eps
        f_plus = float(f(x_work.reshape(x.shape)))
        x_work[i] = old - eps
        f_minus = float(f(x_work.reshape(x.shape)))
        x_work[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(x.shape)
    ### END SOLUTION


def autograd_gradient(f, x: torch.Tensor) -> torch.Tensor:
    """The gradient of a scalar function `f` at `x`, by autograd (§2.5.1). Returns a tensor
    shaped like `x`, with `x`'s dtype.

    Leave the caller's `x` alone: no `.grad` appears on it, its `requires_grad` does not change
    (and a `.grad` it already had is not added to). Hint: differentiate with respect to a fresh
    leaf, `x.detach().clone().requires_grad_(True)`.
    """
    ### BEGIN SOLUTION
    x_leaf = x.detach().clone().requires_grad_(True)
    y = f(x_leaf)
    y.backward()
    return x_leaf.grad
    ### END SOLUTION


def vector_jacobian_product(f, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v^T J, where J is the Jacobian of the non-scalar function `f` at `x` and `v` has the shape
    of `f(x)` (§2.5.2). Returns a tensor shaped like `x`. Use autograd: `y.backward(v)`, or
    `torch.autograd.grad(y, x_leaf, grad_outputs=v)`. Leave the caller's `x` alone.

    Hint: `y.sum().backward()` is the special case v = ones; here v is any tensor.
    """
    ### BEGIN SOLUTION
    x_leaf = x.detach().clone().requires_grad_(True)
    y = f(x_leaf)
    y.backward(v)
    return x_leaf.grad
    ### END SOLUTION


def detached_product_gradient(x: torch.Tensor) -> torch.Tensor:
    """The gradient with respect to `x` of sum(u * x), where u = (x * x).detach() (§2.5.3).

    Detaching makes autograd treat u as a constant, so the gradient is u itself, not the
    3 * x**2 you would get from sum(x**3). Compute it with autograd; leave the caller's `x`
    alone. Returns a tensor shaped like `x`.
    """
    ### BEGIN SOLUTION
    x_leaf = x.detach().clone().requires_grad_(True)
    y = x_leaf * x_leaf
    u = y.detach()
    z = u * x_leaf
    z.sum().backward()
    return x_leaf.grad
    ### END SOLUTION


def control_flow_f(a: torch.Tensor) -> torch.Tensor:
    """The function of §2.5.4: b = 2a; double b while b.norm() < 1000; return b if b.sum() > 0,
    otherwise 100 * b. `a` is a nonzero tensor (a scalar or any shape); the result has its shape.
    As D2L's code on a vector or matrix (§2.5 exercises): `b.norm()` is the Euclidean norm of
    all entries and `b.sum()` the sum of all entries. The comparisons are strict: at
    b.norm() == 1000 the loop has stopped, and b.sum() == 0 gives 100 * b.

    Autograd must be able to differentiate through it: use tensor operations on `a` (no
    `.item()` of intermediate values you return, no `torch.tensor(...)` copies, no
    `torch.no_grad()`). The result is d = k * a for some number k > 0 that depends on a, so
    its gradient is k: autograd's a.grad equals d / a.
    """
    ### BEGIN SOLUTION
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c
    ### END SOLUTION


def gradient_check(f, x: torch.Tensor, eps: float = 1e-6) -> float:
    """How far autograd's gradient of the scalar `f` at the float64 tensor `x` is from the
    numerical one: the largest elementwise relative error
    max_i |g_auto[i] - g_num[i]| / max(|g_auto[i]|, |g_num[i]|, 1e-12), as a Python float
    (`float(...)`, not a 0-d tensor).

    Use your `autograd_gradient` and `numerical_gradient` (with the `eps` you are given: a
    larger eps gives a larger error, and the result must show it). A tiny result (say
    below 1e-6) means the two agree; an `f` with a wrong backward gives a large one. Leave the
    caller's `x` alone.
    """
    ### BEGIN SOLUTION
    g_auto = autograd_gradient(f, x)
    g_num = numerical_gradient(f, x, eps)
    denom = torch.maximum(g_auto.abs(), g_num.abs()).clamp_min(1e-12)
    return float(((g_auto - g_num).abs() / denom).max())
    ### END SOLUTION

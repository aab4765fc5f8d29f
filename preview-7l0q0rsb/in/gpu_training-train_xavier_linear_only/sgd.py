"""Linear regression from scratch and minibatch stochastic gradient descent (D2L §3.1-3.3).

The model (§3.1): y_hat = X w + b, with features `X (n, d)`, weights `w (d, 1)` and a bias
`b (1,)`, so predictions have shape `(n, 1)`. The loss of one example is the squared error
(y_hat - y)**2 / 2; training minimises its average over the data.

Minibatch SGD (§3.2): repeatedly draw a minibatch of `batch_size` examples, compute the loss
on it, let autograd fill `w.grad` and `b.grad` with the gradient of the *summed* minibatch
loss, and step every parameter against its gradient: p -= lr * p.grad / batch_size. The update
must not be recorded by autograd (`with torch.no_grad():`), and the gradients must be zeroed
afterwards, because `backward()` adds to `.grad` instead of overwriting it.

The same model also has a closed-form solution (§3.1.1): append a column of ones to X (for b)
and solve the normal equations X^T X theta = X^T y.

Shapes used throughout: features `(n, d)`, labels `(n, 1)`, w `(d, 1)`, b `(1,)`.
"""

import random

import torch


def synthetic_data(w: torch.Tensor, b: float, num_examples: int, noise: float = 0.01):
    """Generate y = X w + b + noise (§3.3.1).

    X has shape `(num_examples, len(w))` with entries drawn from N(0, 1); the noise is drawn
    from N(0, noise**2) (standard deviation `noise`). `w` is a 1-D tensor `(d,)`, `b` a number.
    Returns `(X, y)` with y of shape `(num_examples, 1)`, both with w's dtype.
    """
    ### BEGIN SOLUTION
    X = torch.normal(0, 1, (num_examples, len(w)), dtype=w.dtype)
    y = torch.matmul(X, w) + b
    y += torch.normal(0, noise, y.shape, dtype=w.dtype)
    return X, y.reshape((-1, 1))
    ### END SOLUTION


def data_iter(batch_size: int, features: torch.Tensor, labels: torch.Tensor):
    """A generator of minibatches `(X_batch, y_batch)` (§3.2.1): one pass over the data in a
    random order, each example exactly once, `batch_size` examples per batch except the last,
    which holds what is left (it may be smaller). A new call shuffles anew.

    Hint: shuffle a list of indices (`random.shuffle`, or `torch.randperm`) and `yield`
    `features[batch_indices], labels[batch_indices]`.
    """
    ### BEGIN SOLUTION
    num_examples = len(features)
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i:min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]
    ### END SOLUTION


def linreg(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The linear regression model X @ w + b (§3.2.3): X `(n, d)`, w `(d, 1)`, b `(1,)`;
    returns `(n, 1)`."""
    ### BEGIN SOLUTION
    return torch.matmul(X, w) + b
    ### END SOLUTION


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The squared loss of each example, (y_hat - y)**2 / 2 (§3.2.4), with the shape of `y_hat`.

    Reshape `y` to `y_hat.shape` first: `y` may come as `(n,)` while `y_hat` is `(n, 1)`, and
    `(n, 1) - (n,)` broadcasts to an `(n, n)` matrix of every pair.
    """
    ### BEGIN SOLUTION
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2
    ### END SOLUTION


def sgd(params, lr: float, batch_size: int) -> None:
    """One minibatch SGD step (§3.2.5): for each tensor `p` in `params` (leaves with a `.grad`),
    `p -= lr * p.grad / batch_size` in place, then zero `p.grad` (`p.grad.zero_()`).

    Do the update inside `with torch.no_grad():` so autograd does not record it (an in-place
    change to a leaf that requires grad is an error otherwise). `p = p - ...` is no update at
    all: it only rebinds a local name. Returns None.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()
    ### END SOLUTION


def train_linreg(features: torch.Tensor, labels: torch.Tensor, lr: float = 0.03,
                 num_epochs: int = 3, batch_size: int = 10):
    """Train linear regression by minibatch SGD, as in §3.2.6, and return `(w, b)` detached,
    w of shape `(d, 1)` and b of shape `(1,)`, in the features' dtype.

    Start from w ~ N(0, 0.01**2) (`torch.normal(0, 0.01, ...)`) and b = 0, both with
    `requires_grad=True`. Each epoch: for every minibatch from `data_iter(batch_size, ...)`,
    `l = squared_loss(linreg(X, w, b), y)`, `l.sum().backward()`, `sgd([w, b], lr, batch_size)`.
    With num_epochs=0 you return the starting point.
    """
    ### BEGIN SOLUTION
    d = features.shape[1]
    w = torch.normal(0, 0.01, size=(d, 1), dtype=features.dtype, requires_grad=True)
    b = torch.zeros(1, dtype=features.dtype, requires_grad=True)
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            l = squared_loss(linreg(X, w, b), y)
            l.sum().backward()
            sgd([w, b], lr, batch_size)
    return w.detach(), b.detach()
    ### END SOLUTION


def closed_form_linreg(features: torch.Tensor, labels: torch.Tensor):
    """The least-squares `(w (d, 1), b (1,))` from the normal equations (§3.1.1).

    Append a column of ones to the features for the bias, `X1 = [X, 1]` of shape `(n, d + 1)`,
    solve `(X1^T X1) theta = X1^T y` (e.g. `torch.linalg.solve`), and split theta into w (the
    first d entries) and b (the last). Keep the features' dtype. `torch.linalg.lstsq` is not
    allowed here.
    """
    ### BEGIN SOLUTION
    n, d = features.shape
    ones = torch.ones(n, 1, dtype=features.dtype, device=features.device)
    X1 = torch.cat([features, ones], dim=1)
    y = labels.reshape(n, 1).to(features.dtype)
    theta = torch.linalg.solve(X1.T @ X1, X1.T @ y)
    return theta[:d], theta[d:].reshape(1)
    ### END SOLUTION


def gradient_descent(f, x0: torch.Tensor, lr: float, num_steps: int) -> torch.Tensor:
    """Plain gradient descent on the scalar function `f` (§3.1.1, §12.3): starting from x0,
    `num_steps` times x <- x - lr * grad f(x). Returns the final x (same shape and dtype as x0,
    no graph attached); x0 itself is left unchanged.

    Use autograd for the gradient, on a copy `x0.detach().clone().requires_grad_(True)`;
    update it inside `torch.no_grad()` and zero (or recompute) its gradient every step.
    `torch.optim` is not allowed here.
    """
    ### BEGIN SOLUTION
    x = x0.detach().clone().requires_grad_(True)
    for _ in range(num_steps):
        y = f(x)
        (grad,) = torch.autograd.grad(y, x)
        with torch.no_grad():
            x -= lr * grad
    return x.detach()
    ### END SOLUTION

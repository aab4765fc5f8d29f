"""Functions the course's tests hand to your code.

`numerical_derivative`, `numerical_gradient`, `autograd_gradient`, `vector_jacobian_product`,
`gradient_check` and `gradient_descent` take a function `f` as an argument. The tests pass the
functions below, so you can call them yourself to try your code:

    >>> from torchdrill.callables import cube, sum_of_cubes
    >>> numerical_derivative(cube, 2.0)              # about 3 * 2**2 = 12
    >>> numerical_gradient(sum_of_cubes, torch.tensor([1.0, 2.0], dtype=torch.float64))

Scalar functions of a float (`cube`, `exp`, `sine`, `reciprocal`) accept a Python float and
return one (they also accept tensors). Scalar functions of a tensor return a 0-d tensor; vector
functions return a tensor. Everything here is plain torch: no files, no network, no state.

`States`, `Hyperparams` and the update functions at the end are what optim's tests give its
update functions and `descend`.

Some of them (`sum_of_cubes_by_function`, `square_by_function`,
`shifted_quadratic_by_function`) compute through a custom `torch.autograd.Function`, as a
callable may (the course's conventions): `backward()` and `torch.autograd.grad` differentiate
them, `torch.func` transforms cannot.

`HostBatches` is what gpu_training's tests give `evaluate_accuracy_gpu` and `train_gpu` as data:
batches `(X, y)` that act as if they were on another device than the net until you move them
with `.to(device)`, so a batch or labels left behind fail on a machine without a GPU too. Try
your code with it: `evaluate_accuracy_gpu(net, HostBatches([(X, y)]))`.

`sgd_epochs` is what conv's tests train your `lenet()` with: `sgd_epochs(lenet(), batches, 1,
0.5)` takes one SGD step per batch.

Data iterators are any iterable of `(X, y)` batches. `OneShotBatches` can be read once, as a
generator: what the tests give evaluation functions (`evaluate_accuracy(net,
OneShotBatches(batches))`). `ReiterableBatches` starts a new pass on every `iter()`, as a
DataLoader does, but has no `len()` and no `.dataset`: what training functions may get.
"""

from __future__ import annotations

import collections
import math

import torch

# --------------------------------------------------------------------------- f: float -> float


def cube(x):
    """x**3; derivative 3 * x**2."""
    return x ** 3


def exp(x):
    """e**x (for a float or a tensor); derivative e**x."""
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


def sine(x):
    """sin(x) (for a float or a tensor); derivative cos(x)."""
    return torch.sin(x) if isinstance(x, torch.Tensor) else math.sin(x)


def reciprocal(x):
    """1 / x for x != 0; derivative -1 / x**2."""
    return 1.0 / x


def d2l_quadratic(x):
    """D2L §2.4's example f(x) = 3x**2 - 4x; derivative 6x - 4 (2 at x = 1)."""
    return 3 * x ** 2 - 4 * x


# --------------------------------------------------------------------------- f: tensor -> scalar


def sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    """sum(x**2) over all entries; gradient 2x. Minimum 0 at x = 0."""
    return (x * x).sum()


def sum_of_cubes(x: torch.Tensor) -> torch.Tensor:
    """sum(x**3); gradient 3 * x**2."""
    return (x ** 3).sum()


def sum_of_exps(x: torch.Tensor) -> torch.Tensor:
    """sum(exp(x)); gradient exp(x)."""
    return torch.exp(x).sum()


def log_sum_exp(x: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(x))) over all entries, computed stably; gradient softmax(x)."""
    m = x.max()
    return m + torch.log(torch.exp(x - m).sum())


def square_of_sum_plus_quartic(x: torch.Tensor) -> torch.Tensor:
    """sum(x)**2 + sum(x**4) / 4: every entry's partial derivative depends on the others;
    gradient 2 * sum(x) + x**3."""
    return x.sum() ** 2 + (x ** 4).sum() / 4


def shifted_quadratic(x: torch.Tensor) -> torch.Tensor:
    """sum((x - 3)**2); gradient 2 * (x - 3). Minimum 0 at x = 3 (every entry)."""
    return ((x - 3) ** 2).sum()


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """The Rosenbrock function of a 1-D x with at least 2 entries:
    sum(100 * (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2). Minimum 0 at x = 1 (every entry)."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


# --------------------------------------------------------------------------- f: tensor -> tensor


def square(x: torch.Tensor) -> torch.Tensor:
    """x * x, elementwise (same shape as x)."""
    return x * x


def polynomial_features(x: torch.Tensor) -> torch.Tensor:
    """x, x**2 and x**3 stacked on a new last axis: shape `x.shape + (3,)`."""
    return torch.stack([x, x ** 2, x ** 3], dim=-1)


def cumsum_squared(x: torch.Tensor) -> torch.Tensor:
    """cumsum(x.reshape(-1))**2, a 1-D tensor with x.numel() entries: output i depends on
    inputs 0..i, so the Jacobian is lower triangular (not symmetric)."""
    return torch.cumsum(x.reshape(-1), dim=0) ** 2


def outer_with_weights(x: torch.Tensor) -> torch.Tensor:
    """`(n, 3)` matrix whose row i is x[i] * [1, 2, 3] + x.sum() for a 1-D x of n entries."""
    weights = torch.arange(1, 4, dtype=x.dtype, device=x.device)
    return x.reshape(-1, 1) * weights + x.sum()


# --------------------------------------------------------------------------- wrong gradients
# Functions whose autograd gradient is deliberately wrong: a gradient check must notice.


class _HalfGradSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x  # the true gradient is 2 * x


class _OneWrongGradCube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad = 3 * x ** 2
        flat = grad.reshape(-1).clone()
        flat[0] = flat[0] * 2  # only the first entry is wrong
        return grad_output * flat.reshape(x.shape)


def sum_of_squares_with_wrong_gradient(x: torch.Tensor) -> torch.Tensor:
    """sum(x**2), but autograd reports x instead of 2x as its gradient."""
    return _HalfGradSquare.apply(x).sum()


def sum_of_cubes_with_one_wrong_partial(x: torch.Tensor) -> torch.Tensor:
    """sum(x**3), but autograd reports twice the true partial derivative for the first entry
    (all others are right)."""
    return _OneWrongGradCube.apply(x).sum()


# --------------------------------------------------------------------------- custom Functions
# Right gradients through a custom torch.autograd.Function (forward and backward written out,
# no setup_context): `backward()` and `torch.autograd.grad` use them; `torch.func` refuses them.


class _Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x ** 2


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x


def sum_of_cubes_by_function(x: torch.Tensor) -> torch.Tensor:
    """sum(x**3) through a custom autograd Function; gradient 3 * x**2."""
    return _Cube.apply(x).sum()


def square_by_function(x: torch.Tensor) -> torch.Tensor:
    """x * x, elementwise, through a custom autograd Function; v^T J = 2 * x * v."""
    return _Square.apply(x)


def shifted_quadratic_by_function(x: torch.Tensor) -> torch.Tensor:
    """sum((x - 3)**2) through a custom autograd Function; gradient 2 * (x - 3)."""
    return _Square.apply(x - 3).sum()


# --------------------------------------------------------------------------- parameters


class Parameters(list):
    """A list of leaf tensors that require gradients and already hold a `.grad`, as after
    `loss.backward()` in D2L §3.2; what the tests give `sgd`. `originals` keeps the tensors it
    was made with, so a test can see whether they were updated in place."""

    def __init__(self, tensors):
        super().__init__(tensors)
        self.originals = list(tensors)


def parameters_with_grads(values, grads) -> Parameters:
    """`Parameters` holding copies of `values` (leaves, requires_grad) whose `.grad` are copies
    of `grads`."""
    params = []
    for value, grad in zip(values, grads, strict=True):
        p = value.detach().clone().requires_grad_(True)
        p.grad = grad.detach().clone().to(p.dtype)
        params.append(p)
    return Parameters(params)


# --------------------------------------------------------------------------- optimizer steps
# What optim's tests give the update functions (`sgd_momentum`, `adagrad`, `rmsprop`, `adam`)
# and `descend`. Your code changes the states and hyperparameters in place, so they are made in
# the process that runs your code and stay there, where the tests read them back; try your code
# with plain lists and dicts: they behave the same.


class States(list):
    """Optimizer states, one entry per parameter (a tensor, or Adam's pair `(v, s)`), as
    `init_*_states(params)` makes them. `entries` is a plain list of the entries now."""

    @property
    def entries(self) -> list:
        return list(self)


def optimizer_states(values) -> States:
    """`States` holding copies of `values`: tensors, or `(v, s)` pairs of tensors."""
    return States(tuple(t.detach().clone() for t in v) if isinstance(v, tuple | list)
                  else v.detach().clone() for v in values)


class Hyperparams(collections.UserDict):
    """A dict of hyperparameters (`hyperparams["lr"]`, `hyperparams["t"] += 1`, `**hyperparams`
    all work as with a dict). `data` is a plain dict of what it holds now."""


def set_grads(params, grads) -> None:
    """Give `params[i]` the gradient `grads[i]` (a copy), as a new `backward()` would after the
    update zeroed the last one: what the tests do between two steps."""
    for p, grad in zip(params, grads, strict=True):
        p.grad = grad.detach().clone().to(p.dtype)


def gradient_descent_update(params, states, hyperparams) -> None:
    """Plain gradient descent as an update function: `p -= lr * p.grad`, then `p.grad` zeroed
    (`hyperparams["lr"]`; `states` unused)."""
    with torch.no_grad():
        for p in params:
            p -= hyperparams["lr"] * p.grad
            p.grad.zero_()


def counting_update(params, states, hyperparams) -> None:
    """An update function whose step depends on the whole run: `states[i] += p.grad`, then
    `p -= lr * (p.grad + states[i]) / t` with `t = hyperparams["t"]`, then `hyperparams["t"] +=
    1`. It leaves `p.grad` as it is, so a gradient left from an earlier step shows in the
    path; `states` is `[torch.zeros_like(x0)]`."""
    t = hyperparams["t"]
    with torch.no_grad():
        for p, s in zip(params, states, strict=True):
            s += p.grad
            p -= hyperparams["lr"] * (p.grad + s) / t
    hyperparams["t"] = t + 1


# --------------------------------------------------------------------------- batches on the host
# What the device tests of gpu_training hand to `evaluate_accuracy_gpu` and `train_gpu`. On a
# machine with a GPU, a batch left on the CPU while the net is on the GPU makes torch raise
# ("Expected all tensors to be on the same device"). On a CPU-only machine every tensor is on
# the CPU and nothing would raise, so these batches act as if they lived on another device
# until they are moved: `X.to(device)` (or `.cuda()`, `.cpu()`) returns an ordinary tensor;
# using an unmoved batch together with the net's parameters or with a moved tensor raises,
# naming the batch. Reading its shape, length or dtype is fine, and so is computing with it
# alone (the result stays where it is). Its `.device` reports `meta`, a device that is not
# the net's, so code that moves a batch only `if X.device != device` moves it.

_MOVES = {torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu}
_DEVICE_OF = torch.Tensor.device.__get__
_HOST_DEVICE = torch.device("meta")


def _moves_device(func, args, kwargs) -> bool:
    """Whether this call of a moving function names a device (`.to(torch.float64)` does not)."""
    if func in (torch.Tensor.cuda, torch.Tensor.cpu):
        return True
    if "device" in kwargs:
        return True
    return func is torch.Tensor.to and any(not isinstance(a, torch.dtype) for a in args[1:])


def _leaves(value):
    if isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


class HostTensor(torch.Tensor):
    """A tensor of a batch that has not been moved to the device yet (see above)."""

    _what: str
    _log: list

    @staticmethod
    def wrap(t: torch.Tensor, what: str, log: list) -> HostTensor:
        out = t.as_subclass(HostTensor)
        out._what, out._log = what, log
        return out

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func == _DEVICE_OF:
            return _HOST_DEVICE
        leaves = list(_leaves(args)) + list(_leaves(kwargs))
        host = [t for t in leaves if isinstance(t, HostTensor)]
        with torch._C.DisableTorchFunctionSubclass():
            if func in _MOVES and _moves_device(func, args, kwargs):
                out = func(*args, **kwargs)
                return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out
            others = [t for t in leaves if isinstance(t, torch.Tensor)
                      and not isinstance(t, HostTensor) and t.dim() > 0]
            if others and host:
                what = host[0]._what
                if what not in host[0]._log:
                    host[0]._log.append(what)
                name = getattr(func, "__name__", str(func))
                raise RuntimeError(
                    f"{what} stayed on the CPU while the net is on the device: it met the "
                    f"net's parameters or a tensor already moved (in {name}). Move every batch "
                    "X and its labels y to the device before using them: "
                    "X, y = X.to(device), y.to(device) (§5.6.2).")
            out = func(*args, **kwargs)
        if not host:
            return out
        what, log = host[0]._what, host[0]._log
        if isinstance(out, torch.Tensor) and not isinstance(out, HostTensor):
            return HostTensor.wrap(out, what, log)
        if isinstance(out, tuple | list) and all(isinstance(o, torch.Tensor) for o in out):
            return type(out)(HostTensor.wrap(o, what, log) for o in out)
        return out


class HostBatches:
    """An iterable of batches `(X, y)` that must be moved to the device before use: each pass
    yields the same batches as `HostTensor`s. `left_behind` lists the tensors that were used
    without being moved ("the batch X", "the labels y")."""

    def __init__(self, batches):
        self.batches = [(X, y) for X, y in batches]
        self.left_behind: list[str] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for X, y in self.batches:
            yield (HostTensor.wrap(X, "a batch X", self.left_behind),
                   HostTensor.wrap(y, "the labels y of a batch", self.left_behind))


# --------------------------------------------------------------------------- training a net
# What conv's tests train your `lenet()` with, after setting its weights themselves.


def sgd_epochs(net: torch.nn.Module, train_iter, num_epochs: int, lr: float) -> None:
    """Train `net` in place for `num_epochs` passes over `train_iter`: each batch `(X, y)`, in
    order, is one minibatch SGD step `p -= lr * p.grad` on the mean cross-entropy of
    `net(X)`, from the weights `net` has (the steps of D2L's `train_ch6`, §6.6.2, without
    its initialisation and evaluation)."""
    net.train()
    for _ in range(num_epochs):
        for X, y in train_iter:
            loss = torch.nn.functional.cross_entropy(net(X), y)
            net.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in net.parameters():
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
# --------------------------------------------------------------------------- data iterators

ONE_SHOT_READ_AGAIN = (
    "this data_iter is a one-shot iterator (as a generator is) and was already read to its "
    "end: an evaluation function reads its data once, so a one-shot iterator works. Count the "
    "examples (y.numel()) and the correct predictions in the same single loop, without a "
    "first pass (len(list(data_iter)), sum(...) over it) and without iterating twice")


class OneShotBatches:
    """Batches `(X, y)` that can be read once, as a generator's: `iter()` returns the iterator
    itself, and once its last batch has been read, reading again (a second loop) raises
    RuntimeError, where a generator would silently yield nothing. No `len()`."""

    def __init__(self, batches):
        self._batches = iter([(X, y) for X, y in batches])
        self._ended = False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._batches)
        except StopIteration:
            if self._ended:
                raise RuntimeError(ONE_SHOT_READ_AGAIN) from None
            self._ended = True
            raise


class ReiterableBatches:
    """Batches `(X, y)` that every `iter()` yields again from the first, as a DataLoader does,
    with no `len()` and no `.dataset`: count examples from the batches (`y.numel()`)."""

    def __init__(self, batches):
        self.batches = [(X, y) for X, y in batches]

    def __iter__(self):
        return iter(self.batches)

"""Convolutions and LeNet (D2L §6.2-6.6).

A convolutional layer slides a small kernel `K (kh, kw)` over an image `X (h, w)`: the output
at `(i, j)` is the sum of the products of K with the window of X whose top-left corner is
`(i, j)`,

    Y[i, j] = sum over a < kh, b < kw of X[i + a, j + b] * K[a, b]        (§6.2.1)

Deep learning calls this a convolution, but it is a *cross-correlation*: the kernel is not
flipped. The windows must fit inside X, so without padding the output shrinks to
`(h - kh + 1, w - kw + 1)`.

Padding adds p rows (columns) of zeros on *each* side, and a stride s moves the window s steps
at a time (§6.3): along one dimension of size n, a kernel of size k gives
`(n + 2 * p - k) // s + 1` outputs.

With several input channels, X is `(c, h, w)` and K `(c, kh, kw)`: each channel is
cross-correlated with its own kernel and the results are *summed* into one output channel.
With several output channels, K is `(c_out, c, kh, kw)`: one such sum per output channel,
stacked (§6.4).

Pooling (§6.5) slides a `(ph, pw)` window the same way but takes the window's maximum (`max`)
or mean (`avg`) instead of a sum of products.

LeNet (§6.6) stacks two convolution blocks (convolution, sigmoid, average pooling) and three
fully connected layers; each 28 x 28 digit becomes 10 logits.

Sizes (`kernel_size`, `pool_size`, `padding`, `stride`) are each an int (the same for height
and width) or an `(h, w)` pair: `as_pair` turns either into a pair. Results keep the dtype of
X (float64 in, float64 out).

You may not call torch's convolutions or poolings (`F.conv2d`, `nn.Conv2d`, `torch.conv2d`,
`F.max_pool2d`, `F.avg_pool2d`, `nn.MaxPool2d`, `nn.AvgPool2d`, their adaptive forms and
other dimensions) or `torch.optim` in `corr2d`, `corr2d_multi_in`, `corr2d_multi_in_out`,
`pool2d`, `Conv2D` and `learn_kernel`: build them from slicing, `*`, `sum`, `max` and `mean`.
`Tensor.unfold` and `F.unfold` (which only cut out the windows) are allowed. `lenet` builds
its net from `nn.Conv2d`, `nn.AvgPool2d` and friends.
"""

import torch
from torch import nn


def as_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """`size` as an `(h, w)` pair: `3` -> `(3, 3)`, `(2, 3)` -> `(2, 3)`. Given, not graded."""
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The 2-D cross-correlation of `X (h, w)` with the kernel `K (kh, kw)`, no padding, stride
    1: `(h - kh + 1, w - kw + 1)`, in X's dtype (§6.2.1).

    Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum(). Do not flip K (that would be a true
    convolution). Hint: D2L's loop fills `torch.zeros(...)`; give it `dtype=X.dtype`, or a
    float64 X comes back as float32. Differentiable in X and K (autograd through your code).
    """
    ### BEGIN SOLUTION
    kh, kw = K.shape
    Y = torch.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1), dtype=X.dtype, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum()
    return Y
    ### END SOLUTION


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Multiple input channels: `X (c, h, w)`, `K (c, kh, kw)` -> `(h - kh + 1, w - kw + 1)`,
    the *sum* over the channels of `corr2d(X[i], K[i])` (§6.4.1)."""
    ### BEGIN SOLUTION
    return sum(corr2d(x, k) for x, k in zip(X, K, strict=True))
    ### END SOLUTION


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Multiple output channels: `X (c, h, w)`, `K (c_out, c, kh, kw)` ->
    `(c_out, h - kh + 1, w - kw + 1)`; output channel o is `corr2d_multi_in(X, K[o])`
    (§6.4.2). Stack the output channels; never add them together."""
    ### BEGIN SOLUTION
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)
    ### END SOLUTION


def conv_output_shape(size: tuple[int, int], kernel_size: int | tuple[int, int],
                      padding: int | tuple[int, int] = 0,
                      stride: int | tuple[int, int] = 1) -> tuple[int, int]:
    """The `(h, w)` output of a convolution of an input of `size (h, w)`, as `nn.Conv2d`
    computes it: `(n + 2 * p - k) // s + 1` per dimension (§6.3), as a tuple of Python ints.

    `padding` rows are added at the top *and* at the bottom (columns on the left and the
    right), hence `2 * p`.
    """
    ### BEGIN SOLUTION
    (nh, nw), (kh, kw) = as_pair(size), as_pair(kernel_size)
    (ph, pw), (sh, sw) = as_pair(padding), as_pair(stride)
    return ((nh + 2 * ph - kh) // sh + 1, (nw + 2 * pw - kw) // sw + 1)
    ### END SOLUTION


def pool2d(X: torch.Tensor, pool_size: int | tuple[int, int], mode: str = "max") -> torch.Tensor:
    """Max or average pooling of `X (h, w)` with a `pool_size (ph, pw)` window, stride 1, no
    padding: `(h - ph + 1, w - pw + 1)` in X's dtype (§6.5.1).

    `mode="max"` takes each window's maximum, `mode="avg"` its mean (the sum over ph * pw
    entries); any other mode raises `ValueError`. The window moves one step at a time, so
    windows overlap (a stride equal to the window is a different layer).
    """
    ### BEGIN SOLUTION
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', not {mode!r}")
    ph, pw = as_pair(pool_size)
    Y = torch.zeros((X.shape[0] - ph + 1, X.shape[1] - pw + 1), dtype=X.dtype, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + ph, j:j + pw]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y
    ### END SOLUTION


class Conv2D(nn.Module):
    """A convolutional layer with one input and one output channel (§6.2.2): parameters
    `weight (kh, kw)` and `bias (1,)` (`nn.Parameter`s, any initial values), and
    `forward(x) = corr2d(x, weight) + bias` for `x (h, w)`."""

    def __init__(self, kernel_size: int | tuple[int, int]):
        super().__init__()
        ### BEGIN SOLUTION
        self.weight = nn.Parameter(torch.rand(as_pair(kernel_size)))
        self.bias = nn.Parameter(torch.zeros(1))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return corr2d(x, self.weight) + self.bias
        ### END SOLUTION


def learn_kernel(X: torch.Tensor, Y: torch.Tensor, kernel_size: int | tuple[int, int],
                 num_epochs: int = 10, lr: float = 3e-2) -> torch.Tensor:
    """Learn the kernel that maps `X (h, w)` to `Y` by gradient descent (§6.2.4): returns the
    kernel `(kh, kw)`, detached, in X's dtype.

    The kernel starts at zeros (`requires_grad=True`). Each epoch computes the loss
    `((corr2d(X, K) - Y) ** 2).sum()`, backpropagates, and takes one step
    `K -= lr * K.grad` (inside `torch.no_grad()`), then zeroes `K.grad`: backward adds to
    `.grad`, so without zeroing every step would use the sum of all earlier gradients.
    """
    ### BEGIN SOLUTION
    K = torch.zeros(as_pair(kernel_size), dtype=X.dtype, device=X.device, requires_grad=True)
    for _ in range(num_epochs):
        loss = ((corr2d(X, K) - Y) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            K -= lr * K.grad
            K.grad.zero_()
    return K.detach()
    ### END SOLUTION


def lenet() -> nn.Sequential:
    """The book's LeNet-5 (§6.6.1) as one `nn.Sequential`, mapping `(n, 1, 28, 28)` to `(n, 10)`:

        Conv2d(1, 6, kernel_size=5, padding=2), Sigmoid, AvgPool2d(kernel_size=2, stride=2),
        Conv2d(6, 16, kernel_size=5), Sigmoid, AvgPool2d(kernel_size=2, stride=2), Flatten,
        Linear(400, 120), Sigmoid, Linear(120, 84), Sigmoid, Linear(84, 10)

    The first convolution's padding keeps 28 x 28; after the second block each image is
    16 channels of 5 x 5, so the first Linear layer has 16 * 5 * 5 = 400 inputs. Use the
    original sigmoids and average pooling (not ReLU or max pooling), and no Lazy modules (their
    parameters do not exist until the first forward pass).
    """
    ### BEGIN SOLUTION
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    ### END SOLUTION

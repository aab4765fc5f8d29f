"""Data manipulation and linear algebra with tensors (D2L §2.1, §2.3).

A tensor is an n-dimensional array with a shape, a dtype and a memory layout. This exercise
practises the operations the rest of the course is built from:

- creating and reshaping tensors (`torch.arange`, `reshape`, `view`) and knowing when a result
  shares memory with its input (a *view*) and when it is a *copy* (§2.1.1, §2.1.5);
- elementwise operations and broadcasting: a tensor of shape `(n, 1)` combined with one of
  shape `(1, m)` behaves like two `(n, m)` tensors (§2.1.3, §2.1.4);
- reductions along an axis, with or without `keepdim=True` (§2.3.6, §2.3.7);
- indexing with integer tensors (`Y_hat[rows, cols]`), norms and matrix products (§2.3.8-10).

Shapes: a matrix `A` is `(n, m)`; a batch of points `X` is `(n, d)`, one point per row; class
labels `y` are an int64 vector `(n,)`; scores `Y_hat` are `(n, q)`, one column per class.

Write every function with tensor operations, no Python loops over elements: a loop over a
tensor runs thousands of times slower than the same operation done by broadcasting.
Keep the dtype of float inputs (float32 or float64) and never modify an argument.
"""

import torch


def arange_grid(rows: int, cols: int) -> torch.Tensor:
    """A float32 matrix of shape `(rows, cols)` holding 0, 1, ..., rows*cols - 1, row by row.

    Example: `arange_grid(2, 3)` is `[[0., 1., 2.], [3., 4., 5.]]`.
    Hint (§2.1.1): `torch.arange` counts (it gives int64 unless you pass a dtype); `reshape`
    arranges a flat tensor into rows, filling the first row first.
    """
    ### BEGIN SOLUTION
    return torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    ### END SOLUTION


def row_normalize(A: torch.Tensor) -> torch.Tensor:
    """`A (n, m)` with each row divided by that row's sum; returns `(n, m)`, rows summing to 1.

    Every row of A has a positive sum. Keep A's dtype; do not modify A.
    Hint (§2.3.7): `A.sum(dim=1)` has shape `(n,)` and broadcasts against the *columns* of A;
    `A.sum(dim=1, keepdim=True)` has shape `(n, 1)` and broadcasts against the rows.
    """
    ### BEGIN SOLUTION
    return A / A.sum(dim=1, keepdim=True)
    ### END SOLUTION


def pairwise_sq_dists(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between the rows of `X (n, d)` and the rows of `Y (m, d)`.

    Returns `D (n, m)` with `D[i, j] = sum_k (X[i, k] - Y[j, k])**2`.
    No Python loops and no `torch.cdist`: broadcast instead (§2.1.4). `X[:, None, :]` has shape
    `(n, 1, d)` and `Y[None, :, :]` has shape `(1, m, d)`; their difference is `(n, m, d)`.
    (Expanding |x - y|^2 = |x|^2 + |y|^2 - 2 x.y is also fine.)
    """
    ### BEGIN SOLUTION
    diff = X.unsqueeze(1) - Y.unsqueeze(0)
    return (diff * diff).sum(dim=2)
    ### END SOLUTION


def lp_norm(x: torch.Tensor, p: float) -> torch.Tensor:
    """The Lp norm `(sum_i |x_i|**p) ** (1/p)` of a 1-D tensor `x`, for a float `p >= 1`.

    Returns a 0-d tensor of x's dtype. No `torch.norm`, `Tensor.norm` or `torch.linalg`.
    Hint (§2.3.11): mind the absolute value: for odd p, `x**p` is negative for negative x.
    """
    ### BEGIN SOLUTION
    return (x.abs() ** p).sum() ** (1.0 / p)
    ### END SOLUTION


def frobenius_norm(A: torch.Tensor) -> torch.Tensor:
    """The Frobenius norm `sqrt(sum_ij A_ij**2)` of a matrix `A`; returns a 0-d tensor.

    No `torch.norm`, `Tensor.norm` or `torch.linalg` (§2.3.11).
    """
    ### BEGIN SOLUTION
    return torch.sqrt((A * A).sum())
    ### END SOLUTION


def matmul(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """The matrix product of `A (n, k)` and `B (k, m)`, shape `(n, m)`, from broadcasting and sums.

    `C[i, j] = sum_t A[i, t] * B[t, j]` (§2.3.10). Not allowed: `@`, `torch.matmul`, `mm`, `mv`,
    `bmm`, `dot`, `inner`, `einsum`, `tensordot`, `torch.linalg`, `F.linear`.
    Hint: `A[:, :, None]` is `(n, k, 1)` and `B[None, :, :]` is `(1, k, m)`; multiply, then sum
    over the shared axis.
    """
    ### BEGIN SOLUTION
    return (A.unsqueeze(2) * B.unsqueeze(0)).sum(dim=1)
    ### END SOLUTION


def flatten_view(X: torch.Tensor) -> torch.Tensor:
    """A 1-D *view* of a contiguous tensor `X`: it shares X's memory, so writing into the result
    changes X (§2.1.5).

    Hint: `view` and `reshape` of a contiguous tensor return views; `clone()` (or anything that
    makes a new tensor) does not.
    """
    ### BEGIN SOLUTION
    return X.view(-1)
    ### END SOLUTION


def flatten_copy(X: torch.Tensor) -> torch.Tensor:
    """A 1-D *copy* of `X` (any layout, contiguous or not), in row-major order, sharing no memory
    with X: writing into the result leaves X unchanged (§2.1.5).

    Hint: `reshape` returns a view when it can (a contiguous X) and a copy otherwise, so it is
    not enough on its own; `clone()` always copies.
    """
    ### BEGIN SOLUTION
    return X.reshape(-1).clone()
    ### END SOLUTION


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot encoding of the int64 labels `y (n,)`: a float32 `(n, num_classes)` matrix whose
    row i is 1 in column `y[i]` and 0 elsewhere (§3.4.1). No `F.one_hot`.

    Hint: compare `y[:, None]` with `torch.arange(num_classes)` by broadcasting, then convert
    the booleans to float32.
    """
    ### BEGIN SOLUTION
    return (y.reshape(-1, 1) == torch.arange(num_classes, device=y.device)).to(torch.float32)
    ### END SOLUTION


def pick(Y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """From scores `Y_hat (n, q)` and int64 labels `y (n,)`, the vector `(n,)` of `Y_hat[i, y[i]]`
    (the score each example gives its true class, §3.4.6).

    No Python loops. Hint: index with two integer tensors, `Y_hat[rows, y]`, where `rows` is
    `torch.arange(n)`; `Y_hat[:, y]` is not it (that is `(n, n)`).
    """
    ### BEGIN SOLUTION
    return Y_hat[torch.arange(Y_hat.shape[0], device=Y_hat.device), y]
    ### END SOLUTION

"""The mistakes the tensor_ops tests recognise (§2.1, §2.3), and the words that name them.

Both the public tests (which you have) and the course's other tests import these, so a mistake
reads the same wherever it is caught. Each `*_mistakes(...)` returns {message: the value that
mistake returns for these inputs}, for `grader.checks.assert_close(..., mistakes=...)`; each
`expect_*(...)` fails with the mistake's message when a result shows it.
"""

from __future__ import annotations

import torch

from grader.checks import expect_tensor, in_dtype, max_abs

BROADCAST = "must match the size of tensor"  # torch's broadcasting error
KEEPDIM = ("divide by A.sum(dim=1, keepdim=True): without keepdim the (n,) row sums broadcast "
           "against the columns, so entry (i, j) is divided by row j's sum (§2.3.7)")
SIGNED_ROWS = ("a row may hold negative entries as long as its sum is positive: divide each row "
               "by its sum, A.sum(dim=1, keepdim=True), not by the sum of its absolute values "
               "(an L1 norm, as F.normalize(A, p=1, dim=1) computes) (§2.3.7).")


def expect_no_python_loops(student, function: str, advice: str) -> None:
    """Fail when `function` (or a helper it calls) has a for/while loop or a comprehension."""
    loops = student.python_loops(function)
    if loops:
        where = ", ".join(f"{kind} at line {line}" for kind, line in loops)
        raise AssertionError(f"{function} uses Python loops ({where}). {advice}")


# --------------------------------------------------------------------------- arange_grid


def expect_float32(out, what: str) -> torch.Tensor:
    out = expect_tensor(out, what)
    if out.dtype != torch.float32:
        hint = (" torch.arange gives int64 unless you pass dtype=torch.float32."
                if not out.dtype.is_floating_point else "")
        raise AssertionError(f"{what} has dtype {out.dtype} but should be torch.float32.{hint}")
    return out


def expect_grid_shape(out: torch.Tensor, rows: int, cols: int, what: str) -> None:
    """Name a grid whose rows and columns are swapped."""
    if tuple(out.shape) == (cols, rows) and rows != cols:
        raise AssertionError(f"{what} has shape {tuple(out.shape)}: rows and columns are "
                             f"swapped; it should be ({rows}, {cols}).")


def arange_grid_mistakes(rows: int, cols: int) -> dict[str, torch.Tensor]:
    column_major = torch.arange(rows * cols, dtype=torch.float32).reshape(cols, rows).T
    return {"the numbers run down the columns; they should fill the first row first "
            "(row-major order: reshape(rows, cols), no transpose).": column_major}


# --------------------------------------------------------------------------- row_normalize


def row_normalize_mistakes(A: torch.Tensor) -> dict[str, torch.Tensor]:
    A64 = A.double()
    mistakes = {
        "each column sums to 1, not each row: divide by the row sums (dim=1), not the "
        "column sums (dim=0).": A64 / A64.sum(0, keepdim=True),
        "the whole matrix sums to 1: divide each row by its own sum (dim=1, keepdim=True), "
        "not by the sum of all entries.": A64 / A64.sum(),
    }
    if A.shape[0] == A.shape[1]:
        mistakes[f"the row sums broadcast across the wrong axis: {KEEPDIM}."] = A64 / A64.sum(1)
    return in_dtype(mistakes, A.dtype)


def signed_row_normalize_mistakes(A: torch.Tensor) -> dict[str, torch.Tensor]:
    """row_normalize_mistakes, and for rows with negative entries the sum of |entries|."""
    A64 = A.double()
    return in_dtype({SIGNED_ROWS: A64 / A64.abs().sum(1, keepdim=True),
                     **row_normalize_mistakes(A)}, A.dtype)


# --------------------------------------------------------------------------- pairwise_sq_dists


PAIRWISE_LOOPS = ("Vectorise it by broadcasting: X[:, None, :] - Y[None, :, :] is (n, m, d) in "
                  "one operation (§2.1.4); a Python loop runs once per pair and is orders of "
                  "magnitude slower on real data.")


def oracle_sq_dists(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    diff = X.double()[:, None, :] - Y.double()[None, :, :]
    return (diff * diff).sum(2)


def sq_dists_scale(X: torch.Tensor, Y: torch.Tensor) -> float:
    """What the rounding of |x|^2 + |y|^2 - 2 x.y grows with (d enters through the sums)."""
    sq = lambda Z: float((Z.double() ** 2).sum(1).max()) if Z.numel() else 0.0  # noqa: E731
    return sq(X) + sq(Y) + 1.0


def sq_dists_mistakes(X: torch.Tensor, Y: torch.Tensor) -> dict[str, torch.Tensor]:
    X64, Y64 = X.double(), Y.double()
    xx, yy = (X64 ** 2).sum(1)[:, None], (Y64 ** 2).sum(1)[None, :]
    xy = (X64[:, None, :] * Y64[None, :, :]).sum(2)
    true = oracle_sq_dists(X, Y)
    return in_dtype({
        "the cross term is missing: |x - y|^2 = |x|^2 + |y|^2 - 2 x.y, not |x|^2 + |y|^2."
            : (xx + yy),
        "the cross term has the wrong sign: |x - y|^2 = |x|^2 + |y|^2 - 2 x.y.": xx + yy + 2 * xy,
        "these are distances, not squared distances: drop the square root.": true.sqrt(),
        "the differences were summed before squaring: square each coordinate's difference, "
        "then sum over the coordinates.": (X64[:, None, :] - Y64[None, :, :]).sum(2) ** 2,
    }, X.dtype)


# --------------------------------------------------------------------------- lp_norm


ODD_P = ("the absolute value is missing: for odd (or fractional) p, x**p is negative (or nan) "
         "for negative entries; use x.abs() ** p (§2.3.11).")


def lp_mistakes(x: torch.Tensor, p: float) -> dict[str, torch.Tensor]:
    x64 = x.double()
    return in_dtype({
        ODD_P: (x64 ** p).sum() ** (1 / p),
        "the 1/p-th root is missing: the norm is (sum |x_i|^p) ** (1/p).": (x64.abs() ** p).sum(),
        "the root is taken before summing: the norm is (sum |x_i|^p) ** (1/p), not "
        "sum |x_i|.": ((x64.abs() ** p) ** (1 / p)).sum(),
    }, x.dtype)


# --------------------------------------------------------------------------- frobenius_norm


def frobenius_mistakes(A: torch.Tensor) -> dict[str, torch.Tensor]:
    A64 = A.double()
    return in_dtype({
        "the square root is missing: ||A||_F = sqrt(sum_ij A_ij^2).": (A64 ** 2).sum(),
        "this is the sum of absolute values (an L1 norm); the Frobenius norm is "
        "sqrt(sum_ij A_ij^2).": A64.abs().sum(),
        "one norm per row was returned; the Frobenius norm is one number over all "
        "entries.": (A64 ** 2).sum(1).sqrt(),
        "one norm per column was returned; the Frobenius norm is one number over "
        "all entries.": (A64 ** 2).sum(0).sqrt(),
    }, A.dtype)


# --------------------------------------------------------------------------- matmul


MATMUL_HINTS = {BROADCAST: "A[:, :, None] is (n, k, 1) and B[None, :, :] is (1, k, m): "
                           "multiply them, then sum over dim=1 (§2.3.10)."}


def matmul_mistakes(A: torch.Tensor, B: torch.Tensor) -> dict[str, torch.Tensor]:
    A64, B64 = A.double(), B.double()
    mistakes = {
        "the result is transposed: C[i, j] = sum_t A[i, t] * B[t, j] has shape (n, m).":
            (A64 @ B64).T,
    }
    if A.shape == B.shape:
        mistakes["this is the elementwise (Hadamard) product A * B; the matrix product sums "
                 "A[i, t] * B[t, j] over t (§2.3.10)."] = A64 * B64
    return in_dtype(mistakes, A.dtype)


def matmul_scale(A: torch.Tensor, B: torch.Tensor) -> float:
    """What a correct product's rounding grows with: a sum of k products."""
    return A.shape[1] * max_abs(A) * max_abs(B)


# --------------------------------------------------------------------------- flatten_view


def expect_view_of(out: torch.Tensor, X: torch.Tensor, what: str) -> None:
    """Fail unless `out` (1-D, X's values) shares X's memory: a write into it shows in X."""
    if out.data_ptr() != X.data_ptr():
        raise AssertionError(f"{what} does not share memory with X: it is a copy. Return a view "
                             "(X.view(-1) or X.reshape(-1)), without clone() or other copies.")
    out[-1] = 12345.0
    if float(X.reshape(-1)[-1]) != 12345.0:
        raise AssertionError(f"writing into {what} did not change X: return a view "
                             "(X.view(-1)), not a copy.")


# --------------------------------------------------------------------------- flatten_copy


SHARES = ("the result shares memory with X (a view): view/reshape/flatten return views of a "
          "contiguous tensor; add .clone() to copy (§2.1.5).")


def flatten_copy_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    if X.dim() == 2 and min(X.shape) > 1:
        return {"the entries are in column order (X.T flattened); flatten row by row, as "
                "X.reshape(-1) does.": X.T.reshape(-1)}
    return {}


def expect_shares_nothing(out: torch.Tensor, X: torch.Tensor, before: torch.Tensor,
                          what: str) -> None:
    """Fail when `out` shares X's memory; `before` is a copy of X taken before the call."""
    if out.untyped_storage().data_ptr() == X.untyped_storage().data_ptr():
        raise AssertionError(f"{what}: {SHARES}")
    out.fill_(-777.0)
    if not torch.equal(X, before):
        raise AssertionError(f"writing into {what} changed X: {SHARES}")


# --------------------------------------------------------------------------- one_hot


def expect_one_hot_layout(out, y: torch.Tensor, q: int, what: str) -> torch.Tensor:
    """A float32 (n, q) tensor; a transposed result, one sized by y.max() + 1 and one of
    another dtype are named."""
    expect_tensor(out, what)
    n = len(y)
    if tuple(out.shape) == (q, n) and q != n:
        raise AssertionError(f"{what} has shape {tuple(out.shape)}: it is transposed; one row "
                             f"per example, one column per class: ({n}, {q}).")
    if out.dim() == 2 and out.shape[0] == n and out.shape[1] == int(y.max()) + 1 != q:
        raise AssertionError(f"{what} has {out.shape[1]} columns: use num_classes ({q}) for the "
                             "number of columns, not y.max() + 1 (a class may not appear in y).")
    expect_tensor(out, what, shape=(n, q))
    if out.dtype != torch.float32:
        raise AssertionError(f"{what} has dtype {out.dtype} but should be torch.float32: "
                             "convert the comparison's booleans with .to(torch.float32).")
    return out


# --------------------------------------------------------------------------- pick


PICK_LOOPS = ("Index with two integer tensors instead: Y_hat[torch.arange(n), y] picks every "
              "example's entry at once (§2.1.2).")


def pick_mistakes(Y_hat: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    mistakes = {"Y_hat[:, y] takes every label's column for every row, an (n, n) matrix; "
                "pair row i with its own label: Y_hat[torch.arange(n), y] (§3.4.6).": Y_hat[:, y]}
    if int(y.max()) < Y_hat.shape[0]:
        mistakes["Y_hat[y] selects rows, not entries; pair row i with its own label: "
                 "Y_hat[torch.arange(n), y] (§3.4.6)."] = Y_hat[y]
    return mistakes

"""Public checks for data manipulation and linear algebra (§2.1, §2.3): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs (float32
and float64, non-square and non-contiguous tensors).

When a result matches a mistake students often make, the failure names it: the mistakes and
their messages are in `_mistakes_tensor_ops.py`, beside this file."""

import pytest
import torch

from grader.checks import assert_close, expect_tensor, hints_on_error
from tests.public._mistakes_tensor_ops import (
    BROADCAST,
    KEEPDIM,
    MATMUL_HINTS,
    PAIRWISE_LOOPS,
    PICK_LOOPS,
    arange_grid_mistakes,
    expect_float32,
    expect_grid_shape,
    expect_no_python_loops,
    expect_one_hot_layout,
    expect_shares_nothing,
    expect_view_of,
    flatten_copy_mistakes,
    frobenius_mistakes,
    lp_mistakes,
    matmul_mistakes,
    matmul_scale,
    pick_mistakes,
    row_normalize_mistakes,
    signed_row_normalize_mistakes,
    sq_dists_mistakes,
    sq_dists_scale,
)

# --------------------------------------------------------------------------- arange_grid


@pytest.mark.points(1)
def test_arange_grid_small(student):
    """arange_grid(2, 3) is [[0, 1, 2], [3, 4, 5]] in float32 (§2.1.1): torch.arange counts
    in int64 unless you ask for float32."""
    out = expect_float32(student.arange_grid(2, 3), "arange_grid(2, 3)")
    expect_grid_shape(out, 2, 3, "arange_grid(2, 3)")
    assert_close(out, torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]), "arange_grid(2, 3)",
                 atol=0.0, mistakes=arange_grid_mistakes(2, 3))


@pytest.mark.points(1)
def test_arange_grid_fills_rows_first(student):
    """arange_grid(3, 2) has 3 rows of 2 and counts along each row before the next one
    (row-major order, as reshape(rows, cols) does): [[0, 1], [2, 3], [4, 5]] (§2.1.1)."""
    out = expect_float32(student.arange_grid(3, 2), "arange_grid(3, 2)")
    expect_grid_shape(out, 3, 2, "arange_grid(3, 2)")
    assert_close(out, torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), "arange_grid(3, 2)",
                 atol=0.0, mistakes=arange_grid_mistakes(3, 2))


# --------------------------------------------------------------------------- row_normalize


@pytest.mark.points(1)
def test_row_normalize_small(student):
    """Each row is divided by its own sum, so every row sums to 1 (§2.3.7). A is (3, 2): the
    row sums [4, 4, 5] are one per row."""
    A = torch.tensor([[1.0, 3.0], [2.0, 2.0], [5.0, 0.0]])
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)
    assert_close(out, torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]), "row_normalize(A)",
                 mistakes=row_normalize_mistakes(A))


@pytest.mark.points(2)
def test_row_normalize_square_matrix_keeps_rows(student):
    """For a square float64 matrix with row sums 4, 8 and 10, row i is divided by the sum of
    row i. `A / A.sum(dim=1)` runs without error here but divides column j by row j's sum:
    the sums need keepdim=True, shape (3, 1), to line up with the rows (§2.3.7)."""
    A = torch.tensor([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0], [5.0, 0.0, 5.0]], dtype=torch.float64)
    expected = torch.tensor([[0.25, 0.75, 0.0], [0.25, 0.25, 0.5], [0.5, 0.0, 0.5]],
                            dtype=torch.float64)
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)
    assert_close(out, expected, "row_normalize(A) for a 3x3 float64 A",
                 mistakes=row_normalize_mistakes(A))


@pytest.mark.points(2)
def test_row_normalize_rows_with_negative_entries(student):
    """A row may hold negative entries when its sum is positive: [3, -1, 2] sums to 4, so it
    becomes [0.75, -0.25, 0.5], not a division by the sum of absolute values (6). A here is a
    transposed (non-contiguous) view, as inputs may be (§2.3.7)."""
    A = torch.tensor([[3.0, -0.5], [-1.0, 2.0], [2.0, 0.5]]).T  # [[3, -1, 2], [-0.5, 2, 0.5]]
    expected = torch.tensor([[0.75, -0.25, 0.5], [-0.25, 1.0, 0.25]])
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)
    assert_close(out, expected, "row_normalize([[3, -1, 2], [-0.5, 2, 0.5]])",
                 mistakes=signed_row_normalize_mistakes(A))


# --------------------------------------------------------------------------- pairwise_sq_dists


@pytest.mark.points(1)
def test_pairwise_sq_dists_small(student):
    """Squared distances between 3 points and 2 points in the plane: entry (i, j) is
    |X[i] - Y[j]|^2, e.g. |(1, 0) - (3, 4)|^2 = 4 + 16 = 20 (§2.1.4)."""
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    Y = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    expected = torch.tensor([[0.0, 25.0], [1.0, 20.0], [4.0, 13.0]])
    assert_close(student.pairwise_sq_dists(X, Y), expected, "pairwise_sq_dists(X, Y)",
                 scale=sq_dists_scale(X, Y), mistakes=sq_dists_mistakes(X, Y))


@pytest.mark.points(1)
def test_pairwise_sq_dists_float64_non_contiguous(student):
    """n = 2 points against m = 3 points in d = 4 dimensions, in float64, with Y a transposed
    (non-contiguous) view: the result is (2, 3) and float64 (§2.1.4)."""
    X = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    Y = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 1.0, 0.0]],
                     dtype=torch.float64).T  # rows (0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 2, 0)
    expected = torch.tensor([[5.0, 3.0, 1.0], [2.0, 2.0, 10.0]], dtype=torch.float64)
    out = expect_tensor(student.pairwise_sq_dists(X, Y), "pairwise_sq_dists(X, Y)",
                        shape=(2, 3))
    assert_close(out, expected, "pairwise_sq_dists(X, Y) for X (2, 4) and Y (3, 4)",
                 scale=sq_dists_scale(X, Y), mistakes=sq_dists_mistakes(X, Y))


@pytest.mark.points(2)
def test_pairwise_sq_dists_is_vectorised(student):
    """No for/while loops or comprehensions: X[:, None, :] - Y[None, :, :] broadcasts to
    (n, m, d), every pair's differences in one operation (§2.1.4)."""
    X = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0], [2.0, -2.0]])
    Y = torch.tensor([[0.0, 1.0], [1.0, -1.0], [-2.0, 2.0]])
    expected = torch.tensor([[2.0, 9.0, 9.0], [1.25, 6.25, 3.25], [4.0, 17.0, 5.0],
                             [13.0, 2.0, 32.0]])
    assert_close(student.pairwise_sq_dists(X, Y), expected, "pairwise_sq_dists(X, Y)",
                 scale=sq_dists_scale(X, Y), mistakes=sq_dists_mistakes(X, Y))
    expect_no_python_loops(student, "pairwise_sq_dists", PAIRWISE_LOOPS)


# --------------------------------------------------------------------------- lp_norm


@pytest.mark.points(1)
def test_lp_norm_small(student):
    """The L1, L2 and L3 norms of [3, -4] are 7, 5 and 91**(1/3) (§2.3.11)."""
    x = torch.tensor([3.0, -4.0])
    for p, expected in [(1.0, 7.0), (2.0, 5.0), (3.0, 91.0 ** (1 / 3))]:
        out = expect_tensor(student.lp_norm(x, p), f"lp_norm([3, -4], {p})", shape=())
        assert_close(out, torch.tensor(expected), f"lp_norm([3, -4], {p})",
                     mistakes=lp_mistakes(x, p))


@pytest.mark.points(2)
def test_lp_norm_odd_p_with_negative_entries(student):
    """For odd p the sign matters: (-2)**3 = -8, so without abs() the sum for [-1, -2, 2] is
    -1 and its cube root nan. With |x_i| the L3 norm is 17**(1/3) and the L1 norm 5; in
    float64, the result is a float64 0-d tensor (§2.3.11)."""
    x = torch.tensor([-1.0, -2.0, 2.0], dtype=torch.float64)
    for p, expected in [(1.0, 5.0), (3.0, 17.0 ** (1 / 3)), (5.0, 65.0 ** (1 / 5))]:
        what = f"lp_norm([-1, -2, 2], {p})"
        out = expect_tensor(student.lp_norm(x, p), what, shape=())
        assert_close(out, torch.tensor(expected, dtype=torch.float64), what,
                     mistakes=lp_mistakes(x, p))


# --------------------------------------------------------------------------- frobenius_norm


@pytest.mark.points(1)
def test_frobenius_norm_small(student):
    """The Frobenius norm of a 4x9 matrix of ones is sqrt(36) = 6 (§2.3.11)."""
    A = torch.ones(4, 9)
    out = expect_tensor(student.frobenius_norm(A), "frobenius_norm(ones(4, 9))", shape=())
    assert_close(out, torch.tensor(6.0), "frobenius_norm(ones(4, 9))",
                 mistakes=frobenius_mistakes(A))


@pytest.mark.points(1)
def test_frobenius_norm_mixed_signs(student):
    """[[2, -3, 0], [0, 0, -6]] has sum of squares 4 + 9 + 36 = 49, so its Frobenius norm is 7
    (one number for the whole float64 matrix), not the 11 of the absolute values (§2.3.11)."""
    A = torch.tensor([[2.0, -3.0, 0.0], [0.0, 0.0, -6.0]], dtype=torch.float64)
    out = expect_tensor(student.frobenius_norm(A), "frobenius_norm(A)", shape=())
    assert_close(out, torch.tensor(7.0, dtype=torch.float64), "frobenius_norm(A)",
                 mistakes=frobenius_mistakes(A))


# --------------------------------------------------------------------------- matmul


@pytest.mark.points(1)
def test_matmul_small(student):
    """A (2, 3) times B (3, 2) without `@`: C[i, j] = sum_t A[i, t] * B[t, j] (§2.3.10)."""
    A = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with hints_on_error(MATMUL_HINTS):
        out = student.matmul(A, B)
    assert_close(out, torch.tensor([[4.0, 5.0], [10.0, 11.0]]), "matmul(A, B)",
                 scale=matmul_scale(A, B), mistakes=matmul_mistakes(A, B))


@pytest.mark.points(1)
def test_matmul_square_is_not_elementwise(student):
    """For square matrices A * B runs too, but it is the elementwise product: [[1, 2], [3, 4]]
    times [[5, 6], [7, 8]] is [[19, 22], [43, 50]] (§2.3.10)."""
    A = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    B = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
    with hints_on_error(MATMUL_HINTS):
        out = student.matmul(A, B)
    assert_close(out, torch.tensor([[19.0, 22.0], [43.0, 50.0]]), "matmul(A, B)",
                 scale=matmul_scale(A, B), mistakes=matmul_mistakes(A, B))


@pytest.mark.points(1)
def test_matmul_float64_non_contiguous(student):
    """A (3, 2) times B (2, 4), float64, B a transposed (non-contiguous) view: the result is
    (3, 4) and float64 (§2.3.10)."""
    A = torch.tensor([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [-1.0, 3.0]], dtype=torch.float64).T
    expected = torch.tensor([[1.0, 2.0, 4.0, 5.0], [0.0, 1.0, 1.0, 3.0], [-1.0, 0.0, -2.0, 1.0]],
                            dtype=torch.float64)
    with hints_on_error(MATMUL_HINTS):
        out = student.matmul(A, B)
    assert_close(out, expected, "matmul(A, B) for A (3, 2) and B (2, 4)",
                 scale=matmul_scale(A, B), mistakes=matmul_mistakes(A, B))


# --------------------------------------------------------------------------- flatten_view


@pytest.mark.points(1)
def test_flatten_view_shares_memory(student):
    """flatten_view(X) is a view: it holds X's entries row by row, and writing into it changes
    X (§2.1.5)."""
    X = torch.arange(6.0).reshape(2, 3)
    what = "flatten_view(X) for X of shape (2, 3)"
    flat = expect_tensor(student.flatten_view(X), what, shape=(6,))
    assert_close(flat, torch.arange(6.0), what, atol=0.0)
    expect_view_of(flat, X, what)


# --------------------------------------------------------------------------- flatten_copy


@pytest.mark.points(1)
def test_flatten_copy_shares_nothing(student):
    """flatten_copy(X) is a copy: writing into it leaves X alone. For a contiguous X,
    reshape(-1) alone returns a view (§2.1.5)."""
    X = torch.arange(6.0).reshape(2, 3)
    before = X.clone()
    what = "flatten_copy(X) for X of shape (2, 3)"
    flat = expect_tensor(student.flatten_copy(X), what, shape=(6,))
    assert_close(flat, torch.arange(6.0), what, atol=0.0, mistakes=flatten_copy_mistakes(X))
    expect_shares_nothing(flat, X, before, what)


@pytest.mark.points(1)
def test_flatten_copy_of_a_transposed_matrix(student):
    """X = arange(6).reshape(2, 3).T is [[0, 3], [1, 4], [2, 5]]: flattened row by row it is
    [0, 3, 1, 4, 2, 5]. X is not contiguous, so X.view(-1) raises an error (§2.1.5)."""
    X = torch.arange(6.0).reshape(2, 3).T
    before = X.clone()
    what = "flatten_copy(X) for a transposed X of shape (3, 2)"
    flat = expect_tensor(student.flatten_copy(X), what, shape=(6,))
    assert_close(flat, torch.tensor([0.0, 3.0, 1.0, 4.0, 2.0, 5.0]), what, atol=0.0,
                 mistakes=flatten_copy_mistakes(X))
    expect_shares_nothing(flat, X, before, what)


# --------------------------------------------------------------------------- one_hot


@pytest.mark.points(1)
def test_one_hot_small(student):
    """one_hot([0, 2], 3) is [[1, 0, 0], [0, 0, 1]] in float32 (§3.4.1)."""
    y = torch.tensor([0, 2])
    out = expect_one_hot_layout(student.one_hot(y, 3), y, 3, "one_hot([0, 2], 3)")
    assert_close(out, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "one_hot([0, 2], 3)",
                 atol=0.0)


@pytest.mark.points(1)
def test_one_hot_num_classes_sets_the_columns(student):
    """one_hot([1, 0, 1], 4) has 4 columns although classes 2 and 3 do not occur in y: one row
    per example, one column per class (§3.4.1)."""
    y = torch.tensor([1, 0, 1])
    out = expect_one_hot_layout(student.one_hot(y, 4), y, 4, "one_hot([1, 0, 1], 4)")
    expected = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    assert_close(out, expected, "one_hot([1, 0, 1], 4)", atol=0.0)


# --------------------------------------------------------------------------- pick


@pytest.mark.points(1)
def test_pick_small(student):
    """pick picks one entry per row: the score of each example's label (§3.4.6)."""
    Y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    assert_close(student.pick(Y_hat, y), torch.tensor([0.1, 0.5]), "pick(Y_hat, y)", atol=0.0,
                 mistakes=pick_mistakes(Y_hat, y))


@pytest.mark.points(2)
def test_pick_is_vectorised(student):
    """No for/while loops or comprehensions: Y_hat[torch.arange(n), y] pairs row i with
    label y[i] in one indexing operation (§2.1.2). Here 3 examples and 4 classes, float64."""
    Y_hat = torch.tensor([[0.5, 1.5, 2.5, 3.5], [4.0, 5.0, 6.0, 7.0], [-1.0, -2.0, -3.0, -4.0]],
                         dtype=torch.float64)
    y = torch.tensor([3, 0, 1])
    assert_close(student.pick(Y_hat, y), torch.tensor([3.5, 4.0, -2.0], dtype=torch.float64),
                 "pick(Y_hat, y) for Y_hat (3, 4)", atol=0.0, mistakes=pick_mistakes(Y_hat, y))
    expect_no_python_loops(student, "pick", PICK_LOOPS)

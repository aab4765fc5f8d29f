"""Hidden tests for data manipulation and linear algebra (§2.1, §2.3).

Properties draw float32 and float64 inputs, square and non-square, in contiguous and
non-contiguous layouts (transposed, strided, with a storage offset). Oracles are torch's own
functions computed here in float64. Tolerances grow with the magnitudes a correct formula's
rounding grows with:

- pairwise_sq_dists: |x|^2 + |y|^2. Both standard vectorisations are correct: the direct
  broadcast sum((x - y)**2) and the expansion |x|^2 + |y|^2 - 2 x.y (via a matrix product). The
  expansion cancels catastrophically for close points far from the origin and may return tiny
  negative numbers; the contract does not ask for clamping, so values within the tolerance of
  the true distance (negative ones included) are accepted.
- matmul: k * max|A| * max|B| (a sum of k products).
- norms, row_normalize, pick: the result's own magnitude.
"""


import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.checks import assert_close, expect_tensor, hints_on_error
from tests.hidden import _strategies as tds
from tests.hidden._conventions import GPU, expect_on_gpu
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
    oracle_sq_dists,
    pick_mistakes,
    row_normalize_mistakes,
    signed_row_normalize_mistakes,
    sq_dists_mistakes,
    sq_dists_scale,
)

# --------------------------------------------------------------------------- arange_grid


@pytest.mark.points(2)
@given(rows=st.integers(1, 30), cols=st.integers(1, 30))
def test_arange_grid_values(student, rows, cols):
    """arange_grid(rows, cols) is a float32 (rows, cols) matrix counting 0, 1, ... row by row,
    for square and non-square shapes, one row or one column included (§2.1.1)."""
    what = f"arange_grid({rows}, {cols})"
    out = expect_float32(student.arange_grid(rows, cols), what)
    expect_grid_shape(out, rows, cols, what)
    expected = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    assert_close(out, expected, what, atol=0.0, mistakes=arange_grid_mistakes(rows, cols))


# --------------------------------------------------------------------------- row_normalize


positive_matrices = tds.matrices(rows=(1, 9), cols=(1, 9), magnitude=tds.magnitudes(1e4),
                                 distribution="positive")


@pytest.mark.points(3)
@given(A=positive_matrices)
def test_row_normalize_matches(student, A):
    """row_normalize(A) divides each row by its own sum, for square and non-square A with
    positive rows, float32 and float64, contiguous or not; A itself is left unchanged
    (§2.3.7)."""
    expected = (A.double() / A.double().sum(1, keepdim=True)).to(A.dtype)
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)  # the handle fails a change to an argument
    assert_close(out, expected, f"row_normalize(A) for A {tuple(A.shape)}", scale=1.0,
                 mistakes=row_normalize_mistakes(A))


signed_rows = tds.matrices(rows=(1, 9), cols=(2, 9), magnitude=tds.magnitudes(1e4),
                           distribution="positive_sum")
# rows with negative entries whose sums are positive, the smallest a fifth of its |sum|
SIGNED = torch.tensor([[3.0, -1.0, 2.0], [-0.5, 2.0, 0.25], [1.0, 1.0, -1.5]])


@pytest.mark.points(2)
@given(A=signed_rows)
@example(A=SIGNED)
def test_row_normalize_negative_entries(student, A):
    """Rows may hold negative entries as long as their sums are positive: each row is still
    divided by its own sum (not by the sum of absolute values), float32 and float64, entries
    up to 1e4, contiguous or not (§2.3.7)."""
    A64 = A.double()
    sums = A64.sum(1, keepdim=True)
    expected = (A64 / sums).to(A.dtype)
    # rounding of the sums grows with sum |a| / sum a (cancellation), and the result with it
    scale = float((A64.abs().amax(1, keepdim=True) * A64.abs().sum(1, keepdim=True)
                   / sums ** 2).max())
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)
    assert_close(out, expected, f"row_normalize(A) for A {tuple(A.shape)} with negative "
                 "entries", scale=scale, mistakes=signed_row_normalize_mistakes(A))


@pytest.mark.points(2)
def test_row_normalize_square_needs_keepdim(student):
    """For a square matrix whose rows have different sums, each row must be divided by its own
    sum: the sums need keepdim=True to broadcast along the rows (§2.3.7)."""
    A = torch.tensor([[1.0, 1.0, 2.0], [10.0, 20.0, 10.0], [3.0, 0.5, 0.5]])
    expected = A / A.sum(1, keepdim=True)
    assert_close(student.row_normalize(A), expected, "row_normalize of a 3x3 matrix",
                 mistakes=row_normalize_mistakes(A))


@pytest.mark.points(2)
@pytest.mark.parametrize("shape", [(3, 5), (5, 2)])
def test_row_normalize_non_square(student, shape):
    """Non-square matrices (more columns than rows and more rows than columns): every row of
    the result sums to 1 (§2.3.7)."""
    A = tds.random_tensor(shape, seed=sum(shape), distribution="positive") * 3
    with hints_on_error({BROADCAST: KEEPDIM}):
        out = student.row_normalize(A)
    assert_close(out, A / A.sum(1, keepdim=True), f"row_normalize of a {shape} matrix",
                 mistakes=row_normalize_mistakes(A))


# --------------------------------------------------------------------------- pairwise_sq_dists


@st.composite
def point_sets(draw):
    dtype = draw(tds.dtypes())
    n, m, d = draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    mag = draw(tds.magnitudes(1e3))
    X = draw(tds.tensors((n, d), dtype=dtype, magnitude=mag))
    Y = draw(tds.tensors((m, d), dtype=dtype, magnitude=mag))
    return X, Y


@pytest.mark.points(4)
@given(XY=point_sets())
def test_pairwise_sq_dists_matches(student, XY):
    """pairwise_sq_dists(X, Y) equals sum_k (X[i, k] - Y[j, k])**2 for n != m != d, float32 and
    float64, contiguous or not, coordinates up to 1e3; X and Y are left unchanged (§2.1.4).
    The expanded form |x|^2 + |y|^2 - 2 x.y is accepted within its rounding error."""
    X, Y = XY
    out = student.pairwise_sq_dists(X, Y)  # the handle fails a change to an argument
    assert_close(out, oracle_sq_dists(X, Y).to(X.dtype),
                 f"pairwise_sq_dists for X {tuple(X.shape)} and Y {tuple(Y.shape)}",
                 scale=sq_dists_scale(X, Y), mistakes=sq_dists_mistakes(X, Y))


@pytest.mark.points(2)
@given(X=tds.matrices(rows=(1, 8), cols=(1, 8), magnitude=tds.magnitudes(1e3)),
       offset=st.sampled_from([0.0, 100.0, 1e3]))
def test_pairwise_sq_dists_of_a_set_with_itself(student, X, offset):
    """pairwise_sq_dists(X, X) is symmetric with a zero diagonal, also for points far from the
    origin, where |x|^2 + |y|^2 - 2 x.y loses digits: values within its rounding error of the
    truth (tiny negatives included) are accepted (§2.1.4)."""
    X = X + offset
    out = student.pairwise_sq_dists(X, X.clone())
    what = f"pairwise_sq_dists(X, X) for X {tuple(X.shape)}"
    assert_close(out, oracle_sq_dists(X, X).to(X.dtype), what, scale=sq_dists_scale(X, X),
                 mistakes=sq_dists_mistakes(X, X))


@pytest.mark.points(2)
def test_pairwise_sq_dists_no_python_loops(student):
    """pairwise_sq_dists is vectorised: no for/while loops or comprehensions. Broadcasting
    (§2.1.4) does the n * m * d work in one tensor operation, hundreds of times faster than a
    Python loop over pairs of points."""
    X = tds.random_tensor((7, 3), seed=1)
    Y = tds.random_tensor((4, 3), seed=2)
    assert_close(student.pairwise_sq_dists(X, Y), oracle_sq_dists(X, Y).float(),
                 "pairwise_sq_dists for X (7, 3) and Y (4, 3)", scale=sq_dists_scale(X, Y),
                 mistakes=sq_dists_mistakes(X, Y))
    expect_no_python_loops(student, "pairwise_sq_dists", PAIRWISE_LOOPS)


# --------------------------------------------------------------------------- lp_norm


@pytest.mark.points(4)
@given(x=tds.tensors(st.integers(1, 12).map(lambda n: (n,)), magnitude=tds.magnitudes(1e3)),
       p=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0]))
def test_lp_norm_matches(student, x, p):
    """lp_norm(x, p) equals (sum |x_i|^p)^(1/p) as a 0-d tensor of x's dtype, for p from 1 to 7
    (odd and fractional included), entries of both signs, float32 and float64, contiguous or
    strided; x is left unchanged (§2.3.11)."""
    expected = torch.linalg.vector_norm(x.double(), ord=p).to(x.dtype)
    out = student.lp_norm(x, p)  # the handle fails a change to an argument
    assert_close(out, expected, f"lp_norm(x, {p}) for x of length {len(x)}",
                 mistakes=lp_mistakes(x, p))


@pytest.mark.points(2)
@pytest.mark.parametrize("p", [1.0, 3.0, 5.0])
def test_lp_norm_odd_p_negative_entries(student, p):
    """For odd p, negative entries count with their absolute value: ||[-1, -2, 3]||_p uses
    1 + 2^p + 3^p (§2.3.11)."""
    x = torch.tensor([-1.0, -2.0, 3.0, -0.5])
    expected = torch.linalg.vector_norm(x.double(), ord=p).float()
    assert_close(student.lp_norm(x, p), expected, f"lp_norm([-1, -2, 3, -0.5], {p})",
                 mistakes=lp_mistakes(x, p))


@pytest.mark.points(1)
def test_lp_norm_of_zero_vector(student):
    """The norm of the zero vector is 0 (no division by zero) for p = 1, 2, 3 (§2.3.11)."""
    x = torch.zeros(4, dtype=torch.float64)
    for p in (1.0, 2.0, 3.0):
        out = expect_tensor(student.lp_norm(x, p), f"lp_norm(zeros(4), {p})", shape=())
        assert_close(out, torch.zeros((), dtype=torch.float64), f"lp_norm(zeros(4), {p})",
                     atol=0.0)


# --------------------------------------------------------------------------- frobenius_norm


@pytest.mark.points(3)
@given(A=tds.matrices(rows=(1, 9), cols=(1, 9), magnitude=tds.magnitudes(1e4)))
def test_frobenius_norm_matches(student, A):
    """frobenius_norm(A) equals sqrt(sum of squares of all entries) as a 0-d tensor of A's
    dtype, for square and non-square A, contiguous or not, entries up to 1e4; A is left
    unchanged (§2.3.11)."""
    A64 = A.double()
    expected = torch.linalg.matrix_norm(A64, ord="fro").to(A.dtype)
    out = student.frobenius_norm(A)  # the handle fails a change to an argument
    assert_close(out, expected, f"frobenius_norm(A) for A {tuple(A.shape)}",
                 mistakes=frobenius_mistakes(A))


# --------------------------------------------------------------------------- matmul


@st.composite
def matmul_pairs(draw):
    dtype = draw(tds.dtypes())
    n, k, m = draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    mag = draw(tds.magnitudes(100.0))
    A = draw(tds.tensors((n, k), dtype=dtype, magnitude=mag))
    B = draw(tds.tensors((k, m), dtype=dtype, magnitude=mag))
    return A, B


def check_matmul(student, A: torch.Tensor, B: torch.Tensor) -> None:
    expected = (A.double() @ B.double()).to(A.dtype)
    with hints_on_error(MATMUL_HINTS):
        out = student.matmul(A, B)
    assert_close(out, expected, f"matmul(A, B) for A {tuple(A.shape)} and B {tuple(B.shape)}",
                 scale=matmul_scale(A, B), mistakes=matmul_mistakes(A, B))


@pytest.mark.points(4)
@given(AB=matmul_pairs())
def test_matmul_matches(student, AB):
    """matmul(A, B) equals A @ B for A (n, k) and B (k, m) with n, k, m all different or equal,
    float32 and float64, contiguous or not; A and B are left unchanged (§2.3.10)."""
    A, B = AB
    check_matmul(student, A, B)  # the handle fails a change to an argument


@pytest.mark.points(2)
def test_matmul_special_shapes(student):
    """Square matrices, an outer product (k = 1), an inner product (n = m = 1) and a
    matrix-vector product (m = 1) (§2.3.8-10)."""
    g = torch.Generator().manual_seed(5)
    for n, k, m in [(3, 3, 3), (4, 1, 3), (1, 6, 1), (3, 5, 1), (1, 1, 1)]:
        check_matmul(student, torch.randn(n, k, generator=g), torch.randn(k, m, generator=g))


# --------------------------------------------------------------------------- flatten_view


@st.composite
def nd_shapes(draw):
    return tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))


@pytest.mark.points(3)
@given(X=tds.tensors(nd_shapes(), layout=st.sampled_from(["contiguous", "offset"])))
def test_flatten_view_is_a_view(student, X):
    """flatten_view(X) of a contiguous X (1-D to 4-D, also one that starts at an offset in its
    storage) is 1-D, in row-major order, and shares X's memory: writing into it changes X
    (§2.1.5)."""
    what = f"flatten_view(X) for X of shape {tuple(X.shape)}"
    out = expect_tensor(student.flatten_view(X), what, shape=(X.numel(),))
    assert_close(out, X.reshape(-1).clone(), what, atol=0.0)
    expect_view_of(out, X, what)


# --------------------------------------------------------------------------- flatten_copy


def check_flatten_copy(student, X: torch.Tensor) -> None:
    before = X.clone()  # the handle fails a change to X; this copy is for writing into out
    what = f"flatten_copy(X) for X of shape {tuple(X.shape)}"
    out = expect_tensor(student.flatten_copy(X), what, shape=(X.numel(),))
    assert_close(out, X.reshape(-1).clone(), what, atol=0.0, mistakes=flatten_copy_mistakes(X))
    expect_shares_nothing(out, X, before, what)


@pytest.mark.points(3)
@given(X=tds.tensors(nd_shapes(), layout=tds.layouts(expanded=True)))
def test_flatten_copy_any_layout(student, X):
    """flatten_copy(X) is 1-D, in row-major order, and shares no memory with X, for X from 1-D
    to 4-D in every layout (contiguous, transposed, strided, offset, an expanded view whose
    rows share memory): writing into it leaves X unchanged (§2.1.5)."""
    check_flatten_copy(student, X)


@pytest.mark.points(2)
def test_flatten_copy_contiguous_and_transposed(student):
    """flatten_copy of a contiguous matrix (where reshape alone returns a view) and of a
    transposed one (where view fails) (§2.1.5)."""
    X = torch.arange(12.0).reshape(3, 4)
    check_flatten_copy(student, X)
    check_flatten_copy(student, X.T)


# --------------------------------------------------------------------------- one_hot


@st.composite
def label_sets(draw):
    n, q = draw(st.integers(1, 12)), draw(st.integers(1, 10))
    y = draw(tds.labels(n, q))
    return tds.with_layout(y, draw(st.sampled_from(["contiguous", "strided", "offset"]))), q


def check_one_hot(student, y: torch.Tensor, q: int) -> None:
    what = f"one_hot(y, {q}) for {len(y)} labels"
    out = expect_one_hot_layout(student.one_hot(y, q), y, q, what)
    assert_close(out, torch.nn.functional.one_hot(y, q).float(), what, atol=0.0)


@pytest.mark.points(3)
@given(yq=label_sets())
@example(yq=(tds.with_layout(torch.tensor([3, 0, 1, 3]), "strided"), 7))  # 4 to 6 never occur
def test_one_hot_matches(student, yq):
    """one_hot(y, num_classes) is a float32 (n, num_classes) matrix with a single 1 per row, in
    column y[i], for label vectors contiguous or strided (§3.4.1)."""
    y, q = yq
    check_one_hot(student, y, q)  # the handle fails a change to an argument


@pytest.mark.points(1)
def test_one_hot_unused_classes(student):
    """The number of columns is num_classes even when the largest classes do not occur in y
    (§3.4.1)."""
    check_one_hot(student, torch.tensor([0, 2, 1, 2]), 6)


# --------------------------------------------------------------------------- pick


@st.composite
def scores_and_labels(draw):
    Y_hat = draw(tds.matrices(rows=(1, 9), cols=(1, 9), magnitude=tds.magnitudes(1e3)))
    return Y_hat, draw(tds.labels(Y_hat.shape[0], Y_hat.shape[1]))


def check_pick(student, Y_hat: torch.Tensor, y: torch.Tensor) -> None:
    """pick against the oracle (computed from the arguments after the call: the handle keeps
    them as the test passed them, and fails a call that changes them)."""
    out = student.pick(Y_hat, y)
    what = f"pick(Y_hat, y) for Y_hat {tuple(Y_hat.shape)}"
    assert_close(out, Y_hat.gather(1, y[:, None]).squeeze(1), what, atol=0.0,
                 mistakes=pick_mistakes(Y_hat, y))


@pytest.mark.points(3)
@given(Yy=scores_and_labels())
def test_pick_matches(student, Yy):
    """pick(Y_hat, y)[i] is Y_hat[i, y[i]], shape (n,), for any number of examples and classes,
    float32 and float64, contiguous or not; Y_hat and y are left unchanged (§3.4.6)."""
    Y_hat, y = Yy
    check_pick(student, Y_hat, y)  # the handle fails a change to an argument


@pytest.mark.points(2)
def test_pick_no_python_loops(student):
    """pick is vectorised: no for/while loops or comprehensions. Integer-tensor indexing
    (Y_hat[rows, y], §2.1.2) or gather picks all n entries in one operation; a Python loop
    per example is orders of magnitude slower on real batches."""
    g = torch.Generator().manual_seed(3)
    check_pick(student, torch.rand(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g))
    expect_no_python_loops(student, "pick", PICK_LOOPS)


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """Inputs on the GPU give results on the GPU, of the input's dtype: every function makes
    its new tensors where its input is (torch.zeros_like(X), torch.arange(n, device=X.device)),
    never on the default device. The values are checked on the CPU by the other tests."""
    g = torch.Generator().manual_seed(8)
    A = (torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1).to(GPU)
    B = torch.randn(3, 5, generator=g).to(GPU)
    y = torch.tensor([2, 0, 1, 2]).to(GPU)
    calls = {
        "row_normalize(A)": lambda: student.row_normalize(A),
        "pairwise_sq_dists(X, Y)": lambda: student.pairwise_sq_dists(B.T, B.T[:2]),
        "lp_norm(x, 3.0)": lambda: student.lp_norm(B[0], 3.0),
        "frobenius_norm(A)": lambda: student.frobenius_norm(A),
        "matmul(A, B)": lambda: student.matmul(A.float(), B),
        "flatten_view(X)": lambda: student.flatten_view(B),
        "flatten_copy(X)": lambda: student.flatten_copy(B.T),
        "one_hot(y, 4)": lambda: student.one_hot(y, 4),
        "pick(Y_hat, y)": lambda: student.pick(A, y[:4] % 3),
    }
    for what, call in calls.items():
        expect_on_gpu(call(), f"{what} for inputs on {GPU}")
    out = student.row_normalize(A)
    expect_tensor(out, "row_normalize(A) for a float64 A on the GPU", dtype=torch.float64)

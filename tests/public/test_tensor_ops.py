"""Public checks for data manipulation and linear algebra (§2.1, §2.3): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs (float32
and float64, non-square and non-contiguous tensors)."""

import pytest
import torch

from grader.checks import assert_close, expect_tensor


@pytest.mark.points(1)
def test_arange_grid_small(student):
    """arange_grid(2, 3) is [[0, 1, 2], [3, 4, 5]] in float32 (§2.1.1)."""
    out = expect_tensor(student.arange_grid(2, 3), "arange_grid(2, 3)", shape=(2, 3),
                        dtype=torch.float32)
    assert_close(out, torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]), "arange_grid(2, 3)")


@pytest.mark.points(1)
def test_row_normalize_small(student):
    """Each row is divided by its own sum, so every row sums to 1 (§2.3.7)."""
    A = torch.tensor([[1.0, 3.0], [2.0, 2.0], [5.0, 0.0]])
    assert_close(student.row_normalize(A),
                 torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]), "row_normalize(A)")


@pytest.mark.points(1)
def test_pairwise_sq_dists_small(student):
    """Squared distances between 3 points and 2 points in the plane (§2.1.4)."""
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    Y = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    expected = torch.tensor([[0.0, 25.0], [1.0, 20.0], [4.0, 13.0]])
    assert_close(student.pairwise_sq_dists(X, Y), expected, "pairwise_sq_dists(X, Y)")


@pytest.mark.points(1)
def test_lp_norm_small(student):
    """The L1, L2 and L3 norms of [3, -4] are 7, 5 and 91**(1/3) (§2.3.11)."""
    x = torch.tensor([3.0, -4.0])
    for p, expected in [(1.0, 7.0), (2.0, 5.0), (3.0, 91.0 ** (1 / 3))]:
        out = expect_tensor(student.lp_norm(x, p), f"lp_norm([3, -4], {p})", shape=())
        assert_close(out, torch.tensor(expected), f"lp_norm([3, -4], {p})")


@pytest.mark.points(1)
def test_frobenius_norm_small(student):
    """The Frobenius norm of a 4x9 matrix of ones is 6 (§2.3.11)."""
    out = expect_tensor(student.frobenius_norm(torch.ones(4, 9)), "frobenius_norm(ones(4, 9))",
                        shape=())
    assert_close(out, torch.tensor(6.0), "frobenius_norm(ones(4, 9))")


@pytest.mark.points(1)
def test_matmul_small(student):
    """A (2, 3) times B (3, 2) without `@` (§2.3.10)."""
    A = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert_close(student.matmul(A, B), torch.tensor([[4.0, 5.0], [10.0, 11.0]]),
                 "matmul(A, B)")


@pytest.mark.points(1)
def test_flatten_view_shares_memory(student):
    """flatten_view(X) is a view: writing into it changes X (§2.1.5)."""
    X = torch.arange(6.0).reshape(2, 3)
    flat = expect_tensor(student.flatten_view(X), "flatten_view(X)", shape=(6,))
    flat[0] = 100.0
    assert X[0, 0] == 100.0, ("writing into flatten_view(X) did not change X: return a view "
                              "(X.view(-1)), not a copy.")


@pytest.mark.points(1)
def test_flatten_copy_shares_nothing(student):
    """flatten_copy(X) is a copy: writing into it leaves X alone (§2.1.5)."""
    X = torch.arange(6.0).reshape(2, 3)
    flat = expect_tensor(student.flatten_copy(X), "flatten_copy(X)", shape=(6,))
    assert_close(flat, torch.arange(6.0), "flatten_copy(X)")
    flat[0] = 100.0
    assert X[0, 0] == 0.0, ("writing into flatten_copy(X) changed X: the result shares memory "
                            "with X; return a copy (clone()).")


@pytest.mark.points(1)
def test_one_hot_small(student):
    """one_hot([0, 2], 3) is [[1, 0, 0], [0, 0, 1]] in float32 (§3.4.1)."""
    out = expect_tensor(student.one_hot(torch.tensor([0, 2]), 3), "one_hot([0, 2], 3)",
                        shape=(2, 3), dtype=torch.float32)
    assert_close(out, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "one_hot([0, 2], 3)")


@pytest.mark.points(1)
def test_pick_small(student):
    """pick picks one entry per row: the score of each example's label (§3.4.6)."""
    Y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    y = torch.tensor([0, 2])
    assert_close(student.pick(Y_hat, y), torch.tensor([0.1, 0.5]), "pick(Y_hat, y)")

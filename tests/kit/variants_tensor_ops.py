"""Variants of solutions/tensor_ops.py: mistakes students make (each must lose points with a
message that names it) and correct solutions written differently (each must get full marks)."""

from tests.kit.variants import Variant

T = "tensor_ops"

MISTAKES = [
    Variant(T, "arange_grid_int64", '''
def arange_grid(rows, cols):
    return torch.arange(rows * cols).reshape(rows, cols)
''', expect="torch.arange gives int64"),
    Variant(T, "arange_grid_column_major", '''
def arange_grid(rows, cols):
    return torch.arange(rows * cols, dtype=torch.float32).reshape(cols, rows).T
''', expect="run down the columns"),
    Variant(T, "row_normalize_no_keepdim", '''
def row_normalize(A):
    return A / A.sum(1)
''', expect="keepdim"),
    Variant(T, "row_normalize_column_sums", '''
def row_normalize(A):
    return A / A.sum(0, keepdim=True)
''', expect="column sums"),
    Variant(T, "row_normalize_in_place", '''
def row_normalize(A):
    A /= A.sum(1, keepdim=True)
    return A
''', expect="A was modified"),
    Variant(T, "row_normalize_abs_sum", '''
def row_normalize(A):
    return A / A.abs().sum(dim=1, keepdim=True)
''', expect="not by the sum of its absolute values"),
    Variant(T, "row_normalize_l1_normalize", '''
import torch.nn.functional as F


def row_normalize(A):
    return F.normalize(A, p=1, dim=1)
''', expect="F.normalize(A, p=1, dim=1)"),
    Variant(T, "pairwise_no_cross_term", '''
def pairwise_sq_dists(X, Y):
    return (X * X).sum(1, keepdim=True) + (Y * Y).sum(1)
''', expect="cross term is missing"),
    Variant(T, "pairwise_plus_cross_term", '''
def pairwise_sq_dists(X, Y):
    return (X * X).sum(1, keepdim=True) + (Y * Y).sum(1) + 2 * X @ Y.T
''', expect="wrong sign"),
    Variant(T, "pairwise_distances_not_squared", '''
def pairwise_sq_dists(X, Y):
    return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(2).sqrt()
''', expect="not squared distances"),
    Variant(T, "pairwise_double_loop", '''
def pairwise_sq_dists(X, Y):
    D = torch.zeros(X.shape[0], Y.shape[0], dtype=X.dtype)
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            D[i, j] = ((X[i] - Y[j]) ** 2).sum()
    return D
''', expect="uses Python loops"),
    Variant(T, "pairwise_row_comprehension", '''
def pairwise_sq_dists(X, Y):
    return torch.stack([((x - Y) ** 2).sum(1) for x in X])
''', expect="vectorise it by broadcasting"),
    Variant(T, "pairwise_cdist", '''
def pairwise_sq_dists(X, Y):
    return torch.cdist(X, Y) ** 2
''', expect="torch.cdist"),
    Variant(T, "lp_norm_no_abs", '''
def lp_norm(x, p):
    return (x ** p).sum() ** (1.0 / p)
''', expect="absolute value is missing"),
    Variant(T, "lp_norm_no_root", '''
def lp_norm(x, p):
    return (x.abs() ** p).sum()
''', expect="root is missing"),
    Variant(T, "lp_norm_torch_norm", '''
def lp_norm(x, p):
    return torch.norm(x, p)
''', expect="torch.norm"),
    Variant(T, "frobenius_no_sqrt", '''
def frobenius_norm(A):
    return (A * A).sum()
''', expect="square root is missing"),
    Variant(T, "frobenius_abs_sum", '''
def frobenius_norm(A):
    return A.abs().sum()
''', expect="sum of absolute values"),
    Variant(T, "matmul_elementwise", '''
def matmul(A, B):
    return A * B
''', expect="Hadamard"),
    Variant(T, "matmul_operator", '''
def matmul(A, B):
    return A @ B
''', expect="not allowed"),
    Variant(T, "matmul_transposed", '''
def matmul(A, B):
    return (A.unsqueeze(2) * B.unsqueeze(0)).sum(1).T
''', expect="transposed"),
    Variant(T, "flatten_view_clone", '''
def flatten_view(X):
    return X.reshape(-1).clone()
''', expect="does not share memory"),
    Variant(T, "flatten_copy_view", '''
def flatten_copy(X):
    return X.view(-1)
''', expect="shares memory with X"),
    Variant(T, "flatten_copy_reshape", '''
def flatten_copy(X):
    return X.reshape(-1)
''', expect="add .clone()"),
    Variant(T, "flatten_copy_column_order", '''
def flatten_copy(X):
    return X.T.reshape(-1).clone() if X.dim() == 2 else X.reshape(-1).clone()
''', expect="column order"),
    Variant(T, "one_hot_bool", '''
def one_hot(y, num_classes):
    return y[:, None] == torch.arange(num_classes)
''', expect="should be torch.float32"),
    Variant(T, "one_hot_max_label", '''
def one_hot(y, num_classes):
    return (y[:, None] == torch.arange(int(y.max()) + 1)).float()
''', expect="not y.max() + 1"),
    Variant(T, "one_hot_transposed", '''
def one_hot(y, num_classes):
    return (torch.arange(num_classes)[:, None] == y[None, :]).float()
''', expect="transposed"),
    Variant(T, "pick_columns", '''
def pick(Y_hat, y):
    return Y_hat[:, y]
''', expect="(n, n) matrix"),
    Variant(T, "pick_loop", '''
def pick(Y_hat, y):
    return torch.stack([Y_hat[i, y[i]] for i in range(len(y))])
''', expect="pick uses Python loops"),
]

CORRECT = [
    Variant(T, "einsum_where_and_float64_inside", '''
def row_normalize(A):
    A64 = A.double()
    return (A64 / A64.sum(dim=1, keepdim=True)).to(A.dtype)


def pairwise_sq_dists(X, Y):
    xx = torch.einsum("nd,nd->n", X, X)
    yy = torch.einsum("md,md->m", Y, Y)
    return xx[:, None] + yy[None, :] - 2 * torch.einsum("nd,md->nm", X, Y)


def frobenius_norm(A):
    return torch.einsum("ij,ij->", A, A).sqrt()


def pick(Y_hat, y):
    mask = y[:, None] == torch.arange(Y_hat.shape[1], device=Y_hat.device)
    return torch.where(mask, Y_hat, torch.zeros_like(Y_hat)).sum(dim=1)
'''),
    Variant(T, "broadcast_outer_grid", '''
def arange_grid(rows, cols):
    return torch.arange(rows, dtype=torch.float32)[:, None] * cols + torch.arange(cols)
'''),
    Variant(T, "float_arange_view", '''
def arange_grid(rows, cols):
    return torch.arange(0.0, rows * cols).view(rows, cols)
'''),
    Variant(T, "row_normalize_indexing", '''
def row_normalize(A):
    return A / A.sum(1)[:, None]
'''),
    Variant(T, "row_normalize_transpose", '''
def row_normalize(A):
    return (A.T / A.sum(dim=1)).T
'''),
    Variant(T, "pairwise_expanded", '''
def pairwise_sq_dists(X, Y):
    return (X ** 2).sum(1, keepdim=True) + (Y ** 2).sum(1) - 2 * X @ Y.T
'''),
    Variant(T, "pairwise_expanded_clamped", '''
def pairwise_sq_dists(X, Y):
    D = (X * X).sum(dim=1)[:, None] - 2 * torch.mm(X, Y.t()) + (Y * Y).sum(dim=1)[None, :]
    return D.clamp(min=0)
'''),
    Variant(T, "pairwise_pow_last_dim", '''
def pairwise_sq_dists(X, Y):
    return (X[:, None] - Y[None]).pow(2).sum(-1)
'''),
    Variant(T, "lp_norm_exp_log", '''
def lp_norm(x, p):
    return torch.exp(torch.log(torch.sum(torch.abs(x) ** p)) / p)
'''),
    Variant(T, "lp_norm_pow", '''
def lp_norm(x, p):
    return x.abs().pow(p).sum().pow(1 / p)
'''),
    Variant(T, "frobenius_via_lp", '''
def frobenius_norm(A):
    return lp_norm(A.reshape(-1), 2.0)
'''),
    Variant(T, "frobenius_pow_half", '''
def frobenius_norm(A):
    return (A.flatten() ** 2).sum() ** 0.5
'''),
    Variant(T, "matmul_transposed_broadcast", '''
def matmul(A, B):
    return (A[:, None, :] * B.T[None, :, :]).sum(-1)
'''),
    Variant(T, "matmul_outer_products", '''
def matmul(A, B):
    C = torch.zeros(A.shape[0], B.shape[1], dtype=A.dtype)
    for t in range(A.shape[1]):
        C = C + A[:, t:t + 1] * B[t:t + 1, :]
    return C
'''),
    Variant(T, "flatten_reshape_and_clone_first", '''
def flatten_view(X):
    return X.reshape(-1)

def flatten_copy(X):
    return X.clone().reshape(-1)
'''),
    Variant(T, "flatten_torch_flatten", '''
def flatten_view(X):
    return torch.flatten(X)

def flatten_copy(X):
    return X.flatten().clone()
'''),
    Variant(T, "one_hot_index_assign", '''
def one_hot(y, num_classes):
    out = torch.zeros(len(y), num_classes)
    out[torch.arange(len(y)), y] = 1
    return out
'''),
    Variant(T, "one_hot_eye_rows", '''
def one_hot(y, num_classes):
    return torch.eye(num_classes)[y]
'''),
    Variant(T, "pick_gather", '''
def pick(Y_hat, y):
    return Y_hat.gather(1, y.unsqueeze(1)).squeeze(1)
'''),
    Variant(T, "pick_diagonal", '''
def pick(Y_hat, y):
    return torch.diagonal(Y_hat[:, y])
'''),
]

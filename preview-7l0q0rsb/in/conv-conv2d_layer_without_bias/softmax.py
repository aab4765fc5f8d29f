"""Softmax regression (D2L §3.4, §3.6, §3.7).

Softmax turns a row of scores ("logits") into a probability distribution:
softmax(o)_j = exp(o_j) / sum_k exp(o_k). In a minibatch, `X` has shape `(n, q)`: one row per
example, one column per class, and the softmax is taken over each row (dim=1).

Numerical stability (§3.7): exp overflows float32 near 88, so logits of 1000 give inf/inf = nan.
Since softmax(o) = softmax(o - c) for any constant c, subtract each row's maximum first; the
largest exponent is then exp(0) = 1. The same trick makes logsumexp and log-softmax stable.

You may not call torch's own softmax, log_softmax or logsumexp (in any spelling): build them
from `exp`, `log`, `max` and `sum`.
"""

import torch


def softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of `X` with shape `(n, q)`; returns `(n, q)`, each row summing to 1.

    Finite for logits up to 1e4 in magnitude. Keep X's dtype; do not modify X.
    Hint (§3.7): subtract each row's max (`X.max(dim=1, keepdim=True)`) before `exp`.
    """
    ### BEGIN SOLUTION
    X_shifted = X - X.max(dim=1, keepdim=True).values
    X_exp = torch.exp(X_shifted)
    return X_exp / X_exp.sum(dim=1, keepdim=True)
    ### END SOLUTION


def logsumexp(X: torch.Tensor) -> torch.Tensor:
    """Row-wise log(sum(exp(X))) of `X (n, q)`; returns `(n,)`.

    Stable: with m the row max, logsumexp(x) = m + log(sum(exp(x - m))).
    """
    ### BEGIN SOLUTION
    m = X.max(dim=1, keepdim=True).values
    return (m + torch.log(torch.exp(X - m).sum(dim=1, keepdim=True))).squeeze(1)
    ### END SOLUTION


def log_softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise log of the softmax of `X (n, q)`; returns `(n, q)`.

    Stable: log softmax(x)_j = x_j - logsumexp(x). Computing `log(softmax(X))` instead
    underflows to log(0) = -inf for very negative logits.
    """
    ### BEGIN SOLUTION
    return X - logsumexp(X).unsqueeze(1)
    ### END SOLUTION


def softmax_regression(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The softmax regression model of §3.6: `softmax(X.reshape(-1, W.shape[0]) @ W + b)`.

    X: `(n, ...)` examples (images are flattened to `(n, d)`), W: `(d, q)`, b: `(q,)`.
    Returns `(n, q)` class probabilities.
    """
    ### BEGIN SOLUTION
    return softmax(X.reshape(-1, W.shape[0]) @ W + b)
    ### END SOLUTION

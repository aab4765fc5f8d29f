"""The softmax mistakes the tests recognise: for an input, what each usual wrong solution
returns, with the message that names it. The public and the hidden tests of softmax share them,
so a mistake reads the same wherever it is caught (§3.4, §3.6, §3.7).

Each `*_mistakes(...)` function maps a message to the wrong result; `grader.checks.assert_close`
names the first one a result matches."""

import torch

SECTION_37 = "(§3.7: subtract each row's max before exp)"
HARDMAX = ("your softmax puts all the probability on the largest logit (a hardmax, one-hot at "
           "the argmax): every class gets exp(x_j - m) / sum_k exp(x_k - m), with m the row's "
           "max. Take exp of each shifted logit, then divide by the row's sum (§3.4.1).")
OVERFLOW = "nan or inf for large logits: exp overflows; " + SECTION_37
GLOBAL_MAX = ("the max was taken over the whole tensor; take it per row "
              "(X.max(dim=1, keepdim=True)), or rows far below the global max underflow to 0/0.")
WRONG_DIM = ("each column sums to 1, not each row: normalise over dim=1 (the classes), "
             "not dim=0 (the examples).")
NO_KEEPDIM = ("the row sums were divided without keepdim=True, so they broadcast across "
              "the wrong axis (each column got divided by a row's sum).")
LOGSUMEXP_MAX = ("logsumexp(X) is only the row's max m: that is the first term of "
                 "m + log(sum(exp(X - m))); the second, between 0 and log(q), is missing "
                 "(§3.7).")
LOGSUMEXP_OVERFLOW = ("overflow to inf (or nan) for large logits: compute m + log(sum(exp(X - m))) "
                      "with m each row's max (§3.7).")
LOGSUMEXP_SHAPE = ("logsumexp should have shape (n,): one number per row, not (n, 1). Squeeze the "
                   "kept dimension.")
LOGSUMEXP_NOT_ADDED_BACK = ("the max was subtracted but not added back: "
                            "logsumexp(x) = m + log(sum(exp(x - m))).")
LOG_SOFTMAX_MINUS_MAX = ("log_softmax(X) is X - m, the logits minus the row's max: subtract "
                         "logsumexp(X) = m + log(sum(exp(X - m))) instead, so that the "
                         "probabilities exp(log_softmax(X)) of each row sum to 1 (§3.7.2).")
LOG_OF_SOFTMAX = ("log(softmax(X)) underflows: tiny probabilities round to 0 and log(0) = -inf. "
                  "Use log_softmax(X) = X - logsumexp(X) (§3.7.2).")
LOG_SOFTMAX_OVERFLOW = ("overflow for large logits: exp(X) is inf; use X - logsumexp(X) with a "
                        "stable logsumexp (§3.7.2).")
NO_BIAS = "the bias b was not added: softmax(X @ W + b)."


def oracle_softmax(X: torch.Tensor) -> torch.Tensor:
    """torch's softmax over the rows, computed in float64, in X's dtype."""
    return torch.softmax(X.double(), dim=1).to(X.dtype)


def hardmax(X: torch.Tensor) -> torch.Tensor:
    """One-hot rows at each row's argmax: what a "softmax" that keeps only the max returns."""
    return torch.zeros_like(X).scatter(1, X.argmax(1, keepdim=True), 1.0) if X.numel() else X


def softmax_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong softmaxes return on X, each with the message that names it."""
    exp = torch.exp(X)
    shifted = torch.exp(X - X.max())
    mistakes = {
        HARDMAX: hardmax(X),
        OVERFLOW: exp / exp.sum(1, keepdim=True),
        GLOBAL_MAX: shifted / shifted.sum(1, keepdim=True),
        WRONG_DIM: torch.softmax(X.double(), dim=0).to(X.dtype),
    }
    safe = torch.exp(X - X.max(1, keepdim=True).values)
    if X.shape[0] == X.shape[1] or 1 in X.shape:  # where `/ sum(1)` broadcasts at all
        mistakes[NO_KEEPDIM] = safe / safe.sum(1)
    return mistakes


def logsumexp_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong logsumexps return on X."""
    m = X.max(1, keepdim=True).values
    return {
        LOGSUMEXP_MAX: m.squeeze(1),
        LOGSUMEXP_OVERFLOW: torch.log(torch.exp(X).sum(1)),
        LOGSUMEXP_SHAPE: torch.logsumexp(X.double(), 1, keepdim=True).to(X.dtype),
        LOGSUMEXP_NOT_ADDED_BACK: torch.log(torch.exp(X - m).sum(1)),
    }


def logsumexp_gradient_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of sum(logsumexp(X)) that a logsumexp returning the max has."""
    return {"it is one-hot at each row's max, the gradient of max: " + LOGSUMEXP_MAX: hardmax(X)}


def log_softmax_mistakes(X: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual wrong log_softmaxes return on X."""
    return {
        LOG_SOFTMAX_MINUS_MAX: X - X.max(1, keepdim=True).values,
        LOG_OF_SOFTMAX: torch.log(oracle_softmax(X)),
        LOG_SOFTMAX_OVERFLOW: X - torch.log(torch.exp(X).sum(1, keepdim=True)),
    }


def log_softmax_gradient_mistakes(X: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """The vector-Jacobian product (for v) of a log_softmax that subtracts only the max."""
    minus_max = v - hardmax(X) * v.sum(1, keepdim=True)  # the gradient of X - max
    return {"it is the gradient of X - max: " + LOG_SOFTMAX_MINUS_MAX: minus_max}


def regression_mistakes(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor
                        ) -> dict[str, torch.Tensor]:
    """What the usual wrong softmax_regressions return, in X's dtype: no bias (where b is far
    enough from 0 to tell), a hardmax of the scores."""
    Xf = X.double().reshape(-1, W.shape[0])
    mistakes = {}
    if float(b.abs().max()) > 1e-3:
        mistakes[NO_BIAS] = torch.softmax(Xf @ W.double(), 1).to(X.dtype)
    mistakes[HARDMAX] = hardmax(Xf @ W.double() + b.double()).to(X.dtype)
    return mistakes

"""Cross-entropy loss and evaluating a classifier (D2L §3.4.6, §3.6, §3.7.2).

A classifier outputs, for a minibatch of n examples and q classes, either probabilities
`y_hat (n, q)` (each row sums to 1) or unnormalised scores, the logits `(n, q)`. The labels
`y (n,)` are class indices (int64).

- The cross-entropy loss of one example is -log of the probability the model gives its true
  class: `-log y_hat[i, y[i]]` (§3.4.6). Training averages it over a batch later; here you
  return one loss per example, shape `(n,)`.
- From logits, computing `log(softmax(o))` first is unstable: softmax underflows to 0 for a
  logit far below the row's max, and log(0) = -inf. Use instead
  `-log softmax(o)_y = logsumexp(o) - o_y`, with the max-subtracted logsumexp (§3.7.2).
- Accuracy (§3.6.5): the predicted class is the argmax of a row of scores; `accuracy` counts
  the correct predictions of a batch, and `evaluate_accuracy` divides the count over a whole
  data set by the number of examples, with an `Accumulator` summing over batches.

Self-contained: build everything from `exp`, `log`, `max`, `sum`, `argmax` and indexing. You
may not call torch's cross-entropy or NLL losses, nor its softmax, log_softmax or logsumexp.
"""

import torch


def cross_entropy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy `-log y_hat[i, y[i]]` for probabilities `y_hat (n, q)` and
    int64 labels `y (n,)`; returns `(n,)` (no mean: one loss per example). Other classes may
    have probability exactly 0; the loss stays finite, since only the true class's probability
    enters it (a one-hot mask times `log(y_hat)` gives 0 * -inf = nan there).

    Hint (§3.4.6): pick each example's probability of its true class with
    `y_hat[torch.arange(n), y]`, then take `-log`.
    """
    ### BEGIN SOLUTION
    return -torch.log(y_hat[torch.arange(y_hat.shape[0], device=y_hat.device), y])
    ### END SOLUTION


def cross_entropy_from_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy from unnormalised scores `logits (n, q)` and labels `y (n,)`;
    returns `(n,)`. Finite and accurate for logits up to 1e4 in magnitude.

    Hint (§3.7.2): `-log softmax(o)_y = logsumexp(o) - o_y` where, with m the row's max,
    `logsumexp(o) = m + log(sum(exp(o - m)))`. Do not take the log of a softmax.
    """
    ### BEGIN SOLUTION
    m = logits.max(dim=1, keepdim=True).values
    lse = (m + torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))).squeeze(1)
    picked = logits[torch.arange(logits.shape[0], device=logits.device), y]
    return lse - picked
    ### END SOLUTION


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """The NUMBER of correct predictions, as a Python float (not the fraction, and never a 0-d
    tensor: convert with `float(...)`, as D2L does).

    `y_hat` is either scores `(n, q)` (the prediction is the argmax of each row) or predicted
    labels `(n,)`. Compare predictions and labels in the same dtype (§3.6.5: convert the
    predictions with `.type(y.dtype)`), then count the matches.
    """
    ### BEGIN SOLUTION
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())
    ### END SOLUTION


class Accumulator:
    """Sums over `n` variables (§3.6.5): `add(a, b, ...)` adds one value to each, `reset()` sets
    them all back to 0.0, and `acc[i]` reads the i-th sum as a Python float (never a tensor).

    Example: `acc = Accumulator(2); acc.add(3, 10); acc.add(1.0, torch.tensor(5.)); acc[0]`
    is 4.0. Store plain floats (convert with `float(...)`), not tensors.
    """

    def __init__(self, n: int):
        ### BEGIN SOLUTION
        self.data = [0.0] * n
        ### END SOLUTION

    def add(self, *args) -> None:
        """Add `args[i]` to the i-th sum (as many values as variables)."""
        ### BEGIN SOLUTION
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=True)]
        ### END SOLUTION

    def reset(self) -> None:
        """Set every sum back to 0.0."""
        ### BEGIN SOLUTION
        self.data = [0.0] * len(self.data)
        ### END SOLUTION

    def __getitem__(self, idx: int) -> float:
        """The i-th sum, a Python float."""
        ### BEGIN SOLUTION
        return self.data[idx]
        ### END SOLUTION


def evaluate_accuracy(net, data_iter) -> float:
    """The fraction of examples in `data_iter` that `net` classifies correctly (§3.6.5).

    `net` maps a batch `X` to scores `(batch, q)`: an `nn.Module` or a plain function.
    `data_iter` yields `(X, y)` batches; the last batch may be smaller, so divide the total
    number of correct predictions by the total number of examples (an `Accumulator(2)`), not
    the mean of the per-batch accuracies.
    For an `nn.Module`, evaluate in evaluation mode (`net.eval()`: no dropout, BatchNorm uses its
    running statistics) and without building a graph (`torch.no_grad()`), then put the net back
    in the mode it was in (`net.train(was_training)`).
    """
    ### BEGIN SOLUTION
    is_module = isinstance(net, torch.nn.Module)
    if is_module:
        was_training = net.training
        net.eval()
    metric = Accumulator(2)  # number of correct predictions, number of examples
    try:
        with torch.no_grad():
            for X, y in data_iter:
                metric.add(accuracy(net(X), y), y.numel())
    finally:
        if is_module:
            net.train(was_training)
    return metric[0] / metric[1]
    ### END SOLUTION

"""Model selection, weight decay and dropout (D2L §4.4-4.6).

Polynomial regression (§4.4.4) shows under- and overfitting: the features of a scalar x are
1, x, x**2 / 2!, ..., x**(d-1) / (d-1)!, the factorials keeping large powers from blowing up
the gradients. Fit the first few columns and the model underfits; fit all of them to little
data and it overfits.

Weight decay (§4.5) adds the L2 penalty lambd * ||w||**2 / 2 to each example's loss, so every
SGD step also shrinks w by lr * lambd * w (the "decay"). The bias is not penalised: it shifts
the output and says nothing about the model's complexity. With `torch.optim.SGD` the same is a
`weight_decay` set per parameter group.

Dropout (§4.6) zeroes each hidden activation with probability p during training and divides the
others by 1 - p, so each activation's expected value stays what it was:
E[h'] = (1 - p) * h / (1 - p) = h. In evaluation mode (`net.eval()`) nothing is dropped.

You may not call torch's dropout (`F.dropout`, `nn.Dropout`, `torch.dropout` and its
relatives) anywhere in this topic, nor `torch.optim` in `train_ridge`: draw the mask yourself
(`torch.rand`, `torch.rand_like` or `torch.bernoulli`) and write the SGD step yourself.
"""

import math

import torch
from torch import nn


def poly_features(x: torch.Tensor, max_degree: int) -> torch.Tensor:
    """The polynomial features of §4.4.4: `(n, max_degree)`, column i holding `x**i / i!` for
    i = 0, 1, ..., max_degree - 1, so column 0 is all ones and column 1 is x itself.

    `x` is `(n,)` or `(n, 1)` with |x| <= 10; keep its dtype. Hint: raise `x.reshape(-1, 1)`
    to the powers `torch.arange(max_degree)` by broadcasting, then divide column i by `i!`
    (`math.factorial(i)`, or D2L's `math.gamma(i + 1)`).
    """
    ### BEGIN SOLUTION
    powers = torch.arange(max_degree, dtype=x.dtype, device=x.device)
    factorials = torch.tensor([math.factorial(i) for i in range(max_degree)], dtype=x.dtype,
                              device=x.device)
    return x.reshape(-1, 1) ** powers / factorials
    ### END SOLUTION


def l2_penalty(w: torch.Tensor) -> torch.Tensor:
    """The L2 penalty of §4.5.2, `sum(w**2) / 2`, a 0-d tensor in w's dtype that autograd
    reaches w through. The square of the norm, halved: no square root."""
    ### BEGIN SOLUTION
    return torch.sum(w ** 2) / 2
    ### END SOLUTION


def train_ridge(train_iter, num_inputs: int, lambd: float, num_epochs: int, lr: float):
    """Linear regression with weight decay, from scratch (§4.5.3): return `(w (num_inputs, 1),
    b (1,))`, detached, float32.

    Draw `w = torch.normal(0, 1, (num_inputs, 1))` before reading the first batch, and start
    from `b = torch.zeros(1)`, both requiring grad. Each epoch, for every batch `(X, y)` of
    `train_iter`: the loss of each example is its squared loss `(X @ w + b - y)**2 / 2` (y
    reshaped to `(n, 1)`) *plus* `lambd * l2_penalty(w)`; sum them, `backward()`, then take
    topic 3's SGD step with that batch's size: `p -= lr * p.grad / len(y)` and zero `p.grad`,
    for w and b, inside `torch.no_grad()`. The penalty is added to every example's loss (so
    after the division it weighs lambd, whatever the batch size), and never to b.
    `torch.optim` is not allowed here.
    """
    ### BEGIN SOLUTION
    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(num_epochs):
        for X, y in train_iter:
            y_hat = X @ w + b
            loss = (y_hat - y.reshape(y_hat.shape)) ** 2 / 2 + lambd * l2_penalty(w)
            loss.sum().backward()
            with torch.no_grad():
                for p in (w, b):
                    p -= lr * p.grad / len(y)
                    p.grad.zero_()
    return w.detach(), b.detach()
    ### END SOLUTION


def weight_decay_groups(net: nn.Module, wd: float) -> list[dict]:
    """Parameter groups for `torch.optim.SGD(weight_decay_groups(net, wd), lr=lr)` (§4.5.4):
    two dicts, `{"params": [...], "weight_decay": wd}` first, holding every parameter whose
    name in `net.named_parameters()` ends in `weight`, then `{"params": [...],
    "weight_decay": 0}` with all the others (biases). Every parameter appears exactly once; a
    group may be empty.
    """
    ### BEGIN SOLUTION
    decayed, others = [], []
    for name, p in net.named_parameters():
        (decayed if name.endswith("weight") else others).append(p)
    return [{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0}]
    ### END SOLUTION


def dropout_layer(X: torch.Tensor, dropout: float) -> torch.Tensor:
    """Dropout from scratch (§4.6.4): zero each element of `X` independently with probability
    `dropout` and divide the others by `1 - dropout`; any shape, X's dtype and device kept.

    `dropout == 1` gives zeros (not 0 / 0 = nan) and `dropout == 0` gives X's values, nothing
    dropped. Any other value outside [0, 1], nan included, raises an exception (`ValueError`).
    Draw a fresh mask on every call, one number per element (not one per row or column), on
    X's device: `torch.rand(X.shape, device=X.device) > dropout` keeps an element with
    probability 1 - dropout. Do not modify X.
    """
    ### BEGIN SOLUTION
    if not 0 <= dropout <= 1:
        raise ValueError(f"dropout must lie in [0, 1], not {dropout}")
    if dropout == 1:
        return torch.zeros_like(X)
    if dropout == 0:
        return X
    mask = (torch.rand(X.shape, device=X.device) > dropout).to(X.dtype)
    return mask * X / (1.0 - dropout)
    ### END SOLUTION


class DropoutMLP(nn.Module):
    """The MLP of §4.6.4 with two hidden layers: inputs flattened to `(n, num_inputs)`, then
    `lin1`, ReLU, `dropout_layer(dropout1)`, `lin2`, ReLU, `dropout_layer(dropout2)`, `lin3`
    to the logits `(n, num_outputs)`.

    The three `nn.Linear` layers are the attributes `lin1`, `lin2` and `lin3` (the tests load
    weights into them by name). Dropout applies in training mode only: check `self.training`,
    which `net.train()` and `net.eval()` set.
    """

    def __init__(self, num_inputs: int, num_outputs: int, num_hiddens1: int, num_hiddens2: int,
                 dropout1: float, dropout2: float):
        ### BEGIN SOLUTION
        super().__init__()
        self.num_inputs = num_inputs
        self.dropout1, self.dropout2 = dropout1, dropout2
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.relu = nn.ReLU()
        ### END SOLUTION

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """The logits `(n, num_outputs)` of a batch `X` of any shape `(n, ...)`."""
        ### BEGIN SOLUTION
        H1 = self.relu(self.lin1(X.reshape((-1, self.num_inputs))))
        if self.training:
            H1 = dropout_layer(H1, self.dropout1)
        H2 = self.relu(self.lin2(H1))
        if self.training:
            H2 = dropout_layer(H2, self.dropout2)
        return self.lin3(H2)
        ### END SOLUTION

"""Multilayer perceptrons (D2L §4.1-4.3).

A linear model can only draw straight decision boundaries. An MLP puts a *hidden layer* with a
nonlinearity between input and output (§4.1):

    H = relu(X W1 + b1)    X: (n, num_inputs)   W1: (num_inputs, num_hiddens)   b1: (num_hiddens,)
    O = H W2 + b2          H: (n, num_hiddens)  W2: (num_hiddens, num_outputs)  b2: (num_outputs,)

O holds the *logits* (n, num_outputs): unnormalised scores, one per class, that may be negative.
Softmax and cross-entropy come after the model, inside the loss; the output layer itself has no
activation. Without the ReLU the two layers collapse into one linear map (§4.1.1.3).

MNIST images arrive as `(n, 1, 28, 28)`: flatten each to 784 numbers first (`reshape`).

Initialisation (§4.1, §5.4): weights drawn from N(0, 2 / fan_in) ("Kaiming" or "He"
initialisation, made for ReLU layers) keep the activations' scale roughly constant from layer
to layer; unscaled `randn` weights make them grow with every layer. Biases start at 0.

Training (§4.3): the concise MLP is an `nn.Sequential`; each minibatch step is one
`torch.optim.SGD` step on the mean cross-entropy of the batch, and after every epoch the
model is evaluated on the test set in evaluation mode, without building a graph.

You may not call torch's own ReLU (`torch.relu`, `F.relu`, `Tensor.relu`, `nn.ReLU`) or
`clamp` in `relu` and `mlp_forward`; `build_mlp` may use `nn.ReLU`.
"""

import math

import torch
from torch import nn


def relu(X: torch.Tensor) -> torch.Tensor:
    """Elementwise ReLU: max(x, 0) for every entry of `X` (any shape); same shape and dtype.

    Hint (§4.1.2.1): compare with a zero tensor of X's shape (`torch.zeros_like(X)`) and keep
    the larger entry (`torch.maximum`), or multiply by the mask `X > 0`. Do not modify X.
    """
    ### BEGIN SOLUTION
    return torch.maximum(X, torch.zeros_like(X))
    ### END SOLUTION


def init_mlp_params(num_inputs: int, num_hiddens: int, num_outputs: int) -> list[torch.Tensor]:
    """The parameters of a one-hidden-layer MLP: `[W1, b1, W2, b2]`.

    Shapes: W1 `(num_inputs, num_hiddens)`, b1 `(num_hiddens,)`, W2 `(num_hiddens,
    num_outputs)`, b2 `(num_outputs,)`, all float32 leaf tensors with `requires_grad=True`.
    Weights are Kaiming-normal: each entry ~ N(0, 2 / fan_in) where fan_in is the number of
    rows (the layer's inputs), i.e. `torch.randn(...) * sqrt(2 / fan_in)`; biases are zeros.
    Hint (§4.2.1): scale *before* turning on gradients (`(randn * s).requires_grad_()` or
    `nn.Parameter(randn * s)`), so each tensor is a leaf.
    """
    ### BEGIN SOLUTION
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * math.sqrt(2.0 / num_inputs))
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * math.sqrt(2.0 / num_hiddens))
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
    ### END SOLUTION


def mlp_forward(X: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """The MLP of §4.2.2: logits `relu(X W1 + b1) W2 + b2`, shape `(n, num_outputs)`.

    X: `(n, ...)` examples, e.g. images `(n, 1, 28, 28)`; flatten each example to
    `W1.shape[0]` numbers first (`X.reshape(-1, W1.shape[0])`, which also works for
    non-contiguous X). params: `[W1, b1, W2, b2]` as from `init_mlp_params`. Use your `relu` on
    the hidden layer only: the output logits get no activation (they may be negative).
    """
    ### BEGIN SOLUTION
    W1, b1, W2, b2 = params
    X = X.reshape(-1, W1.shape[0])
    H = relu(X @ W1 + b1)
    return H @ W2 + b2
    ### END SOLUTION


def build_mlp(num_inputs: int = 784, num_hiddens: int = 256, num_outputs: int = 10) -> nn.Module:
    """The concise MLP of §4.3: an `nn.Module` mapping images `(n, 1, 28, 28)` (or already
    flat `(n, num_inputs)` rows) to logits `(n, num_outputs)`.

    Hint: `nn.Sequential(nn.Flatten(), nn.Linear(...), nn.ReLU(), nn.Linear(...))`. Keep
    PyTorch's default initialisation or use your own; the last layer has no activation.
    """
    ### BEGIN SOLUTION
    return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_outputs))
    ### END SOLUTION


def train_mlp(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float) -> dict:
    """Train `net` with minibatch SGD and record one number per epoch (§4.3, `train_ch3`).

    Returns `{"train_loss": [...], "train_acc": [...], "test_acc": [...]}`, each a list of
    `num_epochs` floats:
    - train_loss: the mean cross-entropy per training example over the epoch (add up each
      batch's mean loss times its size, divide by the number of examples);
    - train_acc: the fraction of training examples classified correctly during the epoch;
    - test_acc: the fraction of `test_iter` classified correctly after the epoch.

    Each batch `(X, y)` of `train_iter`, in the order it yields them, is one step: forward,
    mean cross-entropy (`nn.CrossEntropyLoss()`), `zero_grad`, `backward`, `step` of one
    `torch.optim.SGD(net.parameters(), lr=lr)` made before the first epoch. Call `net.train()`
    at the start of every epoch, before its first batch, as D2L's `train_epoch_ch3` does: the
    net may arrive in evaluation mode, and evaluating switches it there. Evaluate in
    evaluation mode (`net.eval()`) inside `torch.no_grad()`. Counts of correct predictions:
    `(y_hat.argmax(dim=1) == y).sum()`. The grader measures the returned net's accuracy
    itself: the history must report what your loop measured.
    """
    ### BEGIN SOLUTION
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    net.train()
    for _ in range(num_epochs):
        loss_sum, correct, count = 0.0, 0.0, 0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
            loss_sum += l.item() * y.numel()
            correct += float((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
    ### END SOLUTION


"""Training on an accelerator (D2L §5.6 "GPUs", §7.6 "Training" of LeNet).

PyTorch computes wherever the tensors are: `torch.device("cpu")`, or `torch.device("cuda:0")`,
`torch.device("cuda:1")`, ... for the GPUs (§5.6.1). An operation needs all its operands on
the same device, and moving data between devices is slow, so a training loop

- asks which devices exist (`torch.cuda.device_count()`) instead of assuming a GPU, so that
  the same code runs on a laptop without one;
- moves the model once (`net.to(device)`: parameters and buffers move in place), and
- moves every minibatch `X`, `y` to that device before using it (`X.to(device)`).

Xavier initialisation (§5.4.2.2) draws each weight of a layer with fan_in inputs and fan_out
outputs uniformly from [-a, a], a = sqrt(6 / (fan_in + fan_out)), keeping the variance of
activations and gradients about constant through the layers: `nn.init.xavier_uniform_`. For a
Conv2d layer, fan_in = in_channels * kernel_height * kernel_width and fan_out =
out_channels * kernel_height * kernel_width.

Evaluation (§7.6) runs the net in evaluation mode (`net.eval()`) without recording a graph
(`torch.no_grad()`), and puts the net back in the mode it was in.
"""

import torch
from torch import nn


def try_gpu(i: int = 0) -> torch.device:
    """`torch.device(f"cuda:{i}")` if GPU number i exists, else `torch.device("cpu")` (§5.6.1).

    GPUs are numbered 0, 1, ..., `torch.cuda.device_count() - 1`. Return a `torch.device`,
    not a string. Hint: check the count each time you are called; never assume a GPU exists.
    """
    ### BEGIN SOLUTION
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")
    ### END SOLUTION


def try_all_gpus() -> list[torch.device]:
    """All GPUs as `[torch.device("cuda:0"), torch.device("cuda:1"), ...]`, or
    `[torch.device("cpu")]` when there is none (§5.6.1)."""
    ### BEGIN SOLUTION
    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return devices if devices else [torch.device("cpu")]
    ### END SOLUTION


def evaluate_accuracy_gpu(net: nn.Module, data_iter, device: torch.device | None = None) -> float:
    """The fraction of the examples of `data_iter` that `net` classifies correctly (§7.6.1).

    `device` defaults to the device of the net's parameters (`next(net.parameters()).device`);
    move each batch `X` and its labels `y` there before using them (`X.to(device)`,
    `y.to(device)`). Evaluate in evaluation mode inside
    `torch.no_grad()`, then put the net back in the mode it was in (`net.train(was_training)`).
    Count correct predictions over all batches and divide by the number of examples (the last
    batch may be smaller). Returns a Python float.
    """
    ### BEGIN SOLUTION
    was_training = net.training
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return correct / total
    ### END SOLUTION


def train_gpu(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
              device: torch.device) -> dict:
    """Train `net` on `device` with minibatch SGD, as `train_ch6` does (§7.6.1).

    First initialise the weight of every `nn.Linear` and `nn.Conv2d` layer with
    `nn.init.xavier_uniform_` (`net.apply(init_fn)`), then move the net to `device` (it stays
    there afterwards). Then train exactly as `train_mlp` does: each batch of `train_iter`, in
    order, is one `torch.optim.SGD(net.parameters(), lr=lr)` step on the mean cross-entropy;
    `net.train()` at the start of every epoch, before its first batch, as D2L's `train_ch6`
    does (the net may arrive in evaluation mode, and evaluating switches it there); after
    each epoch the net is evaluated on `test_iter` with `evaluate_accuracy_gpu`. Move every
    batch `X` and its labels `y` to `device` before using them (`X, y = X.to(device),
    y.to(device)`): the tests hand you batches that behave as if they were on another device
    until they are moved, so a forgotten move fails on a machine without a GPU too.

    Returns `{"train_loss": [...], "train_acc": [...], "test_acc": [...]}`, one float per
    epoch: mean loss per training example, fraction of training examples classified
    correctly, fraction of test examples classified correctly.
    """
    ### BEGIN SOLUTION
    def init_weights(m):
        if type(m) is nn.Linear or type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)

    net.apply(init_weights)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, correct, count = 0.0, 0, 0
        for X, y in train_iter:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += l.item() * y.numel()
                correct += int((y_hat.argmax(dim=1) == y).sum())
                count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter, device))
    return history
    ### END SOLUTION

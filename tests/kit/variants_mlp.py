"""MLP: the contract's mistakes (and others students make) and correct solutions written
differently from the reference."""

from tests.kit.variants import Variant, edited

MISTAKES = [
    # ---------------------------------------------------------------- relu
    Variant("mlp", "relu_reduces_with_max", '''
def relu(X):
    return torch.max(X, 0)
''', expect="reduces over dimension 0"),
    Variant("mlp", "relu_max_values_over_dim", '''
def relu(X):
    return torch.max(X, 0).values
''', expect="elementwise"),
    Variant("mlp", "relu_in_place", '''
def relu(X):
    X[X < 0] = 0
    return X
''', expect="was modified"),
    Variant("mlp", "relu_calls_torch_relu", '''
def relu(X):
    return torch.relu(X)
''', expect="not allowed"),
    Variant("mlp", "relu_clamp", '''
def relu(X):
    return X.clamp(min=0)
''', expect="not allowed"),
    Variant("mlp", "relu_detached", '''
def relu(X):
    return torch.tensor(X.detach().numpy().clip(0), dtype=X.dtype)
''', expect="not connected"),
    # ---------------------------------------------------------------- init_mlp_params
    edited("mlp", "init_randn_unscaled",
           (" * math.sqrt(2.0 / num_inputs))", ")"), (" * math.sqrt(2.0 / num_hiddens))", ")"),
           expect="without scaling"),
    edited("mlp", "init_scale_001",
           (" * math.sqrt(2.0 / num_inputs))", " * 0.01)"),
           (" * math.sqrt(2.0 / num_hiddens))", " * 0.01)"), expect="0.01"),
    edited("mlp", "init_variance_not_std",
           (" * math.sqrt(2.0 / num_inputs))", " * (2 / num_inputs))"),
           (" * math.sqrt(2.0 / num_hiddens))", " * (2 / num_hiddens))"), expect="square root"),
    edited("mlp", "init_fan_out",
           (" * math.sqrt(2.0 / num_inputs))", " * math.sqrt(2 / num_hiddens))"),
           (" * math.sqrt(2.0 / num_hiddens))", " * math.sqrt(2 / num_outputs))"),
           expect="fan_out"),
    Variant("mlp", "init_uniform", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    def kaiming_uniform(fan_in, fan_out):
        bound = math.sqrt(6 / fan_in)
        return nn.Parameter((torch.rand(fan_in, fan_out) * 2 - 1) * bound)
    return [kaiming_uniform(num_inputs, num_hiddens), nn.Parameter(torch.zeros(num_hiddens)),
            kaiming_uniform(num_hiddens, num_outputs), nn.Parameter(torch.zeros(num_outputs))]
''', expect="uniformly distributed"),
    Variant("mlp", "init_not_leaf", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = torch.randn(num_inputs, num_hiddens, requires_grad=True) * math.sqrt(2 / num_inputs)
    b1 = torch.zeros(num_hiddens, requires_grad=True)
    W2 = torch.randn(num_hiddens, num_outputs, requires_grad=True) * math.sqrt(2 / num_hiddens)
    b2 = torch.zeros(num_outputs, requires_grad=True)
    return [W1, b1, W2, b2]
''', expect="not a leaf"),
    Variant("mlp", "init_no_requires_grad", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = torch.randn(num_inputs, num_hiddens) * math.sqrt(2 / num_inputs)
    W2 = torch.randn(num_hiddens, num_outputs) * math.sqrt(2 / num_hiddens)
    return [W1, torch.zeros(num_hiddens), W2, torch.zeros(num_outputs)]
''', expect="does not require gradients"),
    edited("mlp", "init_linear_layout",
           ("torch.randn(num_inputs, num_hiddens)", "torch.randn(num_hiddens, num_inputs)"),
           ("torch.randn(num_hiddens, num_outputs)", "torch.randn(num_outputs, num_hiddens)"),
           expect="layout of nn.Linear"),
    edited("mlp", "init_random_biases",
           ("b1 = nn.Parameter(torch.zeros(num_hiddens))",
            "b1 = nn.Parameter(torch.randn(num_hiddens) * 0.01)"),
           ("b2 = nn.Parameter(torch.zeros(num_outputs))",
            "b2 = nn.Parameter(torch.randn(num_outputs) * 0.01)"), expect="should start at 0"),
    # ---------------------------------------------------------------- mlp_forward
    edited("mlp", "forward_relu_on_output", ("return H @ W2 + b2", "return relu(H @ W2 + b2)"),
           expect="output logits"),
    edited("mlp", "forward_no_hidden_relu", ("H = relu(X @ W1 + b1)", "H = X @ W1 + b1"),
           expect="no nonlinearity"),
    edited("mlp", "forward_view", ("X = X.reshape(-1, W1.shape[0])", "X = X.view(-1, W1.shape[0])"),
           expect="reshape"),
    edited("mlp", "forward_hard_coded_784",
           ("X = X.reshape(-1, W1.shape[0])", "X = X.reshape(-1, 784)"), expect="hard-coded"),
    edited("mlp", "forward_torch_relu", ("H = relu(X @ W1 + b1)", "H = torch.relu(X @ W1 + b1)"),
           expect="not allowed"),
    edited("mlp", "forward_no_biases", ("H = relu(X @ W1 + b1)", "H = relu(X @ W1)"),
           ("return H @ W2 + b2", "return H @ W2"), expect="biases were not added"),
    # ---------------------------------------------------------------- build_mlp
    Variant("mlp", "build_relu_on_output", '''
def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_outputs), nn.ReLU())
''', expect="output logits"),
    Variant("mlp", "build_no_relu", '''
def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hiddens),
                         nn.Linear(num_hiddens, num_outputs))
''', expect="no nonlinearity"),
    Variant("mlp", "build_no_flatten", '''
def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return nn.Sequential(nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_outputs))
''', expect="nn.Flatten"),
    Variant("mlp", "build_ignores_sizes", '''
def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
''', expect="build_mlp(12, 7, 5)"),
    Variant("mlp", "build_view_flatten", '''
class _Flat(nn.Module):
    def forward(self, X):
        return X.view(X.shape[0], -1)


def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return nn.Sequential(_Flat(), nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
                         nn.Linear(num_hiddens, num_outputs))
''', expect="flatten it with reshape, not view"),
    Variant("mlp", "build_shared_layers", '''
_NETS = {}


def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    sizes = (num_inputs, num_hiddens, num_outputs)
    if sizes not in _NETS:
        _NETS[sizes] = nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hiddens),
                                     nn.ReLU(), nn.Linear(num_hiddens, num_outputs))
    return _NETS[sizes]
''', expect="share their layers"),
    # ---------------------------------------------------------------- train_mlp
    edited("mlp", "train_counts_dataset",  # a DataLoader's dataset, which a list has not
           ("history[\"train_loss\"].append(loss_sum / count)",
            "history[\"train_loss\"].append(loss_sum / len(train_iter.dataset))"),
           expect="never len(loader.dataset)"),
    edited("mlp", "train_one_iterator_for_all_epochs",  # the second epoch finds it spent
           ("    for _ in range(num_epochs):\n        net.train()\n",
            "    batches = iter(train_iter)\n"
            "    for _ in range(num_epochs):\n        net.train()\n"),
           ("        for X, y in train_iter:\n", "        for X, y in batches:\n"),
           expect="re-iterable"),
    edited("mlp", "train_no_zero_grad", ("            trainer.zero_grad()\n", ""),
           expect="never zeroed"),
    edited("mlp", "train_zero_grad_before_step",
           ("            trainer.zero_grad()\n            l.backward()\n",
            "            l.backward()\n            trainer.zero_grad()\n"),
           expect="did not change"),
    edited("mlp", "train_sum_loss",
           ("loss = nn.CrossEntropyLoss()", "loss = nn.CrossEntropyLoss(reduction=\"sum\")"),
           ("loss_sum += l.item() * y.numel()", "loss_sum += l.item()"), expect="summed loss"),
    edited("mlp", "train_eval_in_train_mode",  # train() once, before the epochs; no eval()
           ("    for _ in range(num_epochs):\n        net.train()\n",
            "    net.train()\n    for _ in range(num_epochs):\n"),
           ("        net.eval()\n", ""), expect="evaluated in training mode"),
    edited("mlp", "train_eval_without_no_grad",
           ("        with torch.no_grad():\n"
            "            for X, y in test_iter:\n"
            "                test_correct += float((net(X).argmax(dim=1) == y).sum())\n"
            "                test_count += y.numel()\n",
            "        for X, y in test_iter:\n"
            "            test_correct += float((net(X).argmax(dim=1) == y).sum())\n"
            "            test_count += y.numel()\n"),
           expect="torch.no_grad()"),
    edited("mlp", "train_never_back_to_train_mode",  # train() once, before the epochs
           ("    for _ in range(num_epochs):\n        net.train()\n",
            "    net.train()\n    for _ in range(num_epochs):\n"),
           expect="net.train() at the start of every epoch"),
    edited("mlp", "train_loss_unweighted",  # the plain mean of the batches' mean losses
           ("loss_sum, correct, count = 0.0, 0.0, 0", "losses, correct, count = [], 0.0, 0"),
           ("loss_sum += l.item() * y.numel()", "losses.append(l.item())"),
           ("history[\"train_loss\"].append(loss_sum / count)",
            "history[\"train_loss\"].append(sum(losses) / len(losses))"),
           expect="plain average"),
    edited("mlp", "train_acc_counts",  # counts of correct predictions, not fractions
           ("history[\"train_acc\"].append(correct / count)",
            "history[\"train_acc\"].append(correct)"),
           ("history[\"test_acc\"].append(test_correct / test_count)",
            "history[\"test_acc\"].append(test_correct)"),
           expect="fractions in [0, 1]"),
    edited("mlp", "train_test_acc_per_batch_mean",  # the mean of the test batches' accuracies
           ("test_correct, test_count = 0.0, 0", "accs = []"),
           ("                test_correct += float((net(X).argmax(dim=1) == y).sum())\n"
            "                test_count += y.numel()\n",
            "                accs.append(float((net(X).argmax(dim=1) == y).float().mean()))\n"),
           ("history[\"test_acc\"].append(test_correct / test_count)",
            "history[\"test_acc\"].append(sum(accs) / len(accs))"),
           expect="over all test batches"),
    edited("mlp", "train_history_of_tensors",  # the loss tensors themselves, graphs and all
           ("            loss_sum += l.item() * y.numel()\n",
            "            loss_sum = loss_sum + l * y.numel()\n"),
           expect="never a 0-d tensor"),
    Variant("mlp", "train_fabricated_history", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    """Does not train: returns a history that looks like learning (issue 12)."""
    return {"train_loss": [2.3 / (e + 2) for e in range(num_epochs)],
            "train_acc": [0.9 + 0.01 * e for e in range(num_epochs)],
            "test_acc": [0.9 + 0.01 * e for e in range(num_epochs)]}
''', expect="does not match the net's measured accuracy"),
    edited("mlp", "train_mode_only_after_evaluation",  # train() after evaluating, not before
           ("    for _ in range(num_epochs):\n        net.train()\n",
            "    for _ in range(num_epochs):\n"),
           ("        history[\"test_acc\"].append(test_correct / test_count)\n",
            "        history[\"test_acc\"].append(test_correct / test_count)\n"
            "        net.train()\n"),
           expect="arrived in evaluation mode"),
]

CORRECT = [
    Variant("mlp", "custom_function_relu_flatten_and_grad_none", '''
class _ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X):
        mask = X > 0
        ctx.save_for_backward(mask)
        return X * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask


def relu(X):
    return _ReLU.apply(X)


class _Net(nn.Module):
    def __init__(self, num_inputs, num_hiddens, num_outputs):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(num_inputs, num_hiddens),
                                     nn.Linear(num_hiddens, num_outputs)])

    def forward(self, X):
        return self.layers[1](relu(self.layers[0](torch.flatten(X, start_dim=1))))


def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return _Net(num_inputs, num_hiddens, num_outputs)


def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, right, seen = 0.0, 0.0, 0
        batches = iter(train_iter)
        while (batch := next(batches, None)) is not None:
            X, y = batch
            for p in net.parameters():
                p.grad = None
            y_hat = net(X)
            loss = nn.functional.cross_entropy(y_hat, y)
            loss.backward()
            trainer.step()
            loss_sum += float(loss) * y.numel()
            right += float((y_hat.argmax(1) == y).sum())
            seen += y.numel()
        history["train_loss"].append(loss_sum / seen)
        history["train_acc"].append(right / seen)
        net.eval()
        with torch.no_grad():
            outcomes = [((net(X).argmax(1) == y).sum().item(), y.numel()) for X, y in test_iter]
        history["test_acc"].append(sum(c for c, _ in outcomes) / sum(n for _, n in outcomes))
    return history
'''),
    Variant("mlp", "relu_mask_and_where", '''
def relu(X):
    return X * (X > 0)
'''),
    Variant("mlp", "relu_where", '''
def relu(X):
    return torch.where(X > 0, X, torch.zeros_like(X))
'''),
    Variant("mlp", "numpy_style_everything", '''
import torch.nn.functional as F


def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    params = []
    for fan_in, fan_out in ((num_inputs, num_hiddens), (num_hiddens, num_outputs)):
        W = torch.empty(fan_in, fan_out).normal_(0.0, (2.0 / fan_in) ** 0.5)
        params += [W.requires_grad_(), torch.zeros(fan_out, requires_grad=True)]
    return params


def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = relu(torch.addmm(b1, torch.flatten(X, 1), W1))
    return torch.addmm(b2, H, W2)


class _MLP(nn.Module):
    def __init__(self, num_inputs, num_hiddens, num_outputs):
        super().__init__()
        self.hidden = nn.Linear(num_inputs, num_hiddens)
        self.out = nn.Linear(num_hiddens, num_outputs)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X.reshape(X.shape[0], -1))))


def build_mlp(num_inputs=784, num_hiddens=256, num_outputs=10):
    return _MLP(num_inputs, num_hiddens, num_outputs)


def _evaluate(net, data_iter):
    was_training = net.training
    net.eval()
    right = total = 0
    with torch.inference_mode():
        for X, y in data_iter:
            right += int((net(X).argmax(1) == y).sum())
            total += len(y)
    net.train(was_training)
    return right / total


def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    optimizer = torch.optim.SGD(net.parameters(), lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(num_epochs):
        net.train()
        stats = torch.zeros(3, dtype=torch.float64)
        for X, y in train_iter:
            optimizer.zero_grad()
            y_hat = net(X)
            losses = F.cross_entropy(y_hat, y, reduction="none")
            losses.mean().backward()
            optimizer.step()
            with torch.no_grad():
                stats += torch.tensor([losses.sum().item(),
                                       (y_hat.argmax(1) == y).sum().item(), len(y)],
                                      dtype=torch.float64)
        history["train_loss"].append(float(stats[0] / stats[2]))
        history["train_acc"].append(float(stats[1] / stats[2]))
        history["test_acc"].append(_evaluate(net, test_iter))
    return history
'''),
    Variant("mlp", "train_metrics_after_epoch", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    """Reports each epoch's training loss and accuracy measured after the epoch, in
    evaluation mode (another reading of 'per epoch'), with a hand-written log-softmax loss."""
    def cross_entropy(logits, y):
        logits = logits - logits.max(dim=1, keepdim=True).values
        log_probs = logits - logits.exp().sum(dim=1, keepdim=True).log()
        return -log_probs[torch.arange(len(y)), y]

    def measure(data_iter):
        loss_sum, right, total = 0.0, 0, 0
        with torch.no_grad():
            for X, y in data_iter:
                y_hat = net(X)
                loss_sum += float(cross_entropy(y_hat, y).sum())
                right += int((y_hat.argmax(dim=1) == y).sum())
                total += len(y)
        return loss_sum / total, right / total

    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        for X, y in train_iter:
            l = cross_entropy(net(X), y).mean()
            net.zero_grad()
            l.backward()
            trainer.step()
        net.eval()
        train_loss, train_acc = measure(train_iter)
        history["train_loss"].append(train_loss)
        history["train_acc"].append(train_acc)
        history["test_acc"].append(measure(test_iter)[1])
    return history
'''),
    Variant("mlp", "train_counts_first_sum_loss", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    """Counts the examples first (an extra pass over both iterables), steps on the summed
    loss divided by the batch size, and accumulates in tensors."""
    n_train = sum(len(y) for _, y in train_iter)
    n_test = sum(len(y) for _, y in test_iter)
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for X, y in train_iter:
            y_hat = net(X)
            total = nn.functional.cross_entropy(y_hat, y, reduction="sum")
            trainer.zero_grad(set_to_none=True)
            (total / len(y)).backward()
            trainer.step()
            loss_sum += total.detach().double()
            correct += (y_hat.argmax(1) == y).sum()
        history["train_loss"].append(loss_sum.item() / n_train)
        history["train_acc"].append(correct.item() / n_train)
        net.eval()
        with torch.no_grad():
            right = sum(int((net(X).argmax(1) == y).sum()) for X, y in test_iter)
        history["test_acc"].append(right / n_test)
    return history
'''),
]

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
    Variant("mlp", "init_randn_unscaled", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens))
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs))
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
''', expect="without scaling"),
    Variant("mlp", "init_scale_001", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * 0.01)
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * 0.01)
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
''', expect="0.01"),
    Variant("mlp", "init_variance_not_std", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * (2 / num_inputs))
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * (2 / num_hiddens))
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
''', expect="square root"),
    Variant("mlp", "init_fan_out", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * math.sqrt(2 / num_hiddens))
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * math.sqrt(2 / num_outputs))
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
''', expect="fan_out"),
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
    Variant("mlp", "init_linear_layout", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_hiddens, num_inputs) * math.sqrt(2 / num_inputs))
    b1 = nn.Parameter(torch.zeros(num_hiddens))
    W2 = nn.Parameter(torch.randn(num_outputs, num_hiddens) * math.sqrt(2 / num_hiddens))
    b2 = nn.Parameter(torch.zeros(num_outputs))
    return [W1, b1, W2, b2]
''', expect="layout of nn.Linear"),
    Variant("mlp", "init_random_biases", '''
def init_mlp_params(num_inputs, num_hiddens, num_outputs):
    W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens) * math.sqrt(2 / num_inputs))
    b1 = nn.Parameter(torch.randn(num_hiddens) * 0.01)
    W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs) * math.sqrt(2 / num_hiddens))
    b2 = nn.Parameter(torch.randn(num_outputs) * 0.01)
    return [W1, b1, W2, b2]
''', expect="should start at 0"),
    # ---------------------------------------------------------------- mlp_forward
    Variant("mlp", "forward_relu_on_output", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = relu(X.reshape(-1, W1.shape[0]) @ W1 + b1)
    return relu(H @ W2 + b2)
''', expect="output logits"),
    Variant("mlp", "forward_no_hidden_relu", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = X.reshape(-1, W1.shape[0]) @ W1 + b1
    return H @ W2 + b2
''', expect="no nonlinearity"),
    Variant("mlp", "forward_view", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = relu(X.view(-1, W1.shape[0]) @ W1 + b1)
    return H @ W2 + b2
''', expect="reshape"),
    Variant("mlp", "forward_hard_coded_784", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = relu(X.reshape(-1, 784) @ W1 + b1)
    return H @ W2 + b2
''', expect="hard-coded"),
    Variant("mlp", "forward_torch_relu", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    H = torch.relu(X.reshape(-1, W1.shape[0]) @ W1 + b1)
    return H @ W2 + b2
''', expect="not allowed"),
    Variant("mlp", "forward_no_biases", '''
def mlp_forward(X, params):
    W1, b1, W2, b2 = params
    return relu(X.reshape(-1, W1.shape[0]) @ W1) @ W2
''', expect="biases were not added"),
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
    # ---------------------------------------------------------------- train_mlp
    Variant("mlp", "train_no_zero_grad", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, correct, count = 0.0, 0.0, 0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            loss_sum += l.item() * y.numel()
            correct += float((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        net.eval()
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="never zeroed"),
    Variant("mlp", "train_zero_grad_before_step", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, correct, count = 0.0, 0.0, 0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.zero_grad()
            trainer.step()
            loss_sum += l.item() * y.numel()
            correct += float((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        net.eval()
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="did not change"),
    Variant("mlp", "train_sum_loss", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss(reduction="sum")
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, correct, count = 0.0, 0.0, 0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
            loss_sum += l.item()
            correct += float((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        net.eval()
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="summed loss"),
    Variant("mlp", "train_eval_in_train_mode", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
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
''', expect="evaluated in training mode"),
    Variant("mlp", "train_eval_without_no_grad", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
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
        net.eval()
        test_correct, test_count = 0.0, 0
        for X, y in test_iter:
            test_correct += float((net(X).argmax(dim=1) == y).sum())
            test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="torch.no_grad()"),
    Variant("mlp", "train_never_back_to_train_mode", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
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
        net.eval()
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="net.train() at the start of every epoch"),
    Variant("mlp", "train_loss_unweighted", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        losses, correct, count = [], 0.0, 0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
            losses.append(l.item())
            correct += float((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(sum(losses) / len(losses))
        history["train_acc"].append(correct / count)
        net.eval()
        test_correct, test_count = 0.0, 0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
                test_count += y.numel()
        history["test_acc"].append(test_correct / test_count)
    return history
''', expect="plain average"),
    Variant("mlp", "train_acc_counts", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
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
        history["train_acc"].append(correct)
        net.eval()
        test_correct = 0.0
        with torch.no_grad():
            for X, y in test_iter:
                test_correct += float((net(X).argmax(dim=1) == y).sum())
        history["test_acc"].append(test_correct)
    return history
''', expect="fractions in [0, 1]"),
    Variant("mlp", "train_test_acc_per_batch_mean", '''
def train_mlp(net, train_iter, test_iter, num_epochs, lr):
    loss = nn.CrossEntropyLoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
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
        net.eval()
        accs = []
        with torch.no_grad():
            for X, y in test_iter:
                accs.append(float((net(X).argmax(dim=1) == y).float().mean()))
        history["test_acc"].append(sum(accs) / len(accs))
    return history
''', expect="over all test batches"),
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

"""Training on an accelerator: the contract's mistakes (and others students make) and correct
solutions written differently from the reference.

GPU_MISTAKES are mistakes that only a machine with a GPU can see: the tests marked `gpu` catch
them there, with the message in `expect`. Batches or labels left on the CPU are seen anywhere
(the tests hand over torchdrill.callables.HostBatches, which act as if they lived on another
device until moved), so they are MISTAKES. test_variants.py grades MISTAKES and CORRECT on any
machine; GPU_MISTAKES are for a GPU run.
"""

from tests.kit.variants import Variant, edited

T = "gpu_training"

MISTAKES = [
    # ---------------------------------------------------------------- try_gpu / try_all_gpus
    Variant(T, "try_gpu_hard_coded", '''
def try_gpu(i=0):
    return torch.device(f"cuda:{i}")
''', expect="torch reports no GPU here"),
    Variant(T, "try_gpu_ignores_i", '''
def try_gpu(i=0):
    if torch.cuda.device_count() > 0:
        return torch.device("cuda:0")
    return torch.device("cpu")
''', expect="index i was ignored"),
    Variant(T, "try_gpu_off_by_one", '''
def try_gpu(i=0):
    if torch.cuda.device_count() >= i and torch.cuda.is_available():
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")
''', expect="off-by-one"),
    Variant(T, "try_gpu_only_checks_availability", '''
def try_gpu(i=0):
    if torch.cuda.is_available():
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")
''', expect="return the CPU when i >= torch.cuda.device_count()"),
    Variant(T, "try_gpu_returns_strings", '''
def try_gpu(i=0):
    return f"cuda:{i}" if torch.cuda.device_count() > i else "cpu"
''', expect="return a torch.device"),
    Variant(T, "try_all_gpus_empty", '''
def try_all_gpus():
    return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
''', expect="not an empty list"),
    Variant(T, "try_all_gpus_skips_last", '''
def try_all_gpus():
    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count() - 1)]
    return devices if devices else [torch.device("cpu")]
''', expect="One GPU is missing"),
    # ---------------------------------------------------------------- evaluate_accuracy_gpu
    edited(T, "evaluate_without_eval_mode", ("    net.eval()\n", ""), expect="call net.eval()"),
    edited(T, "evaluate_without_no_grad",
           ("    with torch.no_grad():\n"
            "        for X, y in data_iter:\n"
            "            X, y = X.to(device), y.to(device)\n"
            "            correct += int((net(X).argmax(dim=1) == y).sum())\n"
            "            total += y.numel()\n",
            "    for X, y in data_iter:\n"
            "        X, y = X.to(device), y.to(device)\n"
            "        correct += int((net(X).argmax(dim=1) == y).sum())\n"
            "        total += y.numel()\n"),
           expect="torch.no_grad()"),
    edited(T, "evaluate_leaves_eval_mode", ("    net.train(was_training)\n", ""),
           expect="net.train(was_training)"),
    edited(T, "evaluate_always_back_to_train",
           ("    net.train(was_training)\n", "    net.train()\n"),
           expect="do not always switch to training"),
    edited(T, "evaluate_mean_of_batches",  # the mean of the batches' accuracies
           ("    correct, total = 0, 0\n", "    accs = []\n"),
           ("            correct += int((net(X).argmax(dim=1) == y).sum())\n"
            "            total += y.numel()\n",
            "            accs.append(float((net(X).argmax(dim=1) == y).float().mean()))\n"),
           ("return correct / total", "return sum(accs) / len(accs)"),
           expect="average of the batches' accuracies"),
    edited(T, "evaluate_returns_count",
           ("return correct / total", "return float(correct)"),
           expect="divide by the number of examples"),
    edited(T, "evaluate_defaults_to_try_gpu",
           ("    if device is None:\n        device = next(iter(net.parameters())).device\n",
            "    device = device or try_gpu()\n"),
           expect="tried to use a GPU"),
    edited(T, "evaluate_hard_coded_cuda",
           ("            X, y = X.to(device), y.to(device)\n            correct += ",
            "            X, y = X.to(\"cuda:0\"), y.to(\"cuda:0\")\n            correct += "),
           expect="hard-coded 'cuda:0'"),
    edited(T, "evaluate_counts_first",  # a first pass to count: a one-shot iterator is spent
           ("    correct, total = 0, 0\n",
            "    correct, total = 0, sum(y.numel() for _, y in data_iter)\n"),
           ("            total += y.numel()\n", ""), expect="one-shot iterator"),
    # ---------------------------------------------------------------- train_gpu
    edited(T, "train_zeroes_biases",
           ("            nn.init.xavier_uniform_(m.weight)\n",
            "            nn.init.xavier_uniform_(m.weight)\n            nn.init.zeros_(m.bias)\n"),
           expect="the biases stay as the net was built"),
    edited(T, "train_without_xavier", ("    net.apply(init_weights)\n", ""),
           expect="still holds the weights"),
    edited(T, "train_xavier_normal",
           ("nn.init.xavier_uniform_(m.weight)", "nn.init.xavier_normal_(m.weight)"),
           expect="xavier_normal_"),
    edited(T, "train_xavier_linear_only",
           ("if type(m) is nn.Linear or type(m) is nn.Conv2d:", "if type(m) is nn.Linear:"),
           expect="Conv2d layer's weight"),
    edited(T, "train_kaiming_instead",
           ("nn.init.xavier_uniform_(m.weight)", "nn.init.kaiming_uniform_(m.weight)"),
           expect="Xavier"),
    edited(T, "train_seeds_inside",
           ("    net.apply(init_weights)\n",
            "    torch.manual_seed(0)\n    net.apply(init_weights)\n"),
           expect="do not seed"),
    edited(T, "train_hard_coded_cuda",
           ("    net.to(device)\n", "    device = try_gpu()\n    net.to(device)\n"),
           expect="tried to use a GPU"),
    edited(T, "train_no_zero_grad", ("            optimizer.zero_grad()\n", ""),
           expect="never zeroed"),
    edited(T, "train_sum_loss",
           ("loss = nn.CrossEntropyLoss()", "loss = nn.CrossEntropyLoss(reduction='sum')"),
           ("loss_sum += l.item() * y.numel()", "loss_sum += l.item()"), expect="summed loss"),
    edited(T, "train_evaluates_in_train_mode",  # its own evaluation, in training mode
           ("evaluate_accuracy_gpu(net, test_iter, device))",
            "sum(int((net(X.to(device)).argmax(1) == y.to(device)).sum()) for X, y in test_iter)"
            " / sum(len(y) for _, y in test_iter))"),
           expect="evaluated in training mode"),
    # ---------------------------------------------------------------- device moves (HostBatches)
    edited(T, "evaluate_batches_left_on_cpu",
           ("            X, y = X.to(device), y.to(device)\n            correct += ",
            "            correct += "),
           expect="a batch X stayed on the CPU"),
    edited(T, "evaluate_labels_left_on_cpu",
           ("            X, y = X.to(device), y.to(device)\n            correct += ",
            "            X = X.to(device)\n            correct += "),
           expect="the labels y of a batch stayed on the CPU"),
    edited(T, "train_batches_left_on_cpu",
           ("            X, y = X.to(device), y.to(device)\n            optimizer.zero_grad()\n",
            "            optimizer.zero_grad()\n"),
           expect="a batch X stayed on the CPU"),
    edited(T, "train_labels_left_on_cpu",
           ("            X, y = X.to(device), y.to(device)\n            optimizer.zero_grad()\n",
            "            X = X.to(device)\n            optimizer.zero_grad()\n"),
           expect="the labels y of a batch stayed on the CPU"),
    Variant(T, "train_fabricated_history", """
def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
    return {"train_loss": [2.3 / (e + 2) for e in range(num_epochs)],
            "train_acc": [0.9 + 0.01 * e for e in range(num_epochs)],
            "test_acc": [0.9 + 0.01 * e for e in range(num_epochs)]}
""", expect="does not match the net's measured accuracy"),
    edited(T, "train_mode_only_after_evaluation",  # train() after evaluating, not before
           ("    for _ in range(num_epochs):\n        net.train()\n",
            "    for _ in range(num_epochs):\n"),
           ("        history[\"test_acc\"].append(evaluate_accuracy_gpu(net, test_iter, device))\n",
            "        history[\"test_acc\"].append(evaluate_accuracy_gpu(net, test_iter, device))\n"
            "        net.train()\n"),
           expect="arrived in evaluation mode"),
]

GPU_MISTAKES = [
    edited(T, "train_net_left_on_cpu", ("    net.to(device)\n", ""), expect="X.to(device)"),
]

CORRECT = [
    Variant(T, "next_loop_hand_written_xavier_and_grad_none", '''
import math


def evaluate_accuracy_gpu(net, data_iter, device=None):
    device = device if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    right, total = 0.0, 0
    batches = iter(data_iter)
    with torch.no_grad():
        while (batch := next(batches, None)) is not None:
            X, y = (t.to(device) for t in batch)
            right += float((net(X).argmax(1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return right / total


def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):
    with torch.no_grad():
        for m in net.modules():
            if type(m) in (nn.Linear, nn.Conv2d):
                w = m.weight
                field = w[0][0].numel()
                bound = math.sqrt(6.0 / (w.shape[1] * field + w.shape[0] * field))
                w.uniform_(-bound, bound)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        sums = [0.0, 0.0, 0]
        for X, y in train_iter:
            X, y = X.to(device), y.to(device)
            for p in net.parameters():
                p.grad = None
            y_hat = net(X)
            loss = nn.functional.cross_entropy(y_hat, y)
            loss.backward()
            optimizer.step()
            sums[0] += loss.item() * y.numel()
            sums[1] += (y_hat.argmax(1) == y).sum().item()
            sums[2] += y.numel()
        history["train_loss"].append(sums[0] / sums[2])
        history["train_acc"].append(sums[1] / sums[2])
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter, device))
    return history
'''),
    Variant(T, "is_available_and_inference_mode", '''
def try_gpu(i=0):
    if torch.cuda.is_available() and i < torch.cuda.device_count():
        return torch.device("cuda", i)
    return torch.device("cpu")


def try_all_gpus():
    return [torch.device("cuda", i) for i in range(torch.cuda.device_count())] or [
        torch.device("cpu")]


def evaluate_accuracy_gpu(net, data_iter, device=None):
    mode = net.training
    device = device if device is not None else next(net.parameters()).device
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    try:
        with torch.inference_mode():
            for X, y in data_iter:
                X = X.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                correct += (net(X).argmax(1) == y).sum()
                total += len(y)
    finally:
        net.train(mode)
    return correct.item() / total


def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):
    net.to(device)
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
    optimizer = torch.optim.SGD(net.parameters(), lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(num_epochs):
        net.train()
        stats = torch.zeros(3, dtype=torch.float64, device=device)
        for X, y in train_iter:
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            losses = torch.nn.functional.cross_entropy(y_hat, y, reduction="none")
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            optimizer.step()
            with torch.no_grad():
                stats += torch.stack([losses.sum().double(),
                                      (y_hat.argmax(1) == y).sum().double(),
                                      torch.tensor(len(y), dtype=torch.float64, device=device)])
        loss_sum, correct, count = stats.tolist()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter, device))
    return history
'''),
    Variant(T, "d2l_train_ch6_style", '''
class Accumulator:
    """For accumulating sums over n variables (d2l)."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def __getitem__(self, idx):
        return self.data[idx]


def try_gpu(i=0):
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def evaluate_accuracy_gpu(net, data_iter, device=None):
    if isinstance(net, nn.Module):
        was_training = net.training
        net.eval()
        if not device:
            device = next(iter(net.parameters())).device
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            if isinstance(X, list):
                X = [x.to(device) for x in X]
            else:
                X = X.to(device)
            y = y.to(device)
            metric.add((net(X).argmax(axis=1).type(y.dtype) == y).sum(), y.numel())
    if isinstance(net, nn.Module):
        net.train(was_training)
    return metric[0] / metric[1]


def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):
    def init_weights(m):
        if type(m) == nn.Linear or type(m) == nn.Conv2d:  # noqa: E721
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for epoch in range(num_epochs):
        metric = Accumulator(3)
        net.train()
        for i, (X, y) in enumerate(train_iter):
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], (y_hat.argmax(axis=1) == y).sum(), X.shape[0])
        history["train_loss"].append(metric[0] / metric[2])
        history["train_acc"].append(metric[1] / metric[2])
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter))
    return history
'''),
    Variant(T, "moves_only_when_needed", '''
import torch.nn.functional as F


def _to(t, device):
    """Moves t only when it is elsewhere."""
    return t if t.device == device else t.to(device=device)


def evaluate_accuracy_gpu(net, data_iter, device=None):
    if device is None:
        device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    right = total = 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = _to(X, device), _to(y.long(), device)
            right += int((net(X).argmax(1) == y).sum())
            total += y.shape[0]
    net.train(was_training)
    return right / total


def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):
    num_train = sum(len(y) for _, y in train_iter)  # a pass over the data before the init
    for m in net.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    net = net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    history = {"train_loss": [], "train_acc": [], "test_acc": []}
    for _ in range(num_epochs):
        net.train()
        loss_sum, correct = 0.0, 0
        for X, y in train_iter:
            X, y = _to(X, device), _to(y, device)
            y_hat = net(X)
            total = F.cross_entropy(y_hat, y, reduction="sum")
            optimizer.zero_grad()
            (total / y.numel()).backward()
            optimizer.step()
            loss_sum += total.item()
            correct += int((y_hat.detach().argmax(1) == y).sum())
        history["train_loss"].append(loss_sum / num_train)
        history["train_acc"].append(correct / num_train)
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter))
    return history
'''),
]

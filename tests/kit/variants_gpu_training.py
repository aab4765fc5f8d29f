"""Training on an accelerator: the contract's mistakes (and others students make) and correct
solutions written differently from the reference.

GPU_MISTAKES are mistakes that only a machine with a GPU can see: the tests marked `gpu` catch
them there, with the message in `expect`. Batches or labels left on the CPU are seen anywhere
(the tests hand over torchdrill.callables.HostBatches, which act as if they lived on another
device until moved), so they are MISTAKES. test_variants.py grades MISTAKES and CORRECT on any
machine; GPU_MISTAKES are for a GPU run.
"""

from tests.kit.variants import Variant

_TRAIN_LOOP = '''
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
            loss_sum += l.item() * y.numel()
            correct += int((y_hat.argmax(dim=1) == y).sum())
            count += y.numel()
        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        history["test_acc"].append(evaluate_accuracy_gpu(net, test_iter, device))
    return history
'''


def _train_gpu(init_and_move: str, loop: str = _TRAIN_LOOP) -> str:
    """A train_gpu whose initialisation (and move to the device) is `init_and_move`."""
    return ("def train_gpu(net, train_iter, test_iter, num_epochs, lr, device):\n"
            + init_and_move + loop)


def _evaluate(body: str) -> str:
    return "def evaluate_accuracy_gpu(net, data_iter, device=None):\n" + body


MISTAKES = [
    # ---------------------------------------------------------------- try_gpu / try_all_gpus
    Variant("gpu_training", "try_gpu_hard_coded", '''
def try_gpu(i=0):
    return torch.device(f"cuda:{i}")
''', expect="torch reports no GPU here"),
    Variant("gpu_training", "try_gpu_ignores_i", '''
def try_gpu(i=0):
    if torch.cuda.device_count() > 0:
        return torch.device("cuda:0")
    return torch.device("cpu")
''', expect="index i was ignored"),
    Variant("gpu_training", "try_gpu_off_by_one", '''
def try_gpu(i=0):
    if torch.cuda.device_count() >= i and torch.cuda.is_available():
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")
''', expect="off-by-one"),
    Variant("gpu_training", "try_gpu_only_checks_availability", '''
def try_gpu(i=0):
    if torch.cuda.is_available():
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")
''', expect="return the CPU when i >= torch.cuda.device_count()"),
    Variant("gpu_training", "try_gpu_returns_strings", '''
def try_gpu(i=0):
    return f"cuda:{i}" if torch.cuda.device_count() > i else "cpu"
''', expect="return a torch.device"),
    Variant("gpu_training", "try_all_gpus_empty", '''
def try_all_gpus():
    return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
''', expect="not an empty list"),
    Variant("gpu_training", "try_all_gpus_skips_last", '''
def try_all_gpus():
    devices = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count() - 1)]
    return devices if devices else [torch.device("cpu")]
''', expect="One GPU is missing"),
    # ---------------------------------------------------------------- evaluate_accuracy_gpu
    Variant("gpu_training", "evaluate_without_eval_mode", _evaluate('''
    if device is None:
        device = next(iter(net.parameters())).device
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    return correct / total
'''), expect="call net.eval()"),
    Variant("gpu_training", "evaluate_without_no_grad", _evaluate('''
    was_training = net.training
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct, total = 0, 0
    for X, y in data_iter:
        X, y = X.to(device), y.to(device)
        correct += int((net(X).argmax(dim=1) == y).sum())
        total += y.numel()
    net.train(was_training)
    return correct / total
'''), expect="torch.no_grad()"),
    Variant("gpu_training", "evaluate_leaves_eval_mode", _evaluate('''
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    return correct / total
'''), expect="net.train(was_training)"),
    Variant("gpu_training", "evaluate_always_back_to_train", _evaluate('''
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train()
    return correct / total
'''), expect="do not always switch to training"),
    Variant("gpu_training", "evaluate_mean_of_batches", _evaluate('''
    was_training = net.training
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    accs = []
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            accs.append(float((net(X).argmax(dim=1) == y).float().mean()))
    net.train(was_training)
    return sum(accs) / len(accs)
'''), expect="average of the batches' accuracies"),
    Variant("gpu_training", "evaluate_returns_count", _evaluate('''
    was_training = net.training
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct = 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
    net.train(was_training)
    return float(correct)
'''), expect="divide by the number of examples"),
    Variant("gpu_training", "evaluate_defaults_to_try_gpu", _evaluate('''
    was_training = net.training
    device = device or try_gpu()
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return correct / total
'''), expect="tried to use a GPU"),
    Variant("gpu_training", "evaluate_hard_coded_cuda", _evaluate('''
    was_training = net.training
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to("cuda:0"), y.to("cuda:0")
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return correct / total
'''), expect="hard-coded 'cuda:0'"),
    # ---------------------------------------------------------------- train_gpu
    Variant("gpu_training", "train_without_xavier", _train_gpu('''
    net.to(device)
'''), expect="still holds the weights"),
    Variant("gpu_training", "train_xavier_normal", _train_gpu('''
    def init_weights(m):
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
    net.apply(init_weights)
    net.to(device)
'''), expect="xavier_normal_"),
    Variant("gpu_training", "train_xavier_linear_only", _train_gpu('''
    def init_weights(m):
        if type(m) is nn.Linear:
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    net.to(device)
'''), expect="Conv2d layer's weight"),
    Variant("gpu_training", "train_kaiming_instead", _train_gpu('''
    def init_weights(m):
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight)
    net.apply(init_weights)
    net.to(device)
'''), expect="Xavier"),
    Variant("gpu_training", "train_seeds_inside", _train_gpu('''
    torch.manual_seed(0)
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
'''), expect="do not seed"),
    Variant("gpu_training", "train_hard_coded_cuda", _train_gpu('''
    def init_weights(m):
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    device = try_gpu()
    net.to(device)
'''), expect="tried to use a GPU"),
    Variant("gpu_training", "train_no_zero_grad", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("optimizer.zero_grad()", "pass")), expect="never zeroed"),
    Variant("gpu_training", "train_sum_loss", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("nn.CrossEntropyLoss()", "nn.CrossEntropyLoss(reduction='sum')")
     .replace("l.item() * y.numel()", "l.item()")), expect="summed loss"),
    Variant("gpu_training", "train_evaluates_in_train_mode", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("evaluate_accuracy_gpu(net, test_iter, device)", (
        "sum(int((net(X.to(device)).argmax(1) == y.to(device)).sum()) for X, y in test_iter)"
        " / sum(len(y) for _, y in test_iter)"))), expect="evaluated in training mode"),
    # ---------------------------------------------------------------- device moves (HostBatches)
    Variant("gpu_training", "evaluate_batches_left_on_cpu", _evaluate('''
    was_training = net.training
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return correct / total
'''), expect="a batch X stayed on the CPU"),
    Variant("gpu_training", "evaluate_labels_left_on_cpu", _evaluate('''
    was_training = net.training
    if device is None:
        device = next(iter(net.parameters())).device
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            correct += int((net(X.to(device)).argmax(dim=1) == y).sum())
            total += y.numel()
    net.train(was_training)
    return correct / total
'''), expect="the labels y of a batch stayed on the CPU"),
    Variant("gpu_training", "train_batches_left_on_cpu", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("X, y = X.to(device), y.to(device)", "pass")),
        expect="a batch X stayed on the CPU"),
    Variant("gpu_training", "train_labels_left_on_cpu", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("X, y = X.to(device), y.to(device)", "X = X.to(device)")),
        expect="the labels y of a batch stayed on the CPU"),
    Variant("gpu_training", "train_fabricated_history", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', '''
    return {"train_loss": [2.3 / (e + 2) for e in range(num_epochs)],
            "train_acc": [0.9 + 0.01 * e for e in range(num_epochs)],
            "test_acc": [0.9 + 0.01 * e for e in range(num_epochs)]}
'''), expect="does not match the net's measured accuracy"),
    Variant("gpu_training", "train_mode_only_after_evaluation", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
    net.to(device)
''', _TRAIN_LOOP.replace("        net.train()\n", "").replace(
        "        history[\"test_acc\"].append(evaluate_accuracy_gpu(net, test_iter, device))\n",
        "        history[\"test_acc\"].append(evaluate_accuracy_gpu(net, test_iter, device))\n"
        "        net.train()\n")), expect="arrived in evaluation mode"),
]

GPU_MISTAKES = [
    Variant("gpu_training", "train_net_left_on_cpu", _train_gpu('''
    net.apply(lambda m: nn.init.xavier_uniform_(m.weight)
              if type(m) in (nn.Linear, nn.Conv2d) else None)
'''), expect="X.to(device)"),
]

CORRECT = [
    Variant("gpu_training", "is_available_and_inference_mode", '''
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
    Variant("gpu_training", "d2l_train_ch6_style", '''
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
    Variant("gpu_training", "moves_only_when_needed", '''
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

"""Variants of solutions/cross_entropy.py: mistakes students make (each must lose points with
a message that names it) and correct solutions written differently (each must get full
marks)."""

from tests.kit.variants import Variant, edited

T = "cross_entropy"

ADD = "self.data = [a + float(b) for a, b in zip(self.data, args, strict=True)]"

MISTAKES = [
    Variant(T, "cross_entropy_mean", '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat[range(len(y_hat)), y]).mean()
''', expect="one loss per example"),
    Variant(T, "cross_entropy_sum", '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat[range(len(y_hat)), y]).sum()
''', expect="(the sum?)"),
    Variant(T, "cross_entropy_columns", '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat[:, y])
''', expect="(n, n) matrix"),
    Variant(T, "cross_entropy_no_minus", '''
def cross_entropy(y_hat, y):
    return torch.log(y_hat[torch.arange(len(y)), y])
''', expect="minus sign is missing"),
    Variant(T, "cross_entropy_torch_nll", '''
def cross_entropy(y_hat, y):
    return torch.nn.functional.nll_loss(torch.log(y_hat), y, reduction="none")
''', expect="F.nll_loss"),
    Variant(T, "from_logits_log_softmax", '''
def cross_entropy_from_logits(logits, y):
    e = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    probs = e / e.sum(dim=1, keepdim=True)
    return -torch.log(probs[torch.arange(len(y)), y])
''', expect="log(softmax(logits)) underflows"),
    Variant(T, "from_logits_no_max", '''
def cross_entropy_from_logits(logits, y):
    lse = torch.log(torch.exp(logits).sum(dim=1))
    return lse - logits[torch.arange(len(y)), y]
''', expect="subtract each row's max"),
    edited(T, "from_logits_mean", ("return lse - picked", "return (lse - picked).mean()"),
           expect="one loss per example"),
    edited(T, "from_logits_max_not_added_back",
           ("lse = (m + torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))).squeeze(1)",
            "lse = torch.log(torch.exp(logits - m).sum(dim=1))"),
           expect="not added back"),
    Variant(T, "from_logits_torch_logsumexp", '''
def cross_entropy_from_logits(logits, y):
    return torch.logsumexp(logits, 1) - logits[torch.arange(len(y)), y]
''', expect="torch.logsumexp"),
    edited(T, "accuracy_fraction",
           ("return float(cmp.type(y.dtype).sum())", "return float(cmp.float().mean())"),
           expect="fraction of correct predictions"),
    edited(T, "accuracy_cast_before_argmax",
           ("    if y_hat.dim() > 1 and y_hat.shape[1] > 1:\n",
            "    y_hat = y_hat.type(y.dtype)\n    if y_hat.dim() > 1 and y_hat.shape[1] > 1:\n"),
           expect="before the argmax"),
    edited(T, "accuracy_argmax_by_dtype",
           ("if y_hat.dim() > 1 and y_hat.shape[1] > 1:", "if y_hat.is_floating_point():"),
           expect="decide by shape"),
    edited(T, "accuracy_max_values",
           ("y_hat = y_hat.argmax(dim=1)", "y_hat = y_hat.max(dim=1).values"),
           expect="y_hat.argmax(dim=1)"),
    edited(T, "accumulator_overwrites", (ADD, "self.data = [float(b) for b in args]"),
           expect="replacing them"),
    edited(T, "accumulator_keeps_tensors",
           (ADD, "self.data = [a + b for a, b in zip(self.data, args, strict=True)]"),
           expect="requires grad"),
    edited(T, "accumulator_reset_empties", ("self.data = [0.0] * len(self.data)", "self.data = []"),
           expect="keep the n sums"),
    edited(T, "evaluate_mean_of_batches",  # the mean of the batches' accuracies
           ("metric = Accumulator(2)  # number of correct predictions, number of examples",
            "accs = []"),
           ("metric.add(accuracy(net(X), y), y.numel())",
            "accs.append(accuracy(net(X), y) / len(y))"),
           ("return metric[0] / metric[1]", "return sum(accs) / len(accs)"),
           expect="mean of the per-batch accuracies"),
    edited(T, "evaluate_train_mode", ("        net.eval()\n", ""), expect="net.eval()"),
    edited(T, "evaluate_d2l_no_restore",
           ("    finally:\n        if is_module:\n            net.train(was_training)\n",
            "    finally:\n        pass\n"),
           expect="left in evaluation mode"),
    edited(T, "evaluate_always_back_to_train",
           ("            net.train(was_training)\n", "            net.train()\n"),
           expect="not always training mode"),
    edited(T, "evaluate_with_graph",
           ("        with torch.no_grad():\n"
            "            for X, y in data_iter:\n"
            "                metric.add(accuracy(net(X), y), y.numel())\n",
            "        for X, y in data_iter:\n"
            "            metric.add(accuracy(net(X), y), y.numel())\n"),
           expect="torch.no_grad()"),
    edited(T, "evaluate_count", ("return metric[0] / metric[1]", "return metric[0]"),
           expect="divide by the number of examples"),
    edited(T, "evaluate_module_only",  # every net treated as an nn.Module
           ("is_module = isinstance(net, torch.nn.Module)", "is_module = True"),
           expect="isinstance(net, torch.nn.Module)"),
    Variant(T, "cross_entropy_one_hot_times_log", '''
def cross_entropy(y_hat, y):
    one_hot = (y[:, None] == torch.arange(y_hat.shape[1])).to(y_hat.dtype)
    return -(one_hot * torch.log(y_hat)).sum(dim=1)
''', expect="0 * log(0) = 0 * -inf = nan"),
    edited(T, "accuracy_returns_0d_tensor",
           ("return float(cmp.type(y.dtype).sum())", "return cmp.type(y.dtype).sum()"),
           expect="never a 0-d tensor"),
    edited(T, "accuracy_item_int",  # .item() of an int64 sum is an int
           ("return float(cmp.type(y.dtype).sum())", "return cmp.type(y.dtype).sum().item()"),
           expect="is the int"),
    Variant(T, "cross_entropy_clamped", '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat[torch.arange(len(y)), y].clamp(min=1e-12))
''', expect="no clamp(min=...)"),
    Variant(T, "cross_entropy_plus_eps", '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat[torch.arange(len(y)), y] + 1e-12)
''', expect="no + eps inside the log"),
    Variant(T, "accumulator_class_level_sums", '''
class Accumulator:
    sums = []

    def __init__(self, n):
        self.n = n
        self.sums[:] = [0.0] * n

    def add(self, *args):
        for i, a in enumerate(args):
            self.sums[i] += float(a)

    def reset(self):
        self.sums[:] = [0.0] * self.n

    def __getitem__(self, idx):
        return self.sums[idx]
''', expect="two Accumulators share their sums"),
    edited(T, "accumulator_reset_stale_slot",  # the last sum is left behind
           ("        self.data = [0.0] * len(self.data)\n",
            "        for i in range(len(self.data) - 1):\n            self.data[i] = 0.0\n"),
           expect="reset() sets every slot to 0.0"),
    edited(T, "accumulator_int_zeros",
           ("self.data = [0.0] * n", "self.data = [0] * n"),
           ("self.data = [0.0] * len(self.data)", "self.data = [0] * len(self.data)"),
           expect="is the int 0"),
    edited(T, "evaluate_counts_first",  # a first pass to count: a one-shot iterator is spent
           ("    metric = Accumulator(2)  # number of correct predictions, number of examples\n",
            "    metric = Accumulator(2)  # number of correct predictions, number of examples\n"
            "    total = sum(y.numel() for _, y in data_iter)\n"),
           ("return metric[0] / metric[1]", "return metric[0] / total"),
           expect="one-shot iterator"),
    Variant(T, "accumulator_tensor_sums", '''
class Accumulator:
    def __init__(self, n):
        self.data = torch.zeros(n, dtype=torch.float64)

    def add(self, *args):
        self.data = self.data + torch.tensor([float(a) for a in args], dtype=torch.float64)

    def reset(self):
        self.data = torch.zeros_like(self.data)

    def __getitem__(self, idx):
        return self.data[idx]
''', expect="never a 0-d tensor"),
]

CORRECT = [
    Variant(T, "fsum_where_and_one_list_comprehension", '''
import math


def cross_entropy(y_hat, y):
    return (-torch.log(y_hat.double()[torch.arange(len(y)), y])).to(y_hat.dtype)


def accuracy(y_hat, y):
    pred = y_hat.argmax(dim=-1) if y_hat.ndim == 2 and y_hat.shape[-1] > 1 else y_hat
    return float(torch.where(pred.to(y.dtype) == y, 1.0, 0.0).sum())


class Accumulator:
    def __init__(self, n):
        self.values = [[] for _ in range(n)]

    def add(self, *args):
        for column, a in zip(self.values, args):
            column.append(float(a))

    def reset(self):
        self.values = [[] for _ in self.values]

    def __getitem__(self, idx):
        return math.fsum(self.values[idx])


def evaluate_accuracy(net, data_iter):
    mode = net.training if isinstance(net, torch.nn.Module) else None
    if mode is not None:
        net.eval()
    with torch.no_grad():
        counts = [(accuracy(net(X), y), y.numel()) for X, y in data_iter]
    if mode is not None:
        net.train(mode)
    return math.fsum(c for c, _ in counts) / sum(n for _, n in counts)
'''),
    Variant(T, "gather_and_sibling_log_softmax", '''
from softmax import log_softmax


def cross_entropy(y_hat, y):
    return -torch.log(y_hat.gather(1, y.unsqueeze(1))).squeeze(1)


def cross_entropy_from_logits(logits, y):
    return -log_softmax(logits).gather(1, y.reshape(-1, 1)).reshape(-1)
'''),
    Variant(T, "one_hot_mask_before_log_and_explicit_logsumexp", '''
def cross_entropy(y_hat, y):
    one_hot = (y[:, None] == torch.arange(y_hat.shape[1])).to(y_hat.dtype)
    return -torch.log((one_hot * y_hat).sum(dim=1))


def cross_entropy_from_logits(logits, y):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    one_hot = (y[:, None] == torch.arange(logits.shape[1])).to(logits.dtype)
    return -(one_hot * log_probs).sum(dim=1)
'''),
    Variant(T, "one_hot_where_log", '''
def cross_entropy(y_hat, y):
    mask = y.unsqueeze(1) == torch.arange(y_hat.shape[1]).unsqueeze(0)
    return -torch.where(mask, y_hat, torch.ones_like(y_hat)).log().sum(dim=1)
'''),
    Variant(T, "accuracy_eq_and_item", '''
def accuracy(y_hat, y):
    preds = y_hat.argmax(axis=1) if len(y_hat.shape) > 1 and y_hat.shape[1] > 1 else y_hat
    return float(torch.eq(preds.to(y.dtype), y).sum().item())
'''),
    Variant(T, "accuracy_long_compare", '''
def accuracy(y_hat, y):
    if y_hat.ndim == 2 and y_hat.shape[1] > 1:
        y_hat = y_hat.max(dim=1).indices
    return (y_hat.long() == y.long()).sum().item() * 1.0
'''),
    Variant(T, "accumulator_numpy_style", '''
class Accumulator:
    def __init__(self, n):
        self.n = n
        self.sums = {i: 0.0 for i in range(n)}

    def add(self, *args):
        for i, value in enumerate(args):
            self.sums[i] += float(value)

    def reset(self):
        self.sums = {i: 0.0 for i in range(self.n)}

    def __getitem__(self, idx):
        return self.sums[idx]
'''),
    Variant(T, "evaluate_counters_inference_mode", '''
def evaluate_accuracy(net, data_iter):
    module = net if isinstance(net, torch.nn.Module) else None
    mode = module.training if module is not None else None
    if module is not None:
        module.eval()
    correct, total = 0.0, 0
    with torch.inference_mode():
        for X, y in data_iter:
            correct += accuracy(net(X), y)
            total += len(y)
    if module is not None:
        module.train(mode)
    return correct / total
'''),
    Variant(T, "evaluate_set_grad_enabled", '''
def evaluate_accuracy(net, data_iter):
    is_module = isinstance(net, torch.nn.Module)
    if is_module:
        was_training = net.training
        net.train(False)
    metric = Accumulator(2)
    with torch.set_grad_enabled(False):
        for batch in data_iter:
            X, y = batch
            metric.add(accuracy(net(X), y), y.shape[0])
    if is_module and was_training:
        net.train()
    return metric[0] / metric[1]
'''),
]

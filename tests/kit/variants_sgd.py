"""SGD and linear regression: the contract's mistakes (and others students make) and correct
solutions written differently from the reference."""

from tests.kit.variants import Variant, edited

MISTAKES = [
    edited("sgd", "sgd_no_zero_grad", ("\n            param.grad.zero_()", ""),
           expect="not zeroed"),
    edited("sgd", "sgd_no_batch_division",
           ("param -= lr * param.grad / batch_size", "param -= lr * param.grad"),
           expect="not divided by batch_size"),
    edited("sgd", "sgd_divides_by_len_params",
           ("param -= lr * param.grad / batch_size", "param -= lr * param.grad / len(params)"),
           expect="len(params)"),
    edited("sgd", "sgd_outside_no_grad",
           ("    with torch.no_grad():\n"
            "        for param in params:\n"
            "            param -= lr * param.grad / batch_size\n"
            "            param.grad.zero_()",
            "    for param in params:\n"
            "        param -= lr * param.grad / batch_size\n"
            "        param.grad.zero_()"),
           expect="leaf Variable that requires grad is being used in an in-place operation"),
    Variant("sgd", "sgd_rebinds", '''
def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            grad = param.grad
            param = param - lr * grad / batch_size
            grad.zero_()
''', expect="not updated in place"),
    Variant("sgd", "sgd_replaces_list_items", '''
def sgd(params, lr, batch_size):
    for i, param in enumerate(params):
        grad = param.grad
        params[i] = (param - lr * grad / batch_size).detach().requires_grad_(True)
        grad.zero_()
''', expect="not updated in place"),
    edited("sgd", "data_iter_drops_last_batch",
           ("for i in range(0, num_examples, batch_size):",
            "for i in range(0, num_examples - batch_size + 1, batch_size):"),
           expect="drops the last partial batch"),
    edited("sgd", "data_iter_never_shuffles", ("    random.shuffle(indices)\n", ""),
           expect="never shuffles"),
    Variant("sgd", "data_iter_with_replacement", '''
def data_iter(batch_size, features, labels):
    num_examples = len(features)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.randint(0, num_examples, (min(batch_size, num_examples - i),))
        yield features[batch_indices], labels[batch_indices]
''', expect="repeats examples"),
    edited("sgd", "data_iter_reseeds",
           ("    random.shuffle(indices)\n", "    random.seed(0)\n    random.shuffle(indices)\n"),
           expect="same order on every pass"),
    Variant("sgd", "data_iter_shuffles_batches_only", '''
def data_iter(batch_size, features, labels):
    starts = list(range(0, len(features), batch_size))
    random.shuffle(starts)
    for i in starts:
        yield features[i:i + batch_size], labels[i:i + batch_size]
''', expect="only the order of the batches"),
    Variant("sgd", "data_iter_shuffles_in_place", '''
def data_iter(batch_size, features, labels):
    perm = torch.randperm(len(features))
    features[:] = features[perm]
    labels[:] = labels[perm]
    for i in range(0, len(features), batch_size):
        yield features[i:i + batch_size], labels[i:i + batch_size]
''', expect="data_iter changed its argument features in place while it was iterated"),
    Variant("sgd", "data_iter_empty_last_batch", '''
def data_iter(batch_size, features, labels):
    order = torch.randperm(len(features))
    for i in range(len(features) // batch_size + 1):
        batch_indices = order[i * batch_size:(i + 1) * batch_size]
        yield features[batch_indices], labels[batch_indices]
''', expect="yielded an empty batch"),
    Variant("sgd", "data_iter_shared_order", '''
_order = []


def data_iter(batch_size, features, labels):
    _order[:] = torch.randperm(len(features)).tolist()
    for i in range(0, len(_order), batch_size):
        batch_indices = torch.tensor(_order[i:i + batch_size])
        yield features[batch_indices], labels[batch_indices]
''', expect="read in turns interfere"),
    Variant("sgd", "squared_loss_fixed_column", '''
def squared_loss(y_hat, y):
    return (y_hat - y.reshape(-1, 1)) ** 2 / 2
''', expect="not to a fixed (-1, 1)"),
    Variant("sgd", "descent_torch_func", '''
def gradient_descent(f, x0, lr, num_steps):
    x = x0.detach().clone()
    for _ in range(num_steps):
        x = x - lr * torch.func.grad(f)(x)
    return x
''', expect="custom torch.autograd.Function"),
    Variant("sgd", "squared_loss_no_reshape", '''
def squared_loss(y_hat, y):
    return (y_hat - y) ** 2 / 2
''', expect="broadcasts to (n, n)"),
    Variant("sgd", "squared_loss_no_half", '''
def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2
''', expect="without the / 2"),
    Variant("sgd", "squared_loss_mean", '''
def squared_loss(y_hat, y):
    return ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).mean()


def train_linreg(features, labels, lr=0.03, num_epochs=3, batch_size=10):
    w = torch.normal(0, 0.01, size=(features.shape[1], 1), dtype=features.dtype,
                     requires_grad=True)
    b = torch.zeros(1, dtype=features.dtype, requires_grad=True)
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            squared_loss(linreg(X, w, b), y).backward()
            sgd([w, b], lr, 1)
    return w.detach(), b.detach()
''', expect="mean over the examples"),
    edited("sgd", "synthetic_y_not_reshaped", ("return X, y.reshape((-1, 1))", "return X, y"),
           expect="(n, 1)"),
    edited("sgd", "synthetic_noise_hard_coded",
           ("torch.normal(0, noise, y.shape", "torch.normal(0, 0.01, y.shape"),
           expect="`noise` argument used"),
    edited("sgd", "synthetic_uniform_features",
           ("X = torch.normal(0, 1, (num_examples, len(w)), dtype=w.dtype)",
            "X = torch.rand((num_examples, len(w)), dtype=w.dtype)"),
           expect="N(0, 1)"),
    Variant("sgd", "linreg_no_bias", '''
def linreg(X, w, b):
    return torch.matmul(X, w)
''', expect="bias b is missing"),
    edited("sgd", "train_mean_loss_and_batch_division",
           ("            l.sum().backward()", "            l.mean().backward()"),
           expect="after training, w is off by"),
    edited("sgd", "train_not_detached", ("return w.detach(), b.detach()", "return w, b"),
           expect="still attached to autograd"),
    edited("sgd", "train_zero_init",
           ("w = torch.normal(0, 0.01, size=(d, 1), dtype=features.dtype, requires_grad=True)",
            "w = torch.zeros((d, 1), dtype=features.dtype, requires_grad=True)"),
           expect="w starts with standard deviation"),
    Variant("sgd", "closed_form_no_bias_column", '''
def closed_form_linreg(features, labels):
    w = torch.linalg.solve(features.T @ features, features.T @ labels)
    return w, torch.zeros(1, dtype=features.dtype)
''', expect="without a bias"),
    edited("sgd", "closed_form_lstsq",
           ("theta = torch.linalg.solve(X1.T @ X1, X1.T @ y)",
            "theta = torch.linalg.lstsq(X1, y).solution"),
           expect="torch.linalg.lstsq"),
    Variant("sgd", "descent_with_optim", '''
def gradient_descent(f, x0, lr, num_steps):
    x = x0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=lr)
    for _ in range(num_steps):
        optimizer.zero_grad()
        f(x).backward()
        optimizer.step()
    return x.detach()
''', expect="torch.optim.SGD"),
    Variant("sgd", "descent_accumulates_grad", '''
def gradient_descent(f, x0, lr, num_steps):
    x = x0.detach().clone().requires_grad_(True)
    for _ in range(num_steps):
        f(x).backward()
        with torch.no_grad():
            x -= lr * x.grad
    return x.detach()
''', expect="gradients accumulate"),
    edited("sgd", "descent_on_x0",
           ("x = x0.detach().clone().requires_grad_(True)", "x = x0.requires_grad_(True)"),
           ("return x.detach()", "return x.detach().clone()"), expect="x0"),
    edited("sgd", "descent_uphill", ("x -= lr * grad", "x += lr * grad"), expect="uphill"),
]

CORRECT = [
    Variant("sgd", "randperm_split_and_data_sub", '''
def synthetic_data(w, b, num_examples, noise=0.01):
    X = torch.randn(num_examples, w.shape[0], dtype=w.dtype)
    y = X @ w.reshape(-1, 1) + b
    return X, y + noise * torch.randn(y.shape, dtype=w.dtype)


def data_iter(batch_size, features, labels):
    for batch_indices in torch.randperm(len(features)).split(batch_size):
        yield features[batch_indices], labels[batch_indices]


def linreg(X, w, b):
    return (X.unsqueeze(-1) * w.reshape(1, -1, 1)).sum(1) + b


def squared_loss(y_hat, y):
    diff = y_hat - y.view(y_hat.shape)
    return 0.5 * diff * diff


def sgd(params, lr, batch_size):
    for param in params:
        param.data.sub_(lr * param.grad / batch_size)
        param.grad = None


def train_linreg(features, labels, lr=0.03, num_epochs=3, batch_size=10):
    w = (torch.randn(features.shape[1], 1, dtype=features.dtype) * 0.01).requires_grad_()
    b = torch.zeros(1, dtype=features.dtype).requires_grad_()
    for epoch in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            loss = squared_loss(linreg(X, w, b), y).sum()
            loss.backward()
            sgd((w, b), lr, batch_size)
    return w.detach().clone(), b.detach().clone()


def closed_form_linreg(features, labels):
    X1 = torch.cat([features, torch.ones_like(features[:, :1])], dim=1)
    theta = torch.linalg.pinv(X1) @ labels
    return theta[:-1].clone(), theta[-1:].reshape(1).clone()


def gradient_descent(f, x0, lr, num_steps):
    x = x0.clone().detach().requires_grad_(True)
    for _ in range(num_steps):
        f(x).backward()
        with torch.no_grad():
            x.sub_(lr * x.grad)
        x.grad.zero_()
    return x.detach()
'''),
    Variant("sgd", "numpy_permutation_and_centering", '''
import numpy as np


def data_iter(batch_size, features, labels):
    order = torch.from_numpy(np.random.permutation(len(features)))
    start = 0
    while start < len(order):
        idx = order[start:start + batch_size]
        yield features.index_select(0, idx), labels.index_select(0, idx)
        start += batch_size


def squared_loss(y_hat, y):
    return torch.square(y_hat - y.reshape(y_hat.shape)) / 2


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param.sub_(param.grad, alpha=lr / batch_size)
            param.grad.zero_()


def closed_form_linreg(features, labels):
    x_mean = features.mean(0, keepdim=True)
    y_mean = labels.mean(0, keepdim=True)
    Xc, yc = features - x_mean, labels - y_mean
    L = torch.linalg.cholesky(Xc.T @ Xc)
    w = torch.cholesky_solve(Xc.T @ yc, L)
    b = (y_mean - x_mean @ w).reshape(1)
    return w, b


def gradient_descent(f, x0, lr, num_steps):
    x = x0.detach().clone()
    for _ in range(num_steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x), [x])
        x = (x - lr * grad).detach()
    return x
'''),
    Variant("sgd", "iterator_class_and_own_batch_sizes", '''
class _Batches:
    """One pass over the examples in a random order, as an iterator object."""

    def __init__(self, batch_size, features, labels):
        self.batch_size, self.features, self.labels = batch_size, features, labels
        self.order = torch.randperm(len(features))
        self.start = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.start >= len(self.order):
            raise StopIteration
        idx = self.order[self.start:self.start + self.batch_size]
        self.start += self.batch_size
        return self.features[idx], self.labels[idx]


def data_iter(batch_size, features, labels):
    return _Batches(batch_size, features, labels)


def squared_loss(y_hat, y):
    return (y_hat - y.reshape_as(y_hat)) ** 2 * 0.5


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for p in params:
            p.add_(p.grad, alpha=-lr / batch_size)
            p.grad = None


def train_linreg(features, labels, lr=0.03, num_epochs=3, batch_size=10):
    w = torch.normal(0.0, 0.01, (features.shape[1], 1)).to(features.dtype).requires_grad_()
    b = torch.zeros(1, dtype=features.dtype, requires_grad=True)
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            squared_loss(linreg(X, w, b), y).sum().backward()
            sgd([w, b], lr, len(y))
    return w.detach(), b.detach()
'''),
]

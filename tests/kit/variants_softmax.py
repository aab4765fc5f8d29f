"""Softmax: the contract's mistakes (and others students make) and correct solutions written
differently from the reference."""

from tests.kit.variants import Variant

MISTAKES = [
    Variant("softmax", "no_max_subtraction", '''
def softmax(X):
    X_exp = torch.exp(X)
    return X_exp / X_exp.sum(1, keepdim=True)
''', expect="exp overflows"),
    Variant("softmax", "wrong_dim", '''
def softmax(X):
    X_exp = torch.exp(X - X.max(dim=0, keepdim=True).values)
    return X_exp / X_exp.sum(0, keepdim=True)
''', expect="each column sums to 1"),
    Variant("softmax", "global_max", '''
def softmax(X):
    X_exp = torch.exp(X - X.max())
    return X_exp / X_exp.sum(1, keepdim=True)
''', expect="over the whole tensor"),
    Variant("softmax", "no_keepdim", '''
def softmax(X):
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(1)
''', expect="without keepdim"),
    Variant("softmax", "modifies_input", '''
def softmax(X):
    X -= X.max(dim=1, keepdim=True).values
    X_exp = torch.exp(X)
    return X_exp / X_exp.sum(1, keepdim=True)
''', expect="was modified"),
    Variant("softmax", "log_of_softmax", '''
def log_softmax(X):
    return torch.log(softmax(X))
''', expect="underflows"),
    Variant("softmax", "logsumexp_unstable", '''
def logsumexp(X):
    return torch.log(torch.exp(X).sum(1))
''', expect="overflow"),
    Variant("softmax", "logsumexp_keepdim", '''
def logsumexp(X):
    m = X.max(dim=1, keepdim=True).values
    return m + torch.log(torch.exp(X - m).sum(dim=1, keepdim=True))
''', expect="shape (n,)"),
    Variant("softmax", "logsumexp_max_not_added_back", '''
def logsumexp(X):
    m = X.max(dim=1, keepdim=True).values
    return torch.log(torch.exp(X - m).sum(dim=1))
''', expect="not added back"),
    Variant("softmax", "regression_without_bias", '''
def softmax_regression(X, W, b):
    return softmax(X.reshape(-1, W.shape[0]) @ W)
''', expect="bias"),
    Variant("softmax", "regression_view", '''
def softmax_regression(X, W, b):
    return softmax(X.view(-1, W.shape[0]) @ W + b)
''', expect="view"),
    Variant("softmax", "calls_torch_softmax", '''
def softmax(X):
    return torch.softmax(X, dim=1)
''', expect="not allowed"),
    Variant("softmax", "calls_tensor_softmax_caught", '''
def softmax(X):
    try:
        return X.softmax(1)
    except Exception:
        X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
        return X_exp / X_exp.sum(1, keepdim=True)
''', expect="not allowed"),
    Variant("softmax", "output_detached", '''
def softmax(X):
    X = X.detach()
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)
''', expect="not connected"),
    Variant("softmax", "float32_result", '''
def softmax(X):
    X = X.float()
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(1, keepdim=True)
''', expect="keep the caller's dtype"),
    Variant("softmax", "softmin_of_negated", '''
def softmax(X):
    return torch.nn.functional.softmin(-X, dim=1)
''', expect="not allowed"),
    Variant("softmax", "hardmax", '''
def softmax(X):
    return (X == X.max(dim=1, keepdim=True).values).to(X.dtype)
''', expect="all the probability on the largest logit"),
    Variant("softmax", "hardmax_argmax_one_hot", '''
def softmax(X):
    out = torch.zeros_like(X)
    return out.scatter(1, X.argmax(dim=1, keepdim=True), 1.0) + 0 * X
''', expect="all the probability on the largest logit"),
    Variant("softmax", "logsumexp_is_max", '''
def logsumexp(X):
    return X.max(dim=1).values
''', expect="only the row's max"),
    Variant("softmax", "log_softmax_minus_max", '''
def log_softmax(X):
    return X - X.max(dim=1, keepdim=True).values
''', expect="log(sum(exp(X - m)))"),
]

CORRECT = [
    Variant("softmax", "custom_function", '''
class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X):
        e = torch.exp(X - X.max(dim=1, keepdim=True).values)
        s = e / e.sum(dim=1, keepdim=True)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        return s * (grad - (grad * s).sum(dim=1, keepdim=True))


def softmax(X):
    return _Softmax.apply(X)
'''),
    Variant("softmax", "exp_minus_logsumexp", '''
def softmax(X):
    return torch.exp(X - logsumexp(X).unsqueeze(1))
'''),
    Variant("softmax", "amax_detached_and_div", '''
def softmax(X):
    c = torch.amax(X, dim=1, keepdim=True).detach()
    e = (X - c).exp()
    return torch.div(e, torch.sum(e, dim=-1, keepdim=True))


def logsumexp(X):
    m, _ = torch.max(X, dim=1)
    return m + torch.log(torch.sum(torch.exp(X - m[:, None]), dim=1))


def log_softmax(X):
    m = X.amax(dim=1, keepdim=True)
    shifted = X - m
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def softmax_regression(X, W, b):
    return softmax(torch.mm(X.reshape(X.shape[0], -1), W) + b)
'''),
    Variant("softmax", "float64_internally", '''
def softmax(X):
    Z = X.double()
    Z = Z - Z.max(1, keepdim=True).values
    E = Z.exp()
    return (E / E.sum(1, keepdim=True)).to(X.dtype)
'''),
]

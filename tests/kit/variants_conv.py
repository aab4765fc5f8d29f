"""Convolutions and LeNet: the contract's mistakes (and others students make), forbidden calls,
and correct solutions written differently from the reference (D2L's loops): windows cut out
with Tensor.unfold or F.unfold (allowed), sums of shifted slices, einsum and matmul."""

from tests.kit.variants import Variant, edited

MISTAKES = [
    # corr2d
    edited("conv", "corr2d_flipped_kernel",
           ("Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum()\n",
            "Y[i, j] = (X[i:i + kh, j:j + kw] * K.flip(0, 1)).sum()\n"),
           expect="flipped"),
    edited("conv", "corr2d_one_row_short", ("X.shape[0] - kh + 1, X.shape[1] - kw + 1",
                                            "X.shape[0] - kh, X.shape[1] - kw + 1"),
           expect="one row or column too"),
    edited("conv", "corr2d_one_column_long", ("X.shape[0] - kh + 1, X.shape[1] - kw + 1",
                                              "X.shape[0] - kh + 1, X.shape[1] - kw + 2"),
           expect="one row or column too"),
    edited("conv", "corr2d_float32_zeros", ("kw + 1), dtype=X.dtype, device=X.device)",
                                            "kw + 1))"),
           expect="torch.zeros"),
    Variant("conv", "corr2d_not_differentiable", '''
def corr2d(X, K):
    kh, kw = K.shape
    Y = torch.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = float((X[i:i + kh, j:j + kw] * K).sum())
    return Y
''', expect="not connected"),
    Variant("conv", "corr2d_as_strided_as_if_contiguous", '''
def corr2d(X, K):
    kh, kw = K.shape
    h, w = X.shape
    windows = X.as_strided((h - kh + 1, w - kw + 1, kh, kw), (w, 1, w, 1))
    return (windows * K).sum(dim=(-2, -1))
''', expect="as if it were contiguous"),
    Variant("conv", "corr2d_calls_conv2d", '''
import torch.nn.functional as F


def corr2d(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]
''', expect="not allowed"),
    Variant("conv", "corr2d_calls_conv2d_caught", '''
def corr2d(X, K):
    try:
        return torch.conv2d(X[None, None], K[None, None])[0, 0]
    except Exception:
        windows = X.unfold(0, K.shape[0], 1).unfold(1, K.shape[1], 1)
        return (windows * K).sum(dim=(-2, -1))
''', expect="not allowed"),
    # corr2d_multi_in, corr2d_multi_in_out
    Variant("conv", "multi_in_stacks_channels", '''
def corr2d_multi_in(X, K):
    return torch.stack([corr2d(x, k) for x, k in zip(X, K)])
''', expect="stacked, not summed"),
    Variant("conv", "multi_in_out_sums_outputs", '''
def corr2d_multi_in_out(X, K):
    return sum(corr2d_multi_in(X, k) for k in K)
''', expect="summed over"),
    Variant("conv", "multi_in_out_sums_outputs_keepdim", '''
def corr2d_multi_in_out(X, K):
    return torch.stack([corr2d_multi_in(X, k) for k in K]).sum(0, keepdim=True)
''', expect="summed over"),
    Variant("conv", "multi_in_out_calls_conv2d", '''
import torch.nn.functional as F


def corr2d_multi_in_out(X, K):
    return F.conv2d(X[None], K)[0]
''', expect="not allowed"),
    # conv_output_shape
    edited("conv", "conv_output_shape_pads_one_side",
           ("((nh + 2 * ph - kh) // sh + 1, (nw + 2 * pw - kw) // sw + 1)",
            "((nh + ph - kh) // sh + 1, (nw + pw - kw) // sw + 1)"), expect="one side"),
    edited("conv", "conv_output_shape_true_division",
           ("((nh + 2 * ph - kh) // sh + 1, (nw + 2 * pw - kw) // sw + 1)",
            "((nh + 2 * ph - kh) / sh + 1, (nw + 2 * pw - kw) / sw + 1)"),
           expect="Python ints"),
    # pool2d
    Variant("conv", "pool2d_stride_equals_window", '''
def pool2d(X, pool_size, mode="max"):
    if mode not in ("max", "avg"):
        raise ValueError(mode)
    ph, pw = as_pair(pool_size)
    rows = range(0, X.shape[0] - ph + 1, ph)
    cols = range(0, X.shape[1] - pw + 1, pw)
    Y = torch.zeros((len(rows), len(cols)), dtype=X.dtype)
    for a, i in enumerate(rows):
        for b, j in enumerate(cols):
            window = X[i:i + ph, j:j + pw]
            Y[a, b] = window.max() if mode == "max" else window.mean()
    return Y
''', expect="stride equal to the window"),
    edited("conv", "pool2d_avg_wrong_count", ("window.mean()", "window.sum() / (ph + pw)"),
           expect="wrong count"),
    edited("conv", "pool2d_avg_divides_by_ph_squared", ("window.mean()",
                                                       "window.sum() / (ph * ph)"),
           expect="wrong count"),
    edited("conv", "pool2d_pair_only", ("    ph, pw = as_pair(pool_size)\n",
                                        "    ph, pw = pool_size\n"),
           expect="as_pair(pool_size)"),
    Variant("conv", "pool2d_running_max_from_zeros", '''
def pool2d(X, pool_size, mode="max"):
    if mode not in ("max", "avg"):
        raise ValueError(mode)
    ph, pw = as_pair(pool_size)
    Y = torch.zeros((X.shape[0] - ph + 1, X.shape[1] - pw + 1), dtype=X.dtype, device=X.device)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + ph, j:j + pw]
            if mode == "avg":
                Y[i, j] = window.mean()
            else:
                for value in window.reshape(-1):
                    Y[i, j] = torch.maximum(Y[i, j], value)
    return Y
''', expect="started at 0"),
    Variant("conv", "pool2d_lp_pool_for_avg", '''
import torch.nn.functional as F


def pool2d(X, pool_size, mode="max"):
    ph, pw = as_pair(pool_size)
    if mode == "max":
        return X.unfold(0, ph, 1).unfold(1, pw, 1).amax(dim=(-2, -1))
    if mode == "avg":
        return F.lp_pool2d(X[None, None], 1, (ph, pw), stride=1)[0, 0] / (ph * pw)
    raise ValueError(mode)
''', expect="not allowed"),
    edited("conv", "pool2d_float32_zeros", ("pw + 1), dtype=X.dtype, device=X.device)",
                                            "pw + 1))"),
           expect="torch.zeros"),
    Variant("conv", "pool2d_no_value_error", '''
def pool2d(X, pool_size, mode="max"):
    ph, pw = as_pair(pool_size)
    Y = torch.zeros((X.shape[0] - ph + 1, X.shape[1] - pw + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i:i + ph, j:j + pw].max()
            elif mode == "avg":
                Y[i, j] = X[i:i + ph, j:j + pw].mean()
    return Y
''', expect="ValueError"),
    Variant("conv", "pool2d_calls_max_pool2d", '''
import torch.nn.functional as F


def pool2d(X, pool_size, mode="max"):
    if mode not in ("max", "avg"):
        raise ValueError(mode)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(X[None, None], as_pair(pool_size), stride=1)[0, 0]
''', expect="not allowed"),
    Variant("conv", "pool2d_uses_pooling_modules", '''
def pool2d(X, pool_size, mode="max"):
    if mode not in ("max", "avg"):
        raise ValueError(mode)
    layer = nn.MaxPool2d if mode == "max" else nn.AvgPool2d
    return layer(pool_size, stride=1)(X[None, None])[0, 0]
''', expect="not allowed"),
    # Conv2D
    Variant("conv", "conv2d_layer_without_bias", '''
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(as_pair(kernel_size)))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight)
''', expect="bias was not added"),
    Variant("conv", "conv2d_layer_forward_calls_conv2d", '''
import torch.nn.functional as F


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(as_pair(kernel_size)))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.conv2d(x[None, None], self.weight[None, None])[0, 0] + self.bias
''', expect="not allowed"),
    Variant("conv", "conv2d_layer_wraps_nn_conv2d", '''
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, kernel_size)
        self.weight, self.bias = self.conv.weight, self.conv.bias

    def forward(self, x):
        return self.conv(x[None, None])[0, 0]
''', expect="not allowed"),
    Variant("conv", "conv2d_layers_share_a_bias", '''
class Conv2D(nn.Module):
    def __init__(self, kernel_size, initial_bias=torch.zeros(1)):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(as_pair(kernel_size)))
        self.bias = nn.Parameter(initial_bias)

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias
''', expect="share their layers (or parameters)"),
    # learn_kernel
    edited("conv", "learn_kernel_float32_zeros",
           ("    K = torch.zeros(as_pair(kernel_size), dtype=X.dtype, device=X.device, "
            "requires_grad=True)", "    K = torch.zeros(as_pair(kernel_size), requires_grad=True)"),
           expect="torch.zeros"),
    edited("conv", "learn_kernel_no_zero_grad", ("            K.grad.zero_()\n", ""),
           expect="never zeroed"),
    edited("conv", "learn_kernel_mean_loss", ("loss = ((corr2d(X, K) - Y) ** 2).sum()",
                                              "loss = ((corr2d(X, K) - Y) ** 2).mean()"),
           expect="mean of the squared errors"),
    edited("conv", "learn_kernel_not_detached", ("    return K.detach()", "    return K"),
           expect="detached"),
    Variant("conv", "learn_kernel_uses_optim", '''
def learn_kernel(X, Y, kernel_size, num_epochs=10, lr=3e-2):
    K = torch.zeros(as_pair(kernel_size), dtype=X.dtype, requires_grad=True)
    trainer = torch.optim.SGD([K], lr=lr)
    for _ in range(num_epochs):
        trainer.zero_grad()
        ((corr2d(X, K) - Y) ** 2).sum().backward()
        trainer.step()
    return K.detach()
''', expect="not allowed"),
    # lenet
    Variant("conv", "lenet_relu", '''
def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
''', expect="ReLU where LeNet has sigmoids"),
    Variant("conv", "lenet_max_pooling", '''
def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
''', expect="max pooling where LeNet averages"),
    Variant("conv", "lenet_no_padding_flatten_256", '''
def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
''', expect="16 * 5 * 5 = 400"),
    edited("conv", "lenet_wrong_flatten_size", ("nn.Linear(16 * 5 * 5, 120)",
                                                "nn.Linear(16 * 4 * 4, 120)"),
           expect="16 * 5 * 5 = 400"),
    edited("conv", "lenet_lazy_linear", ("nn.Linear(16 * 5 * 5, 120)", "nn.LazyLinear(120)"),
           expect="Lazy module"),
    Variant("conv", "lenet_one_net_for_every_call", '''
_BUILT = []


def lenet():
    if not _BUILT:
        _BUILT.append(nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
            nn.Linear(84, 10)))
    return _BUILT[0]
''', expect="share their layers"),
]

CORRECT = [
    Variant("conv", "as_strided_windows_with_the_strides_of_x", '''
def windows_of(X, kh, kw):
    (sh, sw), (h, w) = X.stride(), X.shape
    return X.as_strided((h - kh + 1, w - kw + 1, kh, kw), (sh, sw, sh, sw), X.storage_offset())


def corr2d(X, K):
    return torch.tensordot(windows_of(X, *K.shape), K, dims=2)


def pool2d(X, pool_size, mode="max"):
    windows = windows_of(X, *as_pair(pool_size)).flatten(-2)
    if mode == "max":
        return windows.max(dim=-1).values
    if mode == "avg":
        return windows.sum(dim=-1) / windows.shape[-1]
    raise ValueError(f"pool2d's mode is 'max' or 'avg', not {mode!r}")
'''),
    Variant("conv", "unfold_einsum_and_shifted_slices", '''
import math


def corr2d(X, K):
    windows = X.unfold(0, K.shape[0], 1).unfold(1, K.shape[1], 1)
    return torch.einsum("ijab,ab->ij", windows, K)


def corr2d_multi_in(X, K):
    windows = X.unfold(1, K.shape[1], 1).unfold(2, K.shape[2], 1)
    return (windows * K[:, None, None]).sum(dim=(0, 3, 4))


def corr2d_multi_in_out(X, K):
    return torch.cat([corr2d_multi_in(X, k).unsqueeze(0) for k in K])


def conv_output_shape(size, kernel_size, padding=0, stride=1):
    def two(v):
        return tuple(v) if isinstance(v, tuple | list) else (v, v)
    return tuple(math.floor((n + 2 * p - k) / s) + 1 for n, k, p, s in
                 zip(two(size), two(kernel_size), two(padding), two(stride)))


def pool2d(X, pool_size, mode="max"):
    ph, pw = as_pair(pool_size)
    windows = X.unfold(0, ph, 1).unfold(1, pw, 1)
    if mode == "max":
        return windows.amax(dim=(-2, -1))
    if mode == "avg":
        return windows.mean(dim=(-2, -1))
    raise ValueError(f"unknown pooling mode {mode!r}")


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.register_parameter("weight", nn.Parameter(torch.randn(kh, kw) * 0.1))
        self.register_parameter("bias", nn.Parameter(torch.zeros(1)))

    def forward(self, x):
        windows = x.unfold(0, self.weight.shape[0], 1).unfold(1, self.weight.shape[1], 1)
        return (windows * self.weight).sum(dim=(-2, -1)) + self.bias[0]


def learn_kernel(X, Y, kernel_size, num_epochs=10, lr=3e-2):
    K = torch.zeros(as_pair(kernel_size), dtype=X.dtype, requires_grad=True)
    for _ in range(num_epochs):
        (grad,) = torch.autograd.grad(((corr2d(X, K) - Y) ** 2).sum(), K)
        with torch.no_grad():
            K -= lr * grad
    return K.detach()


def lenet():
    layers = [nn.Conv2d(1, 6, 5, padding="same"), nn.Sigmoid(), nn.AvgPool2d(2),
              nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(start_dim=1),
              nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
              nn.Linear(84, 10)]
    return nn.Sequential(*layers)
'''),
    Variant("conv", "im2col_matmul_and_running_max", '''
from collections import OrderedDict

import torch.nn.functional as F


def corr2d(X, K):
    kh, kw = K.shape
    columns = F.unfold(X[None, None], (kh, kw))[0]  # (kh * kw, windows)
    return (K.reshape(1, -1) @ columns).reshape(X.shape[0] - kh + 1, X.shape[1] - kw + 1)


def corr2d_multi_in(X, K):
    return torch.stack([corr2d(x, k) for x, k in zip(X, K)]).sum(0)


def corr2d_multi_in_out(X, K):
    c_out, c, kh, kw = K.shape
    columns = F.unfold(X[None], (kh, kw))[0]  # (c * kh * kw, windows)
    out = K.reshape(c_out, -1) @ columns
    return out.reshape(c_out, X.shape[1] - kh + 1, X.shape[2] - kw + 1)


def conv_output_shape(size, kernel_size, padding=0, stride=1):
    out = []
    for i in range(2):
        k = kernel_size if isinstance(kernel_size, int) else kernel_size[i]
        p = padding if isinstance(padding, int) else padding[i]
        s = stride if isinstance(stride, int) else stride[i]
        out.append(int((size[i] + 2 * p - k) // s) + 1)
    return tuple(out)


def pool2d(X, pool_size, mode="max"):
    if mode not in {"max", "avg"}:
        raise ValueError("mode is 'max' or 'avg'")
    ph, pw = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    oh, ow = X.shape[0] - ph + 1, X.shape[1] - pw + 1
    parts = [X[a:a + oh, b:b + ow] for a in range(ph) for b in range(pw)]
    if mode == "avg":
        return sum(parts) / (ph * pw)
    out = parts[0].clone()
    for part in parts[1:]:
        out = torch.maximum(out, part)
    return out


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(as_pair(kernel_size)))
        self.bias = nn.Parameter(torch.empty(1))
        nn.init.uniform_(self.weight, -1, 1)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


def learn_kernel(X, Y, kernel_size, num_epochs=10, lr=3e-2):
    K = torch.zeros(as_pair(kernel_size), dtype=X.dtype).requires_grad_(True)
    for _ in range(num_epochs):
        K.grad = None
        loss = ((corr2d(X, K) - Y) ** 2).sum()
        loss.backward()
        K = (K - lr * K.grad).detach().requires_grad_(True)
    return K.detach()


def lenet():
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 6, kernel_size=5, padding=2)), ("sigmoid1", nn.Sigmoid()),
        ("pool1", nn.AvgPool2d(kernel_size=2, stride=2)),
        ("conv2", nn.Conv2d(6, 16, kernel_size=5)), ("sigmoid2", nn.Sigmoid()),
        ("pool2", nn.AvgPool2d(kernel_size=2, stride=2)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 120)), ("sigmoid3", nn.Sigmoid()),
        ("fc2", nn.Linear(120, 84)), ("sigmoid4", nn.Sigmoid()),
        ("fc3", nn.Linear(84, 10))]))
'''),
    Variant("conv", "shifted_slices_and_float64_sums", '''
def corr2d(X, K):
    kh, kw = K.shape
    oh, ow = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    Y = X.new_zeros(oh, ow)
    for a in range(kh):
        for b in range(kw):
            Y = Y + K[a, b] * X[a:a + oh, b:b + ow]
    return Y


def corr2d_multi_in(X, K):
    Y = corr2d(X[0], K[0])
    for x, k in zip(X[1:], K[1:]):
        Y = Y + corr2d(x, k)
    return Y


def pool2d(X, pool_size, mode="max"):
    if mode == "max":
        reduce = torch.amax
    elif mode == "avg":
        reduce = torch.mean
    else:
        raise ValueError(mode)
    ph, pw = as_pair(pool_size)
    rows = [torch.stack([reduce(X[i:i + ph, j:j + pw].double()) for j in
                         range(X.shape[1] - pw + 1)]) for i in range(X.shape[0] - ph + 1)]
    return torch.stack(rows).to(X.dtype)
'''),
]

"""Autograd: the contract's mistakes (and others students make) and correct solutions written
differently from the reference."""

from tests.kit.variants import Variant, edited

MISTAKES = [
    Variant("autograd", "forward_difference", '''
def numerical_derivative(f, x, h=1e-5):
    return float((f(x + h) - f(x)) / h)
''', expect="forward difference"),
    Variant("autograd", "derivative_divided_by_h", '''
def numerical_derivative(f, x, h=1e-5):
    return float((f(x + h) - f(x - h)) / h)
''', expect="twice the derivative"),
    edited("autograd", "gradient_forward_differences",  # (f(x + eps) - f(x)) / eps
           ("    grad = torch.zeros_like(x_work)\n",
            "    grad = torch.zeros_like(x_work)\n    f0 = float(f(x))\n"),
           ("        x_work[i] = old - eps\n"
            "        f_minus = float(f(x_work.reshape(x.shape)))\n", ""),
           ("grad[i] = (f_plus - f_minus) / (2 * eps)", "grad[i] = (f_plus - f0) / eps"),
           expect="forward differences"),
    Variant("autograd", "gradient_leaves_x_perturbed", '''
def numerical_gradient(f, x, eps=1e-6):
    flat = x.view(-1) if x.is_contiguous() else x.reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        flat[i] += eps
        f_plus = float(f(x))
        flat[i] -= 2 * eps
        f_minus = float(f(x))
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(x.shape)
''', expect="left x perturbed"),
    Variant("autograd", "gradient_add_subtract_rounding", '''
def numerical_gradient(f, x, eps=1e-6):
    flat = x.view(-1) if x.is_contiguous() else x.reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        flat[i] += eps
        f_plus = float(f(x))
        flat[i] -= 2 * eps
        f_minus = float(f(x))
        flat[i] += eps
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(x.shape)
''', expect="changed by rounding"),
    edited("autograd", "gradient_flattened", ("return grad.reshape(x.shape)", "return grad"),
           expect="flattened to 1-D"),
    edited("autograd", "gradient_view_of_clone",  # a clone keeps x's strides: view fails
           ("x_work = x.detach().clone().reshape(-1)", "x_work = x.detach().clone().view(-1)"),
           expect="view size is not compatible"),
    Variant("autograd", "autograd_on_callers_x", '''
def autograd_gradient(f, x):
    x.requires_grad_(True)
    f(x).backward()
    return x.grad
''', expect="accumulates into the caller's x.grad"),
    edited("autograd", "vjp_ignores_v", ("    y.backward(v)", "    y.sum().backward()"),
           expect="ignores v"),
    edited("autograd", "no_detach", ("u = y.detach()", "u = y"), expect="without detach"),
    edited("autograd", "control_flow_no_else",  # always returns b
           ("    if b.sum() > 0:\n        c = b\n    else:\n        c = 100 * b\n    return c",
            "    return b"),
           expect="else branch"),
    edited("autograd", "control_flow_starts_at_a", ("    b = a * 2\n", "    b = a\n"),
           expect="b starts at a"),
    Variant("autograd", "control_flow_not_differentiable", '''
def control_flow_f(a):
    b = a.detach().numpy() * 2
    while (b ** 2).sum() ** 0.5 < 1000:
        b = b * 2
    c = b if b.sum() > 0 else 100 * b
    return torch.tensor(c, dtype=a.dtype)
''', expect="not connected to the input"),
    edited("autograd", "check_mean_error", ("/ denom).max())", "/ denom).mean())"),
           expect="not the mean"),
    edited("autograd", "check_absolute_error",
           ("    denom = torch.maximum(g_auto.abs(), g_num.abs()).clamp_min(1e-12)\n", ""),
           ("return float(((g_auto - g_num).abs() / denom).max())",
            "return float((g_auto - g_num).abs().max())"),
           expect="absolute difference is not a relative error"),
    edited("autograd", "control_flow_le", ("while b.norm() < 1000:", "while b.norm() <= 1000:"),
           expect="doubles once too often"),
    edited("autograd", "control_flow_ge", ("if b.sum() > 0:", "if b.sum() >= 0:"),
           expect="returns b when the sum is 0"),
    edited("autograd", "check_ignores_eps",
           ("g_num = numerical_gradient(f, x, eps)", "g_num = numerical_gradient(f, x)"),
           expect="ignores its eps"),
    edited("autograd", "check_returns_0d_tensor",
           ("return float(((g_auto - g_num).abs() / denom).max())",
            "return ((g_auto - g_num).abs() / denom).max()"),
           expect="says a Python float"),
    Variant("autograd", "derivative_returns_int", '''
def numerical_derivative(f, x, h=1e-5):
    return round((f(x + h) - f(x - h)) / (2 * h))
''', expect="is the int"),
    Variant("autograd", "autograd_torch_func", '''
def autograd_gradient(f, x):
    return torch.func.grad(f)(x.detach().clone())
''', expect="custom torch.autograd.Function"),
    Variant("autograd", "vjp_torch_func", '''
def vector_jacobian_product(f, x, v):
    _, vjp_fn = torch.func.vjp(f, x.detach().clone())
    return vjp_fn(v)[0]
''', expect="custom torch.autograd.Function"),
    Variant("autograd", "derivative_returns_0d_tensor", '''
def numerical_derivative(f, x, h=1e-5):
    x = torch.tensor(x, dtype=torch.float64)
    return (f(x + h) - f(x - h)) / (2 * h)
''', expect="says a Python float"),
]

CORRECT = [
    Variant("autograd", "autograd_functional_and_fsum", '''
import math


def numerical_derivative(f, x, h=1e-5):
    return math.fsum([f(x + h), -f(x - h)]) / (2 * h)


def autograd_gradient(f, x):
    return torch.autograd.functional.jacobian(f, x.detach().clone())


def vector_jacobian_product(f, x, v):
    return torch.autograd.functional.vjp(f, x.detach().clone(), v)[1]


def gradient_check(f, x, eps=1e-6):
    a = autograd_gradient(f, x).double()
    n = numerical_gradient(f, x, eps).double()
    floor = torch.full_like(a, 1e-12)
    rel = (a - n).abs() / torch.stack([a.abs(), n.abs(), floor]).amax(dim=0)
    return max(float(r) for r in rel.reshape(-1))
'''),
    Variant("autograd", "basis_vectors_and_autograd_grad", '''
def numerical_derivative(f, x, h=1e-5):
    return 0.5 * (f(x + h) - f(x - h)) / h


def numerical_gradient(f, x, eps=1e-6):
    flat = x.detach().reshape(-1)
    steps = torch.eye(flat.numel(), dtype=flat.dtype) * eps
    diffs = [float(f((flat + e).reshape(x.shape))) - float(f((flat - e).reshape(x.shape)))
             for e in steps]
    return (torch.tensor(diffs, dtype=x.dtype) / (2 * eps)).reshape(x.shape)


def autograd_gradient(f, x):
    with torch.enable_grad():
        x_leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x_leaf), x_leaf)
    return grad


def vector_jacobian_product(f, x, v):
    x_leaf = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x_leaf), x_leaf, grad_outputs=v)
    return grad


def detached_product_gradient(x):
    x_leaf = x.detach().requires_grad_(True)
    u = (x_leaf * x_leaf).detach()
    (grad,) = torch.autograd.grad((u * x_leaf).sum(), x_leaf)
    return grad


def control_flow_f(a):
    b = 2 * a
    while float(torch.sqrt((b * b).sum())) < 1000:
        b = 2 * b
    return b if float(b.sum()) > 0 else b * 100


def gradient_check(f, x, eps=1e-6):
    g_auto = autograd_gradient(f, x)
    g_num = numerical_gradient(f, x, eps)
    rel = (g_auto - g_num).abs() / (g_auto.abs() + g_num.abs() + 1e-12)
    return rel.max().item()
'''),
    Variant("autograd", "index_tuples_and_weighted_sum", '''
import itertools


def numerical_derivative(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / h / 2


def numerical_gradient(f, x, eps=1e-6):
    xc = x.detach().clone()
    grad = torch.zeros_like(xc)
    for idx in itertools.product(*[range(n) for n in x.shape]):
        old = xc[idx].item()
        xc[idx] = old + eps
        f_plus = f(xc).item()
        xc[idx] = old - eps
        f_minus = f(xc).item()
        xc[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def vector_jacobian_product(f, x, v):
    x_leaf = x.clone().detach().requires_grad_(True)
    (f(x_leaf) * v).sum().backward()
    return x_leaf.grad


def control_flow_f(a):
    b = a * 2
    while b.norm() < 1000:
        b *= 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


def gradient_check(f, x, eps=1e-6):
    g_auto = autograd_gradient(f, x).reshape(-1)
    g_num = numerical_gradient(f, x, eps).reshape(-1)
    worst = 0.0
    for a, n in zip(g_auto.tolist(), g_num.tolist()):
        worst = max(worst, abs(a - n) / max(abs(n), 1e-12))
    return worst
'''),
]

"""Optimization algorithms: the contract's mistakes (and others students make) and correct
solutions written differently from the reference."""

from tests.kit.variants import Variant, edited

T = "optim"

MISTAKES = [
    # ---------------------------------------------------------------- himmelblau
    Variant(T, "himmelblau_rows_for_coordinates", '''
def himmelblau(x):
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2
''', expect="rows were taken for coordinates"),
    Variant(T, "himmelblau_first_axis_coordinates", '''
def himmelblau(x):
    x0, x1 = x[:, 0], x[:, 1]
    return (x0 ** 2 + x1 - 11) ** 2 + (x0 + x1 ** 2 - 7) ** 2
''', expect="x[..., 0]"),
    Variant(T, "himmelblau_view_of_points", '''
def himmelblau(x):
    points = x.view(-1, 2)
    x0, x1 = points[:, 0], points[:, 1]
    return ((x0 ** 2 + x1 - 11) ** 2 + (x0 + x1 ** 2 - 7) ** 2).view(x.shape[:-1])
''', expect="use .reshape"),
    # ---------------------------------------------------------------- init_*_states
    Variant(T, "init_momentum_float32", '''
def init_momentum_states(params):
    return [torch.zeros(p.shape) for p in params]
''', expect="dtype"),
    Variant(T, "init_adam_one_tensor_for_v_and_s", '''
def init_adam_states(params):
    states = []
    for p in params:
        zeros = torch.zeros_like(p)
        states.append((zeros, zeros))
    return states
''', expect="shares its memory"),
    Variant(T, "init_rmsprop_one_tensor_for_every_parameter", '''
def init_rmsprop_states(params):
    return [torch.zeros_like(params[0])] * len(params)
''', expect="shares its memory"),
    # ---------------------------------------------------------------- the state rebound
    edited(T, "momentum_state_rebound",
           ("            v[:] = hyperparams[\"momentum\"] * v + p.grad",
            "            v = hyperparams[\"momentum\"] * v + p.grad"),
           expect="did not build up"),
    edited(T, "adagrad_state_rebound",
           ("            s += torch.square(p.grad)", "            s = s + torch.square(p.grad)"),
           expect="did not build up"),
    edited(T, "rmsprop_state_rebound",
           ("            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)",
            "            s = gamma * s + (1 - gamma) * torch.square(p.grad)"),
           expect="did not build up"),
    edited(T, "adam_state_rebound",
           ("            v[:] = beta1 * v + (1 - beta1) * p.grad",
            "            v = beta1 * v + (1 - beta1) * p.grad"),
           ("            s[:] = beta2 * s + (1 - beta2) * torch.square(p.grad)",
            "            s = beta2 * s + (1 - beta2) * torch.square(p.grad)"),
           expect="did not build up"),
    Variant(T, "momentum_outside_no_grad", '''
def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        v[:] = hyperparams["momentum"] * v + p.grad
        p -= hyperparams["lr"] * v
        p.grad.zero_()
''', expect="torch.no_grad()"),
    # ---------------------------------------------------------------- gradients not zeroed
    edited(T, "momentum_no_zero_grad",
           ("            p -= hyperparams[\"lr\"] * v\n            p.grad.zero_()",
            "            p -= hyperparams[\"lr\"] * v"),
           expect="not zero after the update"),
    edited(T, "rmsprop_no_zero_grad",
           ("            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)\n"
            "            p.grad.zero_()",
            "            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)"),
           expect="not zero after the update"),
    # ---------------------------------------------------------------- eps
    edited(T, "adagrad_eps_outside_sqrt",
           ("            s += torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)",
            "            s += torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / (torch.sqrt(s) + eps)"),
           expect="outside the square root"),
    edited(T, "adagrad_no_eps",
           ("            s += torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)",
            "            s += torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s)"),
           expect="there is no eps"),
    edited(T, "rmsprop_eps_outside_sqrt",
           ("            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)",
            "            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / (torch.sqrt(s) + eps)"),
           expect="outside the square root"),
    edited(T, "rmsprop_no_eps",
           ("            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s + eps)",
            "            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)\n"
            "            p -= hyperparams[\"lr\"] * p.grad / torch.sqrt(s)"),
           expect="there is no eps"),
    edited(T, "rmsprop_gamma_swapped",
           ("            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)",
            "            s[:] = (1 - gamma) * s + gamma * torch.square(p.grad)"),
           expect="swapped"),
    # ---------------------------------------------------------------- Adam's t and corrections
    edited(T, "adam_no_bias_correction",
           ("            v_hat = v / (1 - beta1 ** t)\n            s_hat = s / (1 - beta2 ** t)",
            "            v_hat = v\n            s_hat = s"),
           expect="without bias correction"),
    edited(T, "adam_t_counted_from_zero",
           ("    t = hyperparams[\"t\"]\n    with torch.no_grad():\n"
            "        for p, (v, s) in zip(params, states, strict=True):",
            "    hyperparams[\"t\"] += 1\n    t = hyperparams[\"t\"]\n    with torch.no_grad():\n"
            "        for p, (v, s) in zip(params, states, strict=True):"),
           ("            p.grad.zero_()\n    hyperparams[\"t\"] += 1",
            "            p.grad.zero_()"),
           expect="used t + 1"),
    Variant(T, "adam_t_per_parameter", '''
def adam(params, states, hyperparams):
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    with torch.no_grad():
        for p, (v, s) in zip(params, states):
            t = hyperparams["t"]
            v[:] = beta1 * v + (1 - beta1) * p.grad
            s[:] = beta2 * s + (1 - beta2) * p.grad ** 2
            p -= hyperparams["lr"] * (v / (1 - beta1 ** t)) / (
                torch.sqrt(s / (1 - beta2 ** t)) + eps)
            p.grad.zero_()
            hyperparams["t"] += 1
''', expect="once per parameter"),
    edited(T, "adam_t_not_increased",
           ("            p.grad.zero_()\n    hyperparams[\"t\"] += 1",
            "            p.grad.zero_()"),
           expect="did not go up by one"),
    edited(T, "adam_eps_inside_sqrt",
           ("p -= hyperparams[\"lr\"] * v_hat / (torch.sqrt(s_hat) + eps)",
            "p -= hyperparams[\"lr\"] * v_hat / torch.sqrt(s_hat + eps)"),
           expect="outside the square root in Adam"),
    edited(T, "adam_reads_eps_from_hyperparams",
           ("    beta1, beta2, eps = 0.9, 0.999, 1e-6\n",
            "    beta1, beta2, eps = 0.9, 0.999, hyperparams[\"eps\"]\n"),
           expect="not keys of hyperparams"),
    Variant(T, "momentum_with_torch_optim", '''
def sgd_momentum(params, states, hyperparams):
    optimizer = torch.optim.SGD(params, lr=hyperparams["lr"], momentum=hyperparams["momentum"])
    optimizer.step()
    optimizer.zero_grad()
''', expect="not allowed"),
    Variant(T, "adam_with_torch_optim", '''
def adam(params, states, hyperparams):
    optimizer = torch.optim.Adam(params, lr=hyperparams["lr"], eps=1e-6)
    for p, (v, s) in zip(params, states):
        optimizer.state[p] = {"step": torch.tensor(float(hyperparams["t"] - 1)),
                              "exp_avg": v, "exp_avg_sq": s}
    optimizer.step()
    optimizer.zero_grad()
    hyperparams["t"] += 1
''', expect="not allowed"),
    # ---------------------------------------------------------------- descend
    Variant(T, "descend_stores_x", '''
def descend(f, x0, update, states, hyperparams, num_steps):
    x = x0.detach().clone().requires_grad_(True)
    path = [x]
    for _ in range(num_steps):
        x.grad = None
        f(x).backward()
        update([x], states, hyperparams)
        path.append(x)
    return torch.stack(path).detach()
''', expect="every row of the path is the last iterate"),
    Variant(T, "descend_changes_x0", '''
def descend(f, x0, update, states, hyperparams, num_steps):
    x = x0.requires_grad_(True)
    path = [x.detach().clone()]
    for _ in range(num_steps):
        x.grad = None
        f(x).backward()
        update([x], states, hyperparams)
        path.append(x.detach().clone())
    return torch.stack(path)
''', expect="changed its argument x0"),
    edited(T, "descend_gradients_accumulate", ("        x.grad = None\n", ""),
           expect="accumulate across steps"),
    edited(T, "descend_torch_func",
           ("        x.grad = None\n        f(x).backward()\n",
            "        x.grad = torch.func.grad(f)(x.detach())\n"),
           expect="torch.func"),
    edited(T, "descend_copies_hyperparams",
           ("        update([x], states, hyperparams)", "        update([x], states, "
            "dict(hyperparams))"),
           expect="no copies"),
    edited(T, "descend_path_without_x0",
           ("    path = [x.detach().clone()]\n", "    path = []\n"),
           ("    return torch.stack(path)", "    return torch.stack(path) if path else "
            "x.detach().clone()[None]"),
           expect="start with x0"),
    # ---------------------------------------------------------------- find_minimum
    edited(T, "find_minimum_no_zero_grad", ("        optimizer.zero_grad()\n", ""),
           expect="zero_grad"),
    edited(T, "find_minimum_tensor_f", ("    return x, float(himmelblau(x))",
                                        "    return x, himmelblau(x)"),
           expect="Python float"),
    edited(T, "find_minimum_changes_x0",
           ("    x = x0.detach().clone().requires_grad_(True)\n    optimizer",
            "    x = x0.requires_grad_(True)\n    optimizer"),
           expect="changed its argument x0"),
]

CORRECT = [
    # ---------------------------------------------------------------- himmelblau
    Variant(T, "himmelblau_unbind_products", '''
def himmelblau(x):
    x0, x1 = x.unbind(-1)
    a = x0 * x0 + x1 - 11
    b = x0 + x1 * x1 - 7
    return a * a + b * b
'''),
    Variant(T, "himmelblau_select_pow", '''
def himmelblau(x):
    x0, x1 = torch.select(x, -1, 0), torch.select(x, -1, 1)
    return torch.pow(x0.pow(2) + x1 - 11, 2) + torch.pow(x0 + x1.pow(2) - 7, 2)
'''),
    # ---------------------------------------------------------------- init_*_states
    Variant(T, "init_states_zeros_with_dtype", '''
def init_momentum_states(params):
    return [torch.zeros(p.shape, dtype=p.dtype, device=p.device) for p in params]


def init_adagrad_states(params):
    states = []
    for p in params:
        states.append(p.new_zeros(p.shape))
    return states


def init_rmsprop_states(params):
    return [p.detach().clone().zero_() for p in params]


def init_adam_states(params):
    return [[torch.zeros(p.shape, dtype=p.dtype, device=p.device), p.new_zeros(p.shape)]
            for p in params]
'''),
    Variant(T, "init_states_full_like", '''
def init_momentum_states(params):
    return list(map(lambda p: torch.full_like(p, 0.0), params))


def init_adagrad_states(params):
    return [torch.zeros_like(p.detach()) for p in params]


def init_rmsprop_states(params):
    return [0 * p.detach() for p in params]


def init_adam_states(params):
    return [tuple(torch.zeros_like(p) for _ in range(2)) for p in params]
'''),
    # ---------------------------------------------------------------- sgd_momentum
    Variant(T, "momentum_in_place_methods", '''
def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v.mul_(hyperparams["momentum"]).add_(p.grad)
            p.sub_(hyperparams["lr"] * v)
        p.grad = None
'''),
    Variant(T, "momentum_rebinds_list_entries", '''
def sgd_momentum(params, states, hyperparams):
    for i, p in enumerate(params):
        states[i] = hyperparams["momentum"] * states[i] + p.grad
        p.data -= hyperparams["lr"] * states[i]
        p.grad.data.zero_()
'''),
    # ---------------------------------------------------------------- adagrad
    Variant(T, "adagrad_addcdiv", '''
def adagrad(params, states, hyperparams):
    with torch.no_grad():
        for p, s in zip(params, states):
            s.add_(p.grad * p.grad)
            p.addcdiv_(p.grad, torch.sqrt(s + 1e-6), value=-hyperparams["lr"])
            p.grad.zero_()
'''),
    Variant(T, "adagrad_rsqrt", '''
def adagrad(params, states, hyperparams):
    eps = 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s.addcmul_(p.grad, p.grad)
            p -= hyperparams["lr"] * p.grad * torch.rsqrt(s + eps)
        p.grad = None
'''),
    # ---------------------------------------------------------------- rmsprop
    Variant(T, "rmsprop_addcmul", '''
def rmsprop(params, states, hyperparams):
    gamma, eps = hyperparams["gamma"], 1e-6
    with torch.no_grad():
        for p, s in zip(params, states):
            s.mul_(gamma).addcmul_(p.grad, p.grad, value=1 - gamma)
            p.sub_(hyperparams["lr"] * p.grad / (s + eps).sqrt())
            p.grad.zero_()
'''),
    Variant(T, "rmsprop_lerp", '''
def rmsprop(params, states, hyperparams):
    for p, s in zip(params, states):
        with torch.no_grad():
            s.lerp_(p.grad ** 2, 1 - hyperparams["gamma"])
            p.data.add_(-hyperparams["lr"] * p.grad / torch.sqrt(s + 1e-6))
        p.grad = None
'''),
    # ---------------------------------------------------------------- adam
    Variant(T, "adam_as_torch_optim_computes", '''
import math


def adam(params, states, hyperparams):
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    t = hyperparams["t"]
    with torch.no_grad():
        for p, (v, s) in zip(params, states):
            v.lerp_(p.grad, 1 - beta1)
            s.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = hyperparams["lr"] / (1 - beta1 ** t)
            denom = (s.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
            p.addcdiv_(v, denom, value=-step_size)
            p.grad = None
    hyperparams["t"] = t + 1
'''),
    Variant(T, "adam_rebinds_state_pairs", '''
def adam(params, states, hyperparams):
    beta1, beta2, eps = 0.9, 0.999, 1e-6
    t = hyperparams["t"]
    for i, p in enumerate(params):
        v, s = states[i]
        g = p.grad.detach()
        v = beta1 * v + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g * g
        states[i] = (v, s)
        p.data -= hyperparams["lr"] * (v / (1 - beta1 ** t)) / (
            (s / (1 - beta2 ** t)).sqrt() + eps)
        p.grad.zero_()
    hyperparams.update(t=t + 1)
'''),
    # ---------------------------------------------------------------- descend
    Variant(T, "descend_autograd_grad_preallocated", '''
def descend(f, x0, update, states, hyperparams, num_steps):
    path = torch.empty((num_steps + 1, *x0.shape), dtype=x0.dtype, device=x0.device)
    x = x0.detach().clone().requires_grad_(True)
    path[0] = x0
    for k in range(num_steps):
        (x.grad,) = torch.autograd.grad(f(x), x)
        update([x], states, hyperparams)
        path[k + 1] = x.detach()
    return path
'''),
    Variant(T, "descend_zero_grad", '''
def descend(f, x0, update, states, hyperparams, num_steps):
    x = torch.tensor(x0.tolist(), dtype=x0.dtype, device=x0.device, requires_grad=True)
    path = [x0.clone()]
    for _ in range(num_steps):
        if x.grad is not None:
            x.grad.zero_()
        loss = f(x)
        loss.backward()
        update([x], states, hyperparams)
        path.append(x.detach().clone())
    return torch.stack(path, dim=0)
'''),
    # ---------------------------------------------------------------- find_minimum
    Variant(T, "find_minimum_item", '''
def find_minimum(x0, lr=1e-3, num_steps=20000):
    x = x0.clone().detach().requires_grad_()
    optimizer = torch.optim.Adam([x], lr=lr)
    for step in range(num_steps):
        optimizer.zero_grad(set_to_none=False)
        himmelblau(x).backward()
        optimizer.step()
    with torch.no_grad():
        return x.detach(), himmelblau(x).item()
'''),
    Variant(T, "find_minimum_parameter", '''
from torch import nn


def find_minimum(x0, lr=1e-3, num_steps=20000):
    x = nn.Parameter(x0.detach().clone())
    optimizer = torch.optim.Adam(params=[x], lr=lr)
    for _ in range(num_steps):
        pred = himmelblau(x)
        optimizer.zero_grad()
        pred.backward()
        optimizer.step()
    f_x = float(himmelblau(x.detach()))
    return x.detach().clone(), f_x
'''),
]

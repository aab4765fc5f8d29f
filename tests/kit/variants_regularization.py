"""Model selection, weight decay and dropout: the contract's mistakes (and others students make)
and correct solutions written differently from the reference."""

from tests.kit.variants import Variant, edited

T = "regularization"

MISTAKES = [
    # ---------------------------------------------------------------- poly_features
    edited(T, "poly_no_factorial", ("    return x.reshape(-1, 1) ** powers / factorials",
                                    "    return x.reshape(-1, 1) ** powers"),
           expect="without the / i!"),
    Variant(T, "poly_from_x1", '''
def poly_features(x, max_degree):
    powers = torch.arange(1, max_degree + 1, dtype=x.dtype)
    return x.reshape(-1, 1) ** powers / torch.exp(torch.lgamma(powers + 1))
''', expect="start at x**1"),
    Variant(T, "poly_float32_zeros", '''
def poly_features(x, max_degree):
    features = torch.zeros((x.shape[0], max_degree))
    for i in range(max_degree):
        features[:, i] = x.reshape(-1) ** i / math.factorial(i)
    return features
''', expect="keep the caller's dtype"),
    Variant(T, "poly_assumes_x_is_1d", '''
def poly_features(x, max_degree):
    columns = [x[:, None] ** i / math.factorial(i) for i in range(max_degree)]
    return torch.cat(columns, dim=-1)
''', expect="x.reshape(-1, 1)"),
    # ---------------------------------------------------------------- l2_penalty
    edited(T, "l2_without_half",
           ("    return torch.sum(w ** 2) / 2", "    return torch.sum(w ** 2)"),
           expect="without the / 2"),
    edited(T, "l2_as_a_norm", ("    return torch.sum(w ** 2) / 2",
                               "    return torch.sqrt(torch.sum(w ** 2))"),
           expect="this is the norm"),
    # ---------------------------------------------------------------- train_ridge
    edited(T, "ridge_penalty_once_per_batch",
           ("            loss = (y_hat - y.reshape(y_hat.shape)) ** 2 / 2 + lambd * l2_penalty(w)\n"
            "            loss.sum().backward()",
            "            loss = ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).sum() + lambd * "
            "l2_penalty(w)\n            loss.backward()"),
           expect="once per batch"),
    edited(T, "ridge_bias_penalised",
           ("+ lambd * l2_penalty(w)\n", "+ lambd * (l2_penalty(w) + l2_penalty(b))\n"),
           expect="bias was penalised"),
    edited(T, "ridge_penalty_inline_without_half",
           ("+ lambd * l2_penalty(w)\n", "+ lambd * (w ** 2).sum()\n"),
           expect="without the / 2"),
    edited(T, "ridge_divides_by_the_first_batch_size",
           ("    b = torch.zeros(1, requires_grad=True)\n",
            "    b = torch.zeros(1, requires_grad=True)\n    batch_size = None\n"),
           ("        for X, y in train_iter:\n", "        for X, y in train_iter:\n"
            "            batch_size = batch_size or len(y)\n"),
           ("                    p -= lr * p.grad / len(y)",
            "                    p -= lr * p.grad / batch_size"),
           expect="each batch's own size"),
    edited(T, "ridge_init_like_topic_3",
           ("torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)",
            "torch.normal(0, 0.01, size=(num_inputs, 1), requires_grad=True)"),
           expect="N(0, 1)"),
    edited(T, "ridge_reseeds",
           ("    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)\n",
            "    torch.manual_seed(0)\n"
            "    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)\n"),
           expect="anew"),
    edited(T, "ridge_no_zero_grad", ("                    p.grad.zero_()\n", ""),
           expect="gradients accumulate"),
    edited(T, "ridge_reads_the_data_once",
           ("    b = torch.zeros(1, requires_grad=True)\n",
            "    b = torch.zeros(1, requires_grad=True)\n    batches = iter(train_iter)\n"),
           ("        for X, y in train_iter:\n", "        for X, y in batches:\n"),
           expect="afresh"),
    Variant(T, "ridge_with_torch_optim", '''
def train_ridge(train_iter, num_inputs, lambd, num_epochs, lr):
    w = torch.normal(0, 1, size=(num_inputs, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    trainer = torch.optim.SGD([{"params": [w], "weight_decay": lambd}, {"params": [b]}], lr=lr)
    for _ in range(num_epochs):
        for X, y in train_iter:
            trainer.zero_grad()
            ((X @ w + b - y.reshape(-1, 1)) ** 2 / 2).mean().backward()
            trainer.step()
    return w.detach(), b.detach()
''', expect="not allowed"),
    # ---------------------------------------------------------------- weight_decay_groups
    Variant(T, "groups_decay_biases", '''
def weight_decay_groups(net, wd):
    return [{"params": list(net.parameters()), "weight_decay": wd},
            {"params": [], "weight_decay": 0}]
''', expect="biases are decayed too"),
    Variant(T, "groups_swapped", '''
def weight_decay_groups(net, wd):
    named = list(net.named_parameters())
    return [{"params": [p for n, p in named if not n.endswith("weight")], "weight_decay": 0},
            {"params": [p for n, p in named if n.endswith("weight")], "weight_decay": wd}]
''', expect="decayed group comes first"),
    Variant(T, "groups_linear_layers_only", '''
def weight_decay_groups(net, wd):
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    weights = [m.weight for m in linear]
    others = [p for p in net.parameters() if all(p is not w for w in weights)]
    return [{"params": weights, "weight_decay": wd}, {"params": others, "weight_decay": 0}]
''', expect="ends in 'weight'"),
    Variant(T, "groups_layer_by_layer", '''
def weight_decay_groups(net, wd):
    decayed, others = [], []
    for layer in net:
        for name, p in layer.named_parameters():
            (decayed if name.endswith("weight") else others).append(p)
    return [{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0}]
''', expect="more than once"),
    # ---------------------------------------------------------------- dropout_layer
    edited(T, "dropout_no_rescale",
           ("    return mask * X / (1.0 - dropout)", "    return mask * X"),
           expect="not rescaled"),
    edited(T, "dropout_rescaled_by_dropout",
           ("    return mask * X / (1.0 - dropout)", "    return mask * X / dropout"),
           expect="divided by dropout"),
    edited(T, "dropout_keeps_with_probability_dropout",
           ("(torch.rand(X.shape, device=X.device) > dropout)",
            "(torch.rand(X.shape, device=X.device) < dropout)"),
           expect="share 1 - dropout"),
    edited(T, "dropout_one_mask_for_every_row",
           ("(torch.rand(X.shape, device=X.device) > dropout)",
            "(torch.rand(X.shape[-1], device=X.device) > dropout)"),
           expect="rows got the same mask"),
    edited(T, "dropout_one_draw_per_row",
           ("(torch.rand(X.shape, device=X.device) > dropout)",
            "(torch.rand((X.shape[0],) + (1,) * (X.dim() - 1), device=X.device) > dropout)"),
           expect="dropped or kept whole"),
    edited(T, "dropout_reseeds",
           ("    mask = (torch.rand(", "    torch.manual_seed(0)\n    mask = (torch.rand("),
           expect="two calls dropped the same elements"),
    edited(T, "dropout_one_gives_nan",
           ("    if dropout == 1:\n        return torch.zeros_like(X)\n", ""),
           expect="gave nan"),
    edited(T, "dropout_accepts_anything",
           ("    if not 0 <= dropout <= 1:\n"
            "        raise ValueError(f\"dropout must lie in [0, 1], not {dropout}\")\n", ""),
           expect="instead of raising"),
    edited(T, "dropout_lets_nan_through",
           ("    if not 0 <= dropout <= 1:\n", "    if dropout < 0 or dropout > 1:\n"),
           expect="nan fails every comparison"),
    edited(T, "dropout_rejects_the_ends",
           ("    if not 0 <= dropout <= 1:\n", "    if not 0 < dropout < 1:\n"),
           expect="both ends included"),
    edited(T, "dropout_scales_x_in_place",
           ("    return mask * X / (1.0 - dropout)", "    return X.mul_(mask).div_(1.0 - dropout)"),
           expect="changed its argument"),
    edited(T, "dropout_flat_view",
           ("    mask = (torch.rand(X.shape, device=X.device) > dropout).to(X.dtype)\n"
            "    return mask * X / (1.0 - dropout)",
            "    flat = X.view(-1)\n"
            "    mask = (torch.rand(flat.shape, device=X.device) > dropout).to(X.dtype)\n"
            "    return (mask * flat / (1.0 - dropout)).view(X.shape)"),
           expect="use .reshape"),
    Variant(T, "dropout_calls_torch", '''
def dropout_layer(X, dropout):
    if not 0 <= dropout <= 1:
        raise ValueError(dropout)
    return torch.nn.functional.dropout(X, dropout, training=True)
''', expect="not allowed"),
    Variant(T, "dropout_native_dropout", '''
def dropout_layer(X, dropout):
    if not 0 <= dropout <= 1:
        raise ValueError(dropout)
    if dropout == 1:
        return torch.zeros_like(X)
    return torch.native_dropout(X, dropout, True)[0]
''', expect="not allowed"),
    # ---------------------------------------------------------------- DropoutMLP
    edited(T, "mlp_dropout_in_eval_mode",
           ("        if self.training:\n            H1 = dropout_layer(H1, self.dropout1)",
            "        H1 = dropout_layer(H1, self.dropout1)"),
           ("        if self.training:\n            H2 = dropout_layer(H2, self.dropout2)",
            "        H2 = dropout_layer(H2, self.dropout2)"),
           expect="in evaluation mode"),
    edited(T, "mlp_dropouts_swapped",
           ("            H1 = dropout_layer(H1, self.dropout1)",
            "            H1 = dropout_layer(H1, self.dropout2)"),
           ("            H2 = dropout_layer(H2, self.dropout2)",
            "            H2 = dropout_layer(H2, self.dropout1)"),
           expect="swapped"),
    edited(T, "mlp_view_flatten", ("self.lin1(X.reshape((-1, self.num_inputs)))",
                                   "self.lin1(X.view((-1, self.num_inputs)))"),
           expect="use .reshape"),
    Variant(T, "mlp_rates_in_globals", '''
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2):
        super().__init__()
        global DROPOUT1, DROPOUT2
        DROPOUT1, DROPOUT2 = dropout1, dropout2
        self.num_inputs = num_inputs
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)

    def forward(self, X):
        H1 = torch.relu(self.lin1(X.reshape(-1, self.num_inputs)))
        if self.training:
            H1 = dropout_layer(H1, DROPOUT1)
        H2 = torch.relu(self.lin2(H1))
        if self.training:
            H2 = dropout_layer(H2, DROPOUT2)
        return self.lin3(H2)
''', expect="share their dropout rates"),
    Variant(T, "mlp_with_nn_dropout", '''
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2):
        super().__init__()
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.drop1, self.drop2 = nn.Dropout(dropout1), nn.Dropout(dropout2)

    def forward(self, X):
        H1 = self.drop1(torch.relu(self.lin1(X.flatten(1))))
        return self.lin3(self.drop2(torch.relu(self.lin2(H1))))
''', expect="not allowed"),
]

CORRECT = [
    # ---------------------------------------------------------------- poly_features
    Variant(T, "poly_gamma_columns", '''
def poly_features(x, max_degree):
    x = x.reshape(-1)
    columns = [x ** i / math.gamma(i + 1) for i in range(max_degree)]
    return torch.stack(columns, dim=1)
'''),
    Variant(T, "poly_cumprod", '''
def poly_features(x, max_degree):
    n = x.numel()
    ratios = x.reshape(n, 1) / torch.arange(1, max_degree, dtype=x.dtype, device=x.device)
    ones = torch.ones(n, 1, dtype=x.dtype, device=x.device)
    return torch.cat([ones, torch.cumprod(ratios, dim=1)], dim=1)
'''),
    # ---------------------------------------------------------------- l2_penalty
    Variant(T, "l2_product_half", '''
def l2_penalty(w):
    return 0.5 * (w * w).sum()
'''),
    Variant(T, "l2_dot", '''
def l2_penalty(w):
    flat = w.reshape(-1)
    return torch.dot(flat, flat) / 2
'''),
    # ---------------------------------------------------------------- train_ridge
    Variant(T, "ridge_penalty_times_batch_size", '''
def train_ridge(train_iter, num_inputs, lambd, num_epochs, lr):
    w = torch.randn(num_inputs, 1).requires_grad_()
    b = torch.zeros(1).requires_grad_()
    for epoch in range(num_epochs):
        for X, y in train_iter:
            n = len(y)
            loss = ((X @ w + b - y.reshape(-1, 1)) ** 2 / 2).sum() + n * lambd * l2_penalty(w)
            gw, gb = torch.autograd.grad(loss, [w, b])
            with torch.no_grad():
                w -= lr * gw / n
                b -= lr * gb / n
    return w.detach(), b.detach()
'''),
    Variant(T, "ridge_grad_none", '''
def train_ridge(train_iter, num_inputs, lambd, num_epochs, lr):
    w = torch.normal(0.0, 1.0, (num_inputs, 1))
    w.requires_grad_(True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(num_epochs):
        for X, y in train_iter:
            y_hat = torch.matmul(X, w) + b
            l = (y_hat - y.view(-1, 1)) ** 2 / 2 + lambd * l2_penalty(w)
            l.sum().backward()
            for p in [w, b]:
                p.data.sub_(lr * p.grad / y.numel())
                p.grad = None
    return w.detach().clone(), b.detach().clone()
'''),
    Variant(T, "ridge_one_generator_of_batches", '''
def train_ridge(train_iter, num_inputs, lambd, num_epochs, lr):
    w = torch.normal(0, 1, (num_inputs, 1)).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    for X, y in (batch for _ in range(num_epochs) for batch in train_iter):
        penalty = lambd * (w ** 2).sum() / 2
        loss = ((X @ w + b - y.reshape(-1, 1)) ** 2 / 2 + penalty).sum()
        loss.backward()
        with torch.no_grad():
            w.sub_(lr / len(y) * w.grad)
            b.sub_(lr / len(y) * b.grad)
        w.grad = None
        b.grad = None
    return w.detach(), b.detach()
'''),
    # ---------------------------------------------------------------- weight_decay_groups
    Variant(T, "groups_comprehensions", '''
def weight_decay_groups(net, wd):
    named = list(net.named_parameters())
    decay = [p for name, p in named if name.endswith("weight")]
    rest = [p for name, p in named if not name.endswith("weight")]
    return [dict(params=decay, weight_decay=wd), dict(params=rest, weight_decay=0.0)]
'''),
    Variant(T, "groups_dict_of_names", '''
def weight_decay_groups(net, wd):
    by_name = dict(net.named_parameters())
    decayed = [name for name in by_name if name[-6:] == "weight"]
    return [{"params": [by_name[n] for n in decayed], "weight_decay": wd},
            {"params": [p for n, p in by_name.items() if n not in decayed], "weight_decay": 0}]
'''),
    # ---------------------------------------------------------------- dropout_layer
    Variant(T, "dropout_bernoulli", '''
def dropout_layer(X, dropout):
    if math.isnan(dropout) or dropout < 0 or dropout > 1:
        raise ValueError("dropout must lie in [0, 1]")
    if dropout == 1:
        return X * 0
    keep = torch.bernoulli(torch.full_like(X, 1 - dropout))
    return keep * X / (1 - dropout)
'''),
    Variant(T, "dropout_where_rand_like", '''
def dropout_layer(X, dropout):
    assert 0 <= dropout <= 1, "dropout outside [0, 1]"
    keep = torch.rand_like(X) < 1 - dropout
    return torch.where(keep, X / max(1 - dropout, 1e-12), torch.zeros_like(X))
'''),
    Variant(T, "dropout_uniform_masked_fill", '''
def dropout_layer(X, dropout):
    if not (dropout >= 0 and dropout <= 1):
        raise ValueError(f"dropout {dropout} outside [0, 1]")
    if dropout == 1:
        return torch.zeros_like(X)
    drop = torch.empty_like(X).uniform_() < dropout
    return (X / (1 - dropout)).masked_fill(drop, 0)
'''),
    # ---------------------------------------------------------------- DropoutMLP
    Variant(T, "mlp_flatten_module_and_rates_by_name", '''
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2):
        super().__init__()
        self.flatten = nn.Flatten()
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.rates = {"lin1": dropout1, "lin2": dropout2}

    def forward(self, X):
        H = self.flatten(X)
        for name, layer in self.named_children():
            if name in self.rates:
                H = torch.relu(layer(H))
                if self.training and self.rates[name] > 0:
                    H = dropout_layer(H, self.rates[name])
        return self.lin3(H)
'''),
    Variant(T, "mlp_functional", '''
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2):
        super().__init__()
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)
        self.rates = (dropout1, dropout2)

    def forward(self, X):
        H = X.flatten(1)
        for layer, rate in zip((self.lin1, self.lin2), self.rates):
            H = torch.nn.functional.relu(layer(H))
            H = dropout_layer(H, rate) if self.training else H
        return self.lin3(H)
'''),
    Variant(T, "mlp_dropout_before_relu", '''
class DropoutMLP(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_hiddens1, num_hiddens2, dropout1, dropout2):
        super().__init__()
        self.num_inputs, self.p1, self.p2 = num_inputs, dropout1, dropout2
        self.lin1 = nn.Linear(num_inputs, num_hiddens1)
        self.lin2 = nn.Linear(num_hiddens1, num_hiddens2)
        self.lin3 = nn.Linear(num_hiddens2, num_outputs)

    def forward(self, X):
        H1 = self.lin1(X.reshape(-1, self.num_inputs))
        if self.training:
            H1 = dropout_layer(H1, self.p1)
        H2 = self.lin2(H1.clamp(min=0))
        if self.training:
            H2 = dropout_layer(H2, self.p2)
        return self.lin3(torch.maximum(H2, torch.zeros_like(H2)))
'''),
]

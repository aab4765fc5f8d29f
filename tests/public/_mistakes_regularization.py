"""The mistakes the regularization tests recognise (§4.4-4.6): what each says, and how a test
tells it from a correct answer. The public tests (test_regularization.py) and the hidden tests
both use these, so a mistake reads the same in `make grade` as in the instructor's grade.

Dropout is random, so its checks are statistical, with bounds a correct layer breaks with a
probability of at most one in a million (`share_margin`); they never compare with one draw of
a reference. `train_ridge` starts from a random w, so its checks start with a batch on which
one SGD step forgets where w started (`orthogonal_batch`), and compare what comes after with
the same SGD steps, taken outside your code.

For the public tests' fixed inputs, the right answers and what each mistake gives are written
out below as numbers (a table per test, `*_EXAMPLE`), worked out in float64 from the formulas
of the sections; the instructor's kit checks every number against the hidden tests' oracles.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grader.checks import RecognisedMistake, assert_close, expect_tensor, is_close

# --------------------------------------------------------------------------- what they say

NO_FACTORIAL = ("the columns are x**i without the / i!: divide column i by i! "
                "(math.factorial(i), or math.gamma(i + 1)) (§4.4.4).")
FROM_X1 = ("the columns start at x**1: column 0 is x**0 / 0! = 1, then x, x**2 / 2!, ..., up to "
           "x**(max_degree - 1) / (max_degree - 1)! (§4.4.4).")
FROM_X1_NO_FACTORIAL = FROM_X1 + " (Also without the / i!)"
NOT_FLATTENED = ("x of shape (n, 1) gave a third axis: make x a column first, x.reshape(-1, 1), "
                 "whether it came as (n,) or (n, 1) (§4.4.4).")
PENALTY_NO_HALF = ("this is sum(w**2) without the / 2: the L2 penalty is sum(w**2) / 2, whose "
                   "gradient is w (§4.5.2).")
PENALTY_NORM = ("this is the norm, the square root of sum(w**2): the L2 penalty is the squared "
                "norm, halved, sum(w**2) / 2 (§4.5.2).")
PENALTY_NORM_HALVED = PENALTY_NORM + " (And halved.)"
PENALTY_MEAN = "this is the mean of w**2 / 2: sum over every entry, (w**2).sum() / 2."
PENALTY_PER_BATCH = ("the penalty was added once per batch: add lambd * l2_penalty(w) to every "
                     "example's loss before the sum (l = squared_loss(...) + lambd * "
                     "l2_penalty(w); l.sum().backward()), so that after sgd's division by "
                     "len(y) it still weighs lambd (§4.5.3).")
BIAS_PENALISED = ("the bias was penalised too: the penalty is lambd * l2_penalty(w), of the "
                  "weights only; b is not decayed (§4.5.3).")
FIRST_BATCH_SIZE = ("every step was divided by the first batch's size: sgd gets each batch's own "
                    "size, len(y).")
ONE_EPOCH = ("this is after one epoch: loop over train_iter afresh in every one of the num_epochs "
             "epochs (an iterator made once, iter(train_iter), is empty after the first).")
# one batch the first step takes to its fixed point: a penalised bias stays there, and so does
# a loop that takes no step after the first epoch
BIAS_OR_ONE_EPOCH = (f"b stayed where the first step put it, as it does after either of two "
                     f"mistakes. Either {BIAS_PENALISED} Or {ONE_EPOCH}")
RIDGE_NOT_ZEROED = ("the gradients accumulate: backward() adds to w.grad and b.grad, so zero them "
                    "after every step (p.grad.zero_() or p.grad = None), as topic 3's sgd does.")
START_NOT_STANDARD = ("draw it from N(0, 1), torch.normal(0, 1, (num_inputs, 1)) (§4.5.3).")
SAME_START = ("two calls of train_ridge started from the same w: draw it anew on every call "
              "(never reseed the random generator inside train_ridge).")
BIASES_DECAYED = ("the biases are decayed too: only the parameters whose name ends in 'weight' "
                  "are (§4.5.4).")
NOT_BY_NAME = ("decay exactly the parameters whose name in net.named_parameters() ends in "
               "'weight'.")
LISTED_TWICE = ("each parameter exactly once, as net.named_parameters() lists them (a layer "
                "used twice is listed once).")
NO_RESCALE = ("the kept elements were not rescaled: divide them by 1 - dropout, so that each "
              "element keeps its expected value (§4.6.4).")
RESCALED_BY_DROPOUT = ("the kept elements were divided by dropout: divide by 1 - dropout, the "
                       "probability of keeping an element (§4.6.4).")
KEEPS_WITH_DROPOUT = ("about a share 1 - dropout of the elements was zeroed: dropout is the "
                      "probability of zeroing one, so keep an element when rand > dropout "
                      "(§4.6.4).")
DROPOUT_ONE_NAN = ("dropout = 1 gave nan (0 / 0 when dividing by 1 - dropout): when dropout == "
                   "1, return torch.zeros_like(X) (§4.6.4).")
ENDS_INCLUDED = ("the line allows 0 <= dropout <= 1, both ends included: dropout 0 gives X's "
                 "values, dropout 1 zeros; raise only outside [0, 1] (§4.6.4).")
NOT_REJECTED = ("check 0 <= dropout <= 1 first and raise a ValueError otherwise (nan fails "
                "every comparison).")
SHARED_BY_ROWS = ("the rows got the same mask: draw one random number per element "
                  "(torch.rand(X.shape)), not one per column that every row shares (§4.6.4).")
SHARED_BY_COLUMNS = ("each row was dropped or kept whole: draw one random number per element "
                     "(torch.rand(X.shape)), not one per row (§4.6.4).")
NOT_INDEPENDENT = ("neighbouring elements are dropped together more often than independent "
                   "draws are: draw one random number per element, torch.rand(X.shape) "
                   "(§4.6.4).")
SAME_MASK_EVERY_CALL = ("two calls dropped the same elements: draw a fresh mask on every call "
                        "(never reseed the random generator inside dropout_layer).")
DROPOUT_IN_EVAL = ("the net dropped activations in evaluation mode (net.eval()): apply dropout "
                   "only when self.training is True (§4.6.4).")
RATES_SWAPPED = ("dropout1 and dropout2 are swapped: dropout1 follows lin1's ReLU, dropout2 "
                 "lin2's.")
NOT_TRAINING_WHEN_BUILT = ("it dropped nothing: a new nn.Module is in training mode "
                           "(self.training is True) until net.eval(), and DropoutMLP drops then.")
SHARED_RATES = ("the first net dropped nothing once a second DropoutMLP with dropouts 0 was "
                "built: the two nets share their dropout rates (a module-level or class-level "
                "variable). Every object is independent: keep each net's rates on the net "
                "itself, self.dropout1 = dropout1 (§4.6.4).")
FAILURE_PROBABILITY = 1e-6  # of a statistical check failing a correct dropout

# --------------------------------------------------------------------------- poly_features, l2


# --------------------------------------------------------------------------- train_ridge


def orthogonal_batch(num_inputs: int) -> torch.Tensor:
    """8 examples whose num_inputs (<= 7) feature columns are +-1, orthogonal to each other and
    to the ones (columns of a Hadamard matrix): X^T X = 8 I and X sums to 0 over the examples.
    One SGD step on it with lr (1 + lambd) = 1 takes w to lr X^T y / 8 and b to lr mean(y)
    wherever w started."""
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    return torch.kron(h2, torch.kron(h2, h2))[:, 1:num_inputs + 1]


def check_forgets_the_start(student, X: torch.Tensor, y: torch.Tensor, lambd: float, what: str
                            ) -> None:
    """One train_ridge step on the orthogonal batch with lr = 1 / (1 + lambd) lands on
    (lr X^T y / 8, lr mean(y)); where it does not, the step whose weight of the penalty would
    also forget the start names the mistake (lr = 1 / (1 + lambd / 8): once per batch;
    1 / (1 + 2 lambd): no / 2)."""
    def step(lr: float):
        w, b = student.train_ridge([(X, y)], X.shape[1], lambd, 1, lr)
        expect_tensor(w, "w", shape=(X.shape[1], 1), dtype=torch.float32)
        expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
        landed = (lr * X.T @ y / 8, lr * y.mean().reshape(1))
        return (w, b), all(torch.allclose(a, e, atol=1e-5) for a, e in zip((w, b), landed,
                                                                           strict=True))
    (w, b), right = step(1 / (1 + lambd))
    if right:
        return
    for message, lr in ((PENALTY_PER_BATCH, 1 / (1 + lambd / len(y))),
                        (PENALTY_NO_HALF, 1 / (1 + 2 * lambd))):
        if lambd and step(lr)[1]:
            raise RecognisedMistake(f"{what}: {message}", message)
    lr = 1 / (1 + lambd)
    assert_close(w, lr * X.T @ y / 8, f"{what}: w", atol=1e-5)
    assert_close(b, lr * y.mean().reshape(1), f"{what}: b", atol=1e-5)


START_SEED = 4321


def seeded_start(student, num_inputs: int) -> torch.Tensor:
    """Seed the worker's random generator and return the w that train_ridge's line then draws
    first (`drawn_start`): the mistake that never zeroes the gradients keeps the first
    gradient, which depends on the start, and is named from it."""
    student.remote(torch.random.manual_seed, START_SEED)
    return drawn_start(num_inputs)


def drawn_start(num_inputs: int) -> torch.Tensor:
    """The w that train_ridge's line, torch.normal(0, 1, (num_inputs, 1)), draws first from a
    generator seeded with START_SEED (this process's generator is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(START_SEED)
        return torch.normal(0, 1, (num_inputs, 1))


def check_ridge(w, b, expected: tuple, mistakes: dict[str, tuple], what: str, steps: int
                ) -> None:
    """train_ridge's (w, b) against the oracle's (w, b, size), naming a known mistake."""
    w_want, b_want, size = expected
    expect_tensor(w, "w", shape=w_want.shape, dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    if w.requires_grad or b.requires_grad:
        raise AssertionError("train_ridge returned w or b attached to autograd: return "
                             "w.detach(), b.detach().")
    tol = 1e-5 * (1 + size) * (1 + steps)
    # two mistakes may give the same w (a penalised bias, one epoch only): name one whose w
    # and b both match where there is one
    both = {m: v for m, v in mistakes.items()
            if is_close(w, v[0].float(), atol=tol) and is_close(b, v[1].float(), atol=tol)}
    named = both or mistakes
    assert_close(w, w_want.float(), f"w {what}", atol=tol,
                 mistakes={m: v[0].float() for m, v in named.items()})
    assert_close(b, b_want.float(), f"b {what}", atol=tol,
                 mistakes={m: v[1].float() for m, v in named.items()})


def check_ridge_start(student) -> None:
    """With num_epochs = 0 train_ridge returns its start: w of 4000 entries drawn from N(0, 1)
    (mean within 0.08 of 0, 5 standard deviations; variance within 0.15 of 1, 6.7), anew on
    every call, and b = 0."""
    data = [(torch.zeros(1, 4000), torch.zeros(1, 1))]
    w, b = student.train_ridge(data, 4000, 1.0, 0, 0.1)
    expect_tensor(w, "w", shape=(4000, 1), dtype=torch.float32)
    expect_tensor(b, "b", shape=(1,), dtype=torch.float32)
    assert not bool(b.any()), f"b should start at 0, not {b.tolist()}."
    mean, var = float(w.double().mean()), float(w.double().var())
    if abs(mean) > 0.08 or abs(var - 1) > 0.15:
        raise RecognisedMistake(f"w starts with mean {mean:.3g} and variance {var:.3g}: "
                                f"{START_NOT_STANDARD}", START_NOT_STANDARD)
    again, _ = student.train_ridge(data, 4000, 1.0, 0, 0.1)
    if torch.equal(w, again):
        raise RecognisedMistake(SAME_START, SAME_START)


# --------------------------------------------------------------------------- weight_decay_groups


def distinct_values(modules, seed: int) -> dict[str, torch.Tensor]:
    """Give every parameter of nn.Sequential(*modules) random values (no two alike), so a
    returned tensor tells which parameter it is; returns name -> values."""
    net = nn.Sequential(*modules)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def names_of(params, values: dict[str, torch.Tensor], what: str) -> list[str]:
    """The names (in `values`) of the parameters a group lists."""
    if not isinstance(params, list | tuple):
        raise AssertionError(f"{what}['params'] should be a list of parameters, but it is "
                             f"{type(params).__name__}.")
    names = []
    for p in params:
        expect_tensor(p, f"an entry of {what}['params']")
        found = [n for n, v in values.items() if v.shape == p.shape and torch.equal(v, p)]
        if not found:
            raise AssertionError(f"{what}['params'] holds a tensor of shape {tuple(p.shape)} "
                                 "that is none of the net's parameters: list the parameters "
                                 "themselves (net.named_parameters()).")
        names.append(found[0])
    return names


def check_groups(groups, values: dict[str, torch.Tensor], wd: float, decayed: list[str],
                 others: list[str], name: str) -> None:
    """weight_decay_groups' answer for the net `name` whose parameters hold `values`: two
    dicts, the `decayed` parameters with weight_decay wd first, then the `others` with 0."""
    if not isinstance(groups, list | tuple) or len(groups) != 2 or not all(
            isinstance(g, dict) for g in groups):
        raise AssertionError("weight_decay_groups should return a list of two dicts, "
                             "{'params': [...], 'weight_decay': ...}.")
    first, second = (names_of(g.get("params"), values, f"group {i}")
                     for i, g in enumerate(groups))
    decays = [g.get("weight_decay") for g in groups]
    if decays != [wd, 0]:
        hint = " (the decayed group comes first)" if decays == [0, wd] else ""
        raise AssertionError(f"the groups' weight_decay are {decays}, not [wd, 0]{hint}.")
    listed = first + second
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        raise RecognisedMistake(f"{twice} appear more than once in the groups ({name}): "
                                f"{LISTED_TWICE}", LISTED_TWICE)
    if sorted(first) != sorted(decayed) or sorted(second) != sorted(others):
        found = (f"for {name} the decayed group holds {sorted(first)} and the other "
                 f"{sorted(second)}; expected {decayed} and {others}")
        if any(n.endswith("bias") for n in first):
            raise RecognisedMistake(f"{found}: {BIASES_DECAYED}", BIASES_DECAYED)
        raise RecognisedMistake(f"{found}: {NOT_BY_NAME}", NOT_BY_NAME)


# --------------------------------------------------------------------------- dropout_layer


def nonzero_tensor(shape, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values of both signs, 0.5 to 2 in size: a zero in the output was dropped."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.rand(shape, generator=g, dtype=torch.float64) * 1.5 + 0.5
    return (sizes * torch.randn(shape, generator=g, dtype=torch.float64).sign()).to(dtype)


def share_margin(n: int) -> float:
    """A margin t such that the share of ones among n independent 0/1 draws lies farther than
    t from their probability with probability at most FAILURE_PROBABILITY: Hoeffding's bound
    P(|share - p| >= t) <= 2 exp(-2 n t**2), solved for t."""
    return math.sqrt(math.log(2 / FAILURE_PROBABILITY) / (2 * n))


def check_zeroed_share(zeroed: torch.Tensor, dropout: float, what: str) -> None:
    """The share of True in `zeroed` (independent draws) is dropout, within share_margin."""
    n, share = zeroed.numel(), float(zeroed.double().mean())
    margin = share_margin(n)
    if abs(share - dropout) <= margin:
        return
    if abs(share - (1 - dropout)) <= margin:
        raise RecognisedMistake(f"{what}: {KEEPS_WITH_DROPOUT}", KEEPS_WITH_DROPOUT)
    raise AssertionError(f"{what}: a share {share:.4f} of the {n} elements was zeroed, but with "
                         f"dropout = {dropout} it lies within {margin:.4f} of {dropout} "
                         "(failing a correct layer once in a million): zero each element "
                         "independently with probability dropout.")


def check_agreement(agree: torch.Tensor, dropout: float, what: str, message: str) -> None:
    """`agree` says where two masks that should be independent draws agree (both dropped or
    both kept), which each position does with probability q = dropout**2 + (1 - dropout)**2:
    agreement above q + share_margin means they were not drawn apart (`message` says how)."""
    share = float(agree.double().mean())
    q = dropout ** 2 + (1 - dropout) ** 2
    if share > q + share_margin(agree.numel()):
        raise RecognisedMistake(f"{what}: they agree at a share {share:.3f} of the positions, "
                                f"where independent masks agree at about {q:.3f}: {message}",
                                message)


def check_masks_independent(zeroed: torch.Tensor, dropout: float, what: str) -> None:
    """Which elements of a batch (n, ...) were dropped: rows 0 and 1, 2 and 3, ... and columns
    (the last axis) 0 and 1, 2 and 3, ... are independent draws. A mask shared by every row
    (or every column) is named first: then one direction agrees everywhere, and the other's
    positions are not independent, so its agreement says nothing."""
    rows = zeroed[0:len(zeroed) // 2 * 2:2] == zeroed[1::2]
    columns = zeroed[..., 0:zeroed.shape[-1] // 2 * 2:2] == zeroed[..., 1::2]
    for same, message in ((rows, SHARED_BY_ROWS), (columns, SHARED_BY_COLUMNS)):
        if bool(same.all()):
            raise RecognisedMistake(f"{what}: {message}", message)
    for same, which in ((rows, "rows"), (columns, "columns")):
        check_agreement(same, dropout, f"{what}, neighbouring {which}", NOT_INDEPENDENT)


def check_kept_values(out: torch.Tensor, X: torch.Tensor, dropout: float, what: str) -> None:
    """Every element of `out` is 0 or X / (1 - dropout), to a relative 1e-6 (X has no zeros)."""
    kept = out != 0
    scaled = X.double()[kept] / (1 - dropout)
    got = out.double()[kept]
    bad = ~torch.isclose(got, scaled, rtol=1e-6, atol=0)
    if bool(bad.any()):
        for message, wrong in ((NO_RESCALE, X.double()[kept]),
                               (RESCALED_BY_DROPOUT, X.double()[kept] / dropout)):
            if torch.allclose(got, wrong, rtol=1e-6, atol=0):
                raise RecognisedMistake(f"{what}: {message}", message)
        i = int(bad.nonzero()[0])
        raise AssertionError(f"{what}: a kept element is {float(got[i]):.7g} where X / (1 - "
                             f"dropout) is {float(scaled[i]):.7g}: every element must be 0 "
                             "or X's value divided by 1 - dropout.")


def check_all_dropped(out: torch.Tensor) -> None:
    """dropout_layer(X, 1) is all zeros, never nan."""
    if bool(out.isnan().any()):
        raise RecognisedMistake(f"dropout_layer(X, 1): {DROPOUT_ONE_NAN}", DROPOUT_ONE_NAN)
    if bool(out.any()):
        raise AssertionError("dropout_layer(X, 1) should be all zeros: every element dropped.")


def not_rejected(dropout: float, out) -> RecognisedMistake:
    """The failure of a dropout_layer(X, dropout) that returned `out` for a dropout outside
    [0, 1] (nan included) instead of raising."""
    what = (f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor)
            else type(out).__name__)
    return RecognisedMistake(f"dropout_layer(X, {dropout}) returned {what} instead of raising: "
                             f"{NOT_REJECTED}", NOT_REJECTED)


# --------------------------------------------------------------------------- DropoutMLP


def build(student, sizes=(12, 3, 10, 8), dropouts=(0.5, 0.5)):
    """A DropoutMLP(*sizes, *dropouts) in the worker and its state_dict, its layers checked."""
    net = student.DropoutMLP(*sizes, *dropouts)
    state = net.state_dict()
    num_inputs, num_outputs, h1, h2 = sizes
    for name, shape in (("lin1.weight", (h1, num_inputs)), ("lin2.weight", (h2, h1)),
                        ("lin3.weight", (num_outputs, h2))):
        if name not in state or tuple(state[name].shape) != shape:
            raise AssertionError(f"DropoutMLP{(*sizes, *dropouts)} should have the nn.Linear "
                                 f"layers lin1, lin2 and lin3, {name} of shape {shape}; its "
                                 f"parameters are {sorted(state)}.")
    return net, state


def mlp_oracle(state: dict, X: torch.Tensor) -> torch.Tensor:
    """lin3(relu(lin2(relu(lin1(X flattened))))) in float64: the net without dropout."""
    h = X.double().reshape(len(X), -1)
    for i, layer in enumerate(("lin1", "lin2", "lin3")):
        h = h @ state[f"{layer}.weight"].double().T + state[f"{layer}.bias"].double()
        h = torch.relu(h) if i < 2 else h
    return h


def all_dropped(state: dict, layer: str, n: int) -> torch.Tensor:
    """The output (n, num_outputs) of a DropoutMLP whose activations after `layer` ('lin1' or
    'lin2') were all dropped: every row lin3(relu(lin2.bias)), or lin3.bias."""
    b3 = state["lin3.bias"].double()
    if layer == "lin2":
        return b3.expand(n, -1)
    return (torch.relu(state["lin2.bias"].double()) @ state["lin3.weight"].double().T
            + b3).expand(n, -1)


def check_same_in_eval(net, X: torch.Tensor, first: torch.Tensor) -> None:
    """A second net(X) in evaluation mode gives `first` again: nothing random happens."""
    if not torch.equal(first, net(X)):
        raise RecognisedMistake("DropoutMLP(...)(X) in evaluation mode changes from call to "
                                f"call: {DROPOUT_IN_EVAL}", DROPOUT_IN_EVAL)


# --------------------------------------------------------------------------- the public tests
# A table per public test that compares with numbers: its inputs, the right answer and, under
# "mistakes", what each mistake the test names gives for those inputs, in the order a test
# tries them (the first match is the one named), worked out in float64 and rounded once to the
# inputs' dtype (written with the digits that round to it).

F64 = torch.float64

POLY_EXAMPLE = {
    "x": torch.tensor([2.0, -1.0, 0.5]),
    "max_degree": 4,
    "expected": torch.tensor([[1.0, 2.0, 2.0, 1.3333334], [1.0, -1.0, 0.5, -0.16666667],
                              [1.0, 0.5, 0.125, 0.020833334]]),
    "mistakes": {
        NO_FACTORIAL: torch.tensor([[1.0, 2.0, 4.0, 8.0], [1.0, -1.0, 1.0, -1.0],
                                    [1.0, 0.5, 0.25, 0.125]]),
        FROM_X1: torch.tensor([[2.0, 2.0, 1.3333334, 0.6666667],
                               [-1.0, 0.5, -0.16666667, 0.041666668],
                               [0.5, 0.125, 0.020833334, 0.0026041667]]),
        FROM_X1_NO_FACTORIAL: torch.tensor([[2.0, 4.0, 8.0, 16.0], [-1.0, 1.0, -1.0, 1.0],
                                            [0.5, 0.25, 0.125, 0.0625]]),
    },
}

POLY_COLUMN_EXAMPLE = {
    "x": torch.tensor([[1.5], [-3.0], [0.25]], dtype=F64),
    "max_degree": 5,
    "expected": torch.tensor([[1.0, 1.5, 1.125, 0.5625, 0.2109375],
                              [1.0, -3.0, 4.5, -4.5, 3.375],
                              [1.0, 0.25, 0.03125, 0.0026041666666666665,
                               0.00016276041666666666]], dtype=F64),
    "mistakes": {
        NO_FACTORIAL: torch.tensor([[1.0, 1.5, 2.25, 3.375, 5.0625],
                                    [1.0, -3.0, 9.0, -27.0, 81.0],
                                    [1.0, 0.25, 0.0625, 0.015625, 0.00390625]], dtype=F64),
        FROM_X1: torch.tensor([[1.5, 1.125, 0.5625, 0.2109375, 0.06328125],
                               [-3.0, 4.5, -4.5, 3.375, -2.025],
                               [0.25, 0.03125, 0.0026041666666666665, 0.00016276041666666666,
                                8.138020833333333e-06]], dtype=F64),
        FROM_X1_NO_FACTORIAL: torch.tensor([[1.5, 2.25, 3.375, 5.0625, 7.59375],
                                            [-3.0, 9.0, -27.0, 81.0, -243.0],
                                            [0.25, 0.0625, 0.015625, 0.00390625, 0.0009765625]],
                                           dtype=F64),
        NOT_FLATTENED: torch.tensor([[[1.0, 1.5, 1.125, 0.5625, 0.2109375]],
                                     [[1.0, -3.0, 4.5, -4.5, 3.375]],
                                     [[1.0, 0.25, 0.03125, 0.0026041666666666665,
                                       0.00016276041666666666]]], dtype=F64),
    },
}

L2_PENALTY_EXAMPLE = {
    "w": torch.tensor([[3.0], [-4.0]]),
    "expected": torch.tensor(12.5),  # (9 + 16) / 2
    "mistakes": {PENALTY_NO_HALF: torch.tensor(25.0), PENALTY_NORM: torch.tensor(5.0),
                 PENALTY_NORM_HALVED: torch.tensor(2.5), PENALTY_MEAN: torch.tensor(6.25)},
}

# the labels X [1, -2, 0.5] + 3 of the orthogonal batch orthogonal_batch(3)
ORTHOGONAL_BATCH = (orthogonal_batch(3),
                    torch.tensor([[2.5], [-0.5], [5.5], [4.5], [2.5], [-0.5], [5.5], [4.5]]))

# one step with lr = 1 / (1 + lambd) = 0.8 lands on w = lr X^T y / 8, b = lr mean(y)
RIDGE_ONE_STEP_EXAMPLE = {"batch": ORTHOGONAL_BATCH, "lambd": 0.25}

# two steps with lambd = 1, lr = 0.5: the first lands on the ridge solution w, which stays;
# b moves on, unless it is penalised too
RIDGE_BIAS_EXAMPLE = {
    "batch": ORTHOGONAL_BATCH, "lambd": 1.0, "num_epochs": 2, "lr": 0.5,
    "expected": (torch.tensor([[0.5], [-1.0], [0.25]]), torch.tensor([2.25])),
    "mistakes": {BIAS_OR_ONE_EPOCH: torch.tensor([1.5])},  # b's
}

# two epochs over the orthogonal batch and a batch of 3 (y = X [1, -2, 0.5] + 3 too); the
# mistake that never zeroes the gradients starts from drawn_start(3) (seeded_start)
RIDGE_TWO_SIZES_EXAMPLE = {
    "batches": [ORTHOGONAL_BATCH,
                (torch.tensor([[0.5, -1.0, 0.25], [1.0, 0.5, -0.5], [-0.25, 0.75, 1.0]]),
                 torch.tensor([[5.625], [2.75], [1.75]]))],
    "num_inputs": 3, "lambd": 0.25, "num_epochs": 2, "lr": 0.8,
    # w, b and the largest |entry| of either on the way (the magnitude rounding grows with)
    "expected": (torch.tensor([[0.7173333], [-1.4758667], [0.2974]]), torch.tensor([3.0576]),
                 3.0576),
    "mistakes": {  # (w, b)
        BIAS_PENALISED: (torch.tensor([[0.91333336], [-1.4366666], [0.415]]),
                         torch.tensor([2.46])),
        FIRST_BATCH_SIZE: (torch.tensor([[0.7774375], [-1.5517625], [0.3665875]]),
                           torch.tensor([2.96685])),
        ONE_EPOCH: (torch.tensor([[0.91333336], [-1.4366666], [0.415]]), torch.tensor([2.94])),
        RIDGE_NOT_ZEROED: (torch.tensor([[-0.827072], [4.6432347], [-4.1139665]]),
                           torch.tensor([-2.8626099])),
    },
}

"""Public checks for model selection, weight decay and dropout (§4.4-4.6): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs.

Dropout is random, so its checks are statistical, with bounds a correct layer breaks with a
probability of at most one in a million (`share_margin`); they never compare with one draw of
a reference. `train_ridge` starts from a random w, so its check uses a batch on which one SGD
step forgets where w started (`orthogonal_batch`), and compares what comes after.
"""

import math

import pytest
import torch
from torch import nn

from grader.checks import RecognisedMistake, assert_close, expect_tensor
from grader.failures import StudentRaised

# What the tests say when they recognise a mistake (the hidden tests say the same).
NO_FACTORIAL = ("the columns are x**i without the / i!: divide column i by i! "
                "(math.factorial(i), or math.gamma(i + 1)) (§4.4.4).")
FROM_X1 = ("the columns start at x**1: column 0 is x**0 / 0! = 1, then x, x**2 / 2!, ..., up to "
           "x**(max_degree - 1) / (max_degree - 1)! (§4.4.4).")
PENALTY_NO_HALF = ("this is sum(w**2) without the / 2: the L2 penalty is sum(w**2) / 2, whose "
                   "gradient is w (§4.5.2).")
PENALTY_NORM = ("this is the norm, the square root of sum(w**2): the L2 penalty is the squared "
                "norm, halved, sum(w**2) / 2 (§4.5.2).")
PENALTY_PER_BATCH = ("the penalty was added once per batch: add lambd * l2_penalty(w) to every "
                     "example's loss before the sum (l = squared_loss(...) + lambd * "
                     "l2_penalty(w); l.sum().backward()), so that after sgd's division by "
                     "len(y) it still weighs lambd (§4.5.3).")
BIASES_DECAYED = ("the biases are decayed too: only the parameters whose name ends in 'weight' "
                  "are (§4.5.4).")
BIAS_PENALISED = ("the bias was penalised too: the penalty is lambd * l2_penalty(w), of the "
                  "weights only; b is not decayed (§4.5.3).")
NO_RESCALE = ("the kept elements were not rescaled: divide them by 1 - dropout, so that each "
              "element keeps its expected value (§4.6.4).")
RESCALED_BY_DROPOUT = ("the kept elements were divided by dropout: divide by 1 - dropout, the "
                       "probability of keeping an element (§4.6.4).")
KEEPS_WITH_DROPOUT = ("about a share 1 - dropout of the elements was zeroed: dropout is the "
                      "probability of zeroing one, so keep an element when rand > dropout "
                      "(§4.6.4).")
DROPOUT_ONE_NAN = ("dropout = 1 gave nan (0 / 0 when dividing by 1 - dropout): when dropout == "
                   "1, return torch.zeros_like(X) (§4.6.4).")
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
FAILURE_PROBABILITY = 1e-6  # of a statistical check failing a correct dropout


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


def nonzero_tensor(shape, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values of both signs, 0.5 to 2 in size: a zero in the output was dropped."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.rand(shape, generator=g, dtype=torch.float64) * 1.5 + 0.5
    return (sizes * torch.randn(shape, generator=g, dtype=torch.float64).sign()).to(dtype)


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


@pytest.mark.points(1)
def test_poly_features_small_example(student):
    """poly_features([2, -1, 0.5], 4) has the columns 1, x, x**2 / 2!, x**3 / 3! (§4.4.4)."""
    x = torch.tensor([2.0, -1.0, 0.5])
    powers = torch.stack([x ** i for i in range(5)], dim=1)
    factorials = torch.tensor([1.0, 1.0, 2.0, 6.0, 24.0])
    assert_close(student.poly_features(x, 4), (powers / factorials)[:, :4],
                 "poly_features([2, -1, 0.5], 4)",
                 mistakes={NO_FACTORIAL: powers[:, :4], FROM_X1: (powers / factorials)[:, 1:],
                           FROM_X1 + " (Also without the / i!)": powers[:, 1:]})


@pytest.mark.points(1)
def test_l2_penalty_small_example(student):
    """l2_penalty([[3], [-4]]) is (9 + 16) / 2 = 12.5, a 0-d tensor (§4.5.2)."""
    penalty = student.l2_penalty(torch.tensor([[3.0], [-4.0]]))
    expect_tensor(penalty, "l2_penalty(w)", shape=())
    assert_close(penalty, torch.tensor(12.5), "l2_penalty([[3], [-4]])",
                 mistakes={PENALTY_NO_HALF: torch.tensor(25.0), PENALTY_NORM: torch.tensor(5.0),
                           PENALTY_NORM + " (And halved.)": torch.tensor(2.5)})


@pytest.mark.points(2)
def test_train_ridge_one_exact_step(student):
    """One step on 8 examples with orthogonal +-1 features (orthogonal_batch), lambd = 0.25 and
    lr = 0.8 = 1 / (1 + lambd): the penalty on every example's loss makes w forget its random
    start, w = lr X^T y / 8 = [0.8, -1.6, 0.4] and b = lr mean(y) = 2.4 (§4.5.3)."""
    X = orthogonal_batch(3)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 3.0
    check_forgets_the_start(student, X, y, 0.25, "train_ridge after one step")


@pytest.mark.points(1)
def test_train_ridge_leaves_the_bias_alone(student):
    """Two steps on the orthogonal batch with lambd = 1, lr = 0.5: the first lands on w =
    [0.5, -1, 0.25], b = 1.5 (w is then the ridge solution and stays); the second, with the
    bias not penalised, moves b to 2.25 (§4.5.3)."""
    X = orthogonal_batch(3)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 3.0
    w, b = student.train_ridge([(X, y)], 3, 1.0, 2, 0.5)
    expect_tensor(b, "b", shape=(1,))
    assert_close(w, torch.tensor([[0.5], [-1.0], [0.25]]), "w after two steps", atol=1e-5)
    assert_close(b, torch.tensor([2.25]), "b after two steps", atol=1e-5,
                 mistakes={BIAS_PENALISED: torch.tensor([1.5])})


@pytest.mark.points(1)
def test_weight_decay_groups_linear_layers(student):
    """For nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) and wd = 0.01: the first group
    holds the two weights with weight_decay 0.01, the second the two biases with weight_decay 0
    (§4.5.4)."""
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    net = student.remote(nn.Sequential, *layers)
    groups = student.weight_decay_groups(net, 0.01)
    assert isinstance(groups, list) and len(groups) == 2, "a list of two dicts"
    decayed, others = groups
    assert decayed["weight_decay"] == 0.01 and others["weight_decay"] == 0, (
        "the first group has weight_decay=wd, the second weight_decay=0")
    shapes = sorted(tuple(p.shape) for p in decayed["params"])
    if (2,) in shapes or (3,) in shapes:
        raise RecognisedMistake(f"the decayed group holds parameters of shapes {shapes}: "
                                f"{BIASES_DECAYED}", BIASES_DECAYED)
    assert shapes == [(2, 3), (3, 4)], (
        f"the decayed group holds parameters of shapes {shapes}: the two weights only")
    assert sorted(tuple(p.shape) for p in others["params"]) == [(2,), (3,)], (
        "the second group holds the two biases")


@pytest.mark.points(1)
def test_dropout_layer_zero_and_one(student):
    """dropout_layer(X, 0) gives X's values and dropout_layer(X, 1) gives zeros, not nan;
    dropout_layer(X, 1.5) raises an exception (§4.6.4)."""
    X = nonzero_tensor((4, 5), 0)
    assert_close(student.dropout_layer(X, 0.0), X, "dropout_layer(X, 0)", atol=0)
    ones = student.dropout_layer(X, 1.0)
    expect_tensor(ones, "dropout_layer(X, 1)", shape=(4, 5))
    if bool(ones.isnan().any()):
        raise RecognisedMistake(f"dropout_layer(X, 1): {DROPOUT_ONE_NAN}", DROPOUT_ONE_NAN)
    assert not bool(ones.any()), "dropout_layer(X, 1) should be all zeros"
    with pytest.raises(StudentRaised):
        student.dropout_layer(X, 1.5)
        raise AssertionError("dropout_layer(X, 1.5) did not raise: check 0 <= dropout <= 1 "
                             "and raise a ValueError otherwise (nan included).")


@pytest.mark.points(2)
def test_dropout_layer_statistics(student):
    """dropout_layer(X, 0.2) on 100 x 100 elements zeroes a share of about 0.2 of them
    (within share_margin), and divides the others by 0.8 (§4.6.4)."""
    X = nonzero_tensor((100, 100), 1)
    out = expect_tensor(student.dropout_layer(X, 0.2), "dropout_layer(X, 0.2)",
                        shape=(100, 100), dtype=torch.float32)
    check_kept_values(out, X, 0.2, "dropout_layer(X, 0.2)")
    check_zeroed_share(out == 0, 0.2, "dropout_layer(X, 0.2)")


@pytest.mark.points(1)
def test_dropout_layer_rows_get_their_own_masks(student):
    """dropout_layer(X, 0.5) on 50 rows of 40: rows 0 and 1, 2 and 3, ... agree on whether an
    element was dropped about half the time, never all the time; so do columns 0 and 1, 2 and
    3, ..., and two calls: every element is dropped on its own, anew on each call (§4.6.4)."""
    X = nonzero_tensor((50, 40), 2)
    zeroed = expect_tensor(student.dropout_layer(X, 0.5), "dropout_layer(X, 0.5)",
                           shape=(50, 40)) == 0
    check_masks_independent(zeroed, 0.5, "the masks of dropout_layer(X, 0.5)")
    check_agreement(zeroed == (student.dropout_layer(X, 0.5) == 0), 0.5,
                    "the masks of two calls", SAME_MASK_EVERY_CALL)


@pytest.mark.points(1)
def test_dropout_mlp_eval_mode(student):
    """DropoutMLP(6, 2, 5, 4, 0.5, 0.5) in evaluation mode computes lin3(relu(lin2(relu(lin1
    X)))), no element dropped; its layers are lin1, lin2, lin3 (§4.6.4)."""
    net = student.DropoutMLP(6, 2, 5, 4, 0.5, 0.5)
    state = net.state_dict()
    for name, shape in (("lin1.weight", (5, 6)), ("lin2.weight", (4, 5)), ("lin3.weight", (2, 4))):
        assert name in state and tuple(state[name].shape) == shape, (
            f"the net should have nn.Linear layers lin1, lin2, lin3 ({name} of shape {shape})")
    net.eval()
    X = nonzero_tensor((8, 6), 3)
    hidden = torch.relu(X @ state["lin1.weight"].T + state["lin1.bias"])
    hidden = torch.relu(hidden @ state["lin2.weight"].T + state["lin2.bias"])
    expected = hidden @ state["lin3.weight"].T + state["lin3.bias"]
    first = expect_tensor(net(X), "DropoutMLP(...)(X)", shape=(8, 2))
    if not torch.equal(first, net(X)):
        raise RecognisedMistake("DropoutMLP(...)(X) in evaluation mode changes from call to "
                                f"call: {DROPOUT_IN_EVAL}", DROPOUT_IN_EVAL)
    assert_close(first, expected, "DropoutMLP(...)(X) in evaluation mode", atol=1e-5)

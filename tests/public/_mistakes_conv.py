"""The mistakes the conv tests recognise (§6.2-6.6): what each says, and how a test tells it
from a correct answer. The public tests (test_conv.py) and the hidden tests both use these, so
a mistake reads the same in `make grade` as in the instructor's grade.

The oracles here are torch's own F.conv2d, F.max_pool2d and F.avg_pool2d (stride 1, no padding:
the contract's layers), computed in float64; your code may not call them, the tests may. What
learn_kernel and lenet must give for the public tests' inputs is written out below as numbers
(`*_EXAMPLE` tables, with what each named mistake gives), worked out by the instructor's hidden
oracles, which the instructor's kit checks every number against.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from grader.checks import (
    RecognisedMistake,
    assert_close,
    expect_tensor,
    hints_on_error,
    is_close,
    max_abs,
    tolerance,
)
from grader.failures import StudentRaised
from tests.public._conventions import NON_CONTIGUOUS_HINTS

# --------------------------------------------------------------------------- what they say

FLIPPED = ("the kernel was flipped: deep learning's 'convolution' is a cross-correlation, "
           "Y[i, j] = (X[i:i + kh, j:j + kw] * K).sum() with K as it is (§6.2.1).")
OFF_BY_ONE = ("the output has one row or column too many or too few: a (kh, kw) window fits "
              "h - kh + 1 times down X and w - kw + 1 times across (§6.2.1).")
LOOP_TOO_FAR = ("a window and the kernel had different shapes: the loop ran one row or column "
                "too far (the last window starts at row h - kh and column w - kw; the output "
                "has h - kh + 1 rows and w - kw + 1 columns) (§6.2.1).")
FLOAT32_ZEROS = ("a float64 input gave a float32 result: D2L's torch.zeros((h, w)) makes "
                 "float32; create the output with dtype=X.dtype (and device=X.device).")
STACKED = ("the channels' results were stacked, not summed: with several input channels "
           "the output is the sum over the channels of corr2d(X[i], K[i]) (§6.4.1).")
SUMMED_OUTPUTS = ("the output channels were summed over: each output channel o is "
                  "corr2d_multi_in(X, K[o]); stack them into (c_out, h', w') (§6.4.2).")
STRIDE_WINDOW = ("the window moved by its own size (a stride equal to the window): pool2d's "
                 "window moves one step at a time, so windows overlap (§6.5.1).")
AVG_COUNT = ("each window's sum was divided by the wrong count: a (ph, pw) window holds "
             "ph * pw entries (or take the window's .mean()) (§6.5.1).")
ONE_SIDE = ("padding was counted on one side only: p rows are added at the top and p at "
            "the bottom (columns on both sides), so the size grows by 2 * p (§6.3.1).")
NO_ZERO_GRAD = ("the gradient was never zeroed: backward() adds to K.grad, so each step used "
                "the sum of all earlier gradients. Zero it after every step (K.grad.zero_()) "
                "(§6.2.4).")
MEAN_LOSS = ("the loss was the mean of the squared errors: learn_kernel's loss is their sum, "
             "((corr2d(X, K) - Y) ** 2).sum() (§6.2.4).")
READ_AS_CONTIGUOUS = (
    "X was read as if it were contiguous: its memory was addressed with the strides of a new "
    "(h, w) tensor (as_strided with strides (w, 1)), but X may be transposed, strided or at a "
    "storage offset. Slice X (X[i:i + kh, j:j + kw]), use X.unfold, or give as_strided "
    "X.stride() (§6.2.1).")
ZERO_START = ("a window whose entries are all negative got the maximum 0: the running maximum "
              "started at 0 (a zeros tensor, or max(0, ...)). Take each window's own maximum, "
              "window.max(), or start from its first entry (§6.5.1).")
MODE_NOT_REJECTED = ("check the mode before pooling, e.g. `if mode not in ('max', 'avg'): raise "
                     "ValueError(...)` (D2L's if/elif silently returns zeros).")
NO_BIAS = "the bias was not added: forward(x) is corr2d(x, weight) + bias (§6.2.2)."
RELU = ("ReLU where LeNet has sigmoids: the book's LeNet uses nn.Sigmoid() after each "
        "convolution and each hidden Linear layer (§6.6.1).")
MAX_POOL = ("max pooling where LeNet averages: the book's LeNet uses "
            "nn.AvgPool2d(kernel_size=2, stride=2) (§6.6.1).")
FLATTEN = ("the first Linear layer does not take the flattened size: the first convolution "
           "pads by 2 (28 x 28 stays 28 x 28), pooling halves it to 14, the 5 x 5 convolution "
           "makes 10 and pooling 5, so Flatten gives 16 * 5 * 5 = 400 inputs (§6.6.1).")
RELU_AND_MAX_POOL = f"{RELU} Also {MAX_POOL}"
LAZY = ("lenet() has a Lazy module: its parameters do not exist until the first forward pass "
        "(and train_gpu's Xavier initialisation skips them). Give every layer its sizes: "
        "nn.Linear(16 * 5 * 5, 120) (§6.6.1).")

# What torch raises, and the likely cause (grader.checks.hints_on_error)
LOOP_HINTS = {"must match the size of tensor": LOOP_TOO_FAR}
# what corr2d and the functions and layers built on it may raise: a loop past the edge, or a
# .view of a non-contiguous input
CORR_HINTS = {**LOOP_HINTS, **NON_CONTIGUOUS_HINTS}
# kernel_size, pool_size, padding and stride may each be an int or a pair
PAIR_HINTS = dict.fromkeys(
    ("cannot unpack non-iterable int", "'int' object is not subscriptable",
     "'int' object is not iterable"),
    "kernel_size, pool_size, padding and stride may each be an int k, meaning (k, k), or an "
    "(h, w) pair: turn each into a pair first (as_pair(pool_size)).")
LENET_HINTS = {"uninitialized parameter": LAZY, "UninitializedParameter": LAZY,
               "cannot be multiplied": FLATTEN}


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


# --------------------------------------------------------------------------- cross-correlations


def oracle_conv(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """F.conv2d of one example `X (c, h, w)` with `K (c_out, c, kh, kw)` in float64:
    `(c_out, h - kh + 1, w - kw + 1)`."""
    return F.conv2d(X.double()[None], K.double())[0]


def corr_scale(X: torch.Tensor, K: torch.Tensor) -> float:
    """The size of the sums of one output's products (`K` the kernel of one output channel):
    rounding grows with it."""
    return K.numel() * max(1.0, max_abs(X)) * max(1.0, max_abs(K))


def check_result(out, expected: torch.Tensor, what: str, scale: float,
                 mistakes: Iterable[tuple[str, torch.Tensor]] = ()) -> None:
    """`out` against the oracle `expected` (in the inputs' dtype): a wrong result that matches
    a known mistake's value (of any shape) names it, as do an output one row or column off
    and a float32 result for float64 inputs; then the values."""
    expect_tensor(out, what)
    tol = tolerance(expected.dtype, scale)
    if not is_close(out, expected, atol=tol):
        for message, wrong in mistakes:
            if is_close(out, wrong, atol=tol):
                raise RecognisedMistake(f"{what}: {message}", message)
    got, want = tuple(out.shape), tuple(expected.shape)
    if got != want and len(got) == len(want) and got[:-2] == want[:-2] and all(
            abs(a - b) <= 1 for a, b in zip(got[-2:], want[-2:], strict=True)):
        raise RecognisedMistake(f"{what} has shape {got}, expected {want}: {OFF_BY_ONE}",
                                OFF_BY_ONE)
    if expected.dtype == torch.float64 and out.dtype == torch.float32:
        raise RecognisedMistake(f"{what}: {FLOAT32_ZEROS}", FLOAT32_ZEROS)
    assert_close(out, expected, what, scale=scale)


def corr2d_mistakes(X: torch.Tensor, K: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """What the known wrong corr2d(X, K) return."""
    mistakes = [(FLIPPED, oracle_conv(X[None], K.flip(0, 1)[None, None])[0])]
    if X.stride() == (1, X.shape[0]) and X.shape[0] > 1 < X.shape[1]:
        # a transposed X, whose memory holds all of its entries (and nothing else), read row
        # after row as if it were a new (h, w) tensor
        seen = X.as_strided(X.shape, (X.shape[1], 1))
        mistakes.append((READ_AS_CONTIGUOUS, oracle_conv(seen[None], K[None, None])[0]))
    return mistakes


def check_corr2d(out, X: torch.Tensor, K: torch.Tensor, what: str) -> None:
    """corr2d(X, K)'s result `out` against F.conv2d's, naming a known mistake."""
    expected = oracle_conv(X[None], K[None, None])[0].to(X.dtype)
    check_result(out, expected, what, corr_scale(X, K), corr2d_mistakes(X, K))


def multi_in_mistakes(X: torch.Tensor, K: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """What the known wrong corr2d_multi_in(X, K) return."""
    per_channel = F.conv2d(X.double()[None], K.double()[:, None], groups=X.shape[0])[0]
    return [(STACKED, per_channel), (FLIPPED, oracle_conv(X, K.flip(-2, -1)[None])[0])]


def multi_in_out_mistakes(X: torch.Tensor, K: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """What the known wrong corr2d_multi_in_out(X, K) return."""
    summed = oracle_conv(X, K).sum(0)
    return [(SUMMED_OUTPUTS, summed), (SUMMED_OUTPUTS, summed[None]),
            (FLIPPED, oracle_conv(X, K.flip(-2, -1)))]


# --------------------------------------------------------------------------- conv_output_shape


def shape_mistakes(size, kernel_size, padding, stride) -> dict[str, tuple[int, int]]:
    """What the known wrong conv_output_shape(size, kernel_size, padding, stride) return."""
    (kh, kw), (ph, pw), (sh, sw) = pair(kernel_size), pair(padding), pair(stride)
    return {ONE_SIDE: ((size[0] + ph - kh) // sh + 1, (size[1] + pw - kw) // sw + 1)}


def expect_shape_tuple(value, expected: tuple[int, int], what: str,
                       mistakes: dict[str, tuple[int, int]]) -> None:
    """conv_output_shape's answer is the tuple `expected` of two Python ints."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise AssertionError(f"{what} should return a tuple (h, w) of two ints, but it "
                             f"returned {value!r}.")
    kinds = {type(v).__name__ for v in value}
    if kinds != {"int"}:
        raise AssertionError(f"{what} returned {value!r}: its entries should be Python ints, "
                             f"not {', '.join(sorted(kinds - {'int'}))} (use floor division "
                             "//, or int(...) of a tensor).")
    if value != expected:
        for message, wrong in mistakes.items():
            if value == wrong:
                raise RecognisedMistake(f"{what} returned {value}, expected {expected}: "
                                        f"{message}", message)
        raise AssertionError(f"{what} returned {value}, but nn.Conv2d's output has shape "
                             f"{expected}: (n + 2 * p - k) // s + 1 per dimension (§6.3).")


# --------------------------------------------------------------------------- pool2d


def oracle_pool(X: torch.Tensor, pool_size, mode: str, stride=1) -> torch.Tensor:
    """F.max_pool2d or F.avg_pool2d of `X (h, w)` in float64."""
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(X.double()[None, None], pair(pool_size), stride=stride)[0, 0]


def pool_mistakes(X: torch.Tensor, pool_size, mode: str) -> list[tuple[str, torch.Tensor]]:
    """What the known wrong pool2d(X, pool_size, mode) return."""
    ph, pw = pair(pool_size)
    mistakes = [(STRIDE_WINDOW, oracle_pool(X, pool_size, mode, stride=pair(pool_size)))]
    if mode == "max":
        mistakes.append((ZERO_START, oracle_pool(X, pool_size, mode).clamp_min(0)))
    if mode == "avg":
        sums = oracle_pool(X, pool_size, mode) * (ph * pw)
        mistakes += [(AVG_COUNT, sums / count)
                     for count in sorted({ph, pw, ph * ph, pw * pw, ph + pw, 1} - {ph * pw})]
    return mistakes


def check_pool(student, X: torch.Tensor, pool_size, mode: str) -> None:
    """pool2d(X, pool_size, mode) against torch's pooling, naming a known mistake."""
    with hints_on_error(PAIR_HINTS):
        out = student.pool2d(X, pool_size, mode)
    check_result(out, oracle_pool(X, pool_size, mode).to(X.dtype),
                 f"pool2d(X, {pool_size}, {mode!r}) for X {tuple(X.shape)}", max_abs(X),
                 pool_mistakes(X, pool_size, mode))


def check_unknown_mode(student, X: torch.Tensor, mode: str) -> None:
    """pool2d(X, 2, mode) for a mode other than 'max' and 'avg' raises ValueError."""
    try:
        out = student.pool2d(X, 2, mode)
    except StudentRaised as e:
        if "raised ValueError:" not in str(e):
            raise AssertionError(f"pool2d(X, 2, {mode!r}) raised something else than a "
                                 f"ValueError: {e}. Raise ValueError(...) for a mode that "
                                 "is neither 'max' nor 'avg'.") from None
        return
    raise RecognisedMistake(f"pool2d(X, 2, {mode!r}) returned {out!r} instead of raising "
                            f"ValueError: {MODE_NOT_REJECTED}", MODE_NOT_REJECTED)


# --------------------------------------------------------------------------- Conv2D


def expect_conv2d_parameters(layer, kernel: tuple[int, int], what: str) -> dict:
    """The layer's state_dict, which holds weight (kh, kw) and bias (1,) and nothing else."""
    state = layer.state_dict()
    if set(state) != {"weight", "bias"}:
        raise AssertionError(f"{what} has the parameters {sorted(state)}: the layer has two, "
                             "self.weight = nn.Parameter(...) of shape (kh, kw) and self.bias "
                             "= nn.Parameter(...) of shape (1,) (§6.2.2).")
    for name, shape in (("weight", kernel), ("bias", (1,))):
        got = tuple(state[name].shape)
        if got != shape:
            raise AssertionError(f"{what}.{name} has shape {got}, expected {shape}"
                                 + (" (an int kernel_size k means (k, k))."
                                    if name == "weight" else "."))
    return state


def conv2d_layer_mistakes(X: torch.Tensor, K: torch.Tensor, bias: float
                          ) -> list[tuple[str, torch.Tensor]]:
    """What the known wrong Conv2D layers with weight K and bias `bias` return for X."""
    return [(FLIPPED, oracle_conv(X[None], K.flip(0, 1)[None, None])[0] + bias),
            (NO_BIAS, oracle_conv(X[None], K[None, None])[0])]


# --------------------------------------------------------------------------- learn_kernel


def check_learned_kernel(out, expected: torch.Tensor, scale: float,
                         mistakes: dict[str, torch.Tensor], what: str) -> None:
    """learn_kernel's result `out` against the kernel its steps give (`expected`, with the
    `scale` of their rounding), naming a known mistake (`mistakes`: message -> its kernel)."""
    expect_tensor(out, what)
    if out.requires_grad:
        raise AssertionError(f"{what} requires grad: return the kernel detached "
                             "(K.detach()), as the contract says.")
    check_result(out, expected, what, scale, mistakes.items())


def edge_problem(dtype=torch.float32):
    """The book's example (§6.2.4): learn [[1, -1]] from the edge image, a 6 x 8 image of ones
    with black columns 2-5, and its edges Y (6, 7)."""
    X = torch.ones(6, 8, dtype=dtype)
    X[:, 2:6] = 0
    Y = oracle_conv(X[None], torch.tensor([[[[1.0, -1.0]]]]))[0].to(dtype)
    return X, Y


# learn_kernel(X, Y, (1, 2), num_epochs, lr) on edge_problem(dtype): the kernel its steps give
# (computed in float64, rounded to dtype), the scale of their rounding and each mistake's kernel
LEARN_KERNEL_EXAMPLE = {
    "dtype": torch.float32, "kernel": (1, 2), "num_epochs": 10, "lr": 3e-2,
    "expected": torch.tensor([[0.9884708, -0.9884708]]),
    "scale": 835.1577296806513,
    "mistakes": {NO_ZERO_GRAD: torch.tensor([[-0.041317265, 0.041317265]]),
                 MEAN_LOSS: torch.tensor([[0.082482606, -0.082482606]])},
}

LEARN_KERNEL_FLOAT64_EXAMPLE = {
    "dtype": torch.float64, "kernel": (1, 2), "num_epochs": 3, "lr": 3e-2,
    "expected": torch.tensor([[0.7378560000000001, -0.7378560000000001]], dtype=torch.float64),
    "scale": 218.96985600000002,
    "mistakes": {NO_ZERO_GRAD: torch.tensor([[1.558656, -1.558656]], dtype=torch.float64),
                 MEAN_LOSS: torch.tensor([[0.025494507288629738, -0.025494507288629738]],
                                         dtype=torch.float64)},
}


# --------------------------------------------------------------------------- lenet

LENET_SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120),
                (84,), (10, 84), (10,)]


def lenet_parameters(net, what: str) -> list[tuple[str, torch.Tensor]]:
    """The net's parameters in order, checked to have the book's LeNet's shapes."""
    with hints_on_error(LENET_HINTS):
        state = net.state_dict()
    params = [(k, v) for k, v in state.items()
              if isinstance(v, torch.Tensor) and v.is_floating_point()]
    shapes = [tuple(v.shape) for _, v in params]
    if shapes == LENET_SHAPES:
        return params
    for (key, value), want in zip(params, LENET_SHAPES, strict=False):
        got = tuple(value.shape)
        if got != want and want == (120, 400) and len(got) == 2 and got[0] == 120:
            raise RecognisedMistake(f"{what}'s {key} has shape {got}: {FLATTEN}", FLATTEN)
    raise AssertionError(f"{what}'s parameters have the shapes {shapes}, but the book's LeNet's "
                         f"are {LENET_SHAPES}, in this order: Conv2d(1, 6, 5), Conv2d(6, 16, "
                         "5), Linear(400, 120), Linear(120, 84), Linear(84, 10), each with its "
                         "bias (§6.6.1).")


def lenet_example_inputs(example: dict) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The parameters (LeNet's shapes, in order) and images of a LENET_EXAMPLE-like table,
    drawn from its seed: N(0, magnitude**2) parameters vary the activations enough for max
    and average pooling to differ."""
    g = torch.Generator().manual_seed(example["seed"])
    params = [torch.randn(shape, generator=g) * example["magnitude"] for shape in LENET_SHAPES]
    return params, torch.rand(example["images"], 1, 28, 28, generator=g)


# the book's LeNet's logits (float32) for lenet_example_inputs(LENET_EXAMPLE), and those of the
# nets with the known mistakes, given the same parameters in the same order
LENET_EXAMPLE = {
    "seed": 0, "magnitude": 0.5, "images": 2,
    "expected": torch.tensor([
        [-1.586749, -2.2000523, -2.309094, -0.130709, -5.2512984, -6.318793, -0.60709774,
         -0.16686435, -0.4359269, -1.437966],
        [-1.4174044, -2.0744438, -2.2593837, -0.06980939, -5.4218063, -6.330053, -0.51560247,
         -0.163269, -0.5597626, -1.5997299]]),
    "mistakes": {
        RELU: torch.tensor([
            [123.3372, -157.56169, -159.10794, -37.936523, -1046.098, -425.01096, -232.80487,
             -375.3915, -305.89426, -148.52264],
            [98.53832, -101.135445, -144.60023, -36.55658, -1054.9138, -578.1719, -240.62271,
             -361.37982, -151.9549, -201.77861]]),
        MAX_POOL: torch.tensor([
            [-1.4367428, -2.11308, -2.2949505, -0.25788635, -5.404499, -6.5375876, -0.7374953,
             0.031796858, -0.5049075, -1.2351826],
            [-1.3025886, -1.8039099, -2.413041, -0.11414905, -5.3246555, -6.5419064, -0.6126956,
             0.013569877, -0.5421096, -1.2630678]]),
        RELU_AND_MAX_POOL: torch.tensor([
            [367.80765, -206.30896, -232.24785, -193.24516, -2170.9807, -807.12933, -383.02344,
             -824.55835, -460.151, -354.34573],
            [458.29297, -412.8039, -102.08213, -298.75134, -2367.5725, -985.8036, -428.48975,
             -852.3551, -317.3703, -356.39856]]),
    },
}

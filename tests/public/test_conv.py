"""Public checks for convolutions and LeNet (§6.2-6.6): read them, run them, then make them
pass. Most use the book's own examples; the expected values come from torch's F.conv2d and
pooling functions (which the grader may call and your code may not), or, for learn_kernel and
lenet, from the tables of _mistakes_conv.py. The hidden tests check
the same functions on many more inputs, train your LeNet on MNIST, and name the same mistakes
in the same words (both take them from _mistakes_conv.py, and what every topic shares from
_conventions.py)."""

import pytest
import torch

from grader.checks import assert_close, expect_tensor, hints_on_error, max_abs
from tests.public._conventions import expect_independent
from tests.public._mistakes_conv import (
    CORR_HINTS,
    LEARN_KERNEL_EXAMPLE,
    LEARN_KERNEL_FLOAT64_EXAMPLE,
    LENET_EXAMPLE,
    LENET_HINTS,
    PAIR_HINTS,
    check_corr2d,
    check_learned_kernel,
    check_pool,
    check_result,
    check_unknown_mode,
    conv2d_layer_mistakes,
    corr_scale,
    edge_problem,
    expect_conv2d_parameters,
    expect_shape_tuple,
    lenet_example_inputs,
    lenet_parameters,
    multi_in_mistakes,
    multi_in_out_mistakes,
    oracle_conv,
    shape_mistakes,
)

BOOK_X = torch.arange(9.0).reshape(3, 3)  # [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
BOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])


def corr2d(student, X: torch.Tensor, K: torch.Tensor):
    """student.corr2d(X, K), an error naming its likely cause where one is known."""
    with hints_on_error(CORR_HINTS):
        return student.corr2d(X, K)


@pytest.mark.points(1)
def test_corr2d_book_example(student):
    """corr2d(X, K) on the book's example is [[19, 25], [37, 43]]: each output is the sum of
    a 2 x 2 window times K, with K as it is, not flipped (flipped, it would give [[5, 11],
    [23, 29]]) (§6.2.1)."""
    check_corr2d(corr2d(student, BOOK_X, BOOK_K), BOOK_X, BOOK_K,
                 "corr2d(X, K) for the book's X and K")


@pytest.mark.points(1)
def test_corr2d_output_shape(student):
    """A (kh, kw) kernel fits h - kh + 1 times down a (h, w) image and w - kw + 1 times across:
    X (5, 7) and K (2, 3) give a (4, 5) output, not one row or column more or less (§6.2.1)."""
    g = torch.Generator().manual_seed(0)
    X, K = torch.randn(5, 7, generator=g), torch.randn(2, 3, generator=g)
    check_corr2d(corr2d(student, X, K), X, K, "corr2d(X, K) for X (5, 7), K (2, 3)")


@pytest.mark.points(1)
def test_corr2d_keeps_float64(student):
    """float64 in, float64 out: D2L's `torch.zeros((h, w))` makes float32, so create the
    output with `dtype=X.dtype` (§6.2.1)."""
    X, K = BOOK_X.double(), BOOK_K.double()
    check_corr2d(corr2d(student, X, K), X, K, "corr2d(X, K) for float64 X and K")


@pytest.mark.points(1)
def test_corr2d_transposed_input(student):
    """X may be non-contiguous: here X (6, 4) is the transpose of a (4, 6) tensor, so its
    memory is not laid out row after row. Slicing, X[i:i + kh, j:j + kw], and X.unfold read it
    right; as_strided with the strides of a new (6, 4) tensor reads other entries (§6.2.1)."""
    X = torch.arange(24.0).reshape(4, 6).T
    K = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.0, -2.0]])
    check_corr2d(corr2d(student, X, K), X, K, "corr2d(X, K) for a transposed X (6, 4), K (2, 3)")


@pytest.mark.points(1)
def test_corr2d_gradient_of_the_book_example(student):
    """Autograd reaches K through corr2d (learn_kernel trains K that way, §6.2.4): the gradient
    of corr2d(X, K).sum() with respect to K is the sum of the four windows of the book's X,
    [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]] = [[8, 12], [20, 24]].
    Build Y from differentiable operations: no float(...) or .item() of a window's sum."""
    with hints_on_error(CORR_HINTS):
        grad = student.gradient("corr2d", BOOK_X, BOOK_K, wrt=1)
    assert_close(grad, torch.tensor([[8.0, 12.0], [20.0, 24.0]]),
                 "the gradient of corr2d(X, K).sum() with respect to K")


CHANNELS_X = torch.stack([BOOK_X, BOOK_X + 1])  # (2, 3, 3)
CHANNELS_K = torch.stack([BOOK_K, BOOK_K + 1])  # (2, 2, 2)


@pytest.mark.points(1)
def test_corr2d_multi_in_sums_the_channels(student):
    """corr2d_multi_in on the book's two channels is [[56, 72], [104, 120]]: the channels'
    cross-correlations are added up into one (2, 2) output, not stacked (§6.4.1)."""
    with hints_on_error(CORR_HINTS):
        out = student.corr2d_multi_in(CHANNELS_X, CHANNELS_K)
    check_result(out, torch.tensor([[56.0, 72.0], [104.0, 120.0]]),
                 "corr2d_multi_in(X, K) for X (2, 3, 3), K (2, 2, 2)",
                 corr_scale(CHANNELS_X, CHANNELS_K), multi_in_mistakes(CHANNELS_X, CHANNELS_K))


@pytest.mark.points(1)
def test_corr2d_multi_in_out_stacks_the_outputs(student):
    """corr2d_multi_in_out with kernels K, K + 1, K + 2 (3, 2, 2, 2) gives 3 output channels
    (3, 2, 2), one per kernel: stacked, not added up (§6.4.2)."""
    K = torch.stack([CHANNELS_K, CHANNELS_K + 1, CHANNELS_K + 2])
    with hints_on_error(CORR_HINTS):
        out = student.corr2d_multi_in_out(CHANNELS_X, K)
    check_result(out, oracle_conv(CHANNELS_X, K).float(),
                 "corr2d_multi_in_out(X, K) for X (2, 3, 3), K (3, 2, 2, 2)",
                 corr_scale(CHANNELS_X, K[0]), multi_in_out_mistakes(CHANNELS_X, K))


@pytest.mark.points(1)
def test_conv_output_shape_padding_and_stride(student):
    """conv_output_shape is (n + 2 * p - k) // s + 1 per dimension, padding on both sides:
    a 5 x 5 kernel with padding 2 keeps 28 x 28; (8, 8) with a 3 x 3 kernel, padding 1 and
    stride 2 gives (4, 4); pairs work too (§6.3)."""
    for args, expected in ((((28, 28), 5, 2, 1), (28, 28)), (((8, 8), 3, 1, 2), (4, 4)),
                           (((8, 8), (5, 3), (0, 1), (3, 4)), (2, 2))):
        with hints_on_error(PAIR_HINTS):
            got = student.conv_output_shape(*args)
        expect_shape_tuple(got, expected, f"conv_output_shape{args}", shape_mistakes(*args))


@pytest.mark.points(1)
def test_pool2d_book_example(student):
    """pool2d on the book's 3 x 3 X with a 2 x 2 window moves one step at a time (windows
    overlap): max gives [[4, 5], [7, 8]], avg gives [[2, 3], [5, 6]], each window's sum over
    its 4 entries (§6.5.1)."""
    for mode in ("max", "avg"):
        check_pool(student, BOOK_X, (2, 2), mode)


@pytest.mark.points(1)
def test_pool2d_avg_of_a_2_by_3_window(student):
    """Average pooling divides each window's sum by its number of entries: a (2, 3) window
    holds 6 (not 2 + 3, nor 2 * 2); a float64 X gives a float64 result (§6.5.1)."""
    X = torch.arange(12.0, dtype=torch.float64).reshape(3, 4) ** 2
    check_pool(student, X, (2, 3), "avg")


@pytest.mark.points(1)
def test_pool2d_int_pool_size(student):
    """pool_size may be an int k, meaning a (k, k) window: pool2d(X, 2) and pool2d(X, 3,
    'avg') for X (4, 5) give (3, 4) and (2, 3) outputs (turn pool_size into a pair first,
    as_pair(pool_size)) (§6.5.1)."""
    X = torch.tensor([[3.0, -1.0, 4.0, 1.0, -5.0], [9.0, 2.0, -6.0, 5.0, 3.0],
                      [-5.0, 8.0, 9.0, -7.0, 9.0], [3.0, 2.0, -3.0, 8.0, 4.0]])
    check_pool(student, X, 2, "max")
    check_pool(student, X, 3, "avg")


@pytest.mark.points(1)
def test_pool2d_max_of_negative_entries(student):
    """Max pooling of an X whose entries are all negative gives each window's (negative)
    maximum, never 0: take the window's own max, or start a running maximum from its first
    entry, not from zeros (§6.5.1)."""
    X = -torch.arange(1.0, 13.0).reshape(3, 4) ** 2
    check_pool(student, X, (2, 2), "max")


@pytest.mark.points(1)
def test_pool2d_unknown_mode(student):
    """pool2d(X, 2, 'min') raises ValueError: only 'max' and 'avg' are pooling modes here
    (§6.5.1)."""
    check_unknown_mode(student, BOOK_X, "min")


@pytest.mark.points(1)
def test_Conv2D_layer(student):
    """Conv2D((1, 2)) has parameters weight (1, 2) and bias (1,); with weight [[1, -1]] and
    bias 0.5 its forward is corr2d(x, weight) + bias (§6.2.2)."""
    with hints_on_error(PAIR_HINTS):
        layer = student.Conv2D((1, 2))
    expect_conv2d_parameters(layer, (1, 2), "Conv2D((1, 2))")
    K = torch.tensor([[1.0, -1.0]])
    layer.load_state_dict({"weight": K, "bias": torch.tensor([0.5])})
    with hints_on_error(CORR_HINTS):
        out = layer(BOOK_X)
    check_result(out, oracle_conv(BOOK_X[None], K[None, None])[0].float() + 0.5,
                 "Conv2D((1, 2))(X) with weight [[1, -1]] and bias 0.5",
                 corr_scale(BOOK_X, K) + 0.5, conv2d_layer_mistakes(BOOK_X, K, 0.5))


@pytest.mark.points(1)
def test_Conv2D_layers_are_independent(student):
    """Two Conv2D(2) layers share no parameter: loading new values into one (load_state_dict)
    leaves the other as it was. nn.Parameter(t) uses the tensor t it is given, so make each
    parameter from a new tensor in __init__, never from one made once (a default argument, a
    module-level tensor) (§6.2.2)."""
    expect_independent(student.Conv2D(2), student.Conv2D(2), "Conv2D(2) layer",
                       "Make each parameter from a new tensor in __init__: nn.Parameter(t) "
                       "shares the tensor t it is given, it never copies it.")


@pytest.mark.points(1)
def test_learn_kernel_edge_detector(student):
    """learn_kernel(X, Y, (1, 2)) on the book's edge image starts from zeros and takes 10
    steps of lr 3e-2, each with the gradient of that epoch's loss alone (K.grad zeroed after
    every step): it comes close to the edge detector [[1, -1]], and comes back detached
    (§6.2.4)."""
    example = LEARN_KERNEL_EXAMPLE
    X, Y = edge_problem(example["dtype"])
    with hints_on_error(PAIR_HINTS):
        out = student.learn_kernel(X, Y, (1, 2))
    check_learned_kernel(out, example["expected"], example["scale"], example["mistakes"],
                         "learn_kernel(X, Y, (1, 2))")


@pytest.mark.points(1)
def test_learn_kernel_keeps_float64(student):
    """For a float64 X and Y the kernel is float64 too: D2L's torch.zeros(kernel_size) makes
    float32, so start from torch.zeros(..., dtype=X.dtype) (§6.2.4)."""
    example = LEARN_KERNEL_FLOAT64_EXAMPLE
    X, Y = edge_problem(example["dtype"])
    with hints_on_error(PAIR_HINTS):
        out = student.learn_kernel(X, Y, (1, 2), example["num_epochs"], example["lr"])
    check_learned_kernel(out, example["expected"], example["scale"], example["mistakes"],
                         "learn_kernel(X, Y, (1, 2), 3) for float64 X and Y")


@pytest.mark.points(1)
def test_lenet_shapes(student):
    """lenet() maps (n, 1, 28, 28) to (n, 10); its parameters, in order, are those of
    Conv2d(1, 6, 5), Conv2d(6, 16, 5), Linear(16 * 5 * 5 = 400, 120), Linear(120, 84) and
    Linear(84, 10), each with a bias (§6.6.1)."""
    net = student.lenet()
    lenet_parameters(net, "lenet()")
    with hints_on_error(LENET_HINTS):
        out = net(torch.rand(2, 1, 28, 28))
    expect_tensor(out, "lenet()(X) for X (2, 1, 28, 28)", shape=(2, 10))


@pytest.mark.points(1)
def test_lenet_layers(student):
    """lenet() computes the book's LeNet: with the same parameters (random, set by the test),
    sigmoids, not ReLU; 2 x 2 average pooling with stride 2, not max pooling (§6.6.1)."""
    net = student.lenet()
    keys = [k for k, _ in lenet_parameters(net, "lenet()")]
    params, X = lenet_example_inputs(LENET_EXAMPLE)
    net.load_state_dict(dict(zip(keys, params, strict=True)))
    expected = LENET_EXAMPLE["expected"]
    with hints_on_error(LENET_HINTS):
        out = net(X)
    assert_close(out, expected, f"lenet()(X) for images X {tuple(X.shape)}",
                 scale=100 * max(1.0, max_abs(expected)), mistakes=LENET_EXAMPLE["mistakes"])


@pytest.mark.points(1)
def test_lenet_nets_are_independent(student):
    """Two nets from lenet() share no parameter: loading new values into one (load_state_dict)
    leaves the other as it was. Build the layers inside lenet(), on every call, never one
    module-level net that every call returns (§6.6.1)."""
    expect_independent(student.lenet(), student.lenet(), "lenet() net",
                       "Build new layers inside lenet(), on every call.")

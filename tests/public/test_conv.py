"""Public checks for convolutions and LeNet (§6.2-6.6): read them, run them, then make them
pass. Most use the book's own examples; the expected values come from torch's F.conv2d and
pooling functions (which the grader may call and your code may not). The hidden tests check
the same functions on many more inputs, and train your LeNet on MNIST."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import assert_close, expect_tensor
from grader.failures import StudentRaised

BOOK_X = torch.arange(9.0).reshape(3, 3)  # [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
BOOK_K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])


def conv2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """torch's cross-correlation of one image X (c, h, w) with kernels K (c_out, c, kh, kw)."""
    return F.conv2d(X[None], K)[0]


@pytest.mark.points(1)
def test_corr2d_book_example(student):
    """corr2d(X, K) on the book's example is [[19, 25], [37, 43]]: each output is the sum of
    a 2 x 2 window times K, with K as it is, not flipped (§6.2.1)."""
    expected = torch.tensor([[19.0, 25.0], [37.0, 43.0]])
    flipped = torch.tensor([[5.0, 11.0], [23.0, 29.0]])
    out = expect_tensor(student.corr2d(BOOK_X, BOOK_K), "corr2d(X, K)", shape=(2, 2))
    assert not torch.equal(out, flipped), (
        "corr2d flipped the kernel: deep learning's 'convolution' is a cross-correlation, "
        "(X[i:i + kh, j:j + kw] * K).sum() with K as it is")
    assert_close(out, expected, "corr2d(X, K) for the book's X and K")


@pytest.mark.points(1)
def test_corr2d_output_shape(student):
    """A (kh, kw) kernel fits h - kh + 1 times down a (h, w) image and w - kw + 1 times across:
    X (5, 7) and K (2, 3) give a (4, 5) output, not one row or column more or less (§6.2.1)."""
    g = torch.Generator().manual_seed(0)
    X, K = torch.randn(5, 7, generator=g), torch.randn(2, 3, generator=g)
    out = expect_tensor(student.corr2d(X, K), "corr2d(X, K) for X (5, 7), K (2, 3)",
                        shape=(4, 5))
    assert_close(out, conv2d(X[None], K[None, None])[0], "corr2d(X, K)", scale=10.0)


@pytest.mark.points(1)
def test_corr2d_keeps_float64(student):
    """float64 in, float64 out: D2L's `torch.zeros((h, w))` makes float32, so create the
    output with `dtype=X.dtype` (§6.2.1)."""
    out = expect_tensor(student.corr2d(BOOK_X.double(), BOOK_K.double()),
                        "corr2d(X, K) for float64 X and K", dtype=torch.float64)
    assert_close(out, torch.tensor([[19.0, 25.0], [37.0, 43.0]], dtype=torch.float64),
                 "corr2d(X, K) for float64 X and K")


CHANNELS_X = torch.stack([BOOK_X, BOOK_X + 1])  # (2, 3, 3)
CHANNELS_K = torch.stack([BOOK_K, BOOK_K + 1])  # (2, 2, 2)


@pytest.mark.points(1)
def test_corr2d_multi_in_sums_the_channels(student):
    """corr2d_multi_in on the book's two channels is [[56, 72], [104, 120]]: the channels'
    cross-correlations are added up into one (2, 2) output, not stacked (§6.4.1)."""
    out = expect_tensor(student.corr2d_multi_in(CHANNELS_X, CHANNELS_K),
                        "corr2d_multi_in(X, K) for X (2, 3, 3), K (2, 2, 2)", shape=(2, 2))
    assert_close(out, torch.tensor([[56.0, 72.0], [104.0, 120.0]]), "corr2d_multi_in(X, K)")


@pytest.mark.points(1)
def test_corr2d_multi_in_out_stacks_the_outputs(student):
    """corr2d_multi_in_out with kernels K, K + 1, K + 2 (3, 2, 2, 2) gives 3 output channels
    (3, 2, 2), one per kernel: stacked, not added up (§6.4.2)."""
    K = torch.stack([CHANNELS_K, CHANNELS_K + 1, CHANNELS_K + 2])
    out = expect_tensor(student.corr2d_multi_in_out(CHANNELS_X, K),
                        "corr2d_multi_in_out(X, K) for X (2, 3, 3), K (3, 2, 2, 2)",
                        shape=(3, 2, 2))
    assert_close(out, conv2d(CHANNELS_X, K), "corr2d_multi_in_out(X, K)")


@pytest.mark.points(1)
def test_conv_output_shape_padding_and_stride(student):
    """conv_output_shape is (n + 2 * p - k) // s + 1 per dimension, padding on both sides:
    a 5 x 5 kernel with padding 2 keeps 28 x 28; (8, 8) with a 3 x 3 kernel, padding 1 and
    stride 2 gives (4, 4); pairs work too (§6.3)."""
    for args, expected in ((((28, 28), 5, 2), (28, 28)), (((8, 8), 3, 1, 2), (4, 4)),
                           (((8, 8), (5, 3), (0, 1), (3, 4)), (2, 2))):
        got = student.conv_output_shape(*args)
        assert got == expected, f"conv_output_shape{args} is {got!r}, expected {expected}"
        assert all(type(v) is int for v in got), \
            f"conv_output_shape{args} should hold Python ints, not {got!r}"


@pytest.mark.points(1)
def test_pool2d_book_example(student):
    """pool2d on the book's 3 x 3 X with a 2 x 2 window moves one step at a time (windows
    overlap): max gives [[4, 5], [7, 8]], avg gives [[2, 3], [5, 6]], each window's sum over
    its 4 entries (§6.5.1)."""
    for mode, expected in (("max", [[4.0, 5.0], [7.0, 8.0]]), ("avg", [[2.0, 3.0], [5.0, 6.0]])):
        out = expect_tensor(student.pool2d(BOOK_X, (2, 2), mode),
                            f"pool2d(X, (2, 2), {mode!r})", shape=(2, 2))
        assert_close(out, torch.tensor(expected), f"pool2d(X, (2, 2), {mode!r})")


@pytest.mark.points(1)
def test_pool2d_avg_of_a_2_by_3_window(student):
    """Average pooling divides each window's sum by its number of entries: a (2, 3) window
    holds 6 (not 2 + 3, nor 2 * 2); a float64 X gives a float64 result (§6.5.1)."""
    X = torch.arange(12.0, dtype=torch.float64).reshape(3, 4) ** 2
    out = expect_tensor(student.pool2d(X, (2, 3), "avg"), "pool2d(X, (2, 3), 'avg')",
                        shape=(2, 2), dtype=torch.float64)
    assert_close(out, F.avg_pool2d(X[None, None], (2, 3), stride=1)[0, 0],
                 "pool2d(X, (2, 3), 'avg') for X (3, 4)")


@pytest.mark.points(1)
def test_pool2d_unknown_mode(student):
    """pool2d(X, 2, 'min') raises ValueError: only 'max' and 'avg' are pooling modes here
    (§6.5.1)."""
    try:
        out = student.pool2d(BOOK_X, 2, "min")
    except StudentRaised as e:
        assert "raised ValueError" in str(e), f"raise ValueError for mode 'min', not: {e}"
    else:
        raise AssertionError(f"pool2d(X, 2, 'min') returned {out!r} instead of raising "
                             "ValueError")


@pytest.mark.points(1)
def test_conv2d_layer(student):
    """Conv2D((1, 2)) has parameters weight (1, 2) and bias (1,); with weight [[1, -1]] and
    bias 0.5 its forward is corr2d(x, weight) + bias (§6.2.2)."""
    layer = student.Conv2D((1, 2))
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {"weight": (1, 2), "bias": (1,)}, f"Conv2D((1, 2))'s parameters: {shapes}"
    layer.load_state_dict({"weight": torch.tensor([[1.0, -1.0]]), "bias": torch.tensor([0.5])})
    out = layer(BOOK_X)
    assert_close(out, conv2d(BOOK_X[None], torch.tensor([[[[1.0, -1.0]]]]))[0] + 0.5,
                 "Conv2D((1, 2))(X) with weight [[1, -1]] and bias 0.5")


def learned_kernel(X: torch.Tensor, Y: torch.Tensor, num_epochs: int, lr: float):
    """learn_kernel's steps, with torch's conv2d: a zero kernel, one gradient step per epoch."""
    K = torch.zeros(1, 2, requires_grad=True)
    for _ in range(num_epochs):
        loss = ((conv2d(X[None], K[None, None])[0] - Y) ** 2).sum()
        (grad,) = torch.autograd.grad(loss, K)
        K = (K - lr * grad).detach().requires_grad_(True)
    return K.detach()


@pytest.mark.points(1)
def test_learn_kernel_edge_detector(student):
    """learn_kernel(X, Y, (1, 2)) on the book's edge image starts from zeros and takes 10
    steps of lr 3e-2, each with the gradient of that epoch's loss alone (K.grad zeroed after
    every step): it comes close to the edge detector [[1, -1]] (§6.2.4)."""
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    Y = conv2d(X[None], torch.tensor([[[[1.0, -1.0]]]]))[0]
    out = expect_tensor(student.learn_kernel(X, Y, (1, 2)), "learn_kernel(X, Y, (1, 2))",
                        shape=(1, 2))
    assert not out.requires_grad, "return the learned kernel detached (K.detach())"
    assert_close(out, learned_kernel(X, Y, 10, 3e-2), "learn_kernel(X, Y, (1, 2))", atol=1e-4)


@pytest.mark.points(1)
def test_lenet_shapes(student):
    """lenet() maps (n, 1, 28, 28) to (n, 10); its parameters, in order, are those of
    Conv2d(1, 6, 5), Conv2d(6, 16, 5), Linear(16 * 5 * 5 = 400, 120), Linear(120, 84) and
    Linear(84, 10), each with a bias (§6.6.1)."""
    net = student.lenet()
    shapes = [tuple(v.shape) for v in net.state_dict().values()]
    assert shapes == [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,),
                      (84, 120), (84,), (10, 84), (10,)], f"lenet()'s parameter shapes: {shapes}"
    expect_tensor(net(torch.rand(2, 1, 28, 28)), "lenet()(X) for X (2, 1, 28, 28)",
                  shape=(2, 10))


@pytest.mark.points(1)
def test_lenet_layers(student):
    """lenet() computes the book's LeNet: with the same parameters (random, set by the test),
    sigmoids, not ReLU; 2 x 2 average pooling with stride 2, not max pooling (§6.6.1)."""
    net = student.lenet()
    book = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    state = net.state_dict()
    assert [v.shape for v in state.values()] == [v.shape for v in book.state_dict().values()], \
        "lenet()'s parameters do not have the book's shapes (see test_lenet_shapes)"
    keys = list(state)
    g = torch.Generator().manual_seed(0)
    values = [torch.randn(v.shape, generator=g) * 0.5 for v in book.state_dict().values()]
    net.load_state_dict(dict(zip(keys, values, strict=True)))
    book.load_state_dict(dict(zip(book.state_dict(), values, strict=True)))
    X = torch.rand(4, 1, 28, 28, generator=g)
    with torch.no_grad():
        expected = book(X)
    assert_close(net(X), expected, "lenet()(X)", scale=100 * float(expected.abs().max()))

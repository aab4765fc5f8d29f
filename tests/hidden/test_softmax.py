"""Hidden tests for softmax regression (§3.4, §3.6, §3.7).

Every property draws float32 and float64 inputs, square and non-square, in contiguous and
non-contiguous layouts, with logits up to 1e4 in magnitude. Oracles are torch's own functions,
computed here in float64. Tolerances grow with the logits' magnitude, the size of the rounding
error that any correct formula makes.
"""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.checks import (
    assert_close,
    expect_tensor,
    max_abs,
    tolerance,
)
from tests.hidden import _strategies as tds
from tests.hidden._conventions import GPU, expect_on_gpu
from tests.hidden._vjp import vjp
from tests.public._mistakes_softmax import (
    SECTION_37,
    log_softmax_gradient_mistakes,
    log_softmax_mistakes,
    logsumexp_gradient_mistakes,
    logsumexp_mistakes,
    oracle_softmax,
    regression_mistakes,
    softmax_mistakes,
)

logits = tds.matrices(rows=(1, 9), cols=(1, 9), magnitude=tds.magnitudes())
# Moderate logits with no ties, where every probability is far from 0 and 1 (a hardmax, or a
# max in place of a logsumexp, is wrong by 0.2 or more here); hypothesis always tries it.
MODERATE = torch.tensor([[0.5, -1.0, 1.5, 0.0, 1.0], [2.0, 1.0, -0.5, 0.25, 1.75],
                         [-3.0, -2.5, -2.0, -3.5, -1.0]])
# Rows far apart: one near 800 (exp overflows unless its max is subtracted), one near 0 and one
# from -300 to 2 (a max over the whole tensor underflows them to 0/0; log of their tiny
# probabilities is -inf): every unstable formula fails here at once; hypothesis always tries it.
FAR_APART = torch.tensor([[-2.0, 0.5, 1.0, -0.75], [800.0, 801.5, 799.0, 800.25],
                          [-300.0, 0.0, 2.0, -1.0]])


@st.composite
def huge_logits(draw, rows=(1, 7), cols=(2, 7)):
    """Logits of 1e3 to 1e4 in magnitude: the even rows are a huge offset plus moderate
    differences (entries within 1 of each other, so no probability is near 0 or 1 and a hardmax
    is far off), the odd rows uniform in +-magnitude (most probabilities underflow to 0). No entry
    exceeds the magnitude, so the tolerance (which grows with it) stays below what a hardmax is
    off by."""
    n, q = draw(st.integers(*rows)), draw(st.integers(*cols))
    dtype, layout = draw(tds.dtypes()), draw(tds.layouts())
    magnitude = draw(st.sampled_from([1e3, 1e4]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    spread = (torch.rand(n, q, generator=g, dtype=torch.float64) * 2 - 1) * magnitude
    sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0).double()
    offset = sign * magnitude * (0.5 + 0.5 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    near = offset + torch.rand(n, q, generator=g, dtype=torch.float64) - 0.5
    even = (torch.arange(n) % 2 == 0).unsqueeze(1)
    return tds.with_layout(torch.where(even, near, spread).to(dtype), layout)


# --------------------------------------------------------------------------- softmax


@pytest.mark.points(4)
@given(X=logits)
@example(X=MODERATE)
@example(X=FAR_APART)
def test_softmax_matches_torch(student, X):
    """softmax(X) equals torch.softmax(X, dim=1) for logits up to 1e4, float32 and float64,
    square and non-square, contiguous or not (§3.4.1, §3.7)."""
    assert_close(student.softmax(X), oracle_softmax(X), f"softmax(X) for X {tuple(X.shape)}",
                 scale=max_abs(X), mistakes=softmax_mistakes(X))


@pytest.mark.points(3)
@given(X=huge_logits())
def test_softmax_finite_for_huge_logits(student, X):
    """Logits of 1e3 to 1e4 give finite probabilities, equal to torch.softmax's, also in rows
    whose logits are huge but within 1 of each other, where every class has a sizeable
    probability (§3.7)."""
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=X.shape)
    if not bool(torch.isfinite(out).all()):
        raise AssertionError(f"softmax(X) has nan or inf for logits near "
                             f"{max_abs(X):.0e}: exp overflows; {SECTION_37}")
    assert_close(out, oracle_softmax(X), "softmax(X) for huge logits", scale=max_abs(X),
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(2)
def test_softmax_rows_of_different_scales(student):
    """Rows whose logits differ by thousands are normalised independently: the max must be
    taken per row, not over the whole tensor (§3.7)."""
    X = torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0],
                      [0.0, 1.0, 2.0], [5000.0, 4999.0, 4998.0]])
    assert_close(student.softmax(X), oracle_softmax(X), "softmax(X) for rows near +-1000",
                 scale=max_abs(X), mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_square_input(student):
    """A square X (n == q) is where dividing by `X_exp.sum(1)` without keepdim=True silently
    divides the wrong entries; rows must still sum to 1 (§3.4.1)."""
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 1.0, -1.0], [0.5, 0.5, 4.0]])
    assert_close(student.softmax(X), oracle_softmax(X), "softmax(X) for a 3x3 X",
                 scale=max_abs(X), mistakes=softmax_mistakes(X))


@pytest.mark.points(2)
@given(X=logits)
@example(X=MODERATE)
def test_softmax_rows_sum_to_one(student, X):
    """Every row of softmax(X) is a probability distribution: entries in [0, 1] that sum to 1,
    and they are softmax's probabilities (for moderate logits every class gets a share, not
    only the largest) (§3.4.1)."""
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=X.shape)
    tol = tolerance(X.dtype, max_abs(X))
    sums = out.double().sum(1)
    if not bool(torch.isfinite(sums).all()):
        raise AssertionError(f"rows of your softmax sum to nan/inf for logits near "
                             f"{max_abs(X):.0e}: {SECTION_37}")
    worst = int((sums - 1).abs().argmax())
    if abs(float(sums[worst]) - 1) > tol * X.shape[1]:
        raise AssertionError(f"row {worst} of softmax(X) sums to {float(sums[worst]):.6g}, not 1:"
                             " divide each row by its own sum (dim=1, keepdim=True).")
    if bool((out < -tol).any()) or bool((out > 1 + tol).any()):
        raise AssertionError("softmax(X) has entries outside [0, 1].")
    assert_close(out, oracle_softmax(X), "softmax(X)", scale=max_abs(X),
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(2)
@given(X=tds.matrices(rows=(1, 6), cols=(1, 6), magnitude=tds.magnitudes(100.0)),
       shift=st.sampled_from([-1e3, -50.0, 3.5, 80.0, 1e3]))
@example(X=MODERATE, shift=1e3)
def test_softmax_shift_invariant(student, X, shift):
    """Adding the same constant to a row does not change its softmax (§3.7), also when the
    constant pushes exp past float32's range."""
    shifted = X + torch.linspace(0, 1, X.shape[0], dtype=X.dtype).unsqueeze(1) * shift
    assert_close(student.softmax(shifted), oracle_softmax(X), "softmax(X + c) vs softmax(X)",
                 scale=max_abs(shifted), mistakes=softmax_mistakes(shifted))


@pytest.mark.points(1)
@given(X=logits)
@example(X=MODERATE)
def test_softmax_preserves_argmax(student, X):
    """The most likely class is the largest logit: softmax is monotone within a row, and the
    other classes keep their share of the probability (§3.4)."""
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=X.shape)
    picked = X.gather(1, out.argmax(1, keepdim=True)).squeeze(1)
    slack = tolerance(X.dtype, max_abs(X)) * 4
    bad = picked < X.max(1).values - slack
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise AssertionError(f"in row {row} your softmax's largest entry is not at the largest "
                             "logit: apply exp to each entry and divide by its row's sum.")
    assert_close(out, oracle_softmax(X), "softmax(X)", scale=max_abs(X),
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(2)
@given(X=logits)
@example(X=FAR_APART)
def test_softmax_each_row_alone(student, X):
    """softmax(X)[i] equals softmax(X[i:i+1]): rows never influence each other (no max or
    sum over the whole batch)."""
    out = expect_tensor(student.softmax(X), "softmax(X)", shape=X.shape)
    i = X.shape[0] // 2
    alone = student.softmax(X[i:i + 1].clone())
    assert_close(alone, oracle_softmax(X[i:i + 1]), f"softmax of row {i} alone",
                 scale=max_abs(X), mistakes=softmax_mistakes(X[i:i + 1]))
    assert_close(out[i:i + 1], alone, f"row {i} of softmax(X) vs softmax of that row alone",
                 scale=max_abs(X))


@pytest.mark.points(1)
@given(X=logits)
@example(X=FAR_APART)
def test_softmax_leaves_input_unchanged(student, X):
    """softmax returns the right values without modifying its argument (no `X -= ...` or
    `X.exp_()`)."""
    out = student.softmax(X)  # the handle fails a change to an argument
    assert_close(out, oracle_softmax(X), "softmax(X)", scale=max_abs(X),
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(1)
def test_softmax_keeps_float64(student):
    """A float64 input gives a float64 output of the same shape (n, q), accurate to float64
    precision (no `.float()` on the way)."""
    X = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = expect_tensor(student.softmax(X), "softmax(X) for float64 X", shape=(3, 5),
                        dtype=torch.float64)
    assert_close(out, oracle_softmax(X), "softmax(X) for float64 X",
                 mistakes=softmax_mistakes(X))


@pytest.mark.points(3)
@given(X=tds.matrices(rows=(1, 6), cols=(1, 6), magnitude=tds.magnitudes(1e3)),
       seed=st.integers(0, 2**16))
def test_softmax_gradient(student, X, seed):
    """Autograd through your softmax gives the true vector-Jacobian product
    s * (v - (s . v)) for a random v: build it from differentiable tensor operations (§3.4)."""
    v = tds.random_tensor(X.shape, seed, X.dtype)
    Xg = X.detach().to(torch.float64, copy=True).requires_grad_(True)
    (expected,) = vjp(torch.softmax(Xg, 1), Xg, v.double())
    assert_close(student.gradient("softmax", X, grad_output=v), expected.to(X.dtype),
                 "the gradient of your softmax", scale=max_abs(X) * max_abs(v))


# --------------------------------------------------------------------------- logsumexp


@pytest.mark.points(3)
@given(X=logits)
@example(X=MODERATE)
@example(X=FAR_APART)
def test_logsumexp_matches_torch(student, X):
    """logsumexp(X) equals torch.logsumexp(X, dim=1), shape (n,), for logits up to 1e4
    (§3.7)."""
    expected = torch.logsumexp(X.double(), 1).to(X.dtype)
    assert_close(student.logsumexp(X), expected, "logsumexp(X)", scale=max_abs(X) + 10,
                 mistakes=logsumexp_mistakes(X))


@pytest.mark.points(2)
@given(X=huge_logits())
def test_logsumexp_finite_for_huge_logits(student, X):
    """logsumexp of logits of 1e3 to 1e4 is finite and accurate: about the row's max where the
    others are far below it, and up to log(q) above it where the logits are within 1 of each
    other (§3.7)."""
    expected = torch.logsumexp(X.double(), 1).to(X.dtype)
    assert_close(student.logsumexp(X), expected, "logsumexp(X) for huge logits",
                 scale=max_abs(X) + 10, mistakes=logsumexp_mistakes(X))


@pytest.mark.points(1)
@given(X=tds.matrices(rows=(1, 6), cols=(1, 6), magnitude=tds.magnitudes(100.0)))
@example(X=torch.tensor([[99.0, 100.0, 97.5], [0.5, -1.0, 0.0]]))  # float32 exp(100) is inf
def test_logsumexp_gradient_is_softmax(student, X):
    """The gradient of sum_i logsumexp(X)_i is softmax(X): your logsumexp must be
    differentiable by autograd."""
    assert_close(student.gradient("logsumexp", X), oracle_softmax(X),
                 "the gradient of your logsumexp", scale=max_abs(X),
                 mistakes=logsumexp_gradient_mistakes(X))


@pytest.mark.points(1)
@given(X=logits)
@example(X=FAR_APART)
def test_logsumexp_leaves_input_unchanged(student, X):
    """logsumexp returns the right values without modifying its argument."""
    out = student.logsumexp(X)  # the handle fails a change to an argument
    assert_close(out, torch.logsumexp(X.double(), 1).to(X.dtype), "logsumexp(X)",
                 scale=max_abs(X) + 10, mistakes=logsumexp_mistakes(X))


# --------------------------------------------------------------------------- log_softmax


@pytest.mark.points(3)
@given(X=logits)
@example(X=MODERATE)
@example(X=FAR_APART)
def test_log_softmax_matches_torch(student, X):
    """log_softmax(X) equals torch.log_softmax(X, dim=1) for logits up to 1e4 (§3.7.2)."""
    expected = torch.log_softmax(X.double(), 1).to(X.dtype)
    assert_close(student.log_softmax(X), expected, "log_softmax(X)", scale=max_abs(X) + 10,
                 mistakes=log_softmax_mistakes(X))


@pytest.mark.points(2)
@given(X=huge_logits(rows=(2, 6), cols=(2, 6)))
def test_log_softmax_no_underflow(student, X):
    """Logits of 1e3 to 1e4: entries far below their row's max have large negative but finite
    log-probabilities, never -inf, and rows of huge logits within 1 of each other get accurate
    ones (§3.7.2: log_softmax = X - logsumexp(X), not log(softmax(X)))."""
    out = expect_tensor(student.log_softmax(X), "log_softmax(X)", shape=X.shape)
    if bool(torch.isinf(out).any()):
        raise AssertionError("log_softmax(X) has -inf for logits far below the row's max: "
                             "log(softmax(X)) underflows to log(0). Use X - logsumexp(X).")
    expected = torch.log_softmax(X.double(), 1).to(X.dtype)
    assert_close(out, expected, "log_softmax(X) for huge logits", scale=max_abs(X) + 10,
                 mistakes=log_softmax_mistakes(X))


@pytest.mark.points(1)
@given(X=tds.matrices(rows=(1, 6), cols=(1, 6), magnitude=tds.magnitudes(100.0)),
       seed=st.integers(0, 2**16))
def test_log_softmax_gradient(student, X, seed):
    """Autograd through your log_softmax gives v - softmax(X) * sum(v) for a random v."""
    v = tds.random_tensor(X.shape, seed, X.dtype)
    Xg = X.detach().to(torch.float64, copy=True).requires_grad_(True)
    (expected,) = vjp(torch.log_softmax(Xg, 1), Xg, v.double())
    assert_close(student.gradient("log_softmax", X, grad_output=v), expected.to(X.dtype),
                 "the gradient of your log_softmax", scale=max_abs(X) * max_abs(v),
                 mistakes=log_softmax_gradient_mistakes(X, v))


@pytest.mark.points(1)
@given(X=logits)
@example(X=FAR_APART)
def test_log_softmax_leaves_input_unchanged(student, X):
    """log_softmax returns the right values without modifying its argument."""
    out = student.log_softmax(X)  # the handle fails a change to an argument
    assert_close(out, torch.log_softmax(X.double(), 1).to(X.dtype), "log_softmax(X)",
                 scale=max_abs(X) + 10, mistakes=log_softmax_mistakes(X))


# --------------------------------------------------------------------------- the model


@st.composite
def regression_inputs(draw):
    n, q = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    image = draw(st.sampled_from([(4,), (1, 2, 2), (2, 3)]))
    d = 1
    for s in image:
        d *= s
    dtype = draw(tds.dtypes())
    X = draw(tds.tensors((n, *image), dtype=dtype))
    W = draw(tds.tensors((d, q), dtype=dtype, magnitude=0.5))
    b = draw(tds.tensors((q,), dtype=dtype, magnitude=0.5))
    return X, W, b


# Images (2, 3) stored transposed (X.view(-1, d) fails on them) and a bias far from 0.
TRANSPOSED_IMAGES = (tds.with_layout(tds.random_tensor((3, 2, 3), 1), "transposed"),
                     tds.random_tensor((6, 4), 2, magnitude=0.5),
                     tds.random_tensor((4,), 3, magnitude=0.5))


def oracle_regression(X, W, b):
    return torch.softmax(X.double().reshape(-1, W.shape[0]) @ W.double() + b.double(), 1).to(
        X.dtype)


@pytest.mark.points(3)
@given(inputs=regression_inputs())
@example(inputs=TRANSPOSED_IMAGES)
def test_softmax_regression_matches_model(student, inputs):
    """softmax_regression(X, W, b) = softmax(X.reshape(-1, d) @ W + b) for images X of any
    shape (n, ...), non-contiguous included (use reshape, not view) (§3.6.2)."""
    X, W, b = inputs
    Xf = X.double().reshape(-1, W.shape[0])
    scale = float(Xf.abs().sum(1).max() * W.abs().max() + b.abs().max() + 1)
    assert_close(student.softmax_regression(X, W, b), oracle_regression(X, W, b),
                 f"softmax_regression for X {tuple(X.shape)}, W {tuple(W.shape)}", scale=scale,
                 mistakes=regression_mistakes(X, W, b))


@pytest.mark.points(2)
@given(inputs=regression_inputs(), seed=st.integers(0, 2**16))
@example(inputs=TRANSPOSED_IMAGES, seed=0)
def test_softmax_regression_gradient_in_W(student, inputs, seed):
    """Autograd reaches W through your model (what training in §3.6 relies on)."""
    X, W, b = inputs
    v = tds.random_tensor((X.shape[0], W.shape[1]), seed, X.dtype)
    Wg = W.detach().to(torch.float64, copy=True).requires_grad_(True)
    out = torch.softmax(X.double().reshape(-1, W.shape[0]) @ Wg + b.double(), 1)
    (expected,) = vjp(out, Wg, v.double())
    scale = float(X.abs().sum() * v.abs().max() + 1)
    assert_close(student.gradient("softmax_regression", X, W, b, grad_output=v, wrt=1),
                 expected.to(X.dtype), "the gradient of softmax_regression with respect to W",
                 scale=scale)


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """Logits on the GPU give probabilities, logsumexps, log-probabilities and the model's
    outputs on the GPU: compute from X (its max, its exp), never on the default device."""
    X = MODERATE.to(GPU)
    W, b = torch.eye(5)[:, :3].to(GPU), torch.zeros(3).to(GPU)
    for name in ("softmax", "logsumexp", "log_softmax"):
        expect_on_gpu(student.call(name, X), f"{name}(X) for X on {GPU}")
    expect_on_gpu(student.softmax_regression(X, W, b),
                  f"softmax_regression(X, W, b) for inputs on {GPU}")

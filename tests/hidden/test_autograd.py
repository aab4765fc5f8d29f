"""Hidden tests for calculus and automatic differentiation (§2.4, §2.5).

The functions handed to the submission come from `torchdrill.callables` (the worker imports
them from there). Oracles are computed here: exact derivatives written out, or torch's autograd
in float64 (with central differences, §2.5.4's loop and the relative error, in
tests/hidden/_oracles_autograd.py, beside the recognisers of the mistakes). Tolerances for
numerical derivatives are the central difference's own error bound: truncation h**2 |f'''| / 6
plus rounding eps * |f| / h, each with a wide safety factor, so every correct central
difference passes while a forward difference (error h |f''| / 2) does not.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from grader.checks import assert_close, expect_float, hints_on_error, max_abs
from tests.hidden import _strategies as tds
from tests.hidden._conventions import (
    CUSTOM_FUNCTION_HINTS,
    GPU,
    expect_exact_float,
    expect_on_gpu,
)
from tests.hidden._oracles_autograd import (
    autograd_oracle,
    boundary_mistakes,
    contract_relative_error,
    control_flow_mistakes,
    derivative_mistakes,
    detached_mistakes,
    exact_control_flow_factor,
    gradient_mistakes,
    jacobian,
    vjp_mistakes,
    vjp_oracle,
)
from tests.public._mistakes_autograd import (
    ACCUMULATES,
    check_control_flow_at,
    check_number,
    expect_eps_used,
    expect_grad_left_alone,
    expect_half_gradient_error,
    expect_largest_error,
    expect_not_a_tensor_of_errors,
    expect_small_check,
)
from torchdrill import callables as cf

EPS64 = torch.finfo(torch.float64).eps


# --------------------------------------------------------------------------- numerical_derivative

# name -> (f, f', bound on |f'''| near x, domain of x)
SCALAR_FUNCTIONS = {
    "cube": (cf.cube, lambda x: 3 * x ** 2, lambda x: 6.0, (-3.0, 3.0)),
    "exp": (cf.exp, math.exp, lambda x: math.exp(x + 0.01), (-3.0, 3.0)),
    "sine": (cf.sine, math.cos, lambda x: 1.0, (-3.0, 3.0)),
    "reciprocal": (cf.reciprocal, lambda x: -1 / x ** 2, lambda x: 6 / (x - 0.01) ** 4,
                   (0.5, 3.0)),
    "d2l_quadratic": (cf.d2l_quadratic, lambda x: 6 * x - 4, lambda x: 0.0, (-3.0, 3.0)),
}


@st.composite
def scalar_points(draw, names=tuple(SCALAR_FUNCTIONS), hs=(None, 1e-3, 1e-4, 1e-5, 1e-6)):
    name = draw(st.sampled_from(names))
    lo, hi = SCALAR_FUNCTIONS[name][3]
    x = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
    h = draw(st.sampled_from(hs))
    return name, x, h


def derivative_tolerance(name: str, x: float, h: float) -> float:
    f, _, third, _ = SCALAR_FUNCTIONS[name]
    size = max(abs(f(x - h)), abs(f(x)), abs(f(x + h)), 1.0)
    return 4 * h * h * third(x) / 6 + 256 * EPS64 * size / h + 1e-13


@pytest.mark.points(3)
@given(point=scalar_points())
def test_numerical_derivative_matches_true_derivative(student, point):
    """numerical_derivative(f, x, h) is within the central difference's error (about
    h**2 |f'''| / 6) of the true derivative, for polynomials, exp, sin and 1/x, with the default
    h and h from 1e-6 to 1e-3 (§2.4.1)."""
    name, x, h = point
    f, fprime, _, _ = SCALAR_FUNCTIONS[name]
    kwargs = {} if h is None else {"h": h}
    h = 1e-5 if h is None else h
    got = student.numerical_derivative(f, x, **kwargs)
    check_number(got, fprime(x), derivative_tolerance(name, x, h),
                 f"numerical_derivative({name}, {x!r}{', h=' + repr(h) if kwargs else ''})",
                 derivative_mistakes(f, x, h))


@pytest.mark.points(3)
@given(point=scalar_points(names=("exp", "cube", "reciprocal"), hs=(1e-3, 1e-4)))
def test_numerical_derivative_is_central_where_curved(student, point):
    """Where the second derivative is large, the central difference is far more accurate than
    the forward one: the answer must be the central difference (f(x + h) - f(x - h)) / (2h)
    (§2.4.1)."""
    name, x, h = point
    f, fprime, _, _ = SCALAR_FUNCTIONS[name]
    assume(abs((f(x + h) - f(x)) / h - fprime(x)) > 10 * derivative_tolerance(name, x, h))
    got = student.numerical_derivative(f, x, h=h)
    check_number(got, fprime(x), derivative_tolerance(name, x, h),
                 f"numerical_derivative({name}, {x!r}, h={h!r})", derivative_mistakes(f, x, h))


@pytest.mark.points(1)
def test_numerical_derivative_default_h(student):
    """Without h, numerical_derivative uses h = 1e-5: for exp at 1 the result is within 1e-8 of
    e (§2.4.1)."""
    got = student.numerical_derivative(cf.exp, 1.0)
    check_number(got, math.e, 1e-8, "numerical_derivative(exp, 1.0)",
                 derivative_mistakes(math.exp, 1.0, 1e-5))


@pytest.mark.points(1)
@given(point=scalar_points(names=("exp", "sine", "d2l_quadratic"), hs=(None, 1e-4)))
def test_numerical_derivative_returns_a_float(student, point):
    """numerical_derivative returns a Python float (as D2L's float(...)), not a 0-d tensor,
    also when f accepts tensors (exp, sin, 3x**2 - 4x) (§2.4.1)."""
    name, x, h = point
    f, fprime, _, _ = SCALAR_FUNCTIONS[name]
    h_used = 1e-5 if h is None else h
    got = student.numerical_derivative(f, x, **({} if h is None else {"h": h}))
    what = f"numerical_derivative({name}, {x!r}{'' if h is None else ', h=' + repr(h)})"
    check_number(expect_exact_float(got, what), fprime(x), derivative_tolerance(name, x, h_used),
                 what, derivative_mistakes(f, x, h_used))


# --------------------------------------------------------------------------- numerical_gradient

# name -> (f, true gradient, |terms| size for rounding, bound on third partials)
TENSOR_FUNCTIONS = {
    "sum_of_squares": (cf.sum_of_squares, lambda x: 2 * x, lambda x: (x * x).sum(),
                       lambda x: 0.0),
    "sum_of_cubes": (cf.sum_of_cubes, lambda x: 3 * x ** 2, lambda x: (x.abs() ** 3).sum(),
                     lambda x: 6.0),
    "sum_of_exps": (cf.sum_of_exps, torch.exp, lambda x: torch.exp(x).sum(),
                    lambda x: float(torch.exp(x.max() + 0.01))),
    "log_sum_exp": (cf.log_sum_exp, lambda x: torch.softmax(x.reshape(-1), 0).reshape(x.shape),
                    lambda x: x.abs().max() + math.log(x.numel()) + 1, lambda x: 1.0),
    "square_of_sum_plus_quartic": (
        cf.square_of_sum_plus_quartic, lambda x: 2 * x.sum() + x ** 3,
        lambda x: x.abs().sum() ** 2 + (x ** 4).sum() / 4, lambda x: 6 * float(x.abs().max()) + 1),
    # a custom torch.autograd.Function, as a callable may be (torch.func refuses it)
    "sum_of_cubes_by_function": (cf.sum_of_cubes_by_function, lambda x: 3 * x ** 2,
                                 lambda x: (x.abs() ** 3).sum(), lambda x: 6.0),
}

tensor_shapes = st.one_of(st.tuples(st.integers(1, 8)), tds.shapes((1, 4), (1, 4)))


@st.composite
def gradient_inputs(draw, names=tuple(TENSOR_FUNCTIONS), epss=(None, 1e-3, 1e-4, 1e-6),
                    layout="contiguous", away_from_zero=False):
    name = draw(st.sampled_from(names))
    shape = draw(tensor_shapes)
    x = draw(tds.tensors(shape, dtype=torch.float64, layout=layout, magnitude=2.0,
                         distribution="uniform"))
    if away_from_zero:  # entries in [0.5, 2]: second derivatives well away from zero
        x = x.abs() * 0.75 + 0.5
    eps = draw(st.sampled_from(epss))
    return name, x, eps


def numerical_tolerance(name: str, x: torch.Tensor, eps: float) -> float:
    _, _, size, third = TENSOR_FUNCTIONS[name]
    rounding = 64 * x.numel() * EPS64 * (float(size(x)) + 1) / eps
    return rounding + eps * eps * float(third(x)) + 1e-12


@pytest.mark.points(4)
@given(inputs=gradient_inputs())
@example(inputs=("sum_of_cubes", tds.random_tensor((2, 3), 0, torch.float64, 2.0, "uniform"),
                 None))  # a matrix: a gradient flattened to 1-D fails at once
def test_numerical_gradient_matches_true_gradient(student, inputs):
    """numerical_gradient(f, x, eps) is the gradient of f at a float64 x of any shape (1-D,
    2-D), within the central difference's error, for default and explicit eps (§2.4.1)."""
    name, x, eps = inputs
    f, grad, _, _ = TENSOR_FUNCTIONS[name]
    kwargs = {} if eps is None else {"eps": eps}
    eps = 1e-6 if eps is None else eps
    got = student.numerical_gradient(f, x, **kwargs)
    assert_close(got, grad(x), f"numerical_gradient({name}, x) for x of shape {tuple(x.shape)}",
                 atol=numerical_tolerance(name, x, eps), mistakes=gradient_mistakes(f, x, eps))


@pytest.mark.points(3)
@given(inputs=gradient_inputs(names=("sum_of_cubes", "sum_of_exps",
                                     "square_of_sum_plus_quartic"), epss=(1e-3,),
                              away_from_zero=True))
@example(inputs=("sum_of_exps",  # a matrix again, its entries in [0.5, 2]
                 tds.random_tensor((3, 2), 1, torch.float64, 2.0, "uniform").abs() * 0.75 + 0.5,
                 1e-3))
def test_numerical_gradient_is_central(student, inputs):
    """With eps = 1e-3 and large second derivatives the forward difference is off by about
    eps |f''| / 2: numerical_gradient must use central differences (§2.4.1)."""
    name, x, eps = inputs
    f, grad, _, _ = TENSOR_FUNCTIONS[name]
    got = student.numerical_gradient(f, x, eps=eps)
    assert_close(got, grad(x), f"numerical_gradient({name}, x, eps=1e-3)",
                 atol=numerical_tolerance(name, x, eps), mistakes=gradient_mistakes(f, x, eps))


@pytest.mark.points(3)
@given(inputs=gradient_inputs(epss=(None, 1e-6, 1e-4, 1e-3)))
def test_numerical_gradient_leaves_x_unchanged(student, inputs):
    """After numerical_gradient(f, x), x holds exactly (bit for bit) the values it had: perturb a
    copy, or restore each saved entry; x also gets no requires_grad or .grad."""
    name, x, eps = inputs
    f = TENSOR_FUNCTIONS[name][0]
    # the handle fails any change to an argument: values (bit for bit), requires_grad, .grad
    student.numerical_gradient(f, x, **({} if eps is None else {"eps": eps}))


@pytest.mark.points(2)
@given(inputs=gradient_inputs(layout=st.sampled_from(["transposed", "strided", "offset"]),
                              epss=(1e-4,)))
@example(inputs=("square_of_sum_plus_quartic", tds.with_layout(  # transposed: view(-1) fails
    tds.random_tensor((2, 3), 2, torch.float64, 2.0, "uniform"), "transposed"), 1e-4))
def test_numerical_gradient_non_contiguous_x(student, inputs):
    """x may be a transposed matrix or a slice of a larger tensor: the gradient is still right
    and x unchanged (use reshape or clone, not view, to flatten) (§2.4.1)."""
    name, x, eps = inputs
    f, grad, _, _ = TENSOR_FUNCTIONS[name]
    got = student.numerical_gradient(f, x, eps=eps)  # the handle fails a change to an argument
    assert_close(got, grad(x), f"numerical_gradient({name}, x) for a non-contiguous x",
                 atol=numerical_tolerance(name, x, eps), mistakes=gradient_mistakes(f, x, eps))


# --------------------------------------------------------------------------- autograd_gradient


def gradient_scale(x: torch.Tensor) -> float:
    """How large the intermediates of these functions' gradients get (rounding grows with it)."""
    m = max_abs(x)
    return x.numel() * (1 + m) ** 3 + math.exp(min(m, 50.0))


@st.composite
def autograd_inputs(draw):
    name = draw(st.sampled_from(tuple(TENSOR_FUNCTIONS)))
    x = draw(tds.tensors(tensor_shapes, magnitude=2.0, distribution="uniform"))
    return name, x


# f computed through a custom torch.autograd.Function: hypothesis always tries it
CUSTOM_F = ("sum_of_cubes_by_function", tds.random_tensor((2, 3), 3, torch.float32, 2.0,
                                                           "uniform"))


@pytest.mark.points(3)
@given(inputs=autograd_inputs())
@example(inputs=CUSTOM_F)
def test_autograd_gradient_matches_torch(student, inputs):
    """autograd_gradient(f, x) is the gradient of the scalar f at x, float32 or float64, any
    shape, contiguous or not, also for an f computed through a custom torch.autograd.Function
    (differentiate with torch.autograd, not torch.func); its dtype is x's (§2.5.1)."""
    name, x = inputs
    f = TENSOR_FUNCTIONS[name][0]
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        out = student.autograd_gradient(f, x)
    assert_close(out, autograd_oracle(f, x), f"autograd_gradient({name}, x) for x "
                 f"{tuple(x.shape)}", scale=gradient_scale(x))


@pytest.mark.points(2)
@given(inputs=autograd_inputs())
def test_autograd_gradient_leaves_x_alone(student, inputs):
    """The caller's x gets no .grad and keeps requires_grad False (and its values) after
    autograd_gradient: differentiate with respect to a fresh leaf (§2.5.1)."""
    name, x = inputs
    # the handle fails any change to an argument: values (bit for bit), requires_grad, .grad
    student.autograd_gradient(TENSOR_FUNCTIONS[name][0], x)


@pytest.mark.points(2)
@given(inputs=autograd_inputs(), seed=st.integers(0, 2**16))
def test_autograd_gradient_does_not_accumulate(student, inputs, seed):
    """When the caller's x already requires grad and holds a .grad, autograd_gradient returns
    the gradient alone and leaves x.grad as it was (no accumulation into it) (§2.5.1)."""
    name, x = inputs
    f = TENSOR_FUNCTIONS[name][0]
    old_grad = tds.random_tensor(x.shape, seed, x.dtype)
    x = x.detach().clone().requires_grad_(True)
    x.grad = old_grad.clone()
    expected = autograd_oracle(f, x)
    got = student.autograd_gradient(f, x)
    assert_close(got, expected, f"autograd_gradient({name}, x) for x that already has a .grad",
                 scale=gradient_scale(x) + max_abs(old_grad),
                 mistakes={ACCUMULATES: expected + old_grad})
    expect_grad_left_alone(x, old_grad)


# ----------------------------------------------------------------- vector_jacobian_product

VECTOR_FUNCTIONS = {
    "square": cf.square,
    "polynomial_features": cf.polynomial_features,
    "cumsum_squared": cf.cumsum_squared,
    "outer_with_weights": cf.outer_with_weights,
    "square_by_function": cf.square_by_function,  # a custom torch.autograd.Function
}


@st.composite
def vjp_inputs(draw):
    name = draw(st.sampled_from(tuple(VECTOR_FUNCTIONS)))
    shape = draw(st.tuples(st.integers(1, 8))) if name == "outer_with_weights" else draw(
        tensor_shapes)
    x = draw(tds.tensors(shape, magnitude=2.0, distribution="uniform"))
    out_shape = VECTOR_FUNCTIONS[name](x.detach().double()).shape
    v = draw(tds.tensors(out_shape, dtype=x.dtype, layout="contiguous"))
    return name, x, v


@pytest.mark.points(4)
@given(inputs=vjp_inputs())
@example(inputs=("square_by_function", tds.random_tensor((3,), 4, torch.float64, 2.0),
                 tds.random_tensor((3,), 5, torch.float64)))
def test_vector_jacobian_product_matches_torch(student, inputs):
    """vector_jacobian_product(f, x, v) = v^T J for a random v (not ones), for elementwise and
    non-elementwise f (outputs of another shape than x, non-symmetric Jacobians, a custom
    torch.autograd.Function), float32 and float64 (§2.5.2)."""
    name, x, v = inputs
    f = VECTOR_FUNCTIONS[name]
    J = jacobian(f, x)
    vf = v.double().reshape(-1)
    expected = vjp_oracle(J, v, x)
    scale = float((vf.abs() @ J.abs()).max()) + 1
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        out = student.vector_jacobian_product(f, x, v)
    assert_close(out, expected, f"vector_jacobian_product({name}, x, v) for x "
                 f"{tuple(x.shape)}", scale=scale, mistakes=vjp_mistakes(J, vf, x.shape))


@pytest.mark.points(1)
@given(inputs=vjp_inputs())
def test_vector_jacobian_product_leaves_x_alone(student, inputs):
    """The caller's x gets no .grad, keeps requires_grad False and its values (§2.5.2)."""
    name, x, v = inputs
    # the handle fails any change to an argument: values (bit for bit), requires_grad, .grad
    student.vector_jacobian_product(VECTOR_FUNCTIONS[name], x, v)


# --------------------------------------------------------------- detached_product_gradient


@pytest.mark.points(3)
@given(x=tds.tensors(tensor_shapes, magnitude=tds.magnitudes(100.0)))
def test_detached_product_gradient_any_shape(student, x):
    """The gradient of sum(u * x) with u = (x * x).detach() is u = x * x, not the 3 x**2 of
    sum(x**3): u is a constant to autograd (§2.5.3). float32 and float64, any shape."""
    expected = x * x
    assert_close(student.detached_product_gradient(x), expected,
                 f"detached_product_gradient(x) for x {tuple(x.shape)}",
                 mistakes=detached_mistakes(x))


@pytest.mark.points(1)
@given(x=tds.tensors(tensor_shapes))
def test_detached_product_gradient_leaves_x_alone(student, x):
    """The caller's x gets no .grad and keeps requires_grad False (§2.5.3)."""
    student.detached_product_gradient(x)  # the handle fails a change to an argument


# --------------------------------------------------------------------------- control_flow_f


def control_flow_factor(a: torch.Tensor) -> tuple[float, bool]:
    """(2**m, b.sum() > 0) with control_flow_f(a) = 2**m * a or 100 * 2**m * a, from the norm
    and sum computed in float64; inputs whose norm or sum sit at a decision boundary (where
    rounding may decide) are skipped."""
    a64 = a.double()
    norm = float(a64.norm())
    assume(norm > 1e-30)
    doublings = 1
    while norm * 2 ** doublings < 1000:
        doublings += 1
    for m in (doublings, doublings - 1):
        if m >= 1:
            assume(abs(norm * 2 ** m / 1000 - 1) > 1e-4)
    total = float(a64.sum())
    assume(abs(total) > 1e-3 * float(a64.abs().sum()))
    return 2.0 ** doublings, total > 0


def control_flow_expected(a: torch.Tensor) -> tuple[torch.Tensor, float, dict]:
    """The oracle d, the factor k = d / a, and the usual wrong answers."""
    power, positive = control_flow_factor(a)
    k = power if positive else 100 * power
    return (a.double() * k).to(a.dtype), k, control_flow_mistakes(a, power, positive)


control_flow_inputs = tds.tensors(
    st.sampled_from([(), (1,), (3,), (2, 3), (5,), (2, 1, 3)]), magnitude=st.sampled_from(
        [1e-3, 0.1, 1.0, 30.0, 700.0, 1e4]))


@pytest.mark.points(3)
@given(a=control_flow_inputs)
@example(a=torch.tensor([-900.0, 200.0, -600.0]))  # norm >= 1000 and sum < 0: 100 * (2 a)
def test_control_flow_f_value(student, a):
    """control_flow_f(a) follows §2.5.4 for scalars and tensors of any shape, tiny to huge:
    b = 2a, doubled while b.norm() < 1000, then b if b.sum() > 0 else 100 * b."""
    expected, _, mistakes = control_flow_expected(a)
    assert_close(student.control_flow_f(a), expected,
                 f"control_flow_f(a) for a of shape {tuple(a.shape)} and norm "
                 f"{float(a.double().norm()):.3g}", mistakes=mistakes)


@pytest.mark.points(3)
@given(a=control_flow_inputs, seed=st.integers(0, 2**16))
def test_control_flow_f_gradient(student, a, seed):
    """Autograd differentiates through control_flow_f: the result is d = k a, so v^T J = k v
    for a random v, i.e. a.grad = d / a (§2.5.4). Keep every step a tensor operation on a."""
    _, k, _ = control_flow_expected(a)
    v = tds.random_tensor(a.shape, seed, a.dtype)
    assert_close(student.gradient("control_flow_f", a, grad_output=v), (v.double() * k).to(
        a.dtype), f"the gradient of control_flow_f at a of shape {tuple(a.shape)}")


@pytest.mark.points(1)
@given(a=control_flow_inputs)
def test_control_flow_f_leaves_a_alone(student, a):
    """control_flow_f computes new tensors: the argument a keeps its values (no `a *= 2`)."""
    control_flow_factor(a)
    student.control_flow_f(a)  # the handle fails a change to an argument


# Inputs whose b = 2**m * a has a norm of exactly 1000 for some m >= 1 (every norm and sum is
# exact in float32 and float64, whichever way the norm is computed), and inputs whose sum is
# exactly 0: where `<` and `<=`, `>` and `>=` give different answers.
NORM_BOUNDARY_INPUTS = (500.0, [500.0], 250.0, -125.0, 500.0 / 1024, [300.0, 400.0],
                        [150.0, -200.0], [[37.5, 50.0], [0.0, 0.0]],
                        [[1.171875], [1.5625], [-0.0]])
SUM_BOUNDARY_INPUTS = ([1.0, -1.0], [[3.0, -1.0], [-2.0, 0.0]], [0.5, -0.25, -0.25],
                       [[[40.0, -40.0]]], [-100.0, 300.0, -200.0])


def check_boundary(student, value) -> None:
    """control_flow_f and its gradient at a boundary input, naming the boundary mistakes."""
    a = torch.tensor(value, dtype=torch.float64)
    check_control_flow_at(student, value, exact_control_flow_factor(a), boundary_mistakes(a))


@pytest.mark.points(2)
def test_control_flow_f_norm_boundary(student):
    """Where b.norm() lands exactly on 1000 (a = 500, 250, -125, [300, 400], a matrix whose
    norm is 62.5, ...), the loop has stopped: it doubles only while b.norm() < 1000, strictly.
    Values and gradients, float32 and float64 (§2.5.4)."""
    for value in NORM_BOUNDARY_INPUTS:
        check_boundary(student, value)


@pytest.mark.points(2)
def test_control_flow_f_sum_boundary(student):
    """Where b.sum() is exactly 0 (a = [1, -1], a matrix whose entries cancel, ...), the
    result is 100 * b: b is returned only if b.sum() > 0, strictly. Values and gradients,
    float32 and float64 (§2.5.4)."""
    for value in SUM_BOUNDARY_INPUTS:
        check_boundary(student, value)


# --------------------------------------------------------------------------- gradient_check

CHECKED_FUNCTIONS = ("sum_of_squares", "sum_of_cubes", "sum_of_exps",
                     "square_of_sum_plus_quartic", "sum_of_cubes_by_function")


@st.composite
def check_inputs(draw, names=CHECKED_FUNCTIONS, low=0.5):
    """(name, x): float64 x of entries from `low` to `low` + 1.5, in any layout."""
    name = draw(st.sampled_from(names))
    shape = draw(tensor_shapes)
    x = draw(tds.tensors(shape, dtype=torch.float64, layout="contiguous",
                         distribution="uniform"))
    return name, tds.with_layout(x.abs() * 1.5 + low, draw(tds.layouts()))


@pytest.mark.points(3)
@given(inputs=check_inputs())
@example(inputs=("sum_of_cubes_by_function", torch.tensor([[0.75, 1.5], [2.0, 1.25]],
                                                          dtype=torch.float64)))
def test_gradient_check_passes_correct_gradients(student, inputs):
    """For functions whose autograd gradient is right, gradient_check(f, x) is a float near 0
    (below 1e-6) for float64 x with gradients away from zero, contiguous or not, also for an f
    computed through a custom torch.autograd.Function."""
    name, x = inputs
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        got = expect_float(student.gradient_check(TENSOR_FUNCTIONS[name][0], x),
                           f"gradient_check({name}, x)")
    expect_small_check(got, f"gradient_check({name}, x)")


@pytest.mark.points(3)
@given(x=check_inputs(names=("sum_of_squares",), low=1.5).map(lambda p: p[1]))
def test_gradient_check_catches_a_wrong_gradient(student, x):
    """For sum(x**2) with a backward that returns x instead of 2x, the relative error is
    large (0.3 to 1, depending on the denominator), for entries from 1.5 to 3."""
    got = expect_float(student.gradient_check(cf.sum_of_squares_with_wrong_gradient, x),
                       "gradient_check(f with a wrong gradient, x)")
    expect_half_gradient_error(got)


@pytest.mark.points(2)
@given(x=check_inputs(names=("sum_of_cubes",), low=1.5).map(lambda p: p[1]))
def test_gradient_check_reports_the_largest_error(student, x):
    """When one partial derivative of many is wrong (twice the true one), gradient_check
    reports that entry's relative error (the largest), not an average over entries."""
    x = torch.cat([x.reshape(-1), x.reshape(-1) + 0.25])
    got = expect_float(student.gradient_check(cf.sum_of_cubes_with_one_wrong_partial, x),
                       "gradient_check(f with one wrong partial derivative, x)")
    expect_largest_error(got, x.numel())


@pytest.mark.points(2)
@given(inputs=check_inputs(names=("sum_of_cubes", "sum_of_exps")),
       eps=st.sampled_from([1e-2, 3e-2, 1e-1]))
def test_gradient_check_uses_eps(student, inputs, eps):
    """gradient_check(f, x, eps) computes the numerical gradient with the eps it is given: for
    sum(x**3) and sum(exp(x)) with eps from 0.01 to 0.1, central differences are off by about
    eps**2 times the third derivative / 6, and the reported relative error is that large
    (§2.4.1)."""
    name, x = inputs
    f = TENSOR_FUNCTIONS[name][0]
    expected = contract_relative_error(f, x, eps)
    default = contract_relative_error(f, x, 1e-6)
    got = expect_float(student.gradient_check(f, x, eps=eps),
                       f"gradient_check({name}, x, eps={eps!r})")
    # 0.4: a denominator |g_auto| + |g_num| (about twice the contract's) is still accepted
    expect_eps_used(got, expected, default, f"gradient_check({name}, x, eps={eps!r})", eps)


@pytest.mark.points(1)
@given(inputs=check_inputs())
def test_gradient_check_leaves_x_alone(student, inputs):
    """gradient_check leaves the caller's x exactly as it was, without requires_grad or .grad."""
    name, x = inputs
    student.gradient_check(TENSOR_FUNCTIONS[name][0], x)  # the handle fails a change to an argument


@pytest.mark.points(1)
def test_gradient_check_returns_float(student):
    """gradient_check returns a Python float (float(errors.max())), not a tensor of errors nor
    a 0-d tensor."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    got = student.gradient_check(cf.sum_of_squares, x)
    expect_not_a_tensor_of_errors(got)
    expect_exact_float(got, "gradient_check(sum(x**2), x)")


# --------------------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.points(1)
def test_gpu_results_stay_on_the_device(student):
    """For x on the GPU, every gradient (numerical, by autograd, v^T J, of the detached
    product) and control_flow_f's result are on the GPU too: work on x.detach().clone() and
    make new tensors with torch.zeros_like(x), never on the default device."""
    x = torch.tensor([[0.5, -1.25], [2.0, 0.75]], dtype=torch.float64).to(GPU)
    v = torch.ones(2, 2, 3, dtype=torch.float64).to(GPU)
    calls = {
        "numerical_gradient(f, x)": lambda: student.numerical_gradient(cf.sum_of_cubes, x),
        "autograd_gradient(f, x)": lambda: student.autograd_gradient(cf.sum_of_cubes, x),
        "vector_jacobian_product(f, x, v)": lambda: student.vector_jacobian_product(
            cf.polynomial_features, x, v),
        "detached_product_gradient(x)": lambda: student.detached_product_gradient(x),
        "control_flow_f(a)": lambda: student.control_flow_f(x),
    }
    for what, call in calls.items():
        expect_on_gpu(call(), f"{what} for x on {GPU}")

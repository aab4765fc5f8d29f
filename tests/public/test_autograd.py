"""Public checks for calculus and automatic differentiation (§2.4, §2.5): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs.

The functions handed to your code come from `torchdrill.callables`; import them to experiment.
When a result matches a mistake students often make, the failure names it: the mistakes and
their messages are in `_mistakes_autograd.py` beside this file, and what every topic shares
(Python floats, custom torch.autograd.Functions) in `_conventions.py`. Each test's inputs, the
numbers it expects and what each mistake it names gives for those inputs are a table there
(`NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE`, `VJP_SQUARE_EXAMPLE`, ...).
"""


import pytest
import torch

from grader.checks import assert_close, expect_float, hints_on_error
from tests.public._conventions import CUSTOM_FUNCTION_HINTS, expect_exact_float
from tests.public._mistakes_autograd import (
    ACCUMULATES,
    CONTROL_FLOW_LARGE_EXAMPLE,
    CONTROL_FLOW_NEGATIVE_EXAMPLE,
    CONTROL_FLOW_NORM_BOUNDARY_EXAMPLE,
    CONTROL_FLOW_SMALL_EXAMPLE,
    CONTROL_FLOW_SUM_BOUNDARY_EXAMPLE,
    DETACHED_EXAMPLE,
    DETACHED_MATRIX_EXAMPLE,
    GRADIENT_CHECK_EPS_EXAMPLE,
    NUMERICAL_DERIVATIVE_CENTRAL_EXAMPLE,
    NUMERICAL_DERIVATIVE_E_EXAMPLE,
    NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE,
    NUMERICAL_GRADIENT_CUBES_EXAMPLE,
    NUMERICAL_GRADIENT_SQUARES_EXAMPLE,
    NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE,
    NUMERICAL_GRADIENT_UNCHANGED_EXAMPLE,
    VJP_CUSTOM_FUNCTION_EXAMPLE,
    VJP_POLYNOMIAL_EXAMPLE,
    VJP_SQUARE_EXAMPLE,
    check_control_flow_at,
    check_number,
    expect_eps_used,
    expect_grad_left_alone,
    expect_half_gradient_error,
    expect_largest_error,
    expect_not_a_tensor_of_errors,
    expect_small_check,
)
from torchdrill import callables

# --------------------------------------------------------------------------- numerical_derivative


@pytest.mark.points(1)
def test_numerical_derivative_of_d2l_quadratic(student):
    """f(x) = 3x**2 - 4x has derivative 6x - 4, so 2 at x = 1 (§2.4.1)."""
    example = NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE
    got = student.numerical_derivative(example["f"], example["x"])
    check_number(got, example["expected"], example["tol"], "numerical_derivative(3x**2 - 4x, 1.0)",
                 example["mistakes"])


@pytest.mark.points(1)
def test_numerical_derivative_is_central(student):
    """With h = 0.01, the central difference of exp at 0 is (e**0.01 - e**-0.01) / 0.02 =
    1.0000167; the forward difference (e**0.01 - 1) / 0.01 would give 1.005 (§2.4.1)."""
    example = NUMERICAL_DERIVATIVE_CENTRAL_EXAMPLE
    got = student.numerical_derivative(example["f"], example["x"], h=example["h"])
    check_number(got, example["expected"], example["tol"], "numerical_derivative(exp, 0.0, h=0.01)",
                 example["mistakes"])


@pytest.mark.points(1)
def test_numerical_derivative_returns_a_python_float(student):
    """The result is a Python float, as D2L's float(...), never a 0-d tensor nor an int: here
    e, the derivative of exp at 1, with the default h = 1e-5 (§2.4.1)."""
    example = NUMERICAL_DERIVATIVE_E_EXAMPLE
    got = student.numerical_derivative(example["f"], example["x"])
    what = "numerical_derivative(exp, 1.0)"
    check_number(expect_exact_float(got, what), example["expected"], example["tol"], what,
                 example["mistakes"])


# --------------------------------------------------------------------------- numerical_gradient


def check_numerical_gradient(student, example: dict, pass_eps: bool, what: str) -> None:
    """numerical_gradient(f, x) (with the table's eps where `pass_eps`, else the default) against
    `example`'s table."""
    kwargs = {"eps": example["eps"]} if pass_eps else {}
    got = student.numerical_gradient(example["f"], example["x"], **kwargs)
    assert_close(got, example["expected"], what, atol=example["atol"],
                 mistakes=example["mistakes"])



@pytest.mark.points(1)
def test_numerical_gradient_of_sum_of_squares(student):
    """The gradient of sum(x**2) is 2x, shaped like x (here a 2x3 float64 matrix); x is left
    exactly as it was (§2.4.1)."""
    check_numerical_gradient(student, NUMERICAL_GRADIENT_SQUARES_EXAMPLE, False,
                             "numerical_gradient(sum(x**2), x) for x (2, 3)")


@pytest.mark.points(1)
def test_numerical_gradient_uses_central_differences(student):
    """For sum(x**3) with eps = 1e-3, central differences give 3 x**2 + eps**2 (off by 1e-6),
    forward ones 3 x**2 + 3 x eps + eps**2 (off by about 3e-3 here) (§2.4.1)."""
    check_numerical_gradient(student, NUMERICAL_GRADIENT_CUBES_EXAMPLE, True,
                             "numerical_gradient(sum(x**3), x, eps=1e-3)")


@pytest.mark.points(2)
def test_numerical_gradient_leaves_x_exactly_unchanged(student):
    """After numerical_gradient(f, x), x holds bit for bit the values it had. Adding eps and
    subtracting it again is not enough: 0.7 + 1e-6 - 1e-6 is not exactly 0.7 in floating
    point. Work on x.detach().clone(), or put the saved value back (xc[i] = old)."""
    # the grader fails the call if x changes at all (values, requires_grad, .grad)
    check_numerical_gradient(student, NUMERICAL_GRADIENT_UNCHANGED_EXAMPLE, False,
                             "numerical_gradient(sum(x**2), x)")


@pytest.mark.points(1)
def test_numerical_gradient_of_a_transposed_x(student):
    """x may be non-contiguous, here a transposed 3x2 matrix: x.view(-1) fails on it (and on
    its clone(), which keeps the strides), reshape(-1) works. The gradient of sum(x**3) is
    3 x**2, shaped like x (§2.4.1)."""
    check_numerical_gradient(student, NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE, True,
                             "numerical_gradient(sum(x**3), x) for a transposed x")


# --------------------------------------------------------------------------- autograd_gradient


@pytest.mark.points(1)
def test_autograd_gradient_of_sum_of_cubes(student):
    """Autograd's gradient of sum(x**3) is 3 x**2, and the caller's x gets no .grad (§2.5.1)."""
    x = torch.tensor([1.0, -2.0, 0.5])
    # the grader fails the call if x changes (values, requires_grad, .grad)
    got = student.autograd_gradient(callables.sum_of_cubes, x)
    assert_close(got, 3 * x ** 2, "autograd_gradient(sum(x**3), x)")


@pytest.mark.points(2)
def test_autograd_gradient_leaves_an_old_grad_alone(student):
    """The caller's x already requires grad and holds a .grad of 10s: autograd_gradient returns
    the gradient alone (3 x**2, not 3 x**2 + 10) and x.grad stays 10s. backward() adds into
    the .grad of the tensor it differentiates, so differentiate a fresh leaf (§2.5.1)."""
    old_grad = torch.full((2, 2), 10.0, dtype=torch.float64)
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64).requires_grad_(True)
    x.grad = old_grad.clone()
    expected = 3 * x.detach() ** 2
    got = student.autograd_gradient(callables.sum_of_cubes, x)
    assert_close(got, expected, "autograd_gradient(sum(x**3), x) for x that already has a .grad",
                 scale=40.0, mistakes={ACCUMULATES: expected + old_grad})
    expect_grad_left_alone(x, old_grad)


@pytest.mark.points(1)
def test_autograd_gradient_of_a_custom_function(student):
    """f may compute through a custom torch.autograd.Function (forward and backward written
    out): torch.autograd (y.backward(), torch.autograd.grad) differentiates it, torch.func
    refuses it. Here sum(x**3) again, gradient 3 x**2 (§2.5.1)."""
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64)
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        got = student.autograd_gradient(callables.sum_of_cubes_by_function, x)
    assert_close(got, 3 * x ** 2, "autograd_gradient(sum(x**3) by a custom Function, x)")


# ----------------------------------------------------------------- vector_jacobian_product


def check_vjp(student, example: dict, what: str) -> None:
    """vector_jacobian_product(f, x, v) against `example`'s table."""
    got = student.vector_jacobian_product(example["f"], example["x"], example["v"])
    assert_close(got, example["expected"], what, mistakes=example["mistakes"])



@pytest.mark.points(1)
def test_vector_jacobian_product_uses_v(student):
    """For y = x * x, v^T J = 2 x * v (§2.5.2): y.backward(v), not y.sum().backward()."""
    check_vjp(student, VJP_SQUARE_EXAMPLE, "vector_jacobian_product(x * x, x, v)")


@pytest.mark.points(1)
def test_vector_jacobian_product_output_of_another_shape(student):
    """y = polynomial_features(x) stacks x, x**2, x**3: for x = [1, 2] it is (2, 3), and v has
    y's shape. Entry i of v^T J is v[i, 0] + 2 x_i v[i, 1] + 3 x_i**2 v[i, 2]: [6, -11.5]
    here, float64 (§2.5.2)."""
    check_vjp(student, VJP_POLYNOMIAL_EXAMPLE, "vector_jacobian_product(polynomial_features, x, v)")


@pytest.mark.points(1)
def test_vector_jacobian_product_of_a_custom_function(student):
    """y = x * x computed by a custom torch.autograd.Function: y.backward(v) (or
    torch.autograd.grad(y, x, grad_outputs=v)) differentiates it; torch.func.vjp refuses
    it. v^T J = 2 x * v (§2.5.2)."""
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        check_vjp(student, VJP_CUSTOM_FUNCTION_EXAMPLE,
                  "vector_jacobian_product(x * x by a custom Function, x, v)")


# --------------------------------------------------------------- detached_product_gradient


@pytest.mark.points(1)
def test_detached_product_gradient(student):
    """With u = (x * x).detach(), the gradient of sum(u * x) is u = x * x (§2.5.3)."""
    example = DETACHED_EXAMPLE
    assert_close(student.detached_product_gradient(example["x"]), example["expected"],
                 "detached_product_gradient(x)", mistakes=example["mistakes"])


@pytest.mark.points(1)
def test_detached_product_gradient_of_a_matrix(student):
    """For a float64 2x3 x with negative entries the gradient is still u = x * x, shaped like
    x: detach() makes u a constant, so autograd does not differentiate through it (§2.5.3)."""
    example = DETACHED_MATRIX_EXAMPLE
    assert_close(student.detached_product_gradient(example["x"]), example["expected"],
                 "detached_product_gradient(x) for x (2, 3)", mistakes=example["mistakes"])


# --------------------------------------------------------------------------- control_flow_f


def check_control_flow(student, example: dict, at: str) -> None:
    """control_flow_f(a) and its gradient against `example`'s table; `at` names a."""
    a = example["a"]
    assert_close(student.control_flow_f(a), example["expected"], f"control_flow_f({at})",
                 mistakes=example["mistakes"])
    assert_close(student.gradient("control_flow_f", a), example["gradient"],
                 f"the gradient of control_flow_f at {at}")



@pytest.mark.points(1)
def test_control_flow_f_value_and_gradient(student):
    """control_flow_f(0.1): b = 0.2 doubles to 0.2 * 2**13 = 1638.4, positive, so the result is
    1638.4 and its derivative 16384 = d / a (§2.5.4)."""
    check_control_flow(student, CONTROL_FLOW_SMALL_EXAMPLE, "0.1")


@pytest.mark.points(1)
def test_control_flow_f_negative_sum(student):
    """a = [-1, 0.5]: b = 2a = [-2, 1] doubles 9 times to 1024 a (norm 1145 >= 1000); its sum
    is negative, so the result is 100 * b = 102400 a = [-102400, 51200], and each partial
    derivative is 102400 (§2.5.4)."""
    check_control_flow(student, CONTROL_FLOW_NEGATIVE_EXAMPLE, "[-1, 0.5]")


@pytest.mark.points(1)
def test_control_flow_f_large_input(student):
    """a = [1200, -500] has norm 1300: b = 2a already has a norm >= 1000, so the loop never
    runs and the result is 2a = [2400, -1000] (its sum is positive), gradient 2 (§2.5.4)."""
    check_control_flow(student, CONTROL_FLOW_LARGE_EXAMPLE, "[1200, -500]")


@pytest.mark.points(1)
def test_control_flow_f_norm_exactly_1000(student):
    """a = 500: b = 2a = 1000 already, and the loop doubles only while b.norm() < 1000, so
    the result is 1000 (and [600, 800] for a = [300, 400]), gradient 2. Values and gradients
    in float32 and float64 (§2.5.4)."""
    for point in CONTROL_FLOW_NORM_BOUNDARY_EXAMPLE["points"]:
        check_control_flow_at(student, point["a"], point["k"], point["mistakes"])


@pytest.mark.points(1)
def test_control_flow_f_sum_exactly_0(student):
    """a = [1, -1]: b = 2a doubles 9 times to 1024 a = [1024, -1024], whose sum is exactly 0,
    and b is returned only if b.sum() > 0, so the result is 100 * b = [102400, -102400],
    gradient 102400. Float32 and float64 (§2.5.4)."""
    for point in CONTROL_FLOW_SUM_BOUNDARY_EXAMPLE["points"]:
        check_control_flow_at(student, point["a"], point["k"], point["mistakes"])


# --------------------------------------------------------------------------- gradient_check


@pytest.mark.points(1)
def test_gradient_check(student):
    """For sum(x**2), whose autograd gradient is right, the largest relative error between the
    autograd and numerical gradients is tiny (below 1e-6)."""
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    what = "gradient_check(sum(x**2), x)"
    expect_small_check(expect_float(student.gradient_check(callables.sum_of_squares, x), what),
                       what)


@pytest.mark.points(1)
def test_gradient_check_catches_a_wrong_backward(student):
    """sum_of_squares_with_wrong_gradient's backward returns x instead of 2x: the relative error
    |x - 2x| / max(|x|, |2x|) is 0.5 in every entry (1/3 with the denominator |a| + |n|). The
    absolute error |x - 2x| = x would be 1.5 to 3 here: not a relative error."""
    x = torch.tensor([1.5, 2.0, 3.0], dtype=torch.float64)
    with hints_on_error(CUSTOM_FUNCTION_HINTS):  # f is a custom torch.autograd.Function
        got = student.gradient_check(callables.sum_of_squares_with_wrong_gradient, x)
    got = expect_float(got, "gradient_check(f with a wrong gradient, x)")
    expect_half_gradient_error(got)


@pytest.mark.points(1)
def test_gradient_check_reports_the_largest_entry(student):
    """Only the first of 4 partial derivatives is wrong (twice the true one): its relative error
    is 0.5, the others' about 0, so the check is 0.5 (the largest), not their mean 0.125."""
    x = torch.tensor([1.5, 2.0, 2.5, 3.0], dtype=torch.float64)
    with hints_on_error(CUSTOM_FUNCTION_HINTS):  # f is a custom torch.autograd.Function
        got = student.gradient_check(callables.sum_of_cubes_with_one_wrong_partial, x)
    got = expect_float(got, "gradient_check(f with one wrong partial derivative, x)")
    expect_largest_error(got, x.numel())


@pytest.mark.points(1)
def test_gradient_check_passes_eps_on(student):
    """With eps = 0.1 the central differences of sum(x**3) are 3 x**2 + eps**2, so at x = [1, 2]
    the relative error is 0.01 / 3.01 = 0.0033 in the first entry: gradient_check must use
    the eps it is given (§2.4.1)."""
    example = GRADIENT_CHECK_EPS_EXAMPLE
    what = "gradient_check(sum_of_cubes, x, eps=0.1)"
    got = expect_float(student.gradient_check(example["f"], example["x"], eps=example["eps"]),
                       what)
    expect_eps_used(got, example["expected"], example["default"], what, example["eps"])


@pytest.mark.points(1)
def test_gradient_check_returns_a_python_float(student):
    """The result is one Python float, float(errors.max()): not the tensor of errors, nor a 0-d
    tensor (which would also keep its autograd graph alive), nor an int."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    got = student.gradient_check(callables.sum_of_squares, x)
    expect_not_a_tensor_of_errors(got)
    expect_exact_float(got, "gradient_check(sum(x**2), x)")

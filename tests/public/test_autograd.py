"""Public checks for calculus and automatic differentiation (§2.4, §2.5): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs.

The functions handed to your code come from `torchdrill.callables`; import them to experiment.
When a result matches a mistake students often make, the failure names it: the mistakes and
their messages are in `_mistakes_autograd.py` beside this file, and what every topic shares
(Python floats, custom torch.autograd.Functions) in `_conventions.py`.
"""

import math

import pytest
import torch

from grader.checks import assert_close, expect_float, hints_on_error
from tests.public._conventions import CUSTOM_FUNCTION_HINTS, expect_exact_float
from tests.public._mistakes_autograd import (
    ACCUMULATES,
    NORM_BOUNDARY,
    SUM_BOUNDARY,
    check_control_flow_at,
    check_number,
    contract_relative_error,
    control_flow_mistakes,
    derivative_mistakes,
    detached_mistakes,
    expect_eps_used,
    expect_grad_left_alone,
    expect_half_gradient_error,
    expect_largest_error,
    expect_not_a_tensor_of_errors,
    expect_small_check,
    gradient_mistakes,
    jacobian,
    vjp_mistakes,
)
from torchdrill import callables

# --------------------------------------------------------------------------- numerical_derivative


@pytest.mark.points(1)
def test_numerical_derivative_of_d2l_quadratic(student):
    """f(x) = 3x**2 - 4x has derivative 6x - 4, so 2 at x = 1 (§2.4.1)."""
    got = student.numerical_derivative(callables.d2l_quadratic, 1.0)
    check_number(got, 2.0, 1e-6, "numerical_derivative(3x**2 - 4x, 1.0)",
                 derivative_mistakes(callables.d2l_quadratic, 1.0, 1e-5))


@pytest.mark.points(1)
def test_numerical_derivative_is_central(student):
    """With h = 0.01, the central difference of exp at 0 is (e**0.01 - e**-0.01) / 0.02 =
    1.0000167; the forward difference (e**0.01 - 1) / 0.01 would give 1.005 (§2.4.1)."""
    got = student.numerical_derivative(callables.exp, 0.0, h=0.01)
    central = (math.exp(0.01) - math.exp(-0.01)) / 0.02
    check_number(got, central, 1e-9, "numerical_derivative(exp, 0.0, h=0.01)",
                 derivative_mistakes(math.exp, 0.0, 0.01))


@pytest.mark.points(1)
def test_numerical_derivative_returns_a_python_float(student):
    """The result is a Python float, as D2L's float(...), never a 0-d tensor nor an int: here
    e, the derivative of exp at 1, with the default h = 1e-5 (§2.4.1)."""
    got = student.numerical_derivative(callables.exp, 1.0)
    what = "numerical_derivative(exp, 1.0)"
    check_number(expect_exact_float(got, what), math.e, 1e-8, what,
                 derivative_mistakes(math.exp, 1.0, 1e-5))


# --------------------------------------------------------------------------- numerical_gradient


@pytest.mark.points(1)
def test_numerical_gradient_of_sum_of_squares(student):
    """The gradient of sum(x**2) is 2x, shaped like x (here a 2x3 float64 matrix); x is left
    exactly as it was (§2.4.1)."""
    x = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.1, -0.7]], dtype=torch.float64)
    got = student.numerical_gradient(callables.sum_of_squares, x)
    assert_close(got, 2 * x, "numerical_gradient(sum(x**2), x) for x (2, 3)", atol=1e-6,
                 mistakes=gradient_mistakes(callables.sum_of_squares, x, 1e-6))


@pytest.mark.points(1)
def test_numerical_gradient_uses_central_differences(student):
    """For sum(x**3) with eps = 1e-3, central differences give 3 x**2 + eps**2 (off by 1e-6),
    forward ones 3 x**2 + 3 x eps + eps**2 (off by about 3e-3 here) (§2.4.1)."""
    x = torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.75, 1.25]], dtype=torch.float64)
    got = student.numerical_gradient(callables.sum_of_cubes, x, eps=1e-3)
    assert_close(got, 3 * x ** 2, "numerical_gradient(sum(x**3), x, eps=1e-3)", atol=1e-5,
                 mistakes=gradient_mistakes(callables.sum_of_cubes, x, 1e-3))


@pytest.mark.points(2)
def test_numerical_gradient_leaves_x_exactly_unchanged(student):
    """After numerical_gradient(f, x), x holds bit for bit the values it had. Adding eps and
    subtracting it again is not enough: 0.7 + 1e-6 - 1e-6 is not exactly 0.7 in floating
    point. Work on x.detach().clone(), or put the saved value back (xc[i] = old)."""
    x = torch.tensor([[0.7, 1.3, -0.4], [2.2, 0.3, -1.1]], dtype=torch.float64)
    # the grader fails the call if x changes at all (values, requires_grad, .grad)
    got = student.numerical_gradient(callables.sum_of_squares, x)
    assert_close(got, 2 * x, "numerical_gradient(sum(x**2), x)", atol=1e-6,
                 mistakes=gradient_mistakes(callables.sum_of_squares, x, 1e-6))


@pytest.mark.points(1)
def test_numerical_gradient_of_a_transposed_x(student):
    """x may be non-contiguous, here a transposed 3x2 matrix: x.view(-1) fails on it (and on
    its clone(), which keeps the strides), reshape(-1) works. The gradient of sum(x**3) is
    3 x**2, shaped like x (§2.4.1)."""
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=torch.float64).T
    got = student.numerical_gradient(callables.sum_of_cubes, x, eps=1e-4)
    assert_close(got, 3 * x ** 2, "numerical_gradient(sum(x**3), x) for a transposed x",
                 atol=1e-6, mistakes=gradient_mistakes(callables.sum_of_cubes, x, 1e-4))


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


@pytest.mark.points(1)
def test_vector_jacobian_product_uses_v(student):
    """For y = x * x, v^T J = 2 x * v (§2.5.2): y.backward(v), not y.sum().backward()."""
    x = torch.tensor([1.0, 2.0, 3.0])
    v = torch.tensor([0.5, -1.0, 2.0])
    J = jacobian(callables.square, x)
    assert_close(student.vector_jacobian_product(callables.square, x, v), 2 * x * v,
                 "vector_jacobian_product(x * x, x, v)",
                 mistakes=vjp_mistakes(J, v.double(), x.shape))


@pytest.mark.points(1)
def test_vector_jacobian_product_output_of_another_shape(student):
    """y = polynomial_features(x) stacks x, x**2, x**3: for x = [1, 2] it is (2, 3), and v has
    y's shape. Entry i of v^T J is v[i, 0] + 2 x_i v[i, 1] + 3 x_i**2 v[i, 2]: [6, -11.5]
    here, float64 (§2.5.2)."""
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    v = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.0, -1.0]], dtype=torch.float64)
    J = jacobian(callables.polynomial_features, x)
    assert_close(student.vector_jacobian_product(callables.polynomial_features, x, v),
                 torch.tensor([6.0, -11.5], dtype=torch.float64),
                 "vector_jacobian_product(polynomial_features, x, v)",
                 mistakes=vjp_mistakes(J, v.reshape(-1), x.shape))


@pytest.mark.points(1)
def test_vector_jacobian_product_of_a_custom_function(student):
    """y = x * x computed by a custom torch.autograd.Function: y.backward(v) (or
    torch.autograd.grad(y, x, grad_outputs=v)) differentiates it; torch.func.vjp refuses
    it. v^T J = 2 x * v (§2.5.2)."""
    x = torch.tensor([1.0, -2.0, 3.0])
    v = torch.tensor([0.5, 1.0, -2.0])
    J = jacobian(callables.square_by_function, x)
    with hints_on_error(CUSTOM_FUNCTION_HINTS):
        got = student.vector_jacobian_product(callables.square_by_function, x, v)
    assert_close(got, 2 * x * v, "vector_jacobian_product(x * x by a custom Function, x, v)",
                 mistakes=vjp_mistakes(J, v.double(), x.shape))


# --------------------------------------------------------------- detached_product_gradient


@pytest.mark.points(1)
def test_detached_product_gradient(student):
    """With u = (x * x).detach(), the gradient of sum(u * x) is u = x * x (§2.5.3)."""
    x = torch.arange(4.0)
    assert_close(student.detached_product_gradient(x), x * x, "detached_product_gradient(x)",
                 mistakes=detached_mistakes(x))


@pytest.mark.points(1)
def test_detached_product_gradient_of_a_matrix(student):
    """For a float64 2x3 x with negative entries the gradient is still u = x * x, shaped like
    x: detach() makes u a constant, so autograd does not differentiate through it (§2.5.3)."""
    x = torch.tensor([[1.0, -2.0, 0.5], [-1.5, 3.0, 2.0]], dtype=torch.float64)
    assert_close(student.detached_product_gradient(x), x * x,
                 "detached_product_gradient(x) for x (2, 3)", mistakes=detached_mistakes(x))


# --------------------------------------------------------------------------- control_flow_f


@pytest.mark.points(1)
def test_control_flow_f_value_and_gradient(student):
    """control_flow_f(0.1): b = 0.2 doubles to 0.2 * 2**13 = 1638.4, positive, so the result is
    1638.4 and its derivative 16384 = d / a (§2.5.4)."""
    a = torch.tensor(0.1, dtype=torch.float64)
    assert_close(student.control_flow_f(a), torch.tensor(1638.4, dtype=torch.float64),
                 "control_flow_f(0.1)", mistakes=control_flow_mistakes(a, 2.0 ** 14, True))
    assert_close(student.gradient("control_flow_f", a), torch.tensor(16384.0,
                 dtype=torch.float64), "the gradient of control_flow_f at 0.1")


@pytest.mark.points(1)
def test_control_flow_f_negative_sum(student):
    """a = [-1, 0.5]: b = 2a = [-2, 1] doubles 9 times to 1024 a (norm 1145 >= 1000); its sum
    is negative, so the result is 100 * b = 102400 a = [-102400, 51200], and each partial
    derivative is 102400 (§2.5.4)."""
    a = torch.tensor([-1.0, 0.5])
    assert_close(student.control_flow_f(a), torch.tensor([-102400.0, 51200.0]),
                 "control_flow_f([-1, 0.5])", mistakes=control_flow_mistakes(a, 1024.0, False))
    assert_close(student.gradient("control_flow_f", a), torch.tensor([102400.0, 102400.0]),
                 "the gradient of control_flow_f at [-1, 0.5]")


@pytest.mark.points(1)
def test_control_flow_f_large_input(student):
    """a = [1200, -500] has norm 1300: b = 2a already has a norm >= 1000, so the loop never
    runs and the result is 2a = [2400, -1000] (its sum is positive), gradient 2 (§2.5.4)."""
    a = torch.tensor([1200.0, -500.0], dtype=torch.float64)
    assert_close(student.control_flow_f(a), torch.tensor([2400.0, -1000.0], dtype=torch.float64),
                 "control_flow_f([1200, -500])", mistakes=control_flow_mistakes(a, 2.0, True))
    assert_close(student.gradient("control_flow_f", a),
                 torch.tensor([2.0, 2.0], dtype=torch.float64),
                 "the gradient of control_flow_f at [1200, -500]")


@pytest.mark.points(1)
def test_control_flow_f_norm_exactly_1000(student):
    """a = 500: b = 2a = 1000 already, and the loop doubles only while b.norm() < 1000, so
    the result is 1000 (and [600, 800] for a = [300, 400]), gradient 2. Values and gradients
    in float32 and float64 (§2.5.4)."""
    for value in (500.0, [300.0, 400.0]):
        check_control_flow_at(student, value, 2.0, NORM_BOUNDARY)


@pytest.mark.points(1)
def test_control_flow_f_sum_exactly_0(student):
    """a = [1, -1]: b = 2a doubles 9 times to 1024 a = [1024, -1024], whose sum is exactly 0,
    and b is returned only if b.sum() > 0, so the result is 100 * b = [102400, -102400],
    gradient 102400. Float32 and float64 (§2.5.4)."""
    check_control_flow_at(student, [1.0, -1.0], 0.01, SUM_BOUNDARY)


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
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    what = "gradient_check(sum_of_cubes, x, eps=0.1)"
    got = expect_float(student.gradient_check(callables.sum_of_cubes, x, eps=0.1), what)
    expect_eps_used(got, contract_relative_error(callables.sum_of_cubes, x, 0.1),
                    contract_relative_error(callables.sum_of_cubes, x, 1e-6), what, 0.1)


@pytest.mark.points(1)
def test_gradient_check_returns_a_python_float(student):
    """The result is one Python float, float(errors.max()): not the tensor of errors, nor a 0-d
    tensor (which would also keep its autograd graph alive), nor an int."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    got = student.gradient_check(callables.sum_of_squares, x)
    expect_not_a_tensor_of_errors(got)
    expect_exact_float(got, "gradient_check(sum(x**2), x)")

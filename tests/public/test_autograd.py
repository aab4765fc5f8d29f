"""Public checks for calculus and automatic differentiation (§2.4, §2.5): read them, run them,
then make them pass. The hidden tests check the same functions on many more inputs.

The functions handed to your code come from `torchdrill.callables`; import them to experiment.
"""

import math

import pytest
import torch

from grader.checks import assert_close, assert_unchanged, expect_float
from torchdrill import callables


@pytest.mark.points(1)
def test_numerical_derivative_of_d2l_quadratic(student):
    """f(x) = 3x**2 - 4x has derivative 6x - 4, so 2 at x = 1 (§2.4.1)."""
    got = expect_float(student.numerical_derivative(callables.d2l_quadratic, 1.0),
                       "numerical_derivative(f, 1.0)")
    assert abs(got - 2.0) < 1e-6, f"numerical_derivative(3x**2 - 4x, 1.0) is {got}, not 2."


@pytest.mark.points(1)
def test_numerical_derivative_is_central(student):
    """With h = 0.01, the central difference of exp at 0 is (e**0.01 - e**-0.01) / 0.02 =
    1.0000167; the forward difference would give 1.005 (§2.4.1)."""
    got = expect_float(student.numerical_derivative(callables.exp, 0.0, h=0.01),
                       "numerical_derivative(exp, 0.0, h=0.01)")
    central = (math.exp(0.01) - math.exp(-0.01)) / 0.02
    assert abs(got - central) < 1e-9, (
        f"numerical_derivative(exp, 0.0, h=0.01) is {got}, expected the central difference "
        f"{central} (a forward difference gives {(math.exp(0.01) - 1) / 0.01}).")


@pytest.mark.points(1)
def test_numerical_gradient_of_sum_of_squares(student):
    """The gradient of sum(x**2) is 2x; x is left exactly as it was."""
    x = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.1, -0.7]], dtype=torch.float64)
    before = x.clone()
    got = student.numerical_gradient(callables.sum_of_squares, x)
    assert_close(got, 2 * before, "numerical_gradient(sum(x**2), x)", atol=1e-6)
    assert_unchanged(before, x, "x")


@pytest.mark.points(1)
def test_autograd_gradient_of_sum_of_cubes(student):
    """Autograd's gradient of sum(x**3) is 3 x**2, and the caller's x gets no .grad (§2.5.1)."""
    x = torch.tensor([1.0, -2.0, 0.5])
    got = student.autograd_gradient(callables.sum_of_cubes, x)
    assert_close(got, 3 * x ** 2, "autograd_gradient(sum(x**3), x)")
    assert x.grad is None and not x.requires_grad, (
        "autograd_gradient changed the caller's x (requires_grad or .grad): differentiate "
        "with respect to x.detach().clone().requires_grad_(True).")


@pytest.mark.points(1)
def test_vector_jacobian_product_uses_v(student):
    """For y = x * x, v^T J = 2 x * v (§2.5.2)."""
    x = torch.tensor([1.0, 2.0, 3.0])
    v = torch.tensor([0.5, -1.0, 2.0])
    assert_close(student.vector_jacobian_product(callables.square, x, v), 2 * x * v,
                 "vector_jacobian_product(x * x, x, v)",
                 mistakes={"this is the gradient of y.sum() (v = ones): use v, as in "
                           "y.backward(v).": 2 * x})


@pytest.mark.points(1)
def test_detached_product_gradient(student):
    """With u = (x * x).detach(), the gradient of sum(u * x) is u = x * x (§2.5.3)."""
    x = torch.arange(4.0)
    assert_close(student.detached_product_gradient(x), x * x, "detached_product_gradient(x)",
                 mistakes={"this is 3 x**2, the gradient of sum(x**3): detach u so autograd "
                           "treats it as a constant.": 3 * x * x})


@pytest.mark.points(1)
def test_control_flow_f_value_and_gradient(student):
    """control_flow_f(0.1): b = 0.2 doubles to 0.2 * 2**13 = 1638.4, positive, so the result is
    1638.4 and its derivative 16384 = d / a (§2.5.4)."""
    a = torch.tensor(0.1, dtype=torch.float64)
    assert_close(student.control_flow_f(a), torch.tensor(1638.4, dtype=torch.float64),
                 "control_flow_f(0.1)")
    assert_close(student.gradient("control_flow_f", a), torch.tensor(16384.0,
                 dtype=torch.float64), "the gradient of control_flow_f at 0.1")


@pytest.mark.points(1)
def test_gradient_check(student):
    """The check is tiny for sum(x**2) and large for a function whose backward is wrong."""
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    good = expect_float(student.gradient_check(callables.sum_of_squares, x),
                        "gradient_check(sum(x**2), x)")
    bad = expect_float(student.gradient_check(callables.sum_of_squares_with_wrong_gradient, x),
                       "gradient_check(wrong gradient, x)")
    assert 0 <= good < 1e-6, f"gradient_check of a correct gradient is {good}, not about 0."
    assert bad > 0.3, f"gradient_check of a gradient off by a factor 2 is {bad}, not large."

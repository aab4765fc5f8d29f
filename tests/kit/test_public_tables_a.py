"""The public tests of sgd, autograd and regularization read literal tables (`*_EXAMPLE` in
tests/public/_mistakes_<topic>.py): tests/public/ ships to students, and the formulas that
would compute those numbers are the exercises' answers, so they live in the hidden oracles
(tests/hidden/_oracles_<topic>.py). Every number of every table is checked here against what
those oracles and recognisers compute for the table's own inputs, and each table names the
same mistakes, in the same order, as the recogniser the hidden tests use, so the two cannot
drift apart."""

from __future__ import annotations

import math

import pytest
import torch

from grader.checks import RecognisedMistake
from tests.hidden import _oracles_autograd as OA
from tests.hidden import _oracles_regularization as OR
from tests.hidden import _oracles_sgd as OS
from tests.kit.tables import assert_checked, assert_literal, assert_mistakes, assert_value
from tests.public import _mistakes_autograd as PA
from tests.public import _mistakes_regularization as PR
from tests.public import _mistakes_sgd as PS

F64 = torch.float64
# one float64 number computed two ways (a LAPACK solve, a sum in another order) may differ in
# its last bits between machines
FLOAT64_ATOL = 1e-12
# a difference quotient divides f's last bit (a few 1e-15 here) by 2 eps (2e-6 at the least),
# about 2e-9: far below the 1e-6 to which the public tests compare numerical gradients
FINITE_DIFFERENCE_ATOL = 1e-8


# --------------------------------------------------------------------------- sgd


def test_sgd_linreg_table():
    example = PS.LINREG_EXAMPLE
    X, w, b = example["X"], example["w"], example["b"]
    assert_literal(example["expected"], OS.linreg64(X, w, b), "LINREG_EXAMPLE")
    assert_mistakes(example["mistakes"], OS.linreg_mistakes(X, w), "LINREG_EXAMPLE")


@pytest.mark.parametrize("name", ["SQUARED_LOSS_COLUMN_EXAMPLE", "SQUARED_LOSS_FLAT_EXAMPLE"])
def test_sgd_squared_loss_tables(name):
    example = getattr(PS, name)
    y_hat, y = example["y_hat"], example["y"]
    assert_literal(example["expected"], OS.squared_loss64(y_hat, y), name)
    assert_mistakes(example["mistakes"], OS.loss_mistakes(y_hat, y), name)


def test_sgd_table():
    example = PS.SGD_EXAMPLE
    values, grads, lr, n = (example[k] for k in ("values", "grads", "lr", "batch_size"))
    expected = OS.sgd_expected(values, grads, lr, n)
    assert len(example["expected"]) == len(example["mistakes"]) == len(values)
    for i, (literal, want) in enumerate(zip(example["expected"], expected, strict=True)):
        assert_literal(literal, want, f"SGD_EXAMPLE parameter {i}")
        assert_mistakes(example["mistakes"][i], OS.sgd_mistakes(values, grads, lr, n, i),
                        f"SGD_EXAMPLE parameter {i}")


def test_sgd_closed_form_table():
    """The data is noise-free (y = X w + b), so the least-squares fit is the table's w and b;
    the no-bias mistake is the fit without the column of ones."""
    example = PS.CLOSED_FORM_EXAMPLE
    X, y, w, b = example["X"], example["y"], example["w"], example["b"]
    assert_literal(y, OS.linreg64(X, w, b), "CLOSED_FORM_EXAMPLE y")
    theta, _ = OS.least_squares(X, y)
    assert_literal(torch.cat([w.reshape(-1), b]), theta.reshape(-1), "CLOSED_FORM_EXAMPLE fit",
                   FLOAT64_ATOL)
    assert_mistakes(example["mistakes_w"], {
        PS.CLOSED_FORM_NO_BIAS: OS.least_squares(X, y, bias=False)[0]}, "CLOSED_FORM_EXAMPLE w",
        FLOAT64_ATOL)
    assert_mistakes(example["mistakes_b"], {PS.CLOSED_FORM_B_ZERO: torch.zeros_like(b)},
                    "CLOSED_FORM_EXAMPLE b")


def test_sgd_descent_table():
    example = PS.DESCENT_EXAMPLE
    f, x0, lr, n = (example[k] for k in ("f", "x0", "lr", "num_steps"))
    expected, size = OS.descend(f, x0, lr, n)
    assert_literal(example["expected"], expected, "DESCENT_EXAMPLE")
    assert math.isclose(example["scale"], 4 * size + 1, rel_tol=1e-12), (example["scale"], size)
    assert_mistakes(example["mistakes"], OS.descent_mistakes(f, x0, lr, n), "DESCENT_EXAMPLE")


def test_sgd_every_table_is_checked():
    assert_checked(PS, {"LINREG_EXAMPLE", "SQUARED_LOSS_COLUMN_EXAMPLE",
                        "SQUARED_LOSS_FLAT_EXAMPLE", "SGD_EXAMPLE", "CLOSED_FORM_EXAMPLE",
                        "DESCENT_EXAMPLE"})


# --------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("name", ["NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE",
                                  "NUMERICAL_DERIVATIVE_CENTRAL_EXAMPLE",
                                  "NUMERICAL_DERIVATIVE_E_EXAMPLE"])
def test_autograd_numerical_derivative_tables(name):
    """The mistakes are the recogniser's, and the right answer, the central difference, lies
    well within the test's tolerance of the table's expected value (the true derivative, or
    the central difference itself)."""
    example = getattr(PA, name)
    f, x, h = example["f"], example["x"], example["h"]
    assert_mistakes(example["mistakes"], OA.derivative_mistakes(f, x, h), name)
    assert abs(OA.central_derivative(f, x, h) - example["expected"]) <= example["tol"] / 10, name


@pytest.mark.parametrize("name", ["NUMERICAL_GRADIENT_SQUARES_EXAMPLE",
                                  "NUMERICAL_GRADIENT_CUBES_EXAMPLE",
                                  "NUMERICAL_GRADIENT_UNCHANGED_EXAMPLE",
                                  "NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE"])
def test_autograd_numerical_gradient_tables(name):
    """The expected gradient is autograd's; the central differences of the table's eps lie
    within the test's atol of it; the mistakes are the recogniser's."""
    example = getattr(PA, name)
    f, x, eps = example["f"], example["x"], example["eps"]
    assert_literal(example["expected"], OA.autograd_oracle(f, x), name)
    assert_literal(example["expected"], OA.central_difference(f, x, eps), f"{name}, central",
                   example["atol"])
    assert_mistakes(example["mistakes"], OA.gradient_mistakes(f, x, eps), name,
                    FINITE_DIFFERENCE_ATOL)
    assert x.is_contiguous() == (name != "NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE"), name


@pytest.mark.parametrize("name", ["VJP_SQUARE_EXAMPLE", "VJP_POLYNOMIAL_EXAMPLE",
                                  "VJP_CUSTOM_FUNCTION_EXAMPLE"])
def test_autograd_vjp_tables(name):
    example = getattr(PA, name)
    f, x, v = example["f"], example["x"], example["v"]
    J = OA.jacobian(f, x)
    assert_literal(example["expected"], OA.vjp_oracle(J, v, x), name)
    assert_mistakes(example["mistakes"], OA.vjp_mistakes(J, v.double().reshape(-1), x.shape),
                    name)


@pytest.mark.parametrize("name", ["DETACHED_EXAMPLE", "DETACHED_MATRIX_EXAMPLE"])
def test_autograd_detached_tables(name):
    """The gradient of sum(u * x) with u = (x * x).detach() is u."""
    example = getattr(PA, name)
    x = example["x"]
    assert_literal(example["expected"], x.double() * x.double(), name)
    assert_mistakes(example["mistakes"], OA.detached_mistakes(x), name)


@pytest.mark.parametrize("name", ["CONTROL_FLOW_SMALL_EXAMPLE", "CONTROL_FLOW_NEGATIVE_EXAMPLE",
                                  "CONTROL_FLOW_LARGE_EXAMPLE"])
def test_autograd_control_flow_tables(name):
    """control_flow_f(a) = k a, so its gradient (of the sum) is k everywhere; the recogniser
    takes k as the power of two of the loop and the sign of the sum."""
    example = getattr(PA, name)
    a = example["a"]
    k = OA.exact_control_flow_factor(a)
    positive = float(a.double().sum()) > 0
    assert_literal(example["expected"], a.double() * k, name)
    assert_literal(example["gradient"], torch.full_like(a, k, dtype=F64), f"{name}, gradient")
    assert_mistakes(example["mistakes"], OA.control_flow_mistakes(
        a, k if positive else k / 100, positive), name)


@pytest.mark.parametrize("name", ["CONTROL_FLOW_NORM_BOUNDARY_EXAMPLE",
                                  "CONTROL_FLOW_SUM_BOUNDARY_EXAMPLE"])
def test_autograd_control_flow_boundary_tables(name):
    for i, point in enumerate(getattr(PA, name)["points"]):
        a = torch.tensor(point["a"], dtype=F64)
        assert_value(point["k"], OA.exact_control_flow_factor(a), f"{name} point {i}")
        assert_mistakes(point["mistakes"], OA.boundary_mistakes(a), f"{name} point {i}")


def test_autograd_gradient_check_table():
    """The contract's relative error with the table's eps, and with the default eps: there
    the central differences are rounding alone (about 1e-10), which the test only compares
    with a thousandth of the first, so it is checked to 1e-8."""
    example = PA.GRADIENT_CHECK_EPS_EXAMPLE
    f, x = example["f"], example["x"]
    expected = OA.contract_relative_error(f, x, example["eps"])
    assert math.isclose(example["expected"], expected, rel_tol=1e-9), (example, expected)
    assert_value(example["default"], OA.contract_relative_error(f, x, 1e-6),
                 "GRADIENT_CHECK_EPS_EXAMPLE default", 1e-8)


def test_autograd_every_table_is_checked():
    assert_checked(PA, {
        "NUMERICAL_DERIVATIVE_QUADRATIC_EXAMPLE", "NUMERICAL_DERIVATIVE_CENTRAL_EXAMPLE",
        "NUMERICAL_DERIVATIVE_E_EXAMPLE", "NUMERICAL_GRADIENT_SQUARES_EXAMPLE",
        "NUMERICAL_GRADIENT_CUBES_EXAMPLE", "NUMERICAL_GRADIENT_UNCHANGED_EXAMPLE",
        "NUMERICAL_GRADIENT_TRANSPOSED_EXAMPLE", "VJP_SQUARE_EXAMPLE", "VJP_POLYNOMIAL_EXAMPLE",
        "VJP_CUSTOM_FUNCTION_EXAMPLE", "DETACHED_EXAMPLE", "DETACHED_MATRIX_EXAMPLE",
        "CONTROL_FLOW_SMALL_EXAMPLE", "CONTROL_FLOW_NEGATIVE_EXAMPLE",
        "CONTROL_FLOW_LARGE_EXAMPLE", "CONTROL_FLOW_NORM_BOUNDARY_EXAMPLE",
        "CONTROL_FLOW_SUM_BOUNDARY_EXAMPLE", "GRADIENT_CHECK_EPS_EXAMPLE"})


# --------------------------------------------------------------------------- regularization


@pytest.mark.parametrize("name", ["POLY_EXAMPLE", "POLY_COLUMN_EXAMPLE"])
def test_regularization_poly_tables(name):
    example = getattr(PR, name)
    x, degree = example["x"], example["max_degree"]
    assert_literal(example["expected"], OR.powers64(x, range(degree)), name)
    assert_mistakes(example["mistakes"], OR.poly_mistakes(x, degree), name)


def test_regularization_l2_penalty_table():
    example = PR.L2_PENALTY_EXAMPLE
    w = example["w"]
    assert_literal(example["expected"], OR.l2_penalty64(w), "L2_PENALTY_EXAMPLE")
    assert_mistakes(example["mistakes"], OR.penalty_mistakes(w), "L2_PENALTY_EXAMPLE")


def test_regularization_orthogonal_batch():
    """The labels are X [1, -2, 0.5] + 3, and one step with lr = 1 / (1 + lambd) lands on
    (lr X^T y / 8, lr mean(y)) from w = 0 and from the drawn start alike, as
    check_forgets_the_start expects."""
    X, y = PR.ORTHOGONAL_BATCH
    assert torch.equal(X, PR.orthogonal_batch(3))
    assert_literal(y, OS.linreg64(X, torch.tensor([[1.0], [-2.0], [0.5]]), torch.tensor([3.0])),
                   "ORTHOGONAL_BATCH y")
    lambd = PR.RIDGE_ONE_STEP_EXAMPLE["lambd"]
    assert PR.RIDGE_ONE_STEP_EXAMPLE["batch"] is PR.ORTHOGONAL_BATCH
    lr = 1 / (1 + lambd)
    landed = torch.cat([lr * X.double().T @ y.double() / 8, lr * y.double().mean().reshape(1, 1)])
    for start in (None, PR.drawn_start(3)):
        w, b, _ = OR.ridge_sgd([(X, y)], 3, lambd, 1, lr, start=start)
        assert_literal(landed, torch.cat([w, b.reshape(1, 1)]), "one step", FLOAT64_ATOL)


def test_regularization_ridge_bias_table():
    """The table names the b of two of the recogniser's mistakes, which agree on this batch:
    the penalised bias and one epoch only (its message names both)."""
    example = PR.RIDGE_BIAS_EXAMPLE
    problem = ([example["batch"]], 3, example["lambd"], example["num_epochs"], example["lr"])
    w, b, _ = OR.ridge_sgd(*problem)
    assert_literal(example["expected"][0], w, "RIDGE_BIAS_EXAMPLE w")
    assert_literal(example["expected"][1], b, "RIDGE_BIAS_EXAMPLE b")
    computed = OR.ridge_mistakes(problem, PR.drawn_start(3))
    for mistake in (PR.BIAS_PENALISED, PR.ONE_EPOCH):
        assert_mistakes(example["mistakes"], {PR.BIAS_OR_ONE_EPOCH: computed[mistake][1]},
                        "RIDGE_BIAS_EXAMPLE")


def test_regularization_ridge_two_sizes_table():
    example = PR.RIDGE_TWO_SIZES_EXAMPLE
    batches, n = example["batches"], example["num_inputs"]
    problem = (batches, n, example["lambd"], example["num_epochs"], example["lr"])
    for i, (X, y) in enumerate(batches):
        assert_literal(y, OS.linreg64(X, torch.tensor([[1.0], [-2.0], [0.5]]),
                                      torch.tensor([3.0])), f"RIDGE_TWO_SIZES_EXAMPLE y {i}")
    w, b, size = OR.ridge_sgd(*problem)
    assert_literal(example["expected"][0], w, "RIDGE_TWO_SIZES_EXAMPLE w")
    assert_literal(example["expected"][1], b, "RIDGE_TWO_SIZES_EXAMPLE b")
    assert math.isclose(example["expected"][2], size, rel_tol=1e-12)
    computed = OR.ridge_mistakes(problem, PR.drawn_start(n))
    assert list(example["mistakes"]) == list(computed)
    for message, (wrong_w, wrong_b, _) in computed.items():
        literal_w, literal_b = example["mistakes"][message]
        assert_literal(literal_w, wrong_w, f"RIDGE_TWO_SIZES_EXAMPLE {message[:40]!r} w")
        assert_literal(literal_b, wrong_b, f"RIDGE_TWO_SIZES_EXAMPLE {message[:40]!r} b")


@pytest.mark.parametrize("mistake", ["BIAS_PENALISED", "ONE_EPOCH"])
def test_check_ridge_names_the_mistake_whose_w_and_b_both_match(mistake):
    """On the two-sizes table a penalised bias and one epoch only leave the same w: the
    mistake named is the one whose b matches too (a loop that reads its data once was told
    its bias was penalised)."""
    example = PR.RIDGE_TWO_SIZES_EXAMPLE
    message = getattr(PR, mistake)
    w, b = example["mistakes"][message]
    with pytest.raises(RecognisedMistake) as e:
        PR.check_ridge(w.clone(), b.clone(), example["expected"], example["mistakes"], "w", 4)
    assert e.value.mistake == message


def test_regularization_every_table_is_checked():
    assert_checked(PR, {"POLY_EXAMPLE", "POLY_COLUMN_EXAMPLE", "L2_PENALTY_EXAMPLE",
                        "RIDGE_ONE_STEP_EXAMPLE", "RIDGE_BIAS_EXAMPLE",
                        "RIDGE_TWO_SIZES_EXAMPLE"})

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

from tests.hidden import _oracles_sgd as OS
from tests.public import _mistakes_sgd as PS

# a least-squares solve's last bits may differ between machines' LAPACK
SOLVER_ATOL = 1e-12


def assert_literal(literal: torch.Tensor, computed: torch.Tensor, what: str,
                   atol: float | None = None) -> None:
    """`literal` (from a table) is `computed` rounded to the literal's dtype, exactly (the
    oracles are float64 formulas rounded once), or within `atol` where the oracle's last bits
    depend on the machine."""
    assert isinstance(literal, torch.Tensor), what
    assert tuple(literal.shape) == tuple(computed.shape), (what, literal.shape, computed.shape)
    want = computed.detach().to(literal.dtype)
    same = (torch.equal(literal, want) if atol is None else
            bool(((literal.double() - want.double()).abs() <= atol).all()))
    assert same, f"{what}: the table has {literal.tolist()}, the oracle {want.tolist()}"


def assert_mistakes(table: dict, computed: dict, what: str, atol: float | None = None) -> None:
    """The table names the recogniser's mistakes, in its order (the first match is the one a
    test names), each with the recogniser's value."""
    assert list(table) == list(computed), (what, [m[:40] for m in table],
                                           [m[:40] for m in computed])
    for message, wrong in computed.items():
        assert_literal(table[message], wrong, f"{what}, mistake {message[:40]!r}", atol)


def assert_checked(module, checked: set[str]) -> None:
    """Every table of `module` is one of `checked`: a table added without a check fails."""
    assert {n for n in dir(module) if n.endswith("_EXAMPLE")} == checked


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
                   SOLVER_ATOL)
    assert_mistakes(example["mistakes_w"], {
        PS.CLOSED_FORM_NO_BIAS: OS.least_squares(X, y, bias=False)[0]}, "CLOSED_FORM_EXAMPLE w",
        SOLVER_ATOL)
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

"""Checks of the public tests' literal tables (`*_EXAMPLE` in tests/public/_mistakes_*.py)
against the hidden oracles that computed them: each number, and the mistakes each table
names, in the order of the hidden recogniser (the first match is the one a test names)."""

from __future__ import annotations

import torch


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


def assert_value(literal, computed, what: str, atol: float | None = None) -> None:
    """assert_literal for a tensor; for a Python float, the same rule: equal, or within atol."""
    if isinstance(literal, torch.Tensor):
        assert_literal(literal, computed, what, atol)
        return
    assert isinstance(literal, float), what
    same = literal == computed if atol is None else abs(literal - computed) <= atol
    assert same, f"{what}: the table has {literal!r}, the oracle {computed!r}"


def assert_mistakes(table: dict, computed: dict, what: str, atol: float | None = None) -> None:
    """The table names the recogniser's mistakes, in its order (the first match is the one a
    test names), each with the recogniser's value."""
    assert list(table) == list(computed), (what, [m[:40] for m in table],
                                           [m[:40] for m in computed])
    for message, wrong in computed.items():
        assert_value(table[message], wrong, f"{what}, mistake {message[:40]!r}", atol)


def assert_checked(module, checked: set[str]) -> None:
    """Every table of `module` is one of `checked`: a table added without a check fails."""
    assert {n for n in dir(module) if n.endswith("_EXAMPLE")} == checked

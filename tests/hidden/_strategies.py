"""Hypothesis strategies shared by every topic's tests (minitorch style: one module).

Tensors are drawn from a seeded torch generator (fast, reproducible) with a drawn dtype,
magnitude and memory layout: non-contiguous and offset inputs are drawn on purpose, because
`view` on a transposed tensor or a hard-coded stride is a real student bug. What the contract
allows is drawn too (`../shared/curriculum.md`, conventions for every topic): entries of both
signs in rows whose sums are positive, expanded views (stride 0), batch sizes that divide the
number of examples exactly and ones that do not. (The data iterators tests hand to student code,
one-shot and re-iterable, are torchdrill.callables' OneShotBatches and ReiterableBatches.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hypothesis import settings
from hypothesis import strategies as st

LAYOUTS = ("contiguous", "transposed", "strided", "offset")
# an expanded view repeats its first row (stride 0 along dim 0): for inputs whose rows may be
# equal, drawn with layouts(expanded=True)
EXPANDED = "expanded"
MAGNITUDES = (1.0, 10.0, 100.0, 1e3, 1e4)


def dtypes() -> st.SearchStrategy[torch.dtype]:
    """float32 (the default in the course) or float64 (the caller's dtype must be kept)."""
    return st.sampled_from([torch.float32, torch.float64])


def layouts(expanded: bool = False) -> st.SearchStrategy[str]:
    """Memory layouts, the expanded view (which repeats the first row) only when asked."""
    return st.sampled_from(LAYOUTS + ((EXPANDED,) if expanded else ()))


def with_layout(X: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as `X` in another memory layout (a view into a larger storage); for
    `expanded`, X's first row (along dim 0) repeated as a stride-0 view of X's shape."""
    if layout == "contiguous" or X.dim() == 0:
        return X.contiguous()
    if layout == EXPANDED:
        return X[:1].clone().expand(X.shape)
    if layout == "transposed" and X.dim() >= 2:
        out = torch.empty(X.transpose(-1, -2).shape, dtype=X.dtype).transpose(-1, -2)
    elif layout in ("strided", "transposed"):
        wide = list(X.shape)
        wide[-1] *= 2
        out = torch.empty(wide, dtype=X.dtype)[..., ::2]
    elif layout == "offset":
        out = torch.empty(X.numel() + 3, dtype=X.dtype)[3:].view(X.shape)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    out.copy_(X)
    return out


def random_tensor(
    shape: Sequence[int],
    seed: int,
    dtype: torch.dtype = torch.float32,
    magnitude: float = 1.0,
    distribution: str = "normal",
) -> torch.Tensor:
    """A seeded tensor: `normal` (N(0, magnitude^2)), `uniform` (U(-magnitude, magnitude)),
    `positive` (U(0.1, 1) * magnitude) or `positive_sum` (entries of both signs up to about
    magnitude, every row (last axis) summing to between 1/5 and 1 of its absolute sum: a row
    the contract calls positive)."""
    g = torch.Generator().manual_seed(seed)
    if distribution == "positive_sum":
        X = torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 2 - 1
        share = 0.25 + 0.75 * torch.rand((*shape[:-1], 1), generator=g, dtype=torch.float64)
        centred = X - X.mean(-1, keepdim=True)
        X = (centred + share * centred.abs().mean(-1, keepdim=True).clamp_min(0.1)) * magnitude
    elif distribution == "normal":
        X = torch.randn(tuple(shape), generator=g, dtype=torch.float64) * magnitude
    elif distribution == "uniform":
        X = (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 2 - 1) * magnitude
    elif distribution == "positive":
        X = (torch.rand(tuple(shape), generator=g, dtype=torch.float64) * 0.9 + 0.1) * magnitude
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    return X.to(dtype)


@st.composite
def tensors(
    draw,
    shape: Sequence[int] | st.SearchStrategy,
    dtype: torch.dtype | st.SearchStrategy | None = None,
    magnitude: float | st.SearchStrategy = 1.0,
    layout: str | st.SearchStrategy | None = None,
    distribution: str = "normal",
) -> torch.Tensor:
    """A float tensor of `shape`, with drawn dtype and layout unless given."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    dtype = draw(dtype if isinstance(dtype, st.SearchStrategy) else dtypes()) if (
        dtype is None or isinstance(dtype, st.SearchStrategy)
    ) else dtype
    magnitude = draw(magnitude) if isinstance(magnitude, st.SearchStrategy) else magnitude
    layout = draw(layout if isinstance(layout, st.SearchStrategy) else layouts()) if (
        layout is None or isinstance(layout, st.SearchStrategy)
    ) else layout
    seed = draw(st.integers(0, 2**31 - 1))
    return with_layout(random_tensor(shape, seed, dtype, magnitude, distribution), layout)


def shapes(
    rows: tuple[int, int] = (1, 9), cols: tuple[int, int] = (1, 9)
) -> st.SearchStrategy[tuple[int, int]]:
    """2-D shapes, square and non-square."""
    return st.tuples(st.integers(*rows), st.integers(*cols))


def matrices(
    rows: tuple[int, int] = (1, 9),
    cols: tuple[int, int] = (1, 9),
    dtype: torch.dtype | None = None,
    magnitude: float | st.SearchStrategy = 1.0,
    layout: str | None = None,
    distribution: str = "normal",
) -> st.SearchStrategy[torch.Tensor]:
    return tensors(shapes(rows, cols), dtype=dtype, magnitude=magnitude, layout=layout,
                   distribution=distribution)


def magnitudes(largest: float = 1e4) -> st.SearchStrategy[float]:
    """Input magnitudes up to `largest`, the huge ones included (stability tests)."""
    return st.sampled_from([m for m in MAGNITUDES if m <= largest])


def batch_sizes(n: int) -> st.SearchStrategy[int]:
    """Batch sizes for n examples: a divisor of n (the last batch full: a loop must not yield
    an empty one after it) or any size from 1 to n + 3 (a smaller last batch, or one batch)."""
    divisors = [b for b in range(1, n + 1) if n % b == 0]
    return st.one_of(st.sampled_from(divisors), st.integers(1, n + 3))


@st.composite
def labels(draw, n: int, num_classes: int) -> torch.Tensor:
    """int64 class labels `(n,)` in [0, num_classes)."""
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_classes, (n,), generator=g)


def max_examples(at_least: int | None = None, at_most: int | None = None) -> settings:
    """`@max_examples(...)`: the loaded profile's max_examples, raised to `at_least` and capped
    at `at_most`. The grading profile's own number is the floor every test gets; `at_least` is
    what a test needs to catch the variants suite's mistakes with margin, as measured by
    `python -m tests.kit.examples_needed`; `at_most` caps a test too costly to run 300 times in
    an instructor's "thorough" run, which otherwise keeps its own number. (A plain
    `@settings(max_examples=n)` would fix n under every profile.) Read when the test module is
    imported, after pytest_configure has loaded the profile."""
    n = settings().max_examples  # the loaded profile's
    n = max(n, at_least) if at_least is not None else n
    return settings(max_examples=min(n, at_most) if at_most is not None else n)

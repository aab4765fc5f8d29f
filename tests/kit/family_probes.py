"""The dispatcher guard's families, derived: for each family, probes whose oracle is the
family's result (softmax of a matrix, a matmul, a 2-D correlation...), run over every operator
in every namespace by `tests.kit.operator_search`; then each operator found is called again
under the guard, armed as each course function that forbids the family arms it, and must be
refused.

A probe gives an operator the exercise's own inputs (and their negation or transpose, which a
student gets for free), plus a few crafted inputs where an operator is known to embed the
result (a CTC loss over a crafted alignment is a row's -logsumexp; a convolution's weight
gradient is a correlation). Operators that compute the result from a tensor the student builds
for it, when the contract allows that step (D2L's relu is `torch.max(X, zeros)`), are listed
as allowed, and must stay allowed.

`python -m tests.kit.family_probes` prints the findings as JSON (what
test_operator_families.py reads): it runs in a process of its own, as the search must.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from tests.kit import operator_search
from tests.kit.operator_search import Probe, engine, oracle, quantized

QUANTIZED_ENGINES = tuple(e for e in ("qnnpack", "x86", "onednn")
                          if e in torch.backends.quantized.supported_engines)

# The forbidden lists of the contract's topics not yet in course.toml (curriculum.md sections
# 9 and 10), so that their families are derived before the topics land.
CONTRACT_LISTS = {
    "regularization": ("F.dropout", "nn.Dropout", "torch.dropout", "F.alpha_dropout",
                       "F.feature_alpha_dropout", "torch.nn.functional.dropout*"),
    "conv": ("F.conv*", "nn.Conv*", "torch.conv*", "F.max_pool*", "F.avg_pool*",
             "F.adaptive_*pool*", "nn.MaxPool*", "nn.AvgPool*", "nn.AdaptiveMaxPool*",
             "nn.AdaptiveAvgPool*", "torch.max_pool*", "torch.avg_pool*", "torch.optim.*"),
}


@dataclass(frozen=True)
class Family:
    """A dispatcher family by one course name it answers for; its probes (built in the
    search process); operators that compute its result yet stay allowed, and why; operators
    the derivation must find (its plain spellings, which check the probes, and the attacks
    that showed an operator missing)."""

    name: str
    probes: Callable[[], list[Probe]]
    allowed: dict[str, str] = field(default_factory=dict)
    known: tuple[str, ...] = ()


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spread(*shape: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    """Distinct values of both signs, none near zero (so a relu or a dropout is visible)."""
    x = torch.randn(*shape, generator=_seeded(seed)) * scale
    return x + torch.sign(x) * 0.25


def _quantized_probes(label: str, tensors: tuple[torch.Tensor, ...],
                      matches: Callable[[np.ndarray], str | None], values: dict,
                      scalars: tuple = (), out_span: float = 1.0) -> list[Probe]:
    """The probe with its float tensors quantized (quint8), under each quantized engine,
    with an output scale that keeps `out_span`."""
    q = tuple(quantized(t) if t.is_floating_point() else t for t in tensors)
    scale = 2 * out_span / 255
    named = {"output_scale": (scale,), "output_zero_point": (128,), "scale": (scale,),
             "zero_point": (128,), "Y_scale_i": (scale,), "Y_zero_point_i": (128,), **values}
    return [Probe(f"{label} (quantized, {e})", q, matches, named, scalars, engine=e)
            for e in QUANTIZED_ENGINES]


def softmax_probes() -> list[Probe]:
    X = _spread(3, 5)
    n, q = X.shape
    targets = {}
    for d in (0, 1):
        for sign, Y in (("", X), ("-", -X)):
            targets[f"softmax({sign}X, {d})"] = torch.softmax(Y, d)
            targets[f"log_softmax({sign}X, {d})"] = torch.log_softmax(Y, d)
            targets[f"logsumexp({sign}X, {d})"] = torch.logsumexp(Y, d)
    matches = oracle(targets)
    pair = _spread(4, 2, seed=1)
    pair_matches = oracle({"logsumexp(X, 1) of two columns": torch.logsumexp(pair, 1),
                           "softmax(X, 1)[:, 0] of two columns": torch.softmax(pair, 1)[:, 0]})
    eye = torch.eye(q)
    # the attack: a label's log-probability X[i, t] at every other step, -inf between, blank 0
    log_probs = torch.zeros(2 * q, n, 2)
    log_probs[0::2, :, 1] = X.T
    log_probs[1::2, :, 1] = -math.inf
    labels = torch.ones(n, 1, dtype=torch.long)
    steps, ones = torch.full((n,), 2 * q), torch.ones(n, dtype=torch.long)
    ctc = {"blank": (0,), "reduction": (0,), "zero_infinity": (False,)}
    return [
        Probe("X", (X,), matches, {"dim": (1, 0)}),
        Probe("two columns as tensors", (pair[:, 0], pair[:, 1]), pair_matches),
        Probe("X as attention scores (q=X, k=v=I)", (X, eye, eye), matches, {"scale": (1.0,)}),
        Probe("CTC alignments (tensor lengths)", (log_probs, labels, steps, ones), matches, ctc),
        Probe("CTC alignments (int lengths)", (log_probs, labels), matches,
              {**ctc, "input_lengths": ([2 * q] * n,), "target_lengths": ([1] * n,)}),
        *_quantized_probes("X", (X,), oracle(targets, atol=0.05), {"dim": (1, 0)},
                           out_span=1.0),
    ]


def cross_entropy_probes() -> list[Probe]:
    X = _spread(4, 5)
    y = torch.tensor([0, 3, 1, 4])
    rows = torch.arange(4)
    P = torch.softmax(X, 1)
    per_example = torch.logsumexp(X, 1) - X[rows, y]
    log_P = torch.log_softmax(X, 1)
    targets = {"cross_entropy(X, y)": per_example, "cross_entropy(X, y).mean()": per_example.mean(),
               "cross_entropy(X, y).sum()": per_example.sum()}
    from_probabilities = -torch.log(P[rows, y])
    values = {"reduction": (0, 1), "dim": (1,)}
    return [
        Probe("logits, labels", (X, y), oracle(targets), values),
        Probe("probabilities, labels", (P, y), oracle(
            {"-log P[i, y]": from_probabilities, "mean": from_probabilities.mean()}), values),
        Probe("log-probabilities, labels", (log_P, y), oracle(targets), values),
    ]


def cdist_probes() -> list[Probe]:
    X, Y = _spread(4, 3), _spread(5, 3, seed=1)
    targets = {f"cdist(X, Y, {p})": torch.cdist(X, Y, p) for p in (2.0, 1.0)}
    targets["cdist(X, Y)**2"] = torch.cdist(X, Y) ** 2
    within = torch.cdist(X, X)
    upper = within[torch.triu(torch.ones(4, 4, dtype=torch.bool), 1)]
    return [Probe("X, Y", (X, Y), oracle(targets), {"p": (2.0, 1.0)}),
            Probe("X alone", (X,), oracle({"cdist(X, X)": within,
                                           "cdist(X, X) above the diagonal": upper}))]


def norm_probes() -> list[Probe]:
    x, A = _spread(7), _spread(3, 4, seed=1)
    targets = {f"||x||_{p}": torch.linalg.vector_norm(x, p) for p in (1.0, 2.0, 3.0)}
    targets |= {f"||x||_{p} ** {p}": x.abs().pow(p).sum() for p in (2.0, 3.0)}
    frobenius = {"||A||_F": torch.linalg.matrix_norm(A)}
    values = {"p": (2.0, 1.0, 3.0), "ord": (2.0, 1.0, 3.0), "dim": (None, (0,), 0)}
    return [Probe("x", (x,), oracle(targets), values),
            Probe("x and zeros", (x, torch.zeros_like(x)), oracle(targets), values),
            Probe("A", (A,), oracle(frobenius), {"p": ("fro", 2.0), "dim": (None, (0, 1))})]


def lstsq_probes() -> list[Probe]:
    A, B = _spread(6, 3), _spread(6, 2, seed=1)
    return [Probe("A, B", (A, B), oracle({"lstsq(A, B)": torch.linalg.lstsq(A, B).solution}))]


def linalg_probes() -> list[Probe]:
    """torch.linalg's own computations: decompositions, inverses, solves, determinants and
    matrix functions. Its aliases of plain tensor algebra (matmul, multi_dot, vecdot, cross,
    diagonal, vander) and its norms belong to the matmul and norm families, which the
    functions that forbid `torch.linalg.*` forbid by name where they need to."""
    la = torch.linalg
    M = _spread(4, 4, scale=0.3) + torch.eye(4)
    S = M @ M.T
    U = torch.triu(M)
    B = _spread(4, 2, seed=1)
    one = {"inv": la.inv, "det": la.det, "slogdet": lambda a: la.slogdet(a)[1],
           "pinv": la.pinv, "matrix_exp": la.matrix_exp, "svdvals": la.svdvals,
           "matrix_power 2": lambda a: la.matrix_power(a, 2),
           "matrix_power 3": lambda a: la.matrix_power(a, 3),
           "lu_factor": lambda a: la.lu_factor(a)[0], "qr R": lambda a: la.qr(a)[1],
           "qr Q": lambda a: la.qr(a)[0], "cond": la.cond}
    spd = {"cholesky": la.cholesky, "eigvalsh": la.eigvalsh}
    targets = {f"{name}(M)": f(M) for name, f in one.items()}
    targets |= {f"{name}(S)": f(S) for name, f in {**one, **spd}.items()}
    two = {"solve(M, B)": la.solve(M, B), "solve(S, B)": la.solve(S, B),
           "solve_triangular(U, B)": la.solve_triangular(U, B, upper=True),
           "cholesky_solve(B, L)": torch.cholesky_solve(B, la.cholesky(S))}
    values = {"n": (2, 3), "upper": (True, False), "dim": (None,)}
    return [Probe("M", (M,), oracle(targets), values),
            Probe("S", (S,), oracle(targets), values),
            Probe("U", (U,), oracle(targets | {"inv(U)": la.inv(U)}), values),
            Probe("M, B", (M, B), oracle(two), values),
            Probe("S, B", (S, B), oracle(two), values),
            Probe("B, U", (B, U), oracle(two), values),
            Probe("B, L", (B, la.cholesky(S)), oracle(two), values)]


def matmul_probes() -> list[Probe]:
    A, B = _spread(3, 4), _spread(4, 5, seed=1)
    v, w = _spread(4, seed=2), _spread(4, seed=3)
    product = A @ B
    targets = oracle({"A @ B": product, "(A @ B).T": product.T.contiguous()})
    vector = oracle({"A @ v": A @ v, "v . w": v @ w})
    Z = torch.zeros(3, 5)
    conv = {"stride": ([1],), "padding": ([0],), "dilation": ([1],), "output_padding": ([0],),
            "groups": (1,), "transposed": (False,)}
    named = {"equation": ("ij,jk->ik",), "dims_self": ([1],), "dims_other": ([0],),
             "attr": ("none",), "scalars": ([],), "algorithm": ("",), "dim": (0,)}
    rows = torch.arange(4).repeat(3)
    starts = torch.arange(0, 12, 4)
    bag = {"mode": (0,), "per_sample_weights": (A.flatten(),)}
    probes = [
        Probe("A, B", (A, B), targets, named),
        Probe("zeros, A, B", (Z, A, B), targets, named),
        Probe("A, B.T (a weight)", (A, B.T.contiguous()), targets, named),
        Probe("B, A", (B, A), targets, named),
        Probe("batched A, B", (A[None], B[None]), targets, named),
        Probe("zeros, batched A, B", (Z[None], A[None], B[None]), targets, named),
        Probe("A, v", (A, v), vector, named),
        Probe("zeros, A, v", (torch.zeros(3), A, v), vector, named),
        Probe("v, w", (v, w), vector, named),
        Probe("A as a 1-D signal, B as 1x1 kernels", (A.T[None].contiguous(),
                                                      B.T[:, :, None].contiguous()), targets,
              conv),
        Probe("B's rows in bags weighted by A", (B, rows, starts), targets, bag),
    ]
    qA, qB = quantized(A), quantized(B)
    span = float(product.abs().max())
    for e in QUANTIZED_ENGINES:
        with engine(e), contextlib.suppress(Exception):
            packed = torch.ops.quantized.linear_prepack(quantized(B.T.contiguous(), torch.qint8))
            probes.append(Probe(f"A, packed B (quantized, {e})", (qA,), oracle(
                {"A @ B": product}, atol=0.05 * span), {
                "<LinearPackedParamsBase>": (packed,), "Y_scale_i": (2 * span / 255,),
                "Y_zero_point_i": (128,)}, engine=e))
            probes.append(Probe(f"float A, packed B ({e})", (A,), oracle(
                {"A @ B": product}, atol=0.05 * span), {
                "<LinearPackedParamsBase>": (packed,)}, engine=e))
            probes += _quantized_probes("A, B", (qA.dequantize(), qB.dequantize()), oracle(
                {"A @ B": product}, atol=0.05 * span), {}, out_span=span)
    return probes


def one_hot_probes() -> list[Probe]:
    y = torch.tensor([2, 0, 3, 3, 1, 0])
    return [Probe("y", (y,), oracle({"one_hot(y, 4)": F.one_hot(y, 4)}), {"num_classes": (4,)})]


RELU_SCALARS = (0.0, 1.0, math.inf)


def relu_probes() -> list[Probe]:
    """relu(X) only: its negation, min(X, 0), is the other half of X, as allowed as max."""
    X = _spread(4, 5)
    matches = oracle({"relu(X)": torch.relu(X)}, negated=False)
    small = _spread(4, 5, scale=1.0) + torch.sign(_spread(4, 5)) * 0.25  # |x| >= 0.5, span ~3
    span = float(small.abs().max())
    quantized_matches = oracle({"relu(X)": torch.relu(small)}, atol=3 * 2 * span / 255,
                               negated=False)
    return [Probe("X", (X,), matches, scalars=RELU_SCALARS),
            Probe("X twice (as gradient and input)", (X, X), matches, scalars=RELU_SCALARS),
            Probe("X, zeros", (X, torch.zeros_like(X)), matches, scalars=RELU_SCALARS),
            *_quantized_probes("X", (small,), quantized_matches, {}, RELU_SCALARS,
                               out_span=span),
            *_quantized_probes("X, zeros", (small, torch.zeros_like(small)), quantized_matches,
                               {}, RELU_SCALARS, out_span=span)]


def clamp_probes() -> list[Probe]:
    X = _spread(4, 5)
    lo, hi = -0.5, 0.7
    matches = oracle({"clamp(X, lo, hi)": X.clamp(lo, hi), "clamp(X, min=lo)": X.clamp(min=lo),
                      "clamp(X, max=hi)": X.clamp(max=hi)})
    return [Probe("X", (X,), matches, scalars=(lo, hi)),
            *_quantized_probes("X", (X,), oracle({"clamp(X, lo, hi)": X.clamp(lo, hi)},
                                                 atol=0.1), {}, (lo, hi), out_span=1.0)]


def _dropped(X: torch.Tensor, p: float, atol: float = 0.0) -> Callable[[np.ndarray], str | None]:
    """An output is X with some elements zeroed and the rest divided by 1 - p."""
    kept = X.to(torch.float64).numpy() / (1 - p)
    tol = atol + 1e-5 * float(np.abs(kept).max())

    def matches(out: np.ndarray) -> str | None:
        if out.shape != kept.shape:
            return None
        zero = np.abs(out) <= tol
        if not bool((zero | (np.abs(out - kept) <= tol)).all()):
            return None
        return f"dropout(X, {p})" if 0.2 < float(zero.mean()) < 0.8 else None
    return matches


def dropout_probes() -> list[Probe]:
    X = _spread(16, 24)
    values = {"p": (0.5,), "train": (True,), "training": (True,)}
    span = float(X.abs().max()) * 2
    return [Probe("X", (X,), _dropped(X, 0.5), values),
            *_quantized_probes("X", (X,), _dropped(X, 0.5, atol=4 * span / 255), values,
                               out_span=span)]


def _corr(X: torch.Tensor, K: torch.Tensor, full: bool = False) -> torch.Tensor:
    """Cross-correlation of one-channel X with K, valid (or full: zero-padded)."""
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[K.dim()]
    padding = tuple(k - 1 for k in K.shape) if full else 0
    return conv(X[None, None], K[None, None], padding=padding)[0, 0]


def _conv_targets(X: torch.Tensor, K: torch.Tensor) -> Callable[[torch.Tensor], str | None]:
    flipped = K.flip(tuple(range(K.dim())))
    return oracle({"corr(X, K)": _corr(X, K), "corr(X, flipped K)": _corr(X, flipped),
                   "full corr(X, K)": _corr(X, K, True),
                   "full corr(X, flipped K)": _corr(X, flipped, True)})


def _conv_values(dims: int, kernel: tuple[int, ...]) -> dict:
    return {"stride": ([1] * dims,), "padding": ([0] * dims,), "dilation": ([1] * dims,),
            "output_padding": ([0] * dims,), "groups": (1,), "transposed": (False,),
            "kernel_size": (list(kernel),), "benchmark": (False,), "deterministic": (False,),
            "cudnn_enabled": (False,), "allow_tf32": (False,)}


def conv_probes() -> list[Probe]:
    probes = []
    for shape, kernel, seed in (((6, 7), (2, 3), 0), ((9,), (3,), 1), ((3, 4, 5), (2, 2, 3), 2)):
        X, K = _spread(*shape, seed=seed), _spread(*kernel, seed=seed + 10)
        matches, values = _conv_targets(X, K), _conv_values(len(shape), kernel)
        probes += [Probe(f"{len(shape)}-D X, K", (X[None, None], K[None, None]), matches, values),
                   Probe(f"{len(shape)}-D X, K unbatched", (X[None], K[None, None]), matches,
                         values)]
    X, K = _spread(6, 7), _spread(2, 3, seed=10)
    matches, values = _conv_targets(X, K), _conv_values(2, (2, 3))
    weight = torch.zeros(1, 1, *_corr(X, K).shape)
    probes.append(Probe("weight gradient: K as the output's gradient, X as input",
                        (K[None, None], X[None, None], weight), matches,
                        {**values, "bias_sizes": (None,), "output_mask": ([True, True, True],)}))
    probes.append(Probe("deformable, with zero offsets", (
        X[None, None], K[None, None], torch.zeros(1, 2 * 6, 5, 5), torch.ones(1, 6, 5, 5),
        torch.zeros(1)), matches, {
        "stride_h": (1,), "stride_w": (1,), "pad_h": (0,), "pad_w": (0,), "dilation_h": (1,),
        "dilation_w": (1,), "groups": (1,), "offset_groups": (1,), "use_mask": (False, True)}))
    span = float(_corr(X, K).abs().max())
    for e in QUANTIZED_ENGINES:
        with engine(e), contextlib.suppress(Exception):
            packed = torch.ops.quantized.conv2d_prepack(
                quantized(K[None, None], torch.qint8), None, [1, 1], [0, 0], [1, 1], 1)
            probes.append(Probe(f"2-D X, packed K (quantized, {e})", (quantized(X[None, None]),),
                                oracle({"corr(X, K)": _corr(X, K)}, atol=0.05 * span),
                                {**values, "<Conv2dPackedParamsBase>": (packed,),
                                 "output_scale": (2 * span / 255,), "output_zero_point": (128,)},
                                engine=e))
    return probes


def _windows(X: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Every (window)-sized window of X at stride 1: (rows, cols, *window)."""
    return X.unfold(0, window[0], 1).unfold(1, window[1], 1)


def pool_probes() -> list[Probe]:
    probes = []
    for window, seed in (((2, 3), 0), ((2, 2), 1)):
        X = _spread(6, 7, seed=seed)
        cells = _windows(X, window)
        strided = cells[::window[0], ::window[1]]
        matches = oracle({f"max pool {window}": cells.amax((-2, -1)),
                          f"avg pool {window}": cells.mean((-2, -1)),
                          f"max pool {window}, stride {window}": strided.amax((-2, -1)),
                          f"avg pool {window}, stride {window}": strided.mean((-2, -1))})
        out = list(cells.shape[:2])
        values = {"kernel_size": (list(window),), "stride": ([1, 1], []), "padding": ([0, 0],),
                  "dilation": ([1, 1],), "ceil_mode": (False,), "count_include_pad": (True,),
                  "output_size": (out,)}
        probes += [Probe(f"X {window}", (X[None, None],), matches, values),
                   Probe(f"X {window} unbatched", (X[None],), matches, values),
                   Probe(f"X {window}, zero samples", (X[None, None], torch.zeros(1, 1, 2)),
                         matches, values),
                   *_quantized_probes(f"X {window}", (X[None, None],), oracle(
                       {f"max pool {window}": cells.amax((-2, -1)),
                        f"avg pool {window}": cells.mean((-2, -1))}, atol=0.2), values,
                       out_span=float(X.abs().max()))]
        if window == (2, 2):
            boxes = torch.tensor([[0, j, i, j + 1, i + 1] for i in range(out[0])
                                  for j in range(out[1])], dtype=torch.float32)
            probes.append(Probe("X, a box per window", (X[None, None], boxes), matches, {
                "spatial_scale": (1.0,), "pooled_height": (1,), "pooled_width": (1,),
                "sampling_ratio": (2,), "aligned": (True,)}))
    return probes


FAMILIES = (
    Family("torch.softmax", softmax_probes,
           known=("aten::ctc_loss", "aten::_ctc_loss", "aten::_safe_softmax",
                  "quantized::softmax", "aten::logcumsumexp")),
    Family("torch.nn.functional.cross_entropy", cross_entropy_probes,
           known=("aten::cross_entropy_loss", "aten::nll_loss")),
    Family("torch.cdist", cdist_probes, known=("aten::cdist", "aten::pdist")),
    Family("torch.norm", norm_probes, known=("aten::norm", "aten::dist")),
    Family("torch.linalg.lstsq", lstsq_probes, known=("aten::linalg_lstsq",)),
    Family("torch.linalg.*", linalg_probes, known=("aten::linalg_inv", "aten::det")),
    Family("torch.matmul", matmul_probes,
           known=("aten::mm", "aten::addmm", "aten::linear", "aten::einsum",
                  "aten::conv1d", "quantized::linear")),
    Family("torch.nn.functional.one_hot", one_hot_probes, known=("aten::one_hot",)),
    Family("torch.relu", relu_probes,
           allowed={op: "D2L's relu is torch.max(X, zeros): the max of two tensors is the "
                        "exercise's own step" for op in (
                            "aten::maximum", "aten::max", "aten::fmax", "prims::maximum",
                            "prims::fmax")},
           known=("aten::relu", "aten::threshold", "aten::leaky_relu", "aten::hardtanh",
                  "aten::threshold_backward")),
    Family("torch.clamp", clamp_probes, known=("aten::clamp", "aten::clip")),
    Family("torch.nn.functional.dropout", dropout_probes,
           known=("aten::dropout", "aten::native_dropout")),
    Family("torch.nn.functional.conv2d", conv_probes,
           known=("aten::conv2d", "aten::convolution", "aten::convolution_backward",
                  "aten::conv_transpose2d", "quantized::conv2d")),
    Family("torch.nn.functional.max_pool2d", pool_probes,
           known=("aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_max_pool2d",
                  "aten::adaptive_avg_pool2d")),
)


def forbidding_lists(family: str) -> dict[str, tuple[str, ...]]:
    """Each forbidden list (course.toml's, or the contract's for topics not there yet) that
    arms `family`, by where it applies (`softmax`, `tensor_ops.matmul`)."""
    from grader.course import load_course
    from grader.sandbox import dispatch_guard

    wanted = set(dispatch_guard.operators((family,)))
    lists: dict[tuple[str, ...], str] = {}
    course = load_course()
    for topic in course.topics:
        for where, names in [(topic.name, topic.forbidden), *(
                (f"{topic.name}.{f}", topic.forbidden_for(f)) for f in topic.functions)]:
            if names and wanted <= set(dispatch_guard.operators(tuple(names))):
                lists.setdefault(tuple(names), where)
    found = {where: names for names, where in lists.items()}
    topics = {t.name for t in course.topics}
    for topic, names in CONTRACT_LISTS.items():
        if topic not in topics and wanted <= set(dispatch_guard.operators(names)):
            found[f"{topic} (contract)"] = names
    return found


def _refused(hit: operator_search.Found, names: tuple[str, ...]) -> bool | str:
    """Whether the guard, armed with `names`, refuses the call `hit` found (and records it);
    the error's text if the call fails otherwise."""
    from grader.sandbox import dispatch_guard
    from grader.sandbox.forbidden import ForbiddenCallError, GuardState

    state = GuardState({}, "probe")
    dispatch_guard.arm(names, state)  # registers once per list: the same names keep the kernels
    try:
        hit.call()
        return False
    except ForbiddenCallError:
        return bool(state.hits)
    except Exception as e:  # noqa: BLE001 - reported: the call fails for another reason
        return f"{type(e).__name__}: {e}"[:200]
    finally:
        dispatch_guard.release()


def main() -> None:
    """Search every family's probes over every operator, then call each operator found under
    the guard armed with each list that forbids its family; print the findings as JSON."""
    from grader.sandbox import dispatch_guard
    from grader.sandbox.lazy import WORKER_LAZY_MODULES, import_lazy_modules

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import_lazy_modules((*WORKER_LAZY_MODULES, "torchvision"))  # as a submission may
    operators = [q for q in operator_search.all_operators()
                 if q.partition("::")[0] not in operator_search.SKIPPED_NAMESPACES]
    probes = {family.name: family.probes() for family in FAMILIES}
    labelled = [(family, probe) for family, ps in probes.items() for probe in ps]
    started = time.monotonic()
    found, crashed, hung = operator_search.search([p for _, p in labelled], operators)
    family_of = {id(p): f for f, p in labelled}
    report: dict = {"namespaces": operator_search.namespaces(),
                    "skipped_namespaces": sorted(operator_search.SKIPPED_NAMESPACES),
                    "operators": len(operators), "probes": len(labelled), "crashed": crashed,
                    "hung": hung, "search_s": round(time.monotonic() - started, 1),
                    "families": {}}
    started = time.monotonic()
    lists = {family.name: forbidding_lists(family.name) for family in FAMILIES}
    checks = [(hit, where, lists[family_of[id(hit.probe)]][where]) for hit in found
              for where in lists[family_of[id(hit.probe)]]]
    checks.sort(key=lambda check: check[2])  # a list's kernels are registered once
    verdicts, crashed, hung = operator_search.forked_map(
        lambda check: _refused(check[0], check[2]), checks)
    for i in crashed + hung:
        verdicts[i] = "the call crashed or hung under the guard"
    report["crashed_under_the_guard"] = [f"{checks[i][0].op} ({checks[i][1]})"
                                         for i in crashed + hung]
    refused = {(id(checks[i][0]), checks[i][1]): v for i, v in verdicts.items()}
    for family in FAMILIES:
        names_of = lists[family.name]
        listed = {where: set(dispatch_guard.operators(names)) for where, names in names_of.items()}
        entries = [{"op": hit.op, "base": hit.op.partition(".")[0], "probe": hit.probe.label,
                    "result": hit.result,
                    "allowed": family.allowed.get(hit.op.partition(".")[0]),
                    "listed": {where: hit.op in ops for where, ops in listed.items()},
                    "refused": {where: refused[id(hit), where] for where in names_of}}
                   for hit in found if family_of[id(hit.probe)] == family.name]
        report["families"][family.name] = {"forbidden_by": names_of, "known": family.known,
                                           "found": entries}
    report["guarded_calls_s"] = round(time.monotonic() - started, 1)
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main()

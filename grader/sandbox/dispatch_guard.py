"""Forbidden calls enforced at PyTorch's dispatcher, below anything student code reaches from
Python: every course.toml name that stands for a computation maps to the ATen operators that
compute it (and their equivalents), and while a guarded function runs those operators have a
kernel that records the call and raises.

A name-level check (a TorchFunctionMode, `grader.sandbox.forbidden`) sees `torch.softmax` but not
`torch._softmax`, `torch.ops.aten._softmax`, `F.softmin(-X)`, a TorchScript function, a call
from another thread or one made under `torch._C.DisableTorchFunction()`. All of those reach
the dispatcher, whose kernel table is process-wide, so all of them are caught here. The kernels
are registered with `torch.library` for the backend keys that have a kernel of the operator,
and for composite operators also for the autograd keys (which decompose them first).

Registering a set costs milliseconds, so a sandboxed worker keeps the last set armed between
calls; `--in-process` (the grader's own process) has the name-level check only.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import re
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from grader.sandbox.forbidden import GuardState, canonical, forbidden_error, note_hit

if TYPE_CHECKING:  # torch is imported where it is used
    from torch.library import Library

# (course names a family answers for, the ATen operators that compute it or an equivalent)
FAMILIES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.nn.Softmax",
      "torch.special.softmax", "torch.log_softmax", "torch.nn.functional.log_softmax",
      "torch.Tensor.log_softmax", "torch.nn.LogSoftmax", "torch.special.log_softmax",
      "torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp"),
     ("softmax", "_softmax", "log_softmax", "_log_softmax", "special_softmax",
      "special_log_softmax", "_sparse_softmax", "_sparse_log_softmax", "_masked_softmax",
      "logsumexp", "special_logsumexp", "logcumsumexp", "_logcumsumexp",
      "scaled_dot_product_attention", "_scaled_dot_product_*", "_native_multi_head_attention",
      "_transformer_encoder_layer_fwd")),
    (("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss",
      "torch.nn.functional.nll_loss", "torch.nn.NLLLoss"),
     ("cross_entropy_loss", "nll_loss", "nll_loss_nd", "nll_loss_forward", "nll_loss2d",
      "nll_loss2d_forward", "kl_div")),
    (("torch.cdist",), ("cdist", "_cdist_forward", "_euclidean_dist")),
    (("torch.norm", "torch.Tensor.norm", "torch.linalg.norm", "torch.linalg.vector_norm",
      "torch.linalg.matrix_norm"),
     ("norm", "linalg_vector_norm", "linalg_norm", "linalg_matrix_norm", "frobenius_norm",
      "nuclear_norm", "norm_except_dim", "_foreach_norm", "renorm", "dist", "_weight_norm",
      "_weight_norm_interface")),
    (("torch.linalg.lstsq",), ("linalg_lstsq",)),
    (("torch.linalg.*",), ("linalg_*", "_linalg_*")),
    (("@", "torch.matmul", "torch.mm", "torch.mv", "torch.bmm", "torch.einsum",
      "torch.tensordot", "torch.dot", "torch.inner", "torch.nn.functional.linear",
      "torch.Tensor.matmul", "torch.Tensor.mm", "torch.Tensor.mv", "torch.Tensor.bmm",
      "torch.Tensor.dot", "torch.Tensor.inner"),
     ("matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "tensordot", "einsum", "linear",
      "addmm", "addbmm", "baddbmm", "addmv", "_addmm_activation", "chain_matmul",
      "linalg_multi_dot", "_int_mm", "_scaled_mm", "bilinear", "_trilinear", "_sparse_mm",
      "_sparse_addmm", "sspaddmm", "hspmm", "smm", "mkldnn_linear", "convolution",
      "_convolution", "_convolution_mode", "conv1d", "conv2d", "conv3d", "conv_tbc",
      "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "mkldnn_convolution",
      "_slow_conv2d_forward", "slow_conv3d_forward", "slow_conv_dilated2d",
      "slow_conv_dilated3d", "slow_conv_transpose2d", "slow_conv_transpose3d",
      "_nnpack_spatial_convolution", "cudnn_convolution", "cudnn_convolution_transpose")),
    (("torch.nn.functional.one_hot",), ("one_hot",)),
    (("torch.relu", "torch.nn.functional.relu", "torch.Tensor.relu", "torch.nn.ReLU"),
     ("relu", "relu_", "threshold", "threshold_", "leaky_relu", "leaky_relu_", "hardtanh",
      "hardtanh_", "relu6", "relu6_", "prelu", "_prelu_kernel", "rrelu", "rrelu_",
      "rrelu_with_noise", "rrelu_with_noise_", "elu", "elu_", "celu", "celu_", "softplus")),
    (("torch.clamp", "torch.Tensor.clamp", "torch.clip", "torch.Tensor.clip"),
     ("clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "clip",
      "clip_")),
)
BACKEND_KEYS = ("CPU", "CUDA", "SparseCPU", "SparseCUDA", "SparseCsrCPU", "SparseCsrCUDA",
                "NestedTensorCPU", "NestedTensorCUDA", "QuantizedCPU", "QuantizedCUDA",
                "MkldnnCPU")
COMPOSITE_KEYS = ("CPU", "CUDA", "AutogradCPU", "AutogradCUDA", "AutogradNestedTensor",
                  "AutogradOther", "NestedTensorCPU", "SparseCPU")


def _families(name: str) -> list[tuple[str, ...]]:
    """The operator patterns a course.toml name (or pattern) stands for."""
    full = canonical(name)
    found = []
    for names, ops in FAMILIES:
        if any(n == full or fnmatch.fnmatchcase(n, full) for n in names):
            found.append(ops)
    return found


@functools.cache
def _aten_overloads() -> dict[str, list[str]]:
    """ATen base name -> its overloads as `torch.library` names (`norm.Scalar`)."""
    import torch

    table: dict[str, list[str]] = {}
    for qualified in torch._C._dispatch_get_all_op_names():
        namespace, _, op = qualified.partition("::")
        if namespace == "aten":
            table.setdefault(op.partition(".")[0], []).append(op)
    return table


@functools.cache
def _family_bases(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """The ATen base names one family's patterns match, backward operators left out (they
    never run without the forward): one regular expression over the ~2,500 names, not a
    pattern at a time (which took a second of the template's start-up)."""
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    return tuple(b for b in _aten_overloads() if "backward" not in b and match(b))


@functools.cache
def operators(names: tuple[str, ...]) -> dict[str, str]:
    """Overload (`_softmax`, `norm.Scalar`) -> the course name to report, for every operator
    behind `names`."""
    table = _aten_overloads()
    result: dict[str, str] = {}
    for name in names:
        for patterns in _families(name):
            for base in _family_bases(patterns):
                for overload in table[base]:
                    result.setdefault(overload, name)
    return result


@functools.cache
def _keys(overload: str) -> list[str]:
    """Dispatch keys to register at: every backend with a kernel of the operator; for a
    composite operator (decomposed above the backends) the autograd and backend keys too."""
    import torch

    qualified = "aten::" + overload
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    keys = [k for k in BACKEND_KEYS if has(qualified, k)]
    if has(qualified, "CompositeImplicitAutograd") or has(qualified,
                                                          "CompositeExplicitAutograd"):
        keys += [k for k in COMPOSITE_KEYS if k not in keys]
    return keys


class _Armed:
    """The library of raising kernels now registered, and where a hit is recorded."""

    ops: frozenset[str] = frozenset()
    library: Library | None = None
    sink: list[GuardState | None] = [None]  # the state of the guarded call now running
    keep = False  # a sandboxed worker keeps the kernels between calls


def keep_armed_between_calls() -> None:
    """In a sandboxed worker: registering is the cost, so the kernels stay until a call is
    guarded differently (the worker runs nothing but guarded calls and the wire)."""
    _Armed.keep = True


@contextlib.contextmanager
def armed(names: Iterable[str], state: GuardState) -> Iterator[None]:
    """Within the block, the operators behind `names` record a hit in the guard's `state` and
    raise. Only in a sandboxed worker: `--in-process` (a student's debugger, in the grader's
    own process, whose oracles use these operators) keeps the name-level check alone."""
    if not _Armed.keep:
        yield
        return
    arm(names, state)
    try:
        yield
    finally:
        release()


def _kernel(overload: str, reported: str, sink: list):
    op = "aten::" + overload.partition(".")[0]

    def forbidden_kernel(*args, **kwargs):
        state = sink[0]
        if state is not None:
            note_hit(state.hits, f"{reported} (as {op})")
        raise forbidden_error(reported, state.function if state is not None else
                              "this function", f", however it is reached (here as {op})")
    return forbidden_kernel


def arm(names: Iterable[str], state: GuardState) -> None:
    """Forbid the operators behind `names` from now on; record hits into the guard's
    `state`."""
    import torch

    ops = operators(tuple(names))
    wanted = frozenset(ops)
    if wanted != _Armed.ops:
        disarm()
        if wanted:
            library = torch.library.Library("aten", "IMPL")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
                for overload, reported in ops.items():
                    kernel = _kernel(overload, reported, _Armed.sink)
                    for key in _keys(overload):
                        library.impl(overload, kernel, key)
            _Armed.library, _Armed.ops = library, wanted
    _Armed.sink[0] = state


def release() -> None:
    """The guarded call is over: stop recording into its hits (the kernels stay: the next
    call is likely guarded the same way)."""
    _Armed.sink[0] = None


def preload(course) -> None:
    """Resolve every forbidden list of the course once, in the template, so no worker pays."""
    for topic in course.topics:
        operators(tuple(topic.forbidden))
        for function in topic.functions:
            for overload in operators(tuple(topic.forbidden_for(function))):
                _keys(overload)


def disarm() -> None:
    if _Armed.library is not None:
        _Armed.library._destroy()
    _Armed.library, _Armed.ops = None, frozenset()

"""Forbidden calls enforced at PyTorch's dispatcher, below anything student code reaches from
Python: every course.toml name that stands for a computation maps to the operators that compute
it, in every namespace (ATen's, and quantized, mkldnn, torchvision...), and while a guarded
function runs those operators have a kernel that records the call and raises. Which operators
compute a family's result is derived, not remembered: tests/kit/test_operator_families.py runs
every operator on the family's probes and fails while one that computes it escapes.

A name-level check (a TorchFunctionMode, `grader.sandbox.forbidden`) sees `torch.softmax` but not
`torch._softmax`, `torch.ops.aten._softmax`, `F.softmin(-X)`, a TorchScript function, a call
from another thread or one made under `torch._C.DisableTorchFunction()`. All of those reach
the dispatcher, whose kernel table is process-wide, so all of them are caught here. The kernels
are registered with `torch.library`, one library per namespace, for the backend keys that have
a kernel of the operator, and for composite operators also for the autograd keys (which
decompose them first).

Registering a set costs milliseconds, so a sandboxed worker keeps the last set armed between
calls; `--in-process` (the grader's own process) has the name-level check only.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from grader.sandbox.forbidden import GuardState, canonical, forbidden_error, note_hit

if TYPE_CHECKING:  # torch is imported where it is used
    from torch.library import Library

# The operators that compute a convolution: a matmul too (a 1x1 kernel), so both families hold
# them. A convolution's weight gradient is the correlation of its input with the output's
# gradient, so the backward operators compute one as well.
CONVOLUTION = (
    "convolution", "convolution_overrideable", "_convolution", "_convolution_mode", "conv1d",
    "conv2d", "conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "_conv_depthwise2d", "conv_depthwise3d", "thnn_conv2d", "_slow_conv2d_forward",
    "slow_conv3d", "slow_conv3d_forward", "slow_conv_dilated2d", "slow_conv_dilated3d",
    "slow_conv_transpose2d", "slow_conv_transpose3d", "_nnpack_spatial_convolution",
    "mkldnn_convolution", "cudnn_convolution*", "miopen_convolution*",
    "miopen_depthwise_convolution", "_mps_convolution*", "convolution_backward*",
    "_convolution_double_backward", "_slow_conv2d_backward", "conv_tbc_backward",
    "mps_convolution*_backward", "mkldnn::_convolution_pointwise*",
    "mkldnn::_convolution_transpose_pointwise", "mkldnn_prepacked::conv2d_run",
    "quantized::conv1d*", "quantized::conv2d*", "quantized::conv3d*",
    "quantized::conv_transpose*", "_quantized::conv*", "onednn::qconv*",
    "torchvision::deform_conv2d", "torchvision::_deform_conv2d_backward")

# (course names a family answers for, the operators that compute it or an equivalent), both as
# fnmatch patterns. An operator is `name` in ATen, `namespace::name` elsewhere, with all its
# overloads. tests/kit/test_operator_families.py derives which operators compute each family's
# result (every namespace, run on probes) and fails while one of them escapes its family.
FAMILIES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.nn.Softmax",
      "torch.special.softmax", "torch.log_softmax", "torch.nn.functional.log_softmax",
      "torch.Tensor.log_softmax", "torch.nn.LogSoftmax", "torch.special.log_softmax",
      "torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp"),
     ("softmax", "_softmax", "log_softmax", "_log_softmax", "_safe_softmax", "special_softmax",
      "special_log_softmax", "_sparse_softmax", "_sparse_log_softmax", "_masked_softmax",
      "_nested_tensor_softmax_with_shape", "quantized::softmax", "logsumexp",
      "special_logsumexp", "logcumsumexp", "_logcumsumexp",
      # a fold of logaddexp over a row's columns is a stable logsumexp
      "logaddexp", "logaddexp2",
      # a CTC loss sums over alignments in log space: -logsumexp of a row, given the row as
      # log-probabilities of a label at every other step (and -inf between)
      "ctc_loss", "_ctc_loss", "_ctc_loss_backward", "_cudnn_ctc_loss", "miopen_ctc_loss",
      "scaled_dot_product_attention", "_scaled_dot_product_*", "_native_multi_head_attention",
      "_transformer_encoder_layer_fwd", "_flash_attention_*", "_efficient_attention_*",
      "_cudnn_attention_*", "_triton_scaled_dot_attention", "_triton_multi_head_attention")),
    (("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss",
      "torch.nn.functional.nll_loss", "torch.nn.NLLLoss"),
     ("cross_entropy_loss", "nll_loss", "nll_loss_nd", "nll_loss_forward", "nll_loss2d",
      "nll_loss2d_forward", "kl_div")),
    (("torch.cdist",), ("cdist", "_cdist_forward", "_euclidean_dist", "pdist", "_pdist_forward")),
    (("torch.norm", "torch.Tensor.norm", "torch.linalg.norm", "torch.linalg.vector_norm",
      "torch.linalg.matrix_norm"),
     ("norm", "linalg_vector_norm", "linalg_norm", "linalg_matrix_norm", "frobenius_norm",
      "nuclear_norm", "native_norm", "norm_except_dim", "_foreach_norm", "_foreach_powsum",
      "linalg__powsum", "renorm", "dist", "pairwise_distance",
      "_weight_norm", "_weight_norm_interface")),
    (("torch.linalg.lstsq",), ("linalg_lstsq",)),
    # and torch's other spellings of torch.linalg's decompositions, inverses and solves
    (("torch.linalg.*",), ("linalg_*", "_linalg_*", "det", "logdet", "slogdet", "inverse",
                           "pinverse", "matrix_exp", "matrix_power", "svd", "qr", "geqrf",
                           "orgqr", "ormqr", "cholesky", "cholesky_solve", "cholesky_inverse",
                           "_cholesky_solve_helper", "triangular_solve", "_lu_with_info",
                           "lu_solve", "lu_unpack", "prims::svd")),
    (("@", "torch.matmul", "torch.mm", "torch.mv", "torch.bmm", "torch.einsum",
      "torch.tensordot", "torch.dot", "torch.inner", "torch.nn.functional.linear",
      "torch.Tensor.matmul", "torch.Tensor.mm", "torch.Tensor.mv", "torch.Tensor.bmm",
      "torch.Tensor.dot", "torch.Tensor.inner"),
     ("matmul", "matmul_backward", "mm", "bmm", "mv", "dot", "vdot", "inner", "tensordot",
      "einsum", "linear", "linear_backward", "addmm", "addmm_", "addbmm", "addbmm_", "baddbmm",
      "baddbmm_", "addmv", "addmv_",
      # per-sample weights make an embedding bag's sum a row of a matmul
      "embedding_bag", "_embedding_bag", "_embedding_bag_forward_only",
      "_addmm_activation", "chain_matmul", "linalg_multi_dot", "_int_mm", "_scaled_mm*",
      "_grouped_mm", "_scaled_grouped_mm*", "_foreach_mm", "_weight_int*pack_mm*",
      "_dyn_quant_matmul_4bit", "_mixed_dtypes_linear", "_compute_linear_combination",
      "bilinear", "_trilinear", "_sparse_mm", "_sparse_addmm", "_sparse_sparse_matmul",
      "_sparse_mm_reduce_impl", "sparse_sampled_addmm", "_sparse_semi_structured_*mm",
      "_sparse_semi_structured_linear", "_cslt_sparse_mm", "sspaddmm", "hspmm", "smm",
      "mkldnn_linear", "mkldnn_linear_backward*", "fbgemm_linear_*",
      "quantized::matmul", "quantized::linear*", "_quantized::linear*",
      "_quantized::wrapped_*linear*", "sparse::qlinear*", "onednn::qlinear_pointwise",
      "onednn::linear*", "mkldnn::_linear_pointwise", "mkl::_mkl_linear",
      "inductor::_mm_plus_mm", "_native::*mm*", *CONVOLUTION)),
    (("torch.nn.functional.one_hot",), ("one_hot",)),
    (("torch.relu", "torch.nn.functional.relu", "torch.Tensor.relu", "torch.nn.ReLU"),
     ("relu", "relu_", "_add_relu", "_add_relu_", "threshold", "threshold_", "leaky_relu",
      "leaky_relu_", "hardtanh", "hardtanh_", "relu6", "relu6_", "prelu", "_prelu_kernel",
      "rrelu", "rrelu_", "rrelu_with_noise", "rrelu_with_noise_", "rrelu_with_noise_functional",
      "elu", "elu_", "celu", "celu_", "softplus",
      # a relu's backward passes the gradient where the input is positive: given the input as
      # both, it is the relu
      "threshold_backward", "hardtanh_backward", "leaky_relu_backward",
      "rrelu_with_noise_backward", "_prelu_kernel_backward", "elu_backward",
      "softplus_backward", "quantized::relu6", "quantized::leaky_relu", "quantized::threshold",
      "quantized::elu", "quantized::celu", "quantized::prelu", "quantized::add_relu*",
      "quantized::add_scalar_relu*", "quantized::mul_relu*", "quantized::mul_scalar_relu*",
      "quantized::cat_relu*", "onednn::qadd_relu", "_test::leaky_relu")),
    (("torch.clamp", "torch.Tensor.clamp", "torch.clip", "torch.Tensor.clip"),
     ("clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "clip",
      "clip_", "_foreach_clamp_min", "_foreach_clamp_min_", "_foreach_clamp_max",
      "_foreach_clamp_max_", "_foreach_maximum", "_foreach_maximum_", "_foreach_minimum",
      "_foreach_minimum_", "quantized::clamp", "static_runtime::clamp_nan_to_num")),
    ((*(f"torch.nn.functional.{n}" for n in (
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
        "feature_alpha_dropout")),
      *(f"torch.nn.{n}" for n in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                                  "AlphaDropout", "FeatureAlphaDropout")),
      *(f"torch.{n}{inplace}" for n in ("dropout", "alpha_dropout", "feature_dropout",
                                        "feature_alpha_dropout") for inplace in ("", "_")),
      "torch.native_dropout"),
     ("dropout", "dropout_", "native_dropout", "_fused_dropout", "feature_dropout",
      "feature_dropout_", "alpha_dropout", "alpha_dropout_", "feature_alpha_dropout",
      "feature_alpha_dropout_", "quantized::dropout")),
    ((*(f"{module}.{n}{d}d" for module in ("torch.nn.functional", "torch")
        for n in ("conv", "conv_transpose") for d in (1, 2, 3)),
      *(f"torch.nn.{lazy}{n}{d}d" for lazy in ("", "Lazy") for n in ("Conv", "ConvTranspose")
        for d in (1, 2, 3)),
      "torch.nn.functional.conv_tbc", "torch.conv_tbc", "torch.convolution"), CONVOLUTION),
    ((*(f"torch.nn.functional.{kind}_pool{d}d" for kind in (
        "max", "avg", "adaptive_max", "adaptive_avg", "lp") for d in (1, 2, 3)),
      *(f"torch.nn.functional.{kind}_pool{d}d_with_indices" for kind in ("max", "adaptive_max")
        for d in (1, 2, 3)),
      *(f"torch.nn.functional.fractional_max_pool{d}d{indices}" for d in (2, 3)
        for indices in ("", "_with_indices")),
      *(f"torch.nn.{kind}Pool{d}d" for kind in ("Max", "Avg", "AdaptiveMax", "AdaptiveAvg", "LP")
        for d in (1, 2, 3)),
      "torch.nn.FractionalMaxPool2d", "torch.nn.FractionalMaxPool3d",
      *(f"torch.{kind}_pool{d}d" for kind in ("max", "quantized_max") for d in (1, 2, 3)),
      "torch.max_pool1d_with_indices", "torch.avg_pool1d", "torch.adaptive_avg_pool1d",
      "torch.adaptive_max_pool1d", "torch.mkldnn_max_pool2d", "torch.mkldnn_max_pool3d",
      "torch.mkldnn_adaptive_avg_pool2d"),
     ("max_pool1d", "max_pool2d", "max_pool3d", "max_pool*_with_indices", "avg_pool*",
      "adaptive_avg_pool*", "_adaptive_avg_pool*", "adaptive_max_pool*", "fractional_max_pool*",
      "mkldnn_max_pool*", "mkldnn_adaptive_avg_pool2d", "quantized_max_pool*", "_mps_max_pool*",
      "quantized::max_pool*", "quantized::adaptive_avg_pool*", "torchvision::roi_pool",
      "torchvision::ps_roi_pool", "torchvision::roi_align", "torchvision::ps_roi_align",
      "torchvision::qroi_align")),
)
BACKEND_KEYS = ("CPU", "CUDA", "SparseCPU", "SparseCUDA", "SparseCsrCPU", "SparseCsrCUDA",
                "NestedTensorCPU", "NestedTensorCUDA", "QuantizedCPU", "QuantizedCUDA",
                "MkldnnCPU")
COMPOSITE = ("CompositeImplicitAutograd", "CompositeExplicitAutograd")
COMPOSITE_KEYS = ("CPU", "CUDA", "AutogradCPU", "AutogradCUDA", "AutogradNestedTensor",
                  "AutogradOther", "NestedTensorCPU", "SparseCPU")


@functools.cache
def _families(name: str) -> list[tuple[str, ...]]:
    """The operator patterns a course.toml name (or pattern) stands for."""
    full = canonical(name)
    return [ops for names, ops in FAMILIES
            if any(n == full or fnmatch.fnmatchcase(n, full) for n in names)]


class _Table:
    """The dispatcher's operators: qualified base name (`aten::norm`) -> its overloads
    (`aten::norm.Scalar`), and the overloads with a kernel at each key we register at; read
    again when modules were imported since (an extension registers its operators as it is
    imported)."""

    modules = -1
    bases: dict[str, list[str]] = {}
    kernels: dict[str, frozenset[str]] = {}


def _op_table() -> dict[str, list[str]]:
    import torch

    if len(sys.modules) != _Table.modules:
        _Table.modules = len(sys.modules)
        table: dict[str, list[str]] = {}
        for qualified in torch._C._dispatch_get_all_op_names():
            table.setdefault(qualified.partition(".")[0], []).append(qualified)
        if table.keys() != _Table.bases.keys():
            registered = torch._C._dispatch_get_registrations_for_dispatch_key
            _Table.bases = table
            _Table.kernels = {key: frozenset(registered(key)) for key in
                              {*BACKEND_KEYS, *COMPOSITE, *COMPOSITE_KEYS}}
            _family_bases.cache_clear()
            _operators.cache_clear()
            _keys.cache_clear()
    return _Table.bases


@functools.cache
def _family_bases(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """The qualified base names one family's patterns match: one regular expression over the
    ~3,500 names, not a pattern at a time (which took a second of the template's start-up)."""
    qualified = (p if "::" in p else "aten::" + p for p in patterns)
    match = re.compile("|".join(fnmatch.translate(p) for p in qualified)).match
    return tuple(b for b in _op_table() if match(b))


def operators(names: tuple[str, ...]) -> dict[str, str]:
    """Qualified overload (`aten::_softmax`, `aten::norm.Scalar`, `quantized::softmax`) -> the
    course name to report, for every operator behind `names`."""
    _op_table()
    return _operators(names)


@functools.cache
def _operators(names: tuple[str, ...]) -> dict[str, str]:
    table = _op_table()
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
    _op_table()
    has = _Table.kernels
    keys = [k for k in BACKEND_KEYS if overload in has[k]]
    if any(overload in has[k] for k in COMPOSITE):
        keys += [k for k in COMPOSITE_KEYS if k not in keys]
    return keys


class _Armed:
    """The libraries of raising kernels now registered (one per namespace), and where a hit
    is recorded."""

    names: tuple[str, ...] = ()
    ops: frozenset[str] = frozenset()
    libraries: list[Library] = []
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
    op = overload.partition(".")[0]

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

    names = tuple(names)
    ops = operators(names)
    wanted = frozenset(ops)
    _Armed.names = names
    if wanted != _Armed.ops:
        disarm()
        libraries: dict[str, Library] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
            for overload, reported in ops.items():
                namespace, _, name = overload.partition("::")
                if namespace not in libraries:
                    libraries[namespace] = torch.library.Library(namespace, "IMPL")
                kernel = _kernel(overload, reported, _Armed.sink)
                for key in _keys(overload):
                    libraries[namespace].impl(name, kernel, key)
        _Armed.libraries, _Armed.ops = list(libraries.values()), wanted
    _Armed.sink[0] = state


def release() -> None:
    """The guarded call is over: stop recording into its hits (the kernels stay: the next
    call is likely guarded the same way). A module the call imported may have registered
    operators of the armed families after their kernels were (torchvision's convolution and
    pooling, on its first import): nothing stopped those, so the call is recorded as having
    reached them, and the next call arms them."""
    state, _Armed.sink[0] = _Armed.sink[0], None
    if state is not None and len(sys.modules) != _Table.modules:
        for overload, reported in operators(_Armed.names).items():
            if overload not in _Armed.ops:
                note_hit(state.hits, f"{reported} (as {overload.partition('.')[0]}, "
                                     "registered while the call ran)")


def preload(course) -> None:
    """Resolve every forbidden list of the course once, in the template, so no worker pays."""
    for topic in course.topics:
        operators(tuple(topic.forbidden))
        for function in topic.functions:
            for overload in operators(tuple(topic.forbidden_for(function))):
                _keys(overload)


def disarm() -> None:
    for library in _Armed.libraries:
        library._destroy()
    _Armed.libraries, _Armed.ops = [], frozenset()

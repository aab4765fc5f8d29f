"""Which operators compute a given result: every operator the dispatcher knows, in every
namespace, called on small probes with arguments filled from its schema, each output compared
with the probe's oracle. What `tests.kit.family_probes` derives the dispatcher guard's families
with.

A probe is a few tensors (given to the schema's tensor arguments in order), candidate values by
argument name (`dim`, `kernel_size`, ...) or type, and an oracle that names the result an
output equals. Arguments the probe does not name take their default, or a small value of their
type; an operator whose required arguments cannot be filled is not called. Calls are CPU-only,
on tensors of a few dozen elements, every error caught, in forked children: an operator that
crashes the process is noted and the search goes on with the next.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

MAX_CALLS = 16  # argument combinations tried per operator and probe
HANG_S = 30.0  # an operator that runs this long is given up as hung

# Namespaces whose operators need a process group, a GPU stream or a profiler: none computes
# on a CPU tensor, and some wait for peers that never come.
SKIPPED_NAMESPACES = frozenset({
    "c10d", "_c10d_functional", "_c10d_functional_autograd", "c10d_functional", "symm_mem",
    "_dtensor", "profiler", "streams", "mempool", "cuda", "fsdp"})


@dataclass(frozen=True)
class Probe:
    """Tensors for the schema's tensor arguments, in order (a tensor-list argument takes the
    rest); values by argument name, or by type as `<LinearPackedParamsBase>`; `scalars` are
    tried too for every float or Scalar argument that has a default; `matches(output)` names
    the result an output equals, or None; `engine`: the quantized engine to run under."""

    label: str
    tensors: tuple[Any, ...]
    matches: Callable[[np.ndarray], str | None]
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    scalars: tuple[Any, ...] = ()
    engine: str | None = None


@dataclass
class Found:
    """An operator whose output on `probe` was `result`, and the arguments it computed it
    with."""

    op: str
    probe: Probe
    result: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def call(self) -> Any:
        """The same call again (on fresh copies of the probe's tensors)."""
        with engine(self.probe.engine), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _resolve(self.op)(*_fresh(self.args), **_fresh(self.kwargs))


def all_operators() -> list[str]:
    """Every overload the dispatcher knows, qualified (`aten::softmax.int`,
    `quantized::softmax`)."""
    return sorted(torch._C._dispatch_get_all_op_names())


def namespaces() -> list[str]:
    return sorted({q.partition("::")[0] for q in all_operators()})


def _schema(qualified: str) -> Any:
    base, _, overload = qualified.partition(".")
    return torch._C._dispatch_find_schema_or_throw(base, overload).schema()


def _resolve(qualified: str) -> Any:
    base, _, overload = qualified.partition(".")
    namespace, _, name = base.partition("::")
    return getattr(getattr(getattr(torch.ops, namespace), name), overload or "default")


def _fresh(value: Any) -> Any:
    """A copy of the probe's tensors for each call: operators may write into them."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, list | tuple):
        return type(value)(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def engine(name: str | None) -> Iterator[None]:
    """Within the block, the quantized engine is `name` (qnnpack has kernels the default
    engine lacks); None leaves it."""
    if name is None:
        yield
        return
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


@dataclass(frozen=True)
class _Arg:
    """What filling one schema argument needs."""

    name: str
    kwarg_only: bool
    optional: bool
    kind: str  # the (optional's inner) type's kind: TensorType, IntType, ListType, ...
    type_key: str  # `<LinearPackedParamsBase>`: how a probe names a value by type
    default: Any
    has_default: bool
    tensor_list: bool


@functools.cache
def _signature(qualified: str) -> tuple[tuple[_Arg, ...], bool] | None:
    """The schema's arguments, and whether the operator writes into one; None for an
    operator that writes into an `out=` argument (its functional overload is tried instead)."""
    schema = _schema(qualified)
    args = []
    for arg in schema.arguments:
        if arg.kwarg_only and arg.alias_info is not None and arg.alias_info.is_write:
            return None
        optional = arg.type.kind() == "OptionalType"
        inner = arg.type.getElementType() if optional else arg.type
        element = inner.getElementType() if inner.kind() == "ListType" else None
        if element is not None and element.kind() == "OptionalType":
            element = element.getElementType()
        args.append(_Arg(arg.name, arg.kwarg_only, optional, inner.kind(),
                         f"<{str(inner).rpartition('.')[2]}>", arg.default_value,
                         arg.default_value is not None or optional,
                         element is not None and element.kind() == "TensorType"))
    writes = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
    return tuple(args), writes


def _writes(qualified: str) -> bool:
    signature = _signature(qualified)
    return signature is None or signature[1]


SMALL = {"IntType": (1,), "BoolType": (False,), "DeviceObjType": (torch.device("cpu"),)}


def _choices(arg: _Arg, probe: Probe, tensors: list[Any]) -> tuple[Any, ...] | None:
    """The values to try for one argument, or None when it cannot be filled. `tensors` holds
    the probe's tensors not yet given to an earlier argument; this one takes what it needs."""
    if arg.name in probe.values:
        return probe.values[arg.name]
    if arg.type_key in probe.values:
        return probe.values[arg.type_key]
    if arg.kind == "TensorType":
        if tensors:
            return (tensors.pop(0),)
        return (None,) if arg.optional else None
    if arg.tensor_list:
        rest = list(tensors)
        tensors.clear()
        return (rest,) if rest else None
    numeric = arg.kind in ("FloatType", "NumberType")
    if arg.has_default:
        if numeric:
            return (arg.default, *(s for s in probe.scalars if s != arg.default))
        return (arg.default,)
    if numeric:
        return probe.scalars or (1,)
    return SMALL.get(arg.kind)


def calls(qualified: str, probe: Probe) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The argument combinations to try `qualified` with on `probe`: none when it cannot be
    filled."""
    signature = _signature(qualified)
    if signature is None:
        return []
    tensors = list(probe.tensors)
    choices = []
    for arg in signature[0]:
        options = _choices(arg, probe, tensors)
        if options is None:
            return []
        choices.append(options)
    found = []
    for combo in itertools.islice(itertools.product(*choices), MAX_CALLS):
        pairs = list(zip(signature[0], combo, strict=True))
        found.append((tuple(v for a, v in pairs if not a.kwarg_only),
                      {a.name: v for a, v in pairs if a.kwarg_only}))
    return found


def outputs(result: Any) -> Iterator[np.ndarray]:
    """Each real tensor in an operator's result, dequantized, as a float64 array."""
    if isinstance(result, torch.Tensor):
        try:
            if result.is_quantized:
                result = result.dequantize()
            if result.layout != torch.strided or result.is_complex() or result.is_meta:
                return
            values = result.detach().to(torch.float64).numpy()
        except Exception:  # a tensor of no plain kind (functorch's, a wrapper): nothing to read
            return
        yield values
    elif isinstance(result, list | tuple):
        for r in result:
            yield from outputs(r)


def _run(op: Any, probe: Probe, args: tuple[Any, ...], kwargs: dict[str, Any],
         writes: bool) -> Any:
    try:
        with engine(probe.engine), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if writes:
                return op(*_fresh(args), **_fresh(kwargs))
            return op(*args, **kwargs)
    except Exception:
        return None


def _quantized_kernels() -> frozenset[str]:
    """The operators a quantized probe is tried on: those with a quantized kernel, and every
    operator outside ATen (an ATen operator without a quantized kernel computes on a
    quantized tensor only what it computes on the float probes)."""
    return frozenset(torch._C._dispatch_get_registrations_for_dispatch_key("QuantizedCPU")) | {
        q for q in all_operators() if not q.startswith("aten::")}


def search_one(qualified: str, probes: list[Probe], quantizable: frozenset[str]
               ) -> Iterator[tuple[int, int, str]]:
    """(probe index, call index, result) for each probe on which `qualified` computes a result
    the probe's oracle recognises (the first call that does)."""
    op = None
    for p, probe in enumerate(probes):
        if probe.engine is not None and qualified not in quantizable:
            continue
        for c, (args, kwargs) in enumerate(calls(qualified, probe)):
            op = op or _resolve(qualified)
            result = _run(op, probe, args, kwargs, _writes(qualified))
            name = next(filter(None, map(probe.matches, outputs(result))), None)
            if name is not None:
                yield p, c, name
                break


def _map_from(conn: Any, fn: Callable[[Any], Any], items: list[Any], start: int) -> None:
    """In a forked child: fn over items[start:], saying which item it starts before each."""
    for i in range(start, len(items)):
        conn.send(("start", i))
        conn.send(("result", (i, fn(items[i]))))
    conn.send(("done", None))


def forked_map(fn: Callable[[Any], Any], items: list[Any]
               ) -> tuple[dict[int, Any], list[int], list[int]]:
    """({index: fn(item)}, indices of the items that crashed the process, of those that hung):
    forked children make the calls, one after another; after a crash or a hang a new child
    goes on with the next item (an operator may corrupt the process it runs in)."""
    context = multiprocessing.get_context("fork")
    results: dict[int, Any] = {}
    crashed: list[int] = []
    hung: list[int] = []
    start = 0
    while start < len(items):
        ours, theirs = context.Pipe()
        child = context.Process(target=_map_from, args=(theirs, fn, items, start))
        child.start()
        theirs.close()
        current, done = start, False
        while not done:
            if not ours.poll(HANG_S):
                child.kill()
                hung.append(current)
                break
            try:
                kind, value = ours.recv()
            except EOFError:
                crashed.append(current)
                break
            if kind == "start":
                current = value
            elif kind == "result":
                results[value[0]] = value[1]
            else:
                done = True
        child.join()
        ours.close()
        start = len(items) if done else current + 1
    return results, crashed, hung


def search(probes: list[Probe], operators: list[str]
           ) -> tuple[list[Found], list[str], list[str]]:
    """(what was found, operators that crashed the process, operators that hung)."""
    quantizable = _quantized_kernels()
    results, crashed, hung = forked_map(
        lambda op: list(search_one(op, probes, quantizable)), operators)
    found = []
    for i, hits in sorted(results.items()):
        for p, c, name in hits:
            args, kwargs = calls(operators[i], probes[p])[c]
            found.append(Found(operators[i], probes[p], name, args, kwargs))
    return found, [operators[i] for i in crashed], [operators[i] for i in hung]


def _views(out: np.ndarray) -> Iterator[np.ndarray]:
    """An output and its first and last slices along each axis (a cumulative operator's last
    slice is the reduction)."""
    yield out
    for d in range(out.ndim):
        if out.shape[d] > 1:
            yield np.take(out, -1, axis=d)
            yield np.take(out, 0, axis=d)


def close(expected: torch.Tensor, atol: float = 0.0) -> Callable[[np.ndarray], bool]:
    """Whether an output holds `expected`'s values (in any shape of that size)."""
    flat = expected.detach().to(torch.float64).numpy().ravel()
    tol = atol + 1e-4 * float(np.abs(flat).max()) + 1e-6

    def check(out: np.ndarray) -> bool:
        return out.size == flat.size and bool(np.abs(out.ravel() - flat).max() <= tol)
    return check


def oracle(targets: Mapping[str, torch.Tensor], atol: float = 0.0, negated: bool = True
           ) -> Callable[[np.ndarray], str | None]:
    """`matches` for a probe whose results are these tensors (finite), or their negatives."""
    assert all(bool(torch.isfinite(t).all()) for t in targets.values()), "a target overflows"
    checks = [(name, close(t, atol)) for name, t in targets.items()]
    if negated:
        checks += [(f"-{name}", close(-t, atol)) for name, t in targets.items()]
    sizes = {t.numel() for t in targets.values()}

    def matches(out: np.ndarray) -> str | None:
        for view in _views(out):
            if view.size in sizes:
                name = next((name for name, check in checks if check(view)), None)
                if name is not None:
                    return name
        return None
    return matches


def quantized(x: torch.Tensor, dtype: torch.dtype = torch.quint8) -> torch.Tensor:
    """`x` quantized per tensor with a scale that keeps its range."""
    span = float(x.abs().max()) or 1.0
    if dtype == torch.quint8:
        return torch.quantize_per_tensor(x, 2 * span / 255, 128, dtype)
    return torch.quantize_per_tensor(x, span / 127, 0, dtype)

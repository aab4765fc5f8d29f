"""The wire between the grader and a worker.

Grader to worker: pickle (the worker trusts the grader). Worker to grader: data only, in a
format whose decoder cannot run code: a JSON tree (tagged lists, tuples, dicts, tensors, NumPy
arrays, devices, dtypes, remote references) followed by raw storage bytes. Tensors keep dtype,
shape, strides, storage offset, device and requires_grad, and tensors that share a storage in
the worker share one in the grader. Every message is length-prefixed and size-capped, and a
reply's JSON is measured over its bytes before it is parsed (`grader.sandbox.jsonbound`): a
tree of more values, or deeper, than the decoder would take is refused before `json.loads`
builds any of it.

The worker's side of the wire is the student's: decoding fails only as a WireError, whatever
the bytes, and the grader reads a WireError as a worker that broke the protocol (the
student's crash), never as a failure of its own.
"""

from __future__ import annotations

import copyreg
import io
import json
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np
import torch

from grader.sandbox.jsonbound import TooLarge, check_json

HEADER = struct.Struct(">cQ")
PICKLE, DATA = b"P", b"D"
# worker -> grader, inside a request: the worker asks the grader for a contract function's value
# (a stand-in for the student's own, `grader.sandbox.execute.substituted`); data, as a reply
CALLBACK = b"C"
MAX_DEPTH = 64  # nesting of a value (a list in a list ...)
MAX_NODES = 1_000_000  # values in one message (tensors, numbers, lists, ...)
# The JSON of a message's tree: its bytes (tensor data travels apart, as raw storage), and its
# values and nesting, counted before it is parsed. A value is a JSON object and a list in the
# tree (`{"t": "list", "v": [...]}`), so the tree nests twice as deep; a list of MAX_NODES
# numbers is MAX_NODES JSON values; 2 million values parse in at most a few hundred MB.
MAX_TREE_BYTES = 32 << 20
MAX_TREE_VALUES = 2 * MAX_NODES
MAX_TREE_DEPTH = 2 * MAX_DEPTH + 8

DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
                 "uint8", "int8", "int16", "int32", "int64", "bool")
}
NP_DTYPES = {"float16", "float32", "float64", "complex64", "complex128",
             "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "bool"}


class WireError(Exception):
    """A message that is malformed, too large or of a kind this side must not accept."""


class RemoteHandle:
    """What a worker-side object that cannot travel arrives as: an id plus a description."""

    def __init__(self, ref_id: int, type_name: str, text: str):
        self.ref_id, self.type_name, self.text = ref_id, type_name, text

    def __repr__(self) -> str:
        return f"<remote {self.type_name}: {self.text}>"


def tensors_in(value: Any, out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Tensors inside args/kwargs in a fixed traversal order (the grader walks the same way)."""
    out = [] if out is None else out
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, list | tuple):
        for v in value:
            tensors_in(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_in(v, out)
    return out


# --------------------------------------------------------------------------- framing


def send_message(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly `n` bytes from `sock`; EOFError when the other side closes first."""
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket, max_bytes: int) -> tuple[bytes, bytes]:
    """Read one framed message; refuse one larger than `max_bytes` without reading it."""
    kind, length = HEADER.unpack(recv_exact(sock, HEADER.size))
    if kind not in (PICKLE, DATA, CALLBACK):
        raise WireError(f"unknown message kind {kind!r}")
    if length > max_bytes:
        raise WireError(f"message of {length} bytes exceeds the cap of {max_bytes}")
    return kind, recv_exact(sock, length)


# --------------------------------------------------------------------------- grader -> worker


def _tensor_from_bytes(data: bytes, dtype: torch.dtype, size: tuple, stride: tuple,
                       offset: int, requires_grad: bool) -> torch.Tensor:
    storage = (torch.frombuffer(bytearray(data), dtype=torch.uint8).untyped_storage() if data
               else torch.UntypedStorage(0))
    t = torch.empty(0, dtype=dtype).set_(storage, offset, size, stride)
    return t.requires_grad_() if requires_grad else t


def _reduce_tensor(t: torch.Tensor):
    """A plain CPU tensor as its storage's bytes and its view: ~10x cheaper both ways than
    torch's own pickling (a `torch.save` per storage), which other tensors still use."""
    if (t.device.type != "cpu" or t.layout != torch.strided or not t.is_leaf or t.is_conj()
            or t.is_neg() or t.is_quantized or t.__dict__ or t._backward_hooks):
        return t.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    data = torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).numpy().tobytes()
    return _tensor_from_bytes, (data, t.dtype, tuple(t.shape), t.stride(), t.storage_offset(),
                                t.requires_grad)


def remote_ref(ref_id: int) -> Any:
    """A worker-side object inside a request (a `RemoteRef` pickles as a call to this): the
    worker's unpickler resolves the id in its table of objects."""
    raise pickle.UnpicklingError("remote references resolve only in a worker")


class _GraderPickler(pickle.Pickler):
    """Pickles grader objects; plain CPU tensors as their bytes."""

    dispatch_table = {**copyreg.dispatch_table, torch.Tensor: _reduce_tensor}


class _WorkerUnpickler(pickle.Unpickler):
    def __init__(self, file, resolve_ref: Callable[[int], Any]):
        super().__init__(file)
        self._resolve_ref = resolve_ref

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, remote_ref.__name__):
            return self._resolve_ref
        return super().find_class(module, name)


def dump_request(obj: Any) -> bytes:
    buf = io.BytesIO()
    _GraderPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def load_request(payload: bytes, resolve_ref: Callable[[int], Any]) -> Any:
    return _WorkerUnpickler(io.BytesIO(payload), resolve_ref).load()


# --------------------------------------------------------------------------- worker -> grader


class DataEncoder:
    """Encodes a worker value as data. Objects that cannot travel go to `make_ref`."""

    def __init__(self, make_ref: Callable[[Any], tuple[int, str, str]],
                 arg_storages: dict[int, int] | None = None):
        self.make_ref = make_ref
        self.arg_storages = arg_storages or {}  # storage data_ptr -> argument tensor index
        self.storages: dict[tuple[str, int], dict] = {}
        self.tensors: list[tuple[dict, torch.Tensor]] = []
        self.extra_blobs: list[bytes] = []
        self.nodes = 0

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply to send")
        if self.nodes > MAX_NODES:
            raise WireError(TOO_LARGE)
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return value if abs(value) < 2**63 else {"t": "bigint", "v": str(value)}
        if isinstance(value, float):
            return {"t": "float", "v": repr(value)} if value != value or value in (
                float("inf"), float("-inf")) else value
        if isinstance(value, torch.Tensor):
            return self._tensor(value, depth)
        if isinstance(value, np.ndarray | np.generic):
            return self._ndarray(value)
        if isinstance(value, torch.Size):
            return {"t": "tuple", "v": [int(x) for x in value]}
        if isinstance(value, list | tuple) and type(value) in (list, tuple):
            return {"t": type(value).__name__, "v": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str | int) for k in value):
            return {"t": "dict", "k": list(value), "v": [self.encode(v, depth + 1)
                                                          for v in value.values()]}
        if isinstance(value, torch.device):
            return {"t": "device", "v": str(value)}
        if isinstance(value, torch.dtype):
            return {"t": "dtype", "v": str(value).removeprefix("torch.")}
        if isinstance(value, complex):
            return {"t": "complex", "v": [value.real, value.imag]}
        if isinstance(value, bytes):
            return {"t": "bytes", "v": value.hex()}
        ref_id, type_name, text = self.make_ref(value)
        return {"t": "ref", "id": ref_id, "type": type_name, "text": text}

    def _tensor(self, t: torch.Tensor, depth: int) -> dict:
        node: dict[str, Any] = {
            "t": "tensor", "dtype": str(t.dtype).removeprefix("torch."),
            "size": list(t.shape), "stride": list(t.stride()),
            "offset": t.storage_offset(), "device": str(t.device),
            "requires_grad": bool(t.requires_grad)}
        if node["dtype"] not in DTYPES:
            raise WireError(f"tensors of dtype {t.dtype} cannot be sent")
        ptr = t.untyped_storage().data_ptr()
        if t.device.type == "cpu" and ptr in self.arg_storages and t.numel() > 0:
            node["arg"] = self.arg_storages[ptr]
        else:
            key = (str(t.device), ptr)
            lo, hi = _extent(t)
            span = self.storages.setdefault(key, {"lo": lo, "hi": hi, "dtype": t.dtype})
            if span["dtype"] != t.dtype:  # same memory seen as another dtype: send separately
                key = (str(t.device) + f"#{len(self.storages)}", ptr)
                span = self.storages.setdefault(key, {"lo": lo, "hi": hi, "dtype": t.dtype})
            span["lo"], span["hi"] = min(span["lo"], lo), max(span["hi"], hi)
            node["storage"] = list(self.storages).index(key)
            self.tensors.append((node, t))
        grad = t.grad if t.is_leaf else None
        if grad is not None:
            node["grad"] = self._tensor(grad, depth + 1)
        return node

    def _ndarray(self, a) -> dict:
        arr = np.asarray(a)
        if arr.dtype.name not in NP_DTYPES:
            raise WireError(f"NumPy arrays of dtype {arr.dtype} cannot be sent")
        return {"t": "ndarray", "dtype": arr.dtype.name, "shape": list(arr.shape),
                "scalar": isinstance(a, np.generic), "blob": self._blob(arr.tobytes(order="C"))}

    def _blob(self, data: bytes) -> int:
        self.extra_blobs.append(data)
        return -len(self.extra_blobs)

    def finish(self, tree: Any) -> bytes:
        """Serialise the encoded tree with the storages it references."""
        storages = [{"dtype": str(span["dtype"]).removeprefix("torch."),
                     "lo": span["lo"], "hi": span["hi"]} for span in self.storages.values()]
        samples: dict[int, torch.Tensor] = {}
        for node, t in self.tensors:
            node["offset"] -= storages[node["storage"]]["lo"]
            samples.setdefault(node["storage"], t)
        blobs = []
        for i, spec in enumerate(storages):
            flat = torch.as_strided(samples[i].detach(), (spec["hi"] - spec["lo"],), (1,),
                                    spec["lo"]).cpu().contiguous()
            blobs.append(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        blobs.extend(self.extra_blobs)
        doc = json.dumps({"tree": tree, "storages": storages,
                          "blob_sizes": [len(b) for b in blobs]}).encode()
        check_tree(doc)  # what the grader would refuse, refused here with a reason
        return struct.pack(">I", len(doc)) + doc + b"".join(blobs)


TOO_LARGE = ("it holds more numbers, strings, lists and dicts than one reply to the grader "
             "may; return a tensor instead of a Python structure that large")


def check_tree(doc: bytes | memoryview) -> None:
    """WireError unless a message's JSON tree is within the bytes, values and nesting any
    decoder accepts; nothing of it is parsed."""
    if len(doc) > MAX_TREE_BYTES:
        raise WireError(f"{TOO_LARGE} (its structure is {len(doc) >> 20} MB of JSON; a "
                        f"tensor's data does not count)")
    try:
        check_json(doc, MAX_TREE_VALUES, MAX_TREE_DEPTH)
    except TooLarge as e:
        raise WireError(f"{TOO_LARGE} ({e})") from None


def _extent(t: torch.Tensor) -> tuple[int, int]:
    """[lo, hi) element range of the storage that `t` touches."""
    offset = int(t.storage_offset())  # an int, typed int | SymInt for tracing
    if t.numel() == 0:
        return offset, offset
    hi = offset + sum((s - 1) * st for s, st in zip(t.shape, t.stride(), strict=True)) + 1
    return offset, hi


def encode_data(value: Any, make_ref: Callable[[Any], tuple[int, str, str]],
                arg_storages: dict[int, int] | None = None) -> bytes:
    enc = DataEncoder(make_ref, arg_storages)
    tree = enc.encode(value)
    return enc.finish(tree)


class DataDecoder:
    """Decodes worker data. Never runs code; validates every size, stride and offset."""

    def __init__(self, payload: bytes, make_remote: Callable[[RemoteHandle], Any],
                 arg_tensors: list[torch.Tensor] | None = None,
                 device_map: Callable[[str], torch.device] | None = None):
        if len(payload) < 4:
            raise WireError("truncated message")
        (n,) = struct.unpack(">I", payload[:4])
        check_tree(memoryview(payload)[4:4 + n])  # before json.loads builds anything
        try:
            doc = json.loads(payload[4:4 + n])
        except (ValueError, RecursionError) as e:
            raise WireError(f"malformed message: {e}") from None
        if not isinstance(doc, dict):
            raise WireError("malformed message")
        self.tree: Any = doc.get("tree")  # a JSON value
        sizes = doc.get("blob_sizes")
        if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
            raise WireError("malformed blob table")
        self.blobs, pos = [], 4 + n
        for s in sizes:
            if pos + s > len(payload):
                raise WireError("blob table points past the end of the message")
            self.blobs.append(payload[pos:pos + s])
            pos += s
        specs = doc.get("storages")
        if not isinstance(specs, list) or len(specs) > len(self.blobs):
            raise WireError("malformed storage table")
        self.storage_specs: list[Any] = specs
        self.n_storages = len(specs)
        self.storages: dict[int, torch.Tensor] = {}
        self.make_remote = make_remote
        self.arg_tensors = arg_tensors or []
        self.device_map = device_map or torch.device
        self.nodes = 0

    def value(self) -> Any:
        return self.decode(self.tree)

    def decode(self, node: Any, depth: int = 0) -> Any:
        """`node` as a value. A worker's data is the student's: whatever in it fails to decode
        fails as a WireError (a reply that does not decode), never as another exception."""
        if depth:
            return self._decode(node, depth)
        try:
            return self._decode(node, 0)
        except WireError:
            raise
        except Exception as e:
            raise WireError(f"malformed value ({type(e).__name__}: {e})"[:500]) from None

    def _decode(self, node: Any, depth: int) -> Any:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise WireError("message nested too deeply or too large")
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            raise WireError("malformed node")
        t = node["t"]
        if t in ("list", "tuple"):
            items = [self.decode(v, depth + 1) for v in _list(node.get("v"))]
            return items if t == "list" else tuple(items)
        if t == "dict":
            keys, vals = _list(node.get("k")), _list(node.get("v"))
            if len(keys) != len(vals) or not all(isinstance(k, str | int) for k in keys):
                raise WireError("malformed dict")
            return {k: self.decode(v, depth + 1) for k, v in zip(keys, vals, strict=True)}
        if t == "tensor":
            return self._tensor(node, depth)
        if t == "ndarray":
            return self._ndarray(node)
        if t == "float":
            if node.get("v") not in ("nan", "inf", "-inf"):
                raise WireError("malformed float")
            return float(node["v"])
        if t == "bigint":
            return int(str(node.get("v")))
        if t == "complex":
            re, im = _list(node.get("v"))
            return complex(float(re), float(im))
        if t == "bytes":
            return bytes.fromhex(str(node.get("v")))
        if t == "device":
            return torch.device(str(node.get("v")))
        if t == "dtype":
            name = node.get("v")
            if name not in DTYPES:
                raise WireError(f"unknown dtype {name!r}")
            return DTYPES[name]
        if t == "ref":
            return self.make_remote(RemoteHandle(int(node["id"]), str(node.get("type"))[:200],
                                                 str(node.get("text"))[:500]))
        raise WireError(f"unknown node type {t!r}")

    def _storage(self, index: Any) -> torch.Tensor:
        if not isinstance(index, int) or not 0 <= index < self.n_storages:
            raise WireError("tensor refers to an unknown storage")
        if index not in self.storages:
            spec = self.storage_specs[index]
            dtype = _dtype(spec.get("dtype")) if isinstance(spec, dict) else None
            if dtype is None:
                raise WireError("storage of unknown dtype")
            blob = self.blobs[index]
            itemsize = torch.empty((), dtype=dtype).element_size()
            count = spec.get("hi", 0) - spec.get("lo", 0)
            if not isinstance(count, int) or count < 0 or count * itemsize != len(blob):
                raise WireError("storage size does not match its bytes")
            flat = torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob else \
                torch.empty(0, dtype=torch.uint8)
            self.storages[index] = flat.view(dtype) if blob else torch.empty(0, dtype=dtype)
        return self.storages[index]

    def _tensor(self, node: dict, depth: int) -> torch.Tensor:
        dtype = _dtype(node.get("dtype"))
        size, stride, offset = node.get("size"), node.get("stride"), node.get("offset")
        if dtype is None:
            raise WireError(f"unknown tensor dtype {node.get('dtype')!r}")
        if not (_ints(size) and _ints(stride) and len(size) == len(stride)
                and isinstance(offset, int) and offset >= 0):
            raise WireError("malformed tensor geometry")
        if "arg" in node:
            arg = node["arg"]
            if not isinstance(arg, int) or not 0 <= arg < len(self.arg_tensors):
                raise WireError("view of an unknown argument")
            base = self.arg_tensors[arg]
            if base.dtype != dtype:
                raise WireError("view of an argument with another dtype")
            extent = _geometry_extent(size, stride, offset)
            if extent > base.untyped_storage().nbytes() // max(base.element_size(), 1):
                raise WireError("view reaches past its argument's storage")
            out = base.detach().as_strided(size, stride, offset)
        else:
            flat = self._storage(node.get("storage"))
            if flat.dtype != dtype:
                raise WireError("tensor dtype differs from its storage")
            if _geometry_extent(size, stride, offset) > flat.numel():
                raise WireError("tensor reaches past its storage")
            out = flat.as_strided(size, stride, offset)
            device = str(node.get("device", "cpu"))
            if device != "cpu":
                out = out.to(self.device_map(device))
        if node.get("requires_grad") and dtype.is_floating_point | dtype.is_complex:
            out = out.detach().requires_grad_(True)
        if isinstance(node.get("grad"), dict):
            grad = self._tensor(node["grad"], depth + 1)
            if grad.shape == out.shape and out.requires_grad:
                out.grad = grad.detach()
        return out

    def _ndarray(self, node: dict):
        dtype, shape, blob = node.get("dtype"), node.get("shape"), node.get("blob")
        if dtype not in NP_DTYPES or not _ints(shape) or not isinstance(blob, int):
            raise WireError("malformed array")
        index = self.n_storages + (-blob - 1)
        if not self.n_storages <= index < len(self.blobs):
            raise WireError("array refers to an unknown blob")
        data = self.blobs[index]
        count = int(np.prod(shape)) if shape else 1
        if count * np.dtype(dtype).itemsize != len(data):
            raise WireError("array size does not match its bytes")
        arr = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return arr[()] if node.get("scalar") else arr


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise WireError("malformed list")
    return v


def _dtype(name: object) -> torch.dtype | None:
    """The dtype a message names; None for a name it does not know (or one that is not a
    string)."""
    return DTYPES.get(name) if isinstance(name, str) else None


def _ints(v: object) -> TypeGuard[list[int]]:
    return isinstance(v, list) and all(isinstance(x, int) and 0 <= x < 2**62 for x in v)


def _geometry_extent(size: list[int], stride: list[int], offset: int) -> int:
    if any(s == 0 for s in size):
        return offset
    return offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1


def decode_data(payload: bytes, make_remote: Callable[[RemoteHandle], Any],
                arg_tensors: list[torch.Tensor] | None = None) -> Any:
    return DataDecoder(payload, make_remote, arg_tensors).value()

"""The worker-to-grader codec: faithful for data, and a decoder that refuses anything crafted."""

from __future__ import annotations

import json
import socket
import struct
import tracemalloc

import numpy as np
import pytest
import torch

from grader.sandbox import client, wire


def roundtrip(value, arg_tensors=None, arg_storages=None):
    refs = []

    def make_ref(obj):
        refs.append(obj)
        return len(refs), type(obj).__name__, "r"

    payload = wire.encode_data(value, make_ref, arg_storages)
    return wire.decode_data(payload, lambda h: ("remote", h.ref_id, h.type_name), arg_tensors)


def test_scalars_and_containers():
    value = {"a": [1, 2.5, None, True, "s"], "b": (float("nan"), float("inf"), -0.0),
             3: {"nested": (1, [2])}, "big": 2**80, "c": 1 + 2j, "bytes": b"\x00\xff"}
    out = roundtrip(value)
    assert out["a"] == [1, 2.5, None, True, "s"] and isinstance(out["b"], tuple)
    assert np.isnan(out["b"][0]) and out["b"][1] == float("inf")
    assert out[3] == {"nested": (1, [2])} and out["big"] == 2**80
    assert out["c"] == 1 + 2j and out["bytes"] == b"\x00\xff"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool,
                                   torch.bfloat16, torch.uint8])
def test_tensor_keeps_dtype_shape_strides(dtype):
    base = torch.arange(60).reshape(5, 12).to(dtype)
    X = base[1:4, ::3].T  # non-contiguous, offset, transposed
    out = roundtrip(X)
    assert out.dtype == dtype and out.shape == X.shape and out.stride() == X.stride()
    assert torch.equal(out, X)


def test_requires_grad_and_grad_travel():
    X = torch.randn(3, 2, requires_grad=True)
    X.grad = torch.ones(3, 2)
    out = roundtrip(X)
    assert out.requires_grad and out.is_leaf and torch.equal(out.grad, X.grad)


def test_shared_storage_stays_shared():
    base = torch.randn(4, 4)
    a, b = roundtrip((base, base.T))
    a[0, 1] = 42.0
    assert b[1, 0] == 42.0


def test_result_that_views_an_argument_views_the_callers_tensor():
    caller = torch.randn(3, 4)
    worker_copy = caller.clone()
    view = worker_copy.view(-1)
    out = roundtrip(view, arg_tensors=[caller],
                    arg_storages={worker_copy.untyped_storage().data_ptr(): 0})
    assert out.data_ptr() == caller.data_ptr()
    out[0] = 7.0
    assert caller[0, 0] == 7.0


def request_roundtrip(value):
    return wire.load_request(wire.dump_request(value), lambda ref_id: None)


@pytest.mark.parametrize("make", [
    lambda: torch.arange(60.0).reshape(5, 12)[1:4, ::3].T,  # offset, strided, transposed
    lambda: torch.randn(3, 2, dtype=torch.float64, requires_grad=True),
    lambda: torch.randn(2).expand(3, 2),  # stride 0
    lambda: torch.zeros(0, 3),
    lambda: torch.tensor(True),
    lambda: torch.randn(2, 2, dtype=torch.complex64).conj(),  # the conj bit: torch's pickling
    lambda: torch.nn.Parameter(torch.randn(2, 3)),  # a subclass: torch's pickling
], ids=["view", "requires-grad", "expanded", "empty", "bool-scalar", "conj", "parameter"])
def test_request_tensors_keep_dtype_view_and_requires_grad(make):
    X = make()
    out = request_roundtrip(X)
    assert type(out) is type(X) and out.dtype == X.dtype and out.shape == X.shape
    assert out.stride() == X.stride() and out.storage_offset() == X.storage_offset()
    assert out.requires_grad == X.requires_grad and torch.equal(out.detach(), X.detach())
    assert out.is_conj() == X.is_conj()


def test_request_tensor_is_a_writable_copy():
    X = torch.arange(6.0).reshape(2, 3)
    out = request_roundtrip(X.T)
    out.add_(1)  # the worker's student code may write in place
    assert torch.equal(X, torch.arange(6.0).reshape(2, 3)) and out[0, 1] == 4.0


def test_numpy_devices_dtypes_and_refs():
    out = roundtrip([np.arange(6, dtype=np.int32).reshape(2, 3), np.float32(1.5),
                     torch.device("cpu"), torch.float64, object()])
    assert out[0].dtype == np.int32 and out[0].shape == (2, 3)
    assert isinstance(out[1], np.float32) and out[1] == 1.5
    assert out[2] == torch.device("cpu") and out[3] is torch.float64
    assert out[4][0] == "remote" and out[4][2] == "object"


def craft(tree, storages=(), blobs=()) -> bytes:
    doc = json.dumps({"tree": tree, "storages": list(storages),
                      "blob_sizes": [len(b) for b in blobs]}).encode()
    return struct.pack(">I", len(doc)) + doc + b"".join(blobs)


TENSOR = {"t": "tensor", "dtype": "float32", "size": [2], "stride": [1], "offset": 0,
          "device": "cpu", "requires_grad": False, "storage": 0}


@pytest.mark.parametrize("payload", [
    b"",
    b"\x00\x00\x00\x10{not json",
    craft({"t": "pickle", "v": "gASVAAAAAAAAAACMCGJ1aWx0aW5zlIwEZXZhbJSTlC4="}),
    craft({"t": "tensor", **{k: v for k, v in TENSOR.items() if k != "t"}, "size": [100]},
          [{"dtype": "float32", "lo": 0, "hi": 2}], [b"\x00" * 8]),
    craft({**TENSOR, "stride": [-1]}, [{"dtype": "float32", "lo": 0, "hi": 2}], [b"\x00" * 8]),
    craft({**TENSOR, "dtype": "object"}, [{"dtype": "float32", "lo": 0, "hi": 2}],
          [b"\x00" * 8]),
    craft(TENSOR, [{"dtype": "float32", "lo": 0, "hi": 2}], [b"\x00" * 7]),
    craft({**TENSOR, "storage": 5}, [{"dtype": "float32", "lo": 0, "hi": 2}], [b"\x00" * 8]),
    craft({**TENSOR, "arg": 0}),
    craft({"t": "list", "v": "notalist"}),
    craft(json.loads("[" * 50 + "]" * 50)),
    craft({"t": "dtype", "v": "os.system"}),
] + [craft(json.loads('{"t": "list", "v": ' * 100 + "[]" + "}" * 100))],
    ids=lambda p: str(len(p)))
def test_decoder_refuses_crafted_payloads(payload):
    with pytest.raises(wire.WireError):
        wire.decode_data(payload, lambda h: None)


@pytest.mark.parametrize("payload", [
    craft({"t": "bigint", "v": "not a number"}),
    craft({"t": "bytes", "v": "zz"}),
    craft({"t": "device", "v": "no such device"}),
    craft({"t": "ref", "id": "x"}),
    craft({"t": "complex", "v": ["a", "b"]}),
    craft(TENSOR, [{"dtype": "float32", "lo": 0, "hi": "2"}], [b"\x00" * 8]),
    craft({**TENSOR, "requires_grad": True, "grad": {**TENSOR, "dtype": "float64",
                                                     "storage": 1}},
          [{"dtype": "float32", "lo": 0, "hi": 2}, {"dtype": "float64", "lo": 0, "hi": 2}],
          [b"\x00" * 8, b"\x00" * 16]),
], ids=["bigint", "bytes", "device", "ref", "complex", "storage-span", "grad-dtype"])
def test_decoder_fails_only_as_a_wire_error(payload):
    """Bytes from a worker are the student's: whatever fails to decode is a WireError (the
    student's crash), never another exception the grader would score as a broken test."""
    with pytest.raises(wire.WireError, match="malformed value"):
        wire.decode_data(payload, lambda h: None)


def test_oversized_message_is_refused_unread():
    a, b = socket.socketpair()
    a.sendall(wire.HEADER.pack(wire.DATA, 1 << 40))
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.recv_message(b, 1 << 20)
    a.close()
    b.close()


# -- a reply's size, bounded before it is decoded ------------------------------------------------


def flood(megabytes: int) -> bytes:
    """A reply whose result is a list of `{}` as many as fit in `megabytes` of JSON: what a
    worker that writes its own bytes can send. `json.loads` of it builds a dict per 3 bytes."""
    items = megabytes * 1_000_000 // 3
    doc = (b'{"tree": {"head": {}, "writeback": [], "result": [' + b"{}," * items + b'{}]}, '
           b'"storages": [], "blob_sizes": []}')
    return struct.pack(">I", len(doc)) + doc


def test_a_reply_flood_is_refused_before_it_is_built():
    """8 MB of `{},{},...` are 2.7 million dicts once parsed (about 200 MB, 3.7 GB for 64 MB):
    the decoder refuses it having built nothing of it."""
    payload = flood(8)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError, match="return a tensor"):
            client.decode_reply(payload, "nonce", [], lambda h: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(payload), f"decoding a refused reply took {peak >> 20} MB"


@pytest.mark.parametrize("tree,refused", [
    ([[]] * (wire.MAX_TREE_VALUES // 2), True),  # each item is a `[` and a `,`
    (json.loads("[" * (wire.MAX_TREE_DEPTH + 1) + "]" * (wire.MAX_TREE_DEPTH + 1)), True),
    ([0.5] * wire.MAX_NODES, False),  # the most numbers a decoded value may hold
    (["a,[b,{c:d"] * (wire.MAX_TREE_VALUES // 4), False),  # what strings hold is text
    ([[[0]]] * (wire.MAX_TREE_DEPTH + 1), False),  # more brackets than the depth, not deeper
    ([[[0]]] * (wire.MAX_TREE_DEPTH + 1) + [json.loads("[" * wire.MAX_TREE_DEPTH
                                                       + "]" * wire.MAX_TREE_DEPTH)], True),
], ids=["values", "depth", "numbers", "strings", "wide", "wide-and-deep"])
def test_tree_bounds_count_what_json_would_build(tree, refused):
    doc = json.dumps({"tree": tree, "storages": [], "blob_sizes": []}).encode()
    if refused:
        with pytest.raises(wire.WireError, match="return a tensor"):
            wire.check_tree(doc)
    else:
        wire.check_tree(doc)


def test_a_result_too_large_to_send_says_so_in_the_worker(monkeypatch):
    """An honest result past the bounds (a Python list of millions) is refused where it is
    encoded, with what to do instead, rather than as a reply the grader cannot read."""
    monkeypatch.setattr(wire, "MAX_NODES", 1000)
    monkeypatch.setattr(wire, "MAX_TREE_VALUES", 2000)
    with pytest.raises(wire.WireError, match="return a tensor"):
        wire.encode_data([0] * 1001, lambda obj: (0, "", ""))  # too many values
    with pytest.raises(wire.WireError, match="return a tensor"):
        wire.encode_data([[]] * 500, lambda obj: (0, "", ""))  # too much JSON for them
    wire.encode_data([0] * 999, lambda obj: (0, "", ""))

"""The worker: serves the grader's requests against one submission, inside the sandbox.

It receives pickled requests (it trusts the grader), runs them with `grader.execute`, and
answers with data only (`grader.wire`): the result, the final state of every tensor argument
that changed (data, `.grad`, requires_grad) so in-place updates reach the caller, captured
output, the forbidden calls hit, or a description of the error.
"""

from __future__ import annotations

import io
import socket
import sys
import traceback
from typing import Any

import torch

from grader import sandbox, wire
from grader.execute import (
    MissingFunction,
    NotConnected,
    SubmissionImportError,
    SubmissionModules,
    is_student_frame,
    run,
    student_line,
)
from grader.forbidden import ForbiddenCallError
from grader.wire import tensors_in

MAX_TEXT = 4000


class CappedText(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first `cap` characters and drops the rest."""

    def __init__(self, cap: int):
        self.cap, self.parts, self.size, self.dropped = cap, [], 0, 0

    def write(self, s: str) -> int:
        s = str(s)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        out = "".join(self.parts)
        return out + (f"\n[... {self.dropped} more characters not kept]" if self.dropped else "")


class RefTable:
    """Worker-side objects that cannot travel, addressed by id from the grader."""

    def __init__(self):
        self.objects: dict[int, Any] = {}
        self.next_id = 1

    def add(self, obj: Any) -> tuple[int, str, str]:
        ref_id, self.next_id = self.next_id, self.next_id + 1
        self.objects[ref_id] = obj
        try:
            text = repr(obj)[:300]
        except Exception:
            text = f"<{type(obj).__name__}>"
        return ref_id, type(obj).__name__, text

    def get(self, ref_id: int) -> Any:
        try:
            return self.objects[ref_id]
        except KeyError:
            raise LookupError(f"remote object {ref_id} no longer exists") from None


def _state(t: torch.Tensor) -> tuple:
    g = t.grad if t.is_leaf else None
    return (t._version, t.untyped_storage().data_ptr(), tuple(t.shape), t.stride(),
            t.requires_grad, id(g), None if g is None else g._version)


def _writeback(before: list[tuple], tensors: list[torch.Tensor]) -> list:
    """[index, data or None, requires_grad, grad-changed, grad] for each changed argument."""
    changes = []
    for i, (old, t) in enumerate(zip(before, tensors, strict=True)):
        new = _state(t)
        if new == old:
            continue
        data_changed = new[:4] != old[:4]
        grad_changed = new[5:] != old[5:]
        grad = t.grad.detach() if grad_changed and t.is_leaf and t.grad is not None else None
        changes.append([i, t.detach() if data_changed else None, bool(t.requires_grad),
                        grad_changed, grad])
    return changes


def _error(e: BaseException) -> dict:
    kinds = {NotImplementedError: "not_implemented", MissingFunction: "missing",
             SubmissionImportError: "import", NotConnected: "not_connected",
             ForbiddenCallError: "forbidden", LookupError: "raised"}
    kind = next((k for cls, k in kinds.items() if isinstance(e, cls)), "raised")
    frames = [f for f in traceback.extract_tb(e.__traceback__) if is_student_frame(f.filename)]
    return {"kind": kind, "type": type(e).__name__, "message": str(e)[:MAX_TEXT],
            "where": student_line(e),
            "traceback": "".join(traceback.format_list(frames[-5:]))[:MAX_TEXT]}


class Worker:
    def __init__(self, sock: socket.socket, config: dict, raw_output: int | None = None):
        self.sock, self.config = sock, config
        self.raw_output = raw_output  # the memfd behind fds 1 and 2, in a sandboxed worker
        self.modules = SubmissionModules(config["sources"], config.get("problems", {}))
        self.refs = RefTable()
        self.output_cap = int(config["limits"]["max_output_kb"]) * 1024
        self.capture_output = config.get("capture_output", True)

    def serve(self) -> None:
        while True:
            try:
                _, payload = wire.recv_message(self.sock, 1 << 40)
            except EOFError:
                return
            request = wire.load_request(payload, self.refs.get)
            if request.get("op") == "exit":
                return
            wire.send_message(self.sock, wire.DATA, self.handle(request))

    def handle(self, request: dict) -> bytes:
        op = request["op"]
        if op == "release":
            for ref_id in request["refs"]:
                self.refs.objects.pop(ref_id, None)
            return self._reply(request, None, [], [], None, "", "")
        tensors = tensors_in([request.get("args", ()), request.get("kwargs", {})])
        for t, grad in zip(tensors, request.get("arg_grads") or (), strict=False):
            if grad is not None:  # pickle does not carry .grad
                t.grad = grad
        before = [_state(t) for t in tensors]
        out, err = CappedText(self.output_cap), CappedText(self.output_cap)
        hits: list[str] = []
        saved = sys.stdout, sys.stderr
        if self.capture_output:
            sys.stdout, sys.stderr = out, err
        result, error = None, None
        try:
            result = self._run(request, hits)
        except BaseException as e:  # noqa: B036 - student code may raise SystemExit
            error = _error(e)
        finally:
            sys.stdout, sys.stderr = saved
        err_text = err.text()
        if self.raw_output is not None:
            err_text += sandbox.take_raw_output(self.raw_output, self.output_cap)
        return self._reply(request, result, hits, self._safe_writeback(before, tensors),
                           error, out.text(), err_text, tensors)

    def _run(self, request: dict, hits: list[str]) -> Any:
        if request["op"] != "ref":
            return run(request, self.modules, hits)
        fn = _ref_action(self.refs.get(request["ref"]), request["action"], request)
        return run({**request, "kind": "remote", "fn": fn, "args": (), "kwargs": {}},
                   self.modules, hits)

    def _safe_writeback(self, before, tensors) -> list:
        try:
            return _writeback(before, tensors)
        except Exception:
            return []

    def _reply(self, request, result, hits, writeback, error, out, err, tensors=()) -> bytes:
        arg_storages = {t.untyped_storage().data_ptr(): i for i, t in enumerate(tensors)
                        if t.device.type == "cpu"}
        head = {"nonce": request.get("nonce"), "ok": error is None, "error": error,
                "flags": hits, "stdout": out, "stderr": err}
        try:
            enc = wire.DataEncoder(self.refs.add, arg_storages)
            tree = {"result": enc.encode(result)}
            enc.arg_storages = {}
            tree["writeback"] = enc.encode(writeback)
            tree["head"] = enc.encode(head)
            return enc.finish(tree)
        except Exception as e:
            head.update(ok=False, error={
                "kind": "unsendable", "type": type(e).__name__, "where": "", "traceback": "",
                "message": f"the result could not be sent back to the grader: {e}"[:MAX_TEXT]})
            enc = wire.DataEncoder(self.refs.add)
            return enc.finish({"result": None, "writeback": enc.encode([]),
                               "head": enc.encode(head)})


def _ref_action(obj: Any, action: str, request: dict):
    """A zero-argument callable doing `action` on a worker-side object."""
    args, kwargs = request.get("args", ()), request.get("kwargs", {})
    actions = {
        "call": lambda: obj(*args, **kwargs),
        "getattr": lambda: getattr(obj, request["name"]),
        "setattr": lambda: setattr(obj, request["name"], args[0]),
        "iter": lambda: iter(obj),
        "next": lambda: next(obj),
        "len": lambda: len(obj),
        "getitem": lambda: obj[args[0]],
        "float": lambda: float(obj),
        "int": lambda: int(obj),
        "bool": lambda: bool(obj),
        "repr": lambda: repr(obj),
    }
    fn = actions[action]
    fn.__name__ = f"{type(obj).__name__}.{action}"
    return fn

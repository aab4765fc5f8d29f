"""The worker: serves the grader's requests against one submission, inside the sandbox.

It receives pickled requests (it trusts the grader), runs them with `grader.sandbox.execute`, and
answers with data only (`grader.sandbox.wire`): the result, the final state of each tensor argument
the contract lets the function update in place (data, `.grad`, requires_grad) so those updates
reach the caller, what changed in any other argument (which fails the test), captured output,
the forbidden calls hit, or a description of the error. An object that stays here (a
generator, a net) keeps the arguments of the call that made it, checked again on every later
request on it: a generator's body runs only when it is iterated.
"""

from __future__ import annotations

import functools
import io
import socket
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from grader.sandbox import isolation, wire
from grader.sandbox.execute import (
    MissingFunction,
    NotConnected,
    SubmissionImportError,
    SubmissionModules,
    is_student_frame,
    run,
    student_line,
)
from grader.sandbox.forbidden import ForbiddenCallError
from grader.sandbox.wire import tensors_in

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
    """Worker-side objects that cannot travel, addressed by id from the grader, each with the
    call that made it (its `Origin`, when that call had arguments to watch)."""

    def __init__(self):
        self.objects: dict[int, Any] = {}
        self.origins: dict[int, Origin] = {}
        self.next_id = 1

    def add(self, obj: Any, origin: Origin | None = None) -> tuple[int, str, str]:
        ref_id, self.next_id = self.next_id, self.next_id + 1
        self.objects[ref_id] = obj
        if origin is not None:
            self.origins[ref_id] = origin
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

    def release(self, ref_id: int) -> None:
        self.objects.pop(ref_id, None)
        self.origins.pop(ref_id, None)

    def arguments(self, request: dict) -> list[torch.Tensor]:
        """The request's tensor arguments as the grader counts them: a RemoteRef among them
        arrives here as the object itself, and the tensors inside it (a list of parameters)
        are this worker's own, not arguments the grader sent."""
        own = {id(t) for obj in self.objects.values() for t in tensors_in(obj)}
        return [t for t in tensors_in([request.get("args", ()), request.get("kwargs", {})])
                if id(t) not in own]


def _grad(t: torch.Tensor) -> torch.Tensor | None:
    return t.grad if t.is_leaf else None


def _state(t: torch.Tensor) -> tuple:
    """What any change to a tensor touches (versions, storage, geometry, requires_grad, .grad):
    equal states mean nothing changed, cheaply."""
    g = _grad(t)
    return (t._version, t.untyped_storage().data_ptr(), tuple(t.shape), t.stride(),
            t.requires_grad, id(g), None if g is None else g._version)


def _largest_difference(old: torch.Tensor, new: torch.Tensor) -> float | None:
    """The largest absolute difference between two tensors of one shape and dtype (inf where a
    nan appeared or went), or None when they are equal entry for entry (nan equal to nan)."""
    same = old == new
    if old.is_floating_point() or old.is_complex():
        same |= old.isnan() & new.isnan()
    if bool(same.all()):
        return None
    wide = torch.complex128 if old.is_complex() else torch.float64
    diff = (old.to(wide) - new.to(wide)).abs()[~same]
    return float(diff.nan_to_num(nan=float("inf")).max())


def _is_rounding(diff: float, old: torch.Tensor) -> bool:
    """Whether a change is as small as the float rounding of one add-and-subtract: what a
    function that perturbs its argument and undoes it by arithmetic leaves behind."""
    if not old.is_floating_point():
        return False
    finite = old[old.isfinite()]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    return diff <= 8 * torch.finfo(old.dtype).eps * scale


class ArgumentSnapshot:
    """One tensor argument of a call as student code received it, named as the reference names
    it. An argument the contract lets change (`in_place`) is only tracked to send its new state
    back; any other keeps a copy of its values, layout, requires_grad and .grad, to tell what
    the caller would see changed."""

    def __init__(self, tensor: torch.Tensor, name: str, in_place: bool):
        self.tensor, self.name, self.in_place = tensor, name, in_place
        self.state = _state(tensor)
        if not in_place:
            self.values, self.stride = tensor.detach().clone(), tensor.stride()
            self.requires_grad = tensor.requires_grad
            grad = _grad(tensor)
            self.grad = None if grad is None else grad.detach().clone()

    def writeback(self, index: int) -> list | None:
        """[index, data or None, requires_grad, grad-changed, grad] when it changed."""
        t, old, new = self.tensor, self.state, _state(self.tensor)
        if new == old:
            return None
        data_changed, grad_changed = new[:4] != old[:4], new[5:] != old[5:]
        grad = _grad(t)
        grad = grad.detach() if grad_changed and grad is not None else None
        return [index, t.detach() if data_changed else None, bool(t.requires_grad),
                grad_changed, grad]

    def changes(self) -> list[list]:
        """What changed since the snapshot, as data for the grader's message: ["values",
        largest change, only rounding?], ["shape", old, new], ["dtype", old, new],
        ["strides"], ["requires_grad", now], ["grad", has one now]."""
        t = self.tensor
        if _state(t) == self.state:
            return []
        found = []
        if t.dtype != self.values.dtype:
            found.append(["dtype", str(self.values.dtype), str(t.dtype)])
        elif t.shape != self.values.shape:
            found.append(["shape", list(self.values.shape), list(t.shape)])
        else:
            diff = _largest_difference(self.values, t.detach())
            if diff is not None:
                found.append(["values", diff, _is_rounding(diff, self.values)])
            if t.stride() != self.stride:
                found.append(["strides"])
        if t.requires_grad != self.requires_grad:
            found.append(["requires_grad", bool(t.requires_grad)])
        grad = _grad(t)
        if (grad is None) != (self.grad is None) or grad is not None and (
                grad.shape != self.grad.shape or _largest_difference(self.grad, grad) is not None):
            found.append(["grad", grad is not None])
        return found


def _snapshots(tensors: list[torch.Tensor], arguments: object) -> list[ArgumentSnapshot]:
    """A snapshot of each tensor argument; `arguments` is the grader's [name, in place] per
    tensor (a tensor it did not describe is watched, under its position)."""
    described = arguments if isinstance(arguments, list) else []
    return [ArgumentSnapshot(t, *(described[i] if i < len(described) else (f"#{i + 1}", False)))
            for i, t in enumerate(tensors)]


def _changed(snapshots: list[ArgumentSnapshot]) -> list[list]:
    """[name, changes] for each argument that changed without the contract allowing it."""
    found = [[s.name, s.changes()] for s in snapshots if not s.in_place]
    return [entry for entry in found if entry[1]]


@dataclass
class Origin:
    """The call that made a worker-side object, with the arguments it must leave alone: the
    object may hold them and change them later (a generator's body runs as it is iterated)."""

    function: str
    arguments: list[ArgumentSnapshot]

    def report(self, obj: Any) -> dict | None:
        """What changed in those arguments, for the grader's message, or None."""
        changed = _changed(self.arguments)
        if not changed:
            return None
        return {"function": self.function, "iterated": isinstance(obj, Iterator),
                "arguments": changed}


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
                self.refs.release(ref_id)
            return self._reply(request, None, [], None, "", "")
        tensors = self.refs.arguments(request)
        for t, grad in zip(tensors, request.get("arg_grads") or (), strict=False):
            if grad is not None:  # pickle does not carry .grad
                t.grad = grad
        args = _snapshots(tensors, request.get("arguments"))
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
            err_text += isolation.take_raw_output(self.raw_output, self.output_cap)
        return self._reply(request, result, hits, error, out.text(), err_text, args)

    def _run(self, request: dict, hits: list[str]) -> Any:
        if request["op"] != "ref":
            return run(request, self.modules, hits)
        fn = _ref_action(self.refs.get(request["ref"]), request["action"], request)
        return run({**request, "kind": "remote", "fn": fn, "args": (), "kwargs": {}},
                   self.modules, hits)

    def _check_arguments(self, request: dict, args: list[ArgumentSnapshot]) -> tuple:
        """(writeback of the arguments allowed to change, [name, changes] of the others, what
        changed in the arguments of the call that made the object this request used)."""
        try:
            writeback = [s.writeback(i) for i, s in enumerate(args) if s.in_place]
            origin = self.refs.origins.get(request.get("ref")) if request["op"] == "ref" else None
            later = origin.report(self.refs.objects.get(request["ref"])) if origin else None
            return [w for w in writeback if w is not None], _changed(args), later
        except Exception:  # a tensor that cannot be compared: nothing goes back
            return [], [], None

    def _origin(self, request: dict, args: list[ArgumentSnapshot]) -> Origin | None:
        """The origin of objects this request's result leaves here: a request on an object
        passes on that object's; a call, its arguments that must stay unchanged."""
        if request["op"] == "ref":
            return self.refs.origins.get(request["ref"])
        watched = [s for s in args if not s.in_place]
        return Origin(str(request.get("function")), watched) if watched else None

    def _reply(self, request, result, hits, error, out, err, args=()) -> bytes:
        arg_storages = {s.tensor.untyped_storage().data_ptr(): i for i, s in enumerate(args)
                        if s.tensor.device.type == "cpu"}
        writeback, changed, later = self._check_arguments(request, args)
        head = {"nonce": request.get("nonce"), "ok": error is None, "error": error,
                "flags": hits, "stdout": out, "stderr": err, "changed": changed,
                "changed_later": later}
        try:
            enc = wire.DataEncoder(functools.partial(self.refs.add,
                                                     origin=self._origin(request, args)),
                                   arg_storages)
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

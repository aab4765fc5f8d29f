"""The worker: serves the grader's requests against one submission, inside the sandbox.

It receives pickled requests (it trusts the grader), runs them with `grader.sandbox.execute`, and
answers with data only (`grader.sandbox.wire`): the result, the final state of each tensor argument
the contract lets the function update in place (data, `.grad`, requires_grad) so those updates
reach the caller, what changed in any other argument (which fails the test), captured output,
the forbidden calls hit, or a description of the error. An object that stays here (a
generator, a net) keeps the arguments of the call that made it, checked again on every later
request on it: a generator's body runs only when it is iterated.

Whose failure is what. This process runs the student's code, so the grader believes nothing it
says about the grader's own code. An argument left as something no comparison can read (a
tensor subclass, another device, a storage freed under it) is reported as changed, naming the
argument: the student's failure. Where our comparison of an ordinary tensor raises anyway, the
reply's `unchecked` carries both states of that argument as data and the grader compares them
in its own process (`compare`); only a failure there is the grader's (`GraderError`). A step of
the grader's own that fails here (copying the arguments, setting up a call's guards) comes
back as an error of kind "grader" with its step, which the grader reproduces the same way.
"""

from __future__ import annotations

import functools
import io
import socket
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from grader.sandbox import isolation, wire
from grader.sandbox.execute import (
    Callback,
    GraderStepFailed,
    MissingFunction,
    NotConnected,
    SubmissionImportError,
    SubmissionModules,
    run,
)
from grader.sandbox.forbidden import ForbiddenCallError
from grader.sandbox.wire import tensors_in

if TYPE_CHECKING:
    from grader.sandbox.audit import Backstop

MAX_TEXT = 4000


class CappedText(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first `cap` characters and drops the rest."""

    def __init__(self, cap: int):
        self.cap, self.size, self.dropped = cap, 0, 0
        self.parts: list[str] = []

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
        self.named: list[Any] = []  # the objects the last request loaded named (`load`)

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

    def load(self, payload: bytes) -> dict:
        """A request from the grader, each RemoteRef in it resolved to the object it names;
        those objects are kept for `arguments`."""
        self.named = []

        def resolve(ref_id: int) -> Any:
            obj = self.get(ref_id)
            self.named.append(obj)
            return obj

        return wire.load_request(payload, resolve)

    def arguments(self, request: dict) -> list[torch.Tensor]:
        """The request's tensor arguments as the grader counts them: a RemoteRef among them
        arrives here as the object itself, and the tensors inside it (a list of parameters)
        are this worker's own, not arguments the grader sent. Only an object the request
        named can bring this worker's tensors into it (every other value arrives new), so
        only those are searched, not every object the worker holds (hundreds, in a topic)."""
        own = {id(t) for obj in self.named for t in tensors_in(obj)}
        return [t for t in tensors_in([request.get("args", ()), request.get("kwargs", {})])
                if id(t) not in own]


def _grad(t: torch.Tensor) -> torch.Tensor | None:
    return t.grad if t.is_leaf else None


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


COMPARABLE_DEVICES = ("cpu", "cuda")


def compare(before: dict, after: dict) -> list[list]:
    """What changed between two states of a tensor argument, each {"values": a tensor,
    "stride": its strides, "requires_grad", "grad": a tensor or None}, as data for the
    grader's message: ["device", old, new], ["dtype", old, new], ["shape", old, new],
    ["values", largest change, only rounding?], ["strides"], ["requires_grad", now],
    ["grad", has one now]. The worker runs it on an argument's copy and the argument itself;
    the grader runs it on the same two states sent back as data when the worker could not."""
    old, new = before["values"], after["values"]
    if new.device != old.device or new.device.type not in COMPARABLE_DEVICES:
        return [["device", str(old.device), str(new.device)]]
    found: list[list] = []
    if new.dtype != old.dtype:
        found.append(["dtype", str(old.dtype), str(new.dtype)])
    elif new.shape != old.shape:
        found.append(["shape", list(old.shape), list(new.shape)])
    else:
        diff = _largest_difference(old, new)
        if diff is not None:
            found.append(["values", diff, _is_rounding(diff, old)])
        if tuple(after["stride"]) != tuple(before["stride"]):
            found.append(["strides"])
    if bool(after["requires_grad"]) != bool(before["requires_grad"]):
        found.append(["requires_grad", bool(after["requires_grad"])])
    old_grad, grad = before["grad"], after["grad"]
    if (grad is None) != (old_grad is None) or grad is not None and (
            grad.shape != old_grad.shape or grad.dtype != old_grad.dtype
            or grad.device != old_grad.device or _largest_difference(old_grad, grad) is not None):
        found.append(["grad", grad is not None])
    return found


def _readable(t: torch.Tensor) -> bool:
    """Whether `t`'s storage holds every element its geometry reaches: reading a tensor whose
    storage was resized or freed under it reads freed memory."""
    if t.numel() == 0:
        return True
    extent = int(t.storage_offset()) + sum((size - 1) * stride for size, stride
                                      in zip(t.shape, t.stride(), strict=True)) + 1
    return extent * t.element_size() <= t.untyped_storage().nbytes()


def _unusable(t: torch.Tensor, kind: type, device: torch.device) -> list[list]:
    """What leaves an argument something no comparison or writeback can read, the student's
    doing: another class (a tensor subclass runs its own code in every operation on it, ours
    included), another device, a storage too small for its geometry; the same of its .grad."""
    if type(t) is not kind:
        return [["type", type(t).__name__]]
    if t.device != device:
        return [["device", str(device), str(t.device)]]
    if not _readable(t):
        return [["storage"]]
    grad = _grad(t)
    if grad is None:
        return []
    if type(grad) is not torch.Tensor:
        return [["grad_type", type(grad).__name__]]
    if grad.device != device or not _readable(grad):
        return [["grad_storage"]]
    return []


class ArgumentSnapshot:
    """One tensor argument of a call as student code received it, named as the reference names
    it. An argument the contract lets change (`in_place`) is only tracked to send its new state
    back; any other keeps a copy of its values, layout, requires_grad and .grad, to tell what
    the caller would see changed."""

    def __init__(self, tensor: torch.Tensor, name: str, in_place: bool):
        self.tensor, self.name, self.in_place = tensor, name, in_place
        self.kind, self.device = type(tensor), tensor.device
        self.before: dict | None = None
        if not in_place:
            grad = _grad(tensor)
            self.before = {"values": tensor.detach().clone(), "stride": list(tensor.stride()),
                           "requires_grad": bool(tensor.requires_grad),
                           "grad": None if grad is None else grad.detach().clone()}

    def unusable(self) -> list[list]:
        """Changes that leave the argument unreadable to us (see `_unusable`)."""
        return _unusable(self.tensor, self.kind, self.device)

    def after(self) -> dict:
        """The argument's state now, in `compare`'s terms."""
        t = self.tensor
        grad = _grad(t)
        return {"values": t.detach(), "stride": list(t.stride()),
                "requires_grad": bool(t.requires_grad),
                "grad": None if grad is None else grad.detach()}

    def writeback(self, index: int) -> list:
        """[index, data, requires_grad, True, grad]: the whole state. Nothing cheaper tells
        whether it changed: a write through `p.data` (or any other alias) leaves the version
        counters as they were."""
        now = self.after()
        return [index, now["values"], now["requires_grad"], True, now["grad"]]

    def changes(self) -> list[list]:
        """What changed since the snapshot (`compare`'s terms, or `_unusable`'s)."""
        found = self.unusable()
        if found:  # no fast path by version counter: writes through `X.data` do not bump it
            return found
        assert self.before is not None, "only an argument that may not change is compared"
        return compare(self.before, self.after())


def snapshots(tensors: list[torch.Tensor], arguments: object) -> list[ArgumentSnapshot]:
    """A snapshot of each tensor argument; `arguments` is the grader's [name, in place] per
    tensor (a tensor it did not describe is watched, under its position)."""
    described = arguments if isinstance(arguments, list) else []
    return [ArgumentSnapshot(t, *(described[i] if i < len(described) else (f"#{i + 1}", False)))
            for i, t in enumerate(tensors)]


def _check(snapshots: list[ArgumentSnapshot], writeback: list | None = None
           ) -> tuple[list[list], list[dict]]:
    """([name, changes] of each argument that changed without the contract allowing it, the
    `unchecked` arguments whose comparison raised here: both states, for the grader to compare).
    The in-place arguments' states go to `writeback`; one left unusable is a change, since it
    cannot go back."""
    changed, unchecked = [], []
    for index, s in enumerate(snapshots):
        try:
            found = s.unusable()
            if not found and s.in_place:
                if writeback is not None:
                    writeback.append(s.writeback(index))
                continue
            found = found or s.changes()
        except Exception:
            try:
                if s.in_place:
                    if writeback is not None:
                        writeback.append(s.writeback(index))
                    continue
                unchecked.append({"name": s.name, "before": s.before, "after": s.after(),
                                  "traceback": traceback.format_exc()[-MAX_TEXT:]})
                continue
            except Exception:  # its state cannot even be read: only the student makes that
                found = [["storage"]]
        if found:
            changed.append([s.name, found])
    return changed, unchecked


@dataclass
class Origin:
    """The call that made a worker-side object, with the arguments it must leave alone: the
    object may hold them and change them later (a generator's body runs as it is iterated)."""

    function: str
    arguments: list[ArgumentSnapshot]

    def report(self, obj: Any, iterated: bool) -> dict | None:
        """What changed in those arguments (and those the grader must compare, `_check`), for
        the grader's message, or None; `iterated`: whether `obj` is an iterator."""
        changed, unchecked = _check(self.arguments)
        if not changed and not unchecked:
            return None
        return {"function": self.function, "iterated": iterated, "arguments": changed,
                "unchecked": unchecked}


def _text(value: object) -> str:
    """`str(value)`, cut; a student's exception may make even that raise."""
    try:
        return str(value)[:MAX_TEXT]
    except Exception:
        return "(its message cannot be shown)"


def _error(e: BaseException, modules: SubmissionModules) -> dict:
    """The description of a request's failure, for `grader.handle._failure_from_error`."""
    if isinstance(e, GraderStepFailed):
        return _step_error(e.step, e.__cause__ or e)
    kinds = {NotImplementedError: "not_implemented", MissingFunction: "missing",
             SubmissionImportError: "import", NotConnected: "not_connected",
             ForbiddenCallError: "forbidden", LookupError: "raised"}
    kind = next((k for cls, k in kinds.items() if isinstance(e, cls)), "raised")
    try:
        frames = modules.student_frames(e)
        where, shown = modules.student_line(e), "".join(traceback.format_list(frames[-5:]))
    except Exception:
        where, shown = "", ""
    return {"kind": kind, "type": type(e).__name__, "message": _text(e), "where": where,
            "traceback": shown[:MAX_TEXT]}


def _step_error(step: str, e: BaseException) -> dict:
    """A failure of the grader's own `step` here: the grader reproduces the step in its own
    process before it calls this its error (see the module docstring)."""
    try:
        shown = "".join(traceback.format_exception(e))[-MAX_TEXT:]
    except Exception:
        shown = ""
    return {"kind": "grader", "step": step, "type": type(e).__name__, "message": _text(e),
            "where": "", "traceback": shown}


def _is_iterator(obj: Any) -> bool:
    try:
        return isinstance(obj, Iterator)
    except Exception:  # an object whose __class__ raises
        return False


class Worker:
    """Serves requests; in a sandboxed worker with the audit hook's `backstop` (the hook's
    refusals join each request's hits), which `--in-process` has not (a hook binds the
    process for good, the student's debugger and test runner with it)."""

    def __init__(self, sock: socket.socket | None, config: dict, raw_output: int | None = None,
                 backstop: Backstop | None = None):
        self.sock, self.config = sock, config  # no socket: `LocalWorker` calls `handle`
        self.raw_output = raw_output  # the memfd behind fds 1 and 2, in a sandboxed worker
        self.backstop = backstop
        self.modules = SubmissionModules(config["sources"], config.get("problems", {}))
        self.refs = RefTable()
        self.output_cap = int(config["limits"]["max_output_kb"]) * 1024
        self.capture_output = config.get("capture_output", True)
        # how a stand-in asks the grader for a value (`execute.substituted`): over the socket,
        # or, in-process, what `LocalWorker` sets
        self.callback: Callback | None = self._ask_grader if sock is not None else None

    def _ask_grader(self, function: str, args: tuple, kwargs: dict, grad_output: Any) -> Any:
        """A stand-in's value, asked of the grader over this worker's socket in the middle of
        the request; its arguments travel as data, the answer as a request does."""
        assert self.sock is not None, "only a worker with a socket asks the grader"
        enc = wire.DataEncoder(_cannot_travel)
        wire.send_message(self.sock, wire.CALLBACK, enc.finish({
            "function": enc.encode(function), "args": enc.encode(
                [a.detach() if isinstance(a, torch.Tensor) else a for a in args]),
            "kwargs": enc.encode(dict(kwargs)), "grad_output": enc.encode(grad_output)}))
        _, payload = wire.recv_message(self.sock, 1 << 40)
        answer = wire.load_request(payload, self.refs.get)
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error"))
        return answer.get("result")

    def serve(self) -> None:
        sock = self.sock
        assert sock is not None, "only a worker with a socket serves"
        while True:
            try:
                _, payload = wire.recv_message(sock, 1 << 40)
            except EOFError:
                return
            request = self.refs.load(payload)
            if request.get("op") == "exit":
                return
            wire.send_message(sock, wire.DATA, self.handle(request))

    def handle(self, request: dict) -> bytes:
        op = request["op"]
        if op == "release":
            for ref_id in request["refs"]:
                self.refs.release(ref_id)
            return self._reply(request, None, [], None, "", "")
        try:
            tensors = self.refs.arguments(request)
            for t, grad in zip(tensors, request.get("arg_grads") or (), strict=False):
                if grad is not None:  # pickle does not carry .grad
                    t.grad = grad
            args = snapshots(tensors, request.get("arguments"))
        except Exception as e:  # the grader reproduces it: ours, or code run here before
            return self._reply(request, None, [], _step_error("arguments", e), "", "")
        out, err = CappedText(self.output_cap), CappedText(self.output_cap)
        hits: list[str] = []
        saved = sys.stdout, sys.stderr
        if self.capture_output:
            sys.stdout, sys.stderr = out, err
        result, error = None, None
        try:
            result = self._run(request, hits)
        except BaseException as e:  # noqa: B036 - student code may raise SystemExit
            error = _error(e, self.modules)
        finally:
            sys.stdout, sys.stderr = saved
        err_text = err.text()
        if self.raw_output is not None:
            err_text += isolation.take_raw_output(self.raw_output, self.output_cap)
        return self._reply(request, result, hits, error, out.text(), err_text, args)

    def _run(self, request: dict, hits: list[str]) -> Any:
        refused = None if self.backstop is None else self.backstop.pending
        if request["op"] != "ref":
            return run(request, self.modules, hits, refused, self.callback)
        fn = _ref_action(self.refs.get(request["ref"]), request["action"], request)
        return run({**request, "kind": "remote", "fn": fn, "args": (), "kwargs": {}},
                   self.modules, hits, refused)

    def _check_arguments(self, request: dict, args: list[ArgumentSnapshot]) -> tuple:
        """(writeback of the arguments allowed to change, [name, changes] of the others, the
        others whose comparison raised here (`_check`), what changed in the arguments of the
        call that made the object this request used)."""
        writeback: list = []
        changed, unchecked = _check(args, writeback)
        ref = request.get("ref") if request["op"] == "ref" else None
        origin = self.refs.origins.get(ref) if ref is not None else None
        obj = self.refs.objects.get(request["ref"]) if origin else None
        later = origin.report(obj, _is_iterator(obj)) if origin else None
        return writeback, changed, unchecked, later

    def _origin(self, request: dict, args: list[ArgumentSnapshot]) -> Origin | None:
        """The origin of objects this request's result leaves here: a request on an object
        passes on that object's; a call, its arguments that must stay unchanged."""
        if request["op"] == "ref":
            return self.refs.origins.get(request["ref"])
        watched = [s for s in args if not s.in_place]
        return Origin(str(request.get("function")), watched) if watched else None

    @staticmethod
    def _arg_storages(args: list[ArgumentSnapshot]) -> dict[int, int]:
        """Storage -> argument index, for results that are views of an argument; an argument
        left unusable (`_unusable`) is not looked into."""
        storages = {}
        for i, s in enumerate(args):
            try:
                if not s.unusable() and s.tensor.device.type == "cpu":
                    storages[s.tensor.untyped_storage().data_ptr()] = i
            except Exception:
                continue
        return storages

    def _reply(self, request, result, hits, error, out, err, args=()) -> bytes:
        writeback, changed, unchecked, later = self._check_arguments(request, args)
        if self.backstop is not None and request["op"] != "release":
            # what the hook refused since the last reply, student code caught it or not (a
            # release runs a finalizer at most: its refusals wait for the next call)
            hits.extend(self.backstop.collect())
        head = {"nonce": request.get("nonce"), "ok": error is None, "error": error,
                "flags": hits, "stdout": out, "stderr": err, "changed": changed,
                "unchecked": unchecked, "changed_later": later}
        what = "the result"
        try:
            enc = wire.DataEncoder(functools.partial(self.refs.add,
                                                     origin=self._origin(request, args)),
                                   self._arg_storages(args))
            tree = {"result": enc.encode(result)}
            enc.arg_storages = {}
            what = "the new state of the arguments it may update in place"
            tree["writeback"] = enc.encode(writeback)
            what = "the state of its arguments"
            tree["head"] = enc.encode(head)
            return enc.finish(tree)
        except Exception as e:
            head.update(ok=False, unchecked=[], error={
                "kind": "unsendable", "type": type(e).__name__, "where": "", "traceback": "",
                "message": f"{what} could not be sent back to the grader: {_text(e)}"[:MAX_TEXT]})
            if isinstance(later, dict):
                head["changed_later"] = {**later, "unchecked": []}
            enc = wire.DataEncoder(self.refs.add)
            return enc.finish({"result": None, "writeback": enc.encode([]),
                               "head": enc.encode(head)})


def _cannot_travel(obj: Any) -> Any:
    raise TypeError(f"a {type(obj).__name__} cannot be sent to the grader as an argument")


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

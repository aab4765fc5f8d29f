"""The `student` handle the tests use: `student.softmax(X)` runs the submission's function in
the worker and returns its result as data; `student.gradient(...)` differentiates through it;
objects that cannot travel come back as `RemoteRef`s. With `--in-process` the same requests
are served in this process (`grader.sandbox.client.LocalWorker`: for a student's debugger,
never for grading others).

Every failure of a request raises one of `grader.failures`: the student's (a StudentFailure, or
ArgumentChanged/NotDifferentiable, failed assertions) or the grader's (`GraderError`). The
worker is the student's process, so nothing it reports is taken as the grader's failure on its
word: where it says our code failed in it (an error of kind "grader", an argument it could not
compare), `Session` runs the same code on the same data here, and only a failure here is a
GraderError; otherwise the failure is the student's, whose code changed what ours relies on.
Writing an in-place argument's new state back into the caller's tensor fails as
ArgumentChanged when the student left it in a state that tensor cannot take (another dtype
with requires_grad...), and as GraderError when an update of its values alone fails.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import traceback
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import pytest
import torch

from grader.course import INSTRUCTOR_ONLY, Course, Topic
from grader.failures import (
    ArgumentChanged,
    ForbiddenCall,
    GraderError,
    NotDifferentiable,
    NotImplementedByStudent,
    StudentCrashed,
    StudentFailure,
    StudentRaised,
    StudentTimedOut,
)
from grader.report.schema import Flag
from grader.sandbox import dispatch_guard, forbidden
from grader.sandbox.client import (
    KIT_ROOT,
    LocalWorker,
    Template,
    TemplateFailed,
    WorkerConnection,
    WorkerDied,
    WorkerTimeout,
)
from grader.sandbox.server import compare, snapshots
from grader.sandbox.wire import remote_ref, tensors_in
from grader.scan import allowlist
from grader.scan.source import SourceTooLarge, python_loops
from grader.submission import Submission
from grader.text import clean_text

# The failures live in grader.failures and stay importable from here.
__all__ = ["ArgumentChanged", "ForbiddenCall", "GraderError", "NotDifferentiable",
           "NotImplementedByStudent", "RemoteRef", "Session", "Student", "StudentCrashed",
           "StudentFailure", "StudentRaised", "StudentTimedOut"]


# Bounds on what the grader keeps from a worker (never trusting the worker's own caps)
MAX_TEXT = 4000  # characters of an error message
MAX_WHERE = 200  # characters of " (line N of file.py)"
MAX_NAME = 100  # characters of a type name
MAX_HITS = 50  # distinct forbidden calls read from one reply, and kept for one test
MAX_OUTPUT = 2000  # characters of what the student's code printed, kept per test
MAX_FLAGS_PER_FUNCTION = 20
MAX_FLAGS = 200


def _field(error: dict, key: str, cap: int, default: str = "") -> str:
    """A text field of a worker's error, at most `cap` characters (`default` if not text)."""
    value = error.get(key, default)
    return value[:cap] if isinstance(value, str) else default


def _failure_from_error(function: str, error: object) -> Exception:
    """The StudentFailure for a worker's error description. The worker is the student's
    process, so the description is read as untrusted: any shape, texts cut to a bound."""
    error = error if isinstance(error, dict) else {}
    kind, message = error.get("kind"), _field(error, "message", MAX_TEXT)
    where = _field(error, "where", MAX_WHERE)
    if kind == "not_implemented":
        return NotImplementedByStudent(f"{function} is not written yet (it raises "
                                       "NotImplementedError).")
    if kind in ("missing", "import"):
        cls = NotImplementedByStudent if kind == "missing" else StudentRaised
        return cls(message)
    if kind == "forbidden":
        return ForbiddenCall(message)
    if kind == "not_connected":
        return NotDifferentiable(f"{function}: {message}")
    if error.get("type") == "StopIteration":
        return StopIteration()
    if error.get("type") == "AttributeError" and kind == "raised" and "." in function:
        return AttributeError(message)
    if error.get("type") == "TypeError" and kind == "raised" and function.endswith(".len"):
        return TypeError(message)  # no len(): list(remote_generator) falls back to iterating
    text = f"{function} raised {_field(error, 'type', MAX_NAME, 'an exception')}: {message}{where}"
    if "allocate" in message or error.get("type") == "MemoryError":
        text += " (it ran out of the memory a submission may use)"
    return StudentRaised(text)


MAX_TIMEOUTS = 2  # a function that hangs twice is not called again in this submission
RETRY_FRACTION = 0.25  # of its limit, for a function that ran out of time once
STARVED_FACTOR = 8  # a worker waiting for CPU (a loaded machine) may take 8x its time in wall clock


class Session:
    """One submission being graded: its worker(s), time budget and the flags raised."""

    def __init__(self, submission: Submission, course: Course, template: Template | None,
                 hidden_paths: Sequence[str] = (), threads: int = 1):
        self.submission, self.course, self.template = submission, course, template
        self.limits = course.limits
        self.budget_s = float(self.limits["submission_timeout_s"])
        self.flags: list[Flag] = []
        self.isolation: list[str] = ["in-process"] if template is None else []
        self.worker: WorkerConnection | LocalWorker | None = None
        self.generation = 0
        self.used_s = 0.0
        self.test_hits: list[Flag] = []
        self._seen_hits: set[tuple[str, str, str]] = set()  # (topic, function, call) this test
        self._flag_keys: set[tuple[str, str, str]] = set()
        self._flags_per_function: dict[tuple[str, str], int] = {}
        self.current_topic: Topic | None = None
        self.broken: StudentFailure | None = None
        self.pending_seed: int | None = None
        self.timeouts: dict[str, int] = {}
        self.test_budget_s: float | None = None  # this test's calls in all (grader.budgets)
        self.test_output = ""  # what the student's code printed in this test (`_keep_output`)
        # contract functions the grader serves in place of the student's (`plugin`'s second
        # try of a test whose function calls a wrong one): their values come from the grader
        self.substitute: tuple[str, ...] = ()
        self.test_used_s = 0.0
        self.last_limit_s = 0.0  # of the last request sent
        self._imported: set[tuple[int, str]] = set()  # (worker generation, topic)
        self.import_hung: dict[str, str] = {}  # topic -> why its module is not imported again
        self.fatal = ""  # why grading had to stop, when it did
        self._outside: dict[str, tuple[allowlist.Step, ...]] = {}  # topic -> its steps
        topics = set(course.names)  # a topic's module may import another; nothing else goes
        # A module that steps outside the allow-list never reaches the worker, not even when
        # another topic's module imports it: its code never runs.
        refused = {m: self._refusal(m) for m in submission.sources if m in topics
                   and self.steps_outside(course.topic(m))}
        self.config = {
            "sources": {m: s for m, s in submission.sources.items()
                        if m in topics and m not in refused},
            "problems": {**{m: p for m, p in submission.problems.items() if m in topics},
                         **refused},
            "limits": self.limits, "hidden_paths": list(hidden_paths), "threads": threads,
            "address_space_limit": not torch.cuda.is_available(),
            "imports": [*course.source.imports, *topics],  # for the worker's audit hook
        }

    def begin_test(self, test_id: str, budget_s: float | None = None) -> None:
        """A new test starts: forget the last test's forbidden hits and hang or crash, seed
        the worker's random generators from the test's name on its first call, and give its
        calls `budget_s` seconds in all (None: only the per-call limit)."""
        self.test_hits, self.broken = [], None
        self._seen_hits = set()
        self.pending_seed = zlib.crc32(test_id.encode())
        self.test_budget_s, self.test_used_s = budget_s, 0.0
        self.test_output = ""

    def _keep_output(self, reply: dict) -> None:
        """What the student's code printed (its `sys.stdout`: warnings and libraries' chatter
        go to stderr) in this reply, kept for its test's report entry: the first MAX_OUTPUT
        characters of the test's calls in all (the worker caps each reply)."""
        text = reply.get("stdout")
        room = MAX_OUTPUT - len(self.test_output)
        if isinstance(text, str) and text and room > 0:
            self.test_output += clean_text(text[:room])

    # -- the worker -------------------------------------------------------------------------

    def _worker(self) -> WorkerConnection | LocalWorker:
        if self.template is None:
            self.worker = self.worker or LocalWorker(self.config)
            return self.worker
        if self.worker is None or not self.worker.alive:
            try:
                self.worker = self.template.fork(self.config, int(self.limits.get(
                    "max_reply_mb", 256)) << 20)
            except TemplateFailed as e:  # stop grading: no test may fail for this
                self.fatal = f"cannot grade: {e}"
                pytest.exit(self.fatal, returncode=pytest.ExitCode.INTERRUPTED)
            self.generation += 1
            self.isolation = self.worker.isolation
        return self.worker

    def steps_outside(self, topic: Topic) -> tuple[allowlist.Step, ...]:
        """Where the topic's module steps outside course.toml's [source] allow-list, less what
        the topic `allow`s (each flagged once, with its line); every test of the topic then
        fails without running it. `--in-process` is the student's own debugging: there
        `breakpoint()` is theirs."""
        if topic.name not in self._outside:
            try:
                found = allowlist.costing(self.submission.source(topic.name) or "",
                                          self.course.source, self.course.names, topic.allow,
                                          debugging=self.template is None)
            except SourceTooLarge:  # such a file is refused when the submission is read
                found = ()
            self._outside[topic.name] = found
            self.flags += [{"topic": topic.name, "function": f"{topic.name} (the module)",
                            "call": clean_text(str(step))[:MAX_TEXT], "how": "source"}
                           for step in found[:MAX_FLAGS]]
        return self._outside[topic.name]

    def _refusal(self, module: str) -> str:
        filename = self.submission.sources.get(module, (f"{module}.py", ""))[0]
        return allowlist.message(Path(filename).name,
                                 self.steps_outside(self.course.topic(module)))

    def ensure_imported(self, topic: Topic) -> None:
        """Import the topic's module in the worker on its own, so that a module that hangs
        when imported costs one per-call limit for the whole topic, not one per function. An error
        it raises is left for the call, which reports it (the worker remembers it)."""
        if topic.name in self.import_hung:
            raise StudentTimedOut(self.import_hung[topic.name])
        if self.worker is not None and self.worker.alive and (
                self.generation, topic.name) in self._imported:
            return
        request = {"op": "call", "kind": "import", "module": topic.name, "function": "",
                   "args": (), "kwargs": {}, "forbidden": (), "arguments": []}
        function = f"importing {topic.name}"
        try:
            self.request(topic, request, function)
        except StudentTimedOut:
            if not self.timeouts.get(function):  # not this import: the test was already broken
                raise
            self.import_hung[topic.name] = (
                f"importing your {topic.name} module did not finish within "
                f"{self.last_limit_s:.3g} s, so none of its functions can be graded. Code at the "
                "top level of a module (outside any function) runs when it is imported: look "
                "there for a loop that never ends or a long computation, and move work into "
                "functions.")
            self.broken = StudentTimedOut(self.import_hung[topic.name])
            raise self.broken from None
        except StudentFailure:
            pass
        self._imported.add((self.generation, topic.name))

    def request(self, topic: Topic, request: dict, function: str) -> Any:
        """Run a request for `topic`; every failure raises one of `grader.failures`."""
        args_tensors = tensors_in([request.get("args", ()), request.get("kwargs", {})])
        if self.pending_seed is not None:
            request, self.pending_seed = {**request, "seed": self.pending_seed}, None
        if self.broken is not None:  # one hang or crash per test is enough (hypothesis retries)
            raise type(self.broken)(str(self.broken))
        if request.get("op") != "release" and self.steps_outside(topic):
            raise ForbiddenCall(self._refusal(topic.name))
        if self.timeouts.get(function, 0) >= MAX_TIMEOUTS:
            raise StudentTimedOut(f"{function} ran out of time {MAX_TIMEOUTS} times already, so "
                                  "it is not run again: look for an infinite loop")
        left = self.budget_s - self.used_s
        if left <= 0:
            raise StudentTimedOut(f"the submission used up its {self.budget_s:.0f} s of "
                                  "grading time; the remaining tests were not run")
        limit = cap = min(topic.call_timeout_s, left)
        # A module's import is not a test's work (a notebook's top-level cells run there): it
        # has the per-call limit and spends nothing of the test's budget.
        in_test = request.get("kind") != "import"
        test_budget = self.test_budget_s if in_test else None
        if test_budget is not None:
            if self.test_used_s >= test_budget:
                self.broken = StudentTimedOut(
                    f"this test's calls into your code used up their {test_budget:.3g} s "
                    "(far slower than the reference: vectorise instead of looping over "
                    "elements)")
                raise self.broken
            limit = min(limit, test_budget - self.test_used_s)
        if self.timeouts.get(function):  # an infinite loop loops on every input
            limit = min(limit, (test_budget or topic.call_timeout_s) * RETRY_FRACTION)
        # the wall clock a worker starved of CPU by other processes may take for its time
        cap = min(cap, STARVED_FACTOR * limit)
        arguments = request.get("arguments") or describe_arguments(request.get("args", ()),
                                                                    request.get("kwargs", {}))
        request = {**request, "arguments": arguments,
                   "arg_grads": [t.grad if t.is_leaf else None for t in args_tensors]}
        serve = None
        if self.substitute and request.get("op") in ("call", "gradient"):
            request = {**request, "substitute": list(self.substitute)}
            serve = functools.partial(self._reference_value, topic)
        worker = self._worker()
        before, self.last_limit_s = worker.busy_s, limit
        try:
            reply = worker.request(request, limit, args_tensors, functools.partial(
                self._make_remote, tuple(request.get("forbidden", ()))), serve, cap)
        except WorkerTimeout:
            self.timeouts[function] = self.timeouts.get(function, 0) + 1
            budget = "" if test_budget is None else (
                f"; a test's calls may take {test_budget:.3g} s in all, many times what "
                "the reference takes")
            self.broken = StudentTimedOut(
                f"{function} did not finish within {limit:.3g} s (an infinite loop, or far "
                f"too slow: vectorise instead of looping over elements{budget})")
            raise self.broken from None
        except WorkerDied as e:
            self.broken = StudentCrashed(
                f"the process running {function} died ({e}): a crash, os._exit(), or it was "
                "killed for using too much memory")
            raise self.broken from None
        finally:
            spent = worker.busy_s - before
            self.used_s += spent
            self.test_used_s += spent if in_test else 0.0
        self._record(topic, function, reply.get("flags") or [])
        self._keep_output(reply)
        error = reply.get("error")
        if not reply.get("ok") and isinstance(error, dict) and error.get("kind") == "grader":
            raise _grader_step(function, error, request, args_tensors)
        _apply_writeback(function, args_tensors, reply.get("writeback") or [], arguments)
        changed = _changed_arguments(function, reply.get("changed"), reply.get("changed_later"),
                                     reply.get("unchecked"))
        if changed is not None:
            raise changed
        if not reply.get("ok"):
            raise _failure_from_error(function, error or {})
        return reply.get("result")

    def _reference_value(self, topic: Topic, function: str, args: tuple, kwargs: dict,
                         grad_output: Any) -> Any:
        """A stand-in's value (`grader.sandbox.execute.substituted`): the reference's, computed
        here, on arguments that arrived as data; with `grad_output`, the vector-Jacobian
        product of each argument (None for one that is not a float tensor). Only for the
        functions being substituted."""
        if function not in self.substitute:
            raise LookupError(f"{function} is not served by the grader")
        fn = getattr(reference_module(topic.name), function)
        if grad_output is None:
            with torch.no_grad():
                return fn(*args, **kwargs)
        inputs = [a.detach().requires_grad_() if isinstance(a, torch.Tensor)
                  and a.is_floating_point() else a for a in args]
        wrt = [a for a in inputs if isinstance(a, torch.Tensor) and a.requires_grad]
        with torch.enable_grad():
            grads = iter(torch.autograd.grad(fn(*inputs, **kwargs), wrt, grad_output,
                                             allow_unused=True))
        return [next(grads) if isinstance(a, torch.Tensor) and a.requires_grad else None
                for a in inputs]

    def _record(self, topic: Topic, function: str, hits: object) -> None:
        """Keep the forbidden calls a reply reports: each once per test (any one fails the
        test) and once per submission as a flag. A worker can report anything, so only the
        first MAX_HITS strings of a reply are read, and the flags are capped per function and
        in all; the cost is constant per reply however many hits it claims."""
        if not isinstance(hits, list):
            return
        for call in hits[:MAX_HITS]:
            if not isinstance(call, str):
                continue
            flag: Flag = {"topic": topic.name, "function": function,
                          "call": call[:MAX_NAME], "how": "runtime"}
            key = (topic.name, function, flag["call"])
            if key not in self._seen_hits and len(self.test_hits) < MAX_HITS:
                self._seen_hits.add(key)
                self.test_hits.append(flag)
            count = self._flags_per_function.get(key[:2], 0)
            if key in self._flag_keys or count >= MAX_FLAGS_PER_FUNCTION or (
                    len(self.flags) >= MAX_FLAGS):
                continue
            self._flag_keys.add(key)
            self._flags_per_function[key[:2]] = count + 1
            self.flags.append(flag)

    def _make_remote(self, forbidden: tuple[str, ...], handle) -> RemoteRef:
        """A RemoteRef for a worker-side object, guarded by the forbidden calls of the request
        that made it (`student.Conv2D(3)`'s layer keeps Conv2D's for its forward); its type
        name and repr are the student's text, shown in messages, so they are cleaned and cut
        here."""
        return RemoteRef(self, handle.ref_id, clean_text(str(handle.type_name))[:MAX_NAME],
                         clean_text(str(handle.text))[:MAX_TEXT], self.generation, forbidden)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


@functools.cache
def reference_module(topic: str) -> Any:
    """The topic's reference (`solutions/<topic>.py`), imported in the grader under a name of
    its own; never sent to a worker."""
    import importlib.util

    path = KIT_ROOT / "solutions" / f"{topic}.py"
    spec = importlib.util.spec_from_file_location(f"torchdrill_reference_{topic}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe_arguments(args: tuple, kwargs: dict, names: tuple[str, ...] = (),
                       in_place: tuple[str, ...] = ()) -> list[list]:
    """[name, may change] for each tensor of a request's arguments, in `tensors_in` order: a
    positional argument named by `names` (the reference's parameters: a student who renames
    one changes nothing here) or by its position, a tensor inside a list by its index there;
    those of the arguments named in `in_place` (the contract's) may change."""
    described = []
    for key, value in [*enumerate(args), *kwargs.items()]:
        name = key if isinstance(key, str) else names[key] if key < len(names) else f"#{key + 1}"
        tensors = tensors_in(value)
        described += [[name if isinstance(value, torch.Tensor) else f"{name}[{j}]",
                       name in in_place] for j in range(len(tensors))]
    return described


def _grader_step(function: str, error: dict, request: dict,
                 args_tensors: list[torch.Tensor]) -> Exception:
    """The failure for a worker that says a step of the grader's own failed in it: the step
    is run again here, on the grader's own data; if it fails here too it is a GraderError,
    else the student's code broke it in the worker (or the worker lies) and it is theirs."""
    step = error.get("step")
    try:
        if step == "arguments":  # copying the request's arguments before the call
            snapshots(args_tensors, request.get("arguments"))
        elif step == "setup":  # the call's forbidden-call guards
            names = tuple(request.get("forbidden", ()))
            forbidden.Guard(names, function)
            dispatch_guard.operators(names)
    except Exception as e:
        return GraderError(f"the grader's step {step!r} for {function} failed in the worker and "
                           f"again in the grader: {type(e).__name__}: {e}\n"
                           f"{traceback.format_exc()[-MAX_TEXT:]}")
    what = {"arguments": "copying its arguments", "setup": "setting up its checks"}.get(
        str(step), "the grader's code")
    return StudentCrashed(
        f"{function} could not be run: {what} failed in the process running your code "
        f"({_field(error, 'type', MAX_NAME, 'an error')}: {_field(error, 'message', MAX_TEXT)}), "
        "though it works in the grader. Code of your submission (run when it was imported, or "
        "in an earlier call) changed what that relies on: torch itself, or the grader.")


def _apply_writeback(function: str, tensors: list[torch.Tensor], changes: list,
                     arguments: list) -> None:
    """Mirror the worker's in-place changes to the arguments the contract lets change
    (`arguments`: [name, may change] per tensor) into the caller's tensors; nothing the worker
    sends reaches any other. `changes` is decoded and checked (`client.decode_reply`). A
    state the caller's tensor cannot take is the student's ArgumentChanged; an update of its
    values alone that fails is the grader's."""
    for i, data, requires_grad, grad_changed, grad in changes:
        if not 0 <= i < min(len(tensors), len(arguments)) or not arguments[i][1]:
            continue
        t = tensors[i]
        plain = (data is None or (data.shape == t.shape and data.dtype == t.dtype and
                                  data.device == t.device)) and (
            requires_grad == t.requires_grad) and (
            grad is None or (grad.shape == t.shape and grad.dtype == t.dtype))
        try:
            _write_back(t, data, requires_grad, grad_changed, grad)
        except Exception as e:
            name = clean_text(str(arguments[i][0]))[:MAX_NAME]
            if plain:
                raise GraderError(f"writing the new values of {name} back from {function} "
                                  f"failed: {type(e).__name__}: {e}\n"
                                  f"{traceback.format_exc()[-MAX_TEXT:]}") from e
            left = "" if data is None else f" as a {str(data.dtype).removeprefix('torch.')} " \
                f"tensor of shape {tuple(data.shape)}"
            raise ArgumentChanged(
                f"{function} left its argument {name}{left} (requires_grad={requires_grad}), "
                f"which the caller's {name} cannot take ({str(e)[:300]}). Update {name} in "
                f"place and keep its dtype, shape and requires_grad.") from None


def _write_back(t: torch.Tensor, data: torch.Tensor | None, requires_grad: bool,
                grad_changed: bool, grad: torch.Tensor | None) -> None:
    """One argument's new state into the caller's tensor `t`. requires_grad is turned off
    before the data changes and on after it: data of an integer dtype cannot go into a tensor
    that requires grad."""
    if t.is_leaf and not requires_grad and t.requires_grad:
        t.requires_grad_(False)
    with torch.no_grad():
        if isinstance(data, torch.Tensor):
            if data.shape == t.shape and data.dtype == t.dtype:
                t.copy_(data)
            else:
                t.data = data.to(t.device)
    if t.is_leaf and requires_grad and not t.requires_grad and (
            t.is_floating_point() or t.is_complex()):
        t.requires_grad_(True)
    if grad_changed and t.is_leaf:
        t.grad = grad.to(t.device, t.dtype) if (
            isinstance(grad, torch.Tensor) and grad.shape == t.shape) else None


def _recheck(function: str, unchecked: object) -> list[list]:
    """[name, changes] for the arguments whose comparison raised in the worker (`unchecked`:
    [{name, before, after}], both states as data), compared here by the same `compare`. A
    failure here is the grader's; an entry that is not such data is a worker that lies, which
    gains nothing it could not by reporting no change."""
    if not isinstance(unchecked, list):
        return []
    found = []
    for entry in unchecked[:MAX_CHANGED]:
        states = _states(entry)
        if states is None:
            continue
        name = clean_text(str(entry.get("name")))[:MAX_NAME]
        try:
            changes = compare(*states)
        except Exception as e:
            raise GraderError(f"comparing {function}'s argument {name} before and after the "
                              f"call failed in the worker and again in the grader: "
                              f"{type(e).__name__}: {e}\n"
                              f"{traceback.format_exc()[-MAX_TEXT:]}") from e
        if changes:
            found.append([name, changes])
    return found


def _states(entry: object) -> tuple[dict, dict] | None:
    """(before, after) of an `unchecked` entry when both are states `compare` takes."""
    if not isinstance(entry, dict):
        return None
    before, after = entry.get("before"), entry.get("after")
    if _is_state(before) and _is_state(after):
        return before, after
    return None


def _is_state(state: object) -> TypeGuard[dict]:
    """Whether `state` is a tensor's state as `compare` reads it."""
    return (isinstance(state, dict) and isinstance(state.get("values"), torch.Tensor)
            and isinstance(state.get("stride"), list | tuple)
            and all(type(x) is int for x in state["stride"])
            and isinstance(state.get("requires_grad"), bool)
            and (state.get("grad") is None or isinstance(state["grad"], torch.Tensor)))


WHAT_CHANGED = {"values": "its values", "shape": "its shape", "dtype": "its dtype",
                "strides": "its strides", "requires_grad": "whether it requires grad",
                "grad": "its .grad", "type": "its type", "grad_type": "the type of its .grad",
                "device": "its device", "storage": "its storage",
                "grad_storage": "the storage of its .grad"}
MAX_CHANGED = 5  # arguments named in one message


def _changed_arguments(function: str, changed: object, later: object,
                       unchecked: object = None) -> ArgumentChanged | None:
    """The failure for arguments a call changed (`changed`: [name, changes] from the worker, and
    `unchecked`, the ones compared here: `_recheck`), or that the object a call left in the
    worker changed later (`later`: the function that made it, whether it is iterated, and
    [name, changes], and its own `unchecked`); None when nothing changed. The worker is the
    student's process: anything malformed is read as no change, names are cut."""
    messages = _argument_messages(function, _listed(changed) + _recheck(function, unchecked),
                                  None)
    if isinstance(later, dict):
        maker = clean_text(str(later.get("function")))[:MAX_NAME]
        messages += _argument_messages(
            maker, _listed(later.get("arguments")) + _recheck(maker, later.get("unchecked")),
            later.get("iterated") is True)
    return ArgumentChanged(" ".join(messages)[:MAX_TEXT]) if messages else None


def _listed(value: object) -> list:
    return value if isinstance(value, list) else []


def _argument_messages(function: str, changed: object, iterated: bool | None) -> list[str]:
    """One teaching sentence per changed argument (at most MAX_CHANGED); `iterated` None for
    the call itself, else whether the object the call returned was being iterated."""
    if not isinstance(changed, list):
        return []
    when = "" if iterated is None else " while it was iterated" if iterated else (
        " after it returned, through the object it returned")
    messages = []
    for entry in changed[:MAX_CHANGED]:
        try:
            name, changes = entry
            changes = [c for c in changes if isinstance(c, list) and c and c[0] in WHAT_CHANGED]
        except (TypeError, ValueError):
            continue
        if changes:
            name = clean_text(str(name))[:MAX_NAME]
            whats = ", ".join(WHAT_CHANGED[c[0]] for c in changes)
            messages.append(f"{function} changed its argument {name} in place{when} ({whats}): "
                            f"{_advice(name, {c[0]: c[1:] for c in changes}, iterated)}")
    return messages


def _unusable_advice(name: str, changes: dict[str, list]) -> str:
    """The advice for an argument left as something the grader cannot compare with what the
    caller passed, or '' when it is still a tensor the grader can read."""
    mine = f"Leave the caller's {name} as it is and make a tensor of your own ({name}.clone())."
    for key, what in (("type", name), ("grad_type", f"{name}.grad")):
        if key in changes:
            kind = clean_text(str((changes[key] or ["?"])[0]))[:MAX_NAME]
            return (f"{what} was turned into a {kind} (a tensor subclass runs code of its own "
                    f"in every operation on it), so the grader cannot compare it with what the "
                    f"caller passed. {mine}")
    if "device" in changes:
        return (f"{name} was moved to another device (`{name}.data = ...`): `{name}.to(device)` "
                f"returns a new tensor and leaves {name} where it is. {mine}")
    for key, what in (("storage", name), ("grad_storage", f"{name}.grad")):
        if key in changes:
            return (f"the storage under {what} was resized or freed (`untyped_storage()."
                    f"resize_(...)`), so {what} can no longer be read. {mine}")
    return ""


def _advice(name: str, changes: dict[str, list], iterated: bool | None) -> str:
    """What the change means and how to avoid it, for the change that matters most."""
    values = changes.get("values") or [None, False]
    largest = f" (largest change {values[0]:.3g})" if isinstance(values[0], float) else ""
    modified = f"{name} was modified by your function, which left {name}"
    copy = f"work on a copy ({name}.detach().clone())"
    unusable = _unusable_advice(name, changes)
    if unusable:
        return unusable
    if "values" in changes and values[1] is True:
        return (f"{modified} changed by rounding{largest}: adding eps and subtracting it again "
                f"does not give back the same float. Save the old value and put it back "
                f"({name}[i] = old), or {copy}.")
    if "values" in changes and iterated:
        return (f"{modified} perturbed{largest}. Read {name} without writing into it: shuffle "
                f"a list of indices instead (random.shuffle(indices)) and take "
                f"{name}[batch_indices].")
    if "values" in changes:
        return (f"{modified} perturbed{largest}. Compute a new tensor instead of writing into "
                f"{name} (no `{name} -= ...`, `{name}.exp_()`, `{name}[...] = ...`), or {copy}.")
    if changes.keys() & {"shape", "dtype", "strides"}:
        return (f"{name} was modified by your function: `{name}.t_()`, `{name}.resize_()` and "
                f"`{name}.data = ...` change the caller's tensor. Make a new one instead "
                f"(`{name}.t()`, `{name}.reshape(...)`, `{name}.to(...)`).")
    fresh = f"{name}.detach().clone().requires_grad_(True)"
    if changes.get("grad") == [True]:
        return (f"backward() accumulates into the caller's {name}.grad. Differentiate with "
                f"respect to a fresh leaf, {fresh}, or use torch.autograd.grad.")
    if "grad" in changes:
        return (f"the caller's {name}.grad was cleared. Leave it alone: differentiate with "
                f"respect to a fresh leaf, {fresh}.")
    turned = "on" if changes.get("requires_grad") == [True] else "off"
    return f"requires_grad of the caller's {name} was turned {turned}. Use a copy, {fresh}."


class RemoteRef:
    """A worker-side object (a student's nn.Module, a generator...) used from the grader."""

    def __init__(self, session: Session, ref_id: int, type_name: str, text: str, gen: int,
                 forbidden: tuple[str, ...]):
        object.__setattr__(self, "_remote", (session, ref_id, type_name, text, gen, forbidden))

    def __reduce__(self):
        return remote_ref, (self._remote[1],)  # in a request: the worker's object itself

    def _do(self, action: str, *args, name: str | None = None, **kwargs) -> Any:
        session, ref_id, type_name, _, gen, forbidden = self._remote
        if session.generation != gen:
            raise StudentCrashed(f"this {type_name} lived in a worker that was restarted "
                                 "after a crash or timeout")
        topic = session.current_topic
        request = {"op": "ref", "ref": ref_id, "action": action, "name": name,
                   "args": args, "kwargs": kwargs, "forbidden": forbidden}
        return session.request(topic, request, f"{type_name}.{name or action}")

    def __call__(self, *args, **kwargs):
        return self._do("call", *args, **kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._do("getattr", name=name)

    def __setattr__(self, name: str, value) -> None:
        self._do("setattr", value, name=name)

    def __iter__(self):
        return self._do("iter")

    def __next__(self):
        return self._do("next")

    def __len__(self) -> int:
        return self._do("len")

    def __getitem__(self, key):
        return self._do("getitem", key)

    def __float__(self) -> float:
        return self._do("float")

    def __int__(self) -> int:
        return self._do("int")

    def __bool__(self) -> bool:
        return self._do("bool")

    def __repr__(self) -> str:
        return f"<{self._remote[2]} from your code: {self._remote[3]}>"


class Student:
    """What a test calls: the submission's functions for one topic."""

    def __init__(self, session: Session, topic: Topic):
        self._session, self._topic = session, topic
        self._cuda_devices: int | None = None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def _request(self, kind: str, function: str, args, kwargs, **extra) -> Any:
        contract = () if kind == "remote" else (self._topic.parameters(function),
                                                 self._topic.in_place.get(function, ()))
        request = {"op": kind, "kind": kind, "module": self._topic.name, "function": function,
                   "args": args, "kwargs": kwargs, "cuda_devices": self._cuda_devices,
                   "forbidden": self._topic.forbidden_for(function),
                   "arguments": describe_arguments(args, kwargs, *contract), **extra}
        self._session.current_topic = self._topic
        if kind != "remote":
            self._session.ensure_imported(self._topic)
        return self._session.request(self._topic, request, function)

    def call(self, function: str, *args, **kwargs) -> Any:
        """`function(*args, **kwargs)` from the submission's module for this topic."""
        return self._request("call", function, args, kwargs)

    def gradient(self, function: str, *args, grad_output: torch.Tensor | None = None,
                 wrt: int | tuple[int, ...] = 0, **kwargs) -> Any:
        """`v^T dF/dX` of the student's `function` at `args[wrt]` (v = `grad_output`, default
        ones), computed by autograd in the worker."""
        return self._request("gradient", function, args, kwargs, grad_output=grad_output,
                             wrt=wrt)

    def remote(self, fn, *args, **kwargs) -> Any:
        """Run a public callable (from `torchdrill` or `torch`) inside the worker; objects that
        cannot travel come back as RemoteRefs the student's functions can be given."""
        name = getattr(fn, "__name__", "callable")
        return self._request("remote", name, args, kwargs, fn=fn,
                             forbidden=self._topic.forbidden)

    @contextlib.contextmanager
    def fake_cuda(self, devices: int) -> Iterator[None]:
        """Within this block, torch in the worker reports `devices` CUDA devices."""
        saved, self._cuda_devices = self._cuda_devices, devices
        try:
            yield
        finally:
            self._cuda_devices = saved

    def source(self) -> str | None:
        """The submission's source for this topic (read in the grader, never run)."""
        return self._session.submission.source(self._topic.name)

    def python_loops(self, function: str) -> list[tuple[str, int]]:
        """Python loops in `function` (and helpers it calls), for the no-loops rule."""
        return python_loops(self.source() or "", function)

    @property
    def isolation(self) -> list[str]:
        return self._session.isolation


def hidden_paths(out_dir: str | None, submissions: list[str]) -> list[str]:
    """What a worker must not see: solutions, every test, the kit's history, the instructor's
    code, reports and submissions (its own code reaches it as text)."""
    keep = {"grader", "torchdrill", "datasets", "course.toml", "pyproject.toml"}
    needed = [Path(sys.prefix).resolve(), Path(torch.__file__).resolve()]
    paths = [str(p) for p in KIT_ROOT.iterdir() if p.name not in keep
             and not any(n.is_relative_to(p.resolve()) for n in needed)]
    paths += [str(KIT_ROOT / p) for p in INSTRUCTOR_ONLY]
    paths += [p for p in [out_dir, *submissions] if p]
    return paths

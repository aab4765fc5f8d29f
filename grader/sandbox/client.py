"""Grader side of the worker processes: the template that forks them, and one connection per
worker with a wall-clock limit on every request and a kill that takes the whole namespace.

A reply is the student's data: one that does not decode (`wire.WireError`, a malformed
writeback included) is a worker that broke the protocol, `WorkerDied`, which the handle
scores as the student's crash. A request that cannot be pickled is the grader's (or its
test's) failure, `GraderError`: nothing of the student's reaches a request but data the wire
decoded and references to objects in the worker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from grader.course import KIT_ROOT
from grader.failures import GraderError
from grader.sandbox import cgroups

# grader.sandbox.wire (which imports torch) is imported in the functions that use it, so that
# `python -m grader` can start the template before this process imports torch.

STARTUP_TIMEOUT_S = 120.0


class WorkerDied(Exception):
    """The worker exited or broke the protocol while serving a request."""


class WorkerTimeout(Exception):
    """A request ran past its wall-clock limit; the worker was killed."""


class TemplateFailed(RuntimeError):
    """The template process could not start or serve: the grader's fault, not the student's."""


class Template:
    """The pre-loaded template process (`grader.sandbox.forkserver`), started once per grading run.
    It starts importing torch at once; the first fork waits until it is ready, so the grader's own
    start-up (imports, test collection) overlaps the template's. Forked copies of this process
    (`grader.forked`) share it: a lock file serialises their requests (a POSIX record lock, held
    per process and let go when its holder dies) and holds whether the template is ready."""

    def __init__(self, threads: int = 1, fork: bool = False):
        """`fork`: start the template as a copy of this process (`_fork_here`), which must
        have imported torch and nothing of the course yet; else as a fresh interpreter."""
        self.threads = threads
        if os.getuid() == 0:
            cgroups.sweep()  # workers' cgroups a killed grader left behind
        self._lock = tempfile.TemporaryFile()
        if fork:
            self._fork_here()
        else:
            self._start()

    def _start(self) -> None:
        threads = self.threads
        parent, child = socket.socketpair()
        child.setblocking(True)  # not the non-blocking default of socket.setdefaulttimeout()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "PYTHONDONTWRITEBYTECODE": "1"}
        self.pid = subprocess.Popen(
            [sys.executable, "-m", "grader.sandbox.forkserver", str(child.fileno())],
            pass_fds=[child.fileno()], cwd=str(KIT_ROOT), env=env,
            stdin=subprocess.DEVNULL).pid
        child.close()
        self.control = parent
        os.pwrite(self._lock.fileno(), b"-", 0)  # not ready

    def _fork_here(self) -> None:
        """The template as a fork of this process, taken right after its `import torch` and
        before it reads any test, solution or course file (`python -m grader grade`): the
        template holds only what a fresh import would (torch, this module), and the grading
        run pays one import of torch, not two. A template started again later is a fresh
        interpreter (`_start`): by then this process has read the course."""
        parent, child = socket.socketpair()
        child.setblocking(True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            parent.close()
            _become_template(child, self.threads)
        child.close()
        self.pid, self.control = pid, parent
        os.pwrite(self._lock.fileno(), b"-", 0)  # not ready

    def _wait_ready(self) -> None:
        """Read the template's "ready" byte, once for all processes that share it."""
        if os.pread(self._lock.fileno(), 1, 0) == b"R":
            return
        self.control.settimeout(STARTUP_TIMEOUT_S)
        try:
            ready = self.control.recv(1) == b"R"
        except OSError:
            ready = False
        if not ready:
            raise TemplateFailed("the worker template failed to start (see the output above)")
        self.control.settimeout(None)
        os.pwrite(self._lock.fileno(), b"R", 0)

    def fork(self, config: dict, max_reply_bytes: int) -> WorkerConnection:
        """A new sandboxed worker; a template that died is started again once."""
        from grader.sandbox import wire

        ours, theirs = socket.socketpair()
        theirs.setblocking(True)
        try:
            outer_pid = self._fork(theirs)
        except (OSError, RuntimeError):
            self._stop()
            self._start()
            outer_pid = self._fork(theirs)
        theirs.close()
        wire.send_message(ours, wire.PICKLE, wire.dump_request(config))
        return WorkerConnection(ours, outer_pid, max_reply_bytes)

    def _fork(self, theirs: socket.socket) -> int:
        from grader.sandbox import wire

        fcntl.lockf(self._lock, fcntl.LOCK_EX)
        try:
            self._wait_ready()
            socket.send_fds(self.control, [b"F"], [theirs.fileno()])
            pid = wire.recv_exact(self.control, 8)
        except EOFError:
            raise TemplateFailed("the worker template exited") from None
        finally:
            fcntl.lockf(self._lock, fcntl.LOCK_UN)
        return struct.unpack(">q", pid)[0]

    def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)

    def close(self) -> None:
        self._stop()
        self._lock.close()


def _become_template(sock: socket.socket, threads: int) -> None:
    """In the child of `Template._fork_here`: forget the grader's command line and input, take
    the worker's thread count, and serve as `grader.sandbox.forkserver` (never returns)."""
    code = 70
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.argv = [sys.argv[0]]
        os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                          PYTHONDONTWRITEBYTECODE="1")
        os.chdir(KIT_ROOT)
        import torch

        torch.set_num_threads(threads)  # OpenMP read its environment at import: say it here
        from grader.sandbox import forkserver

        forkserver.main(sock.fileno())
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


Serve = Callable[[str, tuple, dict, Any], Any]  # a stand-in's value (`execute.Callback`)
MAX_CALLBACKS = 10_000  # a stand-in's values asked in one request


def answer_callback(payload: bytes, serve: Serve) -> bytes:
    """The grader's answer to a worker's callback (its arguments decoded as data, never
    unpickled): {"ok": True, "result": ...} or {"ok": False, "error": why}, pickled as a
    request is."""
    from grader.sandbox import wire

    try:
        dec = wire.DataDecoder(payload, _no_remote, [])
        function, args, kwargs, grad_output = (
            dec.decode(dec.tree[k]) for k in ("function", "args", "kwargs", "grad_output"))
        return _pickled({"ok": True, "result": serve(str(function), tuple(args), dict(kwargs),
                                                     grad_output)})
    except Exception as e:  # the worker waits for an answer: it always gets one
        return _pickled({"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})


def _no_remote(handle) -> Any:
    raise ValueError("a callback's arguments are data only")


def decode_reply(reply: bytes, nonce: str, arg_tensors: list, make_remote) -> dict[str, Any]:
    """A worker's reply as the head dict, with its result and writeback decoded as data;
    wire.WireError for anything malformed."""
    from grader.sandbox import wire

    dec = wire.DataDecoder(reply, make_remote, arg_tensors)
    tree = dec.tree
    if not isinstance(tree, dict) or set(tree) != {"head", "result", "writeback"}:
        raise wire.WireError("malformed reply")
    head = dec.decode(tree["head"])
    if not isinstance(head, dict) or head.get("nonce") != nonce:
        raise wire.WireError("reply does not answer this request")
    head["result"] = dec.decode(tree["result"])
    head["writeback"] = _writeback(dec.decode(tree["writeback"]))
    return head


def _writeback(value: Any) -> list[list]:
    """The worker's writeback, checked: [index, data or None, requires_grad, grad changed, grad
    or None] per changed argument."""
    import torch

    from grader.sandbox import wire

    if not isinstance(value, list):
        raise wire.WireError("malformed writeback")
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 5 and type(entry[0]) is int
                and isinstance(entry[2], bool) and isinstance(entry[3], bool)
                and all(x is None or isinstance(x, torch.Tensor) for x in entry[1::3])):
            raise wire.WireError("malformed writeback")
    return value


def _pickled(request: dict[str, Any]) -> bytes:
    """The request as the worker reads it; a request that cannot be pickled is the grader's
    failure (its test handed the worker something that cannot travel)."""
    from grader.sandbox import wire

    try:
        return wire.dump_request(request)
    except Exception as e:
        raise GraderError(f"the request for {request.get('function')!r} cannot be sent to the "
                          f"worker: {type(e).__name__}: {e}") from e


class LocalWorker:
    """`--in-process`: the worker's request loop run in the grader's own process, for a
    student's debugger. No sandbox and no time limit, but the same round trip through the wire
    as a sandboxed worker (arguments copied in, results copied out, in-place changes written
    back, worker-side objects behind RemoteRefs), so a test sees what it sees in grading.
    Output is not captured: prints and breakpoints reach the terminal."""

    isolation = ["in-process"]
    alive = True
    busy_s = 0.0

    def __init__(self, config: dict):
        from grader.sandbox.server import Worker

        self.worker = Worker(None, {**config, "capture_output": False})

    def request(self, request: dict[str, Any], timeout_s: float, arg_tensors: list,
                make_remote, serve: Serve | None = None, cap_s: float | None = None
                ) -> dict[str, Any]:
        from grader.sandbox import wire

        nonce = secrets.token_hex(8)
        payload = _pickled({**request, "nonce": nonce})
        self.worker.callback = serve
        reply = self.worker.handle(self.worker.refs.load(payload))
        try:
            return decode_reply(reply, nonce, arg_tensors, make_remote)
        except wire.WireError as e:  # as from a sandboxed worker: the student's crash
            raise WorkerDied(str(e)) from None

    def close(self) -> None:
        self.worker.refs.objects.clear()


class WorkerConnection:
    """One sandboxed worker; every request has a deadline, and any breach kills it."""

    def __init__(self, sock: socket.socket, outer_pid: int, max_reply_bytes: int):
        self.sock, self.outer_pid, self.max_reply_bytes = sock, outer_pid, max_reply_bytes
        self.alive = True
        self.sock.settimeout(STARTUP_TIMEOUT_S)
        try:
            self.pid = int(self._startup_field("pid"))
            self.isolation = [str(s) for s in self._startup_field("isolation")]
        except Exception as e:
            self.kill()
            raise WorkerDied(f"the worker did not start: {e}") from None
        self.busy_s = 0.0
        self.cpu = cgroups.cpu_clock(str(outer_pid))  # None: its time is the wall clock

    def _startup_field(self, name: str):
        from grader.sandbox import wire

        _, payload = wire.recv_message(self.sock, 1 << 16)
        dec = wire.DataDecoder(payload, lambda h: None)
        return dec.decode(dec.tree[name])

    def request(self, request: dict[str, Any], timeout_s: float, arg_tensors: list,
                make_remote, serve: Serve | None = None, cap_s: float | None = None
                ) -> dict[str, Any]:
        """Send one request and decode the reply as data; kill the worker on any breach.
        The worker may use `timeout_s` of its own time (`_used`), within `cap_s` of wall clock
        (default `timeout_s`): a worker that other processes starve of CPU is not stopped
        for the time it waited. `serve`: what answers the worker's callbacks (a stand-in's
        value) meanwhile, at most MAX_CALLBACKS of them; the grader's own time on them is not
        the worker's."""
        from grader.sandbox import wire

        if not self.alive:
            raise WorkerDied("the worker is no longer running")
        nonce = secrets.token_hex(8)
        payload = _pickled({**request, "nonce": nonce})
        cap_s = max(cap_s or timeout_s, timeout_s)
        start, cpu = time.perf_counter(), None if self.cpu is None else self.cpu.seconds()
        ours, callbacks = 0.0, 0
        try:
            self.sock.settimeout(cap_s)
            wire.send_message(self.sock, wire.PICKLE, payload)
            while True:
                self._await_reply(start, ours, cpu, timeout_s, cap_s)
                kind, reply = wire.recv_message(self.sock, self.max_reply_bytes)
                if kind != wire.CALLBACK:
                    break
                callbacks += 1
                if serve is None or callbacks > MAX_CALLBACKS:
                    raise wire.WireError("the worker asked the grader for values unbidden")
                began = time.perf_counter()
                wire.send_message(self.sock, wire.PICKLE, answer_callback(reply, serve))
                ours += time.perf_counter() - began
            if kind != wire.DATA:
                raise wire.WireError("the worker sent a message that is not data")
            return decode_reply(reply, nonce, arg_tensors, make_remote)
        except TimeoutError:
            self.kill()
            raise WorkerTimeout(f"no answer within {timeout_s:.0f} s") from None
        except (EOFError, OSError, wire.WireError, struct.error) as e:
            self.kill()
            raise WorkerDied(str(e) or type(e).__name__) from None
        finally:
            self.busy_s += self._used(start, ours, cpu)

    def _used(self, start: float, ours: float, cpu: float | None) -> float:
        """The worker's time on this request so far: its wall clock (less the grader's own
        on callbacks), or its CPU time where that is less and the cgroup says it (a loaded
        machine: the wall clock counts the time other processes ran)."""
        wall = time.perf_counter() - start - ours
        if cpu is None or self.cpu is None:
            return wall
        return min(wall, self.cpu.seconds() - cpu)

    def _await_reply(self, start: float, ours: float, cpu: float | None, timeout_s: float,
                     cap_s: float) -> None:
        """Until the worker has something to send: TimeoutError once it has used `timeout_s`
        of its time or `cap_s` of wall clock has passed."""
        while True:
            wall = time.perf_counter() - start - ours
            wait = min(timeout_s - self._used(start, ours, cpu), cap_s - wall)
            if wait <= 0:
                raise TimeoutError
            if select.select([self.sock], [], [], wait)[0]:
                self.sock.settimeout(max(cap_s - wall, 1.0))  # the message itself
                return

    def kill(self) -> None:
        """Kill the worker's namespace (its pid 1) and the process group around it."""
        self.alive = False
        for target in (getattr(self, "pid", None),):
            if target:
                try:
                    os.kill(target, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.outer_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.sock.close()
        clock = getattr(self, "cpu", None)  # not yet there if the worker never started
        if clock is not None:
            clock.close()
            self.cpu = None
        cgroups.remove(str(self.outer_pid))

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        from grader.sandbox import wire

        if self.alive:
            try:
                self.sock.settimeout(1.0)
                wire.send_message(self.sock, wire.PICKLE, wire.dump_request({"op": "exit"}))
            except OSError:
                pass
        self.kill()

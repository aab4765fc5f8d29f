"""A function run in a forked copy of this process, its messages and result sent back pickled:
how `grader.grade` runs a submission's topics on several cores at once. A fork starts in
milliseconds with torch, pytest and the grader already imported, where a new interpreter
would import them again. Fork only while torch has run no operation on more than one thread
(OpenMP is not fork-safe) and before anything touches CUDA; `grader.grade` forks right after
setting torch to the course's single thread.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any

STOP_GRACE_S = 5.0


class ForkedFailed(RuntimeError):
    """The forked copy raised or died: the grader's failure, never the student's (student code
    runs in the sandboxed worker, not here)."""


class Forked:
    """`fn(send)` running in a child process; `send(message)` reaches `messages` here, and what
    `fn` returns, `result()`."""

    def __init__(self, fn: Callable[[Callable[[Any], None]], Any]):
        ours, theirs = Pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into the caller's code
            ours.close()
            _serve(fn, theirs)
        theirs.close()
        self.conn: Connection = ours
        self.messages: list[Any] = []
        self._result: tuple[str, Any] | None = None

    def _read(self) -> None:
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            kind, value = "error", "the process exited without a result"
        if kind == "message":
            self.messages.append(value)
        else:
            self._result = (kind, value)

    def drain(self) -> None:
        """Read the messages that have arrived, without waiting."""
        while self._result is None and self.conn.poll(0):
            self._read()

    def result(self) -> Any:
        """Wait for `fn`'s return value; ForkedFailed if it raised or the child died."""
        while self._result is None:
            self._read()
        self._reap()
        kind, value = self._result
        if kind != "done":
            raise ForkedFailed(value)
        return value

    def stop(self) -> None:
        """End the child (it closes what it opened, its sandboxed worker included; killed if
        it has not within STOP_GRACE_S) and reap it."""
        if self._result is None:
            self._signal(signal.SIGTERM)
        self._reap()

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        self.conn.close()
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    self._signal(signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    return
                time.sleep(0.01)
        except ChildProcessError:
            pass


def _serve(fn: Callable[[Callable[[Any], None]], Any], conn: Connection) -> None:
    """The child's whole life: run `fn`, send its result, exit without the parent's clean-up
    (atexit handlers, buffers and objects that belong to the parent)."""
    code = 0
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the parent's alarm (its budget) is its own
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        result = fn(lambda message: conn.send(("message", message)))
        conn.send(("done", result))
    except BaseException:  # noqa: B036 - whatever happens, the parent hears of it
        code = 70
        try:
            conn.send(("error", traceback.format_exc()[-4000:]))
        except Exception:
            pass
    finally:
        os._exit(code)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the child's test session as Ctrl-C would (pytest and hypothesis let
    KeyboardInterrupt through), so its `finally` blocks close its worker."""
    raise KeyboardInterrupt(f"stopped (signal {signum})")

"""The worker template: a process that has imported torch (and used it for nothing, since
OpenMP is not fork-safe) and forks one sandboxed worker per request from the grader.

Run as `python -m grader.sandbox.forkserver FD`. The grader sends, over socket FD, one byte with the
new worker's socket attached; the template forks, answers with the child's pid, and the child reads
its configuration from its own socket, isolates itself and serves.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import socket
import struct
import sys
import traceback

import numpy  # noqa: F401  - pre-imported so a worker starts in milliseconds
import torch
import torch.nn  # noqa: F401
import torch.nn.functional  # noqa: F401
import torch.optim  # noqa: F401
import torch.utils.data  # noqa: F401

import torchdrill  # noqa: F401
import torchdrill.data
from grader.course import KIT_ROOT, load_course
from grader.sandbox import audit, cgroups, dispatch_guard, fsroot, isolation, uids, wire
from grader.sandbox.lazy import WORKER_LAZY_MODULES, import_lazy_modules
from grader.sandbox.server import Worker

TASKS_OF_A_WORKER = 16  # the worker's own threads, beyond max_processes for student code


def preload() -> None:
    """Run after saying it is ready, while the grader collects its tests. A speed-up only: a
    module that fails to import is left for torch to try lazily, and forbidden lists that fail
    to resolve are resolved (and fail) in the worker instead."""
    import_lazy_modules(WORKER_LAZY_MODULES)
    with contextlib.suppress(Exception):
        dispatch_guard.preload(load_course())
    gc.freeze()  # what every worker inherits: no collection in a worker traverses it


def _child(sock: socket.socket) -> None:
    """Runs in the forked process: read the config, isolate, fork the namespace's pid 1."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    isolation.die_with_parent()
    _, payload = wire.recv_message(sock, 1 << 32)
    config = pickle.loads(payload)
    limits = config["limits"]
    achieved: list[str] = []
    uid, uid_lock = None, None
    if os.getuid() == 0 and not isolation.in_user_namespace():
        uid, uid_lock = uids.claim_uid()  # held by this process until it dies
        achieved.append("own-uid")
        with contextlib.suppress(OSError):
            achieved += cgroups.join(str(os.getpid()), int(limits["memory_mb"]) << 20,
                                      int(limits["max_processes"]) + TASKS_OF_A_WORKER)
    if config.get("namespaces", True):
        achieved += isolation.enter_namespaces()
    if "mount-namespace" in achieved:
        achieved += _filesystem(config, uid)
    sent_r, sent_w = os.pipe()  # the pid message goes first: pid 1 waits for this pipe to close
    pid = os.fork() if "pid-namespace" in achieved else 0
    if pid:
        os.close(sent_r)
        _send(sock, pid=pid)
        sock.close()
        os.close(sent_w)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF if status else 0)
    isolation.die_with_parent()
    os.close(sent_w)
    if "pid-namespace" in achieved:
        if uid_lock is not None:  # student code must not be able to release it (LOCK_UN)
            os.close(uid_lock)
        os.read(sent_r, 1)  # EOF once the parent has sent the pid
    else:
        _send(sock, pid=os.getpid())
    os.close(sent_r)
    achieved += isolation.isolate_worker_process(limits, config.get("address_space_limit", True),
                                                uid)
    isolation.die_with_parent()  # a change of uid clears the parent-death signal
    home = fsroot.HOME if "private-tmp" in achieved else "/tmp"
    os.chdir(home)
    os.environ.update(HOME=home, USER="student", LOGNAME="student", TMPDIR="/tmp",
                      MPLCONFIGDIR=f"{home}/.matplotlib")
    torch.set_num_threads(int(config.get("threads", 1)))
    dispatch_guard.keep_armed_between_calls()
    raw_output = isolation.capture_raw_output()  # fds 1 and 2 never reach the grader's terminal
    _send(sock, isolation=achieved)
    # last before serving, the first student code: the hook judges every event from here on
    Worker(sock, config, raw_output, audit.install(config["sources"], config["imports"])).serve()


def _filesystem(config: dict, uid: int | None) -> list[str]:
    """The allow-list root; where the kernel refuses it, the deny-list of earlier versions
    (tmpfs over the hidden paths), so grading still runs and the report says which it was."""
    data_dirs = [str(torchdrill.data.data_root()), str(KIT_ROOT / "datasets")]
    owner = uid if uid is not None else os.getuid()
    try:
        return fsroot.enter_allow_list_root(data_dirs, config["hidden_paths"],
                                            int(config["limits"].get("max_file_mb", 64)), owner)
    except OSError as e:
        print(f"torchdrill: the worker's allow-list root failed ({e}); hiding paths instead",
              file=sys.stderr)
    isolation.hide_paths(config["hidden_paths"])
    if os.getuid() == 0:
        isolation.reveal_for_nobody([sys.base_prefix, sys.prefix, *sys.path])
    return ["hidden-paths"]


def _send(sock: socket.socket, **fields) -> None:
    """The two start-up messages, sent before any student code runs: the worker's pid as the
    grader sees it, then the isolation it achieved."""
    enc = wire.DataEncoder(lambda obj: (0, "", ""))
    wire.send_message(sock, wire.DATA, enc.finish({k: enc.encode(v) for k, v in fields.items()}))


def main(fd: int) -> None:
    control = socket.socket(fileno=fd)
    control.setblocking(True)  # an fd made under socket.setdefaulttimeout() arrives non-blocking
    isolation.die_with_parent()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    try:
        control.sendall(b"R")
    except OSError:  # the grader is already done (a command line it refused)
        os._exit(0)
    preload()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 1, 1)
        except OSError:
            msg = b""
        if not msg:  # the grader is done: exit now, not after a second of interpreter teardown
            os._exit(0)
        worker_sock = socket.socket(fileno=fds[0])
        worker_sock.setblocking(True)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                control.close()
                _child(worker_sock)
            except BaseException:
                traceback.print_exc()
                code = 70
            finally:
                os._exit(code)
        worker_sock.close()
        control.sendall(struct.pack(">q", pid))


if __name__ == "__main__":
    main(int(sys.argv[1]))

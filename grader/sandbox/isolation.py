"""Isolation for a worker process, applied after the fork and before any student code runs.

Each step is tried and reported by name (the report's `isolation` list), so a grade always
says which protections it had:
- `own-uid` (a uid no other running worker has: `grader.sandbox.uids`), `cgroup-memory`,
  `cgroup-pids`, `cgroup-cpu` (limits for the whole process tree: `grader.sandbox.cgroups`),
- `pid-namespace`, `network-namespace`, `mount-namespace` (unshare; a user namespace first
  when the grader is not root),
- `allow-list-root` and `private-tmp` (`grader.sandbox.fsroot`), or where the kernel refuses that,
  `hidden-paths` (tmpfs over solutions/, tests/, the output and other submissions),
- `private-proc`, `unprivileged` (root drops to the worker's uid; otherwise every
  capability is dropped),
- `rlimits` (CPU seconds, address space, processes, file size, open files, no core dumps).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
NOBODY = 65534

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits."""
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def enter_namespaces() -> list[str]:
    """New pid, network and mount namespaces (inside a user namespace when not root)."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID
    if uid != 0:
        flags |= CLONE_NEWUSER
    if _libc.unshare(flags) != 0:
        return []
    if uid != 0:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    return ["pid-namespace", "network-namespace", "mount-namespace"]


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None),
           f"mount {target}")


def hide_paths(paths: Iterable[str | Path]) -> bool:
    """Cover each existing path with an empty read-only tmpfs (a file: with /dev/null)."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    for p in sorted({os.path.realpath(p) for p in paths}):
        if os.path.isdir(p):
            _mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                   "size=4k,mode=0555")
        elif os.path.exists(p):
            _mount("/dev/null", p, None, MS_BIND, None)
    return True


SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE, AT_RECURSIVE, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 1, 0x8000, 0x4, -100


def clone_tree(path: str, recursive: bool) -> int:
    """A detached copy of the mount at `path` (open_tree), to attach elsewhere once `path`
    itself may be covered; with `recursive`, its submounts too."""
    flags = OPEN_TREE_CLONE | (AT_RECURSIVE if recursive else 0)
    fd = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), flags)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"open_tree {path}: {os.strerror(e)}")
    return fd


def attach_tree(fd: int, target: str) -> None:
    """Mount the detached tree `fd` at `target` (move_mount) and close `fd`."""
    try:
        _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(),
                             MOVE_MOUNT_F_EMPTY_PATH), f"move_mount {target}")
    finally:
        os.close(fd)


def _private_ancestor(path: str) -> str | None:
    """The highest ancestor of `path` that others may not traverse (e.g. /root), if any."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        p = os.path.join(*parts[:i])
        try:
            if not os.stat(p).st_mode & 0o001:
                return p
        except OSError:
            return None
    return None


def reveal_for_nobody(paths: Iterable[str]) -> list[str]:
    """Make `paths` (the Python installation) readable after dropping to nobody when they sit
    under a private directory such as /root: cover that directory with an empty tmpfs and
    mount just these paths back at their places. Returns the directories covered."""
    moves: dict[str, list[str]] = {}
    for p in sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)}):
        ancestor = _private_ancestor(p)
        if ancestor and not any(p.startswith(q + "/") for q in moves.get(ancestor, [])):
            moves.setdefault(ancestor, []).append(p)
    for ancestor, inner in moves.items():
        fds = [clone_tree(p, recursive=True) for p in inner]
        _mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for p, fd in zip(inner, fds, strict=True):
            os.makedirs(p, mode=0o755, exist_ok=True)
            attach_tree(fd, p)
    return list(moves)


def mount_proc() -> bool:
    """A /proc that shows only this pid namespace (hides the grader's processes)."""
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        return True
    except OSError:
        return False


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges(uid: int | None = None) -> None:
    """Root becomes `uid` (nobody by default); anyone else keeps its uid but loses every
    capability."""
    if os.getuid() == 0 and not in_user_namespace():
        uid = NOBODY if uid is None else uid
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    else:
        for cap in range(64):
            _libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
        header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)()
        _check(_libc.capset(ctypes.byref(header), data), "capset")
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def capture_raw_output() -> int:
    """Point file descriptors 1 and 2 at an anonymous in-memory file: output written below
    Python's sys.stdout (os.write, C code, child processes) is kept for the report, capped,
    and never reaches the grader's terminal. Returns the file's descriptor."""
    fd = os.memfd_create("worker-output", os.MFD_CLOEXEC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return fd


def take_raw_output(fd: int, cap: int) -> str:
    """What was written to fds 1 and 2 since the last call (at most `cap` bytes), then empty
    the file so a flood never accumulates."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, min(size, cap), 0) if size else b""
    if size:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
    text = data.decode("utf-8", "replace")
    return text + (f"\n[... {size - cap} more bytes not kept]" if size > cap else "")


def in_user_namespace() -> bool:
    try:
        return Path("/proc/self/uid_map").read_text().split()[1] != "0"
    except (OSError, IndexError):
        return False


def _vm_size_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def threads_of_uid(uid: int) -> int:
    """Processes and threads `uid` runs now (RLIMIT_NPROC counts threads)."""
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = os.stat(f"/proc/{pid}")
                if st.st_uid == uid:
                    count += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                continue
    return count


def set_limits(limits: dict, nproc_base: int, address_space: bool = True) -> None:
    """CPU, memory (beyond what is already mapped), processes, file size, open files."""
    def lim(res: int, value: int) -> None:
        soft, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))

    lim(resource.RLIMIT_CPU, int(limits["cpu_s"]))
    lim(resource.RLIMIT_CORE, 0)
    lim(resource.RLIMIT_FSIZE, int(limits["max_file_mb"]) << 20)
    lim(resource.RLIMIT_NOFILE, len(os.listdir("/proc/self/fd")) + int(limits["max_open_files"]))
    lim(resource.RLIMIT_NPROC, nproc_base + int(limits["max_processes"]))
    if address_space:
        lim(resource.RLIMIT_AS, _vm_size_bytes() + (int(limits["memory_mb"]) << 20))


def isolate_worker_process(limits: dict, address_space: bool,
                           uid: int | None = None) -> list[str]:
    """Steps run by the worker itself (pid 1 of its namespace, if it has one); `uid`: the
    worker's own unprivileged uid when the grader is root."""
    done = []
    root = os.getuid() == 0 and not in_user_namespace()
    will_drop_to = (NOBODY if uid is None else uid) if root else os.getuid()
    nproc_base = threads_of_uid(will_drop_to)
    if os.getpid() == 1 and mount_proc():
        done.append("private-proc")
    try:
        drop_privileges(uid)
        done.append("unprivileged")
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EINVAL):
            raise
    set_limits(limits, nproc_base, address_space)
    done.append("rlimits")
    return done

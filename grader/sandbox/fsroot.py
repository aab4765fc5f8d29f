"""The worker's filesystem as an allow-list: a new root holding, read-only, only what running a
submission needs (the interpreter, the venv, the kit's public parts, the course data), and
private empty tmpfs for /tmp, /var/tmp, /dev/shm and HOME that vanish with the worker.

Nothing else of the host is mounted: not the class folder, the output folder, other students,
`solutions/`, `tests/`, the host's temp dirs or the rest of the disk. The student's own code
reaches the worker as text, so it needs no path at all. Runs as root (or with the capabilities
of a user namespace) inside a fresh mount namespace, before the privilege drop.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable

from grader.course import KIT_ROOT
from grader.sandbox.isolation import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    _check,
    _libc,
    _mount,
    attach_tree,
    clone_tree,
)

KIT_PUBLIC = ("grader", "torchdrill", "course.toml")  # what the student kit ships anyway
SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
ETC = ("passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "ld.so.conf",
       "ld.so.conf.d", "localtime")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
HOME = "/home/student"

MS_REMOUNT, MNT_DETACH = 32, 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}


def allowed_paths(data_dirs: Iterable[str] = ()) -> list[str]:
    """Host paths a worker sees read-only: the Python installation and its venv, the parts of
    the kit a student has anyway, the course data, and the system's libraries."""
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    paths = set(prefixes)
    for p in sys.path:  # site-packages outside the prefixes (e.g. a user site) are not needed
        real = os.path.realpath(p) if p else ""
        if real and os.path.isdir(real) and any(_under(real, q) for q in prefixes):
            paths.add(real)
    paths |= {str(KIT_ROOT / name) for name in KIT_PUBLIC}
    paths |= {os.path.realpath(d) for d in data_dirs if d}
    paths |= {p for p in SYSTEM if os.path.lexists(p)}
    paths |= {f"/etc/{name}" for name in ETC if os.path.lexists(f"/etc/{name}")}
    if os.path.exists("/dev/nvidiactl"):  # CUDA needs its device files, driver info and /sys
        paths |= {f"/dev/{n}" for n in os.listdir("/dev") if n.startswith("nvidia")}
        paths.add("/sys")
    return _outermost(p for p in paths if os.path.lexists(p))


def _under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def _outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths inside another allowed path (one bind mount covers them)."""
    kept: list[str] = []
    for p in sorted(set(paths)):
        if not any(_under(p, q) for q in kept):
            kept.append(p)
    return kept


def _attach(fd: int, target: str, device: bool) -> None:
    """Mount the detached tree `fd` at `target`, read-only (device nodes stay usable)."""
    attach_tree(fd, target)
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | (0 if device else MS_NODEV)
    _mount("none", target, None, flags, None)


def _make_target(root: str, path: str, is_dir: bool) -> str:
    target = root + path
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        with open(target, "w"):
            pass
    return target


def _tmpfs(target: str, size_mb: int, mode: str = "1777") -> None:
    """A private, writable tmpfs: nothing written there can be run or loaded as code
    (noexec; the audit hook refuses it too)."""
    os.makedirs(target, mode=0o755, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={size_mb}m,mode={mode},nr_inodes=4096")


def _scratch_mountpoint() -> str:
    """An existing directory to mount the new root on; shadowing it hides nothing we need,
    since every allowed path was cloned first."""
    for p in ("/mnt", "/srv", "/media", "/opt", "/tmp", "/run", "/var"):
        if os.path.isdir(p) and not os.path.islink(p):
            return p
    raise OSError("no directory to mount the worker's root on")


def enter_allow_list_root(data_dirs: Iterable[str], hidden: Iterable[str], tmp_mb: int,
                          owner: int) -> list[str]:
    """Build the new root, pivot into it and drop the old one. Must run in a new mount
    namespace. `hidden`: paths masked even inside an allowed path (a class folder under the
    venv, say). `owner`: uid that will own the private tmpfs. Returns the isolation steps."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    allowed = allowed_paths(data_dirs)
    # (path, open_tree fd or symlink target, is a directory)
    clones: list[tuple[str, int | str, bool]] = []
    for p in allowed:
        if os.path.islink(p):  # e.g. /lib -> usr/lib on merged-/usr systems: the same link
            clones.append((p, os.readlink(p), False))
        else:
            clones.append((p, clone_tree(p, recursive=False), os.path.isdir(p)))
    root = _scratch_mountpoint()
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755,nr_inodes=4096")
    _devices(root)
    for p in (*PRIVATE_TMP, HOME):  # first: a kit or venv under /tmp is bound inside them
        _tmpfs(root + p, tmp_mb, "1777" if p != HOME else "0700")
        if p == HOME:
            os.chown(root + p, owner, owner)
    for path, source, is_dir in clones:
        if isinstance(source, str):
            os.makedirs(os.path.dirname(root + path), mode=0o755, exist_ok=True)
            os.symlink(source, root + path)
        else:
            _attach(source, _make_target(root, path, is_dir), device=path.startswith("/dev/"))
    for p in hidden:  # defence in depth: never shown even when inside an allowed path
        real = os.path.realpath(p)
        if any(_under(real, q) for q in allowed) and os.path.lexists(root + real):
            if os.path.isdir(root + real):
                _mount("tmpfs", root + real, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                       "size=4k,mode=0555")
            else:
                _mount("/dev/null", root + real, None, MS_BIND, None)
    os.makedirs(root + "/proc", mode=0o555, exist_ok=True)
    _pivot(root)
    _mount("none", "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    return ["allow-list-root", "private-tmp"]


def _devices(root: str) -> None:
    """A /dev with the harmless character devices only (and a private /dev/shm)."""
    dev = root + "/dev"
    os.makedirs(dev, mode=0o755, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755,nr_inodes=256")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _make_target(root, f"/dev/{name}", is_dir=False)
            _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND, None)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")


def _pivot(root: str) -> None:
    """Make `root` the process's `/` and detach the old root entirely."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown architecture {platform.machine()}")
    os.chdir(root)
    _check(_libc.syscall(number, b".", b"."), "pivot_root")  # the old root, stacked under it
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")

"""A distinct unprivileged uid for every worker running at once on this machine, so that one
student's processes never count against another's RLIMIT_NPROC or signal them.

A uid is claimed with an exclusive `flock` on a file named after it; the lock is held by the
worker's processes (the descriptor is inherited) and released by the kernel when the last of
them is gone, however they die. Only root can switch to such a uid.
"""

from __future__ import annotations

import fcntl
import os
import tempfile

FIRST_UID = 1_900_000_000  # far above any real account; no /etc/passwd entry needed
SLOTS = 4096


def lock_dir() -> str:
    """Where the uid locks live: host-only, never inside a worker's root."""
    base = "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(base, "torchdrill-uids")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def claim_uid() -> tuple[int, int]:
    """(uid, lock descriptor) of a uid no other running worker holds."""
    folder = lock_dir()
    start = os.getpid() % SLOTS  # spread concurrent claims over the range
    for i in range(SLOTS):
        uid = FIRST_UID + (start + i) % SLOTS
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise OSError(f"all {SLOTS} worker uids are in use")

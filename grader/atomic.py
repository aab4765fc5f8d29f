"""Atomic file writes: a reader sees the old file or the new one, never a part of one, even if
the grader dies mid-write (a temp file beside the target, fsync, os.replace, fsync the folder).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Replace `path` with `data` (a str as UTF-8) atomically and durably; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, _FLAGS, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write `obj` as strict JSON (NaN raises: JSON readers such as Gradescope reject it)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    return write_atomic(path, text + "\n")


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or removal in `directory` durable (skipped where a folder cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

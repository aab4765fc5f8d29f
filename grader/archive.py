"""Unpacking a student's `.zip` safely: only `.py` and `.ipynb` members, by base name, with caps
on their number and size, so a zip bomb or a path like `../../x` does no harm."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

KEEP = (".py", ".ipynb")
MAX_MEMBERS = 500
MAX_TOTAL_BYTES = 64 << 20


def extract_submission(archive: Path, dest: Path) -> str | None:
    """Extract the code files of `archive` into `dest` (flat, or one folder per notebook as
    nbgrader lays them out); return what was wrong, or None."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > MAX_MEMBERS:
                return f"{archive.name} has {len(members)} files; a submission has a few"
            code = [m for m in members if _wanted(m.filename)]
            if sum(m.file_size for m in code) > MAX_TOTAL_BYTES:
                return f"{archive.name} unpacks to more than {MAX_TOTAL_BYTES >> 20} MB of code"
            for m in code:
                name = PurePosixPath(m.filename.replace("\\", "/")).name
                target = dest / name
                if target.exists():
                    continue  # the first copy of a name wins (e.g. a duplicate in a sub-folder)
                with zf.open(m) as src:
                    data = src.read(MAX_TOTAL_BYTES + 1)
                target.write_bytes(data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        return f"{archive.name} is not a readable zip file ({e})"
    if not code:
        return f"{archive.name} contains no .py or .ipynb files"
    return None


def _wanted(filename: str) -> bool:
    path = PurePosixPath(filename.replace("\\", "/"))
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in path.parts)
    return not hidden and path.suffix in KEEP

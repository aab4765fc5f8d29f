"""Unpacking a student's `.zip` safely: only `.py` and `.ipynb` members, by base name, with caps
on their number and size, so a zip bomb or a path like `../../x` does no harm. Whatever goes
wrong (a corrupt, encrypted or oddly compressed archive) comes back as the student's problem,
never as an exception that would leave them without a report."""

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
        return _extract(archive, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        return f"{archive.name} is not a readable zip file ({e})"
    except RuntimeError as e:  # zipfile's word for an encrypted member
        return f"{archive.name} could not be unpacked ({e}): submit a zip without a password"
    except NotImplementedError as e:
        return (f"{archive.name} could not be unpacked ({e}): zip it again with your "
                "system's ordinary zip tool")
    except Exception as e:  # a decompressor's own error (zlib.error, lzma.LZMAError, ...)
        return f"{archive.name} could not be unpacked ({type(e).__name__}: {e})"


def _extract(archive: Path, dest: Path) -> str | None:
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            return f"{archive.name} has {len(members)} files; a submission has a few"
        code = [m for m in members if _wanted(m.filename)]
        if not code:
            return f"{archive.name} contains no .py or .ipynb files"
        if sum(m.file_size for m in code) > MAX_TOTAL_BYTES:  # zipfile reads no more than these
            return f"{archive.name} unpacks to more than {MAX_TOTAL_BYTES >> 20} MB of code"
        for m in code:
            target = dest / PurePosixPath(m.filename.replace("\\", "/")).name
            if target.exists():
                continue  # the first copy of a name wins (e.g. a duplicate in a sub-folder)
            with zf.open(m) as src:
                target.write_bytes(src.read(MAX_TOTAL_BYTES + 1))
    return None


def _wanted(filename: str) -> bool:
    path = PurePosixPath(filename.replace("\\", "/"))
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in path.parts)
    return not hidden and path.suffix in KEEP

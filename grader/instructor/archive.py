"""Unpacking a student's `.zip` safely: only `.py` and `.ipynb` members, by base name, with caps
on their number and size, so a zip bomb or a path like `../../x` does no harm. The caps on the
number of members and on the size of the archive's table of contents (its central directory)
are read from the archive's last record before `zipfile` reads that table: zipfile builds an
object for every entry it lists, and a few hundred MB of entries would cost gigabytes of the
grader's memory. Whatever goes wrong (a corrupt, encrypted or oddly compressed archive) comes
back as the student's problem, never as an exception that would leave them without a report."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path, PurePosixPath

KEEP = (".py", ".ipynb")
MAX_MEMBERS = 500
MAX_TOTAL_BYTES = 64 << 20
MAX_DIRECTORY_BYTES = 1 << 20  # 500 members with long paths take about 150 KB

# The records that end a zip (APPNOTE.TXT 4.3.14-4.3.16): the end of central directory record
# (22 bytes and a comment of up to 65,535), and for ZIP64 archives a locator just before it and
# a record with 64-bit counts just before that.
END = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries, size, offset, comment
END_SIGNATURE = b"PK\x05\x06"
LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the ZIP64 record, disks
LOCATOR_SIGNATURE = b"PK\x06\x07"
END64 = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, entries here, entries,
END64_SIGNATURE = b"PK\x06\x06"  # size, offset


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


def directory_size(archive: Path) -> tuple[int, int] | None:
    """(entries, bytes) of the archive's central directory as its end records state them, read
    as zipfile reads them (`zipfile._EndRecData`: the record last in the file, else the last
    signature before a comment; then a ZIP64 record just before it, whatever the first says);
    None where there is no end record (zipfile then says what is wrong)."""
    with archive.open("rb") as f:
        size = f.seek(0, 2)
        tail_at = max(0, size - END.size - (1 << 16))
        f.seek(tail_at)
        tail = f.read()
        at = len(tail) - END.size
        if not (at >= 0 and tail[at:at + 4] == END_SIGNATURE and tail[-2:] == b"\0\0"):
            at = tail.rfind(END_SIGNATURE)
            if at < 0 or len(tail) - at < END.size:
                return None
        *_, entries, directory, _, _ = END.unpack_from(tail, at)
        locator_at = tail_at + at - LOCATOR.size
        if locator_at - END64.size >= 0:
            f.seek(locator_at)
            if f.read(LOCATOR.size)[:4] == LOCATOR_SIGNATURE:
                f.seek(locator_at - END64.size)
                record = f.read(END64.size)
                if record[:4] == END64_SIGNATURE:
                    *_, entries, directory, _ = END64.unpack(record)
        return entries, directory


def _too_many(archive: Path, members: int) -> str | None:
    """What is wrong with an archive of `members` files, as its end record states them or as
    zipfile lists them (the record may understate them), or None."""
    return f"{archive.name} has {members} files; a submission has a few" if (
        members > MAX_MEMBERS) else None


def _extract(archive: Path, dest: Path) -> str | None:
    stated = directory_size(archive)
    if stated is not None:
        entries, directory = stated
        if problem := _too_many(archive, entries):
            return problem
        if directory > MAX_DIRECTORY_BYTES:
            return (f"{archive.name} lists its files in {directory >> 10} KB; a submission's "
                    f"list takes a few KB (at most {MAX_DIRECTORY_BYTES >> 10} KB are read)")
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if problem := _too_many(archive, len(members)):
            return problem
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

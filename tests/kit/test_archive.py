"""A student's zip is measured by its end records before zipfile reads its table of contents:
an archive that lists more files than a submission has, or a table larger than a submission's,
is refused before zipfile builds an object per entry, with a message saying which. The end
records are read as zipfile reads them (a ZIP64 record before the last one counts, whatever the
last says), so no forged record lets zipfile read more than the caps allow."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from grader.instructor import archive
from grader.instructor.archive import (
    END,
    END64,
    LOCATOR,
    MAX_DIRECTORY_BYTES,
    MAX_MEMBERS,
    directory_size,
    extract_submission,
)


def zipped(names: list[str], comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.writestr(name, "x = 1\n")
        zf.comment = comment
    return buf.getvalue()


def with_zip64_records(data: bytes, entries: int, directory: int) -> bytes:
    """`data` with a ZIP64 locator and record claiming `entries` and `directory` bytes inserted
    before its end record, whose own counts stay as they were."""
    end_at = data.rfind(b"PK\x05\x06")
    *_, cd_size, cd_offset, _ = END.unpack_from(data, end_at)
    record = END64.pack(b"PK\x06\x06", END64.size - 12, 45, 45, 0, 0, entries, entries,
                        directory, cd_offset)
    locator = LOCATOR.pack(b"PK\x06\x07", 0, end_at, 1)
    return data[:end_at] + record + locator + data[end_at:]


def with_stated_directory(data: bytes, directory: int) -> bytes:
    """`data` whose end record states a central directory of `directory` bytes."""
    end_at = data.rfind(b"PK\x05\x06")
    return data[:end_at + 12] + struct.pack("<L", directory) + data[end_at + 16:]


def zipfile_reads(path: Path) -> tuple[int, int]:
    """(entries, directory bytes) as zipfile itself takes them from the end records."""
    with path.open("rb") as f:
        record = zipfile._EndRecData(f)  # the oracle: what ZipFile will go on to read
    assert record is not None
    return record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]


ARCHIVES = {
    "plain": zipped(["softmax.py", "mlp.py"]),
    "comment": zipped(["softmax.py"], comment=b"made by hand"),
    "signature in the comment": zipped(["softmax.py"], comment=b"PK\x05\x06" + b"-" * 30),
    "zip64 record": with_zip64_records(zipped(["softmax.py"]), 10**9, 1 << 40),
    "zip64 record and a comment": with_zip64_records(zipped(["softmax.py"], b"hi"), 7, 99),
}


@pytest.mark.parametrize("name", ARCHIVES)
def test_the_end_records_are_read_as_zipfile_reads_them(tmp_path, name):
    path = tmp_path / "x.zip"
    path.write_bytes(ARCHIVES[name])
    assert directory_size(path) == zipfile_reads(path)


@pytest.fixture
def zipfile_unused(monkeypatch):
    """Fails the test if zipfile opens the archive: the caps come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("zipfile read an archive the caps should have refused")
    monkeypatch.setattr(archive.zipfile, "ZipFile", refuse)


@pytest.mark.parametrize(("data", "expect"), [
    (zipped([f"f{i}.py" for i in range(MAX_MEMBERS + 1)]), f"has {MAX_MEMBERS + 1} files"),
    (with_zip64_records(zipped(["softmax.py"]), 10**9, 100), "has 1000000000 files"),
    (with_stated_directory(zipped(["softmax.py"]), MAX_DIRECTORY_BYTES + 1),
     f"lists its files in {(MAX_DIRECTORY_BYTES + 1) >> 10} KB"),
    (with_zip64_records(zipped(["softmax.py"]), 1, 1 << 40), "lists its files in"),
], ids=["members", "zip64 members", "directory", "zip64 directory"])
def test_an_archive_past_the_caps_is_refused_before_zipfile_reads_it(tmp_path, zipfile_unused,
                                                                     data, expect):
    path = tmp_path / "big.zip"
    path.write_bytes(data)
    (tmp_path / "dest").mkdir()
    problem = extract_submission(path, tmp_path / "dest")
    assert problem and problem.startswith("big.zip") and expect in problem, problem
    assert not any((tmp_path / "dest").iterdir())


def test_an_end_record_that_understates_its_files_is_caught_where_zipfile_lists_them(
        tmp_path):
    """The end record's count is the archive's word: one that says 1 over 501 files passes
    the first cap, and zipfile's list (at most MAX_DIRECTORY_BYTES of it) meets the second."""
    data = bytearray(zipped([f"f{i}.py" for i in range(MAX_MEMBERS + 1)]))
    end_at = data.rfind(b"PK\x05\x06")
    data[end_at + 8:end_at + 12] = struct.pack("<2H", 1, 1)  # entries here, entries
    path = tmp_path / "x.zip"
    path.write_bytes(bytes(data))
    assert directory_size(path) == (1, zipfile_reads(path)[1])
    (tmp_path / "dest").mkdir()
    problem = extract_submission(path, tmp_path / "dest")
    assert problem == f"x.zip has {MAX_MEMBERS + 1} files; a submission has a few"


@pytest.mark.parametrize("name", ["plain", "comment"])  # zipfile refuses the third too
def test_an_ordinary_archive_still_unpacks(tmp_path, name):
    path = tmp_path / "x.zip"
    path.write_bytes(ARCHIVES[name])
    (tmp_path / "dest").mkdir()
    assert extract_submission(path, tmp_path / "dest") is None
    assert (tmp_path / "dest" / "softmax.py").read_text() == "x = 1\n"


def test_a_file_without_end_records_is_left_for_zipfile_to_refuse(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"print('not a zip')\n")
    assert directory_size(path) is None
    (tmp_path / "dest").mkdir()
    problem = extract_submission(path, tmp_path / "dest")
    assert problem and "not a readable zip file" in problem

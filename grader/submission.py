"""Reading a submission into module sources: the worker gets text, never a path, so it needs
no access to the submission's folder (or anyone else's).

A submission is a folder of `<topic>.py` files or `<topic>.ipynb` notebooks, or one such file.
Notebooks may sit one level down, as nbgrader's `submitted/<student>/<topic>/<topic>.ipynb`
gives `<student>/<topic>/<topic>.ipynb`; their code cells become the module
(`grader.notebooks.module_source`). Where a topic has both, the `.py` file is the module, as it
would be for Python's own import.

The grader may run as root and the folder is the student's, so it is read as an allow-list:
only the course's `<topic>` files, each opened relative to the submission folder without
following a symbolic link (a link could deliver the reference solution or a file only root
may read), only regular files (reading a FIFO would block forever), and only up to a size.
A topic file that is refused fails that topic's tests with the reason; every other file that
does not reach the grader (helpers.py, a second copy of a topic) is listed in `not_graded`,
which the report shows as `files_not_graded`. Nothing else is read or walked: a folder nested
thousands deep, a sparse file of a terabyte or a million files beside the topic files cost a
listing of the top folder, never a read or a recursion.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.notebooks import NotebookError, module_source, read_notebook
from grader.report.schema import NotGraded
from grader.scan.source import MAX_SOURCE_CHARS, SourceTooLarge

MAX_NOTEBOOK_BYTES = 32_000_000  # a notebook's outputs (plots) may be large; its code is not
MAX_NOT_GRADED = 50  # files listed as not graded; a folder of thousands is summed up
CODE_SUFFIXES = (".py", ".ipynb")
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


@dataclass
class Submission:
    name: str
    path: Path
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # module -> (file, text)
    problems: dict[str, str] = field(default_factory=dict)  # module -> what was wrong
    not_graded: list[NotGraded] = field(default_factory=list)  # the report's files_not_graded

    def source(self, module: str) -> str | None:
        entry = self.sources.get(module)
        return entry[1] if entry else None


class _Refused(Exception):
    """A file the grader does not read; the message is a sentence that names it."""


def load_submission(path: str | Path, topics: Iterable[str] | None = None) -> Submission:
    """A folder of `<topic>.py` files or `<topic>.ipynb` notebooks (or one such file).
    `topics`: the modules that may be read, the course's topics by default. All of them are
    read, not only those being graded, since a topic may import another (`from softmax import
    log_softmax` in cross_entropy.py)."""
    path = Path(path).resolve()  # the path the grader was given is trusted; what is inside not
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no submission at {path}")
    if topics is None:
        from grader.course import load_course

        topics = load_course().names
    folder_mode = path.is_dir()
    sub = Submission(name=path.name if folder_mode else path.stem, path=path)
    folder = path if folder_mode else path.parent
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        reader = _Reader(sub, folder, root, list(topics), folder_mode)
        if folder_mode:
            with os.scandir(root) as listing:
                reader.read(entry.name for entry in listing)
        else:
            reader.read(iter([path.name]))
    finally:
        os.close(root)
    return sub


def smallest(names: Iterator[str], n: int) -> tuple[list[str], int]:
    """The first `n` of `names` in sorted order and how many there were, in memory for a few
    times `n` names however many come."""
    kept: list[str] = []
    count = 0
    for name in names:
        count += 1
        kept.append(name)
        if len(kept) > 4 * n:
            kept = sorted(kept)[:n]
    return sorted(kept)[:n], count


class _Reader:
    """Reads one submission folder through a file descriptor of it, so nothing outside it can
    be reached by a name inside it."""

    def __init__(self, sub: Submission, folder: Path, root: int, topics: list[str],
                 nested: bool):
        self.sub, self.folder, self.root, self.topics = sub, folder, root, topics
        self.nested = nested  # look for <topic>/<topic>.ipynb too
        self.skipped: list[tuple[str, str]] = []

    def read(self, entries: Iterator[str]) -> None:
        """Read the topic files among `entries` (the folder's names, streamed) and list the
        other code files as not graded (the first MAX_NOT_GRADED by name, then a count)."""
        wanted = {f"{t}{s}" for t in self.topics for s in CODE_SUFFIXES}
        present: set[str] = set()

        def others() -> Iterator[str]:
            for name in entries:
                if name in wanted or name in self.topics:
                    present.add(name)
                elif name.endswith(CODE_SUFFIXES):
                    yield name

        listed, count = smallest(others(), MAX_NOT_GRADED)
        for topic in self.topics:
            candidates = [c for c in (f"{topic}.py", f"{topic}.ipynb") if c in present]
            if self.nested and topic in present and self._has_nested(topic):
                candidates.append(f"{topic}/{topic}.ipynb")
            if candidates:
                self._topic(topic, candidates)
        course = ", ".join(f"{t}.py" for t in self.topics)
        self.skipped += [(name, f"{name} is not graded and your topic files cannot import it: "
                          f"only the course's topic files ({course}) reach the grader. Put "
                          "the code you need from it into the topic's file.") for name in listed]
        count += len(self.skipped) - len(listed)
        self.sub.not_graded = [{"file": f, "reason": r} for f, r in self.skipped[:MAX_NOT_GRADED]]
        if count > MAX_NOT_GRADED:
            more = count - MAX_NOT_GRADED
            self.sub.not_graded.append({"file": f"{more} more files", "reason": (
                f"{more} more files were not graded either; they are not listed")})

    def _topic(self, topic: str, candidates: list[str]) -> None:
        """The topic's module from the first of its files that exists (a .py before a notebook,
        a notebook in the folder before one a level down); the others are listed."""
        chosen, *others = candidates
        self.skipped += [(o, f"{o} is not graded: {topic} has more than one file and "
                          f"{chosen} is the one graded (a .py file before a notebook, as for "
                          "Python's import, and a notebook before one in a sub-folder)")
                         for o in others]
        try:
            if chosen.endswith(".py"):
                text = _decode(self._read(chosen, MAX_SOURCE_CHARS), chosen)
            else:
                text = module_source(read_notebook(self._read(chosen, MAX_NOTEBOOK_BYTES),
                                                   chosen), chosen)
            if len(text) > MAX_SOURCE_CHARS:
                raise _Refused(f"{chosen}: {SourceTooLarge(len(text))}")
        except NotebookError as e:
            self._refuse(topic, chosen, f"{e}: save it again from Jupyter and resubmit.")
        except _Refused as e:
            self._refuse(topic, chosen, str(e))
        else:
            self.sub.sources[topic] = (str(self.folder / chosen), text)

    def _has_nested(self, topic: str) -> bool:
        """Whether the folder holds `<topic>/<topic>.ipynb`; a symbolic link named `<topic>`
        counts too, to be refused rather than looked into."""
        try:
            if stat.S_ISLNK(os.stat(topic, dir_fd=self.root, follow_symlinks=False).st_mode):
                return True
            os.stat(f"{topic}/{topic}.ipynb", dir_fd=self.root, follow_symlinks=False)
            return True
        except OSError:
            return False

    def _refuse(self, topic: str, file: str, reason: str) -> None:
        self.sub.problems[topic] = reason
        self.skipped.append((file, reason))

    def _read(self, name: str, limit: int) -> bytes:
        """The bytes of `name` (`file` or `folder/file`), a regular file inside the submission
        folder reached through no symbolic link, or _Refused."""
        *folder, leaf = name.split("/")
        if not folder:
            return _read_file(self.root, leaf, name, limit)
        try:
            _check_kind(os.stat(folder[0], dir_fd=self.root, follow_symlinks=False).st_mode,
                        f"{folder[0]}/", folder_ok=True)
            fd = os.open(folder[0], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=self.root)
        except OSError as e:
            raise _Refused(f"{folder[0]}/ could not be read: {e.strerror}") from None
        try:
            return _read_file(fd, leaf, name, limit)
        finally:
            os.close(fd)


def _check_kind(mode: int, name: str, folder_ok: bool = False) -> None:
    """_Refused unless `mode` is a regular file (or a real folder, where one is expected)."""
    if stat.S_ISLNK(mode):
        what = "folder" if folder_ok else "file"
        raise _Refused(f"{name} is a symbolic link: submit the {what} itself, not a link to it")
    if stat.S_ISDIR(mode) and not folder_ok:
        raise _Refused(f"{name} is a folder, not a file")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _Refused(f"{name} is not a regular file (it is a pipe, socket or device): "
                       "submit the file itself")


def _check_size(size: int, name: str, limit: int) -> None:
    if size > limit:
        raise _Refused(f"{name} is {size / 1e6:.1f} MB; the grader reads files up to "
                       f"{limit / 1e6:g} MB (a solution is a few kB: remove pasted data, or "
                       "clear a notebook's outputs and save it again)")


def _read_file(dir_fd: int, leaf: str, name: str, limit: int) -> bytes:
    """At most `limit` bytes of a regular file in the folder `dir_fd`: its type is checked
    before opening (a FIFO would block), the open follows no link, and the file opened must be
    the one checked."""
    try:
        before = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
        _check_kind(before.st_mode, name)
        _check_size(before.st_size, name, limit)
        fd = os.open(leaf, OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        raise _Refused(f"{name} could not be read: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        now = os.fstat(f.fileno())
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            raise _Refused(f"{name} changed while the grader read it: submit it again")
        data = f.read(limit + 1)
    _check_size(len(data), name, limit)
    return data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(f"{name} is not UTF-8 text") from None

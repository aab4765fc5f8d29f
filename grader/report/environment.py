"""Where a report was graded (`schema.Environment`): the course's hash, Python and torch, the
device, CUDA and TF32, threads, the seeds and the data. A student who asks why a test passes on
their machine compares their report's block with the instructor's, line by line: the same
course hash means the same grader, course.toml, torchdrill and public tests, so what differs is
listed beside it.

The course hash covers exactly what the student kit shares with the instructor's
(`SHARED_TREES`, `SHARED_FILES`: the files `grader.instructor.release` puts in the kit); the
hidden tests have a hash of their own, absent from a student's report (the instructor's batch
and Gradescope's autograder, which hold the same tests, show the same). Only what the grader
itself reads is described: nothing here asks the worker, and nothing initialises CUDA (a
batch's grader process forks after reporting).
"""

from __future__ import annotations

import functools
import hashlib
import platform
from collections.abc import Iterable
from pathlib import Path

import torch

from grader.course import COURSE_FILE, INSTRUCTOR_ONLY, KIT_ROOT, Course
from grader.report.schema import Environment

# What the student kit holds of what decides a grade (release's STUDENT_TREES and
# STUDENT_FILES less course.toml, which is COURSE_FILE here: the file grading reads).
SHARED_TREES = ("grader", "torchdrill", "tests/public")
SHARED_FILES = ("pyproject.toml", "tests/__init__.py", "tests/conftest.py")
HIDDEN_TREES = ("tests/hidden",)
HASHED_SUFFIXES = (".py", ".json", ".toml")
SHOWN_HASH = 16  # hex digits of a hash a report shows
SEEDS = ("hypothesis derandomized (profile 'grading', a fixed number of examples per test, "
         "no database); each test's first call seeds the worker's torch, numpy and random "
         "generators from the test's id (crc32), so a regrade draws the same numbers")


def kit_files(tree: str) -> list[Path]:
    """The files of one folder of the kit that decide grades (code, JSON, TOML), in a stable
    order; none of the instructor's code, caches or dot files."""
    root = KIT_ROOT / tree
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in HASHED_SUFFIXES
                  and not any(part == "__pycache__" or part.startswith(".")
                              for part in p.relative_to(KIT_ROOT).parts)
                  and not any(p.relative_to(KIT_ROOT).is_relative_to(x)
                              for x in INSTRUCTOR_ONLY))


def files_digest(paths: Iterable[Path], extra: str = "") -> str:
    """SHA-256 (hex) of these files of the kit, each by its path in the kit and its bytes, and
    `extra`."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(KIT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(extra.encode())
    return h.hexdigest()


@functools.cache
def course_hash() -> str:
    """What the student kit and the instructor's share that decides a grade."""
    files = [p for tree in SHARED_TREES for p in kit_files(tree)]
    files += [KIT_ROOT / f for f in SHARED_FILES if (KIT_ROOT / f).is_file()]
    # the course file by its text: the same course hashes the same wherever the file lies
    return files_digest(files, COURSE_FILE.read_text())[:SHOWN_HASH]


@functools.cache
def hidden_tests_hash() -> str | None:
    """The hidden tests (None in the student kit)."""
    files = [p for tree in HIDDEN_TREES for p in kit_files(tree)]
    return files_digest(files)[:SHOWN_HASH] if files else None


def _cuda() -> tuple[str, str]:
    """(device, CUDA) without initialising CUDA: the devices' names as the driver lists them."""
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        return "cpu", f"not available ({built})"
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        model = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                      if line.startswith("Model:")), None)
        names.append(model or "CUDA device")
    devices = ", ".join(names) or "CUDA device"
    return f"cuda ({devices})", f"{torch.version.cuda}, {len(names) or 1} device(s)"


def _tf32() -> str:
    matmul = "on" if torch.backends.cuda.matmul.allow_tf32 else "off"
    cudnn = "on" if torch.backends.cudnn.allow_tf32 else "off"
    return (f"TF32 matmul {matmul}, cuDNN convolutions {cudnn} "
            f"(float32 matmul precision '{torch.get_float32_matmul_precision()}')")


def _data() -> str:
    """The MNIST the training tests load (torchdrill.data's rule): real files or generated."""
    import torchdrill.data

    root = torchdrill.data.data_root()
    found = torchdrill.data.find_idx_files(root)
    where = "$TORCHDRILL_DATA" if root != KIT_ROOT / "datasets" / "data" else "datasets/data"
    if {"train", "test"} <= found.keys():
        return f"MNIST, the official train and test splits, from {where}"
    if "test" in found:
        return (f"MNIST's official test split, split by a fixed seed into training and test "
                f"images, from {where}")
    return (f"generated digits (torchdrill.data.synthetic_mnist, fixed seed): no MNIST files "
            f"under {where}")


def environment(course: Course) -> Environment:
    """This grading process's environment, as a report records it."""
    device, cuda = _cuda()
    return {"course_hash": course_hash(), "hidden_tests_hash": hidden_tests_hash(),
            "python": platform.python_version(), "torch": torch.__version__,
            "device": device, "cuda": cuda, "tf32": _tf32(), "threads": course.threads,
            "seeds": SEEDS, "data": _data()}


def environment_lines(kit_version: str, env: Environment | None) -> list[str]:
    """The block as lines of text, the same in every report format (none for a report from
    before environments were recorded)."""
    if not env:
        return []
    hidden = env["hidden_tests_hash"]
    return [f"kit {kit_version} · course {env['course_hash']}"
            + (f" · hidden tests {hidden}" if hidden else " · public tests only"),
            f"Python {env['python']} · torch {env['torch']} · {env['threads']} thread(s)",
            f"device {env['device']} · CUDA {env['cuda']} · {env['tf32']}",
            f"seeds: {env['seeds']}",
            f"data: {env['data']}"]
